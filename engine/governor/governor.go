// Package governor stands between the policy's decisions and the actuators. This first version
// keeps the action history that flows back into the facts (history.actions_10m,
// history.seconds_since_last_action, which the policies' cooldown reads), turns every decision
// into a dry_run verdict when ARES runs with --dry-run, and never admits two actions on the same
// target in one tick.
package governor

import (
	"sync"
	"time"

	"github.com/ares-sre/ares/engine"
)

// HistoryCap is the value of history.seconds_since_last_action when ARES has not acted on a
// service in that long (or ever): one day.
const HistoryCap = 86400

// Window is the span of history.actions_10m.
const Window = 10 * time.Minute

// Governor records what ARES did and admits decisions.
type Governor struct {
	mu      sync.Mutex
	actions map[string][]time.Time // per service, oldest first, pruned to Window
	last    map[string]time.Time   // per service, the last action ever
}

var _ engine.Governor = (*Governor)(nil)

// New returns a governor with no history.
func New() *Governor {
	return &Governor{actions: map[string][]time.Time{}, last: map[string]time.Time{}}
}

// Annotate writes each service's history into the facts.
func (g *Governor) Annotate(f *engine.Facts, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, s := range f.Services {
		h := &engine.History{SecondsSinceLastAction: HistoryCap}
		if t, ok := g.last[name]; ok {
			if since := now.Sub(t).Seconds(); since < HistoryCap {
				h.SecondsSinceLastAction = max(since, 0)
			}
		}
		g.prune(name, now)
		h.Actions10m = len(g.actions[name])
		s.History = h
	}
}

// Admit gives each decision a verdict: dry_run under --dry-run, else admit, except a second
// decision for a target already admitted this tick.
func (g *Governor) Admit(ds []engine.Decision, _ *engine.Facts, _ time.Time, dryRun bool) []engine.Action {
	out := make([]engine.Action, 0, len(ds))
	seen := map[string]bool{}
	for _, d := range ds {
		a := engine.Action{Decision: d, Verdict: engine.VerdictAdmit}
		switch {
		case dryRun:
			a.Verdict = engine.VerdictDryRun
		case seen[d.Target()]:
			a.Verdict, a.Why = engine.VerdictSuppress, "another action on "+d.Target()+" this tick"
		}
		seen[d.Target()] = true
		out = append(out, a)
	}
	return out
}

// Done records an action that an actuator carried out (whatever its result: a failed attempt
// still counts against the cooldown, so a broken actuator does not loop).
func (g *Governor) Done(a engine.Action, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.actions[a.Service] = append(g.actions[a.Service], now)
	g.last[a.Service] = now
	g.prune(a.Service, now)
}

func (g *Governor) prune(service string, now time.Time) {
	ts := g.actions[service]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > Window {
		i++
	}
	if i == len(ts) {
		delete(g.actions, service)
		return
	}
	g.actions[service] = ts[i:]
}
