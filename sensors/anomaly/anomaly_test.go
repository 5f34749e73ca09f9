package anomaly

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// world makes facts for services with noisy steady CPU, memory and metrics; cpu overrides a
// service's CPU for one tick.
type world struct {
	rng  *rand.Rand
	tick uint64
}

func (w *world) facts(names []string, cpu map[string]float64) *engine.Facts {
	w.tick++
	f := engine.NewFacts(w.tick, time.Unix(int64(w.tick)*5, 0))
	for _, n := range names {
		s := f.Service(n)
		c := 20 + 2*w.rng.NormFloat64()
		if v, ok := cpu[n]; ok {
			c = v
		}
		s.Replicas = append(s.Replicas, engine.Replica{Name: n + "-1", State: "running", Health: "healthy",
			CPUPercent: max(0, c), MemPercent: 40 + w.rng.NormFloat64()})
		s.Metrics = &engine.Metrics{RPS: 100 + 5*w.rng.NormFloat64(), ErrorRate: 0.001, LatencyP99Ms: 80 + 4*w.rng.NormFloat64()}
	}
	return f
}

func run(t testing.TB, a *Analyzer, w *world, names []string, ticks int, cpu map[string]float64) *engine.Facts {
	var f *engine.Facts
	for range ticks {
		f = w.facts(names, cpu)
		if err := a.Analyze(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		a.Wait() // tests: make background refits land at a known tick
	}
	return f
}

func TestWarmUpThenVerdicts(t *testing.T) {
	// Wild values during warm-up: still no verdict.
	a := NewAnalyzer(Options{WarmUp: 40, RefitEvery: 20}, nil)
	w := &world{rng: rand.New(rand.NewPCG(1, 1))}
	for i := range 40 {
		cpu := map[string]float64{}
		if i%7 == 6 {
			cpu["api"] = 900
		}
		f := run(t, a, w, []string{"api"}, 1, cpu)
		an := f.Services["api"].Anomaly
		if !an.WarmingUp || an.IsAnomaly || an.Risk != "low" || an.Score != 0 || an.Features != nil {
			t.Fatalf("tick %d: %+v, want warming up", i+1, an)
		}
	}
	f := run(t, a, w, []string{"api"}, 1, nil)
	an := f.Services["api"].Anomaly
	if an.WarmingUp || an.Features == nil || len(an.Features) != len(Features) {
		t.Fatalf("after warm-up: %+v", an)
	}
}

func TestRetraining(t *testing.T) {
	a := NewAnalyzer(Options{WarmUp: 30, RefitEvery: 10}, nil)
	w := &world{rng: rand.New(rand.NewPCG(2, 2))}
	var ages []int
	for range 45 {
		f := run(t, a, w, []string{"api"}, 1, nil)
		if an := f.Services["api"].Anomaly; !an.WarmingUp {
			ages = append(ages, an.ModelAgeTicks)
		}
	}
	// First model fitted at tick 30, refits at 40 and 50...: ages 0..9, then 0 again.
	want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4}
	if fmt.Sprint(ages) != fmt.Sprint(want) {
		t.Fatalf("model ages %v, want %v", ages, want)
	}
}

func TestCPUJumpGoesHighSteadyStaysLow(t *testing.T) {
	a := NewAnalyzer(Options{}, nil)
	w := &world{rng: rand.New(rand.NewPCG(3, 3))}
	names := []string{"steady", "burn"}
	for i := range 200 {
		f := run(t, a, w, names, 1, nil)
		if i > 60 {
			for _, n := range names {
				if r := f.Services[n].Anomaly.Risk; r == "high" {
					t.Fatalf("tick %d: %s risk high on steady load", i+1, n)
				}
			}
		}
	}
	high := -1
	for i := range 10 {
		f := run(t, a, w, names, 1, map[string]float64{"burn": 190 + 5*w.rng.NormFloat64()})
		if r := f.Services["steady"].Anomaly.Risk; r == "high" {
			t.Fatalf("steady service high at tick %d of the burn", i+1)
		}
		if an := f.Services["burn"].Anomaly; an.Risk == "high" && high < 0 {
			high = i + 1
			if len(an.Drivers) == 0 || an.Drivers[0] != "cpu_percent" {
				t.Errorf("drivers %v, want cpu_percent first", an.Drivers)
			}
		}
	}
	if high < 0 {
		t.Fatal("CPU burn never reached high risk within 10 ticks")
	}
	t.Logf("CPU burn high after %d tick(s)", high)
}

func TestSaveLoadKeepsModels(t *testing.T) {
	a := NewAnalyzer(Options{WarmUp: 30, RefitEvery: 10}, nil)
	w := &world{rng: rand.New(rand.NewPCG(4, 4))}
	run(t, a, w, []string{"api", "db"}, 50, nil)
	path := filepath.Join(t.TempDir(), "anomaly.gob")
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	b := NewAnalyzer(Options{WarmUp: 30, RefitEvery: 10}, nil)
	if ok, err := b.Load(path); err != nil || !ok {
		t.Fatalf("Load = %v, %v", ok, err)
	}
	// The same next tick gives the same verdict from both.
	fa := w.facts([]string{"api", "db"}, nil)
	fb := cloneFacts(fa)
	if err := a.Analyze(context.Background(), fa); err != nil {
		t.Fatal(err)
	}
	if err := b.Analyze(context.Background(), fb); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"api", "db"} {
		x, y := fa.Services[n].Anomaly, fb.Services[n].Anomaly
		if y.WarmingUp || x.Score != y.Score || x.Risk != y.Risk || x.ModelAgeTicks != y.ModelAgeTicks {
			t.Errorf("%s: %+v before the restart, %+v after", n, x, y)
		}
	}
	if ok, err := NewAnalyzer(Options{}, nil).Load(filepath.Join(t.TempDir(), "none")); ok || err != nil {
		t.Errorf("missing file: %v, %v", ok, err)
	}
}

// BenchmarkAnalyzeTick is one tick of 100 services with warm models (target < 1 ms).
func BenchmarkAnalyzeTick(b *testing.B) {
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%03d", i)
	}
	a := NewAnalyzer(Options{RefitEvery: 1 << 30}, nil) // no refit inside the timing
	w := &world{rng: rand.New(rand.NewPCG(5, 5))}
	run(b, a, w, names, 61, nil)
	fs := make([]*engine.Facts, 64)
	for i := range fs {
		fs[i] = w.facts(names, nil)
	}
	i := 0
	for b.Loop() {
		if err := a.Analyze(context.Background(), fs[i%len(fs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/tick")
}

func cloneFacts(f *engine.Facts) *engine.Facts {
	g := engine.NewFacts(f.Tick, f.Time)
	for n, s := range f.Services {
		c := *s
		c.Replicas = append([]engine.Replica(nil), s.Replicas...)
		g.Services[n] = &c
	}
	return g
}
