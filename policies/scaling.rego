package ares

# Scaling rules, from the engine-derived summary (docker sensor). mean_cpu_percent is the mean
# over running replicas, computed in Go.

# scale_out_reason: busy, mean CPU at or above scale_out_cpu_percent and fewer replicas than
# max_replicas.
scale_out_reason(svc, c) := reason if {
	input.sensors.docker.ok == true
	s := svc.summary
	s.replicas < c.max_replicas
	s.mean_cpu_percent >= c.scale_out_cpu_percent
	reason := sprintf(
		"mean CPU %v%% >= %v%% over %v running replicas (max %v)",
		[num(s.mean_cpu_percent), c.scale_out_cpu_percent, s.running, c.max_replicas],
	)
}

# scale_in_reason: idle, mean CPU below scale_in_cpu_percent and more replicas than
# desired_replicas. Only when every replica runs and none is unhealthy: the mean over zero
# running replicas is 0, and a service with a broken replica needs a restart, not fewer
# replicas.
scale_in_reason(svc, c) := reason if {
	input.sensors.docker.ok == true
	s := svc.summary
	s.replicas > svc.desired_replicas
	s.running > 0
	s.unhealthy_or_down == 0
	s.mean_cpu_percent < c.scale_in_cpu_percent
	reason := sprintf(
		"mean CPU %v%% < %v%% with %v replicas (desired %v)",
		[num(s.mean_cpu_percent), c.scale_in_cpu_percent, s.replicas, svc.desired_replicas],
	)
}
