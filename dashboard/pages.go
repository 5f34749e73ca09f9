package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ares-sre/ares/engine"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		fsrv.ServeHTTP(w, r)
	})
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("15:04:05")
	},
	"tsp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("15:04:05")
	},
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"dur": func(d time.Duration) string {
		switch {
		case d <= 0:
			return "—"
		case d < time.Second:
			return d.Round(time.Millisecond).String()
		case d < time.Minute:
			return d.Round(100 * time.Millisecond).String()
		}
		return d.Round(time.Second).String()
	},
	"pct":   func(v float64) string { return fmt.Sprintf("%.1f%%", v) },
	"mib":   func(v int64) string { return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20)) },
	"score": func(v *float64) string { return fmt.Sprintf("%.2f", *v) },
	"short": func(id string) string {
		if len(id) > 12 {
			return id[:12]
		}
		return id
	},
	"stage": stageClass,
	"rstate": func(r engine.Replica) string {
		switch {
		case r.State != "running":
			return "down"
		case r.Health == "unhealthy":
			return "bad"
		case r.Health == "starting":
			return "warn"
		}
		return "ok"
	},
	"verdict": func(v string) string { return "v-" + strings.ReplaceAll(v, "_", "-") },
	"qs":      url.QueryEscape,
	"actions": func() []string { return engine.KnownActions },
	"deref":   func(b *bool) bool { return b != nil && *b },
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, p := range []string{"overview", "service", "incidents", "activity", "policies", "login"} {
		c, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if pages[p], err = c.ParseFS(templateFS, "templates/"+p+".html"); err != nil {
			return nil, fmt.Errorf("dashboard: templates: %w", err)
		}
	}
	return pages, nil
}

// Layout is what every page shows around its content.
type Layout struct {
	Title      string
	Active     string
	Tick       uint64
	At         time.Time
	Automation string // running|dry-run|paused
	PolicyRev  string
	ReloadErr  string
	Controls   bool // a token is configured
	Authed     bool // and this browser logged in with it
	CSRF       string
	Flash      string
	FlashErr   bool
	Back       string // this page, for the forms to return to
}

func (s *Server) layout(r *http.Request, title, active string) Layout {
	l := Layout{Title: title, Active: active, Automation: "running", Controls: s.opt.Token != "", Back: r.URL.Path}
	if l.Controls && s.loggedIn(r) {
		l.Authed, l.CSRF = true, s.csrf
	}
	if q := r.URL.RawQuery; q != "" && r.Method == http.MethodGet {
		// keep the filters, not the flash
		v := r.URL.Query()
		v.Del("msg")
		v.Del("err")
		if e := v.Encode(); e != "" {
			l.Back += "?" + e
		}
	}
	l.Flash = r.URL.Query().Get("msg")
	if e := r.URL.Query().Get("err"); e != "" {
		l.Flash, l.FlashErr = e, true
	}
	if s.deps.Controller != nil {
		if _, ok := s.deps.Controller.Paused(s.now())[""]; ok {
			l.Automation = "paused"
		}
	}
	if s.deps.Policies != nil {
		if ev := s.deps.Policies.Current(); ev != nil {
			l.PolicyRev = ev.Revision()
		}
		if err, _ := s.deps.Policies.LastError(); err != nil {
			l.ReloadErr = err.Error()
		}
	}
	s.mu.RLock()
	if rec := s.latest(); rec != nil {
		l.Tick, l.At = rec.Tick, rec.At
		if rec.DryRun && l.Automation == "running" {
			l.Automation = "dry-run"
		}
		if l.PolicyRev == "" {
			l.PolicyRev = rec.PolicyRev
		}
	}
	if l.ReloadErr == "" && s.deps.Policies == nil {
		l.ReloadErr = s.reloadErr
	}
	s.mu.RUnlock()
	return l
}

func (s *Server) render(w http.ResponseWriter, code int, page string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		s.log.Error("dashboard: render", "page", page, "err", err)
		http.Error(w, "render "+page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// ---- overview ----

type overviewData struct {
	Layout
	St       Status
	Open     []Incident
	Sparks   map[string]template.HTML
	Activity []Event
	Healthy  int
	Actions  int // admitted in the recent ticks
	Supp     int
	// Approvals are the actions waiting for a person's approval.
	Approvals []engine.Approval
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	d := overviewData{Layout: s.layout(r, "Overview", "overview"), St: s.status(), Sparks: map[string]template.HTML{}}
	s.mu.RLock()
	from, to := s.series.span()
	hour := to.Add(-time.Hour)
	if from.Before(hour) {
		from = hour
	}
	for _, svc := range d.St.Services {
		d.Sparks[svc.Name] = sparkline(s.series.window(svc.Name, mCPU, from, 120), from, to)
		if svc.Health == "ok" {
			d.Healthy++
		}
	}
	d.Activity = s.events.newest(12, nil)
	for i := 0; i < s.actions.len(); i++ {
		switch e := s.actions.at(i); e.Verdict {
		case engine.VerdictSuppress:
			d.Supp++
		default:
			d.Actions++
		}
	}
	s.mu.RUnlock()
	d.Open, _ = s.incidents(r.Context(), s.now(), "") // with those open since before a restart
	open := d.Open[:0]
	for _, inc := range d.Open {
		if inc.Open() {
			open = append(open, inc)
		}
	}
	d.Open = open
	d.Approvals = s.pendingApprovals()
	s.render(w, http.StatusOK, "overview", d)
}

// ---- service ----

type serviceData struct {
	Layout
	Svc       ServiceStatus
	Facts     *engine.Service
	Charts    []template.HTML
	Decisions []ActionEntry
	Done      []ActionEntry
	Incidents []Incident
	Span      string
}

func (s *Server) servicePage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st := s.status()
	d := serviceData{Layout: s.layout(r, name, "overview")}
	found := false
	for _, ss := range st.Services {
		if ss.Name == name {
			d.Svc, found = ss, true
		}
	}
	s.mu.RLock()
	if rec := s.latest(); rec != nil && rec.Facts != nil {
		d.Facts = rec.Facts.Services[name]
	}
	if _, ok := s.series.svcs[name]; !found && !ok {
		s.mu.RUnlock()
		d.Title = "Unknown service"
		d.Flash, d.FlashErr = fmt.Sprintf("ARES has not seen a service named %q in the last %d ticks.", name, s.opt.History), true
		s.render(w, http.StatusNotFound, "service", d)
		return
	}
	if !found {
		d.Svc = ServiceStatus{Name: name, Health: "gone", Automation: st.Automation}
	}
	from, to := s.series.span()
	d.Span = to.Sub(from).Round(time.Second).String()
	mk := func(title, unit, class string, m metric, thr float64, lbl string, fixedMax float64) template.HTML {
		return chart{Title: title, Unit: unit, Class: class, Points: s.series.window(name, m, from, 480),
			From: from, To: to, Threshold: thr, ThreshLbl: lbl, Max: fixedMax}.svg()
	}
	d.Charts = append(d.Charts,
		mk("CPU (mean of running replicas)", "%", "cpu", mCPU, math.NaN(), "", 0),
		mk("Memory (all replicas)", "MiB", "mem", mMem, math.NaN(), "", 0))
	if s.series.has(name, mP99) {
		d.Charts = append(d.Charts, mk("Latency p99", "ms", "lat", mP99, math.NaN(), "", 0),
			mk("Error rate", "%", "err", mErr, math.NaN(), "", 0))
	}
	d.Charts = append(d.Charts, mk("Anomaly score", "", "score", mScore, 0.5, "high ≥ 0.5", 1))
	d.Decisions = s.actions.newest(30, func(e *ActionEntry) bool { return e.Service == name })
	d.Done = s.actions.newest(30, func(e *ActionEntry) bool { return e.Service == name && e.Outcome != nil })
	s.mu.RUnlock()
	d.Incidents, _ = s.incidents(r.Context(), s.now().Add(-24*time.Hour), name)
	if len(d.Incidents) > 10 {
		d.Incidents = d.Incidents[:10]
	}
	s.render(w, http.StatusOK, "service", d)
}

// ---- incidents ----

type incidentsData struct {
	Layout
	Incidents []Incident
	Services  []string
	Service   string
	Since     string
	Err       string
}

func (s *Server) incidentsPage(w http.ResponseWriter, r *http.Request) {
	d := incidentsData{Layout: s.layout(r, "Incidents", "incidents"), Service: r.URL.Query().Get("service"), Since: r.URL.Query().Get("since")}
	if d.Since == "" {
		d.Since = "24h"
	}
	since, err := s.querySince(r, 24*time.Hour)
	if err != nil {
		d.Flash, d.FlashErr = err.Error(), true
		since = s.now().Add(-24 * time.Hour)
	}
	d.Incidents, err = s.incidents(r.Context(), since, d.Service)
	if err != nil {
		d.Flash, d.FlashErr = "incidents: "+err.Error(), true
	}
	seen := map[string]bool{}
	for _, svc := range s.status().Services {
		seen[svc.Name] = true
	}
	for _, inc := range d.Incidents {
		seen[inc.Service] = true
	}
	for n := range seen {
		d.Services = append(d.Services, n)
	}
	sort.Strings(d.Services)
	s.render(w, http.StatusOK, "incidents", d)
}

// ---- activity ----

type activityData struct {
	Layout
	Sensors []sensorRow
	Events  []Event
	Kind    string
	Kinds   []string
	// Audit is the audit trail of the last week (from the journal, so it survives restarts).
	Audit    []AuditEntry
	AuditErr string
}

type sensorRow struct {
	Name string
	engine.SensorStatus
}

func (s *Server) activityPage(w http.ResponseWriter, r *http.Request) {
	d := activityData{Layout: s.layout(r, "Agent activity", "activity"), Kind: r.URL.Query().Get("kind"),
		Kinds: []string{KindSensor, KindPolicy, KindGovernor, KindActuator, KindIncident, KindAudit}}
	s.mu.RLock()
	for n, st := range s.sensors {
		d.Sensors = append(d.Sensors, sensorRow{n, st})
	}
	d.Events = s.events.newest(300, func(e *Event) bool { return d.Kind == "" || e.Kind == d.Kind })
	s.mu.RUnlock()
	sort.Slice(d.Sensors, func(i, j int) bool { return d.Sensors[i].Name < d.Sensors[j].Name })
	var err error
	if d.Audit, err = s.auditLog(r.Context(), s.now().Add(-7*24*time.Hour), "", 50); err != nil {
		d.AuditErr = err.Error()
	}
	s.render(w, http.StatusOK, "activity", d)
}

// ---- policies ----

type policiesData struct {
	Layout
	PolicyStatus
	Reloads []Event
}

func (s *Server) policiesPage(w http.ResponseWriter, r *http.Request) {
	d := policiesData{Layout: s.layout(r, "Policies", "policies"), PolicyStatus: s.policyStatus(r, true)}
	s.mu.RLock()
	d.Reloads = s.events.newest(20, func(e *Event) bool { return e.Kind == KindPolicy })
	s.mu.RUnlock()
	s.render(w, http.StatusOK, "policies", d)
}

// ---- controls (forms) ----

// uiControl handles a control form: it needs the session cookie and the CSRF field, and
// answers with a redirect back to the page, with a message.
func (s *Server) uiControl(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		back := localPath(r.PostFormValue("back"))
		if s.opt.Token == "" {
			http.Error(w, "controls are disabled: start ARES with ARES_API_TOKEN set", http.StatusForbidden)
			return
		}
		if !s.loggedIn(r) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(back), http.StatusSeeOther)
			return
		}
		if !equal(r.PostFormValue("csrf"), s.csrf) {
			http.Error(w, "missing or stale form token: reload the page and try again", http.StatusForbidden)
			return
		}
		var err error
		msg := ""
		switch op {
		case opPause:
			var res PauseResult
			res, err = s.pause(callerOf("ui", r), PauseRequest{Service: r.PostFormValue("service"), For: r.PostFormValue("for"), Why: r.PostFormValue("why")})
			msg = "Paused automation for " + target(res.Service, "")
			if res.Until != nil {
				msg += " until " + res.Until.Format("15:04:05Z")
			}
		case opResume:
			var res PauseResult
			res, err = s.resume(callerOf("ui", r), ResumeRequest{Service: r.PostFormValue("service"), Why: r.PostFormValue("why")})
			msg = "Resumed automation for " + target(res.Service, "")
		case opAction:
			var res ActionResult
			res, err = s.manualAction(callerOf("ui", r), ActionRequest{Action: r.PostFormValue("action"), Service: r.PostFormValue("service"),
				Replica: r.PostFormValue("replica"), Reason: r.PostFormValue("reason")})
			msg = "Queued " + res.Queued.Action + " " + res.Queued.Target() + " for the next tick (the governor decides)"
		case opApproval:
			var res ApprovalResult
			dec := r.PostFormValue("decision")
			res, err = s.decideApproval(callerOf("ui", r), r.PostFormValue("id"), ApprovalRequest{Decision: dec, Reason: r.PostFormValue("reason")})
			msg = "Approval " + res.Approval.ID + " " + res.Approval.Status + ": " + res.Approval.Decision.Action + " " + res.Approval.Decision.Target()
		}
		key := "msg"
		if err != nil {
			key, msg = "err", err.Error()
			s.m.calls.WithLabelValues(op, "bad_request").Inc()
		}
		sep := "?"
		if strings.Contains(back, "?") {
			sep = "&"
		}
		http.Redirect(w, r, back+sep+key+"="+url.QueryEscape(msg), http.StatusSeeOther)
	}
}
