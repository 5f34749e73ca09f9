package iforest

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestC(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want float64
	}{
		{0, 0}, {1, 0}, {2, 1},
		{3, 2*(math.Log(2)+eulerGamma) - 4.0/3},
		{256, 10.244770920116851}, // scikit-learn's _average_path_length([256])
	} {
		if got := C(tc.n); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("C(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	for n := 3; n < 5000; n++ { // c(n) grows like 2 ln n
		if C(n) <= C(n-1) {
			t.Fatalf("C not increasing at %d", n)
		}
	}
}

func TestHeightLimit(t *testing.T) {
	for psi, want := range map[int]int{1: 0, 2: 1, 3: 2, 255: 8, 256: 8, 257: 9} {
		if got := HeightLimit(psi); got != want {
			t.Errorf("HeightLimit(%d) = %d, want %d", psi, got, want)
		}
	}
}

func gauss(rng *rand.Rand, rows, cols int) []float64 {
	x := make([]float64, rows*cols)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

func TestPathLength(t *testing.T) {
	// Two distinct rows: the root splits them, both leaves at depth 1 with one row.
	f, err := Fit([]float64{0, 1}, 2, 1, Options{Trees: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []float64{-5, 0, 1, 9} {
		if got := f.PathLength([]float64{x}); got != 1 {
			t.Errorf("PathLength(%v) = %v, want 1", x, got)
		}
	}
	// Identical rows cannot be split: a single leaf of n rows, path c(n).
	f, _ = Fit(make([]float64, 40), 20, 2, Options{Trees: 5, Seed: 1})
	if got := f.PathLength([]float64{0, 0}); math.Abs(got-C(20)) > 1e-12 {
		t.Errorf("constant data: PathLength = %v, want c(20) = %v", got, C(20))
	}
	if got := f.Score([]float64{0, 0}); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("constant data: score = %v, want 0.5 (E[h] = c(ψ))", got)
	}
	// Height limit: no path exceeds ⌈log2 ψ⌉ + c(leaf size) ≤ limit + c(ψ).
	rng := rand.New(rand.NewPCG(1, 2))
	x := gauss(rng, 1000, 3)
	f, _ = Fit(x, 1000, 3, Options{Seed: 3})
	for r := range 1000 {
		for tr := range f.Trees() {
			if h := f.walk(tr, x[r*3:r*3+3]); h < 0 || h > 8+C(256) {
				t.Fatalf("path %v out of range", h)
			}
		}
	}
	if f.depth != 8 || len(f.leaf) != 100*256 {
		t.Fatalf("depth %d, %d leaves: want 8 and 100×256", f.depth, len(f.leaf))
	}
}

func TestScoreBoundsAndOutliers(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const rows, cols, planted = 2000, 4, 10
	x := gauss(rng, rows, cols)
	for i := range planted { // far out along a random direction
		for j := range cols {
			x[i*cols+j] = 6 + rng.Float64()
			if rng.IntN(2) == 0 {
				x[i*cols+j] = -x[i*cols+j]
			}
		}
	}
	f, err := Fit(x, rows, cols, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.ScoreAll(x, rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range s {
		if v < 0 || v > 1 || math.IsNaN(v) {
			t.Fatalf("score[%d] = %v", i, v)
		}
		if v2 := f.Score(x[i*cols : (i+1)*cols]); math.Abs(v-v2) > 1e-12 {
			t.Fatalf("ScoreAll and Score disagree at %d: %v vs %v", i, v, v2)
		}
	}
	inl := slices.Clone(s[planted:])
	slices.Sort(inl)
	med := inl[len(inl)/2]
	for i := range planted {
		if s[i] < med+0.2 || s[i] < inl[len(inl)-1] {
			t.Errorf("outlier %d score %.3f: inlier median %.3f, inlier max %.3f", i, s[i], med, inl[len(inl)-1])
		}
	}
	if med > 0.5 {
		t.Errorf("inlier median %.3f, want ≤ 0.5", med)
	}
}

func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := gauss(rng, 3000, 5)
	var ref []float64
	for _, w := range []int{1, 2, 7} {
		f, err := Fit(x, 3000, 5, Options{Seed: 42, Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := f.ScoreAll(x, 3000, nil)
		if ref == nil {
			ref = s
		} else if !slices.Equal(ref, s) {
			t.Fatalf("workers=%d: scores differ", w)
		}
	}
	f, _ := Fit(x, 3000, 5, Options{Seed: 43})
	if s, _ := f.ScoreAll(x, 3000, nil); slices.Equal(ref, s) {
		t.Fatal("another seed gave the same scores")
	}
}

func TestFitErrors(t *testing.T) {
	for _, tc := range []struct {
		data       []float64
		rows, cols int
	}{
		{nil, 0, 3}, {[]float64{1, 2}, 1, 3}, {[]float64{math.NaN()}, 1, 1}, {[]float64{math.Inf(1)}, 1, 1},
	} {
		if _, err := Fit(tc.data, tc.rows, tc.cols, Options{}); err == nil {
			t.Errorf("Fit(%v, %d, %d): no error", tc.data, tc.rows, tc.cols)
		}
	}
	f, _ := Fit([]float64{1, 2, 3}, 3, 1, Options{})
	if _, err := f.ScoreAll([]float64{1, 2}, 3, nil); err == nil {
		t.Error("ScoreAll with short data: no error")
	}
}

func TestModelRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := gauss(rng, 500, 3)
	f, _ := Fit(x, 500, 3, Options{Seed: 9, Trees: 20})
	g, err := FromModel(f.Model())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.ScoreAll(x, 500, nil)
	b, _ := g.ScoreAll(x, 500, nil)
	if !slices.Equal(a, b) {
		t.Fatal("scores differ after a model round trip")
	}
	m := f.Model()
	m.Feature[3] = 3 // only 0..2 exist
	if _, err := FromModel(m); err == nil {
		t.Fatal("FromModel accepted an attribute out of range")
	}
	m = f.Model()
	m.Leaf = m.Leaf[1:]
	if _, err := FromModel(m); err == nil {
		t.Fatal("FromModel accepted short arrays")
	}
}

// rows draws a small data set with duplicates, constant columns and wide ranges.
func rows(t *rapid.T) (x []float64, n, d int) {
	n = rapid.IntRange(1, 300).Draw(t, "rows")
	d = rapid.IntRange(1, 5).Draw(t, "cols")
	vals := rapid.SliceOfN(rapid.Float64Range(-1e6, 1e6), n*d, n*d).Draw(t, "x")
	for i := range vals {
		if rapid.IntRange(0, 9).Draw(t, "dup") == 0 && i >= d { // repeat a value from the row before
			vals[i] = vals[i-d]
		}
	}
	return vals, n, d
}

func TestPropScoresInUnitInterval(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x, n, d := rows(t)
		f, err := Fit(x, n, d, Options{Trees: rapid.IntRange(1, 30).Draw(t, "trees"), Sample: rapid.IntRange(1, 300).Draw(t, "psi"), Seed: rapid.Uint64().Draw(t, "seed")})
		if err != nil {
			t.Fatal(err)
		}
		probe := append(slices.Clone(x), rapid.SliceOfN(rapid.Float64Range(-1e9, 1e9), d, d).Draw(t, "probe")...)
		s, err := f.ScoreAll(probe, n+1, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range s {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("score[%d] = %v", i, v)
			}
		}
	})
}

// TestPropRowOrderInvariant: for a fixed seed, permuting the rows permutes the scores and
// changes nothing else, with Options.ByContent for any subsample size, and without it when the
// subsample is every row (scikit-learn, reproduced by default, draws smaller ones by position).
func TestPropRowOrderInvariant(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x, n, d := rows(t)
		seed := rapid.Uint64().Draw(t, "seed")
		perm := rapid.Permutation(seqN(n)).Draw(t, "perm")
		y := make([]float64, 0, len(x))
		for _, r := range perm {
			y = append(y, x[r*d:(r+1)*d]...)
		}
		opt := Options{Trees: 20, Sample: rapid.IntRange(2, 64).Draw(t, "psi"), Seed: seed, ByContent: true}
		if rapid.Bool().Draw(t, "input order") {
			opt.ByContent, opt.Sample = false, rapid.IntRange(n, n+64).Draw(t, "psi ≥ rows")
		}
		fx, _ := Fit(x, n, d, opt)
		fy, _ := Fit(y, n, d, opt)
		sx, _ := fx.ScoreAll(x, n, nil)
		sy, _ := fy.ScoreAll(y, n, nil)
		for i, r := range perm {
			if sy[i] != sx[r] {
				t.Fatalf("row %d: %v after permutation, %v before (%+v)", r, sy[i], sx[r], opt)
			}
		}
	})
}

func seqN(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
