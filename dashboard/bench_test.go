package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

const (
	benchServices = 50
	benchDay      = 17280 // one day of ticks at 5 s
)

// benchFacts returns variant v of a 50-service facts document (2 replicas each, request
// metrics and an anomaly verdict).
func benchFacts(n uint64, at time.Time, v int) *engine.Facts {
	f := engine.NewFacts(n, at)
	for i := 0; i < benchServices; i++ {
		s := f.Service(fmt.Sprintf("svc%02d", i))
		s.DesiredReplicas = 2
		for k := 1; k <= 2; k++ {
			r := replica(fmt.Sprintf("svc%02d-%d", i, k))
			r.CPUPercent = float64((i*7+v*13+k)%100) / 1.3
			r.MemBytes = int64(50+(i+v)%40) << 20
			s.Replicas = append(s.Replicas, r)
		}
		s.Metrics = &engine.Metrics{RPS: 100, ErrorRate: float64(v%5) / 100, LatencyP50Ms: 10, LatencyP99Ms: float64(50 + (v*i)%70)}
		s.Anomaly = &engine.Anomaly{Score: float64((v+i)%10) / 10, Risk: "low"}
	}
	f.Sensors["docker"] = engine.SensorStatus{OK: true}
	f.Sensors["metrics"] = engine.SensorStatus{OK: true}
	f.Summarize()
	return f
}

var (
	benchOnce sync.Once
	benchFx   *fixture
	benchHeap float64
)

// dayServer is a dashboard that received a day of ticks for 50 services.
func dayServer(b *testing.B) *fixture {
	benchOnce.Do(func() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fx := newFixture(b, Options{Token: testToken, History: benchDay})
		var variants [16]*engine.Facts
		for v := range variants {
			variants[v] = benchFacts(uint64(v), t0, v)
		}
		start := t0.Add(-benchDay * 5 * time.Second)
		for i := 0; i < benchDay; i++ {
			at := start.Add(time.Duration(i) * 5 * time.Second)
			rec := engine.TickRecord{Tick: uint64(i + 1), At: at, Trigger: "interval", PolicyRev: "abc123def456",
				Facts: variants[i%len(variants)], Decisions: []engine.Decision{}, Actions: []engine.Action{}}
			if i%500 == 0 { // an incident now and then
				rec.Actions = []engine.Action{{Decision: engine.Decision{Action: "restart", Service: "svc07", Replica: "svc07-1", Reason: "exited"},
					Verdict: engine.VerdictAdmit, Outcome: &engine.Outcome{Result: "ok", Duration: time.Second}}}
				rec.Decisions = []engine.Decision{rec.Actions[0].Decision}
			}
			_ = fx.srv.Record(context.Background(), rec)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		benchHeap = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		benchFx = fx
	})
	return benchFx
}

func benchPage(b *testing.B, path string) {
	fx := dayServer(b)
	req := httptest.NewRequest("GET", path, nil)
	size := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		fx.srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("GET %s: %d", path, w.Code)
		}
		size = w.Body.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/request")
	b.ReportMetric(float64(size)/1024, "KiB/page")
	b.ReportMetric(benchHeap, "MiB-heap-for-a-day")
}

// BenchmarkOverviewPage renders the overview with 50 services and a day of history.
func BenchmarkOverviewPage(b *testing.B) { benchPage(b, "/") }

// BenchmarkServicePage renders a service page (graphs over the whole day, downsampled to 480
// points) with 50 services and a day of history.
func BenchmarkServicePage(b *testing.B) { benchPage(b, "/services/svc07") }

// BenchmarkRecord is the engine's cost of the dashboard as a journal, per tick of 50 services.
func BenchmarkRecord(b *testing.B) {
	fx := dayServer(b)
	f := benchFacts(1, t0, 3)
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(5 * time.Second)
		_ = fx.srv.Record(context.Background(), engine.TickRecord{Tick: 1, At: at, Facts: f, Decisions: []engine.Decision{}, Actions: []engine.Action{}})
	}
}

// BenchmarkSSEFanout50 records a tick and waits until 50 connected live-update clients (real
// HTTP connections) have each received its "tick" event: the time per fan-out.
func BenchmarkSSEFanout50(b *testing.B) {
	const clients = 50
	fx := newFixture(b, Options{})
	ts := httptest.NewServer(fx.srv)
	defer ts.Close()
	got := make(chan struct{}, clients*4)
	var wg sync.WaitGroup
	var resps []*http.Response
	for i := 0; i < clients; i++ {
		resp, err := http.Get(ts.URL + "/api/v1/events")
		if err != nil {
			b.Fatal(err)
		}
		resps = append(resps, resp)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "event: tick") {
					got <- struct{}{}
				}
			}
		}()
	}
	for fx.srv.hub.count() < clients {
		time.Sleep(time.Millisecond)
	}
	f := benchFacts(1, t0, 1)
	at := t0
	b.ResetTimer()
	for b.Loop() {
		at = at.Add(5 * time.Second)
		_ = fx.srv.Record(context.Background(), engine.TickRecord{Tick: 1, At: at, Facts: f, Decisions: []engine.Decision{}, Actions: []engine.Action{}})
		for k := 0; k < clients; k++ {
			<-got
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/fanout")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/clients/1000, "µs/delivery")
	fx.srv.hub.mu.Lock()
	dropped := 0
	for c := range fx.srv.hub.clients {
		dropped += c.dropped
	}
	fx.srv.hub.mu.Unlock()
	b.ReportMetric(float64(dropped), "dropped")
	for _, r := range resps {
		r.Body.Close()
	}
	ts.CloseClientConnections()
	wg.Wait()
}
