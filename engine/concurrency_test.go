package engine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowActuator blocks each action until released (or its context ends).
type slowActuator struct {
	mu      sync.Mutex
	started []string
	release chan struct{}
}

func (s *slowActuator) Name() string { return "slow" }
func (s *slowActuator) Act(ctx context.Context, a Action) (Outcome, error) {
	s.mu.Lock()
	s.started = append(s.started, a.Target())
	s.mu.Unlock()
	select {
	case <-s.release:
		return Outcome{Detail: "slowly"}, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

func (s *slowActuator) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.started)
}

// With max_concurrent_actions 1 a slow action does not hold up the loop: ticks go on while it
// runs, the second service's action is deferred (verdict suppress) until the first is done,
// intents come before outcomes, and each tick is recorded with its outcomes.
func TestSlowActionDoesNotBlockTheLoop(t *testing.T) {
	j := &intentJournal{}
	mem := &memJournal{}
	act := &slowActuator{release: make(chan struct{})}
	sensor := SensorFunc{N: "docker", F: func(_ context.Context, f *Facts) error {
		for _, name := range []string{"a", "b"} {
			f.Service(name).Replicas = []Replica{{Name: name + "-1", State: "exited"}}
		}
		return nil
	}}
	e, err := New(Options{Interval: 10 * time.Millisecond, Sensors: []Sensor{sensor}, Policy: restartExited,
		Journal: bothJournals{j, mem}, Actuators: map[string]Actuator{ActRestart: act}, MaxConcurrentActions: 1,
		ActionTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()

	waitFor(t, func() bool { return act.count() == 1 })
	first := e.Ticks()
	waitFor(t, func() bool { return e.Ticks() >= first+5 }) // the loop keeps ticking
	if n := act.count(); n != 1 || e.Running() != 1 {
		t.Fatalf("%d actions started, %d running, want 1 and 1 (limit 1)", n, e.Running())
	}
	// Ticks after the first were recorded at once, with the other service's action deferred.
	deferred := false
	mem.mu.Lock()
	for _, r := range mem.recs {
		for _, a := range r.Actions {
			if a.Verdict == VerdictSuppress && (strings.HasPrefix(a.Why, "concurrency:") || strings.Contains(a.Why, "still running")) {
				deferred = true
			}
		}
	}
	mem.mu.Unlock()
	if !deferred {
		t.Error("no action was deferred while the slow one ran")
	}
	act.release <- struct{}{} // the first action ends; the next tick starts the other service's
	waitFor(t, func() bool { return act.count() == 2 })
	close(act.release)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	// The first action's tick was recorded after it finished, with its outcome.
	withOutcome := 0
	mem.mu.Lock()
	for _, r := range mem.recs {
		for _, a := range r.Actions {
			if a.Admitted() && a.Outcome != nil {
				withOutcome++
			}
		}
	}
	mem.mu.Unlock()
	if withOutcome < 2 {
		t.Errorf("%d recorded actions with an outcome, want at least 2", withOutcome)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.events) < 4 || !strings.HasPrefix(j.events[0], "intent") {
		t.Errorf("journal events = %v, want intents before outcomes", j.events)
	}
}

// bothJournals records to a memJournal and an intentJournal.
type bothJournals struct {
	j   *intentJournal
	mem *memJournal
}

func (b bothJournals) Record(ctx context.Context, r TickRecord) error { return b.mem.Record(ctx, r) }
func (b bothJournals) Intent(ctx context.Context, tick uint64, a Action) (string, error) {
	return b.j.Intent(ctx, tick, a)
}
func (b bothJournals) Outcome(ctx context.Context, id string, a Action) error {
	return b.j.Outcome(ctx, id, a)
}

// engine.action_timeout bounds each action: an actuator that overruns it is cancelled and the
// outcome says so.
func TestActionTimeoutEnforcedPerAction(t *testing.T) {
	act := &slowActuator{release: make(chan struct{})} // never released: waits for its context
	j := &memJournal{}
	e, err := New(Options{Sensors: []Sensor{dockerSensor("exited")}, Policy: restartExited, Journal: j,
		Actuators: map[string]Actuator{ActRestart: act}, ActionTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Tick(context.Background(), time.Now(), "once"); err != nil {
		t.Fatal(err)
	}
	as := j.last().Actions
	if len(as) != 1 || as[0].Outcome == nil || as[0].Outcome.Result != ResultError || !strings.Contains(as[0].Outcome.Error, "deadline exceeded") {
		t.Fatalf("actions = %+v, want one cut short by the action timeout", as)
	}
	if e.Running() != 0 {
		t.Errorf("%d actions still counted as running", e.Running())
	}
}
