package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ares-sre/ares/engine"
)

// Control operations.
const (
	opPause    = "pause"
	opResume   = "resume"
	opAction   = "action"
	opApproval = "approval"
)

// PauseRequest is the body of POST /api/v1/pause.
type PauseRequest struct {
	Service string `json:"service"` // "" pauses every service
	For     string `json:"for"`     // Go duration ("15m"); "" until resumed
	Why     string `json:"why"`     // required (or as "reason")
	Reason  string `json:"reason,omitempty"`
}

// ResumeRequest is the body of POST /api/v1/resume.
type ResumeRequest struct {
	Service string `json:"service"`          // "" lifts the global pause
	Why     string `json:"why"`              // or "reason"; defaults to "(no reason given)"
	Reason  string `json:"reason,omitempty"` // same as why
}

// ActionRequest is the body of POST /api/v1/actions: a manual decision for the next tick.
type ActionRequest struct {
	Action  string `json:"action"`
	Service string `json:"service"`
	Replica string `json:"replica"`
	Node    string `json:"node,omitempty"` // node id or hostname: only for drain, which names no service
	Reason  string `json:"reason"`         // required
}

// controlError is a refused control request and its HTTP status.
type controlError struct {
	code int
	msg  string
}

func (e *controlError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &controlError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func unavailable(what string) error {
	return &controlError{http.StatusServiceUnavailable, what + " is not available: the dashboard was started without it"}
}

// checkName accepts "" and service or replica names without control characters.
func checkName(field, v string) error {
	if len(v) > 255 || strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return badRequest("field %q: not a valid name (got %q)", field, v)
	}
	return nil
}

func checkText(field, v string, required bool) (string, error) {
	v = strings.TrimSpace(v)
	if required && v == "" {
		return "", badRequest("missing field %q: say why", field)
	}
	if len(v) > 500 {
		return "", badRequest("field %q: at most 500 bytes (got %d)", field, len(v))
	}
	return v, nil
}

// PauseResult is the answer to a pause or resume.
type PauseResult struct {
	Service string               `json:"service"`
	Until   *time.Time           `json:"until,omitempty"` // absent: until resumed
	Paused  map[string]time.Time `json:"paused"`          // every pause in force ("" = all)
}

// orReason returns why, else reason: the API takes either field.
func orReason(why, reason string) string {
	if strings.TrimSpace(why) == "" {
		return reason
	}
	return why
}

func (s *Server) pause(c caller, req PauseRequest) (PauseResult, error) {
	if s.deps.Controller == nil {
		return PauseResult{}, unavailable("the governor")
	}
	why, err := checkText("why", orReason(req.Why, req.Reason), true)
	if err != nil {
		return PauseResult{}, err
	}
	if err := checkName("service", req.Service); err != nil {
		return PauseResult{}, err
	}
	now := s.now()
	res := PauseResult{Service: req.Service}
	var until time.Time
	detail := "until resumed"
	if f := strings.TrimSpace(req.For); f != "" {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return PauseResult{}, badRequest("field \"for\": want a positive duration such as \"15m\" or \"2h\" (got %q)", req.For)
		}
		until = now.Add(d).UTC()
		res.Until = &until
		detail = "for " + d.String()
	}
	s.deps.Controller.Pause(req.Service, until)
	res.Paused = s.deps.Controller.Paused(now)
	s.journal(AuditEntry{Via: c.via, Remote: c.remote, Op: opPause, Target: target(req.Service, ""), Detail: detail, Why: why, Result: "ok"})
	return res, nil
}

func (s *Server) resume(c caller, req ResumeRequest) (PauseResult, error) {
	if s.deps.Controller == nil {
		return PauseResult{}, unavailable("the governor")
	}
	why, err := checkText("why", orReason(req.Why, req.Reason), false)
	if err != nil {
		return PauseResult{}, err
	}
	if err := checkName("service", req.Service); err != nil {
		return PauseResult{}, err
	}
	s.deps.Controller.Resume(req.Service)
	s.journal(AuditEntry{Via: c.via, Remote: c.remote, Op: opResume, Target: target(req.Service, ""), Why: why, Result: "ok"})
	return PauseResult{Service: req.Service, Paused: s.deps.Controller.Paused(s.now())}, nil
}

// ActionResult is the answer to a manual action: queued for the next tick.
type ActionResult struct {
	Queued engine.Decision `json:"queued"`
	Note   string          `json:"note"`
}

func (s *Server) manualAction(c caller, req ActionRequest) (ActionResult, error) {
	if s.deps.Submitter == nil {
		return ActionResult{}, unavailable("the engine")
	}
	reason, err := checkText("reason", req.Reason, true)
	if err != nil {
		return ActionResult{}, err
	}
	d := engine.Decision{Action: strings.TrimSpace(req.Action), Service: strings.TrimSpace(req.Service),
		Replica: strings.TrimSpace(req.Replica), Node: strings.TrimSpace(req.Node), Reason: reason}
	if err := d.Validate(); err != nil {
		return ActionResult{}, badRequest("%v", err)
	}
	if err := checkName("node", d.Node); err != nil {
		return ActionResult{}, err
	}
	if err := checkName("service", d.Service); err != nil {
		return ActionResult{}, err
	}
	if err := checkName("replica", d.Replica); err != nil {
		return ActionResult{}, err
	}
	s.mu.RLock()
	var facts *engine.Facts
	if s.recent.len() > 0 {
		facts = s.recent.at(0).Facts
	}
	s.mu.RUnlock()
	if facts != nil && d.Node != "" {
		if _, _, ok := facts.Node(d.Node); !ok {
			return ActionResult{}, badRequest("unknown node %q: not in the latest facts (or a hostname of several nodes: use the id)", d.Node)
		}
	} else if facts != nil {
		if _, ok := facts.Services[d.Service]; !ok {
			return ActionResult{}, badRequest("unknown service %q: not in the latest facts", d.Service)
		}
		if d.Replica != "" && facts.Replica(d.Service, d.Replica) == nil {
			return ActionResult{}, badRequest("unknown replica %q of service %q: not in the latest facts", d.Replica, d.Service)
		}
	}
	d.Reason = "manual by " + s.who() + ": " + reason
	if err := s.deps.Submitter.Submit(d); err != nil {
		return ActionResult{}, badRequest("%v", err)
	}
	s.journal(AuditEntry{Via: c.via, Remote: c.remote, Op: opAction, Target: d.Target(), Detail: d.Action, Why: reason, Result: "queued"})
	return ActionResult{Queued: d, Note: "queued for the next tick; the governor decides whether it is carried out (see GET /api/v1/actions)"}, nil
}

func target(service, replica string) string {
	switch {
	case service == "":
		return "all services"
	case replica == "":
		return service
	}
	return service + "/" + replica
}

// journal records a control request: see Audit.
func (s *Server) journal(e AuditEntry) { s.Audit(context.Background(), e) }

// decodeBody decodes a JSON object strictly: no unknown fields, nothing after it, at most 64 KiB.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("empty body: send a JSON object")
		}
		return badRequest("malformed body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("malformed body: data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (s *Server) fail(w http.ResponseWriter, op string, err error) {
	code := http.StatusInternalServerError
	var ce *controlError
	if errors.As(err, &ce) {
		code = ce.code
	}
	result := "bad_request"
	if code != http.StatusBadRequest {
		result = strconv.Itoa(code)
	}
	s.m.calls.WithLabelValues(op, result).Inc()
	writeError(w, code, err.Error())
}

func (s *Server) apiPause(w http.ResponseWriter, r *http.Request) {
	var req PauseRequest
	err := decodeBody(w, r, &req)
	var res PauseResult
	if err == nil {
		res, err = s.pause(callerOf("api", r), req)
	}
	if err != nil {
		s.fail(w, opPause, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiResume(w http.ResponseWriter, r *http.Request) {
	var req ResumeRequest
	err := decodeBody(w, r, &req)
	var res PauseResult
	if err == nil {
		res, err = s.resume(callerOf("api", r), req)
	}
	if err != nil {
		s.fail(w, opResume, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiAction(w http.ResponseWriter, r *http.Request) {
	var req ActionRequest
	err := decodeBody(w, r, &req)
	var res ActionResult
	if err == nil {
		res, err = s.manualAction(callerOf("api", r), req)
	}
	if err != nil {
		s.fail(w, opAction, err)
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

// ---- read endpoints ----

func (s *Server) latest() *engine.TickRecord {
	if s.recent.len() == 0 {
		return nil
	}
	rec := *s.recent.at(0)
	return &rec
}

func queryLimit(r *http.Request, def, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badRequest("query limit: want a positive integer (got %q)", v)
	}
	return min(n, max), nil
}

// querySince parses since as RFC 3339 or as a duration back from now; default def ago.
func (s *Server) querySince(r *http.Request, def time.Duration) (time.Time, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return s.now().Add(-def), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return s.now().Add(-d), nil
	}
	return time.Time{}, badRequest("query since: want RFC 3339 time or a duration such as 24h (got %q)", v)
}

func (s *Server) apiFacts(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	rec := s.latest()
	s.mu.RUnlock()
	if rec == nil || rec.Facts == nil {
		writeError(w, http.StatusServiceUnavailable, "no tick recorded yet")
		return
	}
	f := rec.Facts
	if svc := r.URL.Query().Get("service"); svc != "" {
		one, ok := f.Services[svc]
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("unknown service %q", svc))
			return
		}
		c := *f
		c.Services = map[string]*engine.Service{svc: one}
		f = &c
	}
	writeJSON(w, http.StatusOK, f)
}

// DecisionEntry is one decision of a recent tick with the governor's verdict.
type DecisionEntry struct {
	Tick      uint64    `json:"tick"`
	At        time.Time `json:"at"`
	PolicyRev string    `json:"policy_rev"`
	engine.Decision
	Verdict string `json:"verdict,omitempty"`
	Why     string `json:"why,omitempty"`
}

// decisions lists the decisions of the recent ticks, newest first. s.mu must be held.
func (s *Server) decisions(service string, limit int) []DecisionEntry {
	out := []DecisionEntry{}
	for i := 0; i < s.recent.len() && len(out) < limit; i++ {
		rec := s.recent.at(i)
		for k, d := range rec.Decisions {
			if service != "" && d.Service != service {
				continue
			}
			e := DecisionEntry{Tick: rec.Tick, At: rec.At, PolicyRev: rec.PolicyRev, Decision: d}
			if len(rec.Actions) == len(rec.Decisions) {
				e.Verdict, e.Why = rec.Actions[k].Verdict, rec.Actions[k].Why
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

func (s *Server) apiDecisions(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r, 100, 1000)
	if err != nil {
		s.failRead(w, err)
		return
	}
	s.mu.RLock()
	ds := s.decisions(r.URL.Query().Get("service"), limit)
	var rejected []engine.RejectedDecision
	evalErr := ""
	if rec := s.latest(); rec != nil {
		rejected, evalErr = rec.Rejected, rec.Err
	}
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"decisions": ds, "latest_rejected": rejected, "latest_error": evalErr})
}

func (s *Server) failRead(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var ce *controlError
	if errors.As(err, &ce) {
		code = ce.code
	}
	writeError(w, code, err.Error())
}

func (s *Server) apiIncidents(w http.ResponseWriter, r *http.Request) {
	since, err := s.querySince(r, 24*time.Hour)
	if err != nil {
		s.failRead(w, err)
		return
	}
	state := r.URL.Query().Get("state")
	if state != "" && state != "open" && state != "resolved" && state != "all" {
		s.failRead(w, badRequest("query state: want open, resolved or all (got %q)", state))
		return
	}
	incs, err := s.incidents(r.Context(), since, r.URL.Query().Get("service"))
	resp := map[string]any{}
	if err != nil { // the journal failed: what this run saw, and why the rest is missing
		resp["error"] = "incidents before this start of ARES not available: " + err.Error()
	}
	out := incs[:0]
	for _, inc := range incs {
		if state == "open" && !inc.Open() || state == "resolved" && inc.Open() {
			continue
		}
		out = append(out, inc)
	}
	resp["incidents"] = out
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) apiActions(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r, 200, maxActions)
	if err != nil {
		s.failRead(w, err)
		return
	}
	svc, verdict := r.URL.Query().Get("service"), r.URL.Query().Get("verdict")
	s.mu.RLock()
	acts := s.actions.newest(limit, func(e *ActionEntry) bool {
		return (svc == "" || e.Service == svc) && (verdict == "" || e.Verdict == verdict)
	})
	reqs := s.audit.newest(limit, func(e *AuditEntry) bool {
		return svc == "" || e.Target == svc || strings.HasPrefix(e.Target, svc+"/") || e.Target == "all services"
	})
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"actions": acts, "requests": reqs})
}

// PolicyStatus is the answer of GET /api/v1/policy.
type PolicyStatus struct {
	Revision        string                    `json:"revision"`
	Dir             string                    `json:"dir,omitempty"`
	Files           []string                  `json:"files,omitempty"`
	Partitioned     *bool                     `json:"partitioned,omitempty"`
	PartitionReason string                    `json:"partition_reason,omitempty"`
	LastError       string                    `json:"last_reload_error,omitempty"`
	LastErrorAt     *time.Time                `json:"last_reload_error_at,omitempty"`
	Now             *Evaluation               `json:"would_decide_now,omitempty"`
	Last            []DecisionEntry           `json:"last_decisions"`
	Rejected        []engine.RejectedDecision `json:"-"`
}

// Evaluation is the live policy evaluated on the latest facts, without the governor.
type Evaluation struct {
	Tick      uint64                    `json:"facts_tick"`
	Decisions []engine.Decision         `json:"decisions"`
	Rejected  []engine.RejectedDecision `json:"rejected,omitempty"`
	Error     string                    `json:"error,omitempty"`
	Took      time.Duration             `json:"took_ns"`
}

func (s *Server) policyStatus(r *http.Request, eval bool) PolicyStatus {
	st := PolicyStatus{Dir: s.opt.PolicyDir}
	s.mu.RLock()
	st.Last = s.decisions("", 20)
	rec := s.latest()
	s.mu.RUnlock()
	if s.deps.Policies == nil {
		return st
	}
	if err, at := s.deps.Policies.LastError(); err != nil {
		st.LastError = err.Error()
		st.LastErrorAt = &at
	}
	ev := s.deps.Policies.Current()
	if ev == nil {
		return st
	}
	st.Revision = ev.Revision()
	if f, ok := ev.(interface{ Files() []string }); ok {
		st.Files = f.Files()
	}
	if p, ok := ev.(interface {
		Partitioned() bool
		PartitionReason() string
	}); ok {
		st.Partitioned = ptr(p.Partitioned())
		st.PartitionReason = p.PartitionReason()
	}
	if eval && rec != nil && rec.Facts != nil {
		start := time.Now()
		ds, rej, err := ev.Evaluate(r.Context(), rec.Facts)
		e := &Evaluation{Tick: rec.Tick, Decisions: ds, Rejected: rej, Took: time.Since(start)}
		if e.Decisions == nil {
			e.Decisions = []engine.Decision{}
		}
		if err != nil {
			e.Error = err.Error()
		}
		st.Now = e
	}
	return st
}

func (s *Server) apiPolicy(w http.ResponseWriter, r *http.Request) {
	eval := r.URL.Query().Get("eval") != "false"
	writeJSON(w, http.StatusOK, s.policyStatus(r, eval))
}

// ServiceStatus is one service's line of the overview.
type ServiceStatus struct {
	Name         string           `json:"name"`
	Replicas     []engine.Replica `json:"replicas"`
	Running      int              `json:"running"`
	Desired      int              `json:"desired"`
	Health       string           `json:"health"` // ok|degraded|down
	Problem      string           `json:"problem,omitempty"`
	CPUPercent   float64          `json:"cpu_percent"`
	MemBytes     int64            `json:"mem_bytes"`
	Risk         string           `json:"risk,omitempty"`
	Score        *float64         `json:"anomaly_score,omitempty"`
	WarmingUp    bool             `json:"warming_up,omitempty"`
	Automation   string           `json:"automation"` // running|dry-run|paused
	PausedUntil  *time.Time       `json:"paused_until,omitempty"`
	OpenIncident string           `json:"open_incident,omitempty"`
}

// Status is the answer of GET /api/v1/status and the data of the overview.
type Status struct {
	Tick         uint64               `json:"tick"`
	At           time.Time            `json:"at"`
	Automation   string               `json:"automation"` // running|dry-run|paused
	Paused       map[string]time.Time `json:"paused"`
	PolicyRev    string               `json:"policy_rev"`
	ReloadFailed string               `json:"reload_failed,omitempty"`
	Services     []ServiceStatus      `json:"services"`
	OpenCount    int                  `json:"open_incidents"`
	HA           *HAStatus            `json:"ha,omitempty"` // absent when ha is off
}

// HAStatus says which instance leads when several ARES share a fleet (ha.enabled).
type HAStatus struct {
	Instance string `json:"instance"` // this one
	Leader   string `json:"leader"`   // the leading one; "" while none is known
	Leading  bool   `json:"leading"`
}

func (s *Server) status() Status {
	now := s.now()
	st := Status{Paused: map[string]time.Time{}, Automation: "running", Services: []ServiceStatus{}}
	if s.deps.Controller != nil {
		st.Paused = s.deps.Controller.Paused(now)
	}
	if s.deps.Policies != nil {
		if ev := s.deps.Policies.Current(); ev != nil {
			st.PolicyRev = ev.Revision()
		}
		if err, _ := s.deps.Policies.LastError(); err != nil {
			st.ReloadFailed = err.Error()
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if st.ReloadFailed == "" && s.deps.Policies == nil {
		st.ReloadFailed = s.reloadErr
	}
	rec := s.latest()
	dry := false
	if rec != nil {
		st.Tick, st.At, dry = rec.Tick, rec.At, rec.DryRun
		if st.PolicyRev == "" {
			st.PolicyRev = rec.PolicyRev
		}
	}
	_, global := st.Paused[""]
	switch {
	case global:
		st.Automation = "paused"
	case dry:
		st.Automation = "dry-run"
	}
	st.OpenCount = len(s.inc.open)
	if l := s.deps.Leader; l != nil {
		st.HA = &HAStatus{Instance: l.Instance(), Leader: l.Leader(), Leading: l.Leading()}
	}
	if rec == nil || rec.Facts == nil {
		return st
	}
	for name, svc := range rec.Facts.Services {
		ss := ServiceStatus{Name: name, Replicas: svc.Replicas, Desired: svc.DesiredReplicas, Automation: st.Automation}
		for _, r := range svc.Replicas {
			ss.MemBytes += r.MemBytes
			if r.State == "running" {
				ss.Running++
				ss.CPUPercent += r.CPUPercent
			}
		}
		if ss.Running > 0 {
			ss.CPUPercent /= float64(ss.Running)
		}
		ss.Problem = problem(svc)
		switch {
		case ss.Problem == "":
			ss.Health = "ok"
		case ss.Running == 0:
			ss.Health = "down"
		default:
			ss.Health = "degraded"
		}
		if a := svc.Anomaly; a != nil {
			ss.Risk, ss.WarmingUp = a.Risk, a.WarmingUp
			if !a.WarmingUp {
				ss.Score = ptr(a.Score)
			}
		}
		if until, ok := st.Paused[name]; ok && !global {
			ss.Automation = "paused"
			if !until.IsZero() {
				ss.PausedUntil = ptr(until)
			}
		}
		if inc := s.inc.open[name]; inc != nil {
			ss.OpenIncident = inc.ID
		}
		st.Services = append(st.Services, ss)
	}
	sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Name < st.Services[j].Name })
	return st
}

func (s *Server) apiStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}
