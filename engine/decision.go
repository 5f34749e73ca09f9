package engine

import (
	"fmt"
	"time"
)

// Action kinds a policy may decide.
const (
	ActRestart  = "restart"
	ActRecycle  = "recycle"
	ActScaleOut = "scale_out"
	ActScaleIn  = "scale_in"
	ActNotify   = "notify"
)

// KnownActions lists every action kind in precedence order (highest first): where two rules
// pick different actions for the same target, the earlier one wins (recycle over restart).
var KnownActions = []string{ActRecycle, ActRestart, ActScaleOut, ActScaleIn, ActNotify}

// Decision is one element of the policy's decision set.
type Decision struct {
	Action  string `json:"action"`
	Service string `json:"service"`
	Replica string `json:"replica,omitempty"` // replica (container) name; empty for service-level actions
	Reason  string `json:"reason"`
}

// Target is what a decision acts on: "service/replica" or "service".
func (d Decision) Target() string {
	if d.Replica == "" {
		return d.Service
	}
	return d.Service + "/" + d.Replica
}

// Validate reports why a decision must not be executed.
func (d Decision) Validate() error {
	known := false
	for _, a := range KnownActions {
		if d.Action == a {
			known = true
			break
		}
	}
	switch {
	case d.Action == "":
		return fmt.Errorf("missing field \"action\"")
	case !known:
		return fmt.Errorf("unknown action %q (want one of %v)", d.Action, KnownActions)
	case d.Service == "":
		return fmt.Errorf("missing field \"service\"")
	case d.Reason == "":
		return fmt.Errorf("missing field \"reason\"")
	case (d.Action == ActScaleOut || d.Action == ActScaleIn) && d.Replica != "":
		return fmt.Errorf("action %q is service-level and takes no \"replica\" (got %q)", d.Action, d.Replica)
	}
	return nil
}

// Rank is the action's precedence: lower wins.
func Rank(action string) int {
	for i, a := range KnownActions {
		if a == action {
			return i
		}
	}
	return len(KnownActions)
}

// RejectedDecision is a policy result that failed validation: logged, counted, never executed.
type RejectedDecision struct {
	Raw   string `json:"raw"`
	Error string `json:"error"`
}

// Action is a decision after the governor looked at it.
type Action struct {
	Decision
	// Sensed is the target replica as this tick's facts saw it (nil for service-level
	// actions or a replica the facts do not hold): actuators may act on its container id
	// without reading it again when the daemon itself re-checks the state atomically.
	Sensed *SensedReplica `json:"sensed,omitempty"`
	// Verdict is "admit", "dry_run" or "suppress"; Why explains a suppression.
	Verdict string   `json:"verdict"`
	Why     string   `json:"why,omitempty"`
	Outcome *Outcome `json:"outcome,omitempty"`
}

// SensedReplica identifies the container a replica-level decision was made about.
type SensedReplica struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// Governor verdicts.
const (
	VerdictAdmit    = "admit"
	VerdictDryRun   = "dry_run"
	VerdictSuppress = "suppress"
)

// Admitted reports whether the action should be carried out.
func (a Action) Admitted() bool { return a.Verdict == VerdictAdmit }

// Outcome is what an actuator did.
type Outcome struct {
	Result   string        `json:"result"` // ok|error
	Error    string        `json:"error,omitempty"`
	Detail   string        `json:"detail,omitempty"` // e.g. the new container id of a recycle
	Duration time.Duration `json:"duration_ns"`
}

// Outcome results.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// TickRecord is everything one tick saw, decided and did. The journal stores it.
type TickRecord struct {
	Tick      uint64             `json:"tick"`
	At        time.Time          `json:"at"`
	Trigger   string             `json:"trigger"` // interval|event:<type>|once
	DryRun    bool               `json:"dry_run"`
	PolicyRev string             `json:"policy_rev"`
	Facts     *Facts             `json:"facts"`
	Decisions []Decision         `json:"decisions"`
	Rejected  []RejectedDecision `json:"rejected,omitempty"`
	Actions   []Action           `json:"actions"`
	Err       string             `json:"error,omitempty"`
	Duration  time.Duration      `json:"duration_ns"`
}
