package ares_test

import data.ares

growing := {"mem_percent": 95, "trend": {"mem_slope_bytes_per_s": 1200.5, "seconds_to_mem_limit": 30}}

recycle(replica_name, reason) := {"action": "recycle", "service": "api", "replica": replica_name, "reason": reason}

test_exited_restarts_replica if {
	svc := service([with_replica("api-1", {"state": "exited", "exit_code": 1}), replica("api-2")])
	decide(svc) == {restart("api-1", "exited with code 1")}
}

test_stopped_by_operator_is_left_alone if {
	stopped := {"state": "exited", "exit_code": 143, "health": "unhealthy", "stopped_by_operator": true}
	count(decide(service([with_replica("api-1", stopped), replica("api-2")]))) == 0
}

test_started_again_after_operator_stop_restarts_when_exited if {
	svc := service([with_replica("api-1", {"state": "exited", "exit_code": 143}), replica("api-2")])
	decide(svc) == {restart("api-1", "exited with code 143")}
}

test_ladder_is_valid_actions if {
	every a in ares.ladder {
		a in {"restart", "recycle", "scale_out", "notify"}
	}
	ares.ladder[count(ares.ladder) - 1] == "notify"
}

test_dead_restarts_replica if {
	decide(service([with_replica("api-1", {"state": "dead", "exit_code": 0})])) == {restart("api-1", "dead with code 0")}
}

test_exit_reason_names_oom_kill if {
	ares.exit_reason({"state": "exited", "exit_code": 137, "oom_killed": true}) == "exited with code 137 (OOMKilled)"
	ares.exit_reason({"state": "exited", "exit_code": 137, "oom_killed": false}) == "exited with code 137"
	ares.exit_reason({"state": "exited"}) == "exited with code ?"
}

test_other_states_do_not_restart if {
	every state in ["running", "restarting", "paused", "created"] {
		count(decide(service([with_replica("api-1", {"state": state, "exit_code": 1})]))) == 0
	}
}

test_restart_states_override if {
	svc := service([with_replica("api-1", {"state": "dead", "exit_code": 1}), with_replica("api-2", {"state": "exited", "exit_code": 1})])
	got := decide(svc) with data.ares.config.services as {"api": {"restart_states": ["exited"]}}
	got == {restart("api-2", "exited with code 1")}
}

test_unhealthy_restarts_replica if {
	decide(service([with_replica("api-1", {"health": "unhealthy"})])) == {restart("api-1", "health check unhealthy")}
}

test_starting_and_no_healthcheck_do_not_restart if {
	svc := service([with_replica("api-1", {"health": "starting"}), with_replica("api-2", {"health": "none"})])
	count(decide(svc)) == 0
}

test_oom_killed_recycles if {
	decide(service([with_replica("api-1", {"oom_killed": true})])) == {recycle("api-1", "OOMKilled")}
}

test_memory_growing_recycles if {
	decide(service([with_replica("api-1", growing)])) == {recycle("api-1", "memory at 95% of limit and growing (1200.5 B/s)")}
}

test_memory_at_threshold_recycles if {
	r := with_replica("api-1", {"mem_percent": 90, "trend": {"mem_slope_bytes_per_s": 1}})
	decide(service([r])) == {recycle("api-1", "memory at 90% of limit and growing (1 B/s)")}
}

test_memory_high_but_flat_does_not_recycle if {
	every slope in [0, -5] {
		r := with_replica("api-1", {"mem_percent": 99, "trend": {"mem_slope_bytes_per_s": slope}})
		count(decide(service([r]))) == 0
	}
}

test_memory_high_without_trend_does_not_recycle if {
	r := object.remove(with_replica("api-1", {"mem_percent": 99}), {"trend"})
	count(decide(service([r]))) == 0
}

test_memory_growing_below_threshold_does_not_recycle if {
	r := with_replica("api-1", {"mem_percent": 89.9, "trend": {"mem_slope_bytes_per_s": 5000}})
	count(decide(service([r]))) == 0
}

test_recycle_threshold_override if {
	r := with_replica("api-1", {"mem_percent": 75, "trend": {"mem_slope_bytes_per_s": 10}})
	count(decide(service([r]))) == 0
	got := decide(service([r])) with data.ares.config.services.api as {"recycle_mem_percent": 70}
	got == {recycle("api-1", "memory at 75% of limit and growing (10 B/s)")}
}

test_replica_fields_absent_do_not_trigger if {
	svc := service([{"name": "api-1"}, {"id": "x", "state": "exited", "oom_killed": true, "health": "unhealthy"}])
	count(decide(svc)) == 0
}

test_replica_rules_need_fresh_docker if {
	svc := service([
		with_replica("api-1", {"state": "exited", "exit_code": 1}),
		with_replica("api-2", {"health": "unhealthy"}),
		with_replica("api-3", {"oom_killed": true}),
		with_replica("api-4", growing),
	])
	count(decide(svc)) == 4
	count(decide_with(svc, stale("docker"))) == 0
	count(decide_with(svc, missing("docker"))) == 0
	count(decide_with(svc, object.union(all_ok, {"docker": {"age_s": 1}}))) == 4
	count(decide_with(svc, {"docker": {"age_s": 1, "error": ""}})) == 0
}

test_restart_smaller_reason_with_other_restart_states if {
	down_unhealthy := with_replica("api-1", {"state": "restarting", "exit_code": 1, "health": "unhealthy"})
	down := with_replica("api-2", {"state": "restarting", "exit_code": 1})
	got := decide(service([down_unhealthy, down])) with data.ares.config.services.api.restart_states as ["restarting"]
	got == {restart("api-1", "health check unhealthy"), restart("api-2", "restarting with code 1")}
}
