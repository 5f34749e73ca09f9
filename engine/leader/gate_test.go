package leader

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
)

// fakeLead is a Leadership a test switches by hand.
type fakeLead struct {
	mu      sync.Mutex
	leading bool
	leader  string
	term    context.Context
	end     context.CancelFunc
}

func (f *fakeLead) set(leading bool, leader string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if leading && f.term == nil {
		f.term, f.end = context.WithCancel(context.Background())
	}
	if !leading && f.end != nil {
		f.end()
		f.term, f.end = nil, nil
	}
	f.leading, f.leader = leading, leader
}

func (f *fakeLead) Leading() bool  { f.mu.Lock(); defer f.mu.Unlock(); return f.leading }
func (f *fakeLead) Leader() string { f.mu.Lock(); defer f.mu.Unlock(); return f.leader }
func (f *fakeLead) Term() (context.Context, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.term, f.leading
}

type staticPolicy []engine.Decision

func (p staticPolicy) Current() engine.Evaluator { return p }
func (p staticPolicy) Revision() string          { return "test" }
func (p staticPolicy) Evaluate(context.Context, *engine.Facts) ([]engine.Decision, []engine.RejectedDecision, error) {
	return append([]engine.Decision(nil), p...), nil, nil
}

// countingActuator counts calls; block, when set, holds Act until its context ends.
type countingActuator struct {
	mu    sync.Mutex
	calls int
	block bool
	ended chan error
}

func (a *countingActuator) Name() string { return "fake" }
func (a *countingActuator) Act(ctx context.Context, _ engine.Action) (engine.Outcome, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	if a.block {
		<-ctx.Done()
		a.ended <- ctx.Err()
		return engine.Outcome{}, ctx.Err()
	}
	return engine.Outcome{Result: engine.ResultOK}, nil
}

func (a *countingActuator) n() int { a.mu.Lock(); defer a.mu.Unlock(); return a.calls }

type recJournal struct {
	mu    sync.Mutex
	ticks []engine.TickRecord
}

func (j *recJournal) Record(_ context.Context, r engine.TickRecord) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ticks = append(j.ticks, r)
	return nil
}

func sensor(f *engine.Facts) error {
	f.Service("api").Replicas = []engine.Replica{{Name: "api-1", State: "exited", Health: "none"}}
	return nil
}

// A standby evaluates and shows every decision, held back with who leads; it acts on nothing
// and its ticks stay out of the shared journal. Once it leads, the same decision is carried
// out and recorded.
func TestStandbyHoldsBackAndLeaderActs(t *testing.T) {
	lead := &fakeLead{}
	lead.set(false, "b")
	gov := governor.New(governor.Options{})
	gate := NewGate(gov, lead)
	act := &countingActuator{}
	store := &recJournal{}
	printed := &recJournal{}
	eng, err := engine.New(engine.Options{
		Sensors:   []engine.Sensor{engine.SensorFunc{N: "docker", F: func(_ context.Context, f *engine.Facts) error { return sensor(f) }}},
		Policy:    staticPolicy{{Action: engine.ActRestart, Service: "api", Replica: "api-1", Reason: "exited"}},
		Governor:  gate,
		Actuators: map[string]engine.Actuator{engine.ActRestart: gate.Actuator(act)},
		Journal:   multi{printed, gate.Journal(store)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := eng.Tick(ctx, time.Now(), "once"); err != nil {
		t.Fatal(err)
	}
	if act.n() != 0 {
		t.Fatalf("the standby acted %d times", act.n())
	}
	if len(store.ticks) != 0 {
		t.Errorf("the standby's tick reached the shared journal")
	}
	if len(printed.ticks) != 1 || len(printed.ticks[0].Actions) != 1 {
		t.Fatalf("printed = %+v", printed.ticks)
	}
	a := printed.ticks[0].Actions[0]
	if a.Verdict != engine.VerdictSuppress || a.Why != "standby: instance b leads" {
		t.Errorf("standby verdict = %s %q, want suppress \"standby: instance b leads\"", a.Verdict, a.Why)
	}

	lead.set(true, "a")
	if err := eng.Tick(ctx, time.Now(), "once"); err != nil {
		t.Fatal(err)
	}
	if act.n() != 1 {
		t.Fatalf("the leader acted %d times, want 1", act.n())
	}
	if len(store.ticks) != 1 || store.ticks[0].Actions[0].Verdict != engine.VerdictAdmit {
		t.Errorf("the leader's tick in the journal: %+v", store.ticks)
	}
	// The governor counted the leader's action only: the next one is within the cooldown.
	lead.set(false, "b")
	_ = eng.Tick(ctx, time.Now(), "once")
	if w := printed.ticks[2].Actions[0].Why; !strings.Contains(w, "cooldown") {
		t.Errorf("standby after the leader's action: %q, want the governor's cooldown shown", w)
	}
}

// On a standby the governor runs as in a dry run: no approval is opened, no pause is set.
func TestStandbyOpensNoApproval(t *testing.T) {
	lead := &fakeLead{}
	lead.set(false, "")
	gov := governor.New(governor.Options{})
	gov.SetRules(engine.Rules{Approval: map[string]map[string]bool{"": {engine.ActRestart: true}}})
	gate := NewGate(gov, lead)
	f := engine.NewFacts(7, time.Now())
	_ = sensor(f)
	acts := gate.Admit([]engine.Decision{{Action: engine.ActRestart, Service: "api", Replica: "api-1", Reason: "x"}}, f, time.Now(), false)
	if len(acts) != 1 || acts[0].Verdict != engine.VerdictSuppress {
		t.Fatalf("acts = %+v", acts)
	}
	if n := len(gov.Approvals(time.Now())); n != 0 {
		t.Errorf("a standby opened %d approvals", n)
	}
	lead.set(true, "a")
	acts = gate.Admit([]engine.Decision{{Action: engine.ActRestart, Service: "api", Replica: "api-1", Reason: "x"}}, f, time.Now(), false)
	if !strings.Contains(acts[0].Why, "awaiting approval") || len(gov.Approvals(time.Now())) != 1 {
		t.Errorf("leader: %+v, approvals %d", acts, len(gov.Approvals(time.Now())))
	}
}

// An action running when the lead is lost is cancelled; one started after is refused.
func TestActionsStopWithTheLead(t *testing.T) {
	lead := &fakeLead{}
	lead.set(true, "a")
	gate := NewGate(governor.New(governor.Options{}), lead)
	act := &countingActuator{block: true, ended: make(chan error, 1)}
	ga := gate.Actuator(act)
	done := make(chan error, 1)
	go func() {
		_, err := ga.Act(context.Background(), engine.Action{})
		done <- err
	}()
	for act.n() == 0 {
		time.Sleep(time.Millisecond)
	}
	lead.set(false, "b")
	if err := <-done; err == nil || !strings.Contains(err.Error(), "lost the lead") {
		t.Errorf("running action after losing the lead: %v", err)
	}
	if _, err := ga.Act(context.Background(), engine.Action{}); err == nil || !strings.Contains(err.Error(), "standby: instance b leads") {
		t.Errorf("action as a standby: %v", err)
	}
	if act.n() != 1 {
		t.Errorf("actuator called %d times, want 1", act.n())
	}
}

// multi is a minimal journal fan-out (the real one is journal.Multi).
type multi []engine.Journal

func (m multi) Record(ctx context.Context, r engine.TickRecord) error {
	for _, j := range m {
		if err := j.Record(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (m multi) Intent(ctx context.Context, tick uint64, a engine.Action) (string, error) {
	for _, j := range m {
		if aj, ok := j.(engine.ActionJournal); ok {
			return aj.Intent(ctx, tick, a)
		}
	}
	return "", nil
}

func (m multi) Outcome(ctx context.Context, id string, a engine.Action) error {
	for _, j := range m {
		if aj, ok := j.(engine.ActionJournal); ok {
			return aj.Outcome(ctx, id, a)
		}
	}
	return nil
}
