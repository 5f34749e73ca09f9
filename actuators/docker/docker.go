// Package docker is the actuator that heals Docker containers: it restarts, recycles and scales
// the replicas of services that opted in with the label ares.enable=true.
//
// Safety first: the actuator resolves targets only among containers labelled ares.enable=true
// whose service (label ares.service, else com.docker.compose.service, else the container name,
// the same rules as the Docker sensor) is the action's service, and it re-checks the label on
// the inspect that precedes every mutating call. Every Act re-reads the state, so repeating an
// action is harmless.
package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// Labels the actuator reads and writes.
const (
	LabelEnable      = "ares.enable"                // must be "true" for ARES to touch a container
	LabelService     = "ares.service"               // service name; wins over the compose label
	LabelCompose     = "com.docker.compose.service" // service name under docker compose
	LabelScaled      = "ares.scaled"                // "true" on replicas that scale_out added
	LabelMaxReplicas = "ares.max_replicas"          // scale_out bound, read on the source replica
)

// ErrRefused marks an action the actuator will not carry out whatever the state: the target is
// not opted in, the service is at its replica bound, there is nothing ARES may remove. Retrying
// does not help; errors.Is(err, ErrRefused) tells them apart from engine failures.
var ErrRefused = errors.New("refused")

// Options configure an Actuator. The zero value is usable.
type Options struct {
	Timeout       time.Duration // whole Act call; default 30s (the caller's deadline also applies)
	StopTimeout   time.Duration // graceful stop before SIGKILL (restart, recycle, scale_in); default 5s
	HealthTimeout time.Duration // rolling restart: wait per replica for running (and healthy); default 20s
	MaxReplicas   int           // scale_out bound when the source has no ares.max_replicas label; default 4
	// Labels are extra "key=value" (or "key") filters a container must match on top of
	// ares.enable=true, the same as the Docker sensor's: ARES instances sharing a host, tests.
	Labels []string
	// Own, when set, is told about every container the actuator is about to stop, restart or
	// remove, so that the Docker sensor does not mistake ARES's own stops for a person's.
	Own *engine.OwnActions
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 5 * time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 20 * time.Second
	}
	if o.MaxReplicas <= 0 {
		o.MaxReplicas = 4
	}
}

// Actuator carries out restart, recycle, scale_out and scale_in on the local Docker engine. It
// keeps no state between calls and is safe for concurrent use; two calls on the same service
// are not serialized (the engine acts on one decision per target per tick).
type Actuator struct {
	cli *client.Client
	opt Options
	log *slog.Logger
}

var _ engine.Actuator = (*Actuator)(nil)

// New returns an actuator that drives cli. log may be nil; the caller scopes it.
func New(cli *client.Client, opt Options, log *slog.Logger) *Actuator {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Actuator{cli: cli, opt: opt, log: log}
}

// Name is the actuator's name in logs and outcomes.
func (a *Actuator) Name() string { return "docker" }

// Act carries out one action and reports what it did in Outcome.Detail. Errors read
// "docker: <action> <replica or service>: <cause>".
func (a *Actuator) Act(ctx context.Context, act engine.Action) (engine.Outcome, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, a.opt.Timeout)
	defer cancel()

	var detail string
	var err error
	switch act.Action {
	case engine.ActRestart:
		if act.Replica == "" {
			detail, err = a.restartService(ctx, act.Service)
		} else {
			detail, err = a.restartReplica(ctx, act.Service, act.Replica, act.Sensed)
		}
	case engine.ActRecycle:
		if act.Replica == "" {
			err = errors.New("recycle needs a replica")
			break
		}
		detail, err = a.recycle(ctx, act.Service, act.Replica)
	case engine.ActScaleOut:
		detail, err = a.scaleOut(ctx, act.Service)
	case engine.ActScaleIn:
		detail, err = a.scaleIn(ctx, act.Service)
	case engine.ActNotify:
		err = errors.New("notify is not a docker action (route it to the notify actuator)")
	default:
		err = fmt.Errorf("unknown action %q", act.Action)
	}

	out := engine.Outcome{Result: engine.ResultOK, Detail: detail, Duration: time.Since(start)}
	if err != nil {
		target := act.Replica
		if target == "" {
			target = act.Service
		}
		err = fmt.Errorf("docker: %s %s: %w", act.Action, target, err)
		out.Result, out.Error = engine.ResultError, err.Error()
		return out, err
	}
	a.log.Debug("action done", "action", act.Action, "service", act.Service, "replica", act.Replica,
		"duration", out.Duration, "detail", detail)
	return out, nil
}

// serviceOf names a container's service: label ares.service, else the compose service, else
// the container name.
func serviceOf(labels map[string]string, name string) string {
	if s := labels[LabelService]; s != "" {
		return s
	}
	if s := labels[LabelCompose]; s != "" {
		return s
	}
	return strings.TrimPrefix(name, "/")
}

// replica inspects the named replica and checks that ARES may touch it: label
// ares.enable=true and the expected service. It is the one inspect before every mutation.
func (a *Actuator) replica(ctx context.Context, service, name string) (container.InspectResponse, error) {
	res, err := a.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return container.InspectResponse{}, fmt.Errorf("no replica %q in service %q", name, service)
	}
	if err != nil {
		return container.InspectResponse{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	c := res.Container
	if c.Config == nil || c.State == nil || c.HostConfig == nil {
		return container.InspectResponse{}, fmt.Errorf("inspect %s: incomplete answer from the engine", name)
	}
	if c.Config.Labels[LabelEnable] != "true" {
		return container.InspectResponse{}, fmt.Errorf("%w: container %q has no label %s=true; ARES leaves it alone",
			ErrRefused, name, LabelEnable)
	}
	if !a.matches(c.Config.Labels) {
		return container.InspectResponse{}, fmt.Errorf("%w: container %q does not match the label filters %v", ErrRefused, name, a.opt.Labels)
	}
	if got := serviceOf(c.Config.Labels, c.Name); got != service {
		return container.InspectResponse{}, fmt.Errorf("no replica %q in service %q (it belongs to %q)", name, service, got)
	}
	return c, nil
}

// matches reports whether labels satisfy Options.Labels.
func (a *Actuator) matches(labels map[string]string) bool {
	for _, f := range a.opt.Labels {
		k, v, hasValue := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}

// replicas lists the service's containers (any state) that carry ares.enable=true, by name.
func (a *Actuator) replicas(ctx context.Context, service string) ([]container.Summary, error) {
	f := make(client.Filters).Add("label", LabelEnable+"=true").Add("label", a.opt.Labels...)
	res, err := a.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []container.Summary
	for _, c := range res.Items {
		if c.State == container.StateRemoving || c.State == container.StateDead {
			continue
		}
		if serviceOf(c.Labels, summaryName(c)) == service {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y container.Summary) int { return cmp.Compare(summaryName(x), summaryName(y)) })
	return out, nil
}

// summaryName is a listed container's own name: Names also holds link aliases ("/a/b").
func summaryName(c container.Summary) string {
	for _, n := range c.Names {
		if n = strings.TrimPrefix(n, "/"); !strings.Contains(n, "/") {
			return n
		}
	}
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

// name is an inspected container's name without the leading slash.
func name(c container.InspectResponse) string { return strings.TrimPrefix(c.Name, "/") }

// stopSeconds turns StopTimeout into the engine's whole seconds, rounding up.
func (a *Actuator) stopSeconds() *int {
	s := int(math.Ceil(a.opt.StopTimeout.Seconds()))
	return &s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
