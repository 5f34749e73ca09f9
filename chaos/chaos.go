// Package chaos injects faults into the containers ARES watches, so that its healing can be
// shown and measured: it kills, stops or pauses replicas through the Docker Engine API, and
// makes a shop service leak memory, burn CPU, answer slowly or fail requests through the
// shop's fault-injection admin port (reached with `shop fault ...` run inside the container
// by the Docker exec API, so no admin port is ever published).
//
// Every fault has a duration and is reverted when it ends, when the context given to Inject
// is cancelled, or by RevertAll; a revert is idempotent. Only containers labelled
// ares.enable=true (plus Options.Labels) are ever touched, the same scope as ARES itself.
package chaos

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// Kind is what a fault does.
type Kind string

// The fault kinds.
const (
	Kill    Kind = "kill"    // SIGKILL the main process, as a crash would; ARES should restart it
	Stop    Kind = "stop"    // stop the container through the Docker API, as an operator would
	Pause   Kind = "pause"   // freeze the container's processes (docker pause)
	Leak    Kind = "leak"    // leak Value MB/s of memory (shop services only)
	CPU     Kind = "cpu"     // keep Value cores busy (shop services only)
	Latency Kind = "latency" // add Value ms to every request (shop services only)
	Errors  Kind = "errors"  // answer Value % of requests with 500 (shop services only)
)

// Kinds lists every fault kind, in a stable order.
func Kinds() []Kind { return []Kind{Kill, Stop, Pause, Leak, CPU, Latency, Errors} }

// ParseKind returns the kind named s, or an error listing the valid ones.
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Kinds(), k) {
		return k, nil
	}
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("unknown fault kind %q (want one of %s)", s, strings.Join(names, ", "))
}

// HasValue reports whether the kind takes a Value.
func (k Kind) HasValue() bool { return k.Unit() != "" }

// Unit is the unit of the kind's Value ("" when it takes none): MB/s, cores, ms, %.
func (k Kind) Unit() string {
	switch k {
	case Leak:
		return "MB/s"
	case CPU:
		return "cores"
	case Latency:
		return "ms"
	case Errors:
		return "%"
	}
	return ""
}

// Bounds of a fault.
const (
	MaxLeakMBPerSecond = 1024
	MaxLatency         = time.Minute
	MinDuration        = time.Second
	MaxDuration        = time.Hour
	DefaultDuration    = 30 * time.Second
	// AllReplicas as Fault.Replica targets every running replica of the service.
	AllReplicas = "all"
)

// Fault is one fault to inject.
type Fault struct {
	Kind    Kind   `json:"kind"`
	Service string `json:"service"` // ARES service name: label ares.service, else the compose service
	// Replica is a container name or ID prefix; empty: the first running replica by name;
	// "all": every running replica.
	Replica string `json:"replica,omitempty"`
	// Value is the leak in MB/s, the cores to burn, the latency in ms or the percent of
	// requests to fail; unused (0) for kill, stop and pause. Whole numbers only.
	Value float64 `json:"value,omitempty"`
	// Duration is how long the fault lasts before it is reverted. For kill and stop it is
	// the time ARES has to heal: after it, a replica still down is started again, so nothing
	// is left behind.
	Duration time.Duration `json:"duration"`
}

// ParseFault builds a fault from its parts and validates it; d == 0 means DefaultDuration.
func ParseFault(kind, service, replica string, value float64, d time.Duration) (Fault, error) {
	k, err := ParseKind(kind)
	if err != nil {
		return Fault{}, err
	}
	if d == 0 {
		d = DefaultDuration
	}
	f := Fault{Kind: k, Service: service, Replica: replica, Value: value, Duration: d}
	return f, f.Validate()
}

// Validate checks the fault's fields and bounds: leak 1..1024 MB/s, cpu 1..the host's cores,
// latency 1..60000 ms, errors 1..100 %, duration 1s..1h. Errors name the field.
func (f Fault) Validate() error {
	if _, err := ParseKind(string(f.Kind)); err != nil {
		return fmt.Errorf("kind: %w", err)
	}
	if strings.TrimSpace(f.Service) == "" {
		return fmt.Errorf("service: a %s fault needs a service", f.Kind)
	}
	if f.Duration < MinDuration || f.Duration > MaxDuration {
		return fmt.Errorf("duration: must be in %s..%s (got %s)", MinDuration, MaxDuration, f.Duration)
	}
	if !f.Kind.HasValue() {
		if f.Value != 0 {
			return fmt.Errorf("value: a %s fault takes no value (got %g)", f.Kind, f.Value)
		}
		return nil
	}
	v := f.Value
	if v != math.Trunc(v) || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("value: %s must be a whole number of %s (got %g)", f.Kind, f.Kind.Unit(), v)
	}
	lo, hi := 1.0, 0.0
	switch f.Kind {
	case Leak:
		hi = MaxLeakMBPerSecond
	case CPU:
		hi = float64(runtime.NumCPU())
	case Latency:
		hi = float64(MaxLatency.Milliseconds())
	case Errors:
		hi = 100
	}
	if v < lo || v > hi {
		return fmt.Errorf("value: %s must be in %g..%g %s (got %g)", f.Kind, lo, hi, f.Kind.Unit(), v)
	}
	return nil
}

// String describes the fault in one line: "latency 200 ms on cart for 30s".
func (f Fault) String() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	if f.Kind.HasValue() {
		fmt.Fprintf(&b, " %g %s", f.Value, f.Kind.Unit())
	}
	b.WriteString(" on ")
	b.WriteString(f.Service)
	if f.Replica != "" {
		b.WriteString("/" + f.Replica)
	}
	fmt.Fprintf(&b, " for %s", f.Duration)
	return b.String()
}

// Event kinds reported to Options.Progress.
const (
	EventInject = "inject" // a fault was injected into Target
	EventRevert = "revert" // a fault was reverted on Target (Detail says how)
	EventError  = "error"  // injecting or reverting failed on Target (Detail is the error)
	EventDryRun = "dry-run"
	EventWarn   = "warn" // something the user should know (e.g. a kill fell back to the Docker API)
)

// Event is one step of an injection, for progress and timelines.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // inject, revert, error, dry-run, warn
	Fault  Fault     `json:"fault"`
	Target string    `json:"target,omitempty"` // container name
	Detail string    `json:"detail,omitempty"`
}

// Target is a container a fault applies to.
type Target struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Service string `json:"service"`
}

// Options configure an Agent. The zero value is usable.
type Options struct {
	// Labels are extra "key=value" (or "key") filters a container must match on top of
	// ares.enable=true, like docker.labels in ares.yaml.
	Labels []string
	// DryRun resolves the targets and reports what would be done (EventDryRun) without
	// changing anything.
	DryRun bool
	Log    *slog.Logger // nil: discard
	// Progress, when set, receives every Event synchronously (keep it quick).
	Progress func(Event)
	// Timeout bounds each Docker call (inspect, kill, exec...); default 15s.
	Timeout time.Duration
}

// Agent injects and reverts faults on the local Docker engine. It is safe for concurrent use.
type Agent struct {
	cli *client.Client
	opt Options
	log *slog.Logger

	mu     sync.Mutex
	active map[*Injection]struct{}
}

// New returns an agent driving cli.
func New(cli *client.Client, opt Options) *Agent {
	if opt.Timeout <= 0 {
		opt.Timeout = 15 * time.Second
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cli: cli, opt: opt, log: log, active: map[*Injection]struct{}{}}
}

// Injection is one injected fault. It reverts itself when its duration ends or the context
// given to Inject is cancelled.
type Injection struct {
	agent   *Agent
	fault   Fault
	targets []Target
	at      time.Time
	dryRun  bool

	resolved []target // what was injected into, with pids and paths

	mu   sync.Mutex
	back map[string]bool // kill, stop: target IDs seen running again

	once sync.Once
	stop chan struct{} // closed by Revert, ends the wait goroutine
	done chan struct{} // closed once reverted
	err  error
}

// Fault is the injected fault.
func (i *Injection) Fault() Fault { return i.fault }

// Targets are the containers the fault was injected into.
func (i *Injection) Targets() []Target { return slices.Clone(i.targets) }

// At is when the fault was injected.
func (i *Injection) At() time.Time { return i.at }

// DryRun reports whether nothing was really injected.
func (i *Injection) DryRun() bool { return i.dryRun }

// Done is closed once the fault is reverted (its duration ended, its context was cancelled,
// or Revert was called). A dry-run injection is done at once.
func (i *Injection) Done() <-chan struct{} { return i.done }

// Err is the revert's error once Done is closed (nil while it is not).
func (i *Injection) Err() error {
	select {
	case <-i.done:
		return i.err
	default:
		return nil
	}
}
