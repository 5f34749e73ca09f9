// Package metrics is the metrics sensor (facts name "metrics"). It fills each service's
// metrics section (rps, error_rate, latency_p50_ms, latency_p99_ms) and, through the analyzer
// that Sensor.Replicas returns, each replica's.
//
// Scrape mode (the default): every Collect lists the running containers labelled
// ares.enable=true that carry ares.metrics.port (and optionally ares.metrics.path, default
// /metrics, and ares.metrics.requests / ares.metrics.duration naming the request counter and
// duration histogram when they are not Options.Requests and Options.Duration), scrapes each one's Prometheus text exposition over HTTP, a few at a time and each
// with its own timeout, and derives the metrics from the deltas of the request counter and the
// duration histogram since the replica's previous scrape: the first Collect that sees a replica
// only remembers its counters. A service's numbers are its replicas' deltas summed. A replica
// whose counters went down, or whose process_start_time_seconds changed, restarted: its new
// values are the delta, so a restart never yields a negative or absurd rate.
//
// PromQL mode (Options.PrometheusURL set): the same service fields come from instant queries
// against a Prometheus server, one configurable query template per field.
//
// The engine merges sensors' documents by appending replicas, so the sensor itself never adds
// replicas: the analyzer returned by Replicas copies the per-replica metrics of this tick's
// Collect into the replicas the docker sensor reported, matched by container id.
package metrics

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/prometheus/common/expfmt"

	"github.com/ares-sre/ares/engine"
)

// Labels the sensor reads.
const (
	LabelEnable      = "ares.enable"       // "true": ARES watches the container
	LabelService     = "ares.service"      // service name; default the Compose service, then the name
	LabelMetricsPort = "ares.metrics.port" // container port serving the Prometheus exposition
	LabelMetricsPath = "ares.metrics.path" // its path; default /metrics
	// The replica's request counter and duration histogram, where they are not named as
	// Options.Requests and Options.Duration (an application's own prefix, say).
	LabelMetricsRequests = "ares.metrics.requests"
	LabelMetricsDuration = "ares.metrics.duration"
	labelCompose         = "com.docker.compose.service"
)

// Defaults.
const (
	DefaultRequests  = "http_requests_total"
	DefaultCodeLabel = "code"
	DefaultDuration  = "http_request_duration_seconds"
	DefaultPath      = "/metrics"

	maxBody = 16 << 20 // bytes read from one exposition
)

// Options configure a Sensor. The zero value scrapes with the defaults.
type Options struct {
	// Labels are extra "key=value" filters a container must match on top of ares.enable=true.
	Labels []string
	// Interval is the scrape interval: collects in between report the last scrape's numbers
	// (rates are always over the time between two scrapes). 0: scrape at every collect.
	Interval time.Duration
	// Networks are the Docker networks ARES itself is attached to (ARES in a container). A
	// replica without a published port for its metrics port is reached at its address on the
	// first of these it shares, in the order given; when empty, at its address on any network
	// (which a Linux host can route to).
	Networks []string
	Timeout  time.Duration // per scrape, and for the container list; default 1s
	Parallel int           // scrapes in flight; default 8

	Requests  string // request counter; default http_requests_total
	CodeLabel string // its status code label; default code (5xx counts as an error)
	Duration  string // request duration histogram in seconds; default http_request_duration_seconds

	// PrometheusURL switches to PromQL mode: the service metrics come from this Prometheus
	// server (e.g. http://prometheus:9090) instead of scraping the replicas.
	PrometheusURL string
	PromQL        PromQL
}

// Sensor is the metrics sensor. It is safe for concurrent use; Collects run one at a time.
type Sensor struct {
	cli     *client.Client
	opt     Options
	log     *slog.Logger
	http    *http.Client
	filters client.Filters
	names   names
	prom    *promQuerier // nil in scrape mode

	sem chan struct{} // 1-slot: serialises Collect, giving up with ctx

	// Guarded by sem.
	scraped  time.Time                  // when the last scrape ran (scrape mode)
	lastSvcs map[string]*engine.Metrics // its service numbers
	prev     map[string]*reading        // container id → last reading
	warned   map[string]string          // container id → bad label value already logged

	mu       sync.Mutex // guards replicas and tick
	replicas map[string]*engine.Metrics
	tick     uint64
}

var _ engine.Sensor = (*Sensor)(nil)

// New returns a sensor listing containers through cli. cli may be nil in PromQL mode: the
// query results then name the services, not Docker. It fails on a bad PromQL template.
func New(cli *client.Client, opt Options, log *slog.Logger) (*Sensor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 8
	}
	opt.Requests = cmp.Or(opt.Requests, DefaultRequests)
	opt.CodeLabel = cmp.Or(opt.CodeLabel, DefaultCodeLabel)
	opt.Duration = cmp.Or(opt.Duration, DefaultDuration)
	if cli == nil && opt.PrometheusURL == "" {
		return nil, errors.New("metrics: no docker client and no prometheus url")
	}
	f := client.Filters{}.Add("label", LabelEnable+"=true")
	for _, l := range opt.Labels {
		f = f.Add("label", l)
	}
	s := &Sensor{
		cli: cli, opt: opt, log: log.With("sensor", "metrics"), filters: f,
		names: newNames(opt.Requests, opt.CodeLabel, opt.Duration),
		http: &http.Client{Transport: &http.Transport{
			Proxy:               nil, // replicas are local: never through a proxy
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
		}},
		sem:      make(chan struct{}, 1),
		prev:     map[string]*reading{},
		warned:   map[string]string{},
		replicas: map[string]*engine.Metrics{},
	}
	if opt.PrometheusURL != "" {
		q, err := newPromQuerier(opt)
		if err != nil {
			return nil, err
		}
		s.prom = q
	}
	return s, nil
}

// Name is the facts key.
func (s *Sensor) Name() string { return "metrics" }

// Collect fills services.<name>.metrics. In scrape mode it fails only when the containers
// cannot be listed or every scrape failed; a replica that cannot be scraped is logged and
// left out.
func (s *Sensor) Collect(ctx context.Context, f *engine.Facts) error {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return fmt.Errorf("metrics: %w", ctx.Err())
	}
	if s.prom == nil && s.opt.Interval > 0 && !s.scraped.IsZero() && time.Since(s.scraped) < s.opt.Interval {
		for name, m := range s.lastSvcs {
			c := *m
			f.Service(name).Metrics = &c
		}
		s.mu.Lock()
		s.tick = f.Tick // the replica numbers of the last scrape still stand
		s.mu.Unlock()
		return nil
	}
	var known map[string]bool // services of the labelled containers; nil: no filter
	var targets []target
	if s.cli != nil {
		list, err := s.list(ctx)
		if err != nil {
			return err
		}
		known = make(map[string]bool, len(list))
		for i := range list {
			known[serviceName(list[i].Labels, containerName(&list[i]))] = true
		}
		if s.prom == nil {
			targets = s.targets(list)
		}
	}
	if s.prom != nil {
		return s.prom.collect(ctx, f, known)
	}
	reps, svcs, err := s.scrapeAll(ctx, targets)
	s.scraped, s.lastSvcs = time.Now(), make(map[string]*engine.Metrics, len(svcs))
	if err != nil {
		s.scraped = time.Time{} // a failed scrape is never reported again as fresh
	}
	for name, w := range svcs {
		m := w.metrics()
		s.lastSvcs[name] = m
		c := *m
		f.Service(name).Metrics = &c
	}
	s.mu.Lock()
	s.replicas, s.tick = reps, f.Tick
	s.mu.Unlock()
	return err
}

// list returns the running labelled containers.
func (s *Sensor) list(ctx context.Context) ([]container.Summary, error) {
	lctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	res, err := s.cli.ContainerList(lctx, client.ContainerListOptions{Filters: s.filters})
	if err != nil {
		return nil, fmt.Errorf("metrics: list: %w", err)
	}
	return res.Items, nil
}

// target is one replica to scrape.
type target struct {
	id, name, service, url string
	names                  names
}

// targets resolves the scrape URL of every listed container that exports metrics, and forgets
// the readings of containers no longer listed.
func (s *Sensor) targets(list []container.Summary) []target {
	out := make([]target, 0, len(list))
	listed := make(map[string]struct{}, len(list))
	for i := range list {
		c := &list[i]
		listed[c.ID] = struct{}{}
		v, ok := c.Labels[LabelMetricsPort]
		if !ok {
			continue
		}
		name := containerName(c)
		svc := serviceName(c.Labels, name)
		port, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
		if err != nil || port == 0 {
			s.warnOnce(c.ID, v, "ignoring bad label", "service", svc, "replica", name, "label", LabelMetricsPort, "value", v)
			continue
		}
		addr, err := ResolveAddr(c, uint16(port), s.opt.Networks)
		if err != nil {
			s.warnOnce(c.ID, "addr:"+err.Error(), "replica not reachable", "service", svc, "replica", name, "err", err)
			continue
		}
		path := cmp.Or(strings.TrimSpace(c.Labels[LabelMetricsPath]), DefaultPath)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		n := s.names
		if r, d := strings.TrimSpace(c.Labels[LabelMetricsRequests]), strings.TrimSpace(c.Labels[LabelMetricsDuration]); r != "" || d != "" {
			n = newNames(cmp.Or(r, s.names.requests), s.names.codeLabel, cmp.Or(d, s.names.duration))
		}
		out = append(out, target{id: c.ID, name: name, service: svc, url: "http://" + addr + path, names: n})
	}
	for id := range s.prev {
		if _, ok := listed[id]; !ok {
			delete(s.prev, id)
		}
	}
	for id := range s.warned {
		if _, ok := listed[id]; !ok {
			delete(s.warned, id)
		}
	}
	return out
}

// warnOnce logs msg once per container and distinct what.
func (s *Sensor) warnOnce(id, what, msg string, args ...any) {
	if s.warned[id] == what {
		return
	}
	s.warned[id] = what
	s.log.Warn(msg, args...)
}

// scrapeAll scrapes the targets, at most Options.Parallel at a time, and returns the metrics
// of every replica scraped twice in a row (by container id) and the windows of their services.
func (s *Sensor) scrapeAll(ctx context.Context, ts []target) (map[string]*engine.Metrics, map[string]*window, error) {
	type result struct {
		rd  reading
		err error
	}
	res := make([]result, len(ts))
	sem := make(chan struct{}, s.opt.Parallel)
	var wg sync.WaitGroup
	for i := range ts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res[i].rd, res[i].err = s.scrape(ctx, ts[i].url, ts[i].names)
		})
	}
	wg.Wait()

	reps := make(map[string]*engine.Metrics, len(ts))
	svcs := map[string]*window{}
	var failed []int
	for i, t := range ts {
		if res[i].err != nil {
			failed = append(failed, i)
			continue
		}
		cur := new(res[i].rd)
		prev := s.prev[t.id]
		s.prev[t.id] = cur
		if prev == nil || !cur.at.After(prev.at) {
			continue // first sight: nothing to compare with yet
		}
		if cur.empty() && prev.empty() {
			continue // exports none of the metrics (or has not counted a request yet)
		}
		w := delta(prev, cur)
		reps[t.id] = w.metrics()
		sw := svcs[t.service]
		if sw == nil {
			sw = &window{}
			svcs[t.service] = sw
		}
		sw.add(w)
	}
	if len(failed) > 0 && len(failed) == len(ts) {
		i := failed[0]
		return reps, svcs, fmt.Errorf("metrics: all %d scrapes failed, e.g. %s: %w", len(ts), ts[i].name, res[i].err)
	}
	for _, i := range failed { // partial failure: the other replicas' numbers stand
		s.log.Warn("scrape failed", "service", ts[i].service, "replica", ts[i].name, "err", res[i].err)
	}
	return reps, svcs, nil
}

// scrape fetches and parses one exposition.
func (s *Sensor) scrape(ctx context.Context, url string, n names) (reading, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return reading{}, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	req.Header.Set("Accept-Encoding", "identity") // local traffic: compressing costs both ends CPU
	resp, err := s.http.Do(req)
	if err != nil {
		return reading{}, err
	}
	defer resp.Body.Close()
	at := time.Now()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return reading{}, fmt.Errorf("status %s", resp.Status)
	}
	switch expfmt.ResponseFormat(resp.Header).FormatType() {
	case expfmt.TypeProtoDelim, expfmt.TypeProtoText, expfmt.TypeProtoCompact:
		return reading{}, fmt.Errorf("got %s, want the text format", resp.Header.Get("Content-Type"))
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 { // do not keep a rare huge exposition's memory
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1)); err != nil {
		return reading{}, fmt.Errorf("read: %w", err)
	}
	if buf.Len() > maxBody {
		return reading{}, fmt.Errorf("exposition larger than %d MiB", maxBody>>20)
	}
	rd, err := parse(buf.Bytes(), n)
	rd.at = at
	return rd, err
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Replicas returns the analyzer that copies the per-replica metrics of this tick's Collect into
// the merged document's replicas (matched by id). List it among the engine's analyzers.
func (s *Sensor) Replicas() engine.Analyzer { return replicaAnalyzer{s} }

type replicaAnalyzer struct{ s *Sensor }

var _ engine.Analyzer = replicaAnalyzer{}

// Name is the facts.sensors key.
func (replicaAnalyzer) Name() string { return "metrics_replicas" }

// Analyze sets replicas[].metrics. It leaves them absent when the metrics sensor is not ok this
// tick, so that stale numbers never reach the policies.
func (a replicaAnalyzer) Analyze(_ context.Context, f *engine.Facts) error {
	if st, ok := f.Sensors[a.s.Name()]; !ok || !st.OK {
		return nil
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.s.tick != f.Tick || len(a.s.replicas) == 0 {
		return nil
	}
	for _, svc := range f.Services {
		for i := range svc.Replicas {
			r := &svc.Replicas[i]
			if m := a.s.replicas[r.ID]; m != nil {
				c := *m
				r.Metrics = &c
			}
		}
	}
	return nil
}

// serviceName is ares.service, else the Compose service, else the container name (as the
// docker sensor names services).
func serviceName(labels map[string]string, name string) string {
	return cmp.Or(labels[LabelService], labels[labelCompose], name)
}

func containerName(c *container.Summary) string {
	if len(c.Names) == 0 {
		return c.ID
	}
	// Names lists the container's own name and, on the legacy link network, "/other/alias"
	// entries; the shortest is its own.
	n := slices.MinFunc(c.Names, func(a, b string) int { return cmp.Compare(len(a), len(b)) })
	return strings.TrimPrefix(n, "/")
}
