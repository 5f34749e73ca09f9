package detect

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestBaseline(t *testing.T) {
	b := NewBaseline([]float64{1, 2, 3, 4, 100}, 0, 0)
	if b.Median != 3 || math.Abs(b.Scale-1.4826) > 1e-9 {
		t.Errorf("baseline %+v, want median 3, scale 1.4826", b)
	}
	// MAD 0: mean absolute deviation instead, then the floors.
	b = NewBaseline([]float64{5, 5, 5, 5, 9}, 0, 0)
	if want := 1.2533 * 4 / 5; math.Abs(b.Scale-want) > 1e-9 {
		t.Errorf("scale %v, want %v", b.Scale, want)
	}
	if b = NewBaseline([]float64{5, 5, 5}, 2, 0); b.Scale != 2 {
		t.Errorf("floor: scale %v, want 2", b.Scale)
	}
	if b = NewBaseline([]float64{100, 100, 100}, 0, 0.01); b.Scale != 1 {
		t.Errorf("relative floor: scale %v, want 1", b.Scale)
	}
}

func TestEWMA(t *testing.T) {
	e := EWMA{Alpha: 0.1}
	for range 500 {
		e.Add(10)
	}
	if e.Mean != 10 || e.Var != 0 || e.Z(11, 0.5) != 2 {
		t.Errorf("ewma %+v, z %v", e, e.Z(11, 0.5))
	}
}

func TestCutoffs(t *testing.T) {
	c := DefaultCutoffs()
	for e, want := range map[float64]Risk{0: Low, 0.6: Low, 0.7: Medium, 1: High, 3: High} {
		if got := c.Class(e); got != want {
			t.Errorf("Class(%v) = %v, want %v", e, got, want)
		}
	}
}

func TestDetectorStepAndState(t *testing.T) {
	// Steady data: no risk while warming up, and high risk rarely after (a 3σ point in two
	// dimensions can outscore the whole window; about 0.05% of observations do here), over
	// many streams so that the rate, not one lucky stream, is what is checked.
	cfg := Config{Window: 200, RefitEvery: 20, WarmUp: 50, Seed: 3}
	high, judged := 0, 0
	var d *Detector
	for stream := range 20 {
		rng := rand.New(rand.NewPCG(uint64(stream), 1))
		d, _ = New(2, cfg)
		for i := range 300 {
			r := d.Observe([]float64{10 + rng.NormFloat64(), 5 + 0.5*rng.NormFloat64()})
			if (i < 50) != r.WarmingUp {
				t.Fatalf("stream %d observation %d: warming up %v", stream, i, r.WarmingUp)
			}
			if r.WarmingUp && r.Risk != Low {
				t.Fatalf("stream %d observation %d: risk %v while warming up", stream, i, r.Risk)
			}
			if !r.WarmingUp {
				judged++
				if r.Risk == High {
					high++
				}
			}
		}
	}
	if rate := float64(high) / float64(judged); rate > 0.003 {
		t.Fatalf("high risk on %d of %d steady observations (%.2f%%, want at most 0.3%%)", high, judged, 100*rate)
	}
	// Round trip: the restored detector judges the next observation the same.
	e, err := Restore(d.State(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{30, 5}
	ra, rb := d.Observe(x), e.Observe(x)
	if !reflect.DeepEqual(ra, rb) {
		t.Fatalf("after restore %+v, before %+v", rb, ra)
	}
	if ra.Risk != High || ra.Drivers[0] != "f0" || ra.Score < 0.5 || ra.Score >= 1 {
		t.Fatalf("step: %+v", ra)
	}
}

func TestSeriesNoLookAheadAndWarmUp(t *testing.T) {
	s := NewSeries(Config{Seed: 1})
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range 70 {
		if r := s.Add(rng.NormFloat64()); r.Score != 0 || !r.WarmingUp {
			t.Fatalf("row %d: %+v during warm-up", i, r)
		}
	}
	if r := s.Add(rng.NormFloat64()); r.WarmingUp {
		t.Fatal("still warming up after 71 rows")
	}
}

// TestConfirm: with Confirm 2 one far-out observation is medium risk (its evidence unchanged)
// and the second in a row is high; an ordinary observation in between starts the count again.
func TestConfirm(t *testing.T) {
	run := func(confirm int, xs ...[]float64) []Result {
		rng := rand.New(rand.NewPCG(9, 9))
		d, _ := New(2, Config{Window: 200, RefitEvery: 20, WarmUp: 50, Seed: 3, Confirm: confirm})
		for range 120 {
			d.Observe([]float64{10 + rng.NormFloat64(), 5 + 0.5*rng.NormFloat64()})
		}
		var out []Result
		for _, x := range xs {
			out = append(out, d.Observe(x))
		}
		return out
	}
	far, calm := []float64{40, 5}, []float64{10, 5}
	one := run(1, far, far)
	if one[0].Risk != High || one[1].Risk != High {
		t.Fatalf("confirm 1: %v %v, want high high", one[0].Risk, one[1].Risk)
	}
	two := run(2, far, far, calm, far, far)
	want := []Risk{Medium, High, Low, Medium, High}
	for i, r := range two {
		if r.Risk != want[i] {
			t.Errorf("confirm 2, observation %d: %v, want %v (evidence %.2f)", i, r.Risk, want[i], r.Evidence)
		}
	}
	if two[0].Evidence != one[0].Evidence || two[0].Score != one[0].Score {
		t.Errorf("confirm changed the evidence: %v vs %v", two[0].Evidence, one[0].Evidence)
	}
}
