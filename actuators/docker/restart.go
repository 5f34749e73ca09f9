package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// restartReplica brings one replica back. A replica that is not running is started: this is
// the fast path after a die event, one inspect and then ContainerStart. A running one is
// restarted with the stop timeout.
func (a *Actuator) restartReplica(ctx context.Context, service, replica string) (string, error) {
	c, err := a.replica(ctx, service, replica)
	if err != nil {
		return "", err
	}
	return a.restart(ctx, c)
}

// restart starts or restarts an inspected, checked container and says which.
func (a *Actuator) restart(ctx context.Context, c container.InspectResponse) (string, error) {
	switch st := c.State.Status; st {
	case container.StateRunning, container.StatePaused, container.StateRestarting:
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
