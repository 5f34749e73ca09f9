// Package anomaly is ARES's anomaly engine, an engine.Analyzer: every tick it turns each
// service's facts into a feature vector, scores it with that service's streaming detector
// (package detect: an Isolation Forest from package iforest, robust z-scores and an EWMA
// baseline over a sliding window) and writes the verdict to services.<name>.anomaly.
// docs/anomaly.md describes the method and its defaults.
package anomaly

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/sensors/anomaly/detect"
)

// Features are the per-service features, in vector order. A source the sensors do not provide
// (no metrics, no memory limit) reads 0 every tick, which its floor keeps from mattering.
var Features = []string{"cpu_percent", "mem_percent", "mem_slope_mib_s", "latency_p99_ms", "error_rate", "rps", "restarts"}

// floors are the smallest deviations that count as one unit of z per feature (docs/anomaly.md):
// 2 % CPU, 1 % memory, 0.1 MiB/s, 5 ms, 1 % errors, 1 request/s, half a restart.
var floors = []float64{2, 1, 0.1, 5, 0.01, 1, 0.5}

// Options configure the analyzer. The zero value means the defaults.
type Options struct {
	Window     int    // W ticks kept per service; default 360 (30 minutes at 5 s)
	RefitEvery int    // R ticks between background refits; default 30
	WarmUp     int    // ticks before the first verdict; default 60
	Confirm    int    // ticks in a row at high risk before the verdict is high; default 1
	Trees      int    // default 100
	Sample     int    // ψ; default 256
	Seed       uint64 // default 0
	Cutoffs    detect.Cutoffs
}

func (o Options) config(service string) detect.Config {
	h := fnv.New64a()
	h.Write([]byte(service))
	return detect.Config{Window: o.Window, RefitEvery: o.RefitEvery, WarmUp: o.WarmUp, Trees: o.Trees,
		Sample: o.Sample, Seed: o.Seed ^ h.Sum64(), Async: true, Floors: floors, Names: Features, Cutoffs: o.Cutoffs,
		Confirm: o.Confirm}
}

// Analyzer is the anomaly engine. It is safe for concurrent use.
type Analyzer struct {
	opt Options
	log *slog.Logger

	mu   sync.Mutex
	svcs map[string]*service
	tick uint64
}

type service struct {
	det      *detect.Detector
	restarts int    // sum of replica restart counts last tick
	seen     uint64 // last tick the service was present
}

var _ engine.Analyzer = (*Analyzer)(nil)

// NewAnalyzer returns an analyzer with no models; Load restores saved ones.
func NewAnalyzer(opt Options, log *slog.Logger) *Analyzer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Analyzer{opt: opt, log: log.With("sensor", "anomaly"), svcs: map[string]*service{}}
}

// Name is the facts.sensors key.
func (a *Analyzer) Name() string { return "anomaly" }

// Analyze scores every service of f and fills its anomaly section. Model refits run in the
// background and never delay it.
func (a *Analyzer) Analyze(ctx context.Context, f *engine.Facts) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tick++
	x := make([]float64, len(Features))
	for name, s := range f.Services {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st := a.svcs[name]
		restarts := restartCount(s)
		if st == nil {
			d, err := detect.New(len(Features), a.opt.config(name))
			if err != nil {
				return fmt.Errorf("anomaly: %s: %w", name, err)
			}
			st = &service{det: d, restarts: restarts}
			a.svcs[name] = st
		}
		vector(s, max(0, restarts-st.restarts), x)
		st.restarts, st.seen = restarts, a.tick
		r := st.det.Observe(x)
		an := &engine.Anomaly{Score: r.Score, IsAnomaly: r.IsAnomaly(), Risk: r.Risk.String(),
			ModelAgeTicks: r.ModelAge, WarmingUp: r.WarmingUp, Drivers: r.Drivers}
		if r.Z != nil {
			an.Features = make(map[string]float64, len(Features))
			for i, n := range Features {
				an.Features[n] = r.Z[i]
			}
		}
		s.Anomaly = an
	}
	// Forget services gone for a whole window.
	for name, st := range a.svcs {
		if a.tick-st.seen > uint64(max(a.opt.Window, 360)) {
			delete(a.svcs, name)
		}
	}
	return nil
}

func restartCount(s *engine.Service) int {
	n := 0
	for i := range s.Replicas {
		n += s.Replicas[i].RestartCount
	}
	return n
}

// vector fills x with s's features. It reads the replicas directly: the engine derives
// summaries only after the analyzers ran.
func vector(s *engine.Service, restarts int, x []float64) {
	clear(x)
	running := 0
	for i := range s.Replicas {
		r := &s.Replicas[i]
		if r.State == "running" {
			running++
			x[0] += r.CPUPercent
		}
		x[1] = max(x[1], r.MemPercent)
		if r.Trend != nil {
			x[2] = max(x[2], r.Trend.MemSlopeBytesPerS/(1<<20))
		}
	}
	if running > 0 {
		x[0] /= float64(running)
	}
	if m := s.Metrics; m != nil {
		x[3], x[4], x[5] = m.LatencyP99Ms, m.ErrorRate, m.RPS
	}
	x[6] = float64(restarts)
}

// Wait blocks until every background refit has finished.
func (a *Analyzer) Wait() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, st := range a.svcs {
		st.det.Wait()
	}
}

// saved is the file format of Save and Load (gob: forests hold +Inf, which JSON cannot).
type saved struct {
	Version  int
	Tick     uint64
	Services map[string]savedService
}

type savedService struct {
	State    detect.State
	Restarts int
}

const savedVersion = 1

// Save writes every service's window and model to path atomically (a temporary file renamed).
func (a *Analyzer) Save(path string) error {
	a.mu.Lock()
	out := saved{Version: savedVersion, Tick: a.tick, Services: map[string]savedService{}}
	for name, st := range a.svcs {
		out.Services[name] = savedService{State: st.det.State(), Restarts: st.restarts}
	}
	a.mu.Unlock()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(out); err != nil {
		return fmt.Errorf("anomaly: save: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".anomaly-*")
	if err != nil {
		return fmt.Errorf("anomaly: save: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("anomaly: save: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("anomaly: save: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("anomaly: save: %w", err)
	}
	return nil
}

// Load replaces the analyzer's models with those saved at path. A missing file is not an
// error (first start): it returns false.
func (a *Analyzer) Load(path string) (bool, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("anomaly: load: %w", err)
	}
	var in saved
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&in); err != nil {
		return false, fmt.Errorf("anomaly: load %s: %w", path, err)
	}
	if in.Version != savedVersion {
		return false, fmt.Errorf("anomaly: load %s: version %d, want %d", path, in.Version, savedVersion)
	}
	svcs := make(map[string]*service, len(in.Services))
	for name, s := range in.Services {
		if s.State.Width != len(Features) {
			a.log.Warn("anomaly model has another feature set; the service warms up again", "service", name)
			continue
		}
		d, err := detect.Restore(s.State, a.opt.config(name))
		if err != nil {
			return false, fmt.Errorf("anomaly: load %s: %s: %w", path, name, err)
		}
		svcs[name] = &service{det: d, restarts: s.Restarts}
	}
	a.mu.Lock()
	a.svcs, a.tick = svcs, in.Tick
	for _, st := range svcs {
		st.seen = a.tick
	}
	a.mu.Unlock()
	return true, nil
}
