package ares

# Alert rules: a firing Alertmanager alert about a service (input.alerts, alertmanager sensor)
# maps to a service-level action of that service through data.ares.config.alerts, a list of
#
#   {"alertname": NAME, "action": ACTION, "severity": SEVERITY}
#
# matched on the alert's name and, when the mapping has a severity, its severity. ACTION is one
# of restart, scale_out, scale_in, notify (service-level actions; a mapping to anything else
# never fires). The alert's service must be a key of input.services (decisions iterates them),
# and the alertmanager sensor must be fresh. The reason names the alert and when it started:
# "alert HighErrorRate firing since 2026-12-04T10:00:00Z"; where several alerts map to the same
# action for one service, the lexically smallest reason wins. The alert reasons sort before the
# other rules' ("alert ..." < "anomaly ..." < "mean CPU ..." < "probe ..."), so service_decision
# tries them first within each action.

# alert_reason is the reason for action on service name (svc, its thresholds c) from its firing
# alerts, if any.
alert_reason(name, svc, c, action) := min(reasons) if {
	alerted[name]
	reasons := {sprintf("alert %v firing since %v", [a.name, a.starts_at]) |
		some a in input.alerts
		a.service == name
		maps_to(a, action)
		not settling(a, svc, c)
	}
	count(reasons) > 0
}

# settling: alert a began before the service's last action, and that action is less than
# alert_settle_s old. Alerts over a rate window (an error rate over 1m, say) keep firing for a
# while after a fix has worked; acting on them again would repeat the fix. Once alert_settle_s
# has passed, an alert still firing calls for action again (and the governor's ladder moves on).
settling(a, svc, c) if {
	svc.history.seconds_since_last_action < c.alert_settle_s
	time.parse_rfc3339_ns(a.starts_at) < time.parse_rfc3339_ns(svc.history.last_action_at)
}

# alerted: the services some alert is about, when the alertmanager sensor is fresh. A complete
# rule, so OPA builds it once per evaluation and every link of every service only looks it up;
# with no alert about the service no reason set is built. (Each per-service evaluation still
# scans input.alerts once: about 0.5 us per alert and service when the alerts change.)
alerted := {a.service | some a in input.alerts} if input.sensors.alertmanager.ok == true

# maps_to: a mapping in data.ares.config.alerts sends alert a to action.
maps_to(a, action) if {
	some m in data.ares.config.alerts
	m.alertname == a.name
	m.action == action
	object.get(m, "severity", a.severity) == a.severity
}
