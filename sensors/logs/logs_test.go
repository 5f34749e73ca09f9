package logs

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// scopeLabel scopes a test's sensor to the containers that test created.
const scopeLabel = "ares.test.logs"

var run = strconv.FormatInt(time.Now().UnixNano(), 36)

func scope(t testing.TB) string { return run + "-" + t.Name() }

func collect(t testing.TB, s *Sensor) *engine.Facts {
	t.Helper()
	f := engine.NewFacts(1, time.Now())
	if err := s.Collect(context.Background(), f); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return f
}

func logsOf(f *engine.Facts, svc string) *engine.Logs {
	if s := f.Services[svc]; s != nil {
		return s.Logs
	}
	return nil
}

func hit(t testing.TB, addr, path string, n int) {
	t.Helper()
	for range n {
		if code, body, err := dockertest.Get(addr, path); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %q %v", path, code, body, err)
		}
	}
}

func TestCollectNeedsWatch(t *testing.T) {
	s := New(nil, Options{}, nil)
	if err := s.Collect(context.Background(), engine.NewFacts(1, time.Now())); err == nil {
		t.Fatal("Collect without Watch succeeded, want an error")
	}
}

// A real container logging JSON error and info lines and plain lines; a second replica that
// logs before the sensor lists it, then goes away.
func TestFollowContainers(t *testing.T) {
	labels := map[string]string{scopeLabel: scope(t), LabelEnable: "true", LabelService: "web"}
	id := dockertest.Run(t, dockertest.Spec{Name: "ares-logs-" + run + "-1", Publish: true, Labels: labels})
	addr := dockertest.HostPort(t, id)
	dockertest.Eventually(t, 10*time.Second, "test server answers", func() bool {
		code, _, err := dockertest.Get(addr, "/health")
		return err == nil && code == http.StatusOK
	})
	hit(t, addr, "/log?level=error&msg=before", 3) // before Watch: not counted
	// The daemon timestamps a line when its log copier reads it, which can be a little after
	// the request that wrote it returned: wait until all three are in the container's log, so
	// that they are older than the moment Watch starts reading.
	dockertest.Eventually(t, 10*time.Second, "the early lines are in the container's log", func() bool {
		rc, err := dockertest.Client(t).ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true})
		if err != nil {
			return false
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return strings.Count(string(b), `"msg":"before"`) == 3
	})
	time.Sleep(10 * time.Millisecond)

	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(dockertest.Client(t), Options{Refresh: 200 * time.Millisecond, Labels: []string{scopeLabel + "=" + scope(t)}}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, func(string) { t.Error("Watch woke the engine") })
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return")
		}
		if n := s.Following(); n != 0 {
			t.Errorf("%d streams still open after Watch returned", n)
		}
	}()
	dockertest.Eventually(t, 10*time.Second, "following one container", func() bool { return s.Following() == 1 })

	const errs, infos = 5, 7
	hit(t, addr, "/lograw?msg="+url.QueryEscape("plain text, no JSON {"), 2)
	hit(t, addr, "/log?level=info&msg=fine", infos)
	hit(t, addr, "/log?level=error&msg=boom", errs)
	hit(t, addr, "/log?level=warn&msg=meh", 2)
	var l *engine.Logs
	dockertest.Eventually(t, 5*time.Second, "5 errors counted", func() bool {
		l = logsOf(collect(t, s), "web")
		return l != nil && l.ErrorsPerMin >= errs
	})
	time.Sleep(300 * time.Millisecond) // nothing more arrives
	l = logsOf(collect(t, s), "web")
	if l.ErrorsPerMin != errs || l.LastError != "boom" || l.LastErrorAt == nil || time.Since(*l.LastErrorAt) > 30*time.Second {
		t.Fatalf("logs = %+v (at %v), want %d errors/min, last error boom, just now", l, l.LastErrorAt, errs)
	}

	hit(t, addr, "/lograw?msg="+url.QueryEscape("2026-12-04 db ERROR connection refused"), 1)
	dockertest.Eventually(t, 5*time.Second, "plain ERROR line counted", func() bool {
		l = logsOf(collect(t, s), "web")
		return l.ErrorsPerMin == errs+1 && l.LastError == "2026-12-04 db ERROR connection refused"
	})

	// A second replica logs right after it starts, before the sensor lists it: counted, since
	// its logs are read from its start.
	id2 := dockertest.Run(t, dockertest.Spec{Name: "ares-logs-" + run + "-2", Publish: true, Labels: labels})
	addr2 := dockertest.HostPort(t, id2)
	dockertest.Eventually(t, 10*time.Second, "second test server answers", func() bool {
		code, _, err := dockertest.Get(addr2, "/log?level=fatal&msg=second")
		return err == nil && code == http.StatusOK
	})
	dockertest.Eventually(t, 10*time.Second, "second replica followed and counted", func() bool {
		l = logsOf(collect(t, s), "web")
		return s.Following() == 2 && l.ErrorsPerMin == errs+2 && l.LastError == "second"
	})

	dockertest.Remove(id2)
	dockertest.Eventually(t, 10*time.Second, "stream of the removed replica closed", func() bool { return s.Following() == 1 })
	if l = logsOf(collect(t, s), "web"); l.ErrorsPerMin != errs+2 {
		t.Errorf("after removing a replica: %+v, want its errors still in the window", l)
	}
}
