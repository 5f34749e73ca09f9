package ares_test

import data.ares

am_ok := object.union(all_ok, {"alertmanager": {"ok": true, "age_s": 0.1, "error": ""}})

alert(name, service, severity, starts_at) := {
	"name": name,
	"service": service,
	"severity": severity,
	"labels": {"alertname": name, "service": service, "severity": severity},
	"annotations": null,
	"starts_at": starts_at,
}

since := "2026-12-04T10:00:00Z"

# decide_alerts evaluates the pack for the given services and alerts with the given sensors.
decide_alerts(services, alerts, sensors) := got if {
	got := ares.decisions with input as object.union(facts_with(services, sensors), {"alerts": alerts})
}

healthy := service([replica("api-1")])

alert_action(action, name) := service_action(action, sprintf("alert %v firing since %v", [name, since]))

test_default_mapping_restart if {
	got := decide_alerts({"api": healthy}, [alert("HighErrorRate", "api", "critical", since)], am_ok)
	got == {alert_action("restart", "HighErrorRate")}
	got == {{"action": "restart", "service": "api", "reason": "alert HighErrorRate firing since 2026-12-04T10:00:00Z"}}
}

test_default_mapping_notify if {
	got := decide_alerts({"api": healthy}, [alert("HighLatency", "api", "warning", since)], am_ok)
	got == {alert_action("notify", "HighLatency")}
}

test_unmapped_alert_does_nothing if {
	count(decide_alerts({"api": healthy}, [alert("DiskFull", "api", "critical", since)], am_ok)) == 0
}

test_alert_for_unknown_service_does_nothing if {
	count(decide_alerts({"api": healthy}, [alert("ServiceDown", "cart", "critical", since)], am_ok)) == 0
}

test_alert_needs_fresh_alertmanager if {
	alerts := [alert("ServiceDown", "api", "critical", since)]
	count(decide_alerts({"api": healthy}, alerts, all_ok)) == 0
	count(decide_alerts({"api": healthy}, alerts, object.union(am_ok, {"alertmanager": {"ok": false, "age_s": 30, "error": "x"}}))) == 0
}

test_alert_respects_cooldown if {
	svc := with_sections([replica("api-1")], {"history": {"actions_10m": 1, "seconds_since_last_action": 10}})
	count(decide_alerts({"api": svc}, [alert("ServiceDown", "api", "critical", since)], am_ok)) == 0
}

# An alert that began before a recent action (90 s ago, past the cooldown but under
# alert_settle_s) is the fixed problem's window draining: no decision. One that began after
# the action, or an action older than alert_settle_s, calls for the action again.
acted(seconds_ago, at) := with_sections([replica("api-1")], {"history": {"actions_10m": 1, "seconds_since_last_action": seconds_ago, "last_action_at": at}})

test_alert_from_before_a_recent_action_settles if {
	count(decide_alerts({"api": acted(90, "2026-12-04T10:05:00Z")}, [alert("HighErrorRate", "api", "critical", since)], am_ok)) == 0
}

test_alert_from_after_the_last_action_acts if {
	alerts := [alert("HighErrorRate", "api", "critical", "2026-12-04T10:06:00.5Z")]
	decide_alerts({"api": acted(90, "2026-12-04T10:06:00Z")}, alerts, am_ok) == {service_action("restart", "alert HighErrorRate firing since 2026-12-04T10:06:00.5Z")}
}

test_alert_still_firing_after_settling_acts_again if {
	decide_alerts({"api": acted(200, "2026-12-04T10:05:00Z")}, [alert("HighErrorRate", "api", "critical", since)], am_ok) == {alert_action("restart", "HighErrorRate")}
}

test_alert_null_alerts if {
	count(decide_alerts({"api": healthy}, null, am_ok)) == 0
}

# Several alerts mapping to restart: the smallest reason wins; the alert restart beats the
# anomaly restart and supersedes the replica restarts.
test_alert_restart_precedence if {
	svc := with_sections(
		[replica("api-1"), with_replica("api-2", {"state": "exited", "exit_code": 1})],
		{
			"anomaly": {"score": 0.9, "is_anomaly": true, "risk": "high"},
			"metrics": {"rps": 10, "error_rate": 0.2, "latency_p99_ms": 5},
		},
	)
	alerts := [
		alert("ServiceDown", "api", "critical", since),
		alert("HighErrorRate", "api", "critical", "2026-12-04T11:00:00Z"),
		alert("HighLatency", "api", "warning", since),
	]
	decide_alerts({"api": svc}, alerts, am_ok) == {service_action("restart", "alert HighErrorRate firing since 2026-12-04T11:00:00Z")}
}

# A replica recycle stays beside an alert restart.
test_alert_restart_keeps_recycle if {
	svc := service([replica("api-1"), with_replica("api-2", {"oom_killed": true, "state": "exited", "exit_code": 137})])
	decide_alerts({"api": svc}, [alert("ServiceDown", "api", "critical", since)], am_ok) == {
		alert_action("restart", "ServiceDown"),
		{"action": "recycle", "service": "api", "replica": "api-2", "reason": "OOMKilled"},
	}
}

custom := [
	{"alertname": "Busy", "action": "scale_out"},
	{"alertname": "Idle", "action": "scale_in"},
	{"alertname": "HighErrorRate", "action": "restart", "severity": "critical"},
	{"alertname": "HighErrorRate", "action": "notify", "severity": "warning"},
	{"alertname": "Weird", "action": "reboot"},
]

decide_custom(svc, alerts) := got if {
	got := ares.decisions with input as object.union(facts_with({"api": svc}, am_ok), {"alerts": alerts})
		with data.ares.config.alerts as custom
}

test_custom_mapping_scale_out_beats_cpu_and_notify if {
	svc := with_sections([replica("api-1"), replica("api-2")], {"summary": busy_summary})
	decide_custom(svc, [alert("Busy", "api", "", since), alert("HighErrorRate", "api", "warning", since)]) == {alert_action("scale_out", "Busy")}
}

test_custom_mapping_scale_in if {
	decide_custom(healthy, [alert("Idle", "api", "info", since)]) == {alert_action("scale_in", "Idle")}
}

test_custom_mapping_severity if {
	decide_custom(healthy, [alert("HighErrorRate", "api", "critical", since)]) == {alert_action("restart", "HighErrorRate")}
	decide_custom(healthy, [alert("HighErrorRate", "api", "warning", since)]) == {alert_action("notify", "HighErrorRate")}
	count(decide_custom(healthy, [alert("HighErrorRate", "api", "page", since)])) == 0
}

test_custom_mapping_unknown_action_ignored if {
	count(decide_custom(healthy, [alert("Weird", "api", "critical", since)])) == 0
}

# Alerts about other services do not leak into this one.
test_alerts_are_per_service if {
	got := decide_alerts({"api": healthy, "cart": service([replica("cart-1")])}, [alert("ServiceDown", "cart", "critical", since)], am_ok)
	got == {{"action": "restart", "service": "cart", "reason": sprintf("alert ServiceDown firing since %v", [since])}}
}
