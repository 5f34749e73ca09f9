package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

const testToken = "s3cret-token-for-tests"

// fakeController records pauses like the governor does.
type fakeController struct {
	mu     sync.Mutex
	paused map[string]time.Time
	calls  []string
}

func (c *fakeController) Pause(service string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused == nil {
		c.paused = map[string]time.Time{}
	}
	c.paused[service] = until
	c.calls = append(c.calls, "pause "+service)
}

func (c *fakeController) Resume(service string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.paused, service)
	c.calls = append(c.calls, "resume "+service)
}

func (c *fakeController) Paused(time.Time) map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range c.paused {
		out[k] = v
	}
	return out
}

func (c *fakeController) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// fakeSubmitter records submitted decisions.
type fakeSubmitter struct {
	mu sync.Mutex
	ds []engine.Decision
}

func (s *fakeSubmitter) Submit(d engine.Decision) error {
	if err := d.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = append(s.ds, d)
	return nil
}

func (s *fakeSubmitter) Submitted() []engine.Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]engine.Decision(nil), s.ds...)
}

// fakeSet is a policy revision that restarts every exited replica.
type fakeSet struct{ rev string }

func (f fakeSet) Revision() string        { return f.rev }
func (f fakeSet) Files() []string         { return []string{"decisions.rego", "data.json"} }
func (f fakeSet) Partitioned() bool       { return true }
func (f fakeSet) PartitionReason() string { return "" }

func (f fakeSet) Evaluate(_ context.Context, facts *engine.Facts) ([]engine.Decision, []engine.RejectedDecision, error) {
	var ds []engine.Decision
	for name, svc := range facts.Services {
		for _, r := range svc.Replicas {
			if r.State == "exited" {
				ds = append(ds, engine.Decision{Action: engine.ActRestart, Service: name, Replica: r.Name, Reason: "exited"})
			}
		}
	}
	return ds, nil, nil
}

type fakePolicies struct {
	set engine.Evaluator
	err error
}

func (p *fakePolicies) Current() engine.Evaluator { return p.set }
func (p *fakePolicies) LastError() (error, time.Time) {
	if p.err == nil {
		return nil, time.Time{}
	}
	return p.err, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
}

type fixture struct {
	srv  *Server
	ctl  *fakeController
	sub  *fakeSubmitter
	pol  *fakePolicies
	logs *bytes.Buffer
}

func newFixture(t testing.TB, opt Options) *fixture {
	t.Helper()
	fx := &fixture{ctl: &fakeController{}, sub: &fakeSubmitter{}, pol: &fakePolicies{set: fakeSet{rev: "abc123def456"}}, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(&syncWriter{w: fx.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opt.AuthFailures == 0 {
		opt.AuthFailures = 1000 // the handler tests fail authentication on purpose, all from one address
	}
	srv, err := New(opt, Deps{Controller: fx.ctl, Policies: fx.pol, Submitter: fx.sub}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.loginDelay = 0
	fx.srv = srv
	return fx
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// replica returns a running, healthy replica.
func replica(name string) engine.Replica {
	return engine.Replica{ID: "c0ffee" + name + "0123456789", Name: name, State: "running", Health: "healthy",
		CPUPercent: 12.5, MemBytes: 64 << 20, MemLimitBytes: 256 << 20, MemPercent: 25}
}

// tick builds a tick record with services web (web-1, web-2) and api (api-1); down names the
// replicas that exited.
func tick(n uint64, at time.Time, down ...string) engine.TickRecord {
	f := engine.NewFacts(n, at)
	add := func(svc string, names ...string) {
		s := f.Service(svc)
		s.DesiredReplicas = len(names)
		for _, nm := range names {
			r := replica(nm)
			r.CPUPercent = float64(n%7) * 3
			for _, d := range down {
				if d == nm {
					r.State, r.Health, r.ExitCode, r.CPUPercent = "exited", "none", 137, 0
				}
			}
			s.Replicas = append(s.Replicas, r)
		}
	}
	add("web", "web-1", "web-2")
	add("api", "api-1")
	f.Services["api"].Metrics = &engine.Metrics{RPS: 40, ErrorRate: 0.01, LatencyP50Ms: 12, LatencyP99Ms: 80 + float64(n%5)}
	f.Services["api"].Anomaly = &engine.Anomaly{Score: 0.2 + float64(n%3)/10, Risk: "low"}
	f.Sensors["docker"] = engine.SensorStatus{OK: true}
	f.Summarize()
	return engine.TickRecord{Tick: n, At: at, Trigger: "interval", PolicyRev: "abc123def456", Facts: f,
		Decisions: []engine.Decision{}, Actions: []engine.Action{}, Duration: 3 * time.Millisecond}
}

// withAction adds a decision and the governor's verdict to rec.
func withAction(rec engine.TickRecord, d engine.Decision, verdict, why string, out *engine.Outcome) engine.TickRecord {
	rec.Decisions = append(rec.Decisions, d)
	rec.Actions = append(rec.Actions, engine.Action{Decision: d, Verdict: verdict, Why: why, Outcome: out})
	return rec
}

// feed records n healthy ticks one second apart, starting at t0.
func (fx *fixture) feed(t testing.TB, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if err := fx.srv.Record(context.Background(), tick(uint64(i), t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
}

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func (fx *fixture) do(t testing.TB, method, path, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != "" && method == http.MethodPost && !strings.HasPrefix(path, "/api/") {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	fx.srv.ServeHTTP(w, r)
	return w
}

// state is everything a control request may change, to check that refused ones change nothing.
func (fx *fixture) state() string {
	fx.srv.mu.RLock()
	audit := fx.srv.audit.len()
	fx.srv.mu.RUnlock()
	return fmt.Sprintf("calls=%v paused=%v submitted=%v audit=%d", fx.ctl.Calls(), fx.ctl.Paused(time.Time{}), fx.sub.Submitted(), audit)
}

var errReload = errors.New("policies/bad.rego:3: rego_parse_error: unexpected eof")
