package journal

import (
	"context"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// An escalation (the governor's notify for a person) marks the service's open incident
// needs_human; resolving the incident clears it.
func testNeedsHuman(t *testing.T, s Store) {
	ctx := context.Background()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tick(t, s, 1, at(0), factsWith(1, at(0), "exited"), restart)
	esc := engine.Action{Decision: engine.Decision{Action: engine.ActNotify, Service: "cart", Reason: "escalation: budget"},
		Verdict: engine.VerdictAdmit, Escalation: true}
	id, err := s.Intent(ctx, 2, esc)
	if err != nil {
		t.Fatal(err)
	}
	esc.Outcome = &engine.Outcome{Result: engine.ResultOK}
	if err := s.Outcome(ctx, id, esc); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, engine.TickRecord{Tick: 2, At: at(5), Facts: factsWith(2, at(5), "exited"), Decisions: []engine.Decision{},
		Actions: []engine.Action{esc}}); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	got, err := s.Incidents(ctx, Query{Service: "cart"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].NeedsHuman || got[0].Status != IncidentOpen {
		t.Fatalf("incident after the escalation = %+v, want open and needs_human", got)
	}
	tick(t, s, 3, at(10), factsWith(3, at(10), "running"))
	flush(t, s)
	got, _ = s.Incidents(ctx, Query{Service: "cart"})
	if len(got) != 1 || got[0].NeedsHuman || got[0].Status != IncidentResolved {
		t.Fatalf("incident after recovery = %+v, want resolved, needs_human cleared", got)
	}
}

// The engine records a tick with a slow action after the action finished, but an outcome may
// also come after its tick's record: the decision row gets it either way.
func testOutcomeAfterRecord(t *testing.T, s Store) {
	ctx := context.Background()
	a := engine.Action{Decision: restart, Verdict: engine.VerdictAdmit}
	id, err := s.Intent(ctx, 1, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, engine.TickRecord{Tick: 1, At: t0, Facts: factsWith(1, t0, "exited"), Decisions: []engine.Decision{restart},
		Actions: []engine.Action{a}}); err != nil {
		t.Fatal(err)
	}
	a.Outcome = &engine.Outcome{Result: engine.ResultOK, Detail: "late", Duration: time.Second}
	if err := s.Outcome(ctx, id, a); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	recs, err := s.Actions(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].IntentID == "" || recs[0].Outcome == nil || recs[0].Outcome.Detail != "late" {
		t.Fatalf("decision records = %+v, want the late outcome", recs)
	}
	if n, _ := s.Unfinished(ctx); len(n) != 0 {
		t.Errorf("unfinished = %+v", n)
	}
}
