//go:build unix

package dockertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// Crash kills the container's main process with SIGKILL from the host, the way a crash (or the
// kernel) would: the daemon sees it die without anyone asking it to kill or stop the container,
// so ARES treats it as a crash, not as an operator's stop (which it would leave alone). It
// needs the container's process to be visible and signalable from here (root on the Docker
// host); otherwise the test is Unavailable.
func Crash(t testing.TB, id string) {
	t.Helper()
	res, err := Client(t).ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("dockertest: crash %s: inspect: %v", short(id), err)
	}
	c := res.Container
	if c.State == nil || c.State.Pid <= 0 {
		t.Fatalf("dockertest: crash %s: not running", short(id))
	}
	// The daemon's pid namespace must be ours: check that the pid belongs to the container
	// before signalling it, so that a remote daemon never makes us kill a local process.
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.State.Pid))
	if err != nil || !strings.Contains(string(cg), c.ID) {
		Unavailable(t, "crashing a container by pid (its process is not visible from this host)", err)
		return
	}
	if err := syscall.Kill(c.State.Pid, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.EPERM) {
			Unavailable(t, "crashing a container by pid (needs root on the Docker host)", err)
			return
		}
		t.Fatalf("dockertest: crash %s: kill pid %d: %v", short(id), c.State.Pid, err)
	}
	// As `docker kill` does, return once the daemon has seen the process die: its state lags
	// the signal by the time containerd takes to report the exit. The pid changes then (0 when
	// exited, another one when something restarted it already).
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err := Client(t).ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
		if err != nil || res.Container.State == nil || res.Container.State.Pid != c.State.Pid {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockertest: crash %s: pid %d killed, but the daemon still reports it after 10s", short(id), c.State.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
