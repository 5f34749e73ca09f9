package governor_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/policy"
)

type fixedPolicy struct{ s *policy.Set }

func (p fixedPolicy) Current() engine.Evaluator { return p.s }

type recorder struct {
	mu   sync.Mutex
	recs []engine.TickRecord
	acts []engine.Action
}

func (r *recorder) Record(_ context.Context, rec engine.TickRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}

func (r *recorder) Name() string { return "swarm" }

func (r *recorder) Act(_ context.Context, a engine.Action) (engine.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acts = append(r.acts, a)
	return engine.Outcome{Result: engine.ResultOK, Detail: "node " + a.Node + " availability active → drain"}, nil
}

func (r *recorder) last(t *testing.T) engine.Action {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.recs[len(r.recs)-1].Actions {
		if a.Action == engine.ActDrain {
			return a
		}
	}
	t.Fatalf("tick %d has no drain: %+v", len(r.recs), r.recs[len(r.recs)-1].Actions)
	return engine.Action{}
}

// The whole path of a drain with the shipped policy pack: a down node beside a ready one is
// decided a drain, which waits as a pending approval (nothing acts); approved, the next tick
// carries it out through the actuator once, by node; rejected, it never runs.
func TestDrainWaitsForApprovalThenActs(t *testing.T) {
	for _, approve := range []bool{true, false} {
		set, err := policy.Load(filepath.Join("..", "..", "policies"), policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sensor := engine.SensorFunc{N: "docker", F: func(_ context.Context, f *engine.Facts) error {
			f.Nodes = map[string]engine.Node{
				"n1": {Hostname: "node-1", Status: "ready", Availability: "active", Manager: true, Leader: true},
				"n2": {Hostname: "node-2", Status: "down", Availability: "active"},
			}
			return nil
		}}
		gov := governor.New(governor.Options{})
		rec := &recorder{}
		eng, err := engine.New(engine.Options{Sensors: []engine.Sensor{sensor}, Policy: fixedPolicy{set}, Governor: gov,
			Actuators: map[string]engine.Actuator{engine.ActDrain: rec}, Journal: rec})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := eng.Tick(context.Background(), now, "once"); err != nil {
			t.Fatal(err)
		}
		a := rec.last(t)
		if a.Node != "n2" || a.Verdict != engine.VerdictSuppress || a.Approval == "" || !strings.Contains(a.Why, "awaiting approval") {
			t.Fatalf("first drain: %+v, want it awaiting approval", a)
		}
		if len(rec.acts) != 0 {
			t.Fatalf("acted before approval: %+v", rec.acts)
		}
		aps := gov.Approvals(now)
		if len(aps) != 1 || aps[0].Status != engine.ApprovalPending || aps[0].Decision.Node != "n2" || aps[0].Decision.Target() != "node/n2" {
			t.Fatalf("approvals %+v, want one pending for node/n2", aps)
		}
		if _, err := gov.Decide(aps[0].ID, approve, "alice", "checked", now); err != nil {
			t.Fatal(err)
		}
		if err := eng.Tick(context.Background(), now.Add(time.Second), "once"); err != nil {
			t.Fatal(err)
		}
		a = rec.last(t)
		if !approve {
			if a.Verdict != engine.VerdictSuppress || !strings.Contains(a.Why, "was rejected by alice") || len(rec.acts) != 0 {
				t.Errorf("rejected drain: %+v, acted %+v", a, rec.acts)
			}
			continue
		}
		if a.Verdict != engine.VerdictAdmit || a.Approval != aps[0].ID || a.Outcome == nil || a.Outcome.Result != engine.ResultOK {
			t.Fatalf("approved drain: %+v", a)
		}
		if len(rec.acts) != 1 || rec.acts[0].Node != "n2" || rec.acts[0].Service != "" {
			t.Errorf("actuator calls %+v, want one drain of n2", rec.acts)
		}
		if got := gov.Approvals(now.Add(time.Second)); got[0].Status != engine.ApprovalDone {
			t.Errorf("approval after the drain: %s, want done", got[0].Status)
		}
	}
}
