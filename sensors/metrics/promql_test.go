package metrics

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

const prometheusBin = "/usr/bin/prometheus"

// startPrometheus runs a Prometheus server of its own on a free 127.0.0.1 port, scraping
// target every second with the label service=svc, and stops it (by its PID) when the test
// ends. It returns the server's URL.
func startPrometheus(t *testing.T, target, svc string) string {
	t.Helper()
	if _, err := os.Stat(prometheusBin); err != nil {
		dockertest.Unavailable(t, "prometheus (Debian package prometheus)", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	err := os.WriteFile(cfg, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ares-test
    static_configs:
      - targets: [%q]
        labels: {service: %q}
`, target, svc), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prometheusBin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the process this test started, by its PID
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})
	url := "http://" + addr
	dockertest.Eventually(t, 30*time.Second, "prometheus is ready", func() bool {
		code, _, err := dockertest.Get(addr, "/-/ready")
		return err == nil && code == 200
	})
	return url
}

// TestPromQLMode checks the default queries against a real Prometheus scraping a test server.
// Every series exists, with a count of at least a tenth of its increase, before the query
// window starts, so rate() extrapolates all of them to the window's edges by the same factor:
// the error rate and the quantiles are exact, and the rate is the increase over the sampled
// span, between window−2s and window.
func TestPromQLMode(t *testing.T) {
	t.Parallel()
	const window = 15 * time.Second
	svc := "promql-" + run
	_, addr := replica(t, svc, "promql", 0)
	url := startPrometheus(t, addr, svc)
	s := newSensor(t, Options{PrometheusURL: url, PromQL: PromQL{Window: window}})

	// Create every series, then wait until Prometheus has scraped them.
	var pre []string
	pre = append(pre, repeat(50, "/status?code=200")...)
	pre = append(pre, repeat(50, "/status?code=500")...)
	pre = append(pre, repeat(50, "/slow?ms=1")...)
	mustSend(t, addr, pre...)
	probe := newSensor(t, Options{PrometheusURL: url, PromQL: PromQL{RPS: `sum by (service) (http_requests_total)`}})
	dockertest.Eventually(t, 20*time.Second, "prometheus scraped the test server", func() bool {
		f := engine.NewFacts(1, time.Now())
		return probe.Collect(context.Background(), f) == nil && f.Services[svc] != nil && f.Services[svc].Metrics.RPS == 150
	})
	scraped := time.Now()
	// The window starts 0.5 s after that scrape and its first sample comes before the burst.
	time.Sleep(time.Until(scraped.Add(3 * time.Second)))
	mustSend(t, addr, mix()...)
	time.Sleep(time.Until(scraped.Add(window + 500*time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f := engine.NewFacts(2, time.Now())
	if err := s.Collect(ctx, f); err != nil {
		t.Fatal(err)
	}
	for name := range f.Services {
		if name != svc {
			t.Errorf("service %q from Prometheus is not among the labelled containers", name)
		}
	}
	m := f.Services[svc].Metrics
	if m == nil {
		t.Fatalf("no metrics for %s: %v", svc, f.Services)
	}
	if lo, hi := 240/window.Seconds(), 240/(window.Seconds()-2); m.RPS < lo*0.95 || m.RPS > hi*1.05 {
		t.Errorf("rps = %.2f, want %.2f..%.2f", m.RPS, lo, hi)
	} else {
		t.Logf("rps = %.2f (want %.2f..%.2f)", m.RPS, lo, hi)
	}
	within(t, "error_rate", m.ErrorRate, 10.0/240, 0.1)
	within(t, "latency_p50_ms", m.LatencyP50Ms, mixP50, 0.1)
	within(t, "latency_p99_ms", m.LatencyP99Ms, mixP99, 0.1)

	// A query that fails fails the collect and fills nothing.
	bad := newSensor(t, Options{PrometheusURL: url, PromQL: PromQL{ErrorRate: "rate(http_requests_total[1m]"}})
	f = engine.NewFacts(3, time.Now())
	if err := bad.Collect(ctx, f); err == nil || !strings.Contains(err.Error(), "query error_rate") {
		t.Errorf("collect with a broken query: %v, want a query error_rate error", err)
	}
	if len(f.Services) != 0 {
		t.Errorf("services %v filled by a failed collect", f.Services)
	}
}
