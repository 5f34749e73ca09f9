package ares_test

import data.ares

test_restart_exited if {
	facts := {
		"sensors": {"docker": {"ok": true}},
		"services": {"api": {"replicas": [{"name": "api-1", "state": "exited", "exit_code": 1, "oom_killed": false}]}},
	}
	some d in ares.decisions with input as facts
	d.action == "restart"
}
