package governor

import (
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

func facts(names ...string) *engine.Facts {
	f := engine.NewFacts(1, time.Now())
	for _, n := range names {
		f.Service(n)
	}
	return f
}

func TestHistoryFlowsIntoFacts(t *testing.T) {
	g := New()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	f := facts("api", "db")
	g.Annotate(f, t0)
	if h := f.Services["api"].History; h == nil || h.Actions10m != 0 || h.SecondsSinceLastAction != HistoryCap {
		t.Fatalf("fresh history = %+v, want 0 actions and the cap", h)
	}
	g.Done(engine.Action{Decision: engine.Decision{Action: "restart", Service: "api", Replica: "api-1"}}, t0)
	g.Done(engine.Action{Decision: engine.Decision{Action: "restart", Service: "api", Replica: "api-2"}}, t0.Add(5*time.Minute))

	f = facts("api", "db")
	g.Annotate(f, t0.Add(5*time.Minute+30*time.Second))
	if h := f.Services["api"].History; h.Actions10m != 2 || h.SecondsSinceLastAction != 30 {
		t.Errorf("api history = %+v, want 2 actions, 30 s", h)
	}
	if h := f.Services["db"].History; h.Actions10m != 0 || h.SecondsSinceLastAction != HistoryCap {
		t.Errorf("db history = %+v, want untouched", h)
	}

	f = facts("api")
	g.Annotate(f, t0.Add(11*time.Minute))
	if h := f.Services["api"].History; h.Actions10m != 1 {
		t.Errorf("after the window the first action must age out: %+v", h)
	}
	f = facts("api")
	g.Annotate(f, t0.Add(48*time.Hour))
	if h := f.Services["api"].History; h.Actions10m != 0 || h.SecondsSinceLastAction != HistoryCap {
		t.Errorf("two days later: %+v", h)
	}
}

func TestAdmit(t *testing.T) {
	ds := []engine.Decision{
		{Action: "restart", Service: "api", Replica: "api-1", Reason: "exited"},
		{Action: "recycle", Service: "api", Replica: "api-1", Reason: "leak"},
		{Action: "scale_out", Service: "api", Reason: "cpu"},
	}
	g := New()
	got := g.Admit(ds, nil, time.Now(), false)
	want := []string{engine.VerdictAdmit, engine.VerdictSuppress, engine.VerdictAdmit}
	for i := range got {
		if got[i].Verdict != want[i] {
			t.Errorf("action %d verdict %s, want %s", i, got[i].Verdict, want[i])
		}
	}
	if got[1].Why == "" {
		t.Error("a suppression must say why")
	}
	for _, a := range g.Admit(ds, nil, time.Now(), true) {
		if a.Verdict != engine.VerdictDryRun || a.Admitted() {
			t.Errorf("dry-run admitted %+v", a)
		}
	}
}
