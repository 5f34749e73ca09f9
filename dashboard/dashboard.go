// Package dashboard is ARES's control center: server-rendered pages (overview, service detail,
// incidents, agent activity, policies) and the JSON API under /api/v1/ (docs/api.md), with live
// updates through Server-Sent Events.
//
// The dashboard reads: it receives every tick by being an engine.Journal (Server.Record) and
// keeps what it shows in memory: a short ring of whole tick records, compact per-service time
// series (float32 samples) for the graphs, an activity log, and incidents derived from the
// ticks. Its only writes go through small interfaces (Controller, Submitter) that the
// governor and the engine implement: pause, resume and manual actions, each journaled with
// who asked and why.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ares-sre/ares/engine"
)

// Defaults of Options.
const (
	DefaultListen  = "127.0.0.1:8080"
	DefaultHistory = 720 // one hour at the default 5 s interval
)

// Sizes of the in-memory logs. The graphs use the time series (Options.History samples per
// service); whole tick records are kept only for the last RecentTicks ticks.
const (
	RecentTicks  = 120
	maxEvents    = 2000
	maxActions   = 1000
	maxAudit     = 500
	maxIncidents = 500
)

// Options configure the dashboard. The zero value serves read-only pages on DefaultListen.
type Options struct {
	Listen string // default 127.0.0.1:8080
	// Token is the API token (ARES_API_TOKEN). Without it every mutating endpoint and control
	// answers 403. It is never logged; the audit log names its id, the first 8 hex digits of
	// its sha256.
	Token string
	// AuthRead requires the token for the read endpoints and pages too (dashboard.auth: read).
	AuthRead bool
	// TLSCert and TLSKey are PEM files; when both are set the dashboard serves HTTPS only.
	TLSCert, TLSKey string
	// History is how many ticks of per-service time series the graphs keep; default 720.
	History int
	// PolicyDir is shown on the policies page.
	PolicyDir string
	// AuthFailures and AuthFailEvery limit failed authentication per client IP: after
	// AuthFailures failures in a row, one more every AuthFailEvery; meanwhile 429 with
	// Retry-After. Defaults DefaultAuthFailures and DefaultAuthFailEvery.
	AuthFailures  int
	AuthFailEvery time.Duration
}

// Controller pauses and resumes automation (implemented by *governor.Governor).
type Controller interface {
	// Pause stops actions on service ("" for all) until until (zero: until resumed).
	Pause(service string, until time.Time)
	Resume(service string)
	// Paused returns the pauses in force at now: service ("" for all) → until (zero: indefinite).
	Paused(now time.Time) map[string]time.Time
}

// Policies is the live policy runtime (implemented by *policy.Watcher). When the evaluator
// Current returns also has Files() []string, Partitioned() bool and PartitionReason() string
// (as *policy.Set has), the policies page shows them.
type Policies interface {
	Current() engine.Evaluator
	// LastError is the error of the last refused reload and when it happened, nil once a later
	// reload succeeded.
	LastError() (error, time.Time)
}

// Submitter queues a person's decision for the next tick, through the governor
// (implemented by *engine.Engine).
type Submitter interface {
	Submit(d engine.Decision) error
}

// SubmitterFunc adapts a function to Submitter. It breaks the cycle between the engine, which
// needs the dashboard as a journal, and the dashboard, which submits to the engine:
//
//	var eng *engine.Engine
//	dash, err := dashboard.New(opt, dashboard.Deps{Submitter: dashboard.SubmitterFunc(
//		func(d engine.Decision) error { return eng.Submit(d) })}, log)
//	eng, err = engine.New(engine.Options{Journal: journal.Multi{printer, dash}, ...})
type SubmitterFunc func(d engine.Decision) error

// Submit calls f.
func (f SubmitterFunc) Submit(d engine.Decision) error { return f(d) }

var _ Submitter = SubmitterFunc(nil)

// IncidentSource lists incidents: those open, and those opened or resolved since since,
// newest first; service "" means every service. The dashboard derives its own from the ticks
// it receives (Server.Incidents); a journal store may provide durable ones.
type IncidentSource interface {
	Incidents(ctx context.Context, since time.Time, service string) ([]Incident, error)
}

// Deps are what the dashboard reads from and acts through. Any may be nil: the pages then say
// what is not available, and the matching controls answer 503.
type Deps struct {
	Controller Controller
	Approver   Approver // nil: no approvals listed; deciding one answers 503
	Policies   Policies
	Submitter  Submitter
	Incidents  IncidentSource        // nil: the in-memory incidents derived from the ticks
	Audit      AuditStore            // nil: the audit trail is kept in memory only
	Registerer prometheus.Registerer // nil: the dashboard's metrics are not registered
	Leader     LeaderSource          // nil: ha is off; no leader shown
}

// LeaderSource tells which ARES instance leads (ha.enabled); *leader.Elector implements it.
type LeaderSource interface {
	Instance() string
	Leader() string
	Leading() bool
}

// Server is the dashboard. It implements engine.Journal and http.Handler.
type Server struct {
	opt     Options
	deps    Deps
	log     *slog.Logger
	tokenID string // first 8 hex digits of sha256(token); "" without a token
	session string // cookie value proving the token was entered: HMAC(token, "session")
	csrf    string // form field proving the form came from a page: HMAC(token, "csrf")
	pages   map[string]*template.Template
	mux     *http.ServeMux
	hub     *hub
	m       metrics
	now     func() time.Time
	started time.Time // incidents opened before come from Deps.Incidents
	// loginDelay is the pause after a wrong token on the login form.
	loginDelay time.Duration
	authLimit  *authLimiter // failed authentication, per client IP

	mu        sync.RWMutex // guards the fields below; Record holds it briefly
	recent    ring[engine.TickRecord]
	series    *seriesStore
	inc       *tracker
	events    ring[Event]
	actions   ring[ActionEntry]
	audit     ring[AuditEntry]
	sensors   map[string]engine.SensorStatus
	repeat    map[string]repeatState // dedupe of repeated suppressions and dry runs
	lastErr   string                 // last tick's policy error, to log changes only
	reloadErr string
}

type metrics struct {
	clients prometheus.Gauge
	dropped prometheus.Counter
	calls   *prometheus.CounterVec
}

var _ engine.Journal = (*Server)(nil)

// New returns a dashboard; call Run (or Serve) to serve it and pass it to the engine as (one
// of) its journals.
func New(opt Options, deps Deps, log *slog.Logger) (*Server, error) {
	if opt.Listen == "" {
		opt.Listen = DefaultListen
	}
	if opt.History <= 0 {
		opt.History = DefaultHistory
	}
	if opt.AuthRead && opt.Token == "" {
		return nil, errors.New("dashboard.auth: read requires a token (set ARES_API_TOKEN)")
	}
	if (opt.TLSCert == "") != (opt.TLSKey == "") {
		return nil, fmt.Errorf("dashboard.tls: cert and key must be set together (cert %q, key %q)", opt.TLSCert, opt.TLSKey)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	f := promauto.With(deps.Registerer)
	s := &Server{
		opt: opt, deps: deps, log: log, pages: pages, hub: newHub(), now: time.Now, started: time.Now(), loginDelay: 200 * time.Millisecond,
		m: metrics{
			clients: f.NewGauge(prometheus.GaugeOpts{Name: "ares_dashboard_sse_clients", Help: "Connected live-update (SSE) clients."}),
			dropped: f.NewCounter(prometheus.CounterOpts{Name: "ares_dashboard_sse_dropped_total", Help: "Live-update events dropped because a client's buffer was full."}),
			calls: f.NewCounterVec(prometheus.CounterOpts{Name: "ares_dashboard_control_requests_total",
				Help: "Mutating API and control requests, by operation and result."}, []string{"op", "result"}),
		},
		recent:  newRing[engine.TickRecord](RecentTicks),
		series:  newSeriesStore(opt.History),
		inc:     newTracker(maxIncidents),
		events:  newRing[Event](maxEvents),
		actions: newRing[ActionEntry](maxActions),
		audit:   newRing[AuditEntry](maxAudit),
		sensors: map[string]engine.SensorStatus{},
		repeat:  map[string]repeatState{},
	}
	s.hub.dropped = s.m.dropped
	s.authLimit = newAuthLimiter(opt.AuthFailures, opt.AuthFailEvery, func() time.Time { return s.now() })
	if opt.Token != "" {
		sum := sha256.Sum256([]byte(opt.Token))
		s.tokenID = hex.EncodeToString(sum[:4])
		s.session = mac(opt.Token, "ares-dashboard-session")
		s.csrf = mac(opt.Token, "ares-dashboard-csrf")
	}
	s.routes()
	return s, nil
}

func mac(key, msg string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(msg))
	return hex.EncodeToString(h.Sum(nil))
}

// ServeHTTP serves the pages, the static assets and the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

// Run listens on Options.Listen and serves until ctx is cancelled.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		return fmt.Errorf("dashboard.listen %s: %w", s.opt.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (HTTPS when TLSCert and TLSKey are set) until ctx is cancelled, then
// closes the live-update streams and shuts down within 5 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, BaseContext: func(net.Listener) context.Context { return ctx }}
	scheme := "http"
	if s.opt.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.opt.TLSCert, s.opt.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("dashboard.tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	s.log.Info("dashboard served", "addr", scheme+"://"+ln.Addr().String()+"/", "auth_read", s.opt.AuthRead,
		"controls", s.opt.Token != "", "token_id", s.tokenID)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// PolicyReloaded records a policy reload attempt in the activity log. Register it with
// (*policy.Watcher).OnReload; it never blocks.
func (s *Server) PolicyReloaded(rev string, err error) {
	ev := Event{At: s.now().UTC(), Kind: KindPolicy, Source: "policy", Level: LevelInfo,
		Message: "policy revision " + rev + " activated"}
	s.mu.Lock()
	if err != nil {
		ev.Level = LevelError
		ev.Message = "reload refused, keeping revision " + rev + ": " + err.Error()
		s.reloadErr = err.Error()
	} else {
		s.reloadErr = ""
	}
	s.events.push(ev)
	s.mu.Unlock()
	s.hub.publish(sseMessage("activity", ev))
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	m.HandleFunc("GET /{$}", s.page(s.overviewPage))
	m.HandleFunc("GET /services/{name}", s.page(s.servicePage))
	m.HandleFunc("GET /incidents", s.page(s.incidentsPage))
	m.HandleFunc("GET /activity", s.page(s.activityPage))
	m.HandleFunc("GET /policies", s.page(s.policiesPage))
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.logout)
	m.HandleFunc("POST /ui/pause", s.uiControl(opPause))
	m.HandleFunc("POST /ui/resume", s.uiControl(opResume))
	m.HandleFunc("POST /ui/actions", s.uiControl(opAction))
	m.HandleFunc("POST /ui/approvals", s.uiControl(opApproval))

	m.HandleFunc("GET /api/v1/facts", s.read(s.apiFacts))
	m.HandleFunc("GET /api/v1/decisions", s.read(s.apiDecisions))
	m.HandleFunc("GET /api/v1/incidents", s.read(s.apiIncidents))
	m.HandleFunc("GET /api/v1/actions", s.read(s.apiActions))
	m.HandleFunc("GET /api/v1/policy", s.read(s.apiPolicy))
	m.HandleFunc("GET /api/v1/status", s.read(s.apiStatus))
	m.HandleFunc("GET /api/v1/events", s.read(s.apiEvents))
	m.HandleFunc("GET /api/v1/audit", s.read(s.apiAudit))
	m.HandleFunc("POST /api/v1/pause", s.write(opPause, s.apiPause))
	m.HandleFunc("POST /api/v1/resume", s.write(opResume, s.apiResume))
	m.HandleFunc("POST /api/v1/actions", s.write(opAction, s.apiAction))
	m.HandleFunc("POST /api/v1/approvals/{id}", s.write(opApproval, s.apiApproval))
	m.HandleFunc("GET /api/v1/approvals", s.read(s.apiApprovals))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (see docs/api.md)")
	})
	s.mux = m
}
