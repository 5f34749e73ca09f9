package ares_test

summary(fields) := {"summary": object.union(busy_summary, fields)}

scale_out_reason(cpu, running, max) := sprintf("mean CPU %v%% >= 80%% over %v running replicas (max %v)", [cpu, running, max])

test_busy_scales_out if {
	svc := with_sections([replica("api-1"), replica("api-2")], summary({}))
	decide(svc) == {service_action("scale_out", scale_out_reason(85, 2, 4))}
}

test_busy_at_threshold_scales_out if {
	svc := with_sections([replica("api-1"), replica("api-2")], summary({"mean_cpu_percent": 80}))
	decide(svc) == {service_action("scale_out", scale_out_reason(80, 2, 4))}
}

test_reason_rounds_cpu if {
	svc := with_sections([replica("api-1"), replica("api-2")], summary({"mean_cpu_percent": 85.23333333333333}))
	decide(svc) == {service_action("scale_out", scale_out_reason(85.2, 2, 4))}
}

test_busy_below_threshold_does_not_scale if {
	every cpu in [79.9, 50, 20] {
		svc := with_sections([replica("api-1"), replica("api-2")], summary({"mean_cpu_percent": cpu}))
		count(decide(svc)) == 0
	}
}

test_busy_at_max_replicas_does_not_scale_out if {
	svc := with_sections([replica("api-1")], summary({"replicas": 4, "running": 4}))
	count(decide(svc)) == 0
}

test_max_replicas_override if {
	svc := with_sections([replica("api-1")], summary({"replicas": 4, "running": 4}))
	got := decide(svc) with data.ares.config.services.api.max_replicas as 6
	got == {service_action("scale_out", scale_out_reason(85, 4, 6))}
}

test_idle_scales_in if {
	svc := with_sections([replica("api-1")], summary({"replicas": 3, "running": 3, "mean_cpu_percent": 10, "scaled_replicas": 1}))
	decide(svc) == {service_action("scale_in", "mean CPU 10% < 20% with 3 replicas (desired 2)")}
}

test_idle_at_desired_does_not_scale_in if {
	svc := with_sections([replica("api-1")], summary({"replicas": 2, "running": 2, "mean_cpu_percent": 1}))
	count(decide(svc)) == 0
}

test_idle_at_threshold_does_not_scale_in if {
	svc := with_sections([replica("api-1")], summary({"replicas": 3, "running": 3, "mean_cpu_percent": 20}))
	count(decide(svc)) == 0
}

test_idle_with_broken_replica_does_not_scale_in if {
	svc := with_sections([replica("api-1")], summary({"replicas": 3, "running": 2, "mean_cpu_percent": 5, "unhealthy_or_down": 1}))
	count(decide(svc)) == 0
}

test_nothing_running_does_not_scale_in if {
	svc := with_sections([replica("api-1")], summary({"replicas": 3, "running": 0, "mean_cpu_percent": 0, "unhealthy_or_down": 0}))
	count(decide(svc)) == 0
}

test_scale_in_threshold_override if {
	svc := with_sections([replica("api-1")], summary({"replicas": 3, "running": 3, "mean_cpu_percent": 25}))
	got := decide(svc) with data.ares.config.services.api as {"scale_in_cpu_percent": 30}
	got == {service_action("scale_in", "mean CPU 25% < 30% with 3 replicas (desired 2)")}
}

test_scaling_needs_summary if {
	count(decide(service([replica("api-1")]))) == 0
	count(decide(with_sections([replica("api-1")], {"summary": {"replicas": 1}}))) == 0
}

test_scaling_needs_fresh_docker if {
	svc := with_sections([replica("api-1"), replica("api-2")], summary({}))
	count(decide_with(svc, stale("docker"))) == 0
	count(decide_with(svc, missing("docker"))) == 0
}
