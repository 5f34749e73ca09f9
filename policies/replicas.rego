package ares

# replica_decision is the replica-level decision of highest precedence for replica r of service
# name, if any, from the docker sensor's section (decisions checks that it is fresh):
#
#   recycle (replace the container rather than restart it in place) when the OOM killer ended
#   it ("OOMKilled"), else when it is at recycle_mem_percent of its memory limit or more and
#   still growing ("memory ...", sorts after "OOMKilled");
#   else restart when it is in one of restart_states (exited, dead) or its Docker health check
#   reports unhealthy, with the smaller of the two reasons when both apply, unless the service
#   gets a service-level restart; a replica a person stopped (stopped_by_operator) is not
#   restarted: operators win.
replica_decision(name, svc, r, c) := {"action": "recycle", "service": name, "replica": r.name, "reason": "OOMKilled"} if {
	r.oom_killed == true
} else := {"action": "recycle", "service": name, "replica": r.name, "reason": reason} if {
	r.mem_percent >= c.recycle_mem_percent
	r.trend.mem_slope_bytes_per_s > 0
	reason := sprintf("memory at %v%% of limit and growing (%v B/s)", [num(r.mem_percent), num(r.trend.mem_slope_bytes_per_s)])
} else := {"action": "restart", "service": name, "replica": r.name, "reason": reason} if {
	r.state in c.restart_states
	not r.stopped_by_operator
	reason := exit_reason(r)
	not unhealthy_first(r, reason)
	not restarts_service(name, svc, c)
} else := {"action": "restart", "service": name, "replica": r.name, "reason": "health check unhealthy"} if {
	r.health == "unhealthy"
	not r.stopped_by_operator
	not restarts_service(name, svc, c)
}

# unhealthy_first: the unhealthy reason sorts before the exit reason (never with the default
# restart_states, whose reasons start with "dead" or "exited").
unhealthy_first(r, exit) if {
	r.health == "unhealthy"
	"health check unhealthy" < exit
}

exit_reason(r) := sprintf("%s with code %v (OOMKilled)", [r.state, object.get(r, "exit_code", "?")]) if {
	r.oom_killed == true
} else := sprintf("%s with code %v", [r.state, object.get(r, "exit_code", "?")])
