// Package swarm is the actuator for Docker Swarm (runtime: swarm). It maps the decisions the
// policies make for single-host Docker onto the swarm's own operations, so that the
// orchestrator, not ARES, places and replaces containers:
//
//   - restart of a service: a forced rolling update (TaskTemplate.ForceUpdate+1), carried out
//     by the swarm with the service's update_config (parallelism, delay, order);
//   - restart or recycle of a replica (a task slot): its task is replaced. A task that failed
//     is already being replaced by the orchestrator (restart policy), and the actuator only
//     waits for the replacement; a running one has its container removed, so that the
//     orchestrator starts a new task in the slot. A container on another node cannot be
//     reached from here: the slot is then replaced by a forced update of the service;
//   - scale_out / scale_in: the service's replica count, one at a time, between the replicas it
//     had before ARES scaled it (label ares.desired_replicas, written on the first scale_out)
//     and the bound (label ares.max_replicas on the service, else Options.MaxReplicas);
//   - drain of a node (node-level: the decision names a node id or unique hostname, no
//     service): the node's availability becomes drain, with the node's version, so that the
//     swarm moves its tasks elsewhere. Putting it back is an operator's job:
//     docker node update --availability active <node>.
//
// Only services labelled ares.enable=true (and Options.Labels) are touched; every Act reads the
// service again first, and updates carry its version, so a concurrent change makes the update
// fail instead of overwriting it.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// Labels the actuator reads and writes on a service (the swarm sensor reads the same).
const (
	LabelEnable      = "ares.enable"
	LabelService     = "ares.service"
	LabelDesired     = "ares.desired_replicas"
	LabelMaxReplicas = "ares.max_replicas"
)

// ErrRefused marks an action the actuator will not carry out whatever the state.
var ErrRefused = errors.New("refused")

// Options configure an Actuator. The zero value is usable.
type Options struct {
	MaxReplicas int // scale_out bound without an ares.max_replicas label; default 4
	// Labels are extra "key=value" labels a service must carry on top of ares.enable=true.
	Labels []string
	// Poll is how often a replacement is looked for; default 250ms.
	Poll time.Duration
}

// Actuator carries out actions on swarm services. It keeps no state and is safe for
// concurrent use.
type Actuator struct {
	cli *client.Client
	opt Options
	log *slog.Logger
}

var _ engine.Actuator = (*Actuator)(nil)

// New returns an actuator that talks to a swarm manager through cli.
func New(cli *client.Client, opt Options, log *slog.Logger) *Actuator {
	if opt.MaxReplicas <= 0 {
		opt.MaxReplicas = 4
	}
	if opt.Poll <= 0 {
		opt.Poll = 250 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Actuator{cli: cli, opt: opt, log: log}
}

// Name is "swarm".
func (a *Actuator) Name() string { return "swarm" }

// Act carries out a on the service a.Service names.
func (a *Actuator) Act(ctx context.Context, act engine.Action) (engine.Outcome, error) {
	if act.Action == engine.ActDrain {
		detail, err := a.drain(ctx, act.Node)
		if err != nil {
			return engine.Outcome{}, err
		}
		return engine.Outcome{Result: engine.ResultOK, Detail: detail}, nil
	}
	svc, err := a.service(ctx, act.Service)
	if err != nil {
		return engine.Outcome{}, err
	}
	var detail string
	switch {
	case act.Action == engine.ActRestart && act.Replica == "":
		detail, err = a.forceUpdate(ctx, svc, "restart")
	case act.Action == engine.ActRestart || act.Action == engine.ActRecycle:
		if act.Replica == "" {
			return engine.Outcome{}, fmt.Errorf("swarm: recycle %s: %w: needs a replica", act.Service, ErrRefused)
		}
		detail, err = a.replace(ctx, svc, act)
	case act.Action == engine.ActScaleOut:
		detail, err = a.scale(ctx, svc, +1)
	case act.Action == engine.ActScaleIn:
		detail, err = a.scale(ctx, svc, -1)
	default:
		return engine.Outcome{}, fmt.Errorf("swarm: %w: action %q", ErrRefused, act.Action)
	}
	if err != nil {
		return engine.Outcome{}, err
	}
	return engine.Outcome{Result: engine.ResultOK, Detail: detail}, nil
}

// service finds the opted-in swarm service that the facts call name.
func (a *Actuator) service(ctx context.Context, name string) (swarm.Service, error) {
	f := client.Filters{}.Add("label", LabelEnable+"=true")
	for _, l := range a.opt.Labels {
		f = f.Add("label", l)
	}
	res, err := a.cli.ServiceList(ctx, client.ServiceListOptions{Filters: f})
	if err != nil {
		return swarm.Service{}, fmt.Errorf("swarm: list services: %w", err)
	}
	for _, s := range res.Items {
		n := s.Spec.Labels[LabelService]
		if n == "" {
			n = s.Spec.Name
		}
		if n == name {
			return s, nil
		}
	}
	return swarm.Service{}, fmt.Errorf("swarm: service %s: %w: no service labelled %s=true by that name", name, ErrRefused, LabelEnable)
}

func (a *Actuator) update(ctx context.Context, svc swarm.Service, spec swarm.ServiceSpec) error {
	if _, err := a.cli.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{Version: svc.Meta.Version, Spec: spec}); err != nil {
		return fmt.Errorf("swarm: update %s: %w", svc.Spec.Name, err)
	}
	return nil
}

// forceUpdate starts a rolling replacement of every task of the service.
func (a *Actuator) forceUpdate(ctx context.Context, svc swarm.Service, why string) (string, error) {
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	if err := a.update(ctx, svc, spec); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: rolling forced update of %s started (force_update %d)", why, svc.Spec.Name, spec.TaskTemplate.ForceUpdate), nil
}

// replace gets a new task into the replica's slot and waits until it runs.
func (a *Actuator) replace(ctx context.Context, svc swarm.Service, act engine.Action) (string, error) {
	cur, err := a.slotTask(ctx, svc, act.Replica)
	if err != nil {
		return "", err
	}
	if act.Sensed != nil && act.Sensed.ID != "" && cur.ID != act.Sensed.ID && cur.Status.State == swarm.TaskStateRunning {
		return fmt.Sprintf("task %s already replaced by %s", short(act.Sensed.ID), short(cur.ID)), nil
	}
	old := cur.ID
	switch {
	case cur.Status.State == swarm.TaskStateRunning:
		cs := cur.Status.ContainerStatus
		if cs == nil || cs.ContainerID == "" {
			return "", fmt.Errorf("swarm: %s: task %s has no container", act.Replica, short(cur.ID))
		}
		if _, err := a.cli.ContainerRemove(ctx, cs.ContainerID, client.ContainerRemoveOptions{Force: true}); err != nil {
			if cerrdefs.IsNotFound(err) { // on another node
				return a.forceUpdate(ctx, svc, act.Action+" "+act.Replica+" (its container is on another node)")
			}
			return "", fmt.Errorf("swarm: remove container of %s: %w", act.Replica, err)
		}
	case terminal(cur.Status.State):
		// The orchestrator replaces it by its restart policy; wait for that below.
	default: // being started already
		old = ""
	}
	for {
		t, err := a.slotTask(ctx, svc, act.Replica)
		if err == nil && t.ID != old && t.Status.State == swarm.TaskStateRunning {
			return fmt.Sprintf("%s: task %s replaced by %s", act.Action, short(cur.ID), short(t.ID)), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("swarm: %s %s: no running replacement yet: %w", act.Action, act.Replica, ctx.Err())
		case <-time.After(a.opt.Poll):
		}
	}
}

// slotTask is the newest task of the replica "<service>.<slot>" (or "<service>.<node id>").
func (a *Actuator) slotTask(ctx context.Context, svc swarm.Service, replica string) (swarm.Task, error) {
	res, err := a.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", svc.ID)})
	if err != nil {
		return swarm.Task{}, fmt.Errorf("swarm: tasks of %s: %w", svc.Spec.Name, err)
	}
	var best *swarm.Task
	for i := range res.Items {
		t := &res.Items[i]
		k := strconv.Itoa(t.Slot)
		if svc.Spec.Mode.Global != nil || t.Slot == 0 {
			k = t.NodeID
		}
		if svc.Spec.Name+"."+k != replica {
			continue
		}
		if best == nil || t.Meta.CreatedAt.After(best.Meta.CreatedAt) ||
			(t.Meta.CreatedAt.Equal(best.Meta.CreatedAt) && t.Meta.Version.Index > best.Meta.Version.Index) {
			best = t
		}
	}
	if best == nil {
		return swarm.Task{}, fmt.Errorf("swarm: %s: %w: no task in that slot", replica, ErrRefused)
	}
	return *best, nil
}

// scale moves the replica count by delta within [ares.desired_replicas, max replicas].
func (a *Actuator) scale(ctx context.Context, svc swarm.Service, delta int) (string, error) {
	r := svc.Spec.Mode.Replicated
	if r == nil || r.Replicas == nil {
		return "", fmt.Errorf("swarm: scale %s: %w: not a replicated service", svc.Spec.Name, ErrRefused)
	}
	cur := int(*r.Replicas)
	base := cur
	if v, err := strconv.Atoi(svc.Spec.Labels[LabelDesired]); err == nil && v > 0 {
		base = v
	}
	bound := a.opt.MaxReplicas
	if v, err := strconv.Atoi(svc.Spec.Labels[LabelMaxReplicas]); err == nil && v > 0 {
		bound = v
	}
	next := cur + delta
	switch {
	case delta > 0 && next > bound:
		return "", fmt.Errorf("swarm: scale_out %s: %w: at its bound of %d replicas", svc.Spec.Name, ErrRefused, bound)
	case delta < 0 && (next < base || next < 1):
		return "", fmt.Errorf("swarm: scale_in %s: %w: at its %d replicas without ARES's scaling", svc.Spec.Name, ErrRefused, base)
	}
	spec := svc.Spec
	labels := make(map[string]string, len(spec.Labels)+1)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	if _, ok := labels[LabelDesired]; !ok {
		labels[LabelDesired] = strconv.Itoa(cur) // what the service runs without ARES
	}
	spec.Labels = labels
	n := uint64(next)
	spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}
	if err := a.update(ctx, svc, spec); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s replicas %d → %d", svc.Spec.Name, cur, next), nil
}

func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// node finds the node that name names: its id, or the hostname of exactly one node.
func (a *Actuator) node(ctx context.Context, name string) (swarm.Node, error) {
	if name == "" {
		return swarm.Node{}, fmt.Errorf("swarm: drain: %w: no node named", ErrRefused)
	}
	res, err := a.cli.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return swarm.Node{}, fmt.Errorf("swarm: list nodes: %w", err)
	}
	var found []swarm.Node
	for _, n := range res.Items {
		if n.ID == name {
			return n, nil
		}
		if n.Description.Hostname == name {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return swarm.Node{}, fmt.Errorf("swarm: drain %s: %w: no such node", name, ErrRefused)
	case 1:
		return found[0], nil
	}
	return swarm.Node{}, fmt.Errorf("swarm: drain %s: %w: %d nodes have that hostname, name the node id", name, ErrRefused, len(found))
}

// drain sets the node's availability to drain, with the version just read, so that a
// concurrent change to the node makes the update fail instead of being overwritten. A node
// drained already is left as it is.
func (a *Actuator) drain(ctx context.Context, name string) (string, error) {
	n, err := a.node(ctx, name)
	if err != nil {
		return "", err
	}
	was := n.Spec.Availability
	if was == swarm.NodeAvailabilityDrain {
		return fmt.Sprintf("node %s (%s) is drained already", short(n.ID), n.Description.Hostname), nil
	}
	spec := n.Spec
	spec.Availability = swarm.NodeAvailabilityDrain
	if _, err := a.cli.NodeUpdate(ctx, n.ID, client.NodeUpdateOptions{Version: n.Meta.Version, Spec: spec}); err != nil {
		return "", fmt.Errorf("swarm: drain %s: %w", n.Description.Hostname, err)
	}
	a.log.Warn("node drained", "node", n.ID, "hostname", n.Description.Hostname, "was", was)
	return fmt.Sprintf("node %s (%s) availability %s → drain (version %d); to put it back: docker node update --availability active %s",
		short(n.ID), n.Description.Hostname, was, n.Meta.Version.Index, n.ID), nil
}
