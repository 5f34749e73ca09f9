package policy

import (
	"strings"
	"testing"
)

func TestPartitionAnalysis(t *testing.T) {
	const head = "package ares\n\n"
	tests := []struct {
		name        string
		pol         string
		partitioned bool
		clock       bool
		reason      string // substring of PartitionReason when not partitioned
	}{
		{"per-service safe", head + `decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.state == "exited"
	not cooling(svc)
	d := {"action": "restart", "service": name, "replica": r.name, "reason": "x"}
}
cooling(svc) if svc.history.seconds_since_last_action < 60
`, true, false, ""},
		{"helper set keyed by service", head + `unhealthy contains name if {
	some name, svc in input.services
	svc.probe.consecutive_failures > 3
}
decisions contains d if {
	some name, _ in input.services
	unhealthy[name]
	not quiet[name]
	d := {"action": "notify", "service": name, "reason": "x"}
}
quiet contains name if input.services[name].history.actions_10m > 3
`, true, false, ""},
		{"alerts and sensors are shared, fine", head + `decisions contains d if {
	input.sensors.docker.ok
	some a in input.alerts
	d := {"action": "notify", "service": a.service, "reason": a.name}
}
`, true, false, ""},
		{"bare input.services", head + `decisions contains d if {
	n := count(input.services)
	n > 10
	d := {"action": "notify", "service": "all", "reason": "many"}
}
`, false, false, "reads input.services as a whole"},
		{"object.keys(input.services)", head + `decisions contains d if {
	some k in object.keys(input.services)
	d := {"action": "notify", "service": k, "reason": "x"}
}
`, false, false, "as a whole"},
		{"constant key", head + `decisions contains d if {
	input.services["db"].probe.ok == false
	some name, _ in input.services
	d := {"action": "restart", "service": name, "reason": "db down"}
}
`, false, false, "constant key"},
		{"two variables", head + `decisions contains d if {
	some a, sa in input.services
	some b, sb in input.services
	a != b
	sa.summary.mean_cpu_percent > sb.summary.mean_cpu_percent
	d := {"action": "scale_out", "service": a, "reason": b}
}
`, false, false, "several keys"},
		{"bare input", head + `decisions contains d if {
	x := input
	some name, _ in x.services
	d := {"action": "notify", "service": name, "reason": "x"}
}
`, false, false, "input as a whole"},
		{"aggregate in comprehension", head + `decisions contains d if {
	some name, _ in input.services
	hot := [n | some n, s in input.services; s.summary.mean_cpu_percent > 80]
	count(hot) > 3
	d := {"action": "scale_out", "service": name, "reason": "x"}
}
`, false, false, "aggregates or quantifies"},
		{"negation keyed by the bound service", head + `decisions contains d if {
	some name, _ in input.services
	not input.services[name].probe
	d := {"action": "notify", "service": name, "reason": "no probe"}
}
`, true, false, ""},
		{"every over services", head + `decisions contains {"action": "notify", "service": "x", "reason": "all fine"} if {
	every s in input.services { s.probe.ok }
}
`, false, false, "as a whole"},
		{"aggregate of a service-derived rule", head + `hot contains name if {
	some name, s in input.services
	s.summary.mean_cpu_percent > 80
}
decisions contains {"action": "notify", "service": "x", "reason": "many hot"} if count(hot) > 3
`, false, false, "data.ares.hot as a whole"},
		{"input.time", head + `decisions contains d if {
	some name, svc in input.services
	time.parse_rfc3339_ns(input.time) > 0
	d := {"action": "notify", "service": name, "reason": "x"}
}
`, true, true, ""},
		{"time.now_ns", head + `decisions contains d if {
	some name, svc in input.services
	time.now_ns() > 0
	d := {"action": "notify", "service": name, "reason": "x"}
}
`, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustLoad(t, policyDir(t, map[string]string{"p.rego": tt.pol}), Options{Lax: true})
			if s.Partitioned() != tt.partitioned || s.plan.clock != tt.clock {
				t.Fatalf("partitioned=%v clock=%v (reason %q), want %v and %v", s.Partitioned(), s.plan.clock, s.PartitionReason(), tt.partitioned, tt.clock)
			}
			if !tt.partitioned && !strings.Contains(s.PartitionReason(), tt.reason) {
				t.Errorf("reason %q does not contain %q", s.PartitionReason(), tt.reason)
			}
			if !tt.partitioned && !strings.Contains(s.PartitionReason(), "p.rego:") {
				t.Errorf("reason %q does not name the file", s.PartitionReason())
			}
		})
	}
	t.Run("forced", func(t *testing.T) {
		dir := policyDir(t, map[string]string{"p.rego": tests[0].pol})
		if mustLoad(t, dir, Options{Partition: PartitionWhole}).Partitioned() {
			t.Error("Partition: whole is partitioned")
		}
		dir = policyDir(t, map[string]string{"p.rego": tests[3].pol})
		if !mustLoad(t, dir, Options{Partition: PartitionService}).Partitioned() {
			t.Error("Partition: service is not partitioned")
		}
	})
}
