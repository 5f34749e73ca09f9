package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

func newService(t *testing.T, replicas uint64, labels map[string]string) (name string, a *Actuator) {
	t.Helper()
	scope := fmt.Sprintf("act-%d", time.Now().UnixNano()%1e9)
	name = "ares-test-" + scope
	l := map[string]string{LabelEnable: "true", "ares.test.scope": scope}
	for k, v := range labels {
		l[k] = v
	}
	dockertest.Service(t, dockertest.ServiceSpec{Name: name, Replicas: replicas, Labels: l})
	a = New(dockertest.Swarm(t), Options{Labels: []string{"ares.test.scope=" + scope}, MaxReplicas: 3}, nil)
	waitRunning(t, name, int(replicas))
	return name, a
}

func waitRunning(t *testing.T, name string, n int) {
	t.Helper()
	dockertest.Eventually(t, 60*time.Second, fmt.Sprintf("%d running tasks of %s", n, name), func() bool {
		return len(dockertest.RunningTasks(t, name)) == n
	})
}

func act(t *testing.T, a *Actuator, x engine.Action) (engine.Outcome, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return a.Act(ctx, x)
}

// scale_out and scale_in change the running task count, one at a time, between the replicas
// the service had before ARES scaled it and the bound.
func TestScaleChangesRunningTasks(t *testing.T) {
	name, a := newService(t, 1, map[string]string{LabelMaxReplicas: "2"})
	out, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActScaleOut, Service: name, Reason: "cpu"}})
	if err != nil || !strings.Contains(out.Detail, "1 → 2") {
		t.Fatalf("scale_out: %+v, %v", out, err)
	}
	waitRunning(t, name, 2)
	_, err = act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActScaleOut, Service: name, Reason: "cpu"}})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "bound of 2") {
		t.Errorf("scale_out past ares.max_replicas: %v", err)
	}
	res, err := dockertest.Swarm(t).ServiceInspect(context.Background(), name, client.ServiceInspectOptions{})
	if err != nil || res.Service.Spec.Labels[LabelDesired] != "1" {
		t.Errorf("label %s = %q, %v; want 1", LabelDesired, res.Service.Spec.Labels[LabelDesired], err)
	}
	if _, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActScaleIn, Service: name, Reason: "idle"}}); err != nil {
		t.Fatalf("scale_in: %v", err)
	}
	waitRunning(t, name, 1)
	if _, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActScaleIn, Service: name, Reason: "idle"}}); !errors.Is(err, ErrRefused) {
		t.Errorf("scale_in below the service's own replicas: %v", err)
	}
}

// A recycle of a running replica replaces its task (new task, new container) in the same slot.
func TestRecycleReplacesTask(t *testing.T) {
	name, a := newService(t, 1, nil)
	before := dockertest.RunningTasks(t, name)
	out, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActRecycle, Service: name, Replica: name + ".1", Reason: "leak"}})
	if err != nil || !strings.Contains(out.Detail, "replaced by") {
		t.Fatalf("recycle: %+v, %v", out, err)
	}
	after := dockertest.RunningTasks(t, name)
	if len(after) != 1 || after[0] == before[0] {
		t.Errorf("containers before %v, after %v: want one new", before, after)
	}
	// Acting again on the task the facts saw is a no-op now.
	res, _ := dockertest.Swarm(t).TaskList(context.Background(), client.TaskListOptions{Filters: client.Filters{}.Add("service", name)})
	var oldTask string
	for _, tk := range res.Items {
		if tk.Status.ContainerStatus != nil && tk.Status.ContainerStatus.ContainerID == before[0] {
			oldTask = tk.ID
		}
	}
	out, err = act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: name, Replica: name + ".1", Reason: "x"},
		Sensed: &engine.SensedReplica{ID: oldTask}})
	if err != nil || !strings.Contains(out.Detail, "already replaced") {
		t.Errorf("repeat on the replaced task: %+v, %v", out, err)
	}
	if got := dockertest.RunningTasks(t, name); len(got) != 1 || got[0] != after[0] {
		t.Errorf("repeat replaced the new task too: %v", got)
	}
}

// A service-level restart is a rolling forced update: every task is replaced.
func TestServiceRestartIsForcedUpdate(t *testing.T) {
	name, a := newService(t, 2, nil)
	before := dockertest.RunningTasks(t, name)
	out, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: name, Reason: "probe"}})
	if err != nil || !strings.Contains(out.Detail, "force_update 1") {
		t.Fatalf("restart: %+v, %v", out, err)
	}
	dockertest.Eventually(t, 90*time.Second, "every task replaced", func() bool {
		now := dockertest.RunningTasks(t, name)
		if len(now) != 2 {
			return false
		}
		for _, c := range now {
			for _, b := range before {
				if c == b {
					return false
				}
			}
		}
		return true
	})
}

// Only opted-in services are touched.
func TestRefusesServiceWithoutLabel(t *testing.T) {
	scope := fmt.Sprintf("act-%d", time.Now().UnixNano()%1e9)
	name := "ares-test-" + scope
	dockertest.Service(t, dockertest.ServiceSpec{Name: name, Replicas: 1, Labels: map[string]string{"ares.test.scope": scope}})
	a := New(dockertest.Swarm(t), Options{Labels: []string{"ares.test.scope=" + scope}}, nil)
	_, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActScaleOut, Service: name, Reason: "cpu"}})
	if !errors.Is(err, ErrRefused) {
		t.Errorf("scale_out of a service without ares.enable: %v", err)
	}
}
