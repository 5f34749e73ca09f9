package engine

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Instruments are the engine's Prometheus metrics. A nil *Instruments records nothing.
type Instruments struct {
	ticks       *prometheus.CounterVec
	tickDur     prometheus.Histogram
	evalDur     prometheus.Histogram
	decisions   *prometheus.CounterVec
	rejected    prometheus.Counter
	actions     *prometheus.CounterVec
	actionDur   *prometheus.HistogramVec
	sensorDur   *prometheus.HistogramVec
	sensorFails *prometheus.CounterVec
	anomaly     *prometheus.GaugeVec

	mu        sync.Mutex
	anomalous map[string]bool // services with an anomaly gauge set
}

// NewMetrics registers the engine's instruments with reg.
func NewInstruments(reg prometheus.Registerer) *Instruments {
	f := promauto.With(reg)
	return &Instruments{
		ticks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ares_ticks_total", Help: "Ticks run, by what triggered them (interval, event, once).",
		}, []string{"trigger"}),
		tickDur: f.NewHistogram(prometheus.HistogramOpts{
			Name: "ares_tick_duration_seconds", Help: "Duration of a whole tick: gather, evaluate, govern, act.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		evalDur: f.NewHistogram(prometheus.HistogramOpts{
			Name: "ares_policy_eval_duration_seconds", Help: "Duration of one policy evaluation over the facts document.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		decisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ares_decisions_total", Help: "Valid decisions returned by the policy, by action.",
		}, []string{"action"}),
		rejected: f.NewCounter(prometheus.CounterOpts{
			Name: "ares_decisions_rejected_total", Help: "Policy results rejected as invalid decisions (never executed).",
		}),
		actions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ares_actions_total", Help: "Actions by action and result (ok, error, dry_run, suppress).",
		}, []string{"action", "result"}),
		actionDur: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ares_action_duration_seconds", Help: "Duration of actuator calls, by action.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"action"}),
		sensorDur: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ares_sensor_duration_seconds", Help: "Duration of one sensor's collection.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"sensor"}),
		sensorFails: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ares_sensor_failures_total", Help: "Sensor collections that failed or timed out.",
		}, []string{"sensor"}),
		anomaly: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ares_anomaly_score", Help: "The anomaly engine's last score of a service (0..1; 0 while warming up).",
		}, []string{"service"}),
		anomalous: map[string]bool{},
	}
}

func triggerLabel(t string) string {
	if len(t) >= 5 && t[:5] == "event" {
		return "event"
	}
	return t
}

func (m *Instruments) observeTick(rec TickRecord) {
	if m == nil {
		return
	}
	m.ticks.WithLabelValues(triggerLabel(rec.Trigger)).Inc()
	m.tickDur.Observe(rec.Duration.Seconds())
	for _, d := range rec.Decisions {
		m.decisions.WithLabelValues(d.Action).Inc()
	}
	m.rejected.Add(float64(len(rec.Rejected)))
	for _, a := range rec.Actions {
		if a.Verdict != VerdictAdmit {
			m.actions.WithLabelValues(a.Action, a.Verdict).Inc()
		}
	}
	m.observeAnomaly(rec.Facts)
}

// observeAnomaly sets ares_anomaly_score for every service the anomaly engine scored this tick
// and drops the gauge of services it no longer scores (gone, or the engine off).
func (m *Instruments) observeAnomaly(f *Facts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	if f != nil {
		for name, svc := range f.Services {
			if svc == nil || svc.Anomaly == nil {
				continue
			}
			m.anomaly.WithLabelValues(name).Set(svc.Anomaly.Score)
			seen[name] = true
		}
	}
	for name := range m.anomalous {
		if !seen[name] {
			m.anomaly.DeleteLabelValues(name)
		}
	}
	m.anomalous = seen
}

func (m *Instruments) observeEval(d time.Duration) {
	if m == nil {
		return
	}
	m.evalDur.Observe(d.Seconds())
}

func (m *Instruments) observeAction(a Action) {
	if m == nil || a.Outcome == nil {
		return
	}
	m.actions.WithLabelValues(a.Action, a.Outcome.Result).Inc()
	m.actionDur.WithLabelValues(a.Action).Observe(a.Outcome.Duration.Seconds())
}

func (m *Instruments) observeSensor(name string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.sensorDur.WithLabelValues(name).Observe(d.Seconds())
	if err != nil {
		m.sensorFails.WithLabelValues(name).Inc()
	}
}
