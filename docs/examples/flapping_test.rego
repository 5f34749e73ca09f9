package ares_test

import data.ares

flapping := {"services": {"web": {"desired_replicas": 1, "replicas": [
	{"name": "web-1", "state": "running", "health": "healthy", "restart_count": 9},
]}}}

test_flapping_replica_notifies if {
	ares.decisions == {{
		"action": "notify", "service": "web", "replica": "web-1",
		"reason": "restarted 9 times",
	}} with input as flapping
}
