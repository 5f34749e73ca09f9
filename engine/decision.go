package engine

import (
	"errors"
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
	// ActDrain takes a swarm node out of scheduling (availability drain): node-level, it
	// names a node instead of a service, and the default policy data requires approval.
	ActDrain = "drain"
)

// KnownActions lists every action kind in precedence order (highest first): where two rules
// pick different actions for the same target, the earlier one wins (recycle over restart).
var KnownActions = []string{ActRecycle, ActRestart, ActScaleOut, ActScaleIn, ActDrain, ActNotify}

// NodeLevel reports whether action acts on a node (field "node") rather than a service.
func NodeLevel(action string) bool { return action == ActDrain }

// Decision is one element of the policy's decision set.
type Decision struct {
	Action  string `json:"action"`
	Service string `json:"service"`
	Replica string `json:"replica,omitempty"` // replica (container) name; empty for service-level actions
	// Node is the swarm node id (or unique hostname) a node-level action (drain) acts on;
	// such a decision names no service and no replica.
	Node   string `json:"node,omitempty"`
	Reason string `json:"reason"`
}

// Target is what a decision acts on: "service/replica", "service", or "node/<node>" for a
// node-level action.
func (d Decision) Target() string {
	if d.Node != "" {
		return "node/" + d.Node
	}
	if d.Replica == "" {
		return d.Service
	}
	return d.Service + "/" + d.Replica
}

// Scope is what the governor's cooldown and budget and the engine's one-action-at-a-time
// rule count against: the service, or "node/<node>" for a node-level action.
func (d Decision) Scope() string {
	if d.Node != "" {
		return "node/" + d.Node
	}
	return d.Service
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
	case NodeLevel(d.Action) && d.Node == "":
		return fmt.Errorf("missing field \"node\": action %q is node-level", d.Action)
	case NodeLevel(d.Action) && (d.Service != "" || d.Replica != ""):
		return fmt.Errorf("action %q is node-level and takes no \"service\" or \"replica\" (got service %q, replica %q)", d.Action, d.Service, d.Replica)
	case NodeLevel(d.Action) && d.Reason == "":
		return fmt.Errorf("missing field \"reason\"")
	case NodeLevel(d.Action):
		return nil
	case d.Node != "":
		return fmt.Errorf("action %q takes no \"node\" (got %q): only %v are node-level", d.Action, d.Node, []string{ActDrain})
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
	// From is the policy's decision when the governor moved it up the escalation ladder
	// (a restart that did not cure the fault becomes a recycle); nil when it did not.
	From *Decision `json:"from,omitempty"`
	// Escalation marks the governor's notification that hands a service to a person: its
	// incident is marked needs_human and automation for the service pauses.
	Escalation bool `json:"escalation,omitempty"`
	// Approval is the id of the approval this action waits for (verdict suppress) or was
	// granted by (verdict admit); empty when the action needs none.
	Approval string `json:"approval,omitempty"`
}

// Decided is the policy's decision this action came from: From when the governor moved it up
// the ladder, else the action's own decision. The journal files the action under it.
func (a Action) Decided() Decision {
	if a.From != nil {
		return *a.From
	}
	return a.Decision
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

// Approval is an action that policy data marks approval: required, waiting for a person.
type Approval struct {
	ID       string    `json:"id"`
	Decision Decision  `json:"decision"`
	Status   string    `json:"status"` // pending|approved|rejected|expired|done
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	// DecidedBy, DecidedAt and Note say who approved or rejected it, when and why.
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Note      string    `json:"note,omitempty"`
}

// Approval errors: the API answers 404 and 409 with them.
var (
	ErrUnknownApproval = errors.New("no such approval")
	ErrApprovalClosed  = errors.New("approval is no longer pending")
)

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved" // approved, not carried out yet (the governor may still hold it back)
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
	ApprovalDone     = "done" // approved and admitted
)

// Rules is what a policy's data tells the governor (data.ares.ladder, data.ares.approval;
// docs/policies.md): the escalation ladder and which actions wait for a person's approval.
type Rules struct {
	// Ladder is the order in which fixes are tried on a service when the previous one did not
	// cure it; nil: no ladder (the policy's decision always stands).
	Ladder []string `json:"ladder"`
	// Approval maps a service ("" for every service) to the actions that need approval there.
	Approval map[string]map[string]bool `json:"approval"`
}

// NeedsApproval reports whether action on service waits for a person's approval: a per
// service entry overrides the default.
func (r Rules) NeedsApproval(service, action string) bool {
	if m, ok := r.Approval[service]; ok {
		if v, ok := m[action]; ok {
			return v
		}
	}
	return r.Approval[""][action]
}

// RulesSource is implemented by evaluators whose policy data holds Rules.
type RulesSource interface {
	Rules() Rules
}

// RulesTaker is implemented by governors that follow Rules; the engine hands them the live
// revision's rules every tick, before Admit.
type RulesTaker interface {
	SetRules(r Rules)
}
