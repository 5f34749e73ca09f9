package metrics_test

import (
	"log/slog"
	"os"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/sensors/metrics"
)

// The metrics sensor fills services.*.metrics; its Replicas analyzer copies each replica's
// own metrics into the replicas the docker sensor reported, after the engine merged them.
func ExampleNew() {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		panic(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	m, err := metrics.New(cli, metrics.Options{Timeout: 500 * time.Millisecond}, log)
	if err != nil {
		panic(err)
	}
	_ = engine.Options{
		Sensors:   []engine.Sensor{ /* docker sensor, */ m},
		Analyzers: []engine.Analyzer{m.Replicas()},
	}
}

// In PromQL mode the service metrics come from a Prometheus server; each query is a template.
func ExampleNew_promQL() {
	m, err := metrics.New(nil, metrics.Options{
		PrometheusURL: "http://prometheus:9090",
		PromQL: metrics.PromQL{
			ServiceLabel: "job",
			Window:       2 * time.Minute,
			RPS:          `sum by (job) (rate(http_server_requests_total[{{.Window}}]))`,
		},
	}, nil)
	if err != nil {
		panic(err)
	}
	_ = engine.Options{Sensors: []engine.Sensor{m}}
}
