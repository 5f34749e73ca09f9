// Package probe is the Health Agent (facts name "probe"): one HTTP GET per service and tick,
// reported as services.<name>.probe = {ok, consecutive_failures, latency_ms}.
//
// A service's probe URL, as seen from ARES, comes from Options.Targets (configuration) or else
// from the label ares.probe.url on any of its replicas. The sensor finds those labels itself:
// it lists the containers labelled ares.enable=true (plus Options.Labels) on its first Collect
// and then every Options.RefreshEvery collects, and keeps the result in between; a failed list
// keeps the previous result. Configured targets win over labels.
//
// All probes of one Collect run in parallel, at most Options.Concurrency at a time, and share
// one deadline, Options.Timeout after Collect began (waiting for a slot counts), so Collect
// never takes longer than the timeout. A probe succeeds when the service answers with a status
// below 400 (redirects are not followed). Consecutive failures are remembered per service
// across ticks, and forgotten when the service has no probe any more.
package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// Labels the sensor reads.
const (
	LabelEnable  = "ares.enable"    // "true": ARES watches the container
	LabelService = "ares.service"   // service name; default the Compose service, then the name
	LabelURL     = "ares.probe.url" // the service's probe URL as seen from ARES
	labelCompose = "com.docker.compose.service"
)

const maxBody = 64 << 10 // bytes of a probe's answer read (and discarded) to reuse the connection

// Options configure a Sensor. The zero value is usable.
type Options struct {
	// Targets maps a service name to its probe URL (http or https); it wins over the label.
	Targets map[string]string
	// Timeout bounds every probe of one Collect, together; default 1s.
	Timeout time.Duration
	// Concurrency is the number of probes in flight at once; default 16.
	Concurrency int
	// RefreshEvery: list the containers for their ares.probe.url labels every N collects;
	// default 10.
	RefreshEvery int
	// Labels are extra "key=value" filters a container must match on top of ares.enable=true.
	Labels []string
	// DockerTimeout bounds the container list; default 1s.
	DockerTimeout time.Duration
}

// Sensor is the probe sensor. Collect calls are serialised.
type Sensor struct {
	cli     *client.Client // nil: configured targets only
	opt     Options
	log     *slog.Logger
	http    *http.Client
	filters client.Filters

	mu       sync.Mutex // serialises Collect; guards the fields below
	collects int
	stale    bool              // the last list failed
	labelled map[string]string // service → URL from labels, as of the last good list
	failures map[string]int    // service → consecutive failures
}

var _ engine.Sensor = (*Sensor)(nil)

// New returns a probe sensor. cli may be nil: then only opt.Targets are probed. Targets with a
// URL that does not parse as http(s) are logged and skipped.
func New(cli *client.Client, opt Options, log *slog.Logger) *Sensor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sensor", "probe")
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	if opt.RefreshEvery <= 0 {
		opt.RefreshEvery = 10
	}
	if opt.DockerTimeout <= 0 {
		opt.DockerTimeout = time.Second
	}
	targets := make(map[string]string, len(opt.Targets))
	for svc, u := range opt.Targets {
		if err := checkURL(u); err != nil {
			log.Error("ignoring probe target", "service", svc, "field", "targets", "value", u, "err", err)
			continue
		}
		targets[svc] = u
	}
	opt.Targets = targets
	f := client.Filters{}.Add("label", LabelEnable+"=true")
	for _, l := range opt.Labels {
		f = f.Add("label", l)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	tr.IdleConnTimeout = 30 * time.Second
	return &Sensor{
		cli: cli, opt: opt, log: log, filters: f,
		http: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		labelled: map[string]string{},
		failures: map[string]int{},
	}
}

// Name is the facts key.
func (s *Sensor) Name() string { return "probe" }

// Close releases idle connections.
func (s *Sensor) Close() { s.http.CloseIdleConnections() }

type target struct {
	service, url string
	res          engine.Probe
}

// Collect probes every service with a URL and fills services.<name>.probe. It fails only when
// it could not learn any target because the container list failed.
func (s *Sensor) Collect(ctx context.Context, f *engine.Facts) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	var listErr error
	if s.cli != nil && (s.stale || s.collects%s.opt.RefreshEvery == 0) {
		listErr = s.refresh(ctx)
		s.stale = listErr != nil // list again next time
	}
	s.collects++
	ts := s.targets()
	if listErr != nil {
		if len(ts) == 0 {
			return listErr
		}
		s.log.Warn("listing probe labels failed, keeping the previous ones", "err", listErr)
	}

	pctx, cancel := context.WithDeadline(ctx, start.Add(s.opt.Timeout))
	defer cancel()
	sem := make(chan struct{}, s.opt.Concurrency)
	var wg sync.WaitGroup
	for i := range ts {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-pctx.Done():
				ts[i].res = engine.Probe{LatencyMs: ms(time.Since(start))}
				return
			}
			defer func() { <-sem }()
			ts[i].res = s.probe(pctx, ts[i].url)
		})
	}
	wg.Wait()

	seen := make(map[string]struct{}, len(ts))
	for i := range ts {
		t := &ts[i]
		seen[t.service] = struct{}{}
		if t.res.OK {
			s.failures[t.service] = 0
		} else {
			s.failures[t.service]++
		}
		t.res.ConsecutiveFailures = s.failures[t.service]
		p := t.res
		f.Service(t.service).Probe = &p
	}
	for svc := range s.failures {
		if _, ok := seen[svc]; !ok {
			delete(s.failures, svc)
		}
	}
	return nil
}

// targets merges the configured and labelled URLs, sorted by service.
func (s *Sensor) targets() []target {
	ts := make([]target, 0, len(s.opt.Targets)+len(s.labelled))
	for svc, u := range s.opt.Targets {
		ts = append(ts, target{service: svc, url: u})
	}
	for svc, u := range s.labelled {
		if _, ok := s.opt.Targets[svc]; !ok {
			ts = append(ts, target{service: svc, url: u})
		}
	}
	slices.SortFunc(ts, func(a, b target) int { return cmp.Compare(a.service, b.service) })
	return ts
}

// refresh lists the labelled containers and replaces s.labelled with their probe URLs. Where
// the replicas of one service disagree, the lexically first URL wins, so the choice is stable.
func (s *Sensor) refresh(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, s.opt.DockerTimeout)
	defer cancel()
	res, err := s.cli.ContainerList(lctx, client.ContainerListOptions{All: true, Filters: s.filters})
	if err != nil {
		return fmt.Errorf("docker: list: %w", err)
	}
	got := map[string]string{}
	for _, c := range res.Items {
		u := strings.TrimSpace(c.Labels[LabelURL])
		if u == "" {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		svc := serviceName(c.Labels, name)
		if err := checkURL(u); err != nil {
			s.log.Warn("ignoring bad label", "service", svc, "replica", name, "label", LabelURL, "value", u, "err", err)
			continue
		}
		if old, ok := got[svc]; !ok || u < old {
			got[svc] = u
		}
	}
	s.labelled = got
	return nil
}

// probe GETs u once. Latency is the time to the end of the (capped) body, or to the failure.
func (s *Sensor) probe(ctx context.Context, u string) engine.Probe {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return engine.Probe{}
	}
	req.Header.Set("User-Agent", "ares-probe")
	resp, err := s.http.Do(req)
	if err != nil {
		return engine.Probe{LatencyMs: ms(time.Since(start))}
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	return engine.Probe{OK: err == nil && resp.StatusCode < 400, LatencyMs: ms(time.Since(start))}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// checkURL accepts absolute http and https URLs with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// serviceName is ares.service, else the Compose service, else the container name (the docker
// sensor's rule, so that both name a service alike).
func serviceName(labels map[string]string, name string) string {
	if v := labels[LabelService]; v != "" {
		return v
	}
	if v := labels[labelCompose]; v != "" {
		return v
	}
	return name
}
