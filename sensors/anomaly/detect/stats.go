package detect

import (
	"math"
	"slices"
)

// madScale is 1/Φ⁻¹(3/4): it makes the median absolute deviation estimate σ for Gaussian data.
const madScale = 1.4826

// meanAbsScale is √(π/2): it makes the mean absolute deviation estimate σ for Gaussian data.
const meanAbsScale = 1.2533

// Baseline is one feature's robust location and scale over a window: the median, and
// 1.4826·MAD — or, when more than half of the window sits on one value (MAD = 0),
// 1.2533·mean absolute deviation from the median — floored at Floor and at RelFloor·|median|.
type Baseline struct {
	Median float64
	Scale  float64
}

// NewBaseline computes the baseline of vals (reordered in place).
func NewBaseline(vals []float64, floor, relFloor float64) Baseline {
	if len(vals) == 0 {
		return Baseline{Scale: max(floor, 1e-12)}
	}
	slices.Sort(vals)
	med := median(vals)
	var mean float64
	for i, v := range vals {
		vals[i] = math.Abs(v - med)
		mean += vals[i]
	}
	mean /= float64(len(vals))
	slices.Sort(vals)
	scale := madScale * median(vals)
	if scale == 0 {
		scale = meanAbsScale * mean
	}
	scale = max(scale, floor, relFloor*math.Abs(med), 1e-12)
	return Baseline{Median: med, Scale: scale}
}

// Z is the robust z-score of x.
func (b Baseline) Z(x float64) float64 { return (x - b.Median) / b.Scale }

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// EWMA is an exponentially weighted moving mean and variance (West's incremental form): the
// recent baseline a sudden change is measured against.
type EWMA struct {
	Alpha float64
	Mean  float64
	Var   float64
	N     int
}

// Z is x's deviation from the moving mean in moving standard deviations, the deviation floored
// at floor; 0 before two observations.
func (e *EWMA) Z(x, floor float64) float64 {
	if e.N < 2 {
		return 0
	}
	return (x - e.Mean) / max(math.Sqrt(e.Var), floor, 1e-12)
}

// Add updates the moving mean and variance with x.
func (e *EWMA) Add(x float64) {
	if e.N == 0 {
		e.Mean, e.N = x, 1
		return
	}
	d := x - e.Mean
	incr := e.Alpha * d
	e.Mean += incr
	e.Var = (1 - e.Alpha) * (e.Var + d*incr)
	e.N++
}

// Risk is the risk class of an observation.
type Risk int

// Risk classes, ordered.
const (
	Low Risk = iota
	Medium
	High
)

func (r Risk) String() string {
	switch r {
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return "low"
}

// Cutoffs turn the three kinds of evidence into one number E, where E ≥ 1 means high risk:
//
//	E = max( max_i |z_i| / ZHigh,  max_i |ewma_z_i| / EWMAHigh,  forest excess )
//
// with the forest excess (s − m) / (max(ScoreHigh, M + ScoreMargin) − m) for a forest score s,
// m and M the median and maximum score of the forest's own training window. Medium is the
// fraction of E that makes medium risk. docs/anomaly.md justifies the defaults.
type Cutoffs struct {
	ZHigh       float64 // robust z for high risk; default 6
	EWMAHigh    float64 // EWMA z for high risk; default 8
	ScoreHigh   float64 // forest score for high risk; default 0.7
	ScoreMargin float64 // above the training window's highest score; default 0.05
	Medium      float64 // E for medium risk; default 2/3 (robust z 4)
}

// DefaultCutoffs are the documented defaults.
func DefaultCutoffs() Cutoffs {
	return Cutoffs{ZHigh: 6, EWMAHigh: 8, ScoreHigh: 0.7, ScoreMargin: 0.05, Medium: 2.0 / 3}
}

func (c Cutoffs) withDefaults() Cutoffs {
	d := DefaultCutoffs()
	if c.ZHigh <= 0 {
		c.ZHigh = d.ZHigh
	}
	if c.EWMAHigh <= 0 {
		c.EWMAHigh = d.EWMAHigh
	}
	if c.ScoreHigh <= 0 {
		c.ScoreHigh = d.ScoreHigh
	}
	if c.ScoreMargin <= 0 {
		c.ScoreMargin = d.ScoreMargin
	}
	if c.Medium <= 0 || c.Medium >= 1 {
		c.Medium = d.Medium
	}
	return c
}

// Class is the risk class of evidence e.
func (c Cutoffs) Class(e float64) Risk {
	switch {
	case e >= 1:
		return High
	case e >= c.Medium:
		return Medium
	}
	return Low
}
