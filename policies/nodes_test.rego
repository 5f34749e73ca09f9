package ares_test

import data.ares

node(status, availability, failed) := {
	"hostname": "h", "status": status, "availability": availability,
	"manager": false, "leader": false, "tasks_running": 1, "tasks_failed_10m": failed,
}

fresh := {"docker": {"ok": true, "age_s": 0, "error": ""}}

drains(input_doc) := {d | some d in ares.decisions with input as input_doc; d.action == "drain"}

test_down_node_is_drained_while_another_is_active if {
	ds := drains({"services": {}, "sensors": fresh, "nodes": {
		"n1": node("down", "active", 0),
		"n2": node("ready", "active", 0),
	}})
	ds == {{"action": "drain", "node": "n1", "reason": "node h (n1) is down"}}
}

test_unknown_node_is_drained if {
	ds := drains({"services": {}, "sensors": fresh, "nodes": {
		"n1": node("unknown", "active", 0),
		"n2": node("ready", "active", 0),
	}})
	count(ds) == 1
}

test_failed_tasks_at_threshold_drain if {
	ds := drains({"services": {}, "sensors": fresh, "nodes": {
		"n1": node("ready", "active", 3),
		"n2": node("ready", "active", 0),
	}})
	ds == {{"action": "drain", "node": "n1", "reason": "node h (n1) had 3 failed tasks in 10m (threshold 3)"}}
}

test_failed_tasks_below_threshold_do_not_drain if {
	count(drains({"services": {}, "sensors": fresh, "nodes": {
		"n1": node("ready", "active", 2),
		"n2": node("ready", "active", 0),
	}})) == 0
}

test_threshold_comes_from_data if {
	count(drains({"services": {}, "sensors": fresh, "nodes": {
		"n1": node("ready", "active", 2),
		"n2": node("ready", "active", 0),
	}})) == 1 with data.ares.config.nodes.drain_failed_tasks_10m as 2
}

test_last_active_node_is_not_drained if {
	count(drains({"services": {}, "sensors": fresh, "nodes": {
		"n1": node("ready", "active", 9),
		"n2": node("ready", "drain", 0),
		"n3": node("down", "active", 0),
	}})) == 1 # only n3: n1 is then the one ready, active node left for n3's tasks
	ds := drains({"services": {}, "sensors": fresh, "nodes": {"n1": node("down", "active", 5)}})
	count(ds) == 0
}

test_drained_node_is_not_drained_again if {
	count(drains({"services": {}, "sensors": fresh, "nodes": {
		"n1": node("down", "drain", 0),
		"n2": node("ready", "active", 0),
	}})) == 0
}

test_stale_docker_sensor_drains_nothing if {
	stale := {"docker": {"ok": false, "age_s": 30, "error": "timeout"}}
	count(drains({"services": {}, "sensors": stale, "nodes": {
		"n1": node("down", "active", 0),
		"n2": node("ready", "active", 0),
	}})) == 0
}

test_single_host_without_nodes_drains_nothing if {
	count(drains({"services": {}, "sensors": fresh})) == 0
}

test_drain_requires_approval_by_default if {
	data.ares.approval.defaults.drain == "required"
}
