package iforest

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkFitScore fits a default forest on 100 000 rows × 10 Gaussian features and scores
// every row, on one core and on all cores: the throughput target (≥ 10× scikit-learn
// on the same data and cores; scripts/bench_anomaly.sh prints the ratio).
func BenchmarkFitScore(b *testing.B) {
	const rows, cols = 100_000, 10
	x := gauss(rand.New(rand.NewPCG(1, 2)), rows, cols)
	out := make([]float64, rows)
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("rows=100000,cols=10,cores=%d", w), func(b *testing.B) {
			for b.Loop() {
				f, err := Fit(x, rows, cols, Options{Seed: 1, Workers: w})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.ScoreAll(x, rows, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkScoreOne is one feature vector through a default forest: the per-service cost of a
// live tick.
func BenchmarkScoreOne(b *testing.B) {
	x := gauss(rand.New(rand.NewPCG(1, 2)), 360, 7)
	f, _ := Fit(x, 360, 7, Options{Seed: 1})
	for b.Loop() {
		_ = f.Score(x[:7])
	}
}
