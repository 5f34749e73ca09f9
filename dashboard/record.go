package dashboard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Event kinds of the activity log.
const (
	KindSensor   = "sensor"
	KindPolicy   = "policy"
	KindGovernor = "governor"
	KindActuator = "actuator"
	KindIncident = "incident"
	KindAudit    = "audit"
)

// Event levels.
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Event is one line of the agent activity log.
type Event struct {
	At      time.Time `json:"at"`
	Tick    uint64    `json:"tick,omitempty"`
	Kind    string    `json:"kind"`              // sensor|policy|governor|actuator|incident|audit
	Source  string    `json:"source"`            // sensor name, "policy", "governor", action kind, "api" or "ui"
	Subject string    `json:"subject,omitempty"` // service or service/replica
	Level   string    `json:"level"`             // info|warn|error
	Message string    `json:"message"`
}

// ActionEntry is one governed decision: its verdict, why, and the actuator's outcome.
// Repeated suppressions and dry runs of the same target for the same reason are logged once a
// minute, not every tick.
type ActionEntry struct {
	Tick      uint64    `json:"tick"`
	At        time.Time `json:"at"`
	PolicyRev string    `json:"policy_rev"`
	engine.Action
}

// AuditEntry is one mutating call (API or dashboard control): who, why and what came of it.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`              // "token:<first 8 hex of sha256(token)>"
	Remote string    `json:"remote,omitempty"` // the client's address
	Via    string    `json:"via"`              // api|ui
	Op     string    `json:"op"`               // pause|resume|action|approval
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
	Why    string    `json:"why"`
	Result string    `json:"result"` // ok|queued|refused: <reason>
}

// repeatState remembers the last logged suppression or dry run of a target.
type repeatState struct {
	category string
	at       time.Time
}

// repeatEvery is how often an unchanged suppression or dry run is logged again.
const repeatEvery = time.Minute

// Record keeps the tick (engine.Journal) and sends live updates. It never blocks on clients:
// each has a bounded buffer, and events for a client whose buffer is full are dropped and
// counted.
func (s *Server) Record(_ context.Context, rec engine.TickRecord) error {
	s.mu.Lock()
	msgs := s.apply(rec)
	s.mu.Unlock()
	for _, m := range msgs {
		s.hub.publish(m)
	}
	return nil
}

// apply folds one tick into the state and returns the live-update messages it causes.
// s.mu must be held.
func (s *Server) apply(rec engine.TickRecord) [][]byte {
	var msgs [][]byte
	emit := func(ev Event) {
		if ev.At.IsZero() {
			ev.At = rec.At
		}
		ev.Tick = rec.Tick
		s.events.push(ev)
		msgs = append(msgs, sseMessage("activity", ev))
	}
	s.recent.push(rec)
	f := rec.Facts
	if f != nil {
		s.series.add(rec.At, f)
		for _, name := range slices.Sorted(maps.Keys(f.Sensors)) {
			st := f.Sensors[name]
			old, seen := s.sensors[name]
			switch {
			case !st.OK && (!seen || old.OK || old.Error != st.Error):
				emit(Event{Kind: KindSensor, Source: name, Level: LevelError, Message: name + " failing: " + st.Error})
			case st.OK && seen && !old.OK:
				emit(Event{Kind: KindSensor, Source: name, Level: LevelInfo, Message: name + " recovered"})
			case st.OK && !seen:
				emit(Event{Kind: KindSensor, Source: name, Level: LevelInfo, Message: name + " reporting"})
			}
			s.sensors[name] = st
		}
	}
	if rec.Err != s.lastErr {
		if rec.Err != "" {
			emit(Event{Kind: KindPolicy, Source: "policy", Level: LevelError, Message: "evaluation failed (revision " + rec.PolicyRev + "): " + rec.Err})
		} else {
			emit(Event{Kind: KindPolicy, Source: "policy", Level: LevelInfo, Message: "evaluation succeeds again (revision " + rec.PolicyRev + ")"})
		}
		s.lastErr = rec.Err
	}
	for _, r := range rec.Rejected {
		emit(Event{Kind: KindPolicy, Source: "policy", Level: LevelWarn, Message: "decision rejected: " + r.Error + ": " + r.Raw})
	}
	for _, a := range rec.Actions {
		if a.Verdict != engine.VerdictAdmit && s.repeated(a, rec.At) {
			continue
		}
		e := ActionEntry{Tick: rec.Tick, At: rec.At, PolicyRev: rec.PolicyRev, Action: a}
		s.actions.push(e)
		msgs = append(msgs, sseMessage("action", e))
		desc := a.Action + " " + a.Target() + ": " + a.Reason
		switch {
		case a.Verdict == engine.VerdictSuppress:
			emit(Event{Kind: KindGovernor, Source: "governor", Subject: a.Target(), Level: LevelWarn,
				Message: "suppressed " + desc + " — " + a.Why})
		case a.Verdict == engine.VerdictDryRun:
			emit(Event{Kind: KindGovernor, Source: "governor", Subject: a.Target(), Level: LevelInfo,
				Message: "dry run: would " + desc})
		case a.Outcome != nil && a.Outcome.Result == engine.ResultOK:
			msg := fmt.Sprintf("%s ok in %s", desc, a.Outcome.Duration.Round(time.Millisecond))
			if a.Outcome.Detail != "" {
				msg += " (" + a.Outcome.Detail + ")"
			}
			emit(Event{Kind: KindActuator, Source: a.Action, Subject: a.Target(), Level: LevelInfo, Message: msg})
		case a.Outcome != nil:
			emit(Event{Kind: KindActuator, Source: a.Action, Subject: a.Target(), Level: LevelError,
				Message: fmt.Sprintf("%s failed after %s: %s", desc, a.Outcome.Duration.Round(time.Millisecond), a.Outcome.Error)})
		}
	}
	for _, ch := range s.inc.observe(rec) {
		lvl, msg := LevelWarn, "incident "+ch.inc.ID+" opened: "+ch.inc.Cause
		if ch.kind == "resolved" {
			lvl, msg = LevelInfo, fmt.Sprintf("incident %s resolved after %s", ch.inc.ID, ch.inc.TimeToRecover.Round(time.Millisecond))
		}
		emit(Event{Kind: KindIncident, Source: "incidents", Subject: ch.inc.Service, Level: lvl, Message: msg})
		msgs = append(msgs, sseMessage("incident", map[string]any{"id": ch.inc.ID, "service": ch.inc.Service, "change": ch.kind}))
	}
	msgs = append(msgs, sseMessage("tick", tickSummary(rec)))
	return msgs
}

// repeated reports whether a suppression or dry run repeats the last one logged for its
// target within repeatEvery, and notes it otherwise.
func (s *Server) repeated(a engine.Action, now time.Time) bool {
	key := a.Verdict + " " + a.Action + " " + a.Target()
	cat := category(a.Why)
	if last, ok := s.repeat[key]; ok && last.category == cat && now.Sub(last.at) < repeatEvery {
		return true
	}
	s.repeat[key] = repeatState{category: cat, at: now}
	if len(s.repeat) > 4096 { // bounded: forget everything old
		for k, v := range s.repeat {
			if now.Sub(v.at) >= repeatEvery {
				delete(s.repeat, k)
			}
		}
	}
	return false
}

// category is the kind of a suppression ("cooldown", "budget", ...): the text before the
// first colon, which leaves out the counters that change every tick.
func category(why string) string {
	c, _, _ := strings.Cut(why, ":")
	return c
}

// TickSummary is the data of a "tick" live-update event.
type TickSummary struct {
	Tick      uint64    `json:"tick"`
	At        time.Time `json:"at"`
	Trigger   string    `json:"trigger"`
	PolicyRev string    `json:"policy_rev"`
	DryRun    bool      `json:"dry_run"`
	Services  int       `json:"services"`
	Unhealthy int       `json:"unhealthy"`
	Decisions int       `json:"decisions"`
	Actions   int       `json:"actions"`
	Err       string    `json:"error,omitempty"`
}

func tickSummary(rec engine.TickRecord) TickSummary {
	t := TickSummary{Tick: rec.Tick, At: rec.At, Trigger: rec.Trigger, PolicyRev: rec.PolicyRev, DryRun: rec.DryRun,
		Decisions: len(rec.Decisions), Err: rec.Err}
	for _, a := range rec.Actions {
		if a.Verdict != engine.VerdictSuppress {
			t.Actions++
		}
	}
	if rec.Facts != nil {
		t.Services = len(rec.Facts.Services)
		for _, svc := range rec.Facts.Services {
			if problem(svc) != "" {
				t.Unhealthy++
			}
		}
	}
	return t
}

// ring is a fixed-size circular buffer.
type ring[T any] struct {
	buf  []T
	head int // next write
	n    int
}

func newRing[T any](size int) ring[T] { return ring[T]{buf: make([]T, size)} }

func (r *ring[T]) push(v T) {
	r.buf[r.head] = v
	r.head = (r.head + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

func (r *ring[T]) len() int { return r.n }

// at returns the i-th newest element (0: the newest).
func (r *ring[T]) at(i int) *T {
	return &r.buf[(r.head-1-i+2*len(r.buf))%len(r.buf)]
}

// newest returns up to limit elements (limit ≤ 0: all) that keep accepts (nil: all),
// newest first.
func (r *ring[T]) newest(limit int, keep func(*T) bool) []T {
	out := []T{}
	for i := 0; i < r.n && (limit <= 0 || len(out) < limit); i++ {
		if v := r.at(i); keep == nil || keep(v) {
			out = append(out, *v)
		}
	}
	return out
}
