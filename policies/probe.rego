package ares

# probe_candidates proposes a service-level restart when the HTTP probe failed probe_failures
# times in a row and Docker sees nothing to explain it.
#
# Mapping of probe failures to replicas: when some replica is not running or is unhealthy
# (the engine's summary.unhealthy_or_down definition), the failure is attributed to it and the
# replica rules handle it (restart of exited, dead and unhealthy replicas; Docker's own restart
# policy for restarting ones); the probe adds no decision. Only when every replica looks fine to
# Docker (or the docker sensor is stale, so replicas cannot be judged) does the pack decide one
# restart of the whole service, without replica.
probe_candidates(name, svc) := {c |
	sensor_ok("probe")
	svc.probe.consecutive_failures >= cfg(name, "probe_failures")
	not explained_by_docker(svc)
	c := service_candidate(
		"restart", name,
		sprintf("probe failed %v consecutive times and every replica looks healthy", [svc.probe.consecutive_failures]),
	)
}

explained_by_docker(svc) if {
	sensor_ok("docker")
	some r in svc.replicas
	looks_bad(r)
}

looks_bad(r) if r.state != "running"

looks_bad(r) if r.health == "unhealthy"
