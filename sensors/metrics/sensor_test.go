package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/schema"
	"github.com/ares-sre/ares/internal/dockertest"
	"github.com/ares-sre/ares/sensors/docker"
)

// scopeLabel scopes each test's sensors to the containers that test created, so that other
// tests' labelled containers on the same engine are never scraped.
const scopeLabel = "ares.test.metrics"

// noHealthImage is the test server without its HEALTHCHECK: the health checks' requests would
// count in http_requests_total and blur the expected rates.
const noHealthImage = "ares-testserver:nohealthcheck"

var run = strconv.FormatInt(time.Now().UnixNano(), 36)

func scope(t testing.TB) string { return run + "-" + t.Name() }

func scopeFilter(t testing.TB) []string { return []string{scopeLabel + "=" + scope(t)} }

// replica starts a published test server of service svc that t's sensors see and returns its
// id and 127.0.0.1 address once /metrics answers.
func replica(t testing.TB, svc, suffix string, memLimit int64, extra ...string) (id, addr string) {
	t.Helper()
	img := dockertest.BuildGoImage(t, noHealthImage, "./tests/testserver", "")
	labels := map[string]string{
		scopeLabel: scope(t), LabelEnable: "true", LabelService: svc, LabelMetricsPort: "8080",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	id = dockertest.Run(t, dockertest.Spec{
		Name:     "ares-metrics-" + run + "-" + suffix,
		Image:    img,
		Labels:   labels,
		Publish:  true,
		MemLimit: memLimit,
	})
	addr = waitMetrics(t, id)
	return id, addr
}

// waitMetrics waits until the container's published /metrics answers and returns its address.
func waitMetrics(t testing.TB, id string) string {
	t.Helper()
	addr := dockertest.HostPort(t, id)
	dockertest.Eventually(t, 15*time.Second, "test server answers /metrics", func() bool {
		code, _, err := dockertest.Get(addr, "/metrics")
		return err == nil && code == 200
	})
	return addr
}

// noNetwork is a network no container is on: with it as the sensor's only network, a replica
// without a published port is never reached at its bridge address from the host.
const noNetwork = "ares-test-no-such-network"

func newSensor(t testing.TB, opt Options) *Sensor {
	t.Helper()
	opt.Labels = append(opt.Labels, scopeFilter(t)...)
	opt.Networks = []string{noNetwork}
	s, err := New(dockertest.Client(t), opt, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gather runs the docker sensor and the metrics sensor into one document, as the engine does,
// then the replica analyzer, and checks the document against the schema.
func gather(t testing.TB, tick uint64, d *docker.Sensor, s *Sensor) *engine.Facts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := engine.NewFacts(tick, time.Now())
	if d != nil {
		if err := d.Collect(ctx, f); err != nil {
			t.Fatalf("docker collect: %v", err)
		}
	}
	if err := s.Collect(ctx, f); err != nil {
		t.Fatalf("metrics collect: %v", err)
	}
	f.Sensors[s.Name()] = engine.SensorStatus{OK: true}
	a := s.Replicas()
	if err := a.Analyze(ctx, f); err != nil {
		t.Fatalf("%s: %v", a.Name(), err)
	}
	f.Summarize()
	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(raw); err != nil {
		t.Errorf("facts do not match the schema: %v\n%s", err, raw)
	}
	return f
}

func dockerSensor(t testing.TB) *docker.Sensor {
	return docker.New(dockertest.Client(t), docker.Options{Labels: scopeFilter(t)}, nil)
}

// send requests the paths from addr, 8 at a time, and returns the first transport error.
func send(addr string, paths ...string) error {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, p := range paths {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, _, err := dockertest.Get(addr, p); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func mustSend(t testing.TB, addr string, paths ...string) {
	t.Helper()
	if err := send(addr, paths...); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// scrapedAt is when the sensor last scraped container id.
func scrapedAt(s *Sensor, id string) time.Time {
	if rd := s.prev[id]; rd != nil {
		return rd.at
	}
	return time.Time{}
}

func repeat(n int, path string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = path
	}
	return out
}

// mix is the traffic of the rate tests: 110 fast requests (10 answered 500), 120 taking 30 ms
// (bucket 25–50 ms of the test server's histogram) and 10 taking 60 ms (bucket 50–100 ms).
func mix() []string {
	var p []string
	p = append(p, repeat(100, "/status?code=200")...)
	p = append(p, repeat(10, "/status?code=500")...)
	p = append(p, repeat(120, "/slow?ms=30")...)
	p = append(p, repeat(10, "/slow?ms=60")...)
	return p
}

// Expected quantiles of mix, in ms, by the histogram_quantile interpolation over the test
// server's buckets: p50 is rank 120 of 240, 10 into the 120 observations of (25, 50] after 110
// faster ones; p99 is rank 237.6, 7.6 into the 10 of (50, 100] after 230.
const (
	mixP50 = 25 + 25*(120-110)/120.0
	mixP99 = 50 + 50*(237.6-230)/10
)

func within(t testing.TB, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol*math.Abs(want) {
		t.Errorf("%s = %.4g, want %.4g ± %.0f%%", what, got, want, tol*100)
	} else {
		t.Logf("%s = %.4g (want %.4g)", what, got, want)
	}
}

func TestRatesAndQuantiles(t *testing.T) {
	t.Parallel()
	svc := "web-" + run
	idA, addrA := replica(t, svc, "rates-a", 0)
	idB, addrB := replica(t, svc, "rates-b", 0)
	d, s := dockerSensor(t), newSensor(t, Options{})

	t0 := time.Now()
	f := gather(t, 1, d, s)
	if m := f.Services[svc].Metrics; m != nil {
		t.Errorf("metrics %+v on first sight, want none before a second scrape", m)
	}
	a1, b1 := scrapedAt(s, idA), scrapedAt(s, idB)
	t1 := time.Now()
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { errA = send(addrA, mix()...) })
	wg.Go(func() { errB = send(addrB, repeat(60, "/status?code=200")...) })
	wg.Wait()
	if err := errors.Join(errA, errB); err != nil {
		t.Fatalf("send: %v", err)
	}
	time.Sleep(time.Until(t1.Add(time.Second)))
	t2 := time.Now()
	f = gather(t, 2, d, s)
	t3 := time.Now()
	// Rates are over the sensor's own interval between the two scrapes of each replica, which
	// must lie between the two collects.
	secsA, secsB := scrapedAt(s, idA).Sub(a1).Seconds(), scrapedAt(s, idB).Sub(b1).Seconds()
	for _, secs := range []float64{secsA, secsB} {
		if secs < t2.Sub(t1).Seconds() || secs > t3.Sub(t0).Seconds() {
			t.Errorf("scrape interval %.3fs outside [%.3fs, %.3fs]", secs, t2.Sub(t1).Seconds(), t3.Sub(t0).Seconds())
		}
	}
	t.Logf("intervals %.3fs %.3fs", secsA, secsB)

	reps := map[string]*engine.Metrics{}
	for _, r := range f.Services[svc].Replicas {
		reps[r.ID] = r.Metrics
	}
	a, b, m := reps[idA], reps[idB], f.Services[svc].Metrics
	if a == nil || b == nil || m == nil {
		t.Fatalf("replica metrics %v, %v; service %v; want all three", a, b, m)
	}
	within(t, "replica a rps", a.RPS, 240/secsA, 0.1)
	within(t, "replica a error_rate", a.ErrorRate, 10.0/240, 0.1)
	within(t, "replica a latency_p50_ms", a.LatencyP50Ms, mixP50, 0.1)
	within(t, "replica a latency_p99_ms", a.LatencyP99Ms, mixP99, 0.1)
	within(t, "replica b rps", b.RPS, 60/secsB, 0.1)
	if b.ErrorRate != 0 || b.LatencyP99Ms <= 0 || b.LatencyP99Ms > 25 {
		t.Errorf("replica b = %+v, want no errors and p99 in (0, 25] ms", b)
	}
	within(t, "service rps", m.RPS, 240/secsA+60/secsB, 0.1)
	within(t, "service error_rate", m.ErrorRate, 10.0/300, 0.1)
	// Service p99: rank 297 of 300, 7 into the 10 slowest after 290.
	within(t, "service latency_p99_ms", m.LatencyP99Ms, 50+50*(297-290)/10.0, 0.1)

	// No traffic: zero rates, and latencies 0 rather than NaN.
	f = gather(t, 3, d, s)
	if m := f.Services[svc].Metrics; m == nil || *m != (engine.Metrics{}) {
		t.Errorf("idle service metrics = %+v, want all 0", m)
	}
}

// TestMetricNamesFromLabels: a replica whose request metrics carry another name (an
// application's prefix) names them in ares.metrics.requests and ares.metrics.duration.
func TestMetricNamesFromLabels(t *testing.T) {
	t.Parallel()
	svc := "named-" + run
	id, addr := replica(t, svc, "named", 0, LabelMetricsRequests, DefaultRequests, LabelMetricsDuration, DefaultDuration)
	other, otherAddr := replica(t, svc, "unnamed", 0)
	// The sensor looks for other names by default: only the labelled replica is understood.
	d, s := dockerSensor(t), newSensor(t, Options{Requests: "app_http_requests_total", Duration: "app_http_request_duration_seconds"})
	gather(t, 1, d, s)
	if err := errors.Join(send(addr, repeat(40, "/slow?ms=30")...), send(otherAddr, repeat(40, "/status?code=200")...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	f := gather(t, 2, d, s)
	reps := map[string]*engine.Metrics{}
	for _, r := range f.Services[svc].Replicas {
		reps[r.ID] = r.Metrics
	}
	if m := reps[id]; m == nil || m.RPS <= 0 || m.LatencyP99Ms < 25 {
		t.Errorf("labelled replica metrics %+v, want its 40 requests of 30 ms", m)
	}
	if m := reps[other]; m != nil && m.RPS != 0 {
		t.Errorf("unlabelled replica metrics %+v, want no requests found under the sensor's names", m)
	}
}

func TestRestartedReplicaNoNegativeRate(t *testing.T) {
	t.Parallel()
	svc := "restart-" + run
	id, addr := replica(t, svc, "restart", 0)
	s := newSensor(t, Options{})

	gather(t, 1, nil, s)
	mustSend(t, addr, repeat(100, "/status?code=500")...)
	if m := gather(t, 2, nil, s).Services[svc].Metrics; m == nil || m.RPS <= 0 || m.ErrorRate != 1 {
		t.Fatalf("before restart: %+v, want rps > 0 and error_rate 1", m)
	}

	before := scrapedAt(s, id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := dockertest.Client(t).ContainerRestart(ctx, id, client.ContainerRestartOptions{}); err != nil {
		t.Fatal(err)
	}
	addr = waitMetrics(t, id) // the published port may change with the restart
	t1 := time.Now()
	mustSend(t, addr, repeat(20, "/status?code=200")...)
	time.Sleep(time.Until(t1.Add(time.Second)))
	f := gather(t, 3, nil, s)
	m := f.Services[svc].Metrics
	if m == nil {
		t.Fatal("no metrics after the restart")
	}
	t.Logf("after restart: %+v", *m)
	if m.RPS < 0 || m.ErrorRate != 0 || m.LatencyP99Ms < 0 {
		t.Errorf("after restart: %+v, want rps ≥ 0 and no errors (the 100 errors were before)", m)
	}
	// The counters went down: the 20 requests the new run counted are the delta.
	within(t, "requests since the restart", m.RPS*scrapedAt(s, id).Sub(before).Seconds(), 20, 0.1)
}

func TestScrapeFailures(t *testing.T) {
	t.Parallel()
	svc := "bad-" + run
	img := dockertest.BuildGoImage(t, noHealthImage, "./tests/testserver", "")
	for i, kv := range [][2]string{
		{"8080x", ""},                // a bad label
		{"9999", ""},                 // a port not published (and no shared network)
		{"8080", "/status?code=503"}, // a path that answers 503
	} {
		dockertest.Run(t, dockertest.Spec{
			Name: fmt.Sprintf("ares-metrics-%s-bad-%d", run, i), Image: img, Publish: true,
			Labels: map[string]string{scopeLabel: scope(t), LabelEnable: "true", LabelService: svc,
				LabelMetricsPort: kv[0], LabelMetricsPath: kv[1]},
		})
	}
	s := newSensor(t, Options{Timeout: 300 * time.Millisecond})
	f := engine.NewFacts(1, time.Now())
	err := s.Collect(context.Background(), f)
	if err == nil {
		t.Fatal("collect with every scrape failing = nil error")
	}
	t.Logf("collect: %v", err)
	if len(f.Services) != 0 {
		t.Errorf("services %v filled although nothing was scraped", f.Services)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(nil, Options{}, nil); err == nil {
		t.Error("New without docker client or prometheus_url = nil error")
	}
	if _, err := New(nil, Options{PrometheusURL: "http://127.0.0.1:1", PromQL: PromQL{RPS: "sum({{.Nope"}}, nil); err == nil {
		t.Error("New with a broken template = nil error")
	}
	if _, err := New(nil, Options{PrometheusURL: "http://127.0.0.1:1", PromQL: PromQL{ServiceLabel: "a-b"}}, nil); err == nil {
		t.Error("New with a bad service label = nil error")
	}
}

// With a scrape interval, collects in between report the last scrape's numbers unchanged, and
// the next scrape's rate covers the whole time since the previous scrape.
func TestScrapeInterval(t *testing.T) {
	id, addr := replica(t, "web", "interval", 0)
	d := dockerSensor(t)
	s := newSensor(t, Options{Interval: time.Second})
	if err := send(addr, "/status?code=200"); err != nil { // the series exist from here on
		t.Fatal(err)
	}
	gather(t, 1, d, s) // first reading: no rate yet
	time.Sleep(1100 * time.Millisecond)
	f := gather(t, 2, d, s) // second scrape: a rate over an idle second
	idle := f.Services["web"].Metrics
	if idle == nil {
		t.Fatal("no metrics after two scrapes")
	}
	paths := make([]string, 40)
	for i := range paths {
		paths[i] = "/status?code=200"
	}
	if err := send(addr, paths...); err != nil {
		t.Fatal(err)
	}
	f = gather(t, 3, d, s) // within the interval: the last scrape's numbers, unchanged
	if m := f.Services["web"].Metrics; m == nil || *m != *idle {
		t.Fatalf("within the interval: %+v, want the last scrape's %+v", m, idle)
	}
	if r := f.Services["web"].Replicas; len(r) != 1 || r[0].Metrics == nil || r[0].ID != id {
		t.Errorf("replica metrics within the interval: %+v", r)
	}
	time.Sleep(1100 * time.Millisecond)
	f = gather(t, 4, d, s)
	m := f.Services["web"].Metrics
	// 40 requests over the ~1.1–2 s since the previous scrape.
	if m == nil || m.RPS < 40/2.5 || m.RPS > 40/1.0 {
		t.Fatalf("after the interval: %+v, want the 40 requests over the time between scrapes", m)
	}
}
