package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ares_anomaly_score follows the services the anomaly engine scored in the last tick: a
// service no longer scored loses its series instead of keeping a stale score.
func TestAnomalyScoreGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewInstruments(reg)
	tick := func(scores map[string]*Anomaly) {
		f := NewFacts(1, time.Now())
		for name, a := range scores {
			f.Services[name] = &Service{Anomaly: a}
		}
		m.observeTick(TickRecord{Facts: f})
	}
	expect := func(want ...string) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mf := range mfs {
			if mf.GetName() != "ares_anomaly_score" {
				continue
			}
			for _, m := range mf.GetMetric() {
				got = append(got, fmt.Sprintf("%s=%g", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("ares_anomaly_score: %q, want %q", got, want)
		}
	}

	tick(map[string]*Anomaly{"cart": {Score: 0.82, IsAnomaly: true, Risk: "high"}, "user": {Score: 0, WarmingUp: true}, "order": nil})
	expect("cart=0.82", "user=0")
	tick(map[string]*Anomaly{"user": {Score: 0.31}})
	expect("user=0.31")
	tick(nil)
	expect()
}
