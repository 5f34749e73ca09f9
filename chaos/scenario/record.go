package scenario

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/chaos/load"
	"github.com/ares-sre/ares/engine"
)

// Record is everything a run observed; expectations are judged against it alone.
type Record struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Injections in the order they happened.
	Injections []Injected `json:"injections"`
	// Samples of the watched services' replicas (from Docker), in time order.
	Samples []Sample `json:"-"`
	// Actions ARES governed on the watched services during the run (from its API), oldest
	// first: every verdict, admitted, suppressed and dry-run alike.
	Actions []Action `json:"actions"`
	// Memory is ARES's view of the watched services' memory (in percent of the limit, the
	// highest running replica), sampled while the run needs it.
	Memory []MemSample `json:"memory,omitempty"`
	// AresErr is why ARES's API could not be read ("" when it could).
	AresErr string `json:"ares_error,omitempty"`
	// Load is the report of the load steps (nil without one).
	Load *load.Report `json:"load,omitempty"`
	// Timeline is what happened, in order.
	Timeline []Event `json:"timeline"`
}

// Injected is one injected fault.
type Injected struct {
	Name  string      `json:"name"`
	Fault chaos.Fault `json:"fault"`
	// At is taken just before the fault was injected (so it is never after the fault).
	At         time.Time `json:"at"`
	RevertedAt time.Time `json:"reverted_at,omitzero"`
	Targets    []string  `json:"targets,omitempty"`
	Times      int       `json:"times"` // injections (more than 1 with every)
}

// MemSample is the memory of the watched services at one moment: service → percent.
type MemSample struct {
	At      time.Time          `json:"at"`
	Percent map[string]float64 `json:"percent"`
}

// Sample is the state of the watched services' replicas at one moment.
type Sample struct {
	At       time.Time                 `json:"at"`
	Services map[string][]ReplicaState `json:"services"`
}

// ReplicaState is one container of a service.
type ReplicaState struct {
	Name   string `json:"name"`
	State  string `json:"state"`            // running, exited, ...
	Health string `json:"health"`           // healthy, unhealthy, starting, none
	Scaled bool   `json:"scaled,omitempty"` // added by ARES's scale_out (label ares.scaled=true)
	// Requests is the replica's request counter (API requests served since it started), when
	// the observer reads traffic and the replica exports it.
	Requests *float64 `json:"requests,omitempty"`
}

// Action is one governed decision from ARES's API (GET /api/v1/actions).
type Action struct {
	At time.Time `json:"at"`
	Governed
}

// Governed is engine.Action under another name, so that Action.Action is the decision's
// action (restart, ...).
type Governed = engine.Action

// Event is one line of the timeline.
type Event struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

func (a Action) acted() bool {
	return a.Verdict == engine.VerdictAdmit && (a.Outcome == nil || a.Outcome.Result != engine.ResultError)
}

func (a Action) isEscalation() bool {
	return a.Escalation || (a.Action == engine.ActNotify && strings.HasPrefix(a.Reason, "escalation"))
}

func (a Action) outcome() string {
	switch {
	case a.Outcome != nil && a.Outcome.Error != "":
		return a.Outcome.Result + ": " + a.Outcome.Error
	case a.Outcome != nil:
		return a.Outcome.Result
	case a.Why != "":
		return a.Why
	case a.Verdict == engine.VerdictDryRun:
		return "dry run"
	}
	return "no outcome yet"
}

// healthy: every replica of the service runs and none is unhealthy or still starting; a
// service without replicas is not healthy.
func (s *Sample) healthy(service string) bool {
	rs := s.Services[service]
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		if r.State != "running" || (r.Health != "healthy" && r.Health != "none" && r.Health != "") {
			return false
		}
	}
	return true
}

func (s *Sample) running(service string) int {
	n := 0
	for _, r := range s.Services[service] {
		if r.State == "running" {
			n++
		}
	}
	return n
}

// Anchor is when the first fault on service was injected; the first injection when no
// fault targets it; the start of the run without injections.
func (r *Record) Anchor(service string) time.Time {
	for _, in := range r.Injections {
		if in.Fault.Service == service {
			return in.At
		}
	}
	if len(r.Injections) > 0 {
		return r.Injections[0].At
	}
	return r.Start
}

func (r *Record) firstInjected() string {
	if len(r.Injections) > 0 {
		return r.Injections[0].Fault.Service
	}
	return ""
}

// RecoveredAt is when service was healthy again after the fault on it: the first healthy
// sample after the last unhealthy one between the anchor and the next fault on the service
// (or the end). It is the anchor itself when the service was never seen unhealthy. ok is
// false when the service was still unhealthy at the end of that window; why says what was
// seen either way.
func (r *Record) RecoveredAt(service string) (at time.Time, ok bool, why string) {
	at, ok, _, why = r.recovery(service)
	return at, ok, why
}

// recovery is RecoveredAt, and whether the service was seen down or unhealthy at all.
func (r *Record) recovery(service string) (at time.Time, ok, wasDown bool, why string) {
	anchor := r.Anchor(service)
	end := r.End
	for _, in := range r.Injections {
		if in.Fault.Service == service && in.At.After(anchor) {
			end = in.At
			break
		}
	}
	var lastBad, firstBad *Sample
	var after *Sample
	n := 0
	for i := range r.Samples {
		s := &r.Samples[i]
		if s.At.Before(anchor) || s.At.After(end) {
			continue
		}
		n++
		if !s.healthy(service) {
			if firstBad == nil {
				firstBad = s
			}
			lastBad, after = s, nil
		} else if lastBad != nil && after == nil {
			after = s
		}
	}
	switch {
	case n == 0:
		return time.Time{}, false, false, "no observation of " + service + " after the injection"
	case lastBad == nil:
		return anchor, true, false, "never seen unhealthy"
	case after == nil:
		return time.Time{}, false, true, fmt.Sprintf("still unhealthy at the end: %s", describe(lastBad.Services[service]))
	}
	return after.At, true, true, fmt.Sprintf("down or unhealthy from %s to %s", round(firstBad.At.Sub(anchor)), round(lastBad.At.Sub(anchor)))
}

func describe(rs []ReplicaState) string {
	if len(rs) == 0 {
		return "no replica"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Name + " " + r.State
		if r.Health != "" && r.Health != "none" {
			parts[i] += " " + r.Health
		}
	}
	return strings.Join(parts, ", ")
}

func (r *Record) maxRunning(service string) int {
	m := 0
	for i := range r.Samples {
		m = max(m, r.Samples[i].running(service))
	}
	return m
}

// summary says what ARES did on service, for failure details.
func (r *Record) summary(service string) string {
	var parts []string
	for _, a := range r.Actions {
		if a.Service == service {
			parts = append(parts, a.Verdict+" "+a.Action)
		}
	}
	if len(parts) == 0 {
		return "governed nothing on it"
	}
	return "governed: " + strings.Join(uniq(parts), ", ")
}

// TimeToDetect is from the fault on service to ARES's first decision on it (any verdict).
func (r *Record) TimeToDetect(service string) (time.Duration, bool) {
	anchor := r.Anchor(service)
	for _, a := range r.Actions {
		if a.Service == service && !a.At.Before(anchor) {
			return a.At.Sub(anchor), true
		}
	}
	return 0, false
}

// TimeToRecover is from the fault on service to it being healthy again.
func (r *Record) TimeToRecover(service string) (time.Duration, bool) {
	at, ok, _ := r.RecoveredAt(service)
	if !ok {
		return 0, false
	}
	return at.Sub(r.Anchor(service)), true
}

// ActionsTaken lists ARES's decisions on the watched services with their verdicts,
// oldest first.
func (r *Record) ActionsTaken() []Action {
	out := append([]Action(nil), r.Actions...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// newTraffic: a replica ARES added to service (scaled) served API requests: its counter grew
// between two samples.
func (r *Record) newTraffic(service string) (bool, string) {
	first := map[string]float64{}
	best, bestName, scaled := 0.0, "", 0
	for i := range r.Samples {
		for _, rs := range r.Samples[i].Services[service] {
			if !rs.Scaled {
				continue
			}
			if _, seen := first[rs.Name]; !seen {
				scaled++
			}
			if rs.Requests == nil {
				if _, seen := first[rs.Name]; !seen {
					first[rs.Name] = -1
				}
				continue
			}
			f, seen := first[rs.Name]
			if !seen || f < 0 {
				first[rs.Name] = *rs.Requests
				continue
			}
			if d := *rs.Requests - f; d > best {
				best, bestName = d, rs.Name
			}
		}
	}
	switch {
	case scaled == 0:
		return false, "no replica of " + service + " added by ARES was seen"
	case best == 0:
		return false, fmt.Sprintf("%d replicas added by ARES, none seen serving requests (their request counters did not grow, or could not be read)", scaled)
	}
	return true, fmt.Sprintf("%s served %.0f requests while observed", bestName, best)
}
