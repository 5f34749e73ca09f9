package engine

import (
	"strings"
	"testing"
)

// drain is node-level: it names a node and no service or replica; no other action takes a node.
func TestValidateNodeLevelDecisions(t *testing.T) {
	for _, c := range []struct {
		d    Decision
		want string // "" valid, else a part of the error
	}{
		{Decision{Action: ActDrain, Node: "n1", Reason: "node down"}, ""},
		{Decision{Action: ActDrain, Reason: "node down"}, `missing field "node"`},
		{Decision{Action: ActDrain, Node: "n1"}, `missing field "reason"`},
		{Decision{Action: ActDrain, Node: "n1", Service: "api", Reason: "x"}, `node-level and takes no "service"`},
		{Decision{Action: ActDrain, Node: "n1", Replica: "api-1", Reason: "x"}, `node-level and takes no "service" or "replica"`},
		{Decision{Action: ActDrain, Service: "api", Reason: "x"}, `missing field "node"`},
		{Decision{Action: ActRestart, Service: "api", Node: "n1", Reason: "x"}, `takes no "node"`},
		{Decision{Action: ActNotify, Node: "n1", Reason: "x"}, `takes no "node"`},
	} {
		err := c.d.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.d, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error containing %q", c.d, err, c.want)
		}
	}
}

func TestNodeTargetAndScope(t *testing.T) {
	d := Decision{Action: ActDrain, Node: "n1", Reason: "x"}
	if d.Target() != "node/n1" || d.Scope() != "node/n1" {
		t.Errorf("target %q scope %q, want node/n1", d.Target(), d.Scope())
	}
	s := Decision{Action: ActRestart, Service: "api", Replica: "api-1", Reason: "x"}
	if s.Target() != "api/api-1" || s.Scope() != "api" {
		t.Errorf("target %q scope %q", s.Target(), s.Scope())
	}
	if Rank(ActDrain) >= Rank(ActNotify) || Rank(ActDrain) <= Rank(ActScaleIn) {
		t.Errorf("rank of drain %d: want between scale_in and notify", Rank(ActDrain))
	}
}

// A node is named by id, or by the hostname of exactly one node.
func TestFactsNode(t *testing.T) {
	f := &Facts{Nodes: map[string]Node{
		"id1": {Hostname: "a", Status: "ready", Availability: "active"},
		"id2": {Hostname: "b", Status: "down", Availability: "active"},
		"id3": {Hostname: "b", Status: "ready", Availability: "drain"},
	}}
	if id, n, ok := f.Node("id2"); !ok || id != "id2" || n.Status != "down" {
		t.Errorf("by id: %s %+v %v", id, n, ok)
	}
	if id, _, ok := f.Node("a"); !ok || id != "id1" {
		t.Errorf("by hostname: %s %v", id, ok)
	}
	if _, _, ok := f.Node("b"); ok {
		t.Error("a hostname of two nodes names none")
	}
	if _, _, ok := f.Node("zz"); ok {
		t.Error("unknown node found")
	}
	if !f.Nodes["id1"].Schedulable() || f.Nodes["id2"].Schedulable() || f.Nodes["id3"].Schedulable() {
		t.Error("schedulable: want only the ready, active node")
	}
}
