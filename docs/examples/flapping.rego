package ares

# Tell a human about a replica that keeps restarting.
decisions contains {
	"action": "notify", "service": name, "replica": r.name,
	"reason": sprintf("restarted %d times", [r.restart_count]),
} if {
	some name, svc in input.services
	not cooling(name, svc)
	some r in svc.replicas
	r.restart_count > 5
}
