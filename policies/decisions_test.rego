package ares_test

import data.ares

# Helpers shared by every test file of the pack.

all_ok := {
	"docker": {"ok": true, "age_s": 0.2, "error": ""},
	"metrics": {"ok": true, "age_s": 0.4, "error": ""},
	"probe": {"ok": true, "age_s": 0.1, "error": ""},
	"anomaly": {"ok": true, "age_s": 0.4, "error": ""},
}

# replica is a healthy running replica.
replica(name) := {
	"id": concat("", ["id-", name]),
	"name": name,
	"state": "running",
	"health": "healthy",
	"exit_code": 0,
	"oom_killed": false,
	"restart_count": 0,
	"cpu_percent": 40,
	"mem_bytes": 50,
	"mem_limit_bytes": 100,
	"mem_percent": 50,
	"trend": {"mem_slope_bytes_per_s": 0, "seconds_to_mem_limit": null},
}

# with_replica is replica(name) with fields replaced.
with_replica(name, fields) := object.union(replica(name), fields)

# service has the given replicas and desired_replicas 2, no optional sections.
service(replicas) := {"replicas": replicas, "desired_replicas": 2}

# with_sections is service(replicas) with sections added.
with_sections(replicas, sections) := object.union(service(replicas), sections)

facts(services) := facts_with(services, all_ok)

facts_with(services, sensors) := {
	"version": 1,
	"tick": 1,
	"time": "2026-12-01T08:30:00Z",
	"services": services,
	"alerts": [],
	"sensors": sensors,
}

# decide evaluates the pack for one service "api" with every sensor fresh.
decide(svc) := got if {
	got := ares.decisions with input as facts({"api": svc})
}

# decide_with evaluates the pack for one service "api" with exactly the given sensors.
decide_with(svc, sensors) := got if {
	got := ares.decisions with input as facts_with({"api": svc}, sensors)
}

restart(replica_name, reason) := {"action": "restart", "service": "api", "replica": replica_name, "reason": reason}

# stale is all_ok with the named sensor reporting ok=false.
stale(sensor) := object.union(all_ok, {sensor: {"ok": false, "age_s": 120, "error": "timeout"}})

# missing is all_ok without the named sensor.
missing(sensor) := object.remove(all_ok, {sensor})

service_action(action, reason) := {"action": action, "service": "api", "reason": reason}

busy_summary := {"replicas": 2, "running": 2, "mean_cpu_percent": 85, "max_mem_percent": 50, "scaled_replicas": 0, "unhealthy_or_down": 0}

# The shared example document (shared/examples/facts.json, the pinned example) yields exactly one decision.
example_facts := {
	"version": 1,
	"tick": 42,
	"time": "2026-12-01T08:30:00Z",
	"services": {
		"api": {
			"replicas": [
				{
					"id": "9f1c2d3e4b5a",
					"name": "demo-api-1",
					"state": "running",
					"health": "healthy",
					"exit_code": 0,
					"oom_killed": false,
					"restart_count": 0,
					"cpu_percent": 34.5,
					"mem_bytes": 73400320,
					"mem_limit_bytes": 134217728,
					"mem_percent": 54.7,
					"trend": {
						"mem_slope_bytes_per_s": 1200.0,
						"seconds_to_mem_limit": 50700.0,
					},
				},
				{
					"id": "1a2b3c4d5e6f",
					"name": "demo-api-2",
					"state": "exited",
					"health": "none",
					"exit_code": 137,
					"oom_killed": false,
					"restart_count": 1,
					"cpu_percent": 0.0,
					"mem_bytes": 0,
					"mem_limit_bytes": 134217728,
					"mem_percent": 0.0,
					"trend": {
						"mem_slope_bytes_per_s": 0.0,
						"seconds_to_mem_limit": null,
					},
				},
			],
			"desired_replicas": 2,
			"metrics": {
				"rps": 120.0,
				"error_rate": 0.004,
				"latency_p99_ms": 48.0,
			},
			"probe": {
				"ok": true,
				"consecutive_failures": 0,
				"latency_ms": 2.1,
			},
			"anomaly": {
				"score": 0.46,
				"is_anomaly": false,
				"risk": "low",
			},
			"history": {
				"actions_10m": 0,
				"seconds_since_last_action": 86400,
			},
		},
		"worker": {
			"replicas": [{
				"id": "abcdef012345",
				"name": "demo-worker-1",
				"state": "running",
				"health": "none",
				"exit_code": 0,
				"oom_killed": false,
				"restart_count": 0,
				"cpu_percent": 12.0,
				"mem_bytes": 20971520,
				"mem_limit_bytes": 0,
				"mem_percent": 0.0,
			}],
			"desired_replicas": 1,
			"history": {
				"actions_10m": 0,
				"seconds_since_last_action": 86400,
			},
		},
	},
	"alerts": [],
	"sensors": {
		"docker": {"ok": true, "age_s": 0.2, "error": ""},
		"metrics": {"ok": true, "age_s": 0.4, "error": ""},
		"probe": {"ok": true, "age_s": 0.1, "error": ""},
		"anomaly": {"ok": true, "age_s": 0.4, "error": ""},
	},
}

test_example_facts_restart_demo_api_2 if {
	got := ares.decisions with input as example_facts
	got == {restart("demo-api-2", "exited with code 137")}
}

test_empty_input if {
	count(ares.decisions) == 0 with input as {}
}

test_no_services if {
	count(ares.decisions) == 0 with input as facts({})
}

test_healthy_service if {
	count(decide(service([replica("api-1"), replica("api-2")]))) == 0
}

test_service_without_replicas if {
	count(decide({"desired_replicas": 1})) == 0
}

test_precedence_recycle_over_restart if {
	r := with_replica("api-1", {"state": "exited", "exit_code": 137, "oom_killed": true})
	decide(service([r])) == {{"action": "recycle", "service": "api", "replica": "api-1", "reason": "OOMKilled"}}
}

test_precedence_restart_over_scale_out if {
	svc := with_sections([replica("api-1"), replica("api-2")], {
		"summary": busy_summary,
		"anomaly": {"score": 0.9, "is_anomaly": true, "risk": "high"},
		"metrics": {"rps": 10, "error_rate": 0.2, "latency_p99_ms": 900},
	})
	decide(svc) == {service_action("restart", "anomaly risk high (score 0.9) and error rate 0.2 >= 0.05")}
}

test_precedence_scale_out_over_notify if {
	svc := with_sections([replica("api-1"), replica("api-2")], {
		"summary": busy_summary,
		"anomaly": {"score": 0.9, "is_anomaly": true, "risk": "high"},
	})
	decide(svc) == {service_action("scale_out", "mean CPU 85% >= 80% over 2 running replicas (max 4)")}
}

test_precedence_scale_in_over_notify if {
	svc := with_sections([replica("api-1"), replica("api-2"), replica("api-3")], {
		"summary": object.union(busy_summary, {"replicas": 3, "running": 3, "mean_cpu_percent": 5}),
		"anomaly": {"score": 0.9, "is_anomaly": true, "risk": "high"},
	})
	decide(svc) == {service_action("scale_in", "mean CPU 5% < 20% with 3 replicas (desired 2)")}
}

test_same_action_smaller_reason_wins if {
	r := with_replica("api-1", {"state": "exited", "exit_code": 1, "health": "unhealthy"})
	decide(service([r])) == {restart("api-1", "exited with code 1")}
}

test_service_restart_supersedes_replica_restart if {
	svc := with_sections(
		[
			with_replica("api-1", {"state": "exited", "exit_code": 1}),
			with_replica("api-2", {"oom_killed": true}),
			replica("api-3"),
		],
		{
			"anomaly": {"score": 0.9, "is_anomaly": true, "risk": "high"},
			"metrics": {"rps": 10, "error_rate": 0.2, "latency_p99_ms": 900},
		},
	)
	decide(svc) == {
		service_action("restart", "anomaly risk high (score 0.9) and error rate 0.2 >= 0.05"),
		{"action": "recycle", "service": "api", "replica": "api-2", "reason": "OOMKilled"},
	}
}

test_replica_and_service_targets_are_independent if {
	svc := with_sections([with_replica("api-1", {"state": "dead", "exit_code": 2}), replica("api-2")], {"summary": busy_summary})
	decide(svc) == {
		restart("api-1", "dead with code 2"),
		service_action("scale_out", "mean CPU 85% >= 80% over 2 running replicas (max 4)"),
	}
}

test_at_most_one_decision_per_target if {
	svc := with_sections(
		[
			with_replica("api-1", {"state": "exited", "exit_code": 137, "oom_killed": true, "health": "unhealthy"}),
			with_replica("api-2", {"health": "unhealthy", "mem_percent": 95, "trend": {"mem_slope_bytes_per_s": 10, "seconds_to_mem_limit": 5}}),
		],
		{
			"summary": busy_summary,
			"anomaly": {"score": 0.9, "is_anomaly": true, "risk": "high"},
			"probe": {"ok": false, "consecutive_failures": 9, "latency_ms": 0},
		},
	)
	got := decide(svc)
	targets := {object.get(d, "replica", "") | some d in got}
	count(targets) == count(got)
	got == {
		{"action": "recycle", "service": "api", "replica": "api-1", "reason": "OOMKilled"},
		{"action": "recycle", "service": "api", "replica": "api-2", "reason": "memory at 95% of limit and growing (10 B/s)"},
		service_action("scale_out", "mean CPU 85% >= 80% over 2 running replicas (max 4)"),
	}
}

test_services_are_decided_independently if {
	got := ares.decisions with input as facts({
		"api": service([with_replica("api-1", {"state": "exited", "exit_code": 1})]),
		"cart": service([with_replica("cart-1", {"state": "exited", "exit_code": 1})]),
		"web": service([replica("web-1")]),
	})
	got == {
		restart("api-1", "exited with code 1"),
		{"action": "restart", "service": "cart", "replica": "cart-1", "reason": "exited with code 1"},
	}
}

test_decisions_carry_no_internal_fields if {
	some d in decide(service([with_replica("api-1", {"state": "exited", "exit_code": 1})]))
	object.keys(d) == {"action", "service", "replica", "reason"}
}

# num spells numbers for reasons: one decimal, no trailing ".0", integers as they are.
test_num_spells_reason_numbers if {
	sprintf("%v", [ares.num(91.2345)]) == "91.2"
	sprintf("%v", [ares.num(45.96)]) == "46"
	sprintf("%v", [ares.num(45)]) == "45"
	sprintf("%v", [ares.num(-0.25001)]) == "-0.3"
	sprintf("%v", [ares.num(1200.5)]) == "1200.5"
	sprintf("%v", [ares.num(123456789.123457)]) == "123456789.1"
}
