package journal

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// A drain names a node and no service: the journal keeps the node (its decision row and the
// tick's decisions), files the action's incident under "node/<node>", and resolves that
// incident once the node is drained.
func TestDrainKeepsItsNode(t *testing.T) {
	s := reopenable(t, Config{Backend: BackendSQLite, Path: filepath.Join(t.TempDir(), "j.db"), SyncIntents: true})
	ctx := context.Background()
	drain := engine.Decision{Action: engine.ActDrain, Node: "n2", Reason: "node host-2 (n2) is down"}
	f := factsWith(1, t0, "running")
	f.Nodes = map[string]engine.Node{"n1": {Hostname: "host-1", Status: "ready", Availability: "active"},
		"n2": {Hostname: "host-2", Status: "down", Availability: "active"}}
	tick(t, s, 1, t0, f, drain)
	flush(t, s)
	got, err := s.Actions(ctx, Query{Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Result != drain || got[0].Result.Target() != "node/n2" {
		t.Fatalf("actions = %+v, want the drain of n2", got)
	}
	open, err := s.Incidents(ctx, Query{Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Service != "node/n2" || open[0].Status != IncidentOpen || open[0].LastAction != "drain node/n2" {
		t.Fatalf("incidents = %+v, want one open for node/n2", open)
	}
	f2 := factsWith(2, t0.Add(time.Minute), "running")
	f2.Nodes = map[string]engine.Node{"n1": f.Nodes["n1"], "n2": {Hostname: "host-2", Status: "down", Availability: "drain"}}
	tick(t, s, 2, t0.Add(time.Minute), f2)
	flush(t, s)
	res, err := s.Incidents(ctx, Query{Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Status != IncidentResolved {
		t.Errorf("incidents after the node was drained = %+v, want it resolved", res)
	}
}
