package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/chaos/load"
	"github.com/ares-sre/ares/engine"
)

// fakeStack is a product service with one replica that a kill takes down until "ARES"
// restarts it healthyAfter later; it records injections and reverts.
type fakeStack struct {
	healthyAfter time.Duration
	downAfter    time.Duration // the fault shows this long after the injection (0: at once)

	mu       sync.Mutex
	killedAt time.Time
	injected []chaos.Fault
	reverted int
}

type fakeInjection struct{ s *fakeStack }

func (f fakeInjection) Revert(context.Context) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.s.reverted++
	return nil
}

func (f fakeInjection) Targets() []chaos.Target {
	return []chaos.Target{{Name: "product-1", Service: "product"}}
}

func (s *fakeStack) Inject(_ context.Context, f chaos.Fault) (Injection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.injected = append(s.injected, f)
	s.killedAt = time.Now()
	return fakeInjection{s}, nil
}

func (s *fakeStack) Observe(_ context.Context, services []string) (map[string][]ReplicaState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := up("product-1")
	if since := time.Since(s.killedAt); !s.killedAt.IsZero() && since >= s.downAfter && since < s.healthyAfter {
		r = down("product-1")
	}
	return map[string][]ReplicaState{"product": {r}}, nil
}

func (s *fakeStack) Actions(_ context.Context, _ []string, _ time.Time) ([]Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.killedAt.IsZero() || time.Since(s.killedAt) < 50*time.Millisecond {
		return nil, nil
	}
	a := Action{At: s.killedAt.Add(50 * time.Millisecond)}
	a.Decision = engine.Decision{Action: "restart", Service: "product", Replica: "product-1", Reason: "exited with code 137"}
	a.Verdict, a.Outcome = engine.VerdictAdmit, &engine.Outcome{Result: engine.ResultOK}
	return []Action{a}, nil
}

func (s *fakeStack) Memory(context.Context, []string) (map[string]float64, error) {
	return map[string]float64{"product": 12}, nil
}

func fakeLoad(ctx context.Context, o load.Options, _ func(load.Snapshot)) (load.Report, error) {
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(o.Duration):
	}
	return load.Report{Target: o.Target, Requests: 100, Succeeded: 100, Start: start, End: time.Now()}, nil
}

const runDoc = `name: kill
target: http://127.0.0.1:8000
steps:
  - load: {rate: 10, duration: 1200ms}
  - wait: {for: 100ms}
  - inject: {kind: kill, service: product, duration: 30s}
  - wait: {until: service product healthy, timeout: 10s, fail: true}
expect:
  - action restart on product within 1s
  - service product healthy within 5s
  - availability >= 99%
  - memory of product <= 50% at end
`

func newFakeRunner(s *fakeStack, out *bytes.Buffer) *Runner {
	return &Runner{Injector: s, Observer: s, Ares: s, Load: fakeLoad, Out: out, SampleEvery: 20 * time.Millisecond}
}

func TestRunJudgesAndReverts(t *testing.T) {
	sc, err := Parse([]byte(runDoc))
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStack{healthyAfter: 1100 * time.Millisecond}
	var out bytes.Buffer
	rep, err := newFakeRunner(st, &out).Run(context.Background(), sc)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !rep.Pass {
		t.Errorf("report failed: %+v\n%s", rep.Results, out.String())
	}
	if len(st.injected) != 1 || st.injected[0].Kind != chaos.Kill || st.injected[0].Duration != 30*time.Second {
		t.Errorf("injected %+v", st.injected)
	}
	if st.reverted != 1 {
		t.Errorf("reverted %d times, want 1 (at the end)", st.reverted)
	}
	f := rep.Faults[0]
	if f.TimeToDetect == nil || *f.TimeToDetect < 50*time.Millisecond || *f.TimeToDetect > 100*time.Millisecond {
		t.Errorf("time to detect %v", f.TimeToDetect)
	}
	if f.TimeToRecover == nil || *f.TimeToRecover < 1100*time.Millisecond || *f.TimeToRecover > 2*time.Second {
		t.Errorf("time to recover %v", f.TimeToRecover)
	}
	for _, want := range []string{"injected kill on product for 30s into product-1", "product: product-1 exited unhealthy", "ARES: admit restart product/product-1", "service product healthy (after"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("timeline lacks %q:\n%s", want, out.String())
		}
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"PASS  kill", "time to detect", "ok   availability >= 99%: 100.00% (100 of 100 requests served)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, []*Report{rep}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Pass      bool
		Scenarios []struct {
			Faults []struct {
				TimeToDetect int64 `json:"time_to_detect_ns"`
			}
		}
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil || !doc.Pass || doc.Scenarios[0].Faults[0].TimeToDetect <= 0 {
		t.Errorf("json %v: %s", err, js.String())
	}
}

// "service X recovered" waits for the fault to show and pass: a fault that takes the replica
// down only 1.3 s after the injection (past the second a healthy wait grants Docker) ends the
// wait at its recovery, not at once as "healthy" would.
func TestWaitUntilRecovered(t *testing.T) {
	doc := strings.Replace(runDoc, "until: service product healthy", "until: service product recovered", 1)
	doc = strings.Replace(doc, "service product healthy within 5s", "service product recovered within 5s", 1)
	sc, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStack{downAfter: 1300 * time.Millisecond, healthyAfter: 1700 * time.Millisecond}
	var out bytes.Buffer
	rep, err := newFakeRunner(st, &out).Run(context.Background(), sc)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	var waited time.Duration
	for _, ev := range rep.Timeline {
		if rest, ok := strings.CutPrefix(ev.What, "service product recovered (after "); ok {
			waited, _ = time.ParseDuration(strings.TrimSuffix(rest, ")"))
		}
	}
	if waited < 1700*time.Millisecond {
		t.Errorf("the wait ended %s after it began, before the recovery at 1.7s:\n%s", waited, out.String())
	}
	f := rep.Faults[0]
	if f.TimeToRecover == nil || *f.TimeToRecover < 1700*time.Millisecond {
		t.Errorf("time to recover %v, want >= 1.7s", f.TimeToRecover)
	}
	if !rep.Pass {
		t.Errorf("report failed: %+v", rep.Results)
	}
}

// Without ARES's API (`ares chaos run --ares ""`, a baseline healer) the run still completes:
// the expectations that need ARES fail and say why, the others are judged.
func TestRunWithoutAres(t *testing.T) {
	sc, err := Parse([]byte(runDoc))
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStack{healthyAfter: 300 * time.Millisecond}
	var out bytes.Buffer
	r := newFakeRunner(st, &out)
	r.Ares = nil
	rep, err := r.Run(context.Background(), sc)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := map[string]Result{}
	for _, res := range rep.Results {
		got[res.Expectation] = res
	}
	for _, e := range []string{"action restart on product within 1s", "memory of product <= 50% at end"} {
		if res := got[e]; res.Pass || !strings.Contains(res.Detail, "no ARES API configured") {
			t.Errorf("%s: %+v, want a failure naming the missing API", e, res)
		}
	}
	if res := got["service product healthy within 5s"]; !res.Pass {
		t.Errorf("healthy: %+v", res)
	}
	if st.reverted != 1 {
		t.Errorf("reverted %d times, want 1", st.reverted)
	}
}

// A service that never recovers: the until wait with fail: true fails the run, and the fault
// is still reverted.
func TestRunFailsAndStillReverts(t *testing.T) {
	sc, _ := Parse([]byte(strings.Replace(runDoc, "timeout: 10s", "timeout: 300ms", 1)))
	st := &fakeStack{healthyAfter: time.Hour}
	var out bytes.Buffer
	rep, err := newFakeRunner(st, &out).Run(context.Background(), sc)
	if err == nil || !strings.Contains(err.Error(), "wait until service product healthy: not within 300ms") {
		t.Errorf("err %v", err)
	}
	if rep.Pass || st.reverted != 1 {
		t.Errorf("pass %v, reverted %d", rep.Pass, st.reverted)
	}
}

// Ctrl-C: the run stops, the fault is reverted, the report says so.
func TestRunInterruptedReverts(t *testing.T) {
	sc, _ := Parse([]byte(runDoc))
	st := &fakeStack{healthyAfter: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			st.mu.Lock()
			n := len(st.injected)
			st.mu.Unlock()
			if n > 0 {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var out bytes.Buffer
	rep, err := newFakeRunner(st, &out).Run(ctx, sc)
	if err == nil || rep.Pass {
		t.Errorf("interrupted run: err %v pass %v", err, rep.Pass)
	}
	if st.reverted != 1 {
		t.Errorf("reverted %d times, want 1", st.reverted)
	}
}

// every: the fault is injected again while the service runs, and every injection is
// reverted.
func TestRunRepeats(t *testing.T) {
	sc, err := Parse([]byte(`name: loop
steps:
  - inject: {kind: kill, service: product, duration: 2s, every: 100ms}
  - wait: {for: 550ms}
  - revert: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStack{healthyAfter: 0} // back at once: every tick finds it running
	var out bytes.Buffer
	rep, err := newFakeRunner(st, &out).Run(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.injected); n < 3 || st.reverted != n {
		t.Errorf("injected %d, reverted %d", n, st.reverted)
	}
	if rep.Faults[0].Times != len(st.injected) {
		t.Errorf("report counts %d injections, want %d", rep.Faults[0].Times, len(st.injected))
	}
}

func TestDryRunInjectsNothingElse(t *testing.T) {
	sc, _ := Parse([]byte(runDoc))
	st := &fakeStack{}
	var out bytes.Buffer
	r := newFakeRunner(st, &out)
	r.DryRun = true
	r.Load = func(context.Context, load.Options, func(load.Snapshot)) (load.Report, error) {
		t.Error("dry run sent load")
		return load.Report{}, nil
	}
	rep, err := r.Run(context.Background(), sc)
	if err != nil || !rep.DryRun {
		t.Fatalf("dry run: %v %+v", err, rep)
	}
	if !strings.Contains(out.String(), "would inject kill on product for 30s into product-1") {
		t.Errorf("plan:\n%s", out.String())
	}
}
