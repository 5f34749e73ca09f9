package trend

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

const mib = 1 << 20

// tick runs a over one document holding replicas of service web at t0+sec.
func tick(t *testing.T, a *Analyzer, sec float64, reps ...engine.Replica) *engine.Facts {
	t.Helper()
	f := engine.NewFacts(1, time.Unix(1_700_000_000, 0).Add(time.Duration(sec*float64(time.Second))))
	f.Service("web").Replicas = append(f.Service("web").Replicas, reps...)
	if err := a.Analyze(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	return f
}

func rep(name string, mem, limit int64) engine.Replica {
	return engine.Replica{ID: "id-" + name, Name: name, State: "running", MemBytes: mem, MemLimitBytes: limit}
}

func trendOf(f *engine.Facts, i int) *engine.Trend { return f.Services["web"].Replicas[i].Trend }

func TestSlopeAndTimeToLimit(t *testing.T) {
	a := New(Options{})
	var f *engine.Facts
	for i := range 5 {
		// 1 MiB/s growth from 10 MiB, limit 64 MiB; an unlimited replica grows too.
		f = tick(t, a, float64(i), rep("a", 10*mib+int64(i)*mib, 64*mib), rep("b", 10*mib+int64(i)*mib, 0))
		if i < 4 && trendOf(f, 0) != nil {
			t.Fatalf("trend after %d samples, want none before 5", i+1)
		}
	}
	tr := trendOf(f, 0)
	if tr == nil || math.Abs(tr.MemSlopeBytesPerS-mib) > 1e-6 {
		t.Fatalf("trend = %+v, want slope 1 MiB/s", tr)
	}
	if tr.SecondsToMemLimit == nil || math.Abs(*tr.SecondsToMemLimit-50) > 1e-6 {
		t.Errorf("seconds_to_mem_limit = %v, want 50 (64-14 MiB at 1 MiB/s)", tr.SecondsToMemLimit)
	}
	if b := trendOf(f, 1); b == nil || b.SecondsToMemLimit != nil {
		t.Errorf("unlimited replica trend = %+v, want a slope and null time to limit", b)
	}

	// Flat or shrinking memory: no time to limit.
	a = New(Options{})
	for i := range 6 {
		f = tick(t, a, float64(i), rep("a", 20*mib-int64(i)*1000, 64*mib))
	}
	if tr := trendOf(f, 0); tr == nil || tr.MemSlopeBytesPerS >= 0 || tr.SecondsToMemLimit != nil {
		t.Errorf("shrinking trend = %+v, want negative slope and null", tr)
	}
}

func TestWindowSlides(t *testing.T) {
	a := New(Options{Window: 5})
	var f *engine.Facts
	// Ten samples growing fast, then five flat: only the last five count.
	for i := range 10 {
		f = tick(t, a, float64(i), rep("a", int64(i+1)*10*mib, 0))
	}
	for i := 10; i < 15; i++ {
		f = tick(t, a, float64(i), rep("a", 100*mib, 0))
	}
	if tr := trendOf(f, 0); tr == nil || tr.MemSlopeBytesPerS != 0 {
		t.Errorf("trend = %+v, want slope 0 over the last 5 samples", tr)
	}
	if s := a.reps[key{"web", "a"}]; len(s.x) != 5 {
		t.Errorf("window holds %d samples, want 5", len(s.x))
	}
}

func TestResets(t *testing.T) {
	grow := func(a *Analyzer, from, n int, r func(i int) engine.Replica) *engine.Facts {
		var f *engine.Facts
		for i := from; i < from+n; i++ {
			f = tick(t, a, float64(i), r(i))
		}
		return f
	}
	base := func(i int) engine.Replica { return rep("a", 20*mib+int64(i)*mib, 64*mib) }
	for _, tc := range []struct {
		name  string
		after func(i int) engine.Replica
	}{
		{"new container id", func(i int) engine.Replica { r := base(i); r.ID = "other"; return r }},
		{"restart count changed", func(i int) engine.Replica { r := base(i); r.RestartCount = 1; return r }},
		{"memory dropped by more than half", func(i int) engine.Replica { r := base(i); r.MemBytes = 4*mib + int64(i); return r }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Options{})
			if f := grow(a, 0, 6, base); trendOf(f, 0) == nil {
				t.Fatal("no trend after 6 samples")
			}
			// The window starts again: no trend until 5 new samples.
			if f := grow(a, 6, 4, tc.after); trendOf(f, 0) != nil {
				t.Errorf("trend %+v only 4 samples after the reset", trendOf(f, 0))
			}
			if f := grow(a, 10, 1, tc.after); trendOf(f, 0) == nil {
				t.Error("no trend 5 samples after the reset")
			}
		})
	}

	t.Run("not running", func(t *testing.T) {
		a := New(Options{})
		grow(a, 0, 6, base)
		stopped := base(6)
		stopped.State, stopped.MemBytes = "exited", 0
		if f := tick(t, a, 6, stopped); trendOf(f, 0) != nil {
			t.Errorf("exited replica has trend %+v", trendOf(f, 0))
		}
		if s := a.reps[key{"web", "a"}]; len(s.x) != 0 {
			t.Errorf("window not reset while not running: %d samples", len(s.x))
		}
	})
	t.Run("forgets replicas gone", func(t *testing.T) {
		a := New(Options{})
		grow(a, 0, 3, base)
		tick(t, a, 3, rep("b", mib, 0))
		if _, ok := a.reps[key{"web", "a"}]; ok || len(a.reps) != 1 {
			t.Errorf("windows = %v, want only b", a.reps)
		}
	})
	t.Run("unmeasured sample skipped", func(t *testing.T) {
		a := New(Options{})
		grow(a, 0, 5, base)
		r := base(5)
		r.MemBytes = 0
		f := tick(t, a, 5, r)
		if tr := trendOf(f, 0); tr == nil || math.Abs(tr.MemSlopeBytesPerS-mib) > 1e-6 {
			t.Errorf("trend = %+v, want the previous slope kept", tr)
		}
	})
}
