package iforest

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

// golden is testdata/sklearn.json, written by scripts/sklearn_golden.py with scikit-learn.
type golden struct {
	Sklearn string `json:"sklearn"`
	Cases   []struct {
		Name         string    `json:"name"`
		Rows         int       `json:"rows"`
		Cols         int       `json:"cols"`
		Seed         uint64    `json:"seed"`
		Trees        int       `json:"trees"`
		Sample       int       `json:"sample"`
		Constant     []int     `json:"constant"`
		NearConstant []int     `json:"near_constant"`
		Scores       []float64 `json:"scores"`
	} `json:"cases"`
}

// goldenValue is scripts/sklearn_golden.py's value(): integer arithmetic then one division, so
// that both languages build the same doubles.
func goldenValue(i, j int, constant, near []int) float64 {
	switch {
	case slices.Contains(constant, j):
		return 5
	case slices.Contains(near, j):
		return float64(i%2) * 5e-8
	}
	v := float64((i*(j+3)*7919+j*104729+(i*i)%101)%1009) / 7.0
	if i%97 == 0 && j == 0 {
		v += 300
	}
	return v
}

// TestMatchesScikitLearn: with the same seed, data and options, the forest scores every row as
// scikit-learn's IsolationForest does (up to the rounding of a sum), through each of its ways
// of drawing a subsample and with constant and nearly constant attributes.
func TestMatchesScikitLearn(t *testing.T) {
	raw, err := os.ReadFile("testdata/sklearn.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("testdata/sklearn.json has no cases")
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			x := make([]float64, 0, c.Rows*c.Cols)
			for i := range c.Rows {
				for j := range c.Cols {
					x = append(x, goldenValue(i, j, c.Constant, c.NearConstant))
				}
			}
			f, err := Fit(x, c.Rows, c.Cols, Options{Trees: c.Trees, Sample: c.Sample, Seed: c.Seed})
			if err != nil {
				t.Fatal(err)
			}
			n := len(c.Scores)
			got, err := f.ScoreAll(x[:n*c.Cols], n, nil)
			if err != nil {
				t.Fatal(err)
			}
			worst, at := 0.0, 0
			for i, want := range c.Scores {
				if d := math.Abs(got[i] - want); d > worst {
					worst, at = d, i
				}
			}
			if worst > 1e-12 {
				t.Errorf("row %d scores %.17g, scikit-learn %s %.17g (largest difference of %d rows)", at, got[at], g.Sklearn, c.Scores[at], n)
			}
		})
	}
}

// TestScoresInSinglePrecision: a value is compared with a split as scikit-learn compares it,
// rounded to single precision first, so a value between a split and its float32 neighbour
// takes the float32 side.
func TestScoresInSinglePrecision(t *testing.T) {
	// Rows 0, 1, 1: the root separates 0 (a leaf at depth 1) from the two 1s (depth 1 + c(2)).
	f, err := Fit([]float64{0, 1, 1}, 3, 1, Options{Trees: 1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	split := f.split[0]
	if !(split > 0 && split < 1) {
		t.Fatalf("root split %v, want one between 0 and 1", split)
	}
	// A double just past the split whose float32 rounding falls back across it, or the reverse.
	lo := float64(float32(split))
	if lo > split {
		lo = float64(math.Nextafter32(float32(split), 0))
	}
	hi := float64(math.Nextafter32(float32(lo), 2))
	mid := lo + (hi-lo)/2
	var x float64
	if split < mid { // (split, mid) rounds down to lo ≤ split
		x = split + (mid-split)/2
	} else { // (mid, split] rounds up to hi > split
		x = mid + (split-mid)/2
	}
	if (x <= split) == (f32(x) <= split) {
		t.Fatalf("x %v does not straddle the split %v (float32 %v)", x, split, f32(x))
	}
	if got, want := f.PathLength([]float64{x}), f.PathLength([]float64{f32(x)}); got != want {
		t.Errorf("PathLength(%v) = %v, want %v as for its float32 %v", x, got, want, f32(x))
	}
	all, _ := f.ScoreAll([]float64{x}, 1, nil)
	if want := f.Score([]float64{f32(x)}); all[0] != want {
		t.Errorf("ScoreAll(%v) = %v, want %v as for its float32", x, all[0], want)
	}
}
