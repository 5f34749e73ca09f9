package scenario

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/chaos/load"
	"github.com/ares-sre/ares/engine"
)

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func up(name string) ReplicaState {
	return ReplicaState{Name: name, State: "running", Health: "healthy"}
}
func down(name string) ReplicaState {
	return ReplicaState{Name: name, State: "exited", Health: "unhealthy"}
}
func starting(name string) ReplicaState {
	return ReplicaState{Name: name, State: "running", Health: "starting"}
}

func sample(ms int, product ...ReplicaState) Sample {
	return Sample{At: at(ms), Services: map[string][]ReplicaState{"product": product, "gateway": {up("gw-1")}}}
}

func act(ms int, action, service, replica, verdict string) Action {
	a := Action{At: at(ms)}
	a.Decision = engine.Decision{Action: action, Service: service, Replica: replica, Reason: "exited with code 137"}
	a.Verdict = verdict
	if verdict == engine.VerdictAdmit {
		a.Outcome = &engine.Outcome{Result: engine.ResultOK}
	}
	return a
}

// killRecord: product-1 killed at 1 s, restarted by ARES at 1.2 s, starting until 2.5 s,
// healthy from 2.75 s; 1000 requests of which 3 failed; p99 high only before the recovery.
func killRecord() *Record {
	return &Record{
		Start: at(0), End: at(10000),
		Injections: []Injected{{Name: "kill", Fault: chaos.Fault{Kind: chaos.Kill, Service: "product", Duration: 30 * time.Second}, At: at(1000)}},
		Samples: []Sample{
			sample(0, up("product-1"), up("product-2")),
			sample(1010, up("product-1"), up("product-2")), // before Docker saw the kill
			sample(1250, down("product-1"), up("product-2")),
			sample(1500, starting("product-1"), up("product-2")),
			sample(2500, starting("product-1"), up("product-2")),
			sample(2750, up("product-1"), up("product-2")),
			sample(9000, up("product-1"), up("product-2")),
		},
		Actions: []Action{
			act(1200, "restart", "product", "product-1", engine.VerdictAdmit),
			act(1700, "restart", "product", "product-1", engine.VerdictSuppress),
		},
		Load: &load.Report{Requests: 1000, Succeeded: 997, Failed: 3, Start: at(0),
			Latency: load.Latency{P50: 2 * time.Millisecond, P99: 800 * time.Millisecond},
			Seconds: []load.Second{
				{Second: 1, Requests: 100, P99: 900 * time.Millisecond},
				{Second: 2, Requests: 100, P99: 700 * time.Millisecond},
				{Second: 3, Requests: 100, P99: 20 * time.Millisecond},
				{Second: 4, Requests: 100, P99: 25 * time.Millisecond},
			}},
	}
}

func TestEvaluateAgainstRecord(t *testing.T) {
	for _, tc := range []struct {
		expect string
		pass   bool
		detail string
	}{
		{"service product healthy within 5s", true, "healthy again 1.75s after the injection"},
		{"service product healthy within 1s", false, "later than 1s"},
		{"service gateway healthy within 1s", true, "never seen unhealthy"},
		{"service product recovered", true, "healthy again 1.75s after the injection (down or unhealthy from 250ms to 1.5s)"},
		{"service product recovered within 1s", false, "later than 1s"},
		{"service gateway recovered", false, "not seen down or unhealthy after the injection"},
		{"action restart on product", true, "admit product/product-1 (ok) 200ms after the injection"},
		{"action restart on product within 100ms", false, "later than 100ms"},
		{"action recycle on product", false, "no recycle on product (ARES governed: admit restart, suppress restart)"},
		{"decision restart on product", true, "admit"},
		{"no action on gateway", true, "no action on gateway"},
		{"no action on product", false, "ARES did restart on product/product-1"},
		{"no action recycle on product", true, ""},
		{"at most 1 restart on product", true, "1 restart on product carried out, 1 held back"},
		{"at most 0 restarts on product", false, "1 restart on product carried out"},
		{"escalation on product", false, "no escalation on product"},
		{"availability >= 99%", true, "99.70% (997 of 1000 requests served)"},
		{"availability >= 99.9%", false, "99.70%"},
		{"p99 <= 300ms after recovery of product", true, "worst per-second p99 25ms over 2 s after product recovered"},
		{"p99 <= 300ms after recovery", true, ""},
		{"p99 <= 300ms", false, "p99 800ms over the whole load"},
		{"replicas of product == 2 within 1s", true, "2 running replicas"},
		{"replicas of product == 2 at end", true, "2 running replicas at the end"},
		{"replicas of product >= 3 within 5s", false, "2 running replicas at the end (max seen 2)"},
	} {
		t.Run(tc.expect, func(t *testing.T) {
			e, err := ParseExpectation(tc.expect)
			if err != nil {
				t.Fatal(err)
			}
			res := e.Evaluate(killRecord())
			if res.Pass != tc.pass || !strings.Contains(res.Detail, tc.detail) {
				t.Errorf("pass %v %q, want %v containing %q", res.Pass, res.Detail, tc.pass, tc.detail)
			}
		})
	}
}

func TestEvaluateFailures(t *testing.T) {
	// Never healthy again: the replica stays down to the end.
	r := killRecord()
	r.Samples = r.Samples[:3]
	e, _ := ParseExpectation("service product healthy within 30s")
	if res := e.Evaluate(r); res.Pass || !strings.Contains(res.Detail, "still unhealthy at the end: product-1 exited unhealthy") {
		t.Errorf("%+v", res)
	}
	// ARES unreachable: every ARES expectation fails and says why.
	r = killRecord()
	r.AresErr = "connection refused"
	for _, s := range []string{"action restart on product", "no action on gateway", "at most 3 restarts on product", "escalation on product"} {
		e, _ := ParseExpectation(s)
		if res := e.Evaluate(r); res.Pass || !strings.Contains(res.Detail, "connection refused") {
			t.Errorf("%s: %+v", s, res)
		}
	}
	// Decided but only dry-run: not an action.
	r = killRecord()
	r.Actions = []Action{act(1200, "restart", "product", "product-1", engine.VerdictDryRun)}
	e, _ = ParseExpectation("action restart on product")
	if res := e.Evaluate(r); res.Pass || !strings.Contains(res.Detail, "decided but never carried out (verdicts: dry_run)") {
		t.Errorf("%+v", res)
	}
	e, _ = ParseExpectation("decision restart on product")
	if res := e.Evaluate(r); !res.Pass {
		t.Errorf("%+v", res)
	}
	// An admitted action that failed is not an action taken.
	r = killRecord()
	r.Actions[0].Outcome = &engine.Outcome{Result: engine.ResultError, Error: "no such container"}
	e, _ = ParseExpectation("action restart on product")
	if res := e.Evaluate(r); res.Pass {
		t.Errorf("failed restart counted: %+v", res)
	}
	// No load: availability cannot be judged.
	r = killRecord()
	r.Load = nil
	e, _ = ParseExpectation("availability >= 99%")
	if res := e.Evaluate(r); res.Pass || !strings.Contains(res.Detail, "needs a load step") {
		t.Errorf("%+v", res)
	}
	// An escalation.
	r = killRecord()
	esc := act(5000, "notify", "product", "", engine.VerdictAdmit)
	esc.Escalation, esc.Reason = true, "escalation: crash-loop back-off"
	r.Actions = append(r.Actions, esc)
	e, _ = ParseExpectation("escalation on product")
	if res := e.Evaluate(r); !res.Pass || !strings.Contains(res.Detail, "4s after the injection") {
		t.Errorf("%+v", res)
	}
}

func TestTimesToDetectAndRecover(t *testing.T) {
	r := killRecord()
	if d, ok := r.TimeToDetect("product"); !ok || d != 200*time.Millisecond {
		t.Errorf("time to detect %s %v", d, ok)
	}
	if d, ok := r.TimeToRecover("product"); !ok || d != 1750*time.Millisecond {
		t.Errorf("time to recover %s %v", d, ok)
	}
	r.Actions = nil
	if _, ok := r.TimeToDetect("product"); ok {
		t.Error("detected without a decision")
	}
}

func TestAtMostActions(t *testing.T) {
	r := killRecord()
	esc := act(5000, "notify", "product", "", engine.VerdictAdmit)
	esc.Escalation = true
	r.Actions = append(r.Actions, act(3000, "recycle", "product", "product-1", engine.VerdictAdmit), esc)
	for _, tc := range []struct {
		expect string
		pass   bool
		detail string
	}{
		{"at most 2 actions on product", true, "2 actions on product carried out, 1 held back"}, // the escalation does not count
		{"at most 1 actions on product", false, "2 actions"},
		{"at most 1 recycle on product", true, "1 recycle on product carried out, 0 held back"},
	} {
		e, err := ParseExpectation(tc.expect)
		if err != nil {
			t.Fatal(err)
		}
		if res := e.Evaluate(r); res.Pass != tc.pass || !strings.Contains(res.Detail, tc.detail) {
			t.Errorf("%s: %+v", tc.expect, res)
		}
	}
}

func TestSumRequests(t *testing.T) {
	text := `# HELP shop_http_requests_total HTTP requests served, by route pattern and status code.
# TYPE shop_http_requests_total counter
shop_http_requests_total{code="200",route="GET /api/products/{id}"} 120
shop_http_requests_total{code="500",route="GET /api/products"} 3
shop_http_requests_total{code="200",route="GET /healthz"} 999
shop_http_requests_total{code="200",route="GET /metrics"} 7
shop_http_request_duration_seconds_count{route="GET /api/products"} 123
`
	n, ok := sumRequests(strings.NewReader(text))
	if !ok || n != 123 {
		t.Errorf("sum %v %v, want 123 (health checks and scrapes are not traffic)", n, ok)
	}
	if _, ok := sumRequests(strings.NewReader("go_goroutines 5\n")); ok {
		t.Error("found requests in a document without a request counter")
	}
}

func TestNewReplicasServeTraffic(t *testing.T) {
	n := func(v float64) *float64 { return &v }
	scaled := func(name string, req *float64) ReplicaState {
		r := up(name)
		r.Scaled, r.Requests = true, req
		return r
	}
	e, err := ParseExpectation("new replicas of product serve traffic")
	if err != nil || !e.NeedsTraffic() || !e.Live() {
		t.Fatalf("%+v %v", e, err)
	}
	r := killRecord()
	if res := e.Evaluate(r); res.Pass || !strings.Contains(res.Detail, "no replica of product added by ARES") {
		t.Errorf("%+v", res)
	}
	r.Samples = append(r.Samples,
		sample(9100, up("product-1"), scaled("product-ares-1", nil)), // starting: no counter yet
		sample(9200, up("product-1"), scaled("product-ares-1", n(2))),
		sample(9300, up("product-1"), scaled("product-ares-1", n(2))))
	if res := e.Evaluate(r); res.Pass || !strings.Contains(res.Detail, "none seen serving requests") {
		t.Errorf("idle new replica: %+v", res)
	}
	r.Samples = append(r.Samples, sample(9400, up("product-1"), scaled("product-ares-1", n(40))))
	if res := e.Evaluate(r); !res.Pass || res.Detail != "product-ares-1 served 38 requests while observed" {
		t.Errorf("%+v", res)
	}
}

func TestMemoryAtEnd(t *testing.T) {
	e, err := ParseExpectation("memory of product <= 50% at end")
	if err != nil || e.Kind != ExpectMemory || e.Number != 50 {
		t.Fatalf("%+v %v", e, err)
	}
	r := killRecord()
	if res := e.Evaluate(r); res.Pass || !strings.Contains(res.Detail, "ARES reported no memory of product") {
		t.Errorf("%+v", res)
	}
	r.Memory = []MemSample{{At: at(1000), Percent: map[string]float64{"product": 20}},
		{At: at(5000), Percent: map[string]float64{"product": 91}},
		{At: at(9000), Percent: map[string]float64{"product": 14}}}
	if res := e.Evaluate(r); !res.Pass || res.Detail != "14.0% of the limit at the end (peak 91.0%)" {
		t.Errorf("%+v", res)
	}
	r.Memory = r.Memory[:2]
	if res := e.Evaluate(r); res.Pass {
		t.Errorf("still at 91%%: %+v", res)
	}
	if _, err := ParseExpectation("memory of product <= 150% at end"); err == nil {
		t.Error("150% accepted")
	}
}

// The observer scrapes a replica where the host reaches it: its port published on loopback
// (or a wildcard), not its bridge address, which it uses only when nothing is published.
func TestMetricsAddrPrefersThePublishedPort(t *testing.T) {
	bridge := &network.EndpointSettings{IPAddress: netip.MustParseAddr("172.18.0.5")}
	nets := &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{"shop": bridge}}
	for _, tc := range []struct {
		name   string
		c      container.Summary
		expect string
	}{
		{"published on loopback", container.Summary{Labels: map[string]string{"ares.metrics.port": "9100"}, NetworkSettings: nets,
			Ports: []container.PortSummary{{PrivatePort: 8080, PublicPort: 40000, Type: "tcp"}, {IP: netip.MustParseAddr("127.0.0.1"), PrivatePort: 9100, PublicPort: 41000, Type: "tcp"}}},
			"127.0.0.1:41000"},
		{"published on every address", container.Summary{NetworkSettings: nets,
			Ports: []container.PortSummary{{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 8080, PublicPort: 42000, Type: "tcp"}}},
			"127.0.0.1:42000"},
		{"not published", container.Summary{NetworkSettings: nets, Ports: []container.PortSummary{{PrivatePort: 8080, Type: "tcp"}}},
			"172.18.0.5:8080"},
		{"nothing at all", container.Summary{}, ""},
	} {
		if got := metricsAddr(tc.c); got != tc.expect {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.expect)
		}
	}
}
