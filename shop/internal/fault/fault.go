// Package fault injects failures into a running shop service for chaos experiments: leak
// memory, burn CPU, add latency, fail a share of requests with 500, crash. It is driven over
// the service's admin port, which the gateway never routes; every injection is logged and
// exported as metrics (shop_fault_*).
package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Bounds of what can be injected.
const (
	MaxLeakMBPerSecond = 1024
	MaxLeakBytes       = 8 << 30 // the leak stops growing here even if no limit kills it
	MaxCores           = 64
	MaxLatency         = time.Minute
)

// State is the injected faults, as GET /fault reports them.
type State struct {
	LeakMBPerSecond int   `json:"leak_mb_per_s"`
	LeakedBytes     int64 `json:"leaked_bytes"`
	BurnCores       int   `json:"burn_cores"`
	LatencyMS       int   `json:"latency_ms"`
	FailPercent     int   `json:"fail_percent"`
}

// Injector holds the faults of one process. The zero value is not usable; call New.
type Injector struct {
	log  *slog.Logger
	exit func(code int)

	mu       sync.Mutex
	state    State
	leaked   [][]byte
	stopLeak context.CancelFunc
	stopBurn context.CancelFunc
	wg       sync.WaitGroup

	injections  *prometheus.CounterVec
	failed      prometheus.Counter
	leakRate    prometheus.Gauge
	leakedBytes prometheus.Gauge
	cores       prometheus.Gauge
	latency     prometheus.Gauge
	errRatio    prometheus.Gauge
}

// New returns an Injector with no fault active. exit ends the process on a crash injection
// (os.Exit in production).
func New(log *slog.Logger, reg prometheus.Registerer, exit func(code int)) *Injector {
	f := promauto.With(reg)
	return &Injector{
		log:  log.With("component", "fault"),
		exit: exit,
		injections: f.NewCounterVec(prometheus.CounterOpts{Name: "shop_fault_injections_total",
			Help: "Fault injections requested on the admin port, by fault."}, []string{"fault"}),
		failed: f.NewCounter(prometheus.CounterOpts{Name: "shop_fault_failed_requests_total",
			Help: "Requests answered 500 by the fail fault."}),
		leakRate: f.NewGauge(prometheus.GaugeOpts{Name: "shop_fault_leak_rate_bytes_per_second",
			Help: "Injected memory leak rate."}),
		leakedBytes: f.NewGauge(prometheus.GaugeOpts{Name: "shop_fault_leaked_bytes",
			Help: "Memory held by the injected leak."}),
		cores: f.NewGauge(prometheus.GaugeOpts{Name: "shop_fault_burn_cores",
			Help: "Cores the injected CPU burn keeps busy."}),
		latency: f.NewGauge(prometheus.GaugeOpts{Name: "shop_fault_latency_seconds",
			Help: "Latency added to every request."}),
		errRatio: f.NewGauge(prometheus.GaugeOpts{Name: "shop_fault_fail_ratio",
			Help: "Share of requests answered 500."}),
	}
}

// State returns the faults now active.
func (f *Injector) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// Leak starts (or changes, or with 0 stops) a leak of mbPerSecond MB/s.
func (f *Injector) Leak(mbPerSecond int) error {
	if mbPerSecond < 0 || mbPerSecond > MaxLeakMBPerSecond {
		return fmt.Errorf("fault: leak: mb_per_s must be in 0..%d (got %d)", MaxLeakMBPerSecond, mbPerSecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopLeak != nil {
		f.stopLeak()
		f.stopLeak = nil
	}
	f.state.LeakMBPerSecond = mbPerSecond
	f.leakRate.Set(float64(mbPerSecond) * 1e6)
	f.record("leak", "mb_per_s", mbPerSecond)
	if mbPerSecond == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stopLeak = cancel
	f.wg.Go(func() { f.leak(ctx, mbPerSecond) })
	return nil
}

func (f *Injector) leak(ctx context.Context, mbPerSecond int) {
	const tick = 100 * time.Millisecond
	chunk := mbPerSecond * 1e6 / 10
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		if f.state.LeakedBytes+int64(chunk) <= MaxLeakBytes {
			b := make([]byte, chunk)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1 // touch every page so the memory is resident, not just reserved
			}
			f.leaked = append(f.leaked, b)
			f.state.LeakedBytes += int64(chunk)
			f.leakedBytes.Set(float64(f.state.LeakedBytes))
		}
		f.mu.Unlock()
	}
}

// Burn keeps cores cores busy (0 stops).
func (f *Injector) Burn(cores int) error {
	if cores < 0 || cores > MaxCores {
		return fmt.Errorf("fault: burn: cores must be in 0..%d (got %d)", MaxCores, cores)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopBurn != nil {
		f.stopBurn()
		f.stopBurn = nil
	}
	f.state.BurnCores = cores
	f.cores.Set(float64(cores))
	f.record("burn", "cores", cores)
	if cores == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stopBurn = cancel
	for range cores {
		f.wg.Go(func() { burn(ctx) })
	}
	return nil
}

func burn(ctx context.Context) {
	x := 0
	for ctx.Err() == nil {
		for i := range 1 << 20 {
			x ^= i * 31
		}
	}
	_ = x
}

// Latency adds ms milliseconds to every request (0 removes it).
func (f *Injector) Latency(ms int) error {
	if ms < 0 || time.Duration(ms)*time.Millisecond > MaxLatency {
		return fmt.Errorf("fault: latency: ms must be in 0..%d (got %d)", MaxLatency.Milliseconds(), ms)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.LatencyMS = ms
	f.latency.Set(float64(ms) / 1000)
	f.record("latency", "ms", ms)
	return nil
}

// Fail answers percent % of requests with 500 (0 stops).
func (f *Injector) Fail(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("fault: fail: percent must be in 0..100 (got %d)", percent)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.FailPercent = percent
	f.errRatio.Set(float64(percent) / 100)
	f.record("fail", "percent", percent)
	return nil
}

// Crash ends the process with code (non-zero) after delay, so the answer can be sent.
func (f *Injector) Crash(code int, delay time.Duration) error {
	if code < 1 || code > 255 {
		return fmt.Errorf("fault: crash: code must be in 1..255 (got %d)", code)
	}
	f.record("crash", "code", code)
	time.AfterFunc(delay, func() { f.exit(code) })
	return nil
}

// Reset removes every fault and frees the leaked memory.
func (f *Injector) Reset() {
	f.clear()
	f.record("reset", "", 0)
}

func (f *Injector) clear() {
	f.mu.Lock()
	if f.stopLeak != nil {
		f.stopLeak()
		f.stopLeak = nil
	}
	if f.stopBurn != nil {
		f.stopBurn()
		f.stopBurn = nil
	}
	f.state = State{}
	f.leaked = nil
	for _, g := range []prometheus.Gauge{f.leakRate, f.leakedBytes, f.cores, f.latency, f.errRatio} {
		g.Set(0)
	}
	f.mu.Unlock()
}

// Close removes every fault and waits for the fault goroutines to end.
func (f *Injector) Close() {
	f.clear()
	f.wg.Wait()
}

func (f *Injector) record(fault, param string, v int) {
	f.injections.WithLabelValues(fault).Inc()
	if param == "" {
		f.log.Warn("fault injected", "fault", fault)
		return
	}
	f.log.Warn("fault injected", "fault", fault, param, v)
}

// Middleware applies the latency and fail faults to every request but /metrics.
func (f *Injector) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		st := f.State()
		if st.LatencyMS > 0 {
			select {
			case <-time.After(time.Duration(st.LatencyMS) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		if st.FailPercent > 0 && rand.IntN(100) < st.FailPercent {
			f.failed.Inc()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"injected failure","code":"fault_injected"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Handler serves the admin API:
//
//	GET  /fault                     the active faults (JSON)
//	POST /fault/leak?mb_per_s=N     leak N MB/s (0 stops)
//	POST /fault/burn?cores=N        burn N cores (0 stops)
//	POST /fault/latency?ms=N        add N ms to every request
//	POST /fault/fail?percent=N      answer N % of requests with 500
//	POST /fault/crash?code=N        exit with code N (default 2)
//	POST /fault/reset               remove every fault
func (f *Injector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fault", func(w http.ResponseWriter, _ *http.Request) { f.writeState(w, http.StatusOK) })
	param := func(name string, set func(int) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n, err := strconv.Atoi(r.URL.Query().Get(name))
			if err != nil {
				writeErr(w, fmt.Errorf("fault: %s must be an integer (got %q)", name, r.URL.Query().Get(name)))
				return
			}
			if err := set(n); err != nil {
				writeErr(w, err)
				return
			}
			f.writeState(w, http.StatusOK)
		}
	}
	mux.HandleFunc("POST /fault/leak", param("mb_per_s", f.Leak))
	mux.HandleFunc("POST /fault/burn", param("cores", f.Burn))
	mux.HandleFunc("POST /fault/latency", param("ms", f.Latency))
	mux.HandleFunc("POST /fault/fail", param("percent", f.Fail))
	mux.HandleFunc("POST /fault/crash", func(w http.ResponseWriter, r *http.Request) {
		code := 2
		if v := r.URL.Query().Get("code"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeErr(w, fmt.Errorf("fault: code must be an integer (got %q)", v))
				return
			}
			code = n
		}
		if err := f.Crash(code, 100*time.Millisecond); err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]int{"crashing_with": code})
	})
	mux.HandleFunc("POST /fault/reset", func(w http.ResponseWriter, _ *http.Request) {
		f.Reset()
		f.writeState(w, http.StatusOK)
	})
	return mux
}

func (f *Injector) writeState(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(f.State())
}

func writeErr(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "code": "invalid_fault"})
}
