package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/journal"
)

// testJournal is an SQLite journal in a temporary directory and an ares.yaml pointing at it.
type testJournal struct {
	t      *testing.T
	config string
	s      journal.Store
}

func newTestJournal(t *testing.T) *testJournal {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "journal.db")
	cfg := filepath.Join(dir, "ares.yaml")
	if err := os.WriteFile(cfg, []byte("journal:\n  backend: sqlite\n  path: "+db+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := journal.Open(context.Background(), journal.Config{Backend: journal.BackendSQLite, Path: db}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &testJournal{t: t, config: cfg, s: s}
}

func cartFacts(tick uint64, at time.Time, r engine.Replica) *engine.Facts {
	f := engine.NewFacts(tick, at)
	s := f.Service("cart")
	r.ID, r.Name, r.Health = "c1", "shop-cart-1", "none"
	s.Replicas = append(s.Replicas, r)
	s.DesiredReplicas = 1
	f.Sensors["docker"] = engine.SensorStatus{OK: true}
	f.Summarize()
	return f
}

// play records one tick as the engine would: every decision admitted and done.
func (j *testJournal) play(n uint64, at time.Time, f *engine.Facts, ds []engine.Decision, fail string) {
	j.t.Helper()
	ctx := context.Background()
	rec := engine.TickRecord{Tick: n, At: at, Trigger: "interval", PolicyRev: "recorded", Facts: f, Decisions: append([]engine.Decision{}, ds...)}
	for _, d := range ds {
		a := engine.Action{Decision: d, Verdict: engine.VerdictAdmit}
		id, err := j.s.Intent(ctx, n, a)
		if err != nil {
			j.t.Fatal(err)
		}
		a.Outcome = &engine.Outcome{Result: engine.ResultOK, Duration: 1500 * time.Millisecond}
		if fail != "" {
			a.Outcome = &engine.Outcome{Result: engine.ResultError, Error: fail, Duration: time.Second}
		}
		_ = j.s.Outcome(ctx, id, a)
		rec.Actions = append(rec.Actions, a)
	}
	if err := j.s.Record(ctx, rec); err != nil {
		j.t.Fatal(err)
	}
}

func (j *testJournal) done() {
	j.t.Helper()
	if err := j.s.Close(); err != nil {
		j.t.Fatal(err)
	}
}

func TestActions(t *testing.T) {
	j := newTestJournal(t)
	now := time.Now().UTC().Add(-time.Minute)
	restart := engine.Decision{Action: engine.ActRestart, Service: "cart", Replica: "shop-cart-1", Reason: "replica exited (137)"}
	j.play(1, now, cartFacts(1, now, engine.Replica{State: "exited", ExitCode: 137}), []engine.Decision{restart}, "")
	j.play(2, now.Add(5*time.Second), cartFacts(2, now, engine.Replica{State: "exited"}), []engine.Decision{restart}, "docker: restart: boom")
	j.done()

	var buf bytes.Buffer
	if err := runActions(context.Background(), actionsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "text"}, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"TIME", "SERVICE", "TARGET", "VERDICT", "RESULT", "DURATION", "REASON",
		"cart/shop-cart-1", "restart", "admit", "1.5s", "replica exited (137)", "error: docker: restart: boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := runActions(context.Background(), actionsOpts{cf: configFlags{path: j.config}, since: time.Hour, service: "other", output: "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("other service: %s", buf.String())
	}
	buf.Reset()
	_ = runActions(context.Background(), actionsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "json"}, &buf)
	var recs []journal.DecisionRecord
	if err := json.Unmarshal(buf.Bytes(), &recs); err != nil || len(recs) != 2 || recs[0].DecisionID == "" || recs[0].Path != "data.ares.decisions" {
		t.Errorf("json: %v %+v", err, recs)
	}
}

func TestActionsWithoutJournal(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ares.yaml")
	_ = os.WriteFile(cfg, []byte("journal:\n  path: "+filepath.Join(dir, "none.db")+"\n"), 0o644)
	err := runActions(context.Background(), actionsOpts{cf: configFlags{path: cfg}, since: time.Hour, output: "text"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no sqlite journal at") {
		t.Errorf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("reading created a journal")
	}
}
