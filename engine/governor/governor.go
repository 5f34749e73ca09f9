// Package governor stands between the policy's decisions and the actuators: the brakes that keep
// autonomous healing from turning into a restart storm. For every decision it gives a verdict
// (admit, dry_run, or suppress with the reason), in this order:
//
//  0. pause: nothing is carried out for a paused service, or anywhere under a global pause
//     (the kill switch), until resumed or the pause expires;
//     Nor on a replica a person labelled ares.paused=true (operators win);
//  1. cooldown: no action on a service within Cooldown of the previous one;
//  2. budget: at most Budget actions per service per BudgetWindow;
//  3. crash-loop back-off: a replica restarted or recycled k times waits
//     min(BackoffInitial·2^(k-1), BackoffMax) after the last time before the next, and the count
//     resets once the replica has run BackoffReset without trouble (Kubernetes' constants);
//  4. blast radius: at most MaxUnavailable replica actions per service per tick, and no restart
//     or recycle of a running replica while MaxUnavailable replicas of its service are already
//     down (which also protects the last healthy replica).
//
// Operators win: a replica a person stopped or killed through the Docker API
// (replica.stopped_by_operator) is left alone until it is started again, unless
// IgnoreOperatorStop.
//
// Escalation: a decision held back because the budget is spent, or because a replica still
// crashes after two restarts at the back-off cap, turns into one notification for a human, and
// automation for that service pauses for EscalationPause (or until resumed). The notification
// is marked as an escalation, so that the journal marks the incident needs_human.
//
// Closed loop: after an action (restart, recycle, scale_out) the governor watches its target
// until it is healthy (running, and healthy by its health check or, without one, still running
// Settle after the action), or seen down or unhealthy again (at least verifyGrace after the
// action), or VerifyTimeout passes; with a ladder in the policy data no other fix on the service
// is admitted meanwhile. A fix that did not cure the service moves it one rung up the
// escalation ladder of the policy data (engine.Rules.Ladder, by default
// restart → recycle → scale_out → notify): the next fix the policy decides is carried out as
// the next rung instead of repeating what failed; the last rung, notify, is an escalation. A
// cured service, or one healthy again by itself, goes back to the bottom of the ladder.
//
// Approval gate: an action that the policy data marks approval: required
// (engine.Rules.NeedsApproval) and passes every check waits as a pending approval (verdict
// suppress) until a person approves it (Decide), which lets the next decision for the same
// action and target through the checks again; rejected, or not approved within ApprovalTTL,
// it never runs.
//
// Node-level actions (drain, runtime: swarm) count their cooldown and budget against the node
// ("node/<id>"), never escalate, and have their own blast radius (node.go): the node must be in
// the facts and not drained already, at most MaxUnavailable nodes are drained per tick, and
// never the last ready, active node.
//
// Under --dry-run the same checks run, so the printout shows what the governor would hold back;
// what would pass gets the dry_run verdict and nothing is recorded.
//
// What the governor knows flows back into the facts as each service's history, so that
// policies can reason about it too.
package governor

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ares-sre/ares/engine"
)

// HistoryCap is the value of history.seconds_since_last_action when ARES has not acted on a
// service in that long (or ever): one day.
const HistoryCap = 86400

// Window is the span of history.actions_10m.
const Window = 10 * time.Minute

// Options are the governor's limits. Zero fields take the defaults of Default().
type Options struct {
	Cooldown       time.Duration
	Budget         int
	BudgetWindow   time.Duration
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	BackoffReset   time.Duration
	MaxUnavailable int
	// EscalationPause is how long automation stays paused for a service whose budget is spent
	// or whose replica's back-off reached its cap, after one notification to a human.
	EscalationPause time.Duration
	// VerifyTimeout is how long the governor waits for an action's target to be healthy
	// before it counts the fix as failed and moves the service up the escalation ladder.
	VerifyTimeout time.Duration
	// Settle is how long a replica without a health check must keep running after an action
	// to count as cured; default VerifyTimeout/4, at most 10s.
	Settle time.Duration
	// ApprovalTTL is how long an action waits for approval (and, once approved, to be carried
	// out) before it expires.
	ApprovalTTL time.Duration
	// IgnoreOperatorStop lets actions through on replicas a person stopped (not the default:
	// operators win).
	IgnoreOperatorStop bool
}

// Default returns the governor's default limits.
func Default() Options {
	return Options{Cooldown: 60 * time.Second, Budget: 5, BudgetWindow: 10 * time.Minute,
		BackoffInitial: 10 * time.Second, BackoffMax: 5 * time.Minute, BackoffReset: 10 * time.Minute,
		MaxUnavailable: 1, EscalationPause: 30 * time.Minute, VerifyTimeout: 60 * time.Second,
		Settle: 10 * time.Second, ApprovalTTL: 15 * time.Minute}
}

func (o Options) withDefaults() Options {
	d := Default()
	if o.Cooldown <= 0 {
		o.Cooldown = d.Cooldown
	}
	if o.Budget <= 0 {
		o.Budget = d.Budget
	}
	if o.BudgetWindow <= 0 {
		o.BudgetWindow = d.BudgetWindow
	}
	if o.BackoffInitial <= 0 {
		o.BackoffInitial = d.BackoffInitial
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = d.BackoffMax
	}
	if o.BackoffReset <= 0 {
		o.BackoffReset = d.BackoffReset
	}
	if o.MaxUnavailable <= 0 {
		o.MaxUnavailable = d.MaxUnavailable
	}
	if o.EscalationPause <= 0 {
		o.EscalationPause = d.EscalationPause
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = d.VerifyTimeout
	}
	if o.Settle <= 0 {
		o.Settle = min(o.VerifyTimeout/4, d.Settle)
	}
	if o.ApprovalTTL <= 0 {
		o.ApprovalTTL = d.ApprovalTTL
	}
	return o
}

// Governor records what ARES did and admits decisions. It is safe for concurrent use.
type Governor struct {
	opt Options

	mu       sync.Mutex
	svcs     map[string]*serviceState
	reps     map[string]*replicaState // "service/replica"
	paused   map[string]time.Time     // service ("" for all) → until (zero: until resumed)
	notified map[string]time.Time     // target → last notification
	rules    engine.Rules
	appr     map[string]*engine.Approval // by id
	rejected map[string]*engine.Approval // by approvalKey, until it expires
}

type serviceState struct {
	actions []time.Time // oldest first, pruned to max(Window, BudgetWindow)
	last    time.Time

	ladder   int           // failed fixes in a row: the rung of the next fix
	verify   *verification // the last fix, until verified or timed out
	verified *bool         // outcome of the last verification
}

// verification is a fix the governor watches.
type verification struct {
	action   string
	replica  string // "" for a service-level action
	at       time.Time
	deadline time.Time
}

type replicaState struct {
	restarts    int       // restarts and recycles since the replica was last stable
	lastRestart time.Time // the last of them
	stableSince time.Time // running and not unhealthy since; zero while down
}

var _ engine.Governor = (*Governor)(nil)

// New returns a governor with no history.
func New(opt Options) *Governor {
	return &Governor{opt: opt.withDefaults(), svcs: map[string]*serviceState{}, reps: map[string]*replicaState{},
		paused: map[string]time.Time{}, notified: map[string]time.Time{}, appr: map[string]*engine.Approval{},
		rejected: map[string]*engine.Approval{}}
}

func (g *Governor) service(name string) *serviceState {
	s := g.svcs[name]
	if s == nil {
		s = &serviceState{}
		g.svcs[name] = s
	}
	return s
}

// Pause stops actions on service ("" for every service) until until (zero: until Resume).
// Decisions are still computed and shown, with the verdict suppress.
func (g *Governor) Pause(service string, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.paused[service] = until
}

// Resume lifts a pause of service ("" for the global pause).
func (g *Governor) Resume(service string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.paused, service)
}

// Paused returns the pauses in force at now: service ("" for all) → until (zero: indefinitely).
func (g *Governor) Paused(now time.Time) map[string]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]time.Time{}
	for s, until := range g.paused {
		if until.IsZero() || until.After(now) {
			out[s] = until
		}
	}
	return out
}

// pausedWhy says why actions on service are paused at now, or "".
func (g *Governor) pausedWhy(service string, now time.Time) string {
	for _, s := range []string{"", service} {
		until, ok := g.paused[s]
		if !ok {
			continue
		}
		if !until.IsZero() && !until.After(now) {
			delete(g.paused, s) // expired
			continue
		}
		who := "automation"
		if s != "" {
			who = "automation for " + s
		}
		if until.IsZero() {
			return who + " is paused until resumed"
		}
		return fmt.Sprintf("%s is paused until %s", who, until.UTC().Format(time.RFC3339))
	}
	return ""
}

// Annotate writes each service's history into the facts and follows each replica's stability
// for the crash-loop back-off.
func (g *Governor) Annotate(f *engine.Facts, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireApprovals(now)
	var pending map[string]int // service → its pending approvals, counted once per tick
	for _, ap := range g.appr {
		if ap.Status == engine.ApprovalPending {
			if pending == nil {
				pending = map[string]int{}
			}
			pending[ap.Decision.Service]++
		}
	}
	for name, s := range f.Services {
		st := g.svcs[name]
		h := &engine.History{SecondsSinceLastAction: HistoryCap, Paused: g.pausedWhy(name, now) != "", PendingApprovals: pending[name]}
		if st != nil {
			g.verifyFix(st, s, now)
			h.LadderStep, h.LastActionVerified, h.Verifying = st.ladder, st.verified, st.verify != nil
			g.prune(st, now)
			if since := now.Sub(st.last).Seconds(); !st.last.IsZero() && since < HistoryCap {
				h.SecondsSinceLastAction = max(since, 0)
				at := st.last.UTC()
				h.LastActionAt = &at
			}
			for _, t := range st.actions {
				if now.Sub(t) <= Window {
					h.Actions10m++
				}
			}
		}
		for i := range s.Replicas {
			r := &s.Replicas[i]
			rs := g.reps[name+"/"+r.Name]
			if rs == nil {
				continue
			}
			if r.State == "running" && r.Health != "unhealthy" {
				if rs.stableSince.IsZero() {
					rs.stableSince = now
				}
				if now.Sub(rs.stableSince) >= g.opt.BackoffReset {
					delete(g.reps, name+"/"+r.Name) // stable: the back-off starts afresh
					continue
				}
			} else {
				rs.stableSince = time.Time{}
			}
			if until := g.backoffUntil(rs); until.After(now) && (h.BackoffUntil == nil || until.After(*h.BackoffUntil)) {
				u := until.UTC()
				h.BackoffUntil = &u
			}
		}
		s.History = h
	}
}

// backoffAtCap is how many restarts at the back-off cap a replica gets before the governor
// gives up on it and escalates.
const backoffAtCap = 2

// restartsToCap is the number of restarts after which the back-off delay reaches its cap.
func (g *Governor) restartsToCap() int {
	k, d := 1, g.opt.BackoffInitial
	for d < g.opt.BackoffMax {
		d *= 2
		k++
	}
	return k
}

// backoffUntil is when the replica may next be restarted.
func (g *Governor) backoffUntil(rs *replicaState) time.Time {
	if rs.restarts == 0 {
		return time.Time{}
	}
	d := g.opt.BackoffInitial
	for i := 1; i < rs.restarts && d < g.opt.BackoffMax; i++ {
		d *= 2
	}
	return rs.lastRestart.Add(min(d, g.opt.BackoffMax))
}

// Admit gives each decision a verdict; see the package documentation for the checks.
func (g *Governor) Admit(ds []engine.Decision, f *engine.Facts, now time.Time, dryRun bool) []engine.Action {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]engine.Action, 0, len(ds))
	targets := map[string]bool{}
	replicaActs := map[string]int{} // per service, admitted this tick
	var escalations []engine.Action
	g.expireApprovals(now)
	for _, d := range ds {
		a := engine.Action{Decision: d}
		if moved, ok := g.climb(d); ok {
			from := d
			a.Decision, a.From, d = moved, &from, moved
			a.Escalation = d.Action == engine.ActNotify // the ladder's last rung: a person
		}
		why := g.check(d, f, now, targets, replicaActs)
		if why == "" && g.rules.NeedsApproval(d.Service, d.Action) {
			why, a.Approval = g.gate(d, now, dryRun)
		}
		if why != "" {
			a.Verdict, a.Why = engine.VerdictSuppress, why
			if esc, ok := g.escalate(d, why, now, dryRun); ok {
				escalations = append(escalations, esc)
			}
		} else {
			a.Verdict = engine.VerdictAdmit
			if dryRun {
				a.Verdict = engine.VerdictDryRun
			}
			targets[d.Target()] = true
			if d.Replica != "" {
				replicaActs[d.Service]++
			}
			if a.Escalation {
				until := now.Add(g.opt.EscalationPause)
				a.Reason = fmt.Sprintf("escalation: the escalation ladder is exhausted: %d fixes in a row did not cure %s; automation for %s paused until %s: needs a human (%s)",
					g.svcs[d.Service].ladder, d.Service, d.Service, until.UTC().Format(time.RFC3339), a.From.Reason)
				if !dryRun {
					g.paused[d.Service] = until
				}
			}
		}
		out = append(out, a)
	}
	return append(out, escalations...)
}

// climb moves a decision up the service's escalation ladder when earlier fixes did not cure
// it: a decision for an action on the ladder below the service's rung becomes the rung's
// action (a recycle needs a replica, so a service-level decision skips that rung; a
// scale_out is service-level). Decisions for actions off the ladder stand.
func (g *Governor) climb(d engine.Decision) (engine.Decision, bool) {
	st, lad := g.svcs[d.Service], g.rules.Ladder
	if engine.NodeLevel(d.Action) || st == nil || st.ladder == 0 || len(lad) == 0 || d.Action == engine.ActNotify || d.Action == engine.ActScaleIn {
		return d, false
	}
	cur := slices.Index(lad, d.Action)
	if cur < 0 {
		return d, false
	}
	step := min(st.ladder, len(lad)-1)
	for step < len(lad)-1 && lad[step] == engine.ActRecycle && d.Replica == "" {
		step++
	}
	if cur >= step || (lad[step] == engine.ActRecycle && d.Replica == "") {
		return d, false
	}
	n := d
	n.Action = lad[step]
	if n.Action == engine.ActScaleOut {
		n.Replica = ""
	}
	n.Reason = fmt.Sprintf("escalation ladder: %d fix(es) in a row did not cure %s, so %s instead of %s (%s)",
		st.ladder, d.Service, n.Action, d.Action, d.Reason)
	return n, true
}

// verifyFix follows the last fix on a service: cured (its target healthy) puts the service
// back at the bottom of the ladder, still not cured at the verification timeout moves it one
// rung up. A service healthy again with no fix being verified also goes back to the bottom.
func (g *Governor) verifyFix(st *serviceState, s *engine.Service, now time.Time) {
	v := st.verify
	if v == nil {
		if st.ladder > 0 && g.serviceCured(s, time.Time{}, now) {
			st.ladder = 0
		}
		return
	}
	cured, bad := false, false
	if v.replica != "" {
		found := false
		for i := range s.Replicas {
			if r := &s.Replicas[i]; r.Name == v.replica {
				cured, bad, found = g.cured(r, v.at, now), failing(r), true
			}
		}
		if !found && now.Sub(v.at) >= verifyGrace { // replaced under a new name (a Kubernetes pod): the service tells
			cured = g.serviceCured(s, v.at, now)
		}
	} else {
		cured = g.serviceCured(s, v.at, now)
		for i := range s.Replicas {
			bad = bad || failing(&s.Replicas[i])
		}
	}
	switch {
	case cured:
		ok := true
		st.verified, st.verify, st.ladder = &ok, nil, 0
	case !now.Before(v.deadline) || (bad && now.Sub(v.at) >= verifyGrace):
		failed := false
		st.verified, st.verify = &failed, nil
		if n := len(g.rules.Ladder); n > 0 {
			st.ladder = min(st.ladder+1, n-1)
		}
	}
}

// verifyGrace is how long after an action a target seen down or unhealthy counts as not cured
// before the verification timeout: long enough for the sensor to have seen the action.
const verifyGrace = 2 * time.Second

// failing: down, or unhealthy by its health check (which a restart resets to starting).
func failing(r *engine.Replica) bool {
	return (r.State != "running" && r.State != "restarting" && r.State != "created") || r.Health == "unhealthy"
}

func (g *Governor) serviceCured(s *engine.Service, since, now time.Time) bool {
	if len(s.Replicas) == 0 {
		return false
	}
	for i := range s.Replicas {
		if !g.cured(&s.Replicas[i], since, now) {
			return false
		}
	}
	return true
}

// cured: running, and healthy by its health check, or without one still running Settle after
// the fix.
func (g *Governor) cured(r *engine.Replica, since, now time.Time) bool {
	if r.State != "running" {
		return false
	}
	switch r.Health {
	case "healthy":
		return true
	case "none", "":
		return now.Sub(since) >= g.opt.Settle
	}
	return false
}

// SetRules takes the live policy revision's rules (ladder and approvals).
func (g *Governor) SetRules(r engine.Rules) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rules = r
}

var _ engine.RulesTaker = (*Governor)(nil)

// escalate turns a decision held back because the service's budget is spent, or because a
// replica's back-off reached its cap, into one notification for a human, and pauses automation
// for the service for EscalationPause: automation that cannot fix a problem stops trying and
// says so, once. Under --dry-run it only shows what it would do.
func (g *Governor) escalate(d engine.Decision, why string, now time.Time, dryRun bool) (engine.Action, bool) {
	exhausted := strings.HasPrefix(why, "budget:")
	if rs := g.reps[d.Target()]; !exhausted && rs != nil && strings.HasPrefix(why, "crash-loop back-off:") {
		exhausted = rs.restarts >= g.restartsToCap()+backoffAtCap
	}
	if !exhausted || d.Action == engine.ActNotify || engine.NodeLevel(d.Action) {
		// A node-level action held back is only suppressed: its notification would name no
		// service, and its pause would be the global one.
		return engine.Action{}, false
	}
	until := now.Add(g.opt.EscalationPause)
	n := engine.Action{Decision: engine.Decision{Action: engine.ActNotify, Service: d.Service, Replica: d.Replica,
		Reason: fmt.Sprintf("escalation: %s; automation for %s paused until %s: needs a human (held back: %s %s)",
			why, d.Service, until.UTC().Format(time.RFC3339), d.Action, d.Target())}, Verdict: engine.VerdictAdmit, Escalation: true}
	if dryRun {
		n.Verdict = engine.VerdictDryRun
		return n, true
	}
	g.paused[d.Service] = until
	return n, true
}

func (g *Governor) check(d engine.Decision, f *engine.Facts, now time.Time, targets map[string]bool, replicaActs map[string]int) string {
	if targets[d.Target()] {
		return "another action on " + d.Target() + " this tick"
	}
	if why := g.pausedWhy(d.Scope(), now); why != "" {
		return why
	}
	if d.Action == engine.ActNotify {
		// A notification changes nothing: it neither waits for nor starts the service's
		// cooldown, budget or back-off, but the same target is told at most once per cooldown.
		if at, ok := g.notified[d.Target()]; ok && now.Sub(at) < g.opt.Cooldown {
			return fmt.Sprintf("already notified about %s %s ago (cooldown %s)", d.Target(), now.Sub(at).Round(time.Second), g.opt.Cooldown)
		}
		return ""
	}
	if st := g.svcs[d.Scope()]; st != nil {
		g.prune(st, now)
		if since := now.Sub(st.last); !st.last.IsZero() && since < g.opt.Cooldown {
			return fmt.Sprintf("cooldown: last action on %s %s ago (cooldown %s)", d.Scope(), since.Round(time.Second), g.opt.Cooldown)
		}
		n := 0
		for _, t := range st.actions {
			if now.Sub(t) <= g.opt.BudgetWindow {
				n++
			}
		}
		if n >= g.opt.Budget {
			return fmt.Sprintf("budget: %d actions on %s in the last %s (budget %d)", n, d.Scope(), g.opt.BudgetWindow, g.opt.Budget)
		}
	}
	if engine.NodeLevel(d.Action) {
		return g.checkNode(d, f, targets)
	}
	if st := g.svcs[d.Service]; st != nil && st.verify != nil && len(g.rules.Ladder) > 0 {
		// One fix at a time: the last one is given until it cures the service or fails.
		v := st.verify
		what := d.Service
		if v.replica != "" {
			what = d.Service + "/" + v.replica
		}
		return fmt.Sprintf("verifying: the %s of %s at %s has until %s to cure it (governor.verify_timeout)",
			v.action, what, v.at.UTC().Format(time.RFC3339), v.deadline.UTC().Format(time.RFC3339))
	}
	if why := labelledPaused(d, f); why != "" {
		return why
	}
	if why := operatorStopped(d, f); why != "" && !g.opt.IgnoreOperatorStop {
		return why
	}
	if d.Replica == "" || d.Action == engine.ActNotify {
		return ""
	}
	if rs := g.reps[d.Target()]; rs != nil && (d.Action == engine.ActRestart || d.Action == engine.ActRecycle) {
		if until := g.backoffUntil(rs); until.After(now) {
			return fmt.Sprintf("crash-loop back-off: %s was restarted %d times, next not before %s (in %s)",
				d.Replica, rs.restarts, until.UTC().Format(time.RFC3339), until.Sub(now).Round(time.Second))
		}
	}
	if replicaActs[d.Service] >= g.opt.MaxUnavailable {
		return fmt.Sprintf("blast radius: already acting on %d replica(s) of %s this tick (max_unavailable %d)",
			replicaActs[d.Service], d.Service, g.opt.MaxUnavailable)
	}
	if s := f.Services[d.Service]; s != nil {
		if r := f.Replica(d.Service, d.Replica); r != nil && r.State == "running" && r.Health != "unhealthy" {
			down := 0
			for _, o := range s.Replicas {
				if o.State != "running" || o.Health == "unhealthy" {
					down++
				}
			}
			if down >= g.opt.MaxUnavailable {
				return fmt.Sprintf("blast radius: %d replica(s) of %s already down; %s is serving (max_unavailable %d)",
					down, d.Service, d.Replica, g.opt.MaxUnavailable)
			}
		}
	}
	return ""
}

// labelledPaused holds back an action on a replica a person labelled ares.paused=true, and a
// service-level restart of a service that has one: operators win.
func labelledPaused(d engine.Decision, f *engine.Facts) string {
	if d.Action == engine.ActNotify || f == nil {
		return ""
	}
	if d.Replica != "" {
		if r := f.Replica(d.Service, d.Replica); r != nil && r.Paused {
			return d.Replica + " is labelled ares.paused=true: left alone"
		}
		return ""
	}
	if d.Action != engine.ActRestart {
		return ""
	}
	if s := f.Services[d.Service]; s != nil {
		for _, r := range s.Replicas {
			if r.Paused {
				return "a service-level restart would touch " + r.Name + ", labelled ares.paused=true"
			}
		}
	}
	return ""
}

// operatorStopped holds back an action on a replica a person stopped, and a service-level
// restart that would start it again: operators win.
func operatorStopped(d engine.Decision, f *engine.Facts) string {
	if d.Action == engine.ActNotify || f == nil {
		return ""
	}
	if d.Replica != "" {
		if r := f.Replica(d.Service, d.Replica); r != nil && r.StoppedByOperator {
			return "stopped by an operator: " + d.Replica + " is left alone until it is started again"
		}
		return ""
	}
	if d.Action != engine.ActRestart {
		return ""
	}
	if s := f.Services[d.Service]; s != nil {
		for _, r := range s.Replicas {
			if r.StoppedByOperator {
				return "stopped by an operator: a service-level restart would start " + r.Name + " again"
			}
		}
	}
	return ""
}

// Done records an action that an actuator carried out, whatever its result: a failed attempt
// still counts against the cooldown, the budget and the back-off, so a broken actuator or a
// fault that a restart does not cure never loops. A notification only starts its own
// cooldown: telling a human never holds back a repair.
func (g *Governor) Done(a engine.Action, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a.Action == engine.ActNotify {
		g.notified[a.Target()] = now
		for t, at := range g.notified { // bounded: forget what the cooldown no longer needs
			if now.Sub(at) > g.opt.Cooldown {
				delete(g.notified, t)
			}
		}
		return
	}
	st := g.service(a.Scope())
	st.actions = append(st.actions, now)
	st.last = now
	g.prune(st, now)
	if ap := g.appr[a.Approval]; ap != nil && ap.Status == engine.ApprovalApproved {
		ap.Status = engine.ApprovalDone
	}
	if a.Action == engine.ActRestart || a.Action == engine.ActRecycle || a.Action == engine.ActScaleOut {
		st.verify = &verification{action: a.Action, replica: a.Replica, at: now, deadline: now.Add(g.opt.VerifyTimeout)}
		st.verified = nil
	}
	if a.Replica != "" && (a.Action == engine.ActRestart || a.Action == engine.ActRecycle) {
		rs := g.reps[a.Target()]
		if rs == nil {
			rs = &replicaState{}
			g.reps[a.Target()] = rs
		}
		rs.restarts++
		rs.lastRestart = now
		rs.stableSince = time.Time{}
	}
}

func (g *Governor) prune(st *serviceState, now time.Time) {
	keep := max(Window, g.opt.BudgetWindow)
	i := 0
	for i < len(st.actions) && now.Sub(st.actions[i]) > keep {
		i++
	}
	st.actions = st.actions[i:]
}
