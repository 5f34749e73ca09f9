package ares

# anomaly_candidates proposes a service-level restart when the anomaly engine rates the service
# at anomaly_risk and the error rate is at or above restart_error_rate (both sensors fresh), and a
# notify when the risk alone is reached; precedence lets the restart win over the notify.
anomaly_candidates(name, svc) := anomaly_restart(name, svc) | anomaly_notify(name, svc)

anomaly_restart(name, svc) := {c |
	sensor_ok("anomaly")
	sensor_ok("metrics")
	svc.anomaly.risk == cfg(name, "anomaly_risk")
	svc.metrics.error_rate >= cfg(name, "restart_error_rate")
	c := service_candidate("restart", name, sprintf(
		"anomaly risk %v (score %v) and error rate %v >= %v",
		[svc.anomaly.risk, object.get(svc.anomaly, "score", "?"), svc.metrics.error_rate, cfg(name, "restart_error_rate")],
	))
}

anomaly_notify(name, svc) := {c |
	sensor_ok("anomaly")
	svc.anomaly.risk == cfg(name, "anomaly_risk")
	c := service_candidate("notify", name, sprintf(
		"anomaly risk %v (score %v)",
		[svc.anomaly.risk, object.get(svc.anomaly, "score", "?")],
	))
}
