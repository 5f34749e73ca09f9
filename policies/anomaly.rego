package ares

# Anomaly rules: a service-level restart when the anomaly engine rates the service at
# anomaly_risk and the error rate is at or above restart_error_rate (both sensors fresh), and a
# notify when the risk alone is reached; the restart wins by precedence (service_decision).

anomaly_restart_reason(svc, c) := reason if {
	input.sensors.anomaly.ok == true
	svc.anomaly.risk == c.anomaly_risk
	input.sensors.metrics.ok == true
	svc.metrics.error_rate >= c.restart_error_rate
	reason := sprintf(
		"anomaly risk %v (score %v) and error rate %v >= %v",
		[svc.anomaly.risk, object.get(svc.anomaly, "score", "?"), svc.metrics.error_rate, c.restart_error_rate],
	)
}

anomaly_notify_reason(svc, c) := reason if {
	input.sensors.anomaly.ok == true
	svc.anomaly.risk == c.anomaly_risk
	reason := sprintf("anomaly risk %v (score %v)", [svc.anomaly.risk, object.get(svc.anomaly, "score", "?")])
}
