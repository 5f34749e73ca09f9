package iforest

import (
	"fmt"
	"testing"

	"github.com/ares-sre/ares/sensors/anomaly/internal/odds"
)

// meanAUC fits and scores s on all rows for each seed, as the README's scikit-learn reference
// does, and returns the mean ROC AUC.
func meanAUC(tb testing.TB, s odds.Set, seeds []uint64) float64 {
	var sum float64
	for _, seed := range seeds {
		f, err := Fit(s.X, s.Rows, s.Cols, Options{Seed: seed})
		if err != nil {
			tb.Fatal(err)
		}
		sc, err := f.ScoreAll(s.X, s.Rows, nil)
		if err != nil {
			tb.Fatal(err)
		}
		sum += odds.AUC(sc, s.Labels)
	}
	return sum / float64(len(seeds))
}

// TestAUCFloor keeps detection quality from regressing: on every shared set the mean ROC AUC
// over seeds 0–4 must reach scikit-learn's (the README's reference) minus 0.01. The forest
// reproduces scikit-learn's for a seed, so the two means agree to the last digit.
func TestAUCFloor(t *testing.T) {
	sets := odds.LoadAll(t, odds.Dir(t))
	seeds := []uint64{0, 1, 2, 3, 4}
	for _, s := range sets {
		t.Run(s.Name, func(t *testing.T) {
			if s.SklearnAUC == 0 {
				t.Skipf("no scikit-learn reference for %s in the README", s.Name)
			}
			got := meanAUC(t, s, seeds)
			floor := s.SklearnAUC - 0.01
			t.Logf("%-11s AUC %.3f  sklearn %.3f  floor %.3f", s.Name, got, s.SklearnAUC, floor)
			if got < floor {
				t.Errorf("%s: mean AUC %.3f over %d seeds below the floor %.3f (sklearn %.3f)", s.Name, got, len(seeds), floor, s.SklearnAUC)
			}
		})
	}
}

// BenchmarkAUC prints the mean ROC AUC over seeds 0–4 on every shared set beside scikit-learn's
// (the README), as `make bench` reports it. It measures quality, not time.
func BenchmarkAUC(b *testing.B) {
	sets := odds.LoadAll(b, odds.Dir(b))
	for _, s := range sets {
		b.Run(s.Name, func(b *testing.B) {
			var got float64
			for range b.N {
				got = meanAUC(b, s, []uint64{0, 1, 2, 3, 4})
			}
			b.ReportMetric(got, "auc")
			b.ReportMetric(s.SklearnAUC, "sklearn-auc")
			b.ReportMetric(got-s.SklearnAUC, "delta")
			fmt.Printf("auc %-11s ours %.3f  sklearn %.3f  delta %+.3f\n", s.Name, got, s.SklearnAUC, got-s.SklearnAUC)
		})
	}
}
