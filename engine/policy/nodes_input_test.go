package policy

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Every field of a node changes the global cache key, so a node that goes down or is drained
// is never judged on stale decisions.
func TestGlobalKeyCoversEveryNodeField(t *testing.T) {
	var n engine.Node
	fill(reflect.ValueOf(&n).Elem(), 1)
	f := &engine.Facts{Version: 1, Nodes: map[string]engine.Node{"n1": n}}
	key := appendGlobalKey(nil, f, false)
	typ := reflect.TypeOf(n)
	for i := range typ.NumField() {
		t.Run(typ.Field(i).Name, func(t *testing.T) {
			m := n
			v := reflect.ValueOf(&m).Elem().Field(i)
			if v.Kind() == reflect.Bool {
				v.SetBool(!v.Bool())
			} else {
				fill(v, 99)
			}
			g := &engine.Facts{Version: 1, Nodes: map[string]engine.Node{"n1": m}}
			if bytes.Equal(appendGlobalKey(nil, g, false), key) {
				t.Errorf("changing node.%s leaves the global cache key unchanged", typ.Field(i).Name)
			}
		})
	}
	other := &engine.Facts{Version: 1, Nodes: map[string]engine.Node{"n2": n}}
	if bytes.Equal(appendGlobalKey(nil, other, false), key) {
		t.Error("changing a node's id leaves the global cache key unchanged")
	}
}

// Facts without nodes (one Docker host) have no "nodes" key, as in their JSON.
func TestFactsValueWithoutNodes(t *testing.T) {
	f := engine.NewFacts(1, time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	assertSameValue(t, "no nodes", FactsValue(f), viaJSON(t, f))
	f.Nodes = map[string]engine.Node{"abc": {Hostname: "h", Status: "down", Availability: "active", Manager: true, TasksFailed10m: 3}}
	assertSameValue(t, "one node", FactsValue(f), viaJSON(t, f))
}

// The shipped pack, evaluated per service (partitioned, cached), drains a down node beside a
// ready one once, however many services there are, stops when the node is drained, and the
// rules in its data ask for approval of drains.
func TestShippedPackDrainsADownNode(t *testing.T) {
	s := mustLoad(t, filepath.Join("..", "..", "policies"), Options{})
	if !s.Partitioned() {
		t.Fatalf("the shipped pack is not partitioned: %s", s.PartitionReason())
	}
	if !s.Rules().NeedsApproval("", engine.ActDrain) || !s.Rules().NeedsApproval("web", engine.ActDrain) {
		t.Error("the shipped data does not require approval for drain")
	}
	f := genFacts(rand.New(rand.NewPCG(1, 2)), 40, 1)
	f.Sensors["docker"] = engine.SensorStatus{OK: true}
	f.Nodes = map[string]engine.Node{
		"n1": {Hostname: "h1", Status: "ready", Availability: "active", Manager: true, Leader: true},
		"n2": {Hostname: "h2", Status: "down", Availability: "active"},
	}
	want := engine.Decision{Action: engine.ActDrain, Node: "n2", Reason: "node h2 (n2) is down"}
	drains := func(ds []engine.Decision) []engine.Decision {
		var out []engine.Decision
		for _, d := range ds {
			if d.Action == engine.ActDrain {
				out = append(out, d)
			}
		}
		return out
	}
	for range 2 { // the second time from the cache
		ds, rej := mustEval(t, s, f)
		if got := drains(ds); len(got) != 1 || got[0] != want || len(rej) != 0 {
			t.Fatalf("drains %+v (rejected %v), want %+v", got, rej, want)
		}
	}
	f.Nodes["n2"] = engine.Node{Hostname: "h2", Status: "down", Availability: "drain"}
	if ds, _ := mustEval(t, s, f); len(drains(ds)) != 0 {
		t.Errorf("a drained node is drained again: %+v", drains(ds))
	}
	f.Nodes = nil
	if ds, _ := mustEval(t, s, f); len(drains(ds)) != 0 {
		t.Errorf("drain without nodes: %+v", drains(ds))
	}
}

// A decision naming a node decodes; one that is not a string is rejected with its field.
func TestDecodeNodeDecision(t *testing.T) {
	d, err := decodeDecision(map[string]any{"action": "drain", "node": "n1", "reason": "down"})
	if err != nil || d.Node != "n1" || d.Target() != "node/n1" {
		t.Errorf("decode: %+v, %v", d, err)
	}
	if _, err := decodeDecision(map[string]any{"action": "drain", "node": 7, "reason": "down"}); err == nil || !strings.Contains(err.Error(), `field "node"`) {
		t.Errorf("numeric node: %v", err)
	}
	if _, err := decodeDecision(map[string]any{"action": "drain", "service": "web", "node": "n1", "reason": "down"}); err == nil {
		t.Error("a drain naming a service was accepted")
	}
}
