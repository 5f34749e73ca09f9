// Package swarm is the Docker Swarm sensor (runtime: swarm). It fills the same section of the
// facts as the single-host Docker sensor, under the same facts key ("docker"), so that
// policies do not change between runtimes: every swarm service labelled ares.enable=true is a
// service, and the newest task of each of its slots (of each node, for a global service) a
// replica, with the task's state, exit code and error, the node it runs on, and how often the
// orchestrator replaced it. docs/facts.md has the mapping.
//
// A tick lists the services, their tasks and the nodes (three calls, whatever the size of the
// fleet) and the containers of the node ARES talks to, for their health. Watch wakes the engine
// on the events that change them.
package swarm

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// Labels the sensor and the swarm actuator read on a service.
const (
	LabelEnable  = "ares.enable"           // "true": ARES may watch and heal the service
	LabelService = "ares.service"          // service name in the facts; default the swarm service's name
	LabelDesired = "ares.desired_replicas" // replicas without ARES's scaling (the actuator sets it on scale_out)
	// Name is the sensor's facts key: the section it fills is the docker sensor's.
	Name = "docker"
	// Runtime is the value of services.<name>.runtime.
	Runtime = "swarm"
)

// Options configure a Sensor. The zero value is usable.
type Options struct {
	// Labels are extra "key=value" labels a service must carry, on top of ares.enable=true.
	Labels  []string
	Timeout time.Duration // per Docker API call; default 5s
}

// Sensor reads swarm services and tasks. It is safe for concurrent use.
type Sensor struct {
	cli *client.Client
	opt Options
	log *slog.Logger
}

var _ engine.Sensor = (*Sensor)(nil)

// New returns a sensor that talks to a swarm manager through cli.
func New(cli *client.Client, opt Options, log *slog.Logger) *Sensor {
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sensor{cli: cli, opt: opt, log: log}
}

// Name is "docker": the swarm sensor vouches for the replicas section, like the docker sensor.
func (s *Sensor) Name() string { return Name }

// Filters selects the services ARES watches.
func Filters(labels []string) client.Filters {
	f := client.Filters{}.Add("label", LabelEnable+"=true")
	for _, l := range labels {
		f = f.Add("label", l)
	}
	return f
}

// ServiceName is the name a swarm service has in the facts.
func ServiceName(svc swarm.Service) string {
	if n := svc.Spec.Labels[LabelService]; n != "" {
		return n
	}
	return svc.Spec.Name
}

// Collect fills f.Services from the swarm.
func (s *Sensor) Collect(ctx context.Context, f *engine.Facts) error {
	cctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	svcs, err := s.cli.ServiceList(cctx, client.ServiceListOptions{Filters: Filters(s.opt.Labels)})
	if err != nil {
		return fmt.Errorf("swarm: list services: %w", err)
	}
	if len(svcs.Items) == 0 {
		nodes, err := s.cli.NodeList(cctx, client.NodeListOptions{})
		if err != nil {
			return fmt.Errorf("swarm: list nodes: %w", err)
		}
		FillNodes(f, nodes.Items, nil)
		return nil
	}
	tf := client.Filters{}
	for _, svc := range svcs.Items {
		tf = tf.Add("service", svc.ID)
	}
	tasks, err := s.cli.TaskList(cctx, client.TaskListOptions{Filters: tf})
	if err != nil {
		return fmt.Errorf("swarm: list tasks: %w", err)
	}
	nodes, err := s.cli.NodeList(cctx, client.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("swarm: list nodes: %w", err)
	}
	health := s.localHealth(cctx)
	byNode := map[string]swarm.Node{}
	for _, n := range nodes.Items {
		byNode[n.ID] = n
	}
	bySvc := map[string][]swarm.Task{}
	for _, t := range tasks.Items {
		bySvc[t.ServiceID] = append(bySvc[t.ServiceID], t)
	}
	for _, svc := range svcs.Items {
		Fill(f.Service(ServiceName(svc)), svc, bySvc[svc.ID], byNode, health)
	}
	FillNodes(f, nodes.Items, tasks.Items)
	return nil
}

// FailedWindow is the span of nodes.<id>.tasks_failed_10m.
const FailedWindow = 10 * time.Minute

// FillNodes fills f.Nodes from the swarm's nodes and the watched services' tasks: each node's
// state, and how many of those tasks run on it and failed on it within FailedWindow of
// f.Time (by the time of the task's last state change).
func FillNodes(f *engine.Facts, nodes []swarm.Node, tasks []swarm.Task) {
	if len(nodes) == 0 {
		return
	}
	f.Nodes = make(map[string]engine.Node, len(nodes))
	for _, n := range nodes {
		f.Nodes[n.ID] = engine.Node{Hostname: n.Description.Hostname, Status: string(n.Status.State),
			Availability: string(n.Spec.Availability), Manager: n.Spec.Role == swarm.NodeRoleManager,
			Leader: n.ManagerStatus != nil && n.ManagerStatus.Leader}
	}
	for _, t := range tasks {
		n, ok := f.Nodes[t.NodeID]
		if !ok {
			continue
		}
		switch t.Status.State {
		case swarm.TaskStateRunning:
			n.TasksRunning++
		case swarm.TaskStateFailed, swarm.TaskStateRejected:
			if f.Time.Sub(t.Status.Timestamp) <= FailedWindow {
				n.TasksFailed10m++
			}
		}
		f.Nodes[t.NodeID] = n
	}
}

// localHealth maps the container ids of swarm tasks on this node to their health; the
// others' health is not visible from here.
func (s *Sensor) localHealth(ctx context.Context) map[string]string {
	res, err := s.cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", "com.docker.swarm.task.id")})
	if err != nil {
		s.log.Debug("swarm: container health not read", "err", err)
		return nil
	}
	out := make(map[string]string, len(res.Items))
	for _, c := range res.Items {
		h := "none"
		switch {
		case strings.Contains(c.Status, "(healthy)"):
			h = "healthy"
		case strings.Contains(c.Status, "(unhealthy)"):
			h = "unhealthy"
		case strings.Contains(c.Status, "(health: starting)"):
			h = "starting"
		}
		out[c.ID] = h
	}
	return out
}

// Fill turns one service and its tasks into the facts' service section (exported for the
// benchmarks and tests that build synthetic swarms).
func Fill(out *engine.Service, svc swarm.Service, tasks []swarm.Task, nodes map[string]swarm.Node, health map[string]string) {
	out.Runtime = Runtime
	global := svc.Spec.Mode.Global != nil
	spec := 0
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		spec = int(*r.Replicas)
	}
	desired := spec
	if v, err := strconv.Atoi(svc.Spec.Labels[LabelDesired]); err == nil && v > 0 {
		desired = min(v, max(spec, 1))
	}
	slots := map[string][]swarm.Task{}
	for _, t := range tasks {
		k := strconv.Itoa(t.Slot)
		if global || t.Slot == 0 {
			k = t.NodeID
		}
		slots[k] = append(slots[k], t)
	}
	keys := make([]string, 0, len(slots))
	for k := range slots {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ai, aerr := strconv.Atoi(a)
		bi, berr := strconv.Atoi(b)
		if aerr == nil && berr == nil {
			return cmp.Compare(ai, bi)
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		ts := slots[k]
		slices.SortFunc(ts, func(a, b swarm.Task) int { // newest first
			if c := b.Meta.CreatedAt.Compare(a.Meta.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(b.Meta.Version.Index, a.Meta.Version.Index)
		})
		cur := ts[0]
		slot, _ := strconv.Atoi(k)
		if retired(cur) && (global || slot > spec) {
			continue // a slot scaled away, or a node the global service left
		}
		r := engine.Replica{ID: cur.ID, Name: svc.Spec.Name + "." + k, State: containerState(cur), Health: "none",
			Error: cur.Status.Err}
		if cs := cur.Status.ContainerStatus; cs != nil {
			r.ExitCode = cs.ExitCode
			if h, ok := health[cs.ContainerID]; ok && r.State == "running" {
				r.Health = h
			}
		}
		for _, old := range ts[1:] {
			if old.Status.State == swarm.TaskStateFailed || old.Status.State == swarm.TaskStateRejected {
				r.RestartCount++
			}
		}
		if n, ok := nodes[cur.NodeID]; ok {
			r.Node = n.Description.Hostname
			r.NodeStatus = string(n.Status.State)
			r.NodeAvailability = string(n.Spec.Availability)
		}
		r.Scaled = !global && slot > desired
		out.Replicas = append(out.Replicas, r)
	}
	if global {
		desired = len(out.Replicas)
	}
	out.DesiredReplicas = max(desired, 1)
}

// retired: the orchestrator wants the task gone and it is gone.
func retired(t swarm.Task) bool {
	return (t.DesiredState == swarm.TaskStateShutdown || t.DesiredState == swarm.TaskStateRemove) && terminal(t.Status.State)
}

func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// containerState maps a task state onto the container states the policies know.
func containerState(t swarm.Task) string {
	switch t.Status.State {
	case swarm.TaskStateRunning:
		return "running"
	case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateComplete,
		swarm.TaskStateShutdown, swarm.TaskStateRemove:
		return "exited"
	default: // new, allocated, pending, assigned, accepted, preparing, ready, starting
		return "created"
	}
}
