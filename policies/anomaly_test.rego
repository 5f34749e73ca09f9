package ares_test

high_risk := {"anomaly": {"score": 0.91, "is_anomaly": true, "risk": "high"}}

errors(rate) := {"metrics": {"rps": 50, "error_rate": rate, "latency_p99_ms": 300}}

anomaly_restart(rate) := service_action("restart", sprintf("anomaly risk high (score 0.91) and error rate %v >= 0.05", [rate]))

anomaly_notify := service_action("notify", "anomaly risk high (score 0.91)")

test_high_risk_and_errors_restarts_service if {
	svc := with_sections([replica("api-1")], object.union(high_risk, errors(0.07)))
	decide(svc) == {anomaly_restart(0.07)}
}

test_high_risk_and_errors_at_threshold_restarts_service if {
	svc := with_sections([replica("api-1")], object.union(high_risk, errors(0.05)))
	decide(svc) == {anomaly_restart(0.05)}
}

test_high_risk_low_errors_notifies if {
	svc := with_sections([replica("api-1")], object.union(high_risk, errors(0.049)))
	decide(svc) == {anomaly_notify}
}

test_high_risk_without_metrics_notifies if {
	decide(with_sections([replica("api-1")], high_risk)) == {anomaly_notify}
}

test_high_risk_with_stale_metrics_notifies if {
	svc := with_sections([replica("api-1")], object.union(high_risk, errors(0.5)))
	decide_with(svc, stale("metrics")) == {anomaly_notify}
	decide_with(svc, missing("metrics")) == {anomaly_notify}
}

test_lower_risk_does_nothing if {
	every risk in ["low", "medium"] {
		svc := with_sections([replica("api-1")], object.union({"anomaly": {"score": 0.6, "is_anomaly": true, "risk": risk}}, errors(0.5)))
		count(decide(svc)) == 0
	}
}

test_anomaly_rules_need_fresh_anomaly if {
	svc := with_sections([replica("api-1")], object.union(high_risk, errors(0.5)))
	count(decide_with(svc, stale("anomaly"))) == 0
	count(decide_with(svc, missing("anomaly"))) == 0
}

test_anomaly_absent if {
	count(decide(with_sections([replica("api-1")], errors(0.9)))) == 0
	count(decide(with_sections([replica("api-1")], {"anomaly": {"score": 1}}))) == 0
}

test_anomaly_without_score if {
	svc := with_sections([replica("api-1")], {"anomaly": {"risk": "high"}})
	decide(svc) == {service_action("notify", "anomaly risk high (score ?)")}
}

test_error_rate_override if {
	svc := with_sections([replica("api-1")], object.union(high_risk, errors(0.02)))
	got := decide(svc) with data.ares.config.services.api.restart_error_rate as 0.01
	got == {service_action("restart", "anomaly risk high (score 0.91) and error rate 0.02 >= 0.01")}
}
