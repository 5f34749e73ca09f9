package ares

# replica_candidates proposes restart and recycle for the replicas of one service, from the
# docker sensor's section.
replica_candidates(name, svc) := (down_restarts(name, svc) | unhealthy_restarts(name, svc)) | recycles(name, svc)

# A replica exited or dead (restart_states): restart it.
down_restarts(name, svc) := {replica_candidate("restart", name, r.name, exit_reason(r)) |
	sensor_ok("docker")
	some r in svc.replicas
	r.state in cfg(name, "restart_states")
}

exit_reason(r) := sprintf("%s with code %v (OOMKilled)", [r.state, object.get(r, "exit_code", "?")]) if {
	r.oom_killed == true
} else := sprintf("%s with code %v", [r.state, object.get(r, "exit_code", "?")])

# A replica whose Docker health check reports unhealthy: restart it.
unhealthy_restarts(name, svc) := {replica_candidate("restart", name, r.name, "health check unhealthy") |
	sensor_ok("docker")
	some r in svc.replicas
	r.health == "unhealthy"
}

# A replica killed by the OOM killer, or near its memory limit and still growing: recycle it
# (replace the container) rather than restart it in place.
recycles(name, svc) := {replica_candidate("recycle", name, r.name, reason) |
	sensor_ok("docker")
	some r in svc.replicas
	some reason in recycle_reasons(name, r)
}

recycle_reasons(name, r) := {"OOMKilled" | r.oom_killed == true} | {reason |
	r.mem_percent >= cfg(name, "recycle_mem_percent")
	r.trend.mem_slope_bytes_per_s > 0
	reason := sprintf("memory at %v%% of limit and growing (%v B/s)", [num(r.mem_percent), num(r.trend.mem_slope_bytes_per_s)])
}
