// Package service is what every shop service shares: JSON logs, request ids, metrics, health
// endpoints, the admin port with fault injection, and graceful shutdown.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/fault"
)

// NewLogger returns a JSON logger at level, scoped to service.
func NewLogger(w io.Writer, level slog.Level, service string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("service", service)
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Metrics are the HTTP metrics of one service.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the request counter and duration histogram on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "shop_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code."}, []string{"route", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Name: "shop_http_request_duration_seconds",
			Help:    "HTTP request duration, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"}),
	}
}

// Options describe one service for Handler and Run.
type Options struct {
	Name     string
	Log      *slog.Logger
	Registry *prometheus.Registry
	Faults   *fault.Injector
	// Mux holds the service's routes; Handler adds /healthz, /readyz and /metrics.
	Mux *http.ServeMux
	// Ready reports whether the service's dependencies answer (nil: always ready).
	Ready func(ctx context.Context) error
}

// Handler returns the public handler: the routes plus health and metrics, behind request
// ids, access logs, metrics and the latency/fail faults.
func Handler(o Options) http.Handler {
	o.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": o.Name})
	})
	o.Mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if o.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := o.Ready(ctx); err != nil {
				o.Log.Warn("not ready", "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
				api.WriteJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: err.Error(), Code: "not_ready"})
				return
			}
		}
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready", "service": o.Name})
	})
	o.Mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	var h http.Handler = o.Mux
	if o.Faults != nil {
		h = o.Faults.Middleware(h)
	}
	return Instrument(o.Log, NewMetrics(o.Registry), o.Mux, h)
}

// Instrument gives every request an id (kept from X-Request-ID when the gateway set one),
// logs one line per request and counts it by the route pattern mux matches.
func Instrument(log *slog.Logger, m *Metrics, mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(api.HeaderRequestID)
		if id == "" || len(id) > 64 {
			id = NewID()
			r.Header.Set(api.HeaderRequestID, id)
		}
		w.Header().Set(api.HeaderRequestID, id)
		_, route := mux.Handler(r)
		if route == "" {
			route = "unmatched"
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(route).Observe(d.Seconds())
		level := slog.LevelInfo
		switch {
		case rec.status >= 500:
			level = slog.LevelError
		case route == "GET /healthz" || route == "GET /readyz" || route == "GET /metrics":
			level = slog.LevelDebug
		}
		log.Log(r.Context(), level, "request", "method", r.Method, "route", route, "path", r.URL.Path,
			"status", rec.status, "duration", d, "request_id", id)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// NewID returns a random 16-hex-digit id.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// HandlerFunc is a handler that returns its error: an *api.Error is written as is, anything
// else is logged and answered with a 500 that hides it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts fn to an http.HandlerFunc that writes its error with log.
func Handle(log *slog.Logger, fn HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Status >= 500 {
			log.Error("request failed", "route", r.Pattern, "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
		}
		api.WriteError(w, err)
	}
}

// Run serves the public handler on port and the admin API (faults) on adminPort until ctx is
// cancelled, then shuts both down gracefully within 10 s.
func Run(ctx context.Context, o Options, port, adminPort int) error {
	public := &http.Server{Addr: net.JoinHostPort("", strconv.Itoa(port)), Handler: Handler(o),
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}
	admin := &http.Server{Addr: net.JoinHostPort("", strconv.Itoa(adminPort)), Handler: o.Faults.Handler(),
		ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	for _, s := range []*http.Server{public, admin} {
		go func() {
			if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("service: listen %s: %w", s.Addr, err)
			}
		}()
	}
	o.Log.Info("serving", "addr", public.Addr, "admin_addr", admin.Addr)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	o.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = errors.Join(err, public.Shutdown(sctx), admin.Shutdown(sctx))
	o.Faults.Close()
	return err
}
