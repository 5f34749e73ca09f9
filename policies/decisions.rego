# ARES default policy pack.
#
# Entry point: data.ares.decisions, a set of
#   {"action": A, "service": NAME, "replica": REPLICA, "reason": TEXT}
# with A one of recycle, restart, scale_out, scale_in, notify; "replica" is present only for
# replica-level actions. The node-level action drain names "node" instead of "service"
# (nodes.rego). Thresholds live in data.json under data.ares.config.defaults and can be
# overridden per service under data.ares.config.services.<name> (guards.rego: conf, cfg).
#
# At most one decision per target. The target of a replica-level decision is the replica, the
# target of a service-level one (scale_out, scale_in, restart or notify without replica) is the
# service. Where several rules apply to one target, precedence picks one:
#
#   recycle > restart > scale_out > scale_in > drain > notify
#
# (the order of engine.KnownActions); between rules of the same action the smaller reason wins,
# so the result is deterministic. A service-level restart restarts every replica, so it also
# supersedes the replica-level restarts of that service (replica-level recycles stay).
#
# Precedence is structural: each target gets one function with an else chain, its links in
# precedence order and, within an action, in the order of their reasons:
#
#   service_decision (this file): restart (alert, else anomaly, else probe), else scale_out
#                                 (alert, else CPU), else scale_in (alert, else CPU), else
#                                 notify (alert, else anomaly)
#   replica_decision (replicas.rego): recycle (OOM kill, else memory), else restart (exit or
#                                 health, the smaller reason; none under a service restart)
#
# The rule files hold the conditions and reasons: replicas.rego, probe.rego, scaling.rego,
# anomaly.rego, alerts.rego. Guards (guards.rego, and the decisions rules below): no decision
# for a service under cooldown, and no rule fires on a section whose sensor is stale (ok=false
# or missing in input.sensors).
#
# Performance: the pack touches input.services only in decisions below, with a variable key;
# everything else is a function of the one service being considered, so evaluation is linear
# in the number of services and the engine may evaluate (and cache) per service. The paths that
# decide nothing build no sets, call no sprintf and try cheap integer and string tests before
# float comparisons.
package ares

# Service-level decisions: at most one per service.
decisions contains decision if {
	some name, svc in input.services
	c := conf(name)
	not cooled(svc, c)
	decision := service_decision(name, svc, c)
}

# Replica-level decisions: at most one per replica, from the docker sensor's section.
decisions contains decision if {
	some name, svc in input.services
	input.sensors.docker.ok == true
	c := conf(name)
	not cooled(svc, c)
	some r in svc.replicas
	decision := replica_decision(name, svc, r, c)
}

# service_decision is the service-level decision of highest precedence for the service, if any.
# Within an action the links follow their reasons' order: "alert ..." < "anomaly ..." <
# "mean CPU ..." < "probe ...". Each link first tests, inline, a cheap condition that its
# reason function requires anyway (a prefilter: it changes no result); most services fail
# every link there, which spares a function call per link (about a tenth of the pack's time).
service_decision(name, svc, c) := {"action": "restart", "service": name, "reason": reason} if {
	alerted[name]
	reason := alert_reason(name, svc, c, "restart")
} else := {"action": "restart", "service": name, "reason": reason} if {
	svc.anomaly.risk == c.anomaly_risk
	reason := anomaly_restart_reason(svc, c)
} else := {"action": "restart", "service": name, "reason": reason} if {
	svc.probe.consecutive_failures >= c.probe_failures
	reason := probe_restart_reason(svc, c)
} else := {"action": "scale_out", "service": name, "reason": reason} if {
	alerted[name]
	reason := alert_reason(name, svc, c, "scale_out")
} else := {"action": "scale_out", "service": name, "reason": reason} if {
	svc.summary.replicas < c.max_replicas
	reason := scale_out_reason(svc, c)
} else := {"action": "scale_in", "service": name, "reason": reason} if {
	alerted[name]
	reason := alert_reason(name, svc, c, "scale_in")
} else := {"action": "scale_in", "service": name, "reason": reason} if {
	svc.summary.replicas > svc.desired_replicas
	reason := scale_in_reason(svc, c)
} else := {"action": "notify", "service": name, "reason": reason} if {
	alerted[name]
	reason := alert_reason(name, svc, c, "notify")
} else := {"action": "notify", "service": name, "reason": reason} if {
	svc.anomaly.risk == c.anomaly_risk
	reason := anomaly_notify_reason(svc, c)
}

# restarts_service: the service gets a service-level restart, which supersedes the
# replica-level restarts of its replicas. Same prefilters as service_decision.
restarts_service(name, svc, c) if {
	alerted[name]
	alert_reason(name, svc, c, "restart")
}

restarts_service(_, svc, c) if {
	svc.anomaly.risk == c.anomaly_risk
	anomaly_restart_reason(svc, c)
}

restarts_service(_, svc, c) if {
	svc.probe.consecutive_failures >= c.probe_failures
	probe_restart_reason(svc, c)
}

# num spells a number for reasons (never for a comparison): rounded to one decimal without a
# trailing ".0" ("91.2", "46") when it is not an integer, else as is. sprintf rounds through
# float64, which costs a tenth of round(x * 10) / 10 (three math/big operations in OPA).
num(x) := trim_suffix(sprintf("%.1f", [x]), ".0") if {
	contains(sprintf("%v", [x]), ".")
} else := x
