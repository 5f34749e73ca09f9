# A six-rule pack shaped like the default one, for tests and benchmarks. Every rule reaches the
# services only through `some name, svc in input.services`, so the set evaluates per service.
package ares

cfg := data.ares.config

# Act on replica state only while the docker sensor is fresh.
docker_ok if input.sensors.docker.ok

# Cooldown: ARES acted on the service recently (linear: a function of the service, no
# partial-set lookups).
cooling(svc) if svc.history.seconds_since_last_action < cfg.cooldown_s

# 1. restart replicas that exited or died.
decisions contains d if {
	docker_ok
	some name, svc in input.services
	not cooling(svc)
	some r in svc.replicas
	r.state in {"exited", "dead"}
	not r.oom_killed
	d := {"action": "restart", "service": name, "replica": r.name, "reason": sprintf("replica %s is %s (exit %d)", [r.name, r.state, r.exit_code])}
}

# 2. restart running replicas that are unhealthy or whose service fails its probe.
decisions contains d if {
	docker_ok
	some name, svc in input.services
	not cooling(svc)
	some r in svc.replicas
	r.state == "running"
	failing(svc, r)
	d := {"action": "restart", "service": name, "replica": r.name, "reason": "replica is unhealthy or the probe keeps failing"}
}

failing(_, r) if r.health == "unhealthy"

failing(svc, _) if svc.probe.consecutive_failures >= cfg.probe_failures

# 3. recycle replicas that leak memory or were OOM-killed.
decisions contains d if {
	docker_ok
	some name, svc in input.services
	not cooling(svc)
	some r in svc.replicas
	leaking(r)
	d := {"action": "recycle", "service": name, "replica": r.name, "reason": sprintf("memory at %v%%, growing, or OOM-killed", [r.mem_percent])}
}

leaking(r) if {
	r.mem_percent >= cfg.mem_percent
	r.trend.mem_slope_bytes_per_s > 0
}

leaking(r) if r.oom_killed

# 4. scale out hot services.
decisions contains d if {
	some name, svc in input.services
	not cooling(svc)
	svc.summary.mean_cpu_percent >= cfg.cpu_high
	svc.summary.replicas < cfg.max_replicas
	d := {"action": "scale_out", "service": name, "reason": sprintf("mean cpu %v%%", [svc.summary.mean_cpu_percent])}
}

# 5. scale in cold services that ARES scaled out before.
decisions contains d if {
	some name, svc in input.services
	not cooling(svc)
	svc.summary.mean_cpu_percent <= cfg.cpu_low
	svc.summary.scaled_replicas > 0
	d := {"action": "scale_in", "service": name, "reason": "cpu is low and ARES added replicas"}
}

# 6. notify on a high-risk anomaly with errors.
decisions contains d if {
	input.sensors.anomaly.ok
	some name, svc in input.services
	svc.anomaly.risk == "high"
	svc.metrics.error_rate >= cfg.error_rate
	d := {"action": "notify", "service": name, "reason": sprintf("anomaly score %v, error rate %v", [svc.anomaly.score, svc.metrics.error_rate])}
}
