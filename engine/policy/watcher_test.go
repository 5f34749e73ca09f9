package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ares-sre/ares/engine"
)

const watchPolicy = `package ares

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.state == "%s"
	d := {"action": "restart", "service": name, "replica": r.name, "reason": "state"}
}
`

func statePolicy(state string) string { return strings.Replace(watchPolicy, "%s", state, 1) }

// startWatcher runs a watcher on dir until the test ends.
func startWatcher(t *testing.T, dir string) (*Watcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	w, err := NewWatcher(dir, Options{Debounce: 20 * time.Millisecond}, reg)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	time.Sleep(50 * time.Millisecond) // let Run add its watches
	return w, reg
}

// waitFor polls cond for up to 250ms, the reload target.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(250 * time.Millisecond)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func restarts(t *testing.T, ev engine.Evaluator) []string {
	t.Helper()
	ds, _, err := ev.Evaluate(context.Background(), factsWith(map[string]string{"a": "exited", "b": "dead"}))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Service)
	}
	return out
}

func TestWatcherReload(t *testing.T) {
	dir := policyDir(t, map[string]string{"p.rego": statePolicy("exited")})
	w, reg := startWatcher(t, dir)
	var mu sync.Mutex
	var hooked []string
	w.OnReload(func(rev string, err error) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, rev+" "+errString(err))
	})
	rev0 := w.Current().Revision()
	if got := restarts(t, w.Current()); len(got) != 1 || got[0] != "a" {
		t.Fatalf("initial decisions %v, want [a]", got)
	}
	if v := value(t, w.m.revInfo.WithLabelValues(rev0)); v != 1 {
		t.Errorf("revision_info{%s} = %v, want 1", rev0, v)
	}

	t.Run("edit changes revision and decisions", func(t *testing.T) {
		start := time.Now()
		writeFiles(t, dir, map[string]string{"p.rego": statePolicy("dead")})
		waitFor(t, "new revision", func() bool { return w.Current().Revision() != rev0 })
		t.Logf("write → new revision in %v", time.Since(start))
		if got := restarts(t, w.Current()); len(got) != 1 || got[0] != "b" {
			t.Errorf("decisions after edit %v, want [b]", got)
		}
		if got := series(t, reg, "ares_policy_revision_info"); got != 1 {
			t.Errorf("revision_info has %d series, want 1 (old label deleted)", got)
		}
	})

	t.Run("broken file keeps the old revision", func(t *testing.T) {
		live := w.Current().Revision()
		failures := value(t, w.m.reloads.WithLabelValues("failure"))
		writeFiles(t, dir, map[string]string{"broken.rego": "package ares\n\ndecisions contains x if {\n"})
		waitFor(t, "refused reload", func() bool { err, _ := w.LastError(); return err != nil })
		err, at := w.LastError()
		if want := filepath.Join(dir, "broken.rego") + ":"; !strings.Contains(err.Error(), want) || at.IsZero() {
			t.Errorf("LastError = %v at %v, want it to name %s", err, at, want)
		}
		if w.Current().Revision() != live {
			t.Errorf("revision changed to %s after a broken write", w.Current().Revision())
		}
		if got := value(t, w.m.reloads.WithLabelValues("failure")); got != failures+1 {
			t.Errorf("failures = %v, want %v", got, failures+1)
		}
		if got := value(t, w.m.lastOK); got != 0 {
			t.Errorf("last_reload_success = %v, want 0", got)
		}
		if got := restarts(t, w.Current()); len(got) != 1 || got[0] != "b" {
			t.Errorf("old revision no longer decides: %v", got)
		}

		// Fixing it via an editor-style rename makes it live again.
		tmp := filepath.Join(dir, ".broken.rego.swp")
		if err := os.WriteFile(tmp, []byte("package ares\n\nextra := 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "broken.rego")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "recovery", func() bool { err, _ := w.LastError(); return err == nil })
		if got := value(t, w.m.lastOK); got != 1 {
			t.Errorf("last_reload_success = %v, want 1", got)
		}
	})

	mu.Lock()
	defer mu.Unlock()
	if len(hooked) < 3 || !strings.Contains(hooked[1], "broken.rego") {
		t.Errorf("OnReload calls %q, want success, failure naming broken.rego, success", hooked)
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func TestWatcherNewSubdir(t *testing.T) {
	dir := policyDir(t, map[string]string{"p.rego": statePolicy("exited")})
	w, _ := startWatcher(t, dir)
	rev0 := w.Current().Revision()
	if err := os.Mkdir(filepath.Join(dir, "extra"), 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the watcher adds the new directory
	writeFiles(t, dir, map[string]string{"extra/more.rego": strings.Replace(statePolicy("dead"), "package ares", "package ares", 1)})
	waitFor(t, "file in the new subdirectory to load", func() bool { return w.Current().Revision() != rev0 })
	if got := restarts(t, w.Current()); len(got) != 2 {
		t.Errorf("decisions %v, want restarts of a and b", got)
	}
	if files := w.Set().Files(); len(files) != 2 || files[0] != "extra/more.rego" {
		t.Errorf("Files() = %v", files)
	}
}

func TestNewWatcherFails(t *testing.T) {
	dir := policyDir(t, map[string]string{"p.rego": "package ares\n\ndecisions contains"})
	if _, err := NewWatcher(dir, Options{}, prometheus.NewRegistry()); err == nil || !strings.Contains(err.Error(), "p.rego:") {
		t.Errorf("NewWatcher error = %v, want it to name p.rego", err)
	}
}

func TestWatcherCacheMetrics(t *testing.T) {
	w, err := NewWatcher(packDir(t), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := factsWith(map[string]string{"a": "running", "b": "exited"})
	for range 2 {
		if _, _, err := w.Current().Evaluate(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	if h, m := value(t, w.m.cache.hits), value(t, w.m.cache.misses); h != 2 || m != 2 {
		t.Errorf("cache hits %v misses %v, want 2 and 2", h, m)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if pb.Counter != nil {
		return pb.Counter.GetValue()
	}
	return pb.Gauge.GetValue()
}

// series counts the series of one metric family in reg.
func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.Metric)
		}
	}
	return 0
}
