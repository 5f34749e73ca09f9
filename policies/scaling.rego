package ares

# scaling_candidates proposes one scale_out or scale_in for a service from the engine-derived
# summary (docker sensor). mean_cpu_percent is the mean over running replicas, computed in Go.
scaling_candidates(name, svc) := scale_out(name, svc) | scale_in(name, svc)

# Busy: mean CPU at or above scale_out_cpu_percent and fewer replicas than max_replicas.
scale_out(name, svc) := {c |
	sensor_ok("docker")
	s := svc.summary
	s.mean_cpu_percent >= cfg(name, "scale_out_cpu_percent")
	s.replicas < cfg(name, "max_replicas")
	c := service_candidate("scale_out", name, sprintf(
		"mean CPU %v%% >= %v%% over %v running replicas (max %v)",
		[num(s.mean_cpu_percent), cfg(name, "scale_out_cpu_percent"), s.running, cfg(name, "max_replicas")],
	))
}

# Idle: mean CPU below scale_in_cpu_percent and more replicas than desired_replicas. Only when
# every replica runs and none is unhealthy: the mean over zero running replicas is 0, and a
# service with a broken replica needs a restart, not fewer replicas.
scale_in(name, svc) := {c |
	sensor_ok("docker")
	s := svc.summary
	s.running > 0
	s.unhealthy_or_down == 0
	s.mean_cpu_percent < cfg(name, "scale_in_cpu_percent")
	s.replicas > svc.desired_replicas
	c := service_candidate("scale_in", name, sprintf(
		"mean CPU %v%% < %v%% with %v replicas (desired %v)",
		[num(s.mean_cpu_percent), cfg(name, "scale_in_cpu_percent"), s.replicas, svc.desired_replicas],
	))
}
