package detect

import "math"

// SeriesFeatures are the features Series derives from a single metric series, each from the
// current value and earlier ones only.
var SeriesFeatures = []string{"value", "diff", "dev_short", "vol_short"}

// shortWindow is the span of the short-term features: long enough to average out one noisy
// point, short enough to react within a few samples.
const shortWindow = 10

// Series is the streaming detector for one metric series (`ares detect --mode stream`): each
// value becomes a feature vector (the value, its first difference, its deviation from the mean
// of the previous shortWindow values, and the standard deviation of the last shortWindow
// first differences) fed to a Detector. After a high-risk value it damps its scores for Quiet
// values: one alarm per incident, as streaming benchmarks score (the first detection in an
// anomaly window counts, every later one outside it costs).
type Series struct {
	d      *Detector
	hist   []float64 // the last shortWindow+1 values
	quiet  int
	Quiet  int     // values damped after a high-risk one; default 60 (set before the first Add)
	Damp   float64 // factor applied to damped scores; default 0.2
	primed bool
}

// NewSeries returns a series detector; cfg configures the Detector underneath (Names and
// Floors are set by Series).
func NewSeries(cfg Config) *Series {
	cfg.Names, cfg.Floors = SeriesFeatures, nil
	d, err := New(len(SeriesFeatures), cfg)
	if err != nil {
		panic(err) // the width is a constant
	}
	return &Series{d: d, Quiet: 60, Damp: 0.2}
}

// Add scores v from it and the values before it. The score is 0 until the detector is warm.
func (s *Series) Add(v float64) Result {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Result{WarmingUp: !s.primed}
	}
	s.hist = append(s.hist, v)
	if len(s.hist) > shortWindow+1 {
		s.hist = s.hist[1:]
	}
	if len(s.hist) < shortWindow+1 {
		return Result{WarmingUp: true}
	}
	prev := s.hist[:shortWindow]
	var mean float64
	for _, p := range prev {
		mean += p
	}
	mean /= shortWindow
	var dm, dv float64
	diffs := make([]float64, shortWindow)
	for i := 1; i <= shortWindow; i++ {
		diffs[i-1] = s.hist[i] - s.hist[i-1]
		dm += diffs[i-1]
	}
	dm /= shortWindow
	for _, x := range diffs {
		dv += (x - dm) * (x - dm)
	}
	x := []float64{v, v - s.hist[shortWindow-1], v - mean, math.Sqrt(dv / shortWindow)}
	r := s.d.Observe(x)
	s.primed = !r.WarmingUp
	if s.quiet > 0 {
		s.quiet--
		r.Score *= s.Damp
	} else if r.Risk == High {
		s.quiet = s.Quiet
	}
	return r
}
