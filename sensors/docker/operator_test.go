package docker

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// Operators win: a docker stop or kill that ARES did not announce marks the replica
// stopped_by_operator until it is started again; a restart ARES announced, and a crash, do not.
func TestOperatorStopIsMarked(t *testing.T) {
	t.Parallel()
	own := engine.NewOwnActions(0)
	s := newSensor(t, Options{Own: own})
	id := dockertest.Run(t, dockertest.Spec{Name: name("opstop"), Labels: labels(t, LabelService, "opstop-"+run)})
	watch(t, s, id)
	dockertest.Eventually(t, 10*time.Second, "watch syncs the running container", func() bool {
		e, ok := cached(s, id)
		return ok && e.state == "running"
	})
	stopped := func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.StoppedByOperator
	}
	cli := dockertest.Client(t)
	ctx := context.Background()

	// ARES's own restart (announced first) is not a person's stop.
	own.Expect(id)
	zero := 0
	if _, err := cli.ContainerRestart(ctx, id, client.ContainerRestartOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 10*time.Second, "running after ARES's restart", func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.State == "running"
	})
	if stopped() {
		t.Fatal("ARES's own restart marked the replica stopped_by_operator")
	}

	// A crash is not either.
	dockertest.Crash(t, id)
	dockertest.Eventually(t, 10*time.Second, "exited after the crash", func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.State == "exited"
	})
	if stopped() {
		t.Fatal("a crash marked the replica stopped_by_operator")
	}
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 10*time.Second, "running again", func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.State == "running"
	})

	// A person's docker stop is.
	if _, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 10*time.Second, "stopped_by_operator after docker stop", func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.State == "exited" && r.StoppedByOperator
	})
	// Started again: the mark is gone.
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 10*time.Second, "mark cleared by the start", func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.State == "running" && !r.StoppedByOperator
	})
	// A person's docker kill is too.
	if _, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 10*time.Second, "stopped_by_operator after docker kill", func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.State == "exited" && r.StoppedByOperator
	})
}

func TestStopSignal(t *testing.T) {
	for sig, want := range map[string]bool{"": true, "9": true, "SIGKILL": true, "15": true, "TERM": true, "1": false, "HUP": false, "SIGUSR1": false, "10": false} {
		if got := stopSignal(sig); got != want {
			t.Errorf("stopSignal(%q) = %v, want %v", sig, got, want)
		}
	}
}
