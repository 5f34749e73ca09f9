package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/chaos/load"
)

// Injector injects faults; *chaos.Agent through AgentInjector.
type Injector interface {
	Inject(ctx context.Context, f chaos.Fault) (Injection, error)
}

// Injection is one injected fault (*chaos.Injection).
type Injection interface {
	Revert(ctx context.Context) error
	Targets() []chaos.Target
}

// AgentInjector adapts a chaos.Agent to Injector.
type AgentInjector struct{ Agent *chaos.Agent }

// Inject injects f through the agent.
func (a AgentInjector) Inject(ctx context.Context, f chaos.Fault) (Injection, error) {
	in, err := a.Agent.Inject(ctx, f)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// LoadFunc runs one load (load.Run).
type LoadFunc func(ctx context.Context, o load.Options, progress func(load.Snapshot)) (load.Report, error)

// Observer reports the replicas of services (DockerObserver).
type Observer interface {
	Observe(ctx context.Context, services []string) (map[string][]ReplicaState, error)
}

// Ares reads what ARES governed (AresClient).
type Ares interface {
	Actions(ctx context.Context, services []string, since time.Time) ([]Action, error)
	// Memory is the highest memory use of each service's running replicas, in percent of
	// their limit, as ARES sees it now.
	Memory(ctx context.Context, services []string) (map[string]float64, error)
}

// Runner runs scenarios.
type Runner struct {
	Injector Injector
	Load     LoadFunc // nil: load.Run
	Observer Observer
	Ares     Ares // nil: expectations about ARES fail with a clear detail
	// Out receives the live timeline (one line per event); nil: nothing is printed.
	Out io.Writer
	// Short runs the scenario's short version (step durations × its short factor).
	Short bool
	// DryRun prints the plan and asks the injector (itself in dry-run mode) which
	// containers each fault would hit; no load is sent, nothing waits, nothing is judged.
	DryRun bool
	// Target, when set, replaces every load step's target (a test's own gateway).
	Target string
	// SampleEvery is the Docker sampling period; default 250ms.
	SampleEvery time.Duration
	// AllowHost is passed to the load (a non-loopback host the load may reach).
	AllowHost string
}

// run is one scenario's execution state.
type run struct {
	r   *Runner
	s   *Scenario
	out io.Writer

	mu     sync.Mutex
	rec    Record
	active map[string][]Injection // by inject step name
	loadWG sync.WaitGroup
	// repeatWG: the goroutines re-injecting faults (every); they stop once their fault is
	// reverted, and revert an injection that raced with the revert.
	repeatWG         sync.WaitGroup
	loads, loadsDone int
	failed           []string // step failures (a fault that could not be injected, a wait that timed out)
}

// Run executes the scenario and judges its expectations. The error is for a run that could
// not be carried out (a fault that could not be injected, an interruption); failed
// expectations are in the report (Report.Pass). Every fault is reverted before Run
// returns, also when ctx is cancelled.
func (r *Runner) Run(ctx context.Context, s *Scenario) (*Report, error) {
	if r.Short {
		s = s.Scaled(s.ShortFactor())
	}
	if r.Load == nil {
		r.Load = load.Run
	}
	if r.SampleEvery <= 0 {
		r.SampleEvery = 250 * time.Millisecond
	}
	out := r.Out
	if out == nil {
		out = io.Discard
	}
	x := &run{r: r, s: s, out: out, active: map[string][]Injection{}}
	x.rec.Start = time.Now()
	if r.DryRun {
		return x.dryRun(ctx)
	}

	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	x.sample(sctx) // one sample before anything happens
	go func() { defer close(sampled); x.sampleLoop(sctx) }()

	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	runErr := x.steps(ctx, lctx)
	switch {
	case runErr != nil:
		stopLoad() // a failed run stops its load at once
	case x.loading():
		x.event("waiting for the load to end")
	}
	x.loadWG.Wait()
	x.revertAll()
	x.repeatWG.Wait()
	if runErr == nil {
		x.sample(ctx) // the state at the end
	}
	stopSampling()
	<-sampled
	x.rec.End = time.Now()
	x.fetchActions(context.WithoutCancel(ctx))
	if x.s.NeedsMemory() {
		x.fetchMemory(context.WithoutCancel(ctx))
	}
	rep := x.report()
	if runErr != nil {
		rep.Error = runErr.Error()
		rep.Pass = false
	}
	return rep, runErr
}

func (x *run) event(format string, args ...any) { x.eventAt(time.Now(), format, args...) }

// eventAt records an event that happened at now (ARES's actions are learnt a little later).
func (x *run) eventAt(now time.Time, format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.rec.Timeline = append(x.rec.Timeline, Event{At: now, What: what})
	fmt.Fprintf(x.out, "  %7.2fs  %s\n", now.Sub(x.rec.Start).Seconds(), what) // one writer at a time
}

// steps runs the steps in order; load steps run under lctx, which Run cancels when the run
// fails.
func (x *run) steps(ctx, lctx context.Context) error {
	for i, st := range x.s.Steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted at step %d: %w", i+1, err)
		}
		var err error
		switch {
		case st.Load != nil:
			x.startLoad(lctx, st.Load)
		case st.Inject != nil:
			err = x.inject(ctx, st.Inject)
		case st.Wait != nil:
			err = x.wait(ctx, st.Wait)
		case st.Revert != nil:
			x.revert(st.Revert.Name)
		}
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	return nil
}

func (x *run) loadOptions(l *LoadStep) load.Options {
	o := load.Options{Target: l.Target, Rate: l.Rate, Duration: l.Duration.D(), Paths: l.Paths, AllowHost: x.r.AllowHost}
	if o.Target == "" {
		o.Target = x.s.Target
	}
	if x.r.Target != "" {
		o.Target = x.r.Target
	}
	if l.Surge != nil {
		o.Surge = &load.Surge{Factor: l.Surge.Factor, After: l.Surge.After.D(), For: l.Surge.For.D()}
	}
	return o
}

func (x *run) startLoad(ctx context.Context, l *LoadStep) {
	o := x.loadOptions(l)
	desc := fmt.Sprintf("load %d/s for %s on %s", o.Rate, o.Duration, o.Target)
	if o.Surge != nil {
		desc += fmt.Sprintf(", surge ×%g after %s", o.Surge.Factor, o.Surge.After)
	}
	x.event("%s", desc)
	x.loadWG.Add(1)
	x.mu.Lock()
	x.loads++
	x.mu.Unlock()
	go func() {
		defer x.loadWG.Done()
		last := 0
		rep, err := x.r.Load(ctx, o, func(s load.Snapshot) {
			if sec := int(s.Elapsed / (5 * time.Second)); sec > last { // a progress line every 5 s
				last = sec
				x.event("load: %d requests, %d failed, %.0f/s, p99 %s", s.Requests, s.Failed, s.Rate, round(s.P99))
			}
		})
		if err != nil {
			x.event("load failed: %v", err)
			x.mu.Lock()
			x.failed = append(x.failed, "load: "+err.Error())
			x.mu.Unlock()
		}
		x.event("load done: %d requests, %d failed", rep.Requests, rep.Failed)
		x.mu.Lock()
		x.rec.Load = &rep
		x.loadsDone++
		x.mu.Unlock()
	}()
}

// loading: a load step runs and has not ended.
func (x *run) loading() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.loads > x.loadsDone
}

func (x *run) fault(in *InjectStep) chaos.Fault {
	return chaos.Fault{Kind: chaos.Kind(strings.ToLower(in.Kind)), Service: in.Service, Replica: in.Replica, Value: in.Value, Duration: in.Duration.D()}
}

func (x *run) inject(ctx context.Context, in *InjectStep) error {
	f := x.fault(in)
	at := time.Now()
	inj, err := x.r.Injector.Inject(ctx, f)
	if err != nil {
		x.event("inject %s failed: %v", f, err)
		return fmt.Errorf("inject %s: %w", f, err)
	}
	rec := Injected{Name: in.Name, Fault: f, At: at, Times: 1, Targets: names(inj.Targets())}
	x.mu.Lock()
	x.rec.Injections = append(x.rec.Injections, rec)
	idx := len(x.rec.Injections) - 1
	x.active[in.Name] = append(x.active[in.Name], inj)
	x.mu.Unlock()
	x.event("injected %s into %s", f, strings.Join(rec.Targets, ", "))
	if in.Every > 0 {
		x.repeatWG.Add(1)
		go func() {
			defer x.repeatWG.Done()
			x.repeat(ctx, in, idx, at.Add(f.Duration))
		}()
	}
	return nil
}

// repeat re-injects the fault every in.Every while the service has a running replica, until
// end: a crash loop made from outside.
func (x *run) repeat(ctx context.Context, in *InjectStep, idx int, end time.Time) {
	t := time.NewTicker(in.Every.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			left := end.Sub(now)
			if left < chaos.MinDuration {
				return
			}
			x.mu.Lock()
			stopped := x.active[in.Name] == nil
			var running int
			if n := len(x.rec.Samples); n > 0 {
				running = x.rec.Samples[n-1].running(in.Service)
			}
			x.mu.Unlock()
			if stopped {
				return
			}
			if running == 0 {
				continue
			}
			f := x.fault(in)
			f.Duration = left.Truncate(time.Millisecond)
			inj, err := x.r.Injector.Inject(ctx, f)
			if err != nil {
				x.event("re-inject %s: %v", f.Kind, err)
				continue
			}
			x.mu.Lock()
			if x.active[in.Name] == nil { // reverted while this one was being injected
				x.mu.Unlock()
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				_ = inj.Revert(rctx)
				cancel()
				return
			}
			x.active[in.Name] = append(x.active[in.Name], inj)
			x.rec.Injections[idx].Times++
			n := x.rec.Injections[idx].Times
			x.mu.Unlock()
			x.event("injected %s again into %s (%d times)", f.Kind, strings.Join(names(inj.Targets()), ", "), n)
		}
	}
}

func names(ts []chaos.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func (x *run) wait(ctx context.Context, w *WaitStep) error {
	if w.For > 0 {
		x.event("wait %s", w.For.D())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.For.D()):
			return nil
		}
	}
	x.event("wait until %s (at most %s)", w.Until, w.Timeout.D())
	started := time.Now()
	deadline := time.NewTimer(w.Timeout.D())
	defer deadline.Stop()
	tick := time.NewTicker(x.r.SampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			x.event("gave up waiting until %s after %s", w.Until, w.Timeout.D())
			if w.Fail {
				return fmt.Errorf("wait until %s: not within %s", w.Until, w.Timeout.D())
			}
			return nil
		case <-tick.C:
		}
		e := w.until
		x.mu.Lock()
		snap := x.rec // the slices are only appended to
		x.mu.Unlock()
		snap.End = time.Now()
		if e.Kind == ExpectHealthy && time.Since(started) < time.Second {
			continue // let Docker report the fault first
		}
		if e.Kind == ExpectHealthy || e.Kind == ExpectRecovered || e.Kind == ExpectReplicas {
			if !x.holdsNow(e, &snap) {
				continue
			}
		} else if !e.Evaluate(&snap).Pass {
			continue
		}
		x.event("%s (after %s)", w.Until, round(time.Since(started)))
		return nil
	}
}

// holdsNow: the latest sample satisfies the state expectation.
func (x *run) holdsNow(e *Expectation, r *Record) bool {
	if len(r.Samples) == 0 {
		return false
	}
	last := &r.Samples[len(r.Samples)-1]
	switch e.Kind {
	case ExpectHealthy:
		_, ok, _ := r.RecoveredAt(e.Service)
		return ok && last.healthy(e.Service)
	case ExpectRecovered:
		_, ok, wasDown, _ := r.recovery(e.Service)
		return ok && wasDown && last.healthy(e.Service)
	}
	return compare(float64(last.running(e.Service)), e.Op, e.Number)
}

func (x *run) revert(name string) {
	x.mu.Lock()
	var list []Injection
	if name == "" {
		for n, l := range x.active {
			list = append(list, l...)
			x.active[n] = nil
		}
	} else {
		list, x.active[name] = x.active[name], nil
	}
	now := time.Now()
	for i := range x.rec.Injections {
		if (name == "" || x.rec.Injections[i].Name == name) && x.rec.Injections[i].RevertedAt.IsZero() {
			x.rec.Injections[i].RevertedAt = now
		}
	}
	x.mu.Unlock()
	if len(list) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, in := range list {
		if err := in.Revert(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	what := name
	if what == "" {
		what = "every fault"
	}
	if err := errors.Join(errs...); err != nil {
		x.event("revert %s: %v", what, err)
		return
	}
	x.event("reverted %s", what)
}

// revertAll reverts whatever is still active (also after an interruption).
func (x *run) revertAll() { x.revert("") }

func (x *run) sampleLoop(ctx context.Context) {
	t := time.NewTicker(x.r.SampleEvery)
	defer t.Stop()
	var lastAres time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			x.sample(ctx)
			if x.r.Ares != nil && now.Sub(lastAres) >= 500*time.Millisecond {
				lastAres = now
				x.fetchActions(ctx)
				if x.s.NeedsMemory() {
					x.fetchMemory(ctx)
				}
			}
		}
	}
}

// sample records the watched services' replicas and prints what changed.
func (x *run) sample(ctx context.Context) {
	if x.r.Observer == nil {
		return
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	svcs, err := x.r.Observer.Observe(octx, x.s.Services())
	if err != nil {
		if ctx.Err() == nil {
			x.event("observe: %v", err)
		}
		return
	}
	s := Sample{At: time.Now(), Services: svcs}
	x.mu.Lock()
	var prev *Sample
	if n := len(x.rec.Samples); n > 0 {
		prev = &x.rec.Samples[n-1]
	}
	var changes []string
	for _, name := range sortedKeys(svcs) {
		now := describe(svcs[name])
		if prev == nil || describe(prev.Services[name]) != now {
			changes = append(changes, name+": "+now)
		}
	}
	x.rec.Samples = append(x.rec.Samples, s)
	x.mu.Unlock()
	for _, c := range changes {
		x.event("%s", c)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (x *run) fetchActions(ctx context.Context) {
	if x.r.Ares == nil {
		x.mu.Lock()
		x.rec.AresErr = "no ARES API configured (--ares)"
		x.mu.Unlock()
		return
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	acts, err := x.r.Ares.Actions(actx, x.s.Services(), x.rec.Start)
	x.mu.Lock()
	if err != nil {
		x.rec.AresErr = err.Error()
		x.mu.Unlock()
		return
	}
	x.rec.AresErr = ""
	key := func(a Action) string { return a.At.String() + a.Action + a.Target() + a.Verdict }
	seen := map[string]bool{}
	for _, a := range x.rec.Actions {
		seen[key(a)] = true
	}
	var fresh []Action
	for _, a := range acts {
		if !seen[key(a)] {
			seen[key(a)] = true
			fresh = append(fresh, a)
		}
	}
	x.rec.Actions = append(x.rec.Actions, fresh...)
	sort.SliceStable(x.rec.Actions, func(i, j int) bool { return x.rec.Actions[i].At.Before(x.rec.Actions[j].At) })
	x.mu.Unlock()
	for _, a := range fresh {
		x.eventAt(a.At, "ARES: %s %s %s (%s)", a.Verdict, a.Action, a.Target(), a.Reason)
	}
}

func (x *run) fetchMemory(ctx context.Context) {
	if x.r.Ares == nil {
		return // fetchActions notes that there is no API
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := x.r.Ares.Memory(actx, x.s.Services())
	if err != nil {
		return // the actions' fetch reports the API's errors
	}
	x.mu.Lock()
	x.rec.Memory = append(x.rec.Memory, MemSample{At: time.Now(), Percent: m})
	x.mu.Unlock()
}

func (x *run) dryRun(ctx context.Context) (*Report, error) {
	x.event("dry run: nothing is injected, no load is sent")
	for i, st := range x.s.Steps {
		switch {
		case st.Load != nil:
			o := x.loadOptions(st.Load)
			desc := fmt.Sprintf("step %d: load %d/s for %s on %s", i+1, o.Rate, o.Duration, o.Target)
			if o.Surge != nil {
				desc += fmt.Sprintf(", surge ×%g after %s for %s", o.Surge.Factor, o.Surge.After, o.Surge.For)
			}
			x.event("%s", desc)
		case st.Inject != nil:
			f := x.fault(st.Inject)
			targets := "(targets not resolved)"
			if x.r.Injector != nil {
				inj, err := x.r.Injector.Inject(ctx, f)
				if err != nil {
					err = fmt.Errorf("step %d: inject %s: %w", i+1, f, err)
					x.event("%v", err)
					x.rec.End = time.Now()
					rep := x.report()
					rep.DryRun, rep.Results, rep.Pass, rep.Error = true, nil, false, err.Error()
					return rep, err
				}
				targets = strings.Join(names(inj.Targets()), ", ")
			}
			x.event("step %d: would inject %s into %s", i+1, f, targets)
		case st.Wait != nil && st.Wait.For > 0:
			x.event("step %d: wait %s", i+1, st.Wait.For.D())
		case st.Wait != nil:
			x.event("step %d: wait until %s (at most %s)", i+1, st.Wait.Until, st.Wait.Timeout.D())
		case st.Revert != nil:
			x.event("step %d: revert %s", i+1, cmp(st.Revert.Name, "every fault"))
		}
	}
	for _, e := range x.s.Expect {
		x.event("expect: %s", e.Text)
	}
	x.rec.End = time.Now()
	rep := x.report()
	rep.DryRun = true
	rep.Results = nil
	rep.Pass = true
	return rep, nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
