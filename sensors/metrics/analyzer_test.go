package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

func TestReplicaAnalyzer(t *testing.T) {
	s, err := New(nil, Options{PrometheusURL: "http://127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.replicas, s.tick = map[string]*engine.Metrics{"id-a": {RPS: 5}}, 7
	doc := func(tick uint64, st *engine.SensorStatus) *engine.Facts {
		f := engine.NewFacts(tick, time.Now())
		f.Service("web").Replicas = []engine.Replica{{ID: "id-a", Name: "a"}, {ID: "id-b", Name: "b"}}
		if st != nil {
			f.Sensors["metrics"] = *st
		}
		if err := s.Replicas().Analyze(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		name string
		tick uint64
		st   *engine.SensorStatus
		want bool
	}{
		{"this tick, sensor ok", 7, &engine.SensorStatus{OK: true}, true},
		{"sensor failed", 7, &engine.SensorStatus{OK: false, Error: "timed out"}, false},
		{"sensor missing", 7, nil, false},
		{"an older collect", 8, &engine.SensorStatus{OK: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reps := doc(tc.tick, tc.st).Services["web"].Replicas
			if got := reps[0].Metrics != nil; got != tc.want {
				t.Errorf("replica a has metrics: %v, want %v", got, tc.want)
			}
			if reps[1].Metrics != nil {
				t.Errorf("replica b without a scrape got metrics %+v", reps[1].Metrics)
			}
			if tc.want && reps[0].Metrics == s.replicas["id-a"] {
				t.Error("replica shares the sensor's copy")
			}
		})
	}
}
