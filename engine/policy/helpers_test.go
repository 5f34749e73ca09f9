package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// writeFiles creates files (relative path → content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// policyDir writes files into a fresh temporary directory and returns it.
func policyDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

// packDir copies testdata/pack into a fresh temporary directory.
func packDir(t testing.TB) string {
	t.Helper()
	files := map[string]string{}
	for _, name := range []string{"heal.rego", "heal_test.rego", "data.json"} {
		bs, err := os.ReadFile(filepath.Join("testdata", "pack", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(bs)
	}
	return policyDir(t, files)
}

func mustLoad(t testing.TB, dir string, opt Options) *Set {
	t.Helper()
	s, err := Load(dir, opt)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func mustEval(t testing.TB, s *Set, f *engine.Facts) ([]engine.Decision, []engine.RejectedDecision) {
	t.Helper()
	ds, rej, err := s.Evaluate(context.Background(), f)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return ds, rej
}

var states = []string{"running", "running", "running", "running", "running", "running", "exited", "dead", "restarting", "paused", "created"}
var healths = []string{"healthy", "healthy", "healthy", "none", "unhealthy", "starting"}
var risks = []string{"low", "low", "medium", "high"}

// genFacts builds n services of two replicas each, with a realistic mix of problems.
func genFacts(rng *rand.Rand, n int, tick uint64) *engine.Facts {
	f := engine.NewFacts(tick, time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC).Add(time.Duration(tick)*5*time.Second))
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		s := f.Service(name)
		s.DesiredReplicas = 2
		for j := range 2 {
			s.Replicas = append(s.Replicas, engine.Replica{
				ID: fmt.Sprintf("%012x", rng.Uint64()&0xffffffffffff), Name: fmt.Sprintf("%s-%d", name, j+1),
				MemLimitBytes: 256 << 20,
			})
		}
		mutateService(rng, s)
	}
	f.Sensors["docker"] = engine.SensorStatus{OK: true, AgeS: 0.2}
	f.Sensors["metrics"] = engine.SensorStatus{OK: true, AgeS: 0.4}
	f.Sensors["probe"] = engine.SensorStatus{OK: true, AgeS: 0.1}
	f.Sensors["anomaly"] = engine.SensorStatus{OK: true, AgeS: 0.4}
	f.Summarize()
	return f
}

// mutateService draws new readings for every replica and section of s.
func mutateService(rng *rand.Rand, s *engine.Service) {
	for j := range s.Replicas {
		r := &s.Replicas[j]
		r.State = states[rng.IntN(len(states))]
		r.Health = healths[rng.IntN(len(healths))]
		r.ExitCode = 0
		if r.State != "running" {
			r.ExitCode = []int{0, 1, 137, 143}[rng.IntN(4)]
		}
		r.OOMKilled = rng.IntN(40) == 0
		r.RestartCount = rng.IntN(5)
		r.CPUPercent = float64(rng.IntN(10000)) / 100
		r.MemBytes = rng.Int64N(r.MemLimitBytes)
		r.MemPercent = float64(r.MemBytes) / float64(r.MemLimitBytes) * 100
		if rng.IntN(10) == 0 {
			r.MemPercent = 90 + rng.Float64()*10
		}
		r.Trend = nil
		if rng.IntN(4) != 0 {
			r.Trend = &engine.Trend{MemSlopeBytesPerS: rng.NormFloat64() * 1000}
			if r.Trend.MemSlopeBytesPerS > 0 {
				secs := float64(r.MemLimitBytes-r.MemBytes) / r.Trend.MemSlopeBytesPerS
				r.Trend.SecondsToMemLimit = &secs
			}
		}
		r.Scaled = j == 1 && rng.IntN(5) == 0
	}
	s.Metrics, s.Probe, s.Anomaly, s.History = nil, nil, nil, nil
	if rng.IntN(5) != 0 {
		s.Metrics = &engine.Metrics{RPS: rng.Float64() * 500, ErrorRate: rng.Float64() * 0.1, LatencyP99Ms: rng.Float64() * 300}
	}
	if rng.IntN(5) != 0 {
		fails := 0
		if rng.IntN(8) == 0 {
			fails = 1 + rng.IntN(5)
		}
		s.Probe = &engine.Probe{OK: fails == 0, ConsecutiveFailures: fails, LatencyMs: rng.Float64() * 20}
	}
	if rng.IntN(5) != 0 {
		s.Anomaly = &engine.Anomaly{Score: rng.Float64(), Risk: risks[rng.IntN(len(risks))]}
		s.Anomaly.IsAnomaly = s.Anomaly.Risk == "high"
	}
	if rng.IntN(5) != 0 {
		s.History = &engine.History{Actions10m: rng.IntN(3), SecondsSinceLastAction: float64(rng.IntN(600))}
	}
}

// mutate changes frac of f's services (at least one) and re-derives the summaries.
func mutate(rng *rand.Rand, f *engine.Facts, frac float64) {
	names := sortedKeys(f.Services)
	k := max(1, int(float64(len(names))*frac))
	for _, i := range rng.Perm(len(names))[:k] {
		mutateService(rng, f.Services[names[i]])
	}
	f.Tick++
	f.Time = f.Time.Add(5 * time.Second)
	f.Summarize()
}
