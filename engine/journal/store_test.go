package journal

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// opener opens the same store again each time it is called (for restarts).
type opener func(t *testing.T) Store

// The one suite every database backend passes.
func testStore(t *testing.T, open opener) {
	t.Run("DecisionLog", func(t *testing.T) { testDecisionLog(t, open(t)) })
	t.Run("FactsDedup", func(t *testing.T) { testFactsDedup(t, open(t)) })
	t.Run("Incidents", func(t *testing.T) { testIncidents(t, open(t)) })
	t.Run("CrashBetweenIntentAndOutcome", func(t *testing.T) { testCrash(t, open) })
	t.Run("RecentActions", func(t *testing.T) { testRecentActions(t, open(t)) })
	t.Run("Revisions", func(t *testing.T) { testRevisions(t, open(t)) })
	t.Run("NeedsHuman", func(t *testing.T) { testNeedsHuman(t, open(t)) })
	t.Run("OutcomeAfterRecord", func(t *testing.T) { testOutcomeAfterRecord(t, open(t)) })
}

func TestSQLite(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		path := filepath.Join(t.TempDir(), "j.db")
		return reopenable(t, Config{Backend: BackendSQLite, Path: path, SyncIntents: true})
	})
}

// reopenable opens cfg now and closes it at the end of the test.
func reopenable(t *testing.T, cfg Config) Store {
	t.Helper()
	s, err := Open(context.Background(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	cfgs[s] = cfg
	return s
}

// cfgs remembers each test store's config so that a test can open it again after a "crash".
var cfgs = map[Store]Config{}

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func factsWith(tick uint64, at time.Time, states ...string) *engine.Facts {
	f := engine.NewFacts(tick, at)
	s := f.Service("cart")
	for i, st := range states {
		s.Replicas = append(s.Replicas, engine.Replica{ID: "id" + string(rune('a'+i)), Name: "shop-cart-" + string(rune('1'+i)), State: st, Health: "none"})
	}
	s.DesiredReplicas = len(states)
	f.Summarize()
	return f
}

// tick plays one engine tick against s: intent, outcome, record.
func tick(t *testing.T, s Store, n uint64, at time.Time, f *engine.Facts, ds ...engine.Decision) engine.TickRecord {
	t.Helper()
	ctx := context.Background()
	rec := engine.TickRecord{Tick: n, At: at, Trigger: "interval", PolicyRev: "rev1", Facts: f, Decisions: ds}
	if rec.Decisions == nil {
		rec.Decisions = []engine.Decision{}
	}
	for _, d := range ds {
		a := engine.Action{Decision: d, Verdict: engine.VerdictAdmit}
		if strings.HasPrefix(d.Reason, "suppress") {
			a.Verdict, a.Why = engine.VerdictSuppress, "cooldown"
		}
		if a.Admitted() {
			id, err := s.Intent(ctx, n, a)
			if err != nil {
				t.Fatal(err)
			}
			a.Outcome = &engine.Outcome{Result: engine.ResultOK, Duration: 120 * time.Millisecond, Detail: "restarted"}
			if err := s.Outcome(ctx, id, a); err != nil {
				t.Fatal(err)
			}
		}
		rec.Actions = append(rec.Actions, a)
	}
	if err := s.Record(ctx, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func flush(t *testing.T, s Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

var restart = engine.Decision{Action: engine.ActRestart, Service: "cart", Replica: "shop-cart-1", Reason: "exited with code 137"}

func testDecisionLog(t *testing.T, s Store) {
	ctx := context.Background()
	tick(t, s, 1, t0, factsWith(1, t0, "exited"), restart,
		engine.Decision{Action: engine.ActNotify, Service: "cart", Reason: "suppress me"})
	flush(t, s)
	got, err := s.Actions(ctx, Query{Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d decision records, want 2: %+v", len(got), got)
	}
	var admitted, suppressed *DecisionRecord
	for i := range got {
		switch got[i].Verdict {
		case engine.VerdictAdmit:
			admitted = &got[i]
		case engine.VerdictSuppress:
			suppressed = &got[i]
		}
	}
	if admitted == nil || suppressed == nil {
		t.Fatalf("verdicts: %+v", got)
	}
	d := *admitted
	if d.DecisionID == "" || d.Path != "data.ares.decisions" || !strings.HasPrefix(d.Input, "sha256:") || d.Revision != "rev1" ||
		!d.Timestamp.Equal(t0) || d.Result != restart || d.IntentID == "" {
		t.Errorf("decision-log fields: %+v", d)
	}
	if d.Outcome == nil || d.Outcome.Result != engine.ResultOK || d.Outcome.Duration != 120*time.Millisecond || d.Outcome.Detail != "restarted" {
		t.Errorf("outcome: %+v", d.Outcome)
	}
	if suppressed.Why != "cooldown" || suppressed.Outcome != nil || suppressed.IntentID != "" {
		t.Errorf("suppressed: %+v", suppressed)
	}
	if got, _ := s.Actions(ctx, Query{Since: t0.Add(-time.Hour), Service: "nope"}); len(got) != 0 {
		t.Errorf("service filter: %+v", got)
	}
	if got, _ := s.Actions(ctx, Query{Since: t0.Add(time.Hour)}); len(got) != 0 {
		t.Errorf("since filter: %+v", got)
	}
	if un, err := s.Unfinished(ctx); err != nil || len(un) != 0 {
		t.Errorf("unfinished = %v, %v", un, err)
	}
}

func testFactsDedup(t *testing.T, s Store) {
	ctx := context.Background()
	for i := uint64(1); i <= 5; i++ { // unchanged document, new tick number and time each tick
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		tick(t, s, i, at, factsWith(i, at, "running"))
	}
	at := t0.Add(30 * time.Second)
	tick(t, s, 6, at, factsWith(6, at, "exited"), restart)
	flush(t, s)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ticks != 6 || st.FactsBlobs != 2 {
		t.Errorf("stats = %+v, want 6 ticks and 2 facts blobs", st)
	}
	var ticks []RecordedTick
	if err := s.Ticks(ctx, t0, func(rt RecordedTick) error { ticks = append(ticks, rt); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 6 {
		t.Fatalf("ticks = %d", len(ticks))
	}
	last := ticks[5]
	if last.Tick != 6 || last.Facts == nil || last.Facts.Tick != 6 || !last.Facts.Time.Equal(at) ||
		last.Facts.Services["cart"].Replicas[0].State != "exited" || len(last.Decisions) != 1 || last.Decisions[0] != restart {
		t.Errorf("last tick = %+v (facts %+v)", last, last.Facts)
	}
	if ticks[2].Facts.Tick != 3 || len(ticks[2].Decisions) != 0 {
		t.Errorf("tick 3 = %+v", ticks[2])
	}
}

func testIncidents(t *testing.T, s Store) {
	ctx := context.Background()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tick(t, s, 1, at(0), factsWith(1, at(0), "running", "running"))
	tick(t, s, 2, at(5), factsWith(2, at(5), "exited", "running")) // bad; the policy waits one tick
	tick(t, s, 3, at(10), factsWith(3, at(10), "exited", "running"), restart)
	tick(t, s, 4, at(15), factsWith(4, at(15), "running", "running"), restart) // healthy but still decided about: not resolved
	flush(t, s)
	got, err := s.Incidents(ctx, Query{Since: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != IncidentOpen || got[0].Actions != 2 || got[0].Service != "cart" ||
		!got[0].FirstBad.Equal(at(5)) || !got[0].FirstDecision.Equal(at(10)) {
		t.Fatalf("open incident = %+v", got)
	}
	tick(t, s, 5, at(20), factsWith(5, at(20), "running", "running"))
	flush(t, s)
	got, _ = s.Incidents(ctx, Query{Service: "cart"})
	if len(got) != 1 {
		t.Fatalf("incidents = %+v", got)
	}
	in := got[0]
	if in.Status != IncidentResolved || !in.ResolvedAt.Equal(at(20)) || in.TimeToDetect != 5*time.Second ||
		in.TimeToRecover != 15*time.Second || in.LastAction != "restart cart/shop-cart-1" || in.Reason != restart.Reason {
		t.Errorf("resolved incident = %+v", in)
	}
	// A new problem opens a new incident; detected in its first bad tick: time to detect 0.
	mark := time.Now()
	tick(t, s, 6, at(25), factsWith(6, at(25), "running", "exited"), engine.Decision{Action: engine.ActRestart, Service: "cart", Replica: "shop-cart-2", Reason: "x"})
	flush(t, s)
	got, _ = s.Incidents(ctx, Query{Since: mark})
	if len(got) != 1 || got[0].Status != IncidentOpen || !got[0].FirstBad.Equal(at(25)) || got[0].TimeToDetect != 0 {
		t.Errorf("second incident = %+v", got)
	}
	if got, _ := s.Incidents(ctx, Query{}); len(got) != 2 {
		t.Errorf("all incidents = %d, want 2", len(got))
	}
}

// ARES killed between intent and outcome: the intent is found at the next start and
// reconciled, and its incident stays open until the service is healthy.
func testCrash(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	cfg := cfgs[s]
	a := engine.Action{Decision: restart, Verdict: engine.VerdictAdmit, Sensed: &engine.SensedReplica{ID: "ida", State: "exited"}}
	id, err := s.Intent(ctx, 7, a)
	if err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if err := s.Close(); err != nil { // no outcome, no tick record: as if killed
		t.Fatal(err)
	}

	s2 := reopenable(t, cfg)
	un, err := s2.Unfinished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0].ID != id || un[0].Tick != 7 || un[0].Action.Decision != restart || un[0].Action.Sensed == nil || un[0].Action.Sensed.ID != "ida" {
		t.Fatalf("unfinished = %+v", un)
	}
	n, err := s2.Reconcile(ctx, func(in Intent) engine.Outcome {
		return engine.Outcome{Result: engine.ResultOK, Detail: "container running: restart took effect"}
	})
	if err != nil || n != 1 {
		t.Fatalf("reconcile = %d, %v", n, err)
	}
	if un, _ := s2.Unfinished(ctx); len(un) != 0 {
		t.Errorf("still unfinished after reconcile: %+v", un)
	}
	recs, _ := s2.Actions(ctx, Query{})
	if len(recs) != 1 || recs[0].IntentID != id || recs[0].Outcome == nil || recs[0].Outcome.Result != engine.ResultOK {
		t.Errorf("actions after reconcile = %+v", recs)
	}
	inc, _ := s2.Incidents(ctx, Query{})
	if len(inc) != 1 || inc[0].Status != IncidentOpen || inc[0].Actions != 1 {
		t.Fatalf("incidents after reconcile = %+v", inc)
	}
	// The restarted ARES sees the service healthy: the incident resolves.
	now := time.Now().UTC()
	tick(t, s2, 1, now, factsWith(1, now, "running"))
	flush(t, s2)
	inc, _ = s2.Incidents(ctx, Query{})
	if len(inc) != 1 || inc[0].Status != IncidentResolved {
		t.Errorf("incident after healthy tick = %+v", inc)
	}
}

func testRecentActions(t *testing.T, s Store) {
	ctx := context.Background()
	start := time.Now().UTC()
	tick(t, s, 1, start, factsWith(1, start, "exited"), restart)
	tick(t, s, 2, start, factsWith(2, start, "exited"), engine.Decision{Action: engine.ActNotify, Service: "cart", Reason: "suppress"})
	flush(t, s)
	got, err := s.RecentActions(ctx, start.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Action.Decision != restart || got[0].At.Before(start) || got[0].Action.Outcome == nil {
		t.Errorf("recent = %+v", got)
	}
	if got, _ := s.RecentActions(ctx, time.Now().Add(time.Hour)); len(got) != 0 {
		t.Errorf("recent in the future = %+v", got)
	}
}

func testRevisions(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Revision(ctx, "abc", []string{"heal.rego", "data.json"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Revision(ctx, "abc", nil, errBad); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if st, _ := s.Stats(ctx); st.Revisions != 2 {
		t.Errorf("revisions = %d", st.Revisions)
	}
}

var errBad = &badPolicy{}

type badPolicy struct{}

func (*badPolicy) Error() string { return "heal.rego:3: rego_parse_error" }
