package leader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Leadership is what the gate asks the election; *Elector implements it.
type Leadership interface {
	// Leading reports whether this instance may act now.
	Leading() bool
	// Leader names the leading instance, "" when none is known.
	Leader() string
	// Term is a context that ends when this instance's leadership does; false when it does
	// not lead.
	Term() (context.Context, bool)
}

var _ Leadership = (*Elector)(nil)

// maxPendingTicks bounds the standby ticks remembered until their record: ticks are recorded
// in order, a few at most behind (their actions run in the background).
const maxPendingTicks = 1024

// StandbyPrefix starts the reason of every action a standby holds back.
const StandbyPrefix = "standby: "

// Gate makes a standby show decisions the way --dry-run does: it wraps the governor, whose
// checks run as in a dry run (nothing recorded, no approval opened) while this instance does
// not lead, and turns what would be carried out into the verdict suppress with the reason
// "standby: instance X leads". Wrap the actuators and the journal too (Actuator, Journal),
// so that an action admitted just before the lease ran out is not started, or is cancelled,
// and so that the shared journal holds only the leader's ticks.
type Gate struct {
	inner engine.Governor
	lead  Leadership

	mu      sync.Mutex
	standby map[uint64]bool // ticks this instance ran as a standby, until recorded
}

var (
	_ engine.Governor   = (*Gate)(nil)
	_ engine.RulesTaker = (*Gate)(nil)
)

// NewGate wraps gov.
func NewGate(gov engine.Governor, l Leadership) *Gate {
	return &Gate{inner: gov, lead: l, standby: map[uint64]bool{}}
}

// Annotate is the governor's.
func (g *Gate) Annotate(f *engine.Facts, now time.Time) { g.inner.Annotate(f, now) }

// Done is the governor's.
func (g *Gate) Done(a engine.Action, now time.Time) { g.inner.Done(a, now) }

// SetRules hands the rules to the governor when it takes them.
func (g *Gate) SetRules(r engine.Rules) {
	if rt, ok := g.inner.(engine.RulesTaker); ok {
		rt.SetRules(r)
	}
}

// Admit is the governor's while this instance leads; otherwise every action is held back.
func (g *Gate) Admit(ds []engine.Decision, f *engine.Facts, now time.Time, dryRun bool) []engine.Action {
	if dryRun || g.lead.Leading() {
		return g.inner.Admit(ds, f, now, dryRun)
	}
	if f != nil {
		g.mu.Lock()
		g.standby[f.Tick] = true
		if len(g.standby) > maxPendingTicks { // no gated journal records them: forget the oldest
			for t := range g.standby {
				if t+maxPendingTicks < f.Tick {
					delete(g.standby, t)
				}
			}
		}
		g.mu.Unlock()
	}
	acts := g.inner.Admit(ds, f, now, true)
	why := g.why()
	for i := range acts {
		if acts[i].Verdict == engine.VerdictDryRun || acts[i].Verdict == engine.VerdictAdmit {
			acts[i].Verdict, acts[i].Why = engine.VerdictSuppress, why
		}
	}
	return acts
}

func (g *Gate) why() string {
	if l := g.lead.Leader(); l != "" {
		return fmt.Sprintf("%sinstance %s leads", StandbyPrefix, l)
	}
	return StandbyPrefix + "no instance leads (electing)"
}

// Actuator wraps act: it carries an action out only while this instance leads, under a
// context that ends with the leadership.
func (g *Gate) Actuator(act engine.Actuator) engine.Actuator {
	return gatedActuator{act: act, g: g}
}

type gatedActuator struct {
	act engine.Actuator
	g   *Gate
}

func (a gatedActuator) Name() string { return a.act.Name() }

func (a gatedActuator) Act(ctx context.Context, x engine.Action) (engine.Outcome, error) {
	term, ok := a.g.lead.Term()
	if !ok {
		return engine.Outcome{}, fmt.Errorf("not carried out: %s", a.g.why())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(term, cancel)
	defer stop()
	out, err := a.act.Act(ctx, x)
	if err != nil && term.Err() != nil {
		err = fmt.Errorf("%w (cancelled: this instance lost the lead)", err)
	}
	return out, err
}

// Journal wraps j so that the ticks this instance ran as a standby are not recorded: the
// journal, shared by every instance, holds the leader's ticks, actions and incidents. Intents
// and outcomes pass through (a standby has none).
func (g *Gate) Journal(j engine.Journal) engine.Journal {
	return gatedJournal{j: j, g: g}
}

type gatedJournal struct {
	j engine.Journal
	g *Gate
}

var _ engine.ActionJournal = gatedJournal{}

func (j gatedJournal) Record(ctx context.Context, rec engine.TickRecord) error {
	j.g.mu.Lock()
	standby := j.g.standby[rec.Tick]
	delete(j.g.standby, rec.Tick)
	j.g.mu.Unlock()
	if standby {
		return nil
	}
	return j.j.Record(ctx, rec)
}

func (j gatedJournal) Intent(ctx context.Context, tick uint64, a engine.Action) (string, error) {
	if aj, ok := j.j.(engine.ActionJournal); ok {
		return aj.Intent(ctx, tick, a)
	}
	return "", nil
}

func (j gatedJournal) Outcome(ctx context.Context, id string, a engine.Action) error {
	if aj, ok := j.j.(engine.ActionJournal); ok {
		return aj.Outcome(ctx, id, a)
	}
	return nil
}
