package governor

import (
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

func swarmFacts(nodes map[string]engine.Node) *engine.Facts {
	f := engine.NewFacts(1, time.Unix(0, 0))
	f.Nodes = nodes
	return f
}

func drain(node string) engine.Decision {
	return engine.Decision{Action: engine.ActDrain, Node: node, Reason: "node is down"}
}

var (
	ready   = engine.Node{Hostname: "a", Status: "ready", Availability: "active"}
	down    = engine.Node{Hostname: "b", Status: "down", Availability: "active"}
	drained = engine.Node{Hostname: "c", Status: "ready", Availability: "drain"}
)

// The governor never drains the last ready, active node: on a single-node swarm every drain is
// refused, with the reason; with another node to take the tasks, the drain passes.
func TestDrainNeverTheLastActiveNode(t *testing.T) {
	g := New(Options{})
	now := time.Unix(1000, 0)
	for name, f := range map[string]*engine.Facts{
		"single node":             swarmFacts(map[string]engine.Node{"n1": ready}),
		"the other one is down":   swarmFacts(map[string]engine.Node{"n1": ready, "n2": down}),
		"the other one drained":   swarmFacts(map[string]engine.Node{"n1": ready, "n3": drained}),
		"by hostname, single one": swarmFacts(map[string]engine.Node{"n1": ready}),
	} {
		d := drain("n1")
		if strings.HasPrefix(name, "by hostname") {
			d = drain("a")
		}
		as := g.Admit([]engine.Decision{d}, f, now, false)
		if len(as) != 1 || as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "would leave no ready, active node") {
			t.Errorf("%s: %+v, want suppressed as the last active node", name, as)
		}
	}
	as := g.Admit([]engine.Decision{drain("n2")}, swarmFacts(map[string]engine.Node{"n1": ready, "n2": down}), now, false)
	if as[0].Verdict != engine.VerdictAdmit {
		t.Errorf("drain of a down node beside a ready one: %+v, want admitted", as[0])
	}
}

// Two failing nodes in one tick: at most max_unavailable drains, and the second would not
// leave the first's tasks a node either.
func TestDrainBlastRadiusPerTick(t *testing.T) {
	g := New(Options{MaxUnavailable: 1})
	f := swarmFacts(map[string]engine.Node{"n1": ready, "n2": down, "n3": down, "n4": ready})
	as := g.Admit([]engine.Decision{drain("n2"), drain("n3")}, f, time.Unix(1000, 0), false)
	if got := kinds(as); got != "admit,suppress" || !strings.Contains(as[1].Why, "already draining 1 node(s) this tick") {
		t.Errorf("verdicts %v (%+v), want the second held back by the blast radius", got, as)
	}
	g = New(Options{MaxUnavailable: 2})
	f = swarmFacts(map[string]engine.Node{"n1": ready, "n2": ready})
	as = g.Admit([]engine.Decision{drain("n1"), drain("n2")}, f, time.Unix(1000, 0), false)
	if got := kinds(as); got != "admit,suppress" || !strings.Contains(as[1].Why, "no ready, active node") {
		t.Errorf("verdicts %v (%+v), want the second held back: nothing would be left", got, as)
	}
}

// Drains need nodes in the facts (runtime: swarm), are not repeated on a drained node, and
// take the node's own cooldown and budget, apart from every service's.
func TestDrainTargetsAndCooldown(t *testing.T) {
	g := New(Options{Cooldown: time.Minute})
	now := time.Unix(1000, 0)
	single := engine.NewFacts(1, now)
	if as := g.Admit([]engine.Decision{drain("n1")}, single, now, false); as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "drain needs runtime: swarm") {
		t.Errorf("no nodes: %+v", as[0])
	}
	f := swarmFacts(map[string]engine.Node{"n1": ready, "n2": down, "n3": drained})
	if as := g.Admit([]engine.Decision{drain("n3")}, f, now, false); as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "drained already") {
		t.Errorf("drained node: %+v", as[0])
	}
	if as := g.Admit([]engine.Decision{drain("nope")}, f, now, false); as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "not in the facts") {
		t.Errorf("unknown node: %+v", as[0])
	}
	as := g.Admit([]engine.Decision{drain("n2")}, f, now, false)
	if as[0].Verdict != engine.VerdictAdmit {
		t.Fatalf("drain n2: %+v", as[0])
	}
	g.Done(as[0], now)
	later := now.Add(10 * time.Second)
	as = g.Admit([]engine.Decision{drain("n2"), restart("web-1")}, mergeFacts(f, facts("web-1:exited", "web-2:running")), later, false)
	if as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "cooldown: last action on node/n2") {
		t.Errorf("drain within the node's cooldown: %+v", as[0])
	}
	if as[1].Verdict != engine.VerdictAdmit {
		t.Errorf("a service's restart is not held back by a node's cooldown: %+v", as[1])
	}
}

// A drain that the policy data marks approval: required waits for a person; approved, it
// passes on its next decision. The global pause holds it back like any action, and a spent
// node budget never pauses automation (no escalation without a service).
func TestDrainApprovalAndNoEscalation(t *testing.T) {
	g := New(Options{Cooldown: time.Second, Budget: 1, BudgetWindow: time.Hour})
	g.SetRules(engine.Rules{Approval: map[string]map[string]bool{"": {engine.ActDrain: true}}})
	now := time.Unix(1000, 0)
	f := swarmFacts(map[string]engine.Node{"n1": ready, "n2": down})
	as := g.Admit([]engine.Decision{drain("n2")}, f, now, false)
	if as[0].Verdict != engine.VerdictSuppress || as[0].Approval == "" || !strings.Contains(as[0].Why, "awaiting approval") {
		t.Fatalf("drain without approval: %+v", as[0])
	}
	if _, err := g.Decide(as[0].Approval, true, "alice", "node is gone", now); err != nil {
		t.Fatal(err)
	}
	g.Pause("", time.Time{})
	if as := g.Admit([]engine.Decision{drain("n2")}, f, now, false); as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "paused") {
		t.Errorf("under the global pause: %+v", as[0])
	}
	g.Resume("")
	as = g.Admit([]engine.Decision{drain("n2")}, f, now, false)
	if as[0].Verdict != engine.VerdictAdmit {
		t.Fatalf("approved drain: %+v", as[0])
	}
	g.Done(as[0], now)
	as = g.Admit([]engine.Decision{drain("n2")}, f, now.Add(time.Minute), false)
	if len(as) != 1 || as[0].Verdict != engine.VerdictSuppress || !strings.HasPrefix(as[0].Why, "budget:") {
		t.Errorf("drain past the node's budget: %+v, want one suppressed action and no escalation", as)
	}
	if p := g.Paused(now.Add(time.Minute)); len(p) != 0 {
		t.Errorf("pauses %v after a node's budget was spent, want none", p)
	}
}

func mergeFacts(nodes, services *engine.Facts) *engine.Facts {
	services.Nodes = nodes.Nodes
	return services
}

func kinds(as []engine.Action) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Verdict
	}
	return strings.Join(out, ",")
}
