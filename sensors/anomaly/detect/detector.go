// Package detect is the anomaly engine's streaming detector: over a sliding window of feature
// vectors it keeps an Isolation Forest (refitted every R observations, in the background when
// asked, on the window minus what it judged anomalous), a robust baseline per feature (median
// and MAD) and an EWMA baseline, and turns their combined evidence into a score in [0,1], a
// risk class and the features that drove it. It sees each observation once and never a later
// one. The live analyzer runs one Detector per service; `ares detect --mode stream` runs one
// over features of a single series (Series).
package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ares-sre/ares/sensors/anomaly/iforest"
)

// Config configures a Detector. The zero value of every field means its default.
type Config struct {
	Window     int     // W: observations kept for fitting; default 360
	RefitEvery int     // R: observations between refits; default 30
	WarmUp     int     // observations before the first fit, no verdicts until then; default 60
	Trees      int     // default 100
	Sample     int     // ψ, default 256 (capped at the window)
	Seed       uint64  // forest seed; a refit uses Seed + refit count
	Async      bool    // refit on a goroutine (live); false refits inline (deterministic, CLI)
	Alpha      float64 // EWMA smoothing; default 0.1 (an effective memory of ~20 observations)
	// Floors per feature for the robust and EWMA scales, in the feature's unit, so that a
	// feature that has been flat does not make noise look extreme (missing: 0). RelFloor is a
	// floor relative to the feature's median; default 0.01.
	Floors   []float64
	RelFloor float64
	// Readmit is how many anomalous observations in a row are kept out of the window before
	// they are taken as the new normal; default Window/4.
	Readmit int
	// Confirm is how many observations in a row must reach high risk before the verdict is
	// High; until then it is Medium (Evidence and Score are unchanged). Default 1.
	Confirm int
	Cutoffs Cutoffs
	Names   []string // feature names for Result.Drivers; default f0, f1, ...
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = 360
	}
	if c.RefitEvery <= 0 {
		c.RefitEvery = 30
	}
	if c.WarmUp <= 0 {
		c.WarmUp = 60
	}
	c.WarmUp = min(c.WarmUp, c.Window)
	if c.Trees <= 0 {
		c.Trees = iforest.DefaultTrees
	}
	if c.Sample <= 0 {
		c.Sample = iforest.DefaultSample
	}
	if c.Alpha <= 0 || c.Alpha >= 1 {
		c.Alpha = 0.1
	}
	if c.RelFloor <= 0 {
		c.RelFloor = 0.01
	}
	if c.Readmit <= 0 {
		c.Readmit = max(1, c.Window/4)
	}
	if c.Confirm <= 0 {
		c.Confirm = 1
	}
	c.Cutoffs = c.Cutoffs.withDefaults()
	return c
}

// Result is the verdict on one observation.
type Result struct {
	Score     float64   // E/(1+E) in [0,1): 0.5 at the high cut-off; 0 while warming up
	Evidence  float64   // E (Cutoffs)
	Forest    float64   // the forest's own score s(x), 0 before the first fit
	Risk      Risk      // Low while warming up
	Z         []float64 // robust z-score per feature (nil while warming up)
	Drivers   []string  // features whose |z| or |EWMA z| reached the medium cut, strongest first
	WarmingUp bool
	ModelAge  int // observations since the model in use was fitted
}

// IsAnomaly is Risk ≥ Medium.
func (r Result) IsAnomaly() bool { return r.Risk >= Medium }

// model is what a fit produces; swapped whole.
type model struct {
	forest   *iforest.Forest
	base     []Baseline
	med, top float64 // median and maximum forest score over the training window
	at       int     // observation count when the window was taken
}

// Detector is a streaming detector for feature vectors of a fixed width. Observe must not be
// called concurrently; background refits only swap the model between observations.
type Detector struct {
	cfg    Config
	width  int
	window [][]float64 // ring of the last Window admitted observations
	next   int
	seen   int // observations so far
	fits   int
	ewma   []EWMA
	streak int // anomalous observations in a row, kept out of the window
	highs  int // observations in a row with high-risk evidence (Config.Confirm)
	since  int // observations since the last refit was started

	cur     atomic.Pointer[model]
	running atomic.Bool
	wg      sync.WaitGroup
}

// New returns a detector for vectors of width features.
func New(width int, cfg Config) (*Detector, error) {
	if width <= 0 {
		return nil, fmt.Errorf("detect: width %d: must be > 0", width)
	}
	cfg = cfg.withDefaults()
	if len(cfg.Names) == 0 {
		for i := range width {
			cfg.Names = append(cfg.Names, fmt.Sprintf("f%d", i))
		}
	}
	if len(cfg.Names) != width || (cfg.Floors != nil && len(cfg.Floors) != width) {
		return nil, fmt.Errorf("detect: %d names and %d floors for %d features", len(cfg.Names), len(cfg.Floors), width)
	}
	d := &Detector{cfg: cfg, width: width, ewma: make([]EWMA, width)}
	for i := range d.ewma {
		d.ewma[i].Alpha = cfg.Alpha
	}
	return d, nil
}

// Width is the number of features.
func (d *Detector) Width() int { return d.width }

func (d *Detector) floor(i int) float64 {
	if d.cfg.Floors == nil {
		return 0
	}
	return d.cfg.Floors[i]
}

// Observe scores x (which it copies) and then learns from it.
func (d *Detector) Observe(x []float64) Result {
	if len(x) != d.width {
		panic(fmt.Sprintf("detect: observation of %d features, want %d", len(x), d.width))
	}
	x = slices.Clone(x)
	for i, v := range x { // a missing reading must not poison the window
		if math.IsNaN(v) || math.IsInf(v, 0) {
			x[i] = 0
		}
	}
	d.seen++
	m := d.cur.Load()
	var r Result
	if m == nil {
		r = Result{WarmingUp: true}
	} else {
		r = d.judge(m, x)
		if r.Risk == High {
			if d.highs++; d.highs < d.cfg.Confirm {
				r.Risk = Medium
			}
		} else {
			d.highs = 0
		}
	}
	for i := range d.ewma {
		d.ewma[i].Add(x[i])
	}
	if r.IsAnomaly() && d.streak < d.cfg.Readmit {
		d.streak++
	} else {
		d.streak = 0
		d.admit(x)
	}
	d.since++
	if (m == nil && len(d.window) >= d.cfg.WarmUp) || (m != nil && d.since >= d.cfg.RefitEvery) {
		d.refit()
	}
	return r
}

func (d *Detector) judge(m *model, x []float64) Result {
	c := d.cfg.Cutoffs
	r := Result{Z: make([]float64, d.width), ModelAge: d.seen - 1 - m.at}
	type drv struct {
		name string
		e    float64
	}
	var drivers []drv
	var e float64
	for i, v := range x {
		z := m.base[i].Z(v)
		r.Z[i] = z
		ez := d.ewma[i].Z(v, max(d.floor(i), d.cfg.RelFloor*math.Abs(d.ewma[i].Mean)))
		fe := max(math.Abs(z)/c.ZHigh, math.Abs(ez)/c.EWMAHigh)
		e = max(e, fe)
		if fe >= c.Medium {
			drivers = append(drivers, drv{d.cfg.Names[i], fe})
		}
	}
	if m.forest != nil {
		r.Forest = m.forest.Score(x)
		hi := max(c.ScoreHigh, m.top+c.ScoreMargin)
		if hi > m.med {
			e = max(e, (r.Forest-m.med)/(hi-m.med))
		}
	}
	slices.SortStableFunc(drivers, func(a, b drv) int { return -cmpFloat(a.e, b.e) })
	for _, dv := range drivers {
		r.Drivers = append(r.Drivers, dv.name)
	}
	r.Evidence = max(e, 0)
	r.Score = r.Evidence / (1 + r.Evidence)
	r.Risk = c.Class(r.Evidence)
	return r
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (d *Detector) admit(x []float64) {
	if len(d.window) < d.cfg.Window {
		d.window = append(d.window, x)
		return
	}
	d.window[d.next] = x
	d.next = (d.next + 1) % d.cfg.Window
}

// refit fits a model on a copy of the window, inline or in the background.
func (d *Detector) refit() {
	if d.cfg.Async && !d.running.CompareAndSwap(false, true) {
		return // the previous fit is still running: try again next observation
	}
	d.since = 0
	rows := len(d.window)
	data := make([]float64, 0, rows*d.width)
	for _, x := range d.window {
		data = append(data, x...)
	}
	seed := d.cfg.Seed + uint64(d.fits)
	d.fits++
	at := d.seen
	fit := func() {
		if m, err := fitModel(data, rows, d.width, d.cfg, seed); err == nil {
			m.at = at
			d.cur.Store(m)
		}
	}
	if !d.cfg.Async {
		fit()
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.running.Store(false)
		fit()
	}()
}

// Wait blocks until a background refit, if any, has finished (tests, Save).
func (d *Detector) Wait() { d.wg.Wait() }

func fitModel(data []float64, rows, width int, cfg Config, seed uint64) (*model, error) {
	m := &model{base: make([]Baseline, width)}
	col := make([]float64, rows)
	for i := range width {
		for r := range rows {
			col[r] = data[r*width+i]
		}
		fl := 0.0
		if cfg.Floors != nil {
			fl = cfg.Floors[i]
		}
		m.base[i] = NewBaseline(col, fl, cfg.RelFloor)
	}
	// One worker: detectors are many (a service each) and fits are small.
	f, err := iforest.Fit(data, rows, width, iforest.Options{Trees: cfg.Trees, Sample: cfg.Sample, Seed: seed, Workers: 1})
	if err != nil {
		return nil, err
	}
	s, err := f.ScoreAll(data, rows, nil)
	if err != nil {
		return nil, err
	}
	slices.Sort(s)
	m.forest, m.med, m.top = f, median(s), s[len(s)-1]
	return m, nil
}

// State is a detector's persistent form (gob or JSON): its window, baselines and forest, so that
// a restart does not reopen the warm-up.
type State struct {
	Width  int
	Seen   int
	Fits   int
	Window [][]float64 // oldest first
	EWMA   []EWMA
	Model  *ModelState // nil while warming up
}

// ModelState is a fitted model's persistent form.
type ModelState struct {
	Forest   iforest.Model
	Base     []Baseline
	Med, Top float64
	At       int
}

// State exports the detector; call it between observations (it waits for a background fit).
func (d *Detector) State() State {
	d.Wait()
	st := State{Width: d.width, Seen: d.seen, Fits: d.fits, EWMA: slices.Clone(d.ewma)}
	n := len(d.window)
	for k := range n {
		st.Window = append(st.Window, slices.Clone(d.window[(d.next+k)%n]))
	}
	if m := d.cur.Load(); m != nil {
		st.Model = &ModelState{Forest: m.forest.Model(), Base: slices.Clone(m.base), Med: m.med, Top: m.top, At: m.at}
	}
	return st
}

// Restore returns a detector with cfg continuing from st.
func Restore(st State, cfg Config) (*Detector, error) {
	d, err := New(st.Width, cfg)
	if err != nil {
		return nil, err
	}
	if len(st.EWMA) != st.Width {
		return nil, errors.New("detect: state: EWMA width mismatch")
	}
	for _, x := range st.Window {
		if len(x) != st.Width {
			return nil, errors.New("detect: state: window width mismatch")
		}
	}
	d.seen, d.fits, d.ewma = st.Seen, st.Fits, slices.Clone(st.EWMA)
	for i := range d.ewma {
		d.ewma[i].Alpha = d.cfg.Alpha
	}
	w := st.Window
	if len(w) > d.cfg.Window {
		w = w[len(w)-d.cfg.Window:]
	}
	d.window = append(d.window, w...)
	if len(d.window) == d.cfg.Window {
		d.next = 0
	}
	if st.Model != nil {
		f, err := iforest.FromModel(st.Model.Forest)
		if err != nil {
			return nil, fmt.Errorf("detect: state: %w", err)
		}
		if f.Features() != st.Width || len(st.Model.Base) != st.Width {
			return nil, errors.New("detect: state: model width mismatch")
		}
		f.SetWorkers(1)
		d.cur.Store(&model{forest: f, base: slices.Clone(st.Model.Base), med: st.Model.Med, top: st.Model.Top, at: st.Model.At})
	}
	return d, nil
}
