package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

type evalFunc func(f *Facts) []Decision

func (e evalFunc) Revision() string { return "rev1" }
func (e evalFunc) Evaluate(_ context.Context, f *Facts) ([]Decision, []RejectedDecision, error) {
	return e(f), nil, nil
}
func (e evalFunc) Current() Evaluator { return e }

type memJournal struct {
	mu   sync.Mutex
	recs []TickRecord
}

func (m *memJournal) Record(_ context.Context, r TickRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
	return nil
}

func (m *memJournal) last() TickRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[len(m.recs)-1]
}

type fakeActuator struct {
	mu   sync.Mutex
	got  []Action
	fail bool
}

func (a *fakeActuator) Name() string { return "fake" }
func (a *fakeActuator) Act(_ context.Context, x Action) (Outcome, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, x)
	if a.fail {
		return Outcome{}, errors.New("boom")
	}
	return Outcome{Detail: "did it"}, nil
}

func dockerSensor(state string) Sensor {
	return SensorFunc{N: "docker", F: func(_ context.Context, f *Facts) error {
		s := f.Service("api")
		s.Replicas = append(s.Replicas, Replica{ID: "c1", Name: "api-1", State: state, CPUPercent: 30}, Replica{Name: "api-2", State: "running", CPUPercent: 50, Scaled: true})
		s.DesiredReplicas = 1
		return nil
	}}
}

// restartExited is a tiny policy written in Go for engine tests.
var restartExited = evalFunc(func(f *Facts) []Decision {
	var out []Decision
	for name, s := range f.Services {
		for _, r := range s.Replicas {
			if r.State == "exited" {
				out = append(out, Decision{Action: ActRestart, Service: name, Replica: r.Name, Reason: "exited"})
			}
		}
	}
	return out
})

func TestTickGatherEvaluateActRecord(t *testing.T) {
	j := &memJournal{}
	act := &fakeActuator{}
	slow := SensorFunc{N: "slow", F: func(ctx context.Context, f *Facts) error {
		f.Service("api").Probe = &Probe{OK: true} // must be discarded: this sensor overruns
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		return nil
	}}
	panics := SensorFunc{N: "panics", F: func(context.Context, *Facts) error { panic("bad sensor") }}
	probe := SensorFunc{N: "probe", F: func(_ context.Context, f *Facts) error {
		f.Service("api").Probe = &Probe{OK: false, ConsecutiveFailures: 3}
		return nil
	}}
	e, err := New(Options{SensorTimeout: 30 * time.Millisecond, Sensors: []Sensor{dockerSensor("exited"), slow, panics, probe},
		Policy: restartExited, Journal: j, Actuators: map[string]Actuator{ActRestart: act}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Tick(context.Background(), time.Now(), "once"); err != nil {
		t.Fatal(err)
	}
	rec := j.last()
	f := rec.Facts
	if !f.Sensors["docker"].OK || !f.Sensors["probe"].OK {
		t.Errorf("healthy sensors reported not ok: %+v", f.Sensors)
	}
	if st := f.Sensors["slow"]; st.OK || !strings.Contains(st.Error, "timed out") {
		t.Errorf("slow sensor status = %+v", st)
	}
	if st := f.Sensors["panics"]; st.OK || !strings.Contains(st.Error, "panic: bad sensor") {
		t.Errorf("panicking sensor status = %+v", st)
	}
	api := f.Services["api"]
	if api.Probe == nil || api.Probe.ConsecutiveFailures != 3 {
		t.Errorf("probe section = %+v (the slow sensor's write must not win)", api.Probe)
	}
	if s := api.Summary; s == nil || s.Running != 1 || s.MeanCPUPercent != 50 || s.ScaledReplicas != 1 || s.UnhealthyOrDown != 1 {
		t.Errorf("summary = %+v", api.Summary)
	}
	if len(rec.Actions) != 1 || rec.Actions[0].Outcome == nil || rec.Actions[0].Outcome.Result != ResultOK || rec.Actions[0].Outcome.Detail != "did it" {
		t.Fatalf("actions = %+v", rec.Actions)
	}
	if len(act.got) != 1 || act.got[0].Replica != "api-1" {
		t.Errorf("actuator got %+v", act.got)
	}
	if s := act.got[0].Sensed; s == nil || s.ID != "c1" || s.State != "exited" {
		t.Errorf("the action must carry the replica as sensed this tick: %+v", s)
	}
	if rec.PolicyRev != "rev1" || rec.Trigger != "once" {
		t.Errorf("record = %+v", rec)
	}
}

func TestDryRunCallsNoActuator(t *testing.T) {
	j := &memJournal{}
	act := &fakeActuator{}
	e, _ := New(Options{DryRun: true, Sensors: []Sensor{dockerSensor("exited")}, Policy: restartExited, Journal: j,
		Actuators: map[string]Actuator{ActRestart: act}})
	_ = e.Tick(context.Background(), time.Now(), "once")
	if len(act.got) != 0 {
		t.Fatalf("dry run called the actuator: %+v", act.got)
	}
	rec := j.last()
	if !rec.DryRun || len(rec.Actions) != 1 || rec.Actions[0].Verdict != VerdictDryRun || rec.Actions[0].Outcome != nil {
		t.Errorf("record = %+v", rec.Actions)
	}
}

func TestActuatorFailureAndMissingActuatorBecomeData(t *testing.T) {
	j := &memJournal{}
	e, _ := New(Options{Sensors: []Sensor{dockerSensor("exited")}, Policy: evalFunc(func(*Facts) []Decision {
		return []Decision{{Action: ActRestart, Service: "api", Replica: "api-1", Reason: "x"}, {Action: ActNotify, Service: "api", Reason: "y"}}
	}), Journal: j, Actuators: map[string]Actuator{ActRestart: &fakeActuator{fail: true}}})
	if err := e.Tick(context.Background(), time.Now(), "once"); err != nil {
		t.Fatal(err)
	}
	acts := j.last().Actions
	if acts[0].Outcome.Result != ResultError || acts[0].Outcome.Error != "boom" {
		t.Errorf("failed actuator outcome = %+v", acts[0].Outcome)
	}
	if acts[1].Outcome.Result != ResultError || !strings.Contains(acts[1].Outcome.Error, `no actuator configured for "notify"`) {
		t.Errorf("missing actuator outcome = %+v", acts[1].Outcome)
	}
}

type wakeSensor struct {
	SensorFunc
	ready chan func(string)
}

func (w wakeSensor) Watch(ctx context.Context, wake func(string)) error {
	w.ready <- wake
	<-ctx.Done()
	return nil
}

func TestRunTicksAtOnceOnWake(t *testing.T) {
	j := &memJournal{}
	ws := wakeSensor{SensorFunc: SensorFunc{N: "docker", F: func(context.Context, *Facts) error { return nil }}, ready: make(chan func(string), 1)}
	e, _ := New(Options{Interval: time.Hour, Sensors: []Sensor{ws}, Policy: restartExited, Journal: j})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	wake := <-ws.ready
	waitFor(t, func() bool { j.mu.Lock(); defer j.mu.Unlock(); return len(j.recs) == 1 }) // the first tick runs at start
	start := time.Now()
	wake("event:die")
	waitFor(t, func() bool { j.mu.Lock(); defer j.mu.Unlock(); return len(j.recs) == 2 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("woken tick took %s", d)
	}
	if got := j.last().Trigger; got != "event:die" {
		t.Errorf("trigger = %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not met in 5s")
}

func TestDecisionValidate(t *testing.T) {
	cases := []struct {
		d    Decision
		want string
	}{
		{Decision{Action: "restart", Service: "a", Replica: "a-1", Reason: "r"}, ""},
		{Decision{Action: "scale_out", Service: "a", Reason: "r"}, ""},
		{Decision{Service: "a", Reason: "r"}, `missing field "action"`},
		{Decision{Action: "reboot", Service: "a", Reason: "r"}, `unknown action "reboot"`},
		{Decision{Action: "restart", Reason: "r"}, `missing field "service"`},
		{Decision{Action: "restart", Service: "a"}, `missing field "reason"`},
		{Decision{Action: "scale_in", Service: "a", Replica: "a-1", Reason: "r"}, "service-level"},
	}
	for _, c := range cases {
		err := c.d.Validate()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: err %v, want %q", c.d, err, c.want)
		}
	}
	if Rank(ActRecycle) >= Rank(ActRestart) {
		t.Error("recycle must outrank restart")
	}
}

type intentJournal struct {
	memJournal
	events []string
	fail   bool
}

func (j *intentJournal) Intent(_ context.Context, tick uint64, a Action) (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail {
		return "", errors.New("db down")
	}
	j.events = append(j.events, "intent "+a.Target())
	return "id1", nil
}

func (j *intentJournal) Outcome(_ context.Context, id string, a Action) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, "outcome "+id+" "+a.Outcome.Result)
	return nil
}

type orderActuator struct{ j *intentJournal }

func (o orderActuator) Name() string { return "order" }
func (o orderActuator) Act(_ context.Context, a Action) (Outcome, error) {
	o.j.mu.Lock()
	defer o.j.mu.Unlock()
	o.j.events = append(o.j.events, "act "+a.Target())
	return Outcome{}, nil
}

func TestIntentBeforeActionOutcomeAfter(t *testing.T) {
	j := &intentJournal{}
	e, _ := New(Options{Sensors: []Sensor{dockerSensor("exited")}, Policy: restartExited, Journal: j,
		Actuators: map[string]Actuator{ActRestart: orderActuator{j}}})
	if err := e.Tick(context.Background(), time.Now(), "once"); err != nil {
		t.Fatal(err)
	}
	want := []string{"intent api/api-1", "act api/api-1", "outcome id1 ok"}
	if strings.Join(j.events, "|") != strings.Join(want, "|") {
		t.Errorf("events = %v, want %v", j.events, want)
	}

	j = &intentJournal{fail: true}
	e, _ = New(Options{Sensors: []Sensor{dockerSensor("exited")}, Policy: restartExited, Journal: j,
		Actuators: map[string]Actuator{ActRestart: orderActuator{j}}})
	_ = e.Tick(context.Background(), time.Now(), "once")
	if len(j.events) != 0 {
		t.Errorf("an action whose intent was not journaled ran: %v", j.events)
	}
	if out := j.last().Actions[0].Outcome; out == nil || !strings.Contains(out.Error, "not carried out: journal: db down") {
		t.Errorf("outcome = %+v", out)
	}
}

func TestSubmittedDecisionRunsNextTick(t *testing.T) {
	j := &memJournal{}
	act := &fakeActuator{}
	e, _ := New(Options{Sensors: []Sensor{dockerSensor("running")}, Policy: restartExited, Journal: j,
		Actuators: map[string]Actuator{ActRecycle: act}})
	if err := e.Submit(Decision{Action: "reboot", Service: "api", Reason: "x"}); err == nil {
		t.Fatal("an invalid manual decision was accepted")
	}
	if err := e.Submit(Decision{Action: ActRecycle, Service: "api", Replica: "api-1", Reason: "manual: by alice"}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-e.wake:
		if r != "manual" {
			t.Errorf("wake reason %q", r)
		}
	default:
		t.Error("Submit did not wake the loop")
	}
	_ = e.Tick(context.Background(), time.Now(), "manual")
	if len(act.got) != 1 || act.got[0].Reason != "manual: by alice" {
		t.Fatalf("actuator got %+v", act.got)
	}
	_ = e.Tick(context.Background(), time.Now(), "interval")
	if len(act.got) != 1 {
		t.Errorf("a manual decision ran twice")
	}
}
