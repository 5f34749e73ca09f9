package swarm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func task(id string, slot int, age time.Duration, state, desired swarm.TaskState, exit int) swarm.Task {
	t := swarm.Task{ID: id, Slot: slot, NodeID: "n1", DesiredState: desired,
		Status: swarm.TaskStatus{State: state, ContainerStatus: &swarm.ContainerStatus{ContainerID: "c-" + id, ExitCode: exit}}}
	t.Meta.CreatedAt = t0.Add(-age)
	if state == swarm.TaskStateFailed {
		t.Status.Err = fmt.Sprintf("task: non-zero exit (%d)", exit)
	}
	return t
}

func replicated(name string, n uint64, labels map[string]string) swarm.Service {
	s := swarm.Service{ID: "svc-" + name}
	s.Spec.Name, s.Spec.Labels = name, labels
	s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
	return s
}

var nodes = map[string]swarm.Node{"n1": func() swarm.Node {
	var n swarm.Node
	n.ID, n.Description.Hostname, n.Status.State, n.Spec.Availability = "n1", "host-1", swarm.NodeStateReady, swarm.NodeAvailabilityActive
	return n
}()}

// The newest task of each slot is the replica; earlier failed tasks count as restarts; a slot
// scaled away disappears; a failed task waiting for its replacement is an exited replica.
func TestFillFromTasks(t *testing.T) {
	svc := replicated("web", 2, map[string]string{LabelEnable: "true"})
	tasks := []swarm.Task{
		task("a1", 1, 3*time.Minute, swarm.TaskStateFailed, swarm.TaskStateShutdown, 137),
		task("a2", 1, 2*time.Minute, swarm.TaskStateFailed, swarm.TaskStateShutdown, 1),
		task("a3", 1, time.Minute, swarm.TaskStateRunning, swarm.TaskStateRunning, 0),
		task("b1", 2, time.Minute, swarm.TaskStateFailed, swarm.TaskStateRunning, 137),
		task("c1", 3, time.Minute, swarm.TaskStateShutdown, swarm.TaskStateShutdown, 0), // scaled in
	}
	var out engine.Service
	Fill(&out, svc, tasks, nodes, map[string]string{"c-a3": "healthy"})
	if out.Runtime != "swarm" || out.DesiredReplicas != 2 || len(out.Replicas) != 2 {
		t.Fatalf("service = %+v", out)
	}
	r1, r2 := out.Replicas[0], out.Replicas[1]
	if r1.Name != "web.1" || r1.ID != "a3" || r1.State != "running" || r1.Health != "healthy" || r1.RestartCount != 2 ||
		r1.Node != "host-1" || r1.NodeStatus != "ready" || r1.NodeAvailability != "active" {
		t.Errorf("web.1 = %+v", r1)
	}
	if r2.Name != "web.2" || r2.State != "exited" || r2.ExitCode != 137 || r2.Error != "task: non-zero exit (137)" || r2.Health != "none" {
		t.Errorf("web.2 = %+v", r2)
	}
}

// After ARES scaled out, desired_replicas stays what the service ran before, and the slots
// beyond it are marked scaled.
func TestFillScaledSlots(t *testing.T) {
	svc := replicated("web", 3, map[string]string{LabelEnable: "true", LabelDesired: "1", LabelService: "shop-web"})
	var tasks []swarm.Task
	for i := 1; i <= 3; i++ {
		tasks = append(tasks, task(fmt.Sprint(i), i, time.Minute, swarm.TaskStateRunning, swarm.TaskStateRunning, 0))
	}
	var out engine.Service
	Fill(&out, svc, tasks, nodes, nil)
	if out.DesiredReplicas != 1 || out.Replicas[0].Scaled || !out.Replicas[1].Scaled || !out.Replicas[2].Scaled {
		t.Errorf("desired %d, scaled %v %v %v", out.DesiredReplicas, out.Replicas[0].Scaled, out.Replicas[1].Scaled, out.Replicas[2].Scaled)
	}
	if ServiceName(svc) != "shop-web" {
		t.Errorf("ServiceName = %q", ServiceName(svc))
	}
}

// On a real single-node swarm: the service's tasks become replicas; a crashed task is
// replaced by the orchestrator and counted.
func TestCollectFromSwarm(t *testing.T) {
	scope := fmt.Sprintf("sensor-%d", time.Now().UnixNano()%1e9)
	name := "ares-test-" + scope
	dockertest.Service(t, dockertest.ServiceSpec{Name: name, Replicas: 2,
		Labels: map[string]string{LabelEnable: "true", "ares.test.scope": scope}})
	s := New(dockertest.Swarm(t), Options{Labels: []string{"ares.test.scope=" + scope}}, nil)
	collect := func() *engine.Service {
		f := engine.NewFacts(1, time.Now())
		if err := s.Collect(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		if len(f.Services) != 1 {
			t.Fatalf("services = %v, want only %s", f.Services, name)
		}
		return f.Services[name]
	}
	var svc *engine.Service
	dockertest.Eventually(t, 60*time.Second, "two running replicas", func() bool {
		svc = collect()
		return len(svc.Replicas) == 2 && svc.Replicas[0].State == "running" && svc.Replicas[1].State == "running"
	})
	if svc.Runtime != "swarm" || svc.DesiredReplicas != 2 || svc.Replicas[0].Node == "" || svc.Replicas[0].NodeStatus != "ready" {
		t.Errorf("service = %+v", svc)
	}
	victim := svc.Replicas[0]
	if ids := dockertest.RunningTasks(t, name); len(ids) != 2 {
		t.Fatalf("running task containers = %v", ids)
	}
	// Crash the container of the victim's task.
	tk, err := dockertest.Swarm(t).TaskInspect(context.Background(), victim.ID, client.TaskInspectOptions{})
	if err != nil || tk.Task.Status.ContainerStatus == nil {
		t.Fatalf("inspect task %s: %v", victim.ID, err)
	}
	wakes := make(chan string, 64)
	wctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = s.Watch(wctx, func(r string) { wakes <- r }) }()
	time.Sleep(500 * time.Millisecond) // the stream is up
	dockertest.Crash(t, tk.Task.Status.ContainerStatus.ContainerID)
	dockertest.Eventually(t, 20*time.Second, "Watch wakes the engine on the crash", func() bool {
		for {
			select {
			case r := <-wakes:
				if r == "event:die" {
					return true
				}
			default:
				return false
			}
		}
	})
	dockertest.Eventually(t, 60*time.Second, "the crashed task replaced and counted", func() bool {
		for _, r := range collect().Replicas {
			if r.Name == victim.Name {
				return r.ID != victim.ID && r.State == "running" && r.RestartCount >= 1
			}
		}
		return false
	})
}
