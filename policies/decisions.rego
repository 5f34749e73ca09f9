# ARES default policy pack.
#
# Entry point: data.ares.decisions, a set of
#   {"action": A, "service": NAME, "replica": REPLICA, "reason": TEXT}
# with A one of recycle, restart, scale_out, scale_in, notify; "replica" is present only for
# replica-level actions. Thresholds live in data.json under data.ares.config.defaults and can be
# overridden per service under data.ares.config.services.<name> (guards.rego, cfg).
#
# Each rule file proposes candidates for one service (replicas.rego, probe.rego, scaling.rego,
# anomaly.rego); this file keeps at most one decision per target. The target of a replica-level
# candidate is the replica, the target of a service-level one (scale_out, scale_in, restart or
# notify without replica) is the service. Where candidates share a target, precedence picks one:
#
#   recycle > restart > scale_out > scale_in > notify
#
# (the order of engine.KnownActions); between candidates of the same action the smaller reason
# wins, so the result is deterministic. A service-level restart restarts every replica, so it also
# supersedes the replica-level restarts of that service (replica-level recycles stay).
#
# Guards (guards.rego): no decision for a service under cooldown, and no candidate from a section
# whose sensor is stale (ok=false or missing in input.sensors).
#
# Performance: the pack touches input.services only in decisions below, once, with a variable
# key; every other rule is a function over the one service being considered, so evaluation is
# linear in the number of services and the engine may evaluate (and cache) per service.
package ares

# Precedence of actions, lower wins (engine.Rank).
rank := {
	"recycle": 0,
	"restart": 1,
	"scale_out": 2,
	"scale_in": 3,
	"notify": 4,
}

# decisions is the pack's result: at most one decision per target.
decisions contains decision if {
	some name, svc in input.services
	not cooling(name, svc)
	some decision in service_decisions(name, svc)
}

# service_decisions keeps the winning candidates of one service.
service_decisions(name, svc) := {object.remove(c, {"rank", "target"}) |
	some c in cands
	not beaten(c, cands)
	not superseded(c, cands)
} if {
	cands := candidates(name, svc)
}

# candidates gathers what every rule file proposes for one service.
candidates(name, svc) := ((replica_candidates(name, svc) | probe_candidates(name, svc)) | scaling_candidates(name, svc)) | anomaly_candidates(name, svc)

# beaten: another candidate for the same target has higher precedence, or the same action and a
# smaller reason.
beaten(c, cands) if {
	some other in cands
	other.target == c.target
	other.rank < c.rank
}

beaten(c, cands) if {
	some other in cands
	other.target == c.target
	other.rank == c.rank
	other.reason < c.reason
}

# superseded: a service-level restart covers the replica-level restarts of the same service.
superseded(c, cands) if {
	c.action == "restart"
	c.target != ""
	some other in cands
	other.action == "restart"
	other.target == ""
}

# replica_candidate is a candidate acting on one replica.
replica_candidate(action, name, replica, reason) := {
	"action": action,
	"service": name,
	"replica": replica,
	"reason": reason,
	"rank": rank[action],
	"target": replica,
}

# service_candidate is a candidate acting on the whole service.
service_candidate(action, name, reason) := {
	"action": action,
	"service": name,
	"reason": reason,
	"rank": rank[action],
	"target": "",
}

# num rounds a number to one decimal, for reasons only (never for a comparison).
num(x) := round(x * 10) / 10
