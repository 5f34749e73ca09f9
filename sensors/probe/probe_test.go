package probe

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// scopeLabel scopes a test's sensor to the containers that test created.
const scopeLabel = "ares.test.probe"

var run = strconv.FormatInt(time.Now().UnixNano(), 36)

func scope(t testing.TB) string { return run + "-" + t.Name() }

func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func collect(t testing.TB, s *Sensor) *engine.Facts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := engine.NewFacts(1, time.Now())
	if err := s.Collect(ctx, f); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return f
}

func probeOf(t testing.TB, f *engine.Facts, svc string) engine.Probe {
	t.Helper()
	s := f.Services[svc]
	if s == nil || s.Probe == nil {
		t.Fatalf("no probe for %q in %v", svc, f.Services)
	}
	return *s.Probe
}

func get(t testing.TB, addr, path string) {
	t.Helper()
	if code, body, err := dockertest.Get(addr, path); err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v", path, code, body, err)
	}
}

// A real container: healthy, then sick until the failures reach 3, then well again; a slow
// endpoint of the same container fails at the timeout.
func TestContainer(t *testing.T) {
	id := dockertest.Run(t, dockertest.Spec{Name: "ares-probe-" + run, Publish: true,
		Labels: map[string]string{scopeLabel: scope(t)}})
	addr := dockertest.HostPort(t, id)
	dockertest.Eventually(t, 10*time.Second, "test server answers", func() bool {
		code, _, err := dockertest.Get(addr, "/health")
		return err == nil && code == http.StatusOK
	})
	timeout := 300 * time.Millisecond
	s := New(nil, Options{Timeout: timeout, Targets: map[string]string{
		"web":  "http://" + addr + "/health",
		"slow": "http://" + addr + "/slow?ms=3000",
	}}, logger(t))
	defer s.Close()

	f := collect(t, s)
	if p := probeOf(t, f, "web"); !p.OK || p.ConsecutiveFailures != 0 || p.LatencyMs <= 0 {
		t.Fatalf("healthy: %+v, want ok, 0 failures, latency > 0", p)
	}

	get(t, addr, "/sick")
	for i := 1; i <= 3; i++ {
		if p := probeOf(t, collect(t, s), "web"); p.OK || p.ConsecutiveFailures != i {
			t.Fatalf("sick, collect %d: %+v, want not ok with %d failures", i, p, i)
		}
	}

	get(t, addr, "/well")
	if p := probeOf(t, collect(t, s), "web"); !p.OK || p.ConsecutiveFailures != 0 {
		t.Fatalf("well again: %+v, want ok with 0 failures", p)
	}

	start := time.Now()
	f = collect(t, s)
	took := time.Since(start)
	p := probeOf(t, f, "slow")
	if p.OK || p.ConsecutiveFailures != 6 {
		t.Fatalf("slow: %+v, want its sixth failure in a row", p)
	}
	limit := float64(timeout.Milliseconds()) + 100
	if p.LatencyMs > limit || took > timeout+200*time.Millisecond {
		t.Fatalf("slow probe took %.1f ms, collect %s; want both bounded by the %s timeout", p.LatencyMs, took, timeout)
	}
}

// The URL comes from the ares.probe.url label of a replica, found through the Docker API, and
// the configured target wins over it.
func TestLabelDiscovery(t *testing.T) {
	target := dockertest.Run(t, dockertest.Spec{Name: "ares-probe-target-" + run, Publish: true,
		Labels: map[string]string{scopeLabel: scope(t) + "-target"}})
	addr := dockertest.HostPort(t, target)
	dockertest.Eventually(t, 10*time.Second, "test server answers", func() bool {
		code, _, err := dockertest.Get(addr, "/health")
		return err == nil && code == http.StatusOK
	})
	for i, svc := range []string{"web", "web", "api"} {
		url := "http://" + addr + "/health"
		if svc == "api" {
			url = "http://" + addr + "/status?code=500"
		}
		dockertest.Run(t, dockertest.Spec{Name: "ares-probe-" + run + "-" + strconv.Itoa(i),
			Labels: map[string]string{scopeLabel: scope(t), LabelEnable: "true", LabelService: svc, LabelURL: url}})
	}
	dockertest.Run(t, dockertest.Spec{Name: "ares-probe-" + run + "-nourl",
		Labels: map[string]string{scopeLabel: scope(t), LabelEnable: "true", LabelService: "worker"}})

	s := New(dockertest.Client(t), Options{Labels: []string{scopeLabel + "=" + scope(t)}}, logger(t))
	defer s.Close()
	f := collect(t, s)
	if p := probeOf(t, f, "web"); !p.OK {
		t.Errorf("web: %+v, want ok", p)
	}
	if p := probeOf(t, f, "api"); p.OK || p.ConsecutiveFailures != 1 {
		t.Errorf("api (500): %+v, want a failure", p)
	}
	if _, ok := f.Services["worker"]; ok {
		t.Errorf("worker has no probe URL but got a section: %+v", f.Services["worker"])
	}

	// Configuration wins over the label.
	s = New(dockertest.Client(t), Options{Labels: []string{scopeLabel + "=" + scope(t)},
		Targets: map[string]string{"api": "http://" + addr + "/health"}}, logger(t))
	defer s.Close()
	if p := probeOf(t, collect(t, s), "api"); !p.OK {
		t.Errorf("api with a configured target: %+v, want ok", p)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	s := New(nil, Options{Timeout: 500 * time.Millisecond, Targets: map[string]string{"gone": "http://" + addr + "/health"}}, logger(t))
	for i := 1; i <= 3; i++ {
		p := probeOf(t, collect(t, s), "gone")
		if p.OK || p.ConsecutiveFailures != i || p.LatencyMs > 600 {
			t.Fatalf("collect %d: %+v, want failure %d within the timeout", i, p, i)
		}
	}
}

// Probes run in parallel, at most Concurrency at once, and all of them within one timeout:
// probes still waiting for a slot at the deadline fail.
func TestParallelBounded(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-time.After(150 * time.Millisecond):
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	targets := map[string]string{}
	for i := range 8 {
		targets["svc"+strconv.Itoa(i)] = srv.URL + "/?i=" + strconv.Itoa(i)
	}

	s := New(nil, Options{Timeout: 2 * time.Second, Concurrency: 8, Targets: targets}, logger(t))
	defer s.Close()
	start := time.Now()
	f := collect(t, s)
	if took := time.Since(start); took > time.Second {
		t.Errorf("8 probes of 150 ms with 8 slots took %s, want them in parallel", took)
	}
	for svc := range targets {
		if p := probeOf(t, f, svc); !p.OK {
			t.Errorf("%s: %+v, want ok", svc, p)
		}
	}

	peak.Store(0)
	s = New(nil, Options{Timeout: 400 * time.Millisecond, Concurrency: 2, Targets: targets}, logger(t))
	defer s.Close()
	start = time.Now()
	f = collect(t, s)
	if took := time.Since(start); took > 600*time.Millisecond {
		t.Errorf("collect took %s, want it bounded by the 400ms timeout", took)
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d probes in flight at once, want at most 2", p)
	}
	var ok, failed int
	for svc := range targets {
		if probeOf(t, f, svc).OK {
			ok++
		} else {
			failed++
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("ok=%d failed=%d, want some of each (2 slots × 400ms fit about 4 probes of 150ms)", ok, failed)
	}
}

// Failures are forgotten when a service loses its probe, and bad configured URLs are skipped.
func TestForgetAndBadTargets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	s := New(nil, Options{Targets: map[string]string{"a": srv.URL, "bad": "ftp://x", "nohost": "http://"}}, logger(t))
	f := collect(t, s)
	if p := probeOf(t, f, "a"); p.OK || p.ConsecutiveFailures != 1 {
		t.Fatalf("a: %+v", p)
	}
	if len(f.Services) != 1 {
		t.Fatalf("services %v, want only a", f.Services)
	}
	s.mu.Lock()
	s.opt.Targets = map[string]string{}
	s.mu.Unlock()
	collect(t, s)
	if len(s.failures) != 0 {
		t.Fatalf("failures %v after the target went away, want none", s.failures)
	}
}
