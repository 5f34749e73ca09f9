package metrics

import (
	"bytes"
	"math"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary expositions through the parser and the derivation: no panic, and
// whatever parses yields finite, non-negative metrics against itself and an empty reading.
func FuzzParse(f *testing.F) {
	f.Add([]byte(exposition(100, 10, []bucket{{0.01, 100}, {0.1, 110}, {math.Inf(1), 110}}, 1000)))
	f.Add([]byte("http_requests_total{code=\"500\"} 4\n"))
	f.Add([]byte("# TYPE http_request_duration_seconds histogram\nhttp_request_duration_seconds_bucket{le=\"NaN\"} 1\n"))
	n := newNames(DefaultRequests, DefaultCodeLabel, DefaultDuration)
	t0 := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := parse(bytes.Clone(data), n)
		if err != nil {
			return
		}
		rd.at = t0.Add(time.Second)
		empty := &reading{at: t0}
		for _, w := range []window{delta(empty, &rd), delta(&rd, &rd), delta(&rd, empty)} {
			m := w.metrics()
			for _, v := range []float64{m.RPS, m.ErrorRate, m.LatencyP50Ms, m.LatencyP99Ms} {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Fatalf("metrics %+v from %q", m, data)
				}
			}
			if m.ErrorRate > 1 {
				t.Fatalf("error rate %v > 1 from %q", m.ErrorRate, data)
			}
		}
	})
}
