package load

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/internal/dockertest"
)

func TestValidate(t *testing.T) {
	ok := Options{Target: "http://127.0.0.1:8080", Rate: 10, Duration: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"ok", func(*Options) {}, ""},
		{"localhost", func(o *Options) { o.Target = "http://localhost:1234/x" }, ""},
		{"ipv6 loopback", func(o *Options) { o.Target = "http://[::1]:1234" }, ""},
		{"allowed host", func(o *Options) { o.Target = "http://cart:8080"; o.AllowHost = "cart" }, ""},
		{"surge", func(o *Options) { o.Surge = &Surge{Factor: 4, After: 500 * time.Millisecond} }, ""},

		{"no target", func(o *Options) { o.Target = "" }, "target: a URL is required"},
		{"remote", func(o *Options) { o.Target = "http://example.com" }, `target: "example.com" is not a loopback address`},
		{"lan address", func(o *Options) { o.Target = "http://192.168.1.10:8080" }, "not a loopback address"},
		{"other host than allowed", func(o *Options) { o.Target = "http://order:8080"; o.AllowHost = "cart" }, "not a loopback"},
		{"scheme", func(o *Options) { o.Target = "ftp://127.0.0.1" }, "must be an http:// or https:// URL"},
		{"zero rate", func(o *Options) { o.Rate = 0 }, "rate: must be in 1..2000"},
		{"unbounded rate", func(o *Options) { o.Rate = 1_000_000 }, "rate: must be in 1..2000"},
		{"own cap", func(o *Options) { o.Rate = 100; o.MaxRate = 50 }, "rate: must be in 1..50"},
		{"no duration", func(o *Options) { o.Duration = 0 }, "duration:"},
		{"too long", func(o *Options) { o.Duration = time.Hour }, "duration: must be in (0, 30m0s]"},
		{"path", func(o *Options) { o.Paths = []string{"health"} }, `paths: "health" must start with /`},
		{"surge over the cap", func(o *Options) { o.Rate = 1000; o.Surge = &Surge{Factor: 3} }, "surge.factor: rate 1000 × 3 = 3000 requests/s is over the limit 2000"},
		{"surge factor", func(o *Options) { o.Surge = &Surge{Factor: 0} }, "surge.factor: must be in (0, 100]"},
		{"surge after the end", func(o *Options) { o.Surge = &Surge{Factor: 2, After: time.Second} }, "surge.after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Run(context.Background(), Options{Target: "http://10.0.0.1", Rate: 1, Duration: time.Second}, nil); err == nil {
		t.Fatal("Run accepted a non-loopback target")
	}
}

// The surge pacer asks for Rate before the step, Rate×Factor during it, Rate after it.
func TestSurgePacer(t *testing.T) {
	p := pacer{Options{Rate: 10, Duration: 10 * time.Second, Surge: &Surge{Factor: 3, After: 2 * time.Second, For: 4 * time.Second}}}
	for _, tc := range []struct {
		at   time.Duration
		rate float64
		hits float64
	}{
		{0, 10, 0},
		{time.Second, 10, 10},
		{2 * time.Second, 30, 20},
		{4 * time.Second, 30, 80},
		{6 * time.Second, 10, 140},
		{10 * time.Second, 10, 180},
	} {
		if got := p.Rate(tc.at); got != tc.rate {
			t.Errorf("Rate(%s) = %g, want %g", tc.at, got, tc.rate)
		}
		if got := p.hits(tc.at); math.Abs(got-tc.hits) > 1e-9 {
			t.Errorf("hits(%s) = %g, want %g", tc.at, got, tc.hits)
		}
	}
	// Behind schedule: no wait. Ahead: wait for the next hit, re-paced at the step.
	if w, stop := p.Pace(time.Second, 5); w != 0 || stop {
		t.Errorf("Pace behind = %s %v", w, stop)
	}
	if w, _ := p.Pace(time.Second, 10); w != 100*time.Millisecond {
		t.Errorf("Pace on time = %s, want 100ms", w)
	}
	if w, _ := p.Pace(1950*time.Millisecond, 20); w != 50*time.Millisecond {
		t.Errorf("Pace before the step = %s, want 50ms (up to the step)", w)
	}
}

func hits(t *testing.T, addr string) int {
	t.Helper()
	code, body, err := dockertest.Get(addr, "/hits")
	if err != nil || code != 200 {
		t.Fatalf("GET /hits: %d %v", code, err)
	}
	n, err := strconv.Atoi(body)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// requestsTotal reads http_requests_total{code,route} from the test server's /metrics.
func requestsTotal(t *testing.T, addr, route, code string) int {
	t.Helper()
	_, body, err := dockertest.Get(addr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	prefix := `http_requests_total{code="` + code + `",route="` + route + `"} `
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

// The report's counts are what the server counted.
func TestRunCountsWhatTheServerServed(t *testing.T) {
	id := dockertest.Run(t, dockertest.Spec{Name: "load-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10), Publish: true})
	addr := dockertest.HostPort(t, id)
	var snaps []Snapshot
	rep, err := Run(context.Background(), Options{Target: "http://" + addr, Rate: 50, Duration: 2 * time.Second,
		Paths: []string{"/", "/status?code=503"}}, func(s Snapshot) { snaps = append(snaps, s) })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests < 90 || rep.Requests > 101 {
		t.Fatalf("50 req/s × 2 s sent %d requests", rep.Requests)
	}
	served, failed := hits(t, addr), requestsTotal(t, addr, "/status", "503")
	if served+failed != rep.Requests || rep.Succeeded != served || rep.Failed != failed {
		t.Fatalf("report %d requests, %d served, %d failed; the server counted %d served, %d answered 503",
			rep.Requests, rep.Succeeded, rep.Failed, served, failed)
	}
	if rep.Errors["503"] != failed || len(rep.Errors) != 1 {
		t.Errorf("errors %v, want 503: %d", rep.Errors, failed)
	}
	if a := rep.Availability(); math.Abs(a-float64(served)/float64(rep.Requests)) > 1e-9 || a < 0.4 || a > 0.6 {
		t.Errorf("availability %g with half the paths failing", a)
	}
	sum := 0
	for _, s := range rep.Seconds {
		sum += s.Requests
	}
	if len(rep.Seconds) != 2 || sum != rep.Requests {
		t.Errorf("timeline %+v does not add up to %d", rep.Seconds, rep.Requests)
	}
	if rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Errorf("latency %+v", rep.Latency)
	}
	if len(snaps) == 0 || snaps[len(snaps)-1].Requests == 0 {
		t.Errorf("progress snapshots %+v", snaps)
	}
}

// A surge raises the per-second rate during the step only.
func TestSurgeStepsTheRate(t *testing.T) {
	id := dockertest.Run(t, dockertest.Spec{Name: "surge-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10), Publish: true})
	addr := dockertest.HostPort(t, id)
	rep, err := Run(context.Background(), Options{Target: "http://" + addr, Rate: 20, Duration: 3 * time.Second,
		Surge: &Surge{Factor: 4, After: time.Second, For: time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hits(t, addr); got != rep.Succeeded || rep.Failed != 0 {
		t.Fatalf("server counted %d, report %d served %d failed", got, rep.Succeeded, rep.Failed)
	}
	if len(rep.Seconds) != 3 {
		t.Fatalf("timeline %+v", rep.Seconds)
	}
	before, during, after := rep.Seconds[0].Requests, rep.Seconds[1].Requests, rep.Seconds[2].Requests
	if during < 2*before || during < 2*after {
		t.Fatalf("per-second requests %d, %d, %d: want the middle second about 4× the others", before, during, after)
	}
	if rep.Requests < 100 || rep.Requests > 121 {
		t.Errorf("20 + 80 + 20 requests expected, sent %d", rep.Requests)
	}
}

// Cancelling stops the load early and still reports what was sent.
func TestRunStopsWhenCancelled(t *testing.T) {
	id := dockertest.Run(t, dockertest.Spec{Name: "loadcancel-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10), Publish: true})
	addr := dockertest.HostPort(t, id)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	rep, err := Run(ctx, Options{Target: "http://" + addr, Rate: 20, Duration: time.Minute}, nil)
	if err == nil {
		t.Fatal("a cancelled run returned no error")
	}
	if rep.Requests == 0 || rep.Requests > 40 || hits(t, addr) != rep.Succeeded {
		t.Fatalf("cancelled after 0.5 s of a 1 min run: %d requests, server %d", rep.Requests, hits(t, addr))
	}
	if len(rep.Seconds) > 2 {
		t.Errorf("timeline of a cancelled run has %d seconds", len(rep.Seconds))
	}
}
