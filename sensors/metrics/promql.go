package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/ares-sre/ares/engine"
)

// PromQL configures PromQL mode. Every query is a text/template over {{.Window}},
// {{.ServiceLabel}}, {{.Requests}}, {{.CodeLabel}} and {{.Duration}} that must yield an
// instant vector with one sample per service, labelled with ServiceLabel. Latencies are in
// milliseconds, the error rate a fraction. An empty query takes its default (DefaultRPSQuery,
// ...).
type PromQL struct {
	ServiceLabel string        // label naming the service in results; default "service"
	Window       time.Duration // rate() range of the default queries; default 1m
	RPS          string
	ErrorRate    string
	LatencyP50Ms string
	LatencyP99Ms string
}

// Default PromQL query templates.
const (
	DefaultRPSQuery       = `sum by ({{.ServiceLabel}}) (rate({{.Requests}}[{{.Window}}]))`
	DefaultErrorRateQuery = `sum by ({{.ServiceLabel}}) (rate({{.Requests}}{ {{- .CodeLabel}}=~"5.."}[{{.Window}}]))` +
		` / sum by ({{.ServiceLabel}}) (rate({{.Requests}}[{{.Window}}]))`
	DefaultLatencyP50Query = `histogram_quantile(0.5, sum by ({{.ServiceLabel}}, le) (rate({{.Duration}}_bucket[{{.Window}}]))) * 1000`
	DefaultLatencyP99Query = `histogram_quantile(0.99, sum by ({{.ServiceLabel}}, le) (rate({{.Duration}}_bucket[{{.Window}}]))) * 1000`
)

// promQuerier runs the expanded queries.
type promQuerier struct {
	api     promv1.API
	label   model.LabelName
	timeout time.Duration
	queries []promQuery
}

type promQuery struct {
	field string // facts key
	expr  string
	set   func(m *engine.Metrics, v float64)
}

func newPromQuerier(opt Options) (*promQuerier, error) {
	p := opt.PromQL
	p.ServiceLabel = cmp.Or(p.ServiceLabel, "service")
	if !model.LabelName(p.ServiceLabel).IsValidLegacy() {
		return nil, fmt.Errorf("metrics: promql.service_label: not a label name (got %q)", p.ServiceLabel)
	}
	if p.Window <= 0 {
		p.Window = time.Minute
	}
	c, err := api.NewClient(api.Config{Address: opt.PrometheusURL})
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus_url: %w (got %q)", err, opt.PrometheusURL)
	}
	data := queryData{
		Window: model.Duration(p.Window).String(), ServiceLabel: p.ServiceLabel,
		Requests: opt.Requests, CodeLabel: opt.CodeLabel, Duration: opt.Duration,
	}
	q := &promQuerier{api: promv1.NewAPI(c), label: model.LabelName(p.ServiceLabel), timeout: opt.Timeout}
	for _, f := range []struct {
		field, text, def string
		set              func(m *engine.Metrics, v float64)
	}{
		{"rps", p.RPS, DefaultRPSQuery, func(m *engine.Metrics, v float64) { m.RPS = finite(v) }},
		{"error_rate", p.ErrorRate, DefaultErrorRateQuery, func(m *engine.Metrics, v float64) { m.ErrorRate = clamp01(v) }},
		{"latency_p50_ms", p.LatencyP50Ms, DefaultLatencyP50Query, func(m *engine.Metrics, v float64) { m.LatencyP50Ms = finite(v) }},
		{"latency_p99_ms", p.LatencyP99Ms, DefaultLatencyP99Query, func(m *engine.Metrics, v float64) { m.LatencyP99Ms = finite(v) }},
	} {
		t, err := parseTemplate(f.field, cmp.Or(f.text, f.def))
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("metrics: promql.%s: %w", f.field, err)
		}
		q.queries = append(q.queries, promQuery{field: f.field, expr: b.String(), set: f.set})
	}
	return q, nil
}

// collect runs every query at the same instant and fills the services the results name; with
// known non-nil only those. It fails when any query fails, so a section is never half-filled.
func (q *promQuerier) collect(ctx context.Context, f *engine.Facts, known map[string]bool) error {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	now := time.Now()
	vecs := make([]model.Vector, len(q.queries))
	errs := make([]error, len(q.queries))
	var wg sync.WaitGroup
	for i, pq := range q.queries {
		wg.Go(func() {
			v, _, _, err := q.api.Query(ctx, pq.expr, now, promv1.WithTimeout(q.timeout))
			if err != nil {
				errs[i] = fmt.Errorf("metrics: query %s: %w", pq.field, err)
				return
			}
			vec, ok := v.(model.Vector)
			if !ok {
				errs[i] = fmt.Errorf("metrics: query %s: got a %s, want an instant vector", pq.field, v.Type())
				return
			}
			vecs[i] = vec
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, vec := range vecs {
		for _, smp := range vec {
			name := string(smp.Metric[q.label])
			if name == "" || (known != nil && !known[name]) {
				continue
			}
			svc := f.Service(name)
			if svc.Metrics == nil {
				svc.Metrics = &engine.Metrics{}
			}
			q.queries[i].set(svc.Metrics, float64(smp.Value))
		}
	}
	return nil
}

// Template data of the PromQL queries.
type queryData struct {
	Window       string // Prometheus duration, e.g. 1m
	ServiceLabel string
	Requests     string
	CodeLabel    string
	Duration     string
}

func parseTemplate(field, text string) (*template.Template, error) {
	t, err := template.New(field).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("metrics: promql.%s: %w (got %q)", field, err, text)
	}
	return t, nil
}
