package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// restartReplica brings one replica back. A replica that is not running is started: this is
// the fast path after a die event, one inspect and then ContainerStart. A running one is
// restarted with the stop timeout.
//
// Faster still: when this tick's facts saw the replica down (sensed), its container is started
// by id at once. That id came from the sensor's list of labelled containers, and a container's
// labels never change, so the safety check holds; the daemon re-checks the state under the
// container's lock (starting a running container is a no-op), so the action stays idempotent.
// An inspect would instead wait tens of milliseconds on that lock while the daemon cleans up
// after the die. A container that is gone (recycled meanwhile) falls back to the inspect path.
func (a *Actuator) restartReplica(ctx context.Context, service, replica string, sensed *engine.SensedReplica) (string, error) {
	if sensed != nil && sensed.ID != "" && isDown(sensed.State) {
		_, err := a.cli.ContainerStart(ctx, sensed.ID, client.ContainerStartOptions{})
		if err == nil {
			return fmt.Sprintf("started %s (was %s)", replica, sensed.State), nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("start: %w", err)
		}
	}
	c, err := a.replica(ctx, service, replica)
	if err != nil {
		return "", err
	}
	return a.restart(ctx, c)
}

// isDown reports a state from which a container is started rather than restarted.
func isDown(state string) bool {
	switch container.ContainerState(state) {
	case container.StateExited, container.StateCreated, container.StateDead:
		return true
	}
	return false
}

// restart starts or restarts an inspected, checked container and says which.
func (a *Actuator) restart(ctx context.Context, c container.InspectResponse) (string, error) {
	switch st := c.State.Status; st {
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		a.opt.Own.Expect(c.ID)
		if _, err := a.cli.ContainerRestart(ctx, c.ID, client.ContainerRestartOptions{Timeout: a.stopSeconds()}); err != nil {
			return "", fmt.Errorf("restart: %w", err)
		}
		return fmt.Sprintf("restarted %s (was %s)", name(c), st), nil
	case container.StateRemoving:
		return "", fmt.Errorf("%s is being removed", name(c))
	default: // created, exited, dead
		if _, err := a.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return "", fmt.Errorf("start: %w", err)
		}
		return fmt.Sprintf("started %s (was %s, exit code %d)", name(c), st, c.State.ExitCode), nil
	}
}

// restartService restarts the service's replicas one after the other, waiting for each to run
// (and be healthy, when it has a healthcheck) before the next. It stops at the first replica
// that does not come back, so that a bad restart never takes the whole service down.
func (a *Actuator) restartService(ctx context.Context, service string) (string, error) {
	reps, err := a.replicas(ctx, service)
	if err != nil {
		return "", err
	}
	if len(reps) == 0 {
		return "", fmt.Errorf("no replica of service %q has label %s=true", service, LabelEnable)
	}
	var done []string
	for _, r := range reps {
		c, err := a.replica(ctx, service, r.ID)
		if err != nil {
			return "", fmt.Errorf("after %d of %d replicas: %w", len(done), len(reps), err)
		}
		what, err := a.restart(ctx, c)
		if err != nil {
			return "", fmt.Errorf("%s (after %d of %d replicas): %w", name(c), len(done), len(reps), err)
		}
		health, err := a.waitReady(ctx, c.ID)
		if err != nil {
			return "", fmt.Errorf("%s (after %d of %d replicas): %w", name(c), len(done), len(reps), err)
		}
		done = append(done, what+", "+health)
	}
	return fmt.Sprintf("rolling restart of %d replicas: %s", len(reps), strings.Join(done, "; ")), nil
}

// waitReady polls the container until it runs and, when it has a healthcheck, is healthy,
// bounded by HealthTimeout. It returns "running" or "healthy".
func (a *Actuator) waitReady(ctx context.Context, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opt.HealthTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "unknown"
	for {
		res, err := a.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return "", fmt.Errorf("inspect while waiting: %w", err)
		}
		if err == nil && res.Container.State != nil {
			st := res.Container.State
			last = string(st.Status)
			switch {
			case st.Running && st.Health == nil:
				return "running", nil
			case st.Running && st.Health.Status == container.Healthy:
				return "healthy", nil
			case st.Running:
				last += ", health " + string(st.Health.Status)
			case !st.Restarting:
				return "", fmt.Errorf("%s after restart (exit code %d)", st.Status, st.ExitCode)
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not ready in time (health timeout %s; last seen %s)", a.opt.HealthTimeout, last)
		case <-tick.C:
		}
	}
}
