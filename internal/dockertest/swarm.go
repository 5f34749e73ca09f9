package dockertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

var (
	swarmOnce sync.Once
	swarmErr  error
)

// Swarm makes the local engine a single-node swarm manager when it is in no swarm yet
// (`docker swarm init --advertise-addr 127.0.0.1`), or skips/fails the test when it cannot.
// It never leaves the swarm: other tests may be using it, and leaving would remove their
// services. A test's services are labelled ares.test=1 and removed (Service).
func Swarm(t testing.TB) *client.Client {
	t.Helper()
	cli := Client(t)
	swarmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		info, err := cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			swarmErr = fmt.Errorf("docker info: %w", err)
			return
		}
		switch info.Info.Swarm.LocalNodeState {
		case swarm.LocalNodeStateActive:
			if !info.Info.Swarm.ControlAvailable {
				swarmErr = fmt.Errorf("this engine is a swarm worker, not a manager: services cannot be created from here")
			}
			return
		case swarm.LocalNodeStateInactive:
		default:
			swarmErr = fmt.Errorf("swarm state %q", info.Info.Swarm.LocalNodeState)
			return
		}
		if _, err := cli.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
			swarmErr = fmt.Errorf("swarm init --advertise-addr 127.0.0.1: %w", err)
		}
	})
	if swarmErr != nil {
		Unavailable(t, "docker swarm (single node)", swarmErr)
	}
	return cli
}

// ServiceSpec describes a test service: replicas of the test server (or Image), labelled
// ares.test=1 plus Labels on the service.
type ServiceSpec struct {
	Name     string
	Image    string // default: the test server, used as a local image (no registry)
	Labels   map[string]string
	Replicas uint64
	Env      []string
	// RestartDelay is the swarm's delay before it replaces a failed task; default 1s.
	RestartDelay time.Duration
}

// Service creates a replicated swarm service and removes it when the test ends. It returns
// the service id.
func Service(t testing.TB, s ServiceSpec) string {
	t.Helper()
	cli := Swarm(t)
	if s.Image == "" {
		s.Image = TestServer(t)
	}
	if s.RestartDelay == 0 {
		s.RestartDelay = time.Second
	}
	labels := map[string]string{TestLabel: "1"}
	for k, v := range s.Labels {
		labels[k] = v
	}
	replicas := s.Replicas
	delay := s.RestartDelay
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: s.Name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: s.Image, Env: s.Env, Labels: map[string]string{TestLabel: "1"}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		t.Fatalf("dockertest: service create %s: %v", s.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = cli.ServiceRemove(ctx, res.ID, client.ServiceRemoveOptions{})
	})
	return res.ID
}

// RunningTasks returns the ids of the containers of the service's running tasks.
func RunningTasks(t testing.TB, service string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Swarm(t).TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", service).Add("desired-state", "running")})
	if err != nil {
		t.Fatalf("dockertest: tasks of %s: %v", service, err)
	}
	var out []string
	for _, tk := range res.Items {
		if tk.Status.State == swarm.TaskStateRunning && tk.Status.ContainerStatus != nil {
			out = append(out, tk.Status.ContainerStatus.ContainerID)
		}
	}
	return out
}
