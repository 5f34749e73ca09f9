package ares_test

probe_failing(n) := {"probe": {"ok": false, "consecutive_failures": n, "latency_ms": 0}}

probe_restart := service_action("restart", "probe failed 3 consecutive times and every replica looks healthy")

test_probe_failing_all_healthy_restarts_service if {
	svc := with_sections([replica("api-1"), with_replica("api-2", {"health": "none"})], probe_failing(3))
	decide(svc) == {probe_restart}
}

test_probe_failing_below_threshold if {
	svc := with_sections([replica("api-1")], probe_failing(2))
	count(decide(svc)) == 0
}

test_probe_ok if {
	svc := with_sections([replica("api-1")], {"probe": {"ok": true, "consecutive_failures": 0, "latency_ms": 2}})
	count(decide(svc)) == 0
}

test_probe_failure_attributed_to_unhealthy_replica if {
	svc := with_sections([replica("api-1"), with_replica("api-2", {"health": "unhealthy"})], probe_failing(5))
	decide(svc) == {restart("api-2", "health check unhealthy")}
}

test_probe_failure_attributed_to_exited_replica if {
	svc := with_sections([replica("api-1"), with_replica("api-2", {"state": "exited", "exit_code": 1})], probe_failing(3))
	decide(svc) == {restart("api-2", "exited with code 1")}
}

test_probe_failure_attributed_to_restarting_replica if {
	svc := with_sections([replica("api-1"), with_replica("api-2", {"state": "restarting"})], probe_failing(3))
	count(decide(svc)) == 0
}

test_probe_failing_with_stale_docker_restarts_service if {
	svc := with_sections([with_replica("api-1", {"health": "unhealthy"})], probe_failing(3))
	decide_with(svc, stale("docker")) == {probe_restart}
}

test_probe_rule_needs_fresh_probe if {
	svc := with_sections([replica("api-1")], probe_failing(7))
	count(decide_with(svc, stale("probe"))) == 0
	count(decide_with(svc, missing("probe"))) == 0
}

test_probe_absent if {
	count(decide(service([replica("api-1")]))) == 0
	count(decide(with_sections([replica("api-1")], {"probe": {"ok": false}}))) == 0
}

test_probe_threshold_override if {
	svc := with_sections([replica("api-1")], probe_failing(3))
	count(decide(svc)) == 1
	count(decide(svc)) == 0 with data.ares.config.services as {"api": {"probe_failures": 5}}
	count(decide(svc)) == 1 with data.ares.config.services as {"web": {"probe_failures": 5}}
}

test_probe_restart_supersedes_replica_restarts if {
	# Only a restart_states that includes running lets a replica restart meet a probe restart.
	svc := with_sections([replica("api-1"), with_replica("api-2", {"oom_killed": true})], probe_failing(3))
	got := decide(svc) with data.ares.config.services.api.restart_states as ["running"]
	got == {probe_restart, {"action": "recycle", "service": "api", "replica": "api-2", "reason": "OOMKilled"}}
}
