// Package load generates bounded HTTP load (built on vegeta) against the shop or a test's
// container, and reports throughput, latency percentiles, errors and a per-second timeline.
//
// Load is always bounded in rate and time, and only goes to loopback addresses (a
// container's port published on 127.0.0.1) unless Options.AllowHost names the host.
package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Bounds of a run.
const (
	MaxRate        = 2000             // requests per second, surge included
	MaxDuration    = 30 * time.Minute // a whole run
	DefaultTimeout = 5 * time.Second  // per request
)

// Surge is a step of the rate from Rate to Factor·Rate After the start, For a while (0: until
// the end).
type Surge struct {
	Factor float64       `json:"factor"`
	After  time.Duration `json:"after"`
	For    time.Duration `json:"for,omitempty"`
}

// Options describe a run.
type Options struct {
	Target   string        // base URL, e.g. http://127.0.0.1:8000 (the demo shop's gateway)
	Rate     int           // requests per second before and after a surge
	Duration time.Duration // whole run
	Surge    *Surge        // optional step up of the rate
	Paths    []string      // requested round-robin; default "/"
	Timeout  time.Duration // per request; default DefaultTimeout
	// MaxRate caps Rate (and Rate·Factor) below the package's MaxRate; 0: MaxRate.
	MaxRate int
	// AllowHost lets the target be this host name besides loopback addresses (a test's own
	// Docker network, say). Empty: loopback only.
	AllowHost string
}

// Snapshot is the progress of a run, about once per second.
type Snapshot struct {
	Elapsed  time.Duration `json:"elapsed"`
	Rate     float64       `json:"rate"` // requests sent in the last second
	Requests int           `json:"requests"`
	Failed   int           `json:"failed"`
	P99      time.Duration `json:"p99"` // over the last second
}

// Latency percentiles of successful and failed requests alike.
type Latency struct {
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

// Second is one second of the timeline.
type Second struct {
	Second   int           `json:"second"` // since the start, from 0
	Requests int           `json:"requests"`
	Failed   int           `json:"failed"`
	P99      time.Duration `json:"p99"`
}

// Report is the result of a run. A request failed when it got no answer or a status >= 500
// (4xx are the client's business and count as served).
type Report struct {
	Target     string         `json:"target"`
	Requests   int            `json:"requests"`
	Succeeded  int            `json:"succeeded"`
	Failed     int            `json:"failed"`
	Throughput float64        `json:"throughput"` // successful requests per second
	Latency    Latency        `json:"latency"`
	Errors     map[string]int `json:"errors,omitempty"` // by status code ("503") or error text
	Seconds    []Second       `json:"seconds"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
}

// Availability is the share of requests served, 0..1 (1 when none was sent).
func (r Report) Availability() float64 {
	if r.Requests == 0 {
		return 1
	}
	return float64(r.Succeeded) / float64(r.Requests)
}

// Validate checks the bounds: rate 1..MaxRate (surge included), duration up to MaxDuration,
// an http(s) target on a loopback address (or AllowHost). Errors name the field.
func (o Options) Validate() error {
	limit := MaxRate
	if o.MaxRate > 0 && o.MaxRate < limit {
		limit = o.MaxRate
	}
	u, err := url.Parse(o.Target)
	switch {
	case o.Target == "":
		return errors.New("target: a URL is required (e.g. http://127.0.0.1:8080)")
	case err != nil:
		return fmt.Errorf("target: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("target: must be an http:// or https:// URL (got %q)", o.Target)
	case u.Host == "":
		return fmt.Errorf("target: no host in %q", o.Target)
	case !o.allowed(u.Hostname()):
		return fmt.Errorf("target: %q is not a loopback address: load only goes to this machine (127.0.0.1, ::1, localhost) or a container's port published there", u.Hostname())
	}
	if o.Rate < 1 || o.Rate > limit {
		return fmt.Errorf("rate: must be in 1..%d requests/s (got %d)", limit, o.Rate)
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		return fmt.Errorf("duration: must be in (0, %s] (got %s)", MaxDuration, o.Duration)
	}
	if o.Timeout < 0 || o.Timeout > time.Minute {
		return fmt.Errorf("timeout: must be in [0, 1m] (got %s)", o.Timeout)
	}
	for _, p := range o.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("paths: %q must start with /", p)
		}
	}
	if s := o.Surge; s != nil {
		switch {
		case s.Factor <= 0 || s.Factor > 100:
			return fmt.Errorf("surge.factor: must be in (0, 100] (got %g)", s.Factor)
		case float64(o.Rate)*s.Factor > float64(limit):
			return fmt.Errorf("surge.factor: rate %d × %g = %.0f requests/s is over the limit %d", o.Rate, s.Factor, float64(o.Rate)*s.Factor, limit)
		case float64(o.Rate)*s.Factor < 1:
			return fmt.Errorf("surge.factor: rate %d × %g is under 1 request/s", o.Rate, s.Factor)
		case s.After < 0 || s.After >= o.Duration:
			return fmt.Errorf("surge.after: must be in [0, duration %s) (got %s)", o.Duration, s.After)
		case s.For < 0:
			return fmt.Errorf("surge.for: must be >= 0 (got %s)", s.For)
		}
	}
	return nil
}

func (o Options) allowed(host string) bool {
	if host == "localhost" || (o.AllowHost != "" && host == o.AllowHost) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RateAt is the rate the options ask for at elapsed since the start.
func (o Options) RateAt(elapsed time.Duration) float64 {
	r := float64(o.Rate)
	if s := o.Surge; s != nil && elapsed >= s.After && (s.For == 0 || elapsed < s.After+s.For) {
		r *= s.Factor
	}
	return r
}

// pacer paces hits at Options.RateAt: a constant rate with an optional step.
type pacer struct{ o Options }

// hits is how many requests should have been sent by elapsed.
func (p pacer) hits(elapsed time.Duration) float64 {
	base := float64(p.o.Rate)
	total := base * elapsed.Seconds()
	if s := p.o.Surge; s != nil && elapsed > s.After {
		end := elapsed
		if s.For > 0 && s.After+s.For < end {
			end = s.After + s.For
		}
		total += base * (s.Factor - 1) * (end - s.After).Seconds()
	}
	return total
}

func (p pacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	expected := p.hits(elapsed)
	if float64(hits) < expected {
		return 0, false
	}
	rate := p.o.RateAt(elapsed)
	wait := time.Duration((float64(hits) + 1 - expected) / rate * float64(time.Second))
	if s := p.o.Surge; s != nil && elapsed < s.After && elapsed+wait > s.After {
		wait = s.After - elapsed // the rate changes before the next hit: re-pace there
	}
	if s := p.o.Surge; s != nil && s.For > 0 && elapsed < s.After+s.For && elapsed+wait > s.After+s.For {
		wait = s.After + s.For - elapsed
	}
	return max(wait, time.Microsecond), false
}

func (p pacer) Rate(elapsed time.Duration) float64 { return p.o.RateAt(elapsed) }

var _ vegeta.Pacer = pacer{}

// Run sends the load until the duration ends or ctx is cancelled, calls progress (when not
// nil) about once per second, and returns the report of what was sent (also when cancelled,
// with ctx's error).
func Run(ctx context.Context, o Options, progress func(Snapshot)) (Report, error) {
	if err := o.Validate(); err != nil {
		return Report{}, fmt.Errorf("load: %w", err)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	paths := o.Paths
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	base := strings.TrimSuffix(o.Target, "/")
	var next atomic.Uint64
	targeter := func(t *vegeta.Target) error { // called by every worker concurrently
		t.Method, t.URL = "GET", base+paths[(next.Add(1)-1)%uint64(len(paths))]
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Timeout(o.Timeout), vegeta.MaxBody(0), vegeta.KeepAlive(true),
		vegeta.Workers(8), vegeta.MaxWorkers(1024), vegeta.Redirects(vegeta.NoFollow))
	start := time.Now()
	results := atk.Attack(targeter, pacer{o}, o.Duration, "ares-chaos")

	c := newCollector(start, o)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopped := false
	for results != nil {
		select {
		case res, ok := <-results:
			if !ok {
				results = nil
				break
			}
			c.add(res)
		case <-tick.C:
			if progress != nil {
				progress(c.snapshot())
			}
		case <-ctx.Done():
			if !stopped {
				atk.Stop()
				stopped = true
			}
		}
	}
	return c.report(), ctx.Err()
}

// collector turns results into snapshots and the report.
type collector struct {
	start     time.Time
	o         Options
	all       []time.Duration
	seconds   []Second
	perSecond [][]time.Duration // latencies by second, for its p99
	errs      map[string]int
	requests  int
	failed    int
	// since the last snapshot
	lastAt        time.Time
	lastLatencies []time.Duration
	lastRequests  int
}

func newCollector(start time.Time, o Options) *collector {
	n := int((o.Duration + time.Second - 1) / time.Second)
	c := &collector{start: start, o: o, errs: map[string]int{}, lastAt: start,
		seconds: make([]Second, n), perSecond: make([][]time.Duration, n)}
	for i := range c.seconds {
		c.seconds[i].Second = i
	}
	return c
}

// failure is the reason a result failed, "" when it was served: no answer, or a 5xx.
func failure(r *vegeta.Result) string {
	if r.Code == 0 {
		msg := r.Error
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:] // drop the `Get "url": dial tcp addr:` prefix
		}
		if msg == "" {
			msg = "no answer"
		}
		return msg
	}
	if r.Code >= 500 {
		return strconv.Itoa(int(r.Code))
	}
	return ""
}

func (c *collector) add(r *vegeta.Result) {
	c.requests++
	c.lastRequests++
	c.all = append(c.all, r.Latency)
	c.lastLatencies = append(c.lastLatencies, r.Latency)
	i := int(r.Timestamp.Sub(c.start) / time.Second)
	i = min(max(i, 0), len(c.seconds)-1)
	c.seconds[i].Requests++
	c.perSecond[i] = append(c.perSecond[i], r.Latency)
	if why := failure(r); why != "" {
		c.failed++
		c.seconds[i].Failed++
		c.errs[why]++
	}
}

func (c *collector) snapshot() Snapshot {
	now := time.Now()
	s := Snapshot{Elapsed: now.Sub(c.start).Round(time.Millisecond), Requests: c.requests, Failed: c.failed,
		P99: percentile(c.lastLatencies, 0.99)}
	if d := now.Sub(c.lastAt).Seconds(); d > 0 {
		s.Rate = float64(c.lastRequests) / d
	}
	c.lastAt, c.lastLatencies, c.lastRequests = now, c.lastLatencies[:0], 0
	return s
}

func (c *collector) report() Report {
	r := Report{Target: c.o.Target, Requests: c.requests, Failed: c.failed, Succeeded: c.requests - c.failed,
		Start: c.start, End: time.Now(), Seconds: c.seconds}
	if len(c.errs) > 0 {
		r.Errors = c.errs
	}
	for i := range r.Seconds {
		r.Seconds[i].P99 = percentile(c.perSecond[i], 0.99)
	}
	// Trim the seconds never reached (a cancelled run).
	for len(r.Seconds) > 0 && r.Seconds[len(r.Seconds)-1].Requests == 0 &&
		time.Duration(len(r.Seconds)-1)*time.Second > r.End.Sub(r.Start) {
		r.Seconds = r.Seconds[:len(r.Seconds)-1]
	}
	if d := r.End.Sub(r.Start).Seconds(); d > 0 {
		r.Throughput = float64(r.Succeeded) / d
	}
	r.Latency = Latency{P50: percentile(c.all, 0.50), P90: percentile(c.all, 0.90), P99: percentile(c.all, 0.99)}
	if len(c.all) > 0 {
		r.Latency.Max = slices.Max(c.all)
	}
	return r
}

// percentile is the nearest-rank q-quantile of ds (sorting it in place); 0 when empty.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
