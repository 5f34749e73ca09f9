package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/sensors/metrics"
)

// DockerObserver reads the replicas of services from the Docker engine: the containers
// labelled ares.enable=true plus Labels, grouped by their ares.service label (else their
// Compose service), like ARES's docker sensor.
type DockerObserver struct {
	Client *client.Client
	Labels []string // "key=value" or "key"
	// Traffic: also read each running replica's served API requests from its Prometheus
	// endpoint (ReplicaState.Requests), for "new replicas of X serve traffic".
	Traffic bool
	HTTP    *http.Client // for Traffic; default 500ms timeout
}

// Observe returns the replicas of each named service (an empty list for a service without
// any container).
func (o DockerObserver) Observe(ctx context.Context, services []string) (map[string][]ReplicaState, error) {
	f := client.Filters{}.Add("label", "ares.enable=true")
	for _, l := range o.Labels {
		f = f.Add("label", l)
	}
	res, err := o.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	out := make(map[string][]ReplicaState, len(services))
	for _, s := range services {
		out[s] = []ReplicaState{}
	}
	for _, c := range res.Items {
		svc := c.Labels["ares.service"]
		if svc == "" {
			svc = c.Labels["com.docker.compose.service"]
		}
		if _, ok := out[svc]; !ok {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		rs := ReplicaState{Name: name, State: string(c.State), Health: health(c.Status), Scaled: c.Labels["ares.scaled"] == "true"}
		if o.Traffic && rs.State == "running" {
			if n, ok := o.requests(ctx, c); ok {
				rs.Requests = &n
			}
		}
		out[svc] = append(out[svc], rs)
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	}
	return out, nil
}

// requests reads the replica's served API requests from its /metrics: the sum of
// shop_http_requests_total (or http_requests_total) over every route but the health,
// readiness and metrics endpoints. The endpoint is the port of label ares.metrics.port (else
// 8080) where it is published on the host (127.0.0.1 for a loopback or wildcard binding),
// else at the replica's address on a network, which only a runner inside that network
// reaches: metrics.ResolveAddr, as ARES's metrics sensor does.
func (o DockerObserver) requests(ctx context.Context, c container.Summary) (float64, bool) {
	addr := metricsAddr(c)
	if addr == "" {
		return 0, false
	}
	path := c.Labels["ares.metrics.path"]
	if path == "" {
		path = "/metrics"
	}
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 500 * time.Millisecond}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	return sumRequests(resp.Body)
}

// metricsAddr is the host:port requests scrapes, "" when c has none: where ARES's metrics
// sensor would scrape it.
func metricsAddr(c container.Summary) string {
	port := uint16(8080)
	if v, err := strconv.ParseUint(c.Labels["ares.metrics.port"], 10, 16); err == nil && v > 0 {
		port = uint16(v)
	}
	addr, err := metrics.ResolveAddr(&c, port, nil)
	if err != nil {
		return ""
	}
	return addr
}

// sumRequests sums the request counters of the Prometheus text in r, leaving out the
// health, readiness and metrics endpoints (health checks are not traffic).
func sumRequests(r io.Reader) (float64, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "shop_http_requests_total{") && !strings.HasPrefix(line, "http_requests_total{") {
			continue
		}
		if strings.Contains(line, "healthz") || strings.Contains(line, "readyz") || strings.Contains(line, "/metrics") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// health reads the health from Docker's status text ("Up 3 seconds (healthy)"), which every
// API version has.
func health(status string) string {
	switch {
	case strings.Contains(status, "(healthy)"):
		return "healthy"
	case strings.Contains(status, "(unhealthy)"):
		return "unhealthy"
	case strings.Contains(status, "(health: starting)"):
		return "starting"
	}
	return "none"
}

// AresClient reads ARES's JSON API (docs/api.md) on its dashboard address.
type AresClient struct {
	URL   string // e.g. http://127.0.0.1:8080
	Token string // bearer token (ARES_API_TOKEN), for dashboard.auth: read
	HTTP  *http.Client
}

// Actions returns the governed decisions on services at or after since, oldest first.
func (c AresClient) Actions(ctx context.Context, services []string, since time.Time) ([]Action, error) {
	var body struct {
		Actions []Action `json:"actions"`
	}
	if err := c.get(ctx, "/api/v1/actions?limit=1000", &body); err != nil {
		return nil, err
	}
	var out []Action
	for _, a := range body.Actions {
		if !a.At.Before(since) && contains(services, a.Service) {
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// Memory returns, per service, the highest mem_percent of its running replicas in ARES's
// latest facts (GET /api/v1/facts); a service ARES does not see is left out.
func (c AresClient) Memory(ctx context.Context, services []string) (map[string]float64, error) {
	var facts engine.Facts
	if err := c.get(ctx, "/api/v1/facts", &facts); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, name := range services {
		svc := facts.Services[name]
		if svc == nil {
			continue
		}
		m := 0.0
		for _, r := range svc.Replicas {
			if r.State == "running" {
				m = max(m, r.MemPercent)
			}
		}
		out[name] = m
	}
	return out, nil
}

// get decodes the JSON answer of GET path into v.
func (c AresClient) get(ctx context.Context, path string, v any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	u := strings.TrimRight(c.URL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("ares api: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ares api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("ares api: GET %s: %s %s", redact(u), resp.Status, e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("ares api: GET %s: %w", redact(u), err)
	}
	return nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}
