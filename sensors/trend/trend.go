// Package trend is the memory trend analyzer (an engine.Analyzer, facts name "trend"). Every
// tick it adds each running replica's mem_bytes to that replica's window of the last N samples
// and fits a least-squares line through them (gonum stat.LinearRegression, time from the
// document's time), giving replicas[].trend: the slope in bytes per second and, when memory
// grows and the replica has a limit, the seconds until it reaches the limit at that slope, so
// that a policy can recycle a leaking container before the kernel kills it.
//
// A replica's window starts again when its container id changes (recreated), when its
// restart_count changes or its memory drops by more than half (restarted), and while it is
// not running; replicas no longer in the document are forgotten.
package trend

import (
	"context"
	"math"
	"sync"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/ares-sre/ares/engine"
)

// Options configure an Analyzer. The zero value means the defaults.
type Options struct {
	Window     int // N samples kept per replica; default 30, at least MinSamples
	MinSamples int // samples before a trend is reported; default 5, at least 2
}

// Analyzer fills replicas[].trend. It is safe for concurrent use.
type Analyzer struct {
	opt Options

	mu   sync.Mutex
	reps map[key]*series
}

var _ engine.Analyzer = (*Analyzer)(nil)

type key struct{ service, replica string }

// series is one replica's window.
type series struct {
	id       string
	restarts int
	t0       time.Time // x = seconds since t0
	x, y     []float64 // oldest first, at most Window
	seen     bool      // present in the current document
}

// New returns an analyzer with empty windows.
func New(opt Options) *Analyzer {
	if opt.MinSamples <= 0 {
		opt.MinSamples = 5
	}
	opt.MinSamples = max(opt.MinSamples, 2)
	if opt.Window <= 0 {
		opt.Window = 30
	}
	opt.Window = max(opt.Window, opt.MinSamples)
	return &Analyzer{opt: opt, reps: map[key]*series{}}
}

// Name is the facts.sensors key.
func (a *Analyzer) Name() string { return "trend" }

// Analyze adds this tick's samples and sets the trend of every replica with enough of them.
func (a *Analyzer) Analyze(_ context.Context, f *engine.Facts) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.reps {
		s.seen = false
	}
	for name, svc := range f.Services {
		for i := range svc.Replicas {
			r := &svc.Replicas[i]
			k := key{name, r.Name}
			s := a.reps[k]
			if s == nil {
				s = &series{}
				a.reps[k] = s
			}
			s.seen = true
			if tr := a.add(s, r, f.Time); tr != nil {
				r.Trend = tr
			}
		}
	}
	for k, s := range a.reps {
		if !s.seen {
			delete(a.reps, k)
		}
	}
	return nil
}

// add records r's sample at t in s and returns the trend, or nil while there are too few
// samples.
func (a *Analyzer) add(s *series, r *engine.Replica, t time.Time) *engine.Trend {
	if r.State != "running" {
		s.reset(r)
		return nil
	}
	if r.ID != s.id || r.RestartCount != s.restarts {
		s.reset(r) // another container, or the same one restarted
	}
	if r.MemBytes <= 0 {
		return a.fit(s, r) // not measured this tick (the docker sensor could not read it)
	}
	mem := float64(r.MemBytes)
	if len(s.y) > 0 && mem < s.y[len(s.y)-1]/2 {
		s.reset(r) // restarted between two ticks without a restart count (docker restart)
	}
	if len(s.x) == 0 {
		s.t0 = t
	}
	x := t.Sub(s.t0).Seconds()
	if n := len(s.x); n > 0 && x <= s.x[n-1] {
		return a.fit(s, r) // a second sample for the same instant adds nothing
	}
	if len(s.x) == a.opt.Window {
		// Drop the oldest, keeping the backing arrays.
		copy(s.x, s.x[1:])
		copy(s.y, s.y[1:])
		s.x, s.y = s.x[:len(s.x)-1], s.y[:len(s.y)-1]
	}
	s.x = append(s.x, x)
	s.y = append(s.y, mem)
	return a.fit(s, r)
}

// fit returns the trend over s, or nil with fewer than MinSamples samples.
func (a *Analyzer) fit(s *series, r *engine.Replica) *engine.Trend {
	if len(s.x) < a.opt.MinSamples {
		return nil
	}
	_, slope := stat.LinearRegression(s.x, s.y, nil, false)
	if math.IsNaN(slope) || math.IsInf(slope, 0) {
		return nil
	}
	tr := &engine.Trend{MemSlopeBytesPerS: slope}
	if slope > 0 && r.MemLimitBytes > 0 {
		mem := s.y[len(s.y)-1]
		secs := max(float64(r.MemLimitBytes)-mem, 0) / slope
		tr.SecondsToMemLimit = &secs
	}
	return tr
}

// reset empties s and starts it for r's current container and run.
func (s *series) reset(r *engine.Replica) {
	s.id, s.restarts = r.ID, r.RestartCount
	s.x, s.y = s.x[:0], s.y[:0]
}
