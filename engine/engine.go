package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Sensor fills its own sections of a facts document. The engine hands every sensor a fresh
// document of its own and merges the results, so sensors never share memory.
type Sensor interface {
	Name() string                                // facts.sensors key, metric label, log attribute
	Collect(ctx context.Context, f *Facts) error // fills its own section only
}

// SensorFunc adapts a function to Sensor (tests, small built-ins).
type SensorFunc struct {
	N string
	F func(ctx context.Context, f *Facts) error
}

// Name returns N.
func (s SensorFunc) Name() string { return s.N }

// Collect calls F.
func (s SensorFunc) Collect(ctx context.Context, f *Facts) error { return s.F(ctx, f) }

var _ Sensor = SensorFunc{}

// Waker is implemented by sensors that can ask for an immediate tick, e.g. on a Docker die
// event. Watch blocks until ctx is done; wake never blocks.
type Waker interface {
	Watch(ctx context.Context, wake func(reason string)) error
}

// Analyzer runs after all sensors merged, over the whole document (the anomaly engine).
type Analyzer interface {
	Name() string
	Analyze(ctx context.Context, f *Facts) error
}

// Actuator carries out actions. Act re-reads the target's state first, so it is idempotent.
type Actuator interface {
	Name() string
	Act(ctx context.Context, a Action) (Outcome, error)
}

// Evaluator is one compiled policy revision.
type Evaluator interface {
	Revision() string
	// Evaluate returns the valid decisions (at most one per target, precedence applied) and the
	// results that failed validation. err is set when evaluation itself failed.
	Evaluate(ctx context.Context, f *Facts) ([]Decision, []RejectedDecision, error)
}

// PolicySource hands out the live policy revision; hot reload swaps it between ticks.
type PolicySource interface {
	Current() Evaluator
}

// Governor sits between decisions and actuators.
type Governor interface {
	// Annotate writes what the governor knows (history) into the facts before evaluation.
	Annotate(f *Facts, now time.Time)
	// Admit turns decisions into actions with a verdict each.
	Admit(ds []Decision, f *Facts, now time.Time, dryRun bool) []Action
	// Done reports an action's outcome so that cooldowns and budgets count it.
	Done(a Action, now time.Time)
}

// Journal records each tick. Recording failures are the only errors a tick returns.
type Journal interface {
	Record(ctx context.Context, rec TickRecord) error
}

// ActionJournal is implemented by journals that record each admitted action's intent before
// the actuator runs and its outcome after, so that an action interrupted by a crash is found
// (an intent without an outcome) and reconciled at the next start.
type ActionJournal interface {
	Intent(ctx context.Context, tick uint64, a Action) (id string, err error)
	Outcome(ctx context.Context, id string, a Action) error
}

// Options configure an Engine. Every field but Policy and Journal has a usable zero value.
type Options struct {
	Interval      time.Duration // between ticks when nothing wakes the loop; default 5s
	TickTimeout   time.Duration // gathering and evaluation; default 10s
	SensorTimeout time.Duration // per sensor; default 2s
	ActionTimeout time.Duration // per actuator call; default 30s
	// MaxConcurrentActions bounds the actions running at once (Run carries them out in the
	// background, so that a slow one does not delay the next tick); default 4. An admitted
	// action beyond it is deferred (verdict suppress) and decided again by a later tick.
	MaxConcurrentActions int
	DryRun               bool

	Sensors   []Sensor
	Analyzers []Analyzer
	Policy    PolicySource
	Governor  Governor
	// Actuators maps an action kind (restart, recycle, ...) to the actuator that performs it.
	Actuators map[string]Actuator
	Journal   Journal
	Metrics   *Instruments // may be nil
	Log       *slog.Logger
}

// Engine runs the tick loop: gather → evaluate → govern → act → record.
type Engine struct {
	opt  Options
	log  *slog.Logger
	tick atomic.Uint64
	wake chan string // 1-slot: bursts of wake-ups coalesce into one tick

	mu      sync.Mutex
	lastOK  map[string]time.Time // per sensor, for age_s
	manual  []Decision           // submitted by a person, for the next tick
	running int                  // actions carried out right now
	busy    map[string]int       // service → its actions carried out right now
	acts    sync.WaitGroup       // the ticks still waiting for their actions (Run)
}

// New validates the options and returns an engine.
func New(opt Options) (*Engine, error) {
	if opt.Policy == nil {
		return nil, errors.New("engine: no policy source")
	}
	if opt.Journal == nil {
		return nil, errors.New("engine: no journal")
	}
	if opt.Interval <= 0 {
		opt.Interval = 5 * time.Second
	}
	if opt.TickTimeout <= 0 {
		opt.TickTimeout = 10 * time.Second
	}
	if opt.SensorTimeout <= 0 {
		opt.SensorTimeout = 2 * time.Second
	}
	if opt.ActionTimeout <= 0 {
		opt.ActionTimeout = 30 * time.Second
	}
	if opt.MaxConcurrentActions <= 0 {
		opt.MaxConcurrentActions = 4
	}
	if opt.Governor == nil {
		opt.Governor = passGovernor{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Engine{opt: opt, log: opt.Log, wake: make(chan string, 1), lastOK: map[string]time.Time{}, busy: map[string]int{}}, nil
}

// Wake asks for a tick as soon as possible. It never blocks; wake-ups during a tick coalesce.
func (e *Engine) Wake(reason string) {
	select {
	case e.wake <- reason:
	default:
	}
}

// Run ticks until ctx is cancelled. It owns every goroutine it starts and returns when they
// have all ended. A failing tick is logged; only a journal failure is returned... and even that
// does not stop the loop: losing the loop would lose the healing.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range e.opt.Sensors {
		w, ok := s.(Waker)
		if !ok {
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			if err := w.Watch(ctx, e.Wake); err != nil && ctx.Err() == nil {
				e.log.Error("watch ended", "sensor", name, "err", err)
			}
		}(s.Name())
	}
	defer wg.Wait()
	defer e.acts.Wait() // the ticks whose actions still run: cancelled with ctx, then recorded

	timer := time.NewTimer(0) // first tick at once
	defer timer.Stop()
	for {
		trigger := "interval"
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case reason := <-e.wake:
			trigger = reason
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if err := e.runTick(ctx, time.Now(), trigger, true); err != nil && ctx.Err() == nil {
			e.log.Error("tick not recorded", "err", err)
		}
		timer.Reset(e.opt.Interval)
	}
}

func (e *Engine) next() uint64 { return e.tick.Add(1) }

// Submit queues a decision made by a person (the dashboard's manual action) for the next tick,
// which it wakes. It goes through validation and the governor like a policy's decision, and
// takes precedence over the policy's decision for the same target.
func (e *Engine) Submit(d Decision) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("manual decision: %w", err)
	}
	e.mu.Lock()
	e.manual = append(e.manual, d)
	e.mu.Unlock()
	e.Wake("manual")
	return nil
}

// takeManual returns and clears the submitted decisions.
func (e *Engine) takeManual() []Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.manual
	e.manual = nil
	return m
}

// Tick runs gather → evaluate → govern → act → record once and waits for its actions, so that
// the record holds their outcomes. Sensor, policy and actuator failures become data in the
// record; Tick itself fails only when recording fails.
func (e *Engine) Tick(ctx context.Context, now time.Time, trigger string) error {
	return e.runTick(ctx, now, trigger, false)
}

// Running is the number of actions being carried out right now.
func (e *Engine) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running
}

// Ticks is the number of ticks started so far.
func (e *Engine) Ticks() uint64 { return e.tick.Load() }

// runTick is Tick; with async (the loop) it returns once the actions started: their intents
// are recorded first, their outcomes as each finishes, and the tick record, outcomes
// included, once the last one finished (so records of a slow tick may follow later ones).
func (e *Engine) runTick(ctx context.Context, now time.Time, trigger string, async bool) error {
	start := time.Now()
	// The tick timeout bounds gathering and evaluation; each action has its own timeout, so a
	// rolling restart that waits for health is not cut short by the tick's deadline.
	tctx, cancel := context.WithTimeout(ctx, e.opt.TickTimeout)
	defer cancel()
	rec := TickRecord{Tick: e.next(), At: now.UTC(), Trigger: trigger, DryRun: e.opt.DryRun}
	log := e.log.With("tick", rec.Tick)

	rec.Facts = e.Gather(tctx, rec.Tick, now)
	e.opt.Governor.Annotate(rec.Facts, now)

	pol := e.opt.Policy.Current() // one policy revision per tick
	if pol == nil {
		rec.Err = "no policy loaded"
	} else {
		rec.PolicyRev = pol.Revision()
		evalStart := time.Now()
		ds, rejected, err := pol.Evaluate(tctx, rec.Facts)
		e.opt.Metrics.observeEval(time.Since(evalStart))
		rec.Decisions, rec.Rejected = ds, rejected
		if err != nil {
			rec.Err = err.Error()
			log.Error("policy evaluation failed", "policy_rev", rec.PolicyRev, "err", err)
		}
		for _, r := range rejected {
			log.Error("decision rejected", "policy_rev", rec.PolicyRev, "decision", r.Raw, "err", r.Error)
		}
	}
	if manual := e.takeManual(); len(manual) > 0 {
		// First, so that the governor holds back a policy decision for the same target.
		rec.Decisions = append(manual, rec.Decisions...)
	}
	if rec.Decisions == nil {
		rec.Decisions = []Decision{}
	}
	if pol != nil {
		if rs, ok := pol.(RulesSource); ok {
			if rt, ok := e.opt.Governor.(RulesTaker); ok {
				rt.SetRules(rs.Rules())
			}
		}
	}
	rec.Actions = e.opt.Governor.Admit(rec.Decisions, rec.Facts, now, e.opt.DryRun)
	for i := range rec.Actions {
		a := &rec.Actions[i]
		if r := rec.Facts.Replica(a.Service, a.Replica); a.Replica != "" && r != nil {
			a.Sensed = &SensedReplica{ID: r.ID, State: r.State}
		}
	}
	running := e.act(ctx, log, rec.Tick, rec.Actions)
	record := func() error {
		rec.Duration = time.Since(start)
		e.opt.Metrics.observeTick(rec)
		return e.opt.Journal.Record(context.WithoutCancel(ctx), rec)
	}
	if !async {
		running.Wait()
		return record()
	}
	// The loop goes on; the tick is recorded, with its outcomes, once its actions are done.
	e.acts.Go(func() {
		running.Wait()
		if err := record(); err != nil {
			log.Error("tick not recorded", "err", err)
		}
	})
	return nil
}

// act starts the admitted actions, each with its own timeout, at most MaxConcurrentActions at
// once and one at a time per service (an action beyond the limit, or on a service whose
// previous action still runs, is deferred: verdict suppress, decided again by a later tick).
// Each runs in its own goroutine and writes its outcome into actions; the returned group
// ends when all have. When the journal records intents, an action whose intent cannot be
// recorded is not carried out: an action ARES could not account for after a crash is worse
// than one postponed to the next tick. Intents are recorded before act returns.
func (e *Engine) act(ctx context.Context, log *slog.Logger, tick uint64, actions []Action) *sync.WaitGroup {
	aj, _ := e.opt.Journal.(ActionJournal)
	var wg sync.WaitGroup
	for i := range actions {
		a := &actions[i]
		if !a.Admitted() {
			continue
		}
		if why := e.reserve(*a); why != "" {
			a.Verdict, a.Why = VerdictSuppress, why
			continue
		}
		var intent string
		if aj != nil {
			id, err := aj.Intent(context.WithoutCancel(ctx), tick, *a)
			if err != nil {
				e.release(*a)
				a.Outcome = &Outcome{Result: ResultError, Error: "not carried out: journal: " + err.Error()}
				log.Error("action not carried out: its intent could not be journaled", "action", a.Action, "service", a.Service, "replica", a.Replica, "err", err)
				continue
			}
			intent = id
		}
		wg.Go(func() {
			out := e.finish(ctx, log, aj, intent, *a)
			a.Outcome = &out
		})
	}
	return &wg
}

// reserve takes a slot for a, or says why a must wait.
func (e *Engine) reserve(a Action) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.busy[a.Scope()]; n > 0 && a.Action != ActNotify {
		return fmt.Sprintf("an action on %s is still running", a.Scope())
	}
	if e.running >= e.opt.MaxConcurrentActions {
		return fmt.Sprintf("concurrency: %d actions running (max_concurrent_actions %d); deferred", e.running, e.opt.MaxConcurrentActions)
	}
	e.running++
	if a.Action != ActNotify {
		e.busy[a.Scope()]++
	}
	return ""
}

func (e *Engine) release(a Action) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running--
	if a.Action != ActNotify {
		if e.busy[a.Scope()]--; e.busy[a.Scope()] <= 0 {
			delete(e.busy, a.Scope())
		}
	}
}

// finish carries a out, journals its outcome, tells the governor and frees its slot.
func (e *Engine) finish(ctx context.Context, log *slog.Logger, aj ActionJournal, intent string, a Action) Outcome {
	defer e.release(a)
	out := e.actOne(ctx, a)
	a.Outcome = &out
	if aj != nil {
		if err := aj.Outcome(context.WithoutCancel(ctx), intent, a); err != nil {
			log.Error("action outcome not journaled", "action", a.Action, "service", a.Service, "replica", a.Replica, "err", err)
		}
	}
	e.opt.Governor.Done(a, time.Now())
	e.opt.Metrics.observeAction(a)
	if out.Result == ResultOK {
		log.Info("action done", "action", a.Action, "service", a.Service, "replica", a.Replica, "duration", out.Duration, "detail", out.Detail)
	} else {
		log.Error("action failed", "action", a.Action, "service", a.Service, "replica", a.Replica, "duration", out.Duration, "err", out.Error)
	}
	return out
}

func (e *Engine) actOne(ctx context.Context, a Action) Outcome {
	start := time.Now()
	act, ok := e.opt.Actuators[a.Action]
	if !ok {
		return Outcome{Result: ResultError, Error: fmt.Sprintf("no actuator configured for %q", a.Action)}
	}
	ctx, cancel := context.WithTimeout(ctx, e.opt.ActionTimeout)
	defer cancel()
	out, err := act.Act(ctx, a)
	if out.Duration == 0 {
		out.Duration = time.Since(start)
	}
	if err != nil {
		out.Result = ResultError
		out.Error = err.Error() // actuators prefix their own errors ("docker: restart x: ...")
	} else if out.Result == "" {
		out.Result = ResultOK
	}
	return out
}

// Gather runs every sensor in parallel, each with its own timeout and its own document, merges
// what returned in time, then runs the analyzers and derives the summaries.
func (e *Engine) Gather(ctx context.Context, tick uint64, now time.Time) *Facts {
	f := NewFacts(tick, now)
	results := make([]sensorResult, len(e.opt.Sensors))
	var wg sync.WaitGroup
	for i, s := range e.opt.Sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.collect(ctx, s, tick, now)
		}()
	}
	wg.Wait()
	for i, s := range e.opt.Sensors {
		r := results[i]
		e.opt.Metrics.observeSensor(s.Name(), r.dur, r.err)
		if r.err == nil {
			f.merge(r.part)
		}
		f.Sensors[s.Name()] = e.status(s.Name(), now, r.err)
	}
	for _, a := range e.opt.Analyzers {
		actx, cancel := context.WithTimeout(ctx, e.opt.SensorTimeout)
		err := a.Analyze(actx, f)
		cancel()
		f.Sensors[a.Name()] = e.status(a.Name(), now, err)
	}
	f.Summarize()
	return f
}

// collect runs one sensor into a private document and gives up on it at the sensor timeout;
// a sensor that overruns keeps writing only to its own, discarded, document.
func (e *Engine) collect(ctx context.Context, s Sensor, tick uint64, now time.Time) (r sensorResult) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.opt.SensorTimeout)
	defer cancel()
	part := NewFacts(tick, now)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- s.Collect(ctx, part)
	}()
	select {
	case err := <-done:
		r.err = err
	case <-ctx.Done():
		r.err = fmt.Errorf("timed out after %s", e.opt.SensorTimeout)
	}
	r.part, r.dur = part, time.Since(start)
	return r
}

func (e *Engine) status(name string, now time.Time, err error) SensorStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		e.lastOK[name] = now
		return SensorStatus{OK: true}
	}
	st := SensorStatus{OK: false, Error: err.Error(), AgeS: -1}
	if t, ok := e.lastOK[name]; ok {
		st.AgeS = now.Sub(t).Seconds()
	}
	return st
}

type sensorResult struct {
	part *Facts
	err  error
	dur  time.Duration
}

// merge copies the sections a sensor filled into f.
func (f *Facts) merge(p *Facts) {
	for name, ps := range p.Services {
		s := f.Service(name)
		if len(ps.Replicas) > 0 {
			s.Replicas = append(s.Replicas, ps.Replicas...)
		}
		if ps.DesiredReplicas != 0 {
			s.DesiredReplicas = ps.DesiredReplicas
		}
		if ps.Runtime != "" {
			s.Runtime = ps.Runtime
		}
		if ps.Metrics != nil {
			s.Metrics = ps.Metrics
		}
		if ps.Probe != nil {
			s.Probe = ps.Probe
		}
		if ps.Anomaly != nil {
			s.Anomaly = ps.Anomaly
		}
		if ps.History != nil {
			s.History = ps.History
		}
		if ps.Logs != nil {
			s.Logs = ps.Logs
		}
	}
	f.Alerts = append(f.Alerts, p.Alerts...)
	for id, n := range p.Nodes {
		if f.Nodes == nil {
			f.Nodes = map[string]Node{}
		}
		f.Nodes[id] = n
	}
}

// passGovernor admits everything; it is the default when no governor is configured.
type passGovernor struct{}

func (passGovernor) Annotate(*Facts, time.Time) {}
func (passGovernor) Done(Action, time.Time)     {}
func (passGovernor) Admit(ds []Decision, _ *Facts, _ time.Time, dryRun bool) []Action {
	out := make([]Action, len(ds))
	for i, d := range ds {
		out[i] = Action{Decision: d, Verdict: VerdictAdmit}
		if dryRun {
			out[i].Verdict = VerdictDryRun
		}
	}
	return out
}
