package ares

# probe_restart_reason: restart the whole service when the HTTP probe failed probe_failures
# times in a row and Docker sees nothing to explain it.
#
# Mapping of probe failures to replicas: when some replica is not running or is unhealthy
# (the engine's summary.unhealthy_or_down definition), the failure is attributed to it and the
# replica rules handle it (restart of exited, dead and unhealthy replicas; Docker's own restart
# policy for restarting ones); the probe adds no decision. Only when every replica looks fine to
# Docker (or the docker sensor is stale, so replicas cannot be judged) does the pack decide one
# restart of the whole service, without replica.
probe_restart_reason(svc, c) := reason if {
	input.sensors.probe.ok == true
	svc.probe.consecutive_failures >= c.probe_failures
	not explained_by_docker(svc)
	reason := sprintf("probe failed %v consecutive times and every replica looks healthy", [svc.probe.consecutive_failures])
}

explained_by_docker(svc) if {
	input.sensors.docker.ok == true
	some r in svc.replicas
	looks_bad(r)
}

looks_bad(r) if r.state != "running"

looks_bad(r) if r.health == "unhealthy"
