package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// observed wraps the test server's handlers with Prometheus metrics (requests by route and
// status code, a duration histogram) served on /metrics, and adds the endpoints sensor tests
// drive:
//
//	/status?code=N   answer with status N
//	/slow?ms=N       answer after N milliseconds
//	/log?level=L&msg=M  write one JSON log line {"time","level","msg"} to stdout
//	/lograw?msg=M    write one plain-text line to stdout
func observed(mux *http.ServeMux) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "Requests by route and status code.",
	}, []string{"route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "Request duration by route.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"route"})
	reg.MustRegister(requests, duration)

	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 100 || code > 599 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		fmt.Fprintln(w, code)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintln(w, "slow", ms)
	})
	var logMu sync.Mutex
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		line, _ := json.Marshal(map[string]string{"time": time.Now().UTC().Format(time.RFC3339Nano),
			"level": r.URL.Query().Get("level"), "msg": r.URL.Query().Get("msg")})
		logMu.Lock()
		fmt.Fprintf(os.Stdout, "%s\n", line)
		logMu.Unlock()
		fmt.Fprintln(w, "logged")
	})
	mux.HandleFunc("/lograw", func(w http.ResponseWriter, r *http.Request) {
		logMu.Lock()
		fmt.Fprintln(os.Stdout, r.URL.Query().Get("msg"))
		logMu.Unlock()
		fmt.Fprintln(w, "logged")
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		mux.ServeHTTP(rec, r)
		if r.URL.Path == "/metrics" {
			return
		}
		requests.WithLabelValues(r.URL.Path, strconv.Itoa(rec.code)).Inc()
		duration.WithLabelValues(r.URL.Path).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
