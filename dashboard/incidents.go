package dashboard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Incident stages on a timeline.
const (
	StageDetected   = "detected"
	StageDecided    = "decided"
	StageSuppressed = "suppressed"
	StageActed      = "acted"
	StageVerified   = "verified"
	StageResolved   = "resolved"
)

// Incident is one episode of trouble on a service, from the first sign to recovery.
//
// The dashboard opens one when a service is seen unhealthy (a replica not running, or
// unhealthy, or no replica while some are desired) or when ARES decides a non-suppressed action
// on it, whichever comes first; it resolves it at the first later tick at which every replica
// runs and none is unhealthy.
type Incident struct {
	ID       string    `json:"id"`
	Service  string    `json:"service"`
	Cause    string    `json:"cause"` // the first symptom or decision
	OpenedAt time.Time `json:"opened_at"`
	// DetectedAt is the first tick that saw the service unhealthy; nil when the incident was
	// opened by an action on a service that looked healthy (e.g. a scale_out on load).
	DetectedAt *time.Time `json:"detected_at,omitempty"`
	// LastGoodAt is the last tick before DetectedAt that saw the service healthy.
	LastGoodAt *time.Time `json:"last_good_at,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	ActedAt    *time.Time `json:"acted_at,omitempty"` // when the first action's actuator returned
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// TimeToDetect is DetectedAt − LastGoodAt: an upper bound of how long the fault went
	// unseen (ticks are event-driven, so usually well under the interval). 0 when unknown.
	TimeToDetect time.Duration `json:"time_to_detect_ns"`
	// TimeToRecover is ResolvedAt − (DetectedAt, else OpenedAt); 0 while open.
	TimeToRecover time.Duration   `json:"time_to_recover_ns"`
	Actions       []engine.Action `json:"actions"` // admitted and dry-run actions, with outcomes
	Timeline      []TimelineEvent `json:"timeline"`
	// NeedsHuman: the governor escalated the incident to a person (automation for the
	// service paused); cleared when it is resolved.
	NeedsHuman bool `json:"needs_human,omitempty"`
}

// Open reports whether the incident is not resolved yet.
func (i *Incident) Open() bool { return i.ResolvedAt == nil }

// TimelineEvent is one step of an incident.
type TimelineEvent struct {
	At      time.Time `json:"at"`
	Stage   string    `json:"stage"` // detected|decided|suppressed|acted|verified|resolved
	Message string    `json:"message"`
}

// maxTimeline bounds an incident's timeline (a long outage under pause repeats suppressions).
const maxTimeline = 64

// tracker derives incidents from tick records.
type tracker struct {
	max      int
	all      []*Incident // oldest first
	open     map[string]*Incident
	lastGood map[string]time.Time
}

func newTracker(max int) *tracker {
	return &tracker{max: max, open: map[string]*Incident{}, lastGood: map[string]time.Time{}}
}

type incidentChange struct {
	kind string // opened|resolved
	inc  *Incident
}

// problem describes what is wrong with a service, or "" when every replica runs and none is
// unhealthy.
func problem(svc *engine.Service) string {
	if len(svc.Replicas) == 0 {
		if svc.DesiredReplicas > 0 {
			return fmt.Sprintf("no replica running (%d desired)", svc.DesiredReplicas)
		}
		return ""
	}
	for _, r := range svc.Replicas {
		switch {
		case r.State != "running" && r.OOMKilled:
			return fmt.Sprintf("%s %s (OOM killed)", r.Name, r.State)
		case r.State == "exited" || r.State == "dead":
			return fmt.Sprintf("%s %s with code %d", r.Name, r.State, r.ExitCode)
		case r.State != "running":
			return r.Name + " " + r.State
		case r.Health == "unhealthy":
			return r.Name + " unhealthy"
		}
	}
	return ""
}

func (t *tracker) observe(rec engine.TickRecord) []incidentChange {
	var changes []incidentChange
	at := rec.At
	opened := func(service, cause string) *Incident {
		inc := &Incident{ID: fmt.Sprintf("%s-%d", service, rec.Tick), Service: service, Cause: cause, OpenedAt: at,
			Actions: []engine.Action{}, Timeline: []TimelineEvent{}}
		t.open[service] = inc
		t.all = append(t.all, inc)
		if len(t.all) > t.max {
			t.all = slices.Delete(t.all, 0, len(t.all)-t.max)
		}
		changes = append(changes, incidentChange{"opened", inc})
		return inc
	}
	if f := rec.Facts; f != nil {
		for name, svc := range f.Services {
			p := problem(svc)
			if p == "" {
				t.lastGood[name] = at
				continue
			}
			inc := t.open[name]
			if inc == nil {
				inc = opened(name, p)
			}
			if inc.DetectedAt == nil {
				inc.DetectedAt = ptr(at)
				if lg, ok := t.lastGood[name]; ok {
					inc.LastGoodAt = ptr(lg)
					inc.TimeToDetect = at.Sub(lg)
				}
				inc.add(at, StageDetected, p)
			}
		}
	}
	acted := map[string]bool{}
	for _, a := range rec.Actions {
		inc := t.open[a.Scope()] // a node-level action (drain): "node/<node>"
		if a.Verdict == engine.VerdictSuppress {
			if inc != nil {
				inc.addOnce(at, StageSuppressed, a.Action+" "+a.Target()+" — "+a.Why)
			}
			continue
		}
		if inc == nil {
			inc = opened(a.Scope(), a.Action+" "+a.Target()+": "+a.Reason)
		}
		acted[a.Scope()] = true
		if inc.DecidedAt == nil {
			inc.DecidedAt = ptr(at)
		}
		verdict := ""
		if a.Verdict == engine.VerdictDryRun {
			verdict = " (dry run: not carried out)"
		}
		inc.add(at, StageDecided, a.Action+" "+a.Target()+": "+a.Reason+verdict)
		inc.Actions = append(inc.Actions, a)
		if a.Escalation && a.Verdict == engine.VerdictAdmit {
			inc.NeedsHuman = true
		}
		if o := a.Outcome; o != nil {
			done := at.Add(rec.Duration)
			if inc.ActedAt == nil {
				inc.ActedAt = ptr(done)
			}
			msg := fmt.Sprintf("%s %s ok in %s", a.Action, a.Target(), o.Duration.Round(time.Millisecond))
			if o.Result != engine.ResultOK {
				msg = fmt.Sprintf("%s %s failed after %s: %s", a.Action, a.Target(), o.Duration.Round(time.Millisecond), o.Error)
			}
			inc.add(done, StageActed, msg)
		}
	}
	for name, inc := range t.open {
		if acted[name] || rec.Facts == nil {
			continue
		}
		svc, present := rec.Facts.Services[name]
		node, isNode := strings.CutPrefix(name, "node/")
		why := ""
		switch {
		case isNode:
			if _, n, ok := rec.Facts.Node(node); ok && n.Availability == "active" {
				continue
			}
			why = "node drained or gone from the swarm"
		case present && problem(svc) == "":
			why = fmt.Sprintf("all %d replica(s) running, none unhealthy", len(svc.Replicas))
		case !present && len(rec.Facts.Services) > 0:
			why = "service no longer present"
		default:
			continue
		}
		if inc.ActedAt != nil {
			inc.VerifiedAt = ptr(at)
			inc.add(at, StageVerified, why)
		}
		inc.ResolvedAt = ptr(at)
		inc.NeedsHuman = false
		from := inc.OpenedAt
		if inc.DetectedAt != nil {
			from = *inc.DetectedAt
		}
		inc.TimeToRecover = at.Sub(from)
		inc.add(at, StageResolved, fmt.Sprintf("%s (time to recover %s)", why, inc.TimeToRecover.Round(time.Millisecond)))
		delete(t.open, name)
		changes = append(changes, incidentChange{"resolved", inc})
	}
	return changes
}

func (i *Incident) add(at time.Time, stage, msg string) {
	if len(i.Timeline) >= maxTimeline {
		i.Timeline = slices.Delete(i.Timeline, 1, 2) // keep the first (detected or decided)
	}
	i.Timeline = append(i.Timeline, TimelineEvent{At: at, Stage: stage, Message: msg})
}

// addOnce adds a suppression unless the timeline already shows one of the same kind.
func (i *Incident) addOnce(at time.Time, stage, msg string) {
	cat := category(msg)
	for _, e := range i.Timeline {
		if e.Stage == stage && category(e.Message) == cat {
			return
		}
	}
	i.add(at, stage, msg)
}

// list returns copies of the incidents open or touched since since, for service ("" all),
// newest first.
func (t *tracker) list(since time.Time, service string) []Incident {
	out := []Incident{}
	for k := len(t.all) - 1; k >= 0; k-- {
		inc := t.all[k]
		if service != "" && inc.Service != service {
			continue
		}
		if inc.Open() || !inc.ResolvedAt.Before(since) || !inc.OpenedAt.Before(since) {
			c := *inc
			c.Actions = slices.Clone(inc.Actions)
			c.Timeline = slices.Clone(inc.Timeline)
			out = append(out, c)
		}
	}
	return out
}

// Incidents lists the incidents the dashboard derived from the ticks it received
// (IncidentSource): those open and those opened or resolved since since, newest first.
func (s *Server) Incidents(_ context.Context, since time.Time, service string) ([]Incident, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.inc.list(since, service), nil
}

var _ IncidentSource = (*Server)(nil)

// incidents lists the incidents derived from the ticks this dashboard received and, from the
// durable source (Deps.Incidents, the journal), those opened before it started: the history
// survives a restart of ARES, and the richer in-memory timelines are kept for what this run
// saw. When the durable source fails, the in-memory incidents are returned with the error.
func (s *Server) incidents(ctx context.Context, since time.Time, service string) ([]Incident, error) {
	mem, _ := s.Incidents(ctx, since, service)
	if s.deps.Incidents == nil {
		return mem, nil
	}
	durable, err := s.deps.Incidents.Incidents(ctx, since, service)
	if err != nil {
		return mem, err
	}
	for _, inc := range durable {
		if inc.OpenedAt.Before(s.started) {
			mem = append(mem, inc)
		}
	}
	slices.SortStableFunc(mem, func(a, b Incident) int { return b.OpenedAt.Compare(a.OpenedAt) })
	return mem, nil
}

func ptr[T any](v T) *T { return &v }

// stageOf is used by the templates to style a timeline event.
func stageClass(stage string) string { return "stage-" + strings.ToLower(stage) }
