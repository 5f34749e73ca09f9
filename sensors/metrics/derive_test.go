package metrics

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func inf() float64 { return math.Inf(1) }

func TestQuantile(t *testing.T) {
	// Buckets of the test server: 100 observations ≤ 1 ms, 100 in (25, 50] ms, 10 in (50, 100] ms.
	bs := []bucket{{0.001, 100}, {0.025, 100}, {0.05, 200}, {0.1, 210}, {inf(), 210}}
	for _, tc := range []struct {
		name string
		q    float64
		bs   []bucket
		want float64
	}{
		{"first bucket interpolates from 0", 0.25, bs, 0.001 * 52.5 / 100},
		{"inside a later bucket", 0.5, bs, 0.025 + 0.025*(105-100)/100.0},
		{"p99", 0.99, bs, 0.05 + 0.05*(207.9-200)/10},
		{"rank in +Inf bucket gives the highest finite bound", 0.99, []bucket{{0.1, 10}, {inf(), 20}}, 0.1},
		{"q 0", 0, bs, 0},
		{"q 1", 1, bs, 0.1},
		{"non-monotonic counts treated as the previous", 0.25, []bucket{{1, 10}, {2, 5}, {3, 20}, {inf(), 20}}, 0.5},
		{"negative first bound", 0.1, []bucket{{-1, 5}, {1, 10}, {inf(), 10}}, -1},
		{"no observations", 0.5, []bucket{{1, 0}, {inf(), 0}}, math.NaN()},
		{"no +Inf bucket", 0.5, []bucket{{1, 5}, {2, 10}}, math.NaN()},
		{"empty", 0.5, nil, math.NaN()},
		{"q below 0", -0.1, bs, math.Inf(-1)},
		{"q above 1", 1.1, bs, math.Inf(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := quantile(tc.q, tc.bs)
			if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-12) {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// exposition renders a test server's /metrics: requests by code on one route, and its
// duration histogram with cumulative bucket counts.
func exposition(ok, errs float64, buckets []bucket, start float64) string {
	var b strings.Builder
	b.WriteString("# TYPE http_requests_total counter\n")
	if ok > 0 {
		b.WriteString(`http_requests_total{code="200",route="/status"} ` + ftoa(ok) + "\n")
	}
	if errs > 0 {
		b.WriteString(`http_requests_total{code="503",route="/status"} ` + ftoa(errs) + "\n")
	}
	b.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for _, bk := range buckets {
		le := "+Inf"
		if !math.IsInf(bk.upper, 1) {
			le = ftoa(bk.upper)
		}
		b.WriteString(`http_request_duration_seconds_bucket{route="/status",le="` + le + `"} ` + ftoa(bk.count) + "\n")
	}
	if len(buckets) > 0 {
		b.WriteString(`http_request_duration_seconds_count{route="/status"} ` + ftoa(buckets[len(buckets)-1].count) + "\n")
		b.WriteString(`http_request_duration_seconds_sum{route="/status"} 1` + "\n")
	}
	if start > 0 {
		b.WriteString("# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds " + ftoa(start) + "\n")
	}
	return b.String()
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func mustParse(t *testing.T, text string, at time.Time) *reading {
	t.Helper()
	rd, err := parse([]byte(text), newNames(DefaultRequests, DefaultCodeLabel, DefaultDuration))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	rd.at = at
	return &rd
}

func TestDeltaAndResets(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	t1 := t0.Add(10 * time.Second)
	h := func(fast, slow float64) []bucket {
		return []bucket{{0.01, fast}, {0.1, fast + slow}, {inf(), fast + slow}}
	}
	for _, tc := range []struct {
		name           string
		prev, cur      string
		rps, errorRate float64
		p99            float64 // seconds
	}{
		{"steady", exposition(100, 10, h(100, 10), 1000), exposition(190, 20, h(190, 20), 1000), 10, 0.1, 0.01 + 0.09*(99-90)/10},
		{"no traffic", exposition(100, 10, h(100, 10), 0), exposition(100, 10, h(100, 10), 0), 0, 0, 0},
		{"restart: counters went down, new values are the delta", exposition(1000, 50, h(1000, 50), 0), exposition(30, 0, h(30, 0), 0), 3, 0, 0.01 * 0.99},
		{"restart: start time changed though counters grew", exposition(10, 0, h(10, 0), 1000), exposition(40, 10, h(40, 10), 2000), 5, 0.2, 0.01 + 0.09*(49.5-40)/10},
		{"restart: only the histogram went down", exposition(10, 0, h(500, 0), 0), exposition(20, 0, h(20, 0), 0), 2, 0, 0.01 * 0.99},
		{"a new series counts in full", exposition(100, 0, h(100, 0), 0), exposition(150, 10, h(150, 10), 0), 6, 10.0 / 60, 0.01 + 0.09*(59.4-50)/10},
		{"a vanished series counts nothing", exposition(100, 10, h(100, 10), 0), exposition(150, 0, h(150, 10), 0), 5, 0, 0.01 * 0.99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := delta(mustParse(t, tc.prev, t0), mustParse(t, tc.cur, t1))
			m := w.metrics()
			if !near(m.RPS, tc.rps) || !near(m.ErrorRate, tc.errorRate) || !near(m.LatencyP99Ms, tc.p99*1000) {
				t.Errorf("rps %v error_rate %v p99 %v ms; want %v %v %v", m.RPS, m.ErrorRate, m.LatencyP99Ms, tc.rps, tc.errorRate, tc.p99*1000)
			}
			if m.RPS < 0 || m.ErrorRate < 0 || m.ErrorRate > 1 || m.LatencyP50Ms < 0 {
				t.Errorf("out of range: %+v", m)
			}
		})
	}
}

func TestServiceWindowSumsReplicas(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := delta(mustParse(t, exposition(0, 0, []bucket{{0.01, 0}, {0.1, 0}, {inf(), 0}}, 0), t0),
		mustParse(t, exposition(90, 10, []bucket{{0.01, 100}, {0.1, 100}, {inf(), 100}}, 0), t0.Add(10*time.Second)))
	b := delta(mustParse(t, exposition(0, 0, []bucket{{0.01, 0}, {0.1, 0}, {inf(), 0}}, 0), t0),
		mustParse(t, exposition(100, 0, []bucket{{0.01, 0}, {0.1, 100}, {inf(), 100}}, 0), t0.Add(5*time.Second)))
	var svc window
	svc.add(a)
	svc.add(b)
	m := svc.metrics()
	if !near(m.RPS, 10+20) || !near(m.ErrorRate, 10.0/200) || !near(m.LatencyP50Ms, 10) || !near(m.LatencyP99Ms, (0.01+0.09*(198-100)/100)*1000) {
		t.Errorf("service = %+v", m)
	}
}

func TestParseRejectsWrongTypes(t *testing.T) {
	n := newNames(DefaultRequests, DefaultCodeLabel, DefaultDuration)
	for _, text := range []string{
		"# TYPE http_requests_total gauge\nhttp_requests_total 3\n",
		"# TYPE http_request_duration_seconds summary\nhttp_request_duration_seconds{quantile=\"0.5\"} 3\n",
		"http_requests_total{code=\"200\" 3\n",
	} {
		if _, err := parse([]byte(text), n); err == nil {
			t.Errorf("parse(%q) = nil error", text)
		}
	}
	// Untyped counters (no TYPE line) and a histogram without its +Inf bucket are accepted.
	rd, err := parse([]byte("http_requests_total{code=\"500\"} 4\n"+
		"# TYPE http_request_duration_seconds histogram\nhttp_request_duration_seconds_bucket{le=\"1\"} 2\n"+
		"http_request_duration_seconds_count 4\nhttp_request_duration_seconds_sum 9\n"), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.counters) != 1 || len(rd.hists) != 1 {
		t.Fatalf("reading = %+v", rd)
	}
	for _, c := range rd.counters {
		if c.value != 4 || !c.err {
			t.Errorf("counter = %+v, want 4, err", c)
		}
	}
	for _, h := range rd.hists {
		if len(h.buckets) != 2 || !math.IsInf(h.buckets[1].upper, 1) || h.buckets[1].count != 4 {
			t.Errorf("buckets = %+v, want +Inf from the count", h.buckets)
		}
	}
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*max(1, math.Abs(want)) }

func TestParseSkipsOtherFamilies(t *testing.T) {
	n := newNames(DefaultRequests, DefaultCodeLabel, DefaultDuration)
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 7\n" +
		"go_broken{le=\"x\" oops\n" + // malformed, but not a family the sensor reads
		"# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n" +
		"http_requests_total{code=\"200\"} 5\n  http_requests_total{code=\"502\"} 1\n" +
		"# TYPE http_requests_total_extra counter\nhttp_requests_total_extra 9\n" +
		"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1.7e9"
	rd, err := parse([]byte(text), n)
	if err != nil {
		t.Fatal(err)
	}
	var total, errs float64
	for _, c := range rd.counters {
		total += c.value
		if c.err {
			errs += c.value
		}
	}
	if total != 6 || errs != 1 || rd.start != 1.7e9 {
		t.Errorf("requests %v, errors %v, start %v; want 6, 1, 1.7e9", total, errs, rd.start)
	}
	// Without the filter the malformed line would fail the whole exposition.
	if _, err := parse([]byte("http_requests_total{code=\"200\" 5\n"), n); err == nil {
		t.Error("a malformed line of a wanted family parsed")
	}
}
