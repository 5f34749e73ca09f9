package journal

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ares-sre/ares/engine"
)

// downBackend fails every write until up is set, then records what it was given.
type downBackend struct {
	mu      sync.Mutex
	up      bool
	applied []op
	backend // queries are not used by these tests
}

func (b *downBackend) apply(_ context.Context, ops []op) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.up {
		return errors.New("connection refused")
	}
	b.applied = append(b.applied, ops...)
	return nil
}

func (b *downBackend) setUp()                                            { b.mu.Lock(); b.up = true; b.mu.Unlock() }
func (b *downBackend) close()                                            {}
func (b *downBackend) openIncidents(context.Context) ([]Incident, error) { return nil, nil }

// When the buffer is full the oldest tick records go first, counted; intents and outcomes are
// kept, and an intent that finds the buffer full of them is refused.
func TestOverflowDropsOldestTicksNeverIntents(t *testing.T) {
	be := &downBackend{}
	reg := prometheus.NewRegistry()
	s, err := newDBStore(context.Background(), be, Config{Buffer: 4}.withDefaults(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a := engine.Action{Decision: restart, Verdict: engine.VerdictAdmit}
	start := time.Now()
	for i := uint64(1); i <= 3; i++ {
		if err := s.Record(ctx, engine.TickRecord{Tick: i, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := s.Intent(ctx, 4, a) // incident + intent: drops ticks 1 and 2
	if err != nil {
		t.Fatal(err)
	}
	a.Outcome = &engine.Outcome{Result: engine.ResultOK}
	if err := s.Outcome(ctx, id, a); err != nil { // drops tick 3
		t.Fatal(err)
	}
	if _, err := s.Intent(ctx, 5, a); !errors.Is(err, ErrBufferFull) {
		t.Errorf("intent into a buffer full of intents: err = %v, want ErrBufferFull", err)
	}
	if err := s.Outcome(ctx, id, a); err != nil { // outcomes are accepted beyond the cap
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("calls blocked for %s with the database down", d)
	}
	if n := metricValue(s.w.dropped.WithLabelValues(kindTick)); n != 3 {
		t.Errorf("dropped ticks = %v, want 3", n)
	}
	if n := metricValue(s.w.dropped.WithLabelValues(kindIntent)); n != 1 {
		t.Errorf("refused intents = %v, want 1", n)
	}
	if n := metricValue(s.w.depth); n != 4 {
		t.Errorf("queue depth = %v, want 4", n)
	}
	be.setUp()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range be.applied {
		kinds = append(kinds, o.kind)
	}
	want := []string{kindIncident, kindIntent, kindOutcome, kindOutcome}
	if len(kinds) != len(want) {
		t.Fatalf("written after the outage: %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Errorf("written after the outage: %v, want %v", kinds, want)
		}
	}
}

// With sync_intents an intent is written before Intent returns; with the database down it
// falls back to the queue after the sync timeout instead of failing the action.
func TestSyncIntentFallsBackToQueue(t *testing.T) {
	be := &downBackend{}
	s, err := newDBStore(context.Background(), be, Config{SyncIntents: true, SyncTimeout: 50 * time.Millisecond}.withDefaults(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a := engine.Action{Decision: restart, Verdict: engine.VerdictAdmit}
	if _, err := s.Intent(ctx, 1, a); err != nil {
		t.Fatalf("intent with the database down: %v", err)
	}
	if n := s.w.depthNow(); n != 2 {
		t.Errorf("queued = %d, want the incident and the intent", n)
	}
	be.setUp()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Intent(ctx, 2, a); err != nil {
		t.Fatal(err)
	}
	if n := s.w.depthNow(); n != 0 {
		t.Errorf("queued = %d with the database up, want 0 (written synchronously)", n)
	}
}
