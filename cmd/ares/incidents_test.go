package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/journal"
)

func TestIncidents(t *testing.T) {
	j := newTestJournal(t)
	now := time.Now().UTC().Add(-time.Minute)
	restart := engine.Decision{Action: engine.ActRestart, Service: "cart", Replica: "shop-cart-1", Reason: "replica exited (137)"}
	j.play(1, now, cartFacts(1, now, engine.Replica{State: "exited"}), []engine.Decision{restart}, "")
	j.play(2, now.Add(12*time.Second), cartFacts(2, now, engine.Replica{State: "running"}), nil, "")
	j.done()

	var buf bytes.Buffer
	if err := runIncidents(context.Background(), incidentsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "text"}, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"OPENED", "DETECT", "RECOVER", "cart", "resolved", "12s", "restart cart/shop-cart-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := runIncidents(context.Background(), incidentsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	var list []journal.Incident
	if err := json.Unmarshal(buf.Bytes(), &list); err != nil || len(list) != 1 || list[0].TimeToRecover != 12*time.Second {
		t.Errorf("json: %v %+v", err, list)
	}
}

// An incident the governor escalated shows NEEDS HUMAN, and needs_human in JSON.
func TestIncidentsNeedsHuman(t *testing.T) {
	j := newTestJournal(t)
	now := time.Now().UTC().Add(-time.Minute)
	restart := engine.Decision{Action: engine.ActRestart, Service: "cart", Replica: "shop-cart-1", Reason: "replica exited (137)"}
	j.play(1, now, cartFacts(1, now, engine.Replica{State: "exited"}), []engine.Decision{restart}, "")
	ctx := context.Background()
	esc := engine.Action{Decision: engine.Decision{Action: engine.ActNotify, Service: "cart", Reason: "escalation: budget: 5 actions"},
		Verdict: engine.VerdictAdmit, Escalation: true}
	id, err := j.s.Intent(ctx, 2, esc)
	if err != nil {
		t.Fatal(err)
	}
	esc.Outcome = &engine.Outcome{Result: engine.ResultOK}
	_ = j.s.Outcome(ctx, id, esc)
	if err := j.s.Record(ctx, engine.TickRecord{Tick: 2, At: now.Add(5 * time.Second), Facts: cartFacts(2, now, engine.Replica{State: "exited"}),
		Decisions: []engine.Decision{}, Actions: []engine.Action{esc}}); err != nil {
		t.Fatal(err)
	}
	j.done()
	var buf bytes.Buffer
	if err := runIncidents(ctx, incidentsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "text"}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "open, NEEDS HUMAN") {
		t.Errorf("output lacks the needs-human mark:\n%s", buf.String())
	}
	buf.Reset()
	if err := runIncidents(ctx, incidentsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	var list []journal.Incident
	if err := json.Unmarshal(buf.Bytes(), &list); err != nil || len(list) != 1 || !list[0].NeedsHuman {
		t.Errorf("json: %v %+v", err, list)
	}
}
