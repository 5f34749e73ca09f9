package docker

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// scopeLabel scopes each test's sensor to the containers that test created, so that parallel
// tests, and other packages' tests labelling containers ares.enable=true on the same engine, do
// not interfere.
const scopeLabel = "ares.test.sensor"

var run = strconv.FormatInt(time.Now().UnixNano(), 36)

func scope(t testing.TB) string { return run + "-" + t.Name() }

func newSensor(t testing.TB, opt Options) *Sensor {
	t.Helper()
	return newSensorIn(t, scope(t), opt, slog.LevelDebug)
}

// newSensorIn returns a sensor that sees the containers labelled with scope.
func newSensorIn(t testing.TB, scope string, opt Options, level slog.Level) *Sensor {
	t.Helper()
	opt.Labels = append(opt.Labels, scopeLabel+"="+scope)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
	return New(dockertest.Client(t), opt, log)
}

// labels are the labels of a container t's sensor sees, plus kv.
func labels(t testing.TB, kv ...string) map[string]string {
	return labelsIn(scope(t), kv...)
}

func labelsIn(scope string, kv ...string) map[string]string {
	m := map[string]string{scopeLabel: scope, LabelEnable: "true"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func name(suffix string) string { return "ares-sensor-" + run + "-" + suffix }

func collect(t testing.TB, s *Sensor) *engine.Facts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := engine.NewFacts(1, time.Now())
	if err := s.Collect(ctx, f); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return f
}

// find returns the replica with id and its service.
func find(f *engine.Facts, id string) (string, engine.Replica, bool) {
	for name, svc := range f.Services {
		for _, r := range svc.Replicas {
			if r.ID == id {
				return name, r, true
			}
		}
	}
	return "", engine.Replica{}, false
}

// view is what the cache holds for one container (the fields Sensor.mu guards that tests check).
type view struct {
	state, health string
	exitCode      int
	oom           bool
	cg            *cgroupFiles
}

// cached is the cache's view of id.
func cached(s *Sensor, id string) (view, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return view{}, false
	}
	return view{state: e.state, health: e.health, exitCode: e.exitCode, oom: e.oom, cg: e.cg}, true
}

type woken struct {
	reason string
	at     time.Time
	e      view // the cache's view of the watched container at wake time
	ok     bool
}

// watch runs s.Watch until the test ends and reports every wake, with the cache's view of id at
// that moment.
func watch(t *testing.T, s *Sensor, id string) <-chan woken {
	t.Helper()
	ch := make(chan woken, 256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, func(reason string) {
			w := woken{reason: reason, at: time.Now()}
			w.e, w.ok = cached(s, id)
			select {
			case ch <- w:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("watch: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("watch did not return after cancel")
		}
		if n := s.streaming.Load(); n != 0 {
			t.Errorf("%d stats streams still running after watch returned", n)
		}
	})
	return ch
}

// await waits for a wake with reason whose cached view satisfies cond.
func await(t *testing.T, ch <-chan woken, reason string, timeout time.Duration, cond func(woken) bool) woken {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case w := <-ch:
			if w.reason == reason && cond(w) {
				return w
			}
		case <-deadline:
			t.Fatalf("no wake %q within %s", reason, timeout)
		}
	}
}

func TestCollectGroupsByService(t *testing.T) {
	t.Parallel()
	s := newSensor(t, Options{})
	a1 := dockertest.Run(t, dockertest.Spec{Name: name("web-1"), Labels: labels(t, LabelService, "web-"+run)})
	a2 := dockertest.Run(t, dockertest.Spec{Name: name("web-2"), Labels: labels(t, LabelService, "web-"+run, LabelScaled, "true")})
	b1 := dockertest.Run(t, dockertest.Spec{Name: name("api-1"), Labels: labels(t, labelCompose, "api-"+run, LabelDesired, "3")})
	solo := dockertest.Run(t, dockertest.Spec{Name: name("solo"), Labels: labels(t)})
	off := dockertest.Run(t, dockertest.Spec{Name: name("off"), Labels: map[string]string{scopeLabel: scope(t)}})
	offFalse := dockertest.Run(t, dockertest.Spec{Name: name("off-false"), Labels: labels(t, LabelEnable, "false")})

	f := collect(t, s)
	web := f.Services["web-"+run]
	if web == nil || len(web.Replicas) != 2 {
		t.Fatalf("service web = %+v", web)
	}
	if web.Replicas[0].ID != a1 || web.Replicas[1].ID != a2 {
		t.Errorf("web replicas not sorted by name: %s, %s", web.Replicas[0].Name, web.Replicas[1].Name)
	}
	if web.DesiredReplicas != 1 || web.Replicas[0].Scaled || !web.Replicas[1].Scaled {
		t.Errorf("web desired %d, scaled %v %v; want 1, false true", web.DesiredReplicas, web.Replicas[0].Scaled, web.Replicas[1].Scaled)
	}
	if api := f.Services["api-"+run]; api == nil || len(api.Replicas) != 1 || api.Replicas[0].ID != b1 || api.DesiredReplicas != 3 {
		t.Errorf("compose service api = %+v", api)
	}
	if svc, _, ok := find(f, solo); !ok || svc != name("solo") {
		t.Errorf("unnamed service: replica under %q, want the container name", svc)
	}
	for _, id := range []string{off, offFalse} {
		if svc, r, ok := find(f, id); ok {
			t.Errorf("container %s without ares.enable=true reported under %s", r.Name, svc)
		}
	}
	r := web.Replicas[0]
	if r.Name != name("web-1") || len(r.ID) != 64 || r.State != "running" || r.ExitCode != 0 || r.OOMKilled {
		t.Errorf("replica = %+v", r)
	}
	if r.Health != "starting" && r.Health != "healthy" {
		t.Errorf("health = %s, want starting or healthy", r.Health)
	}
	if r.MemLimitBytes != 0 || r.MemPercent != 0 || r.CPUPercent != 0 {
		t.Errorf("unlimited replica: limit %d, mem%% %.1f, first cpu%% %.1f; want 0, 0, 0", r.MemLimitBytes, r.MemPercent, r.CPUPercent)
	}
	if e, _ := cached(s, a1); e.cg == nil {
		t.Logf("cgroup files not readable here; mem_bytes comes from the stats stream only with Watch")
	} else if r.MemBytes <= 0 {
		t.Errorf("mem_bytes = %d from cgroup files, want > 0", r.MemBytes)
	}
}

func TestKillWakesWithDieAfterCacheUpdate(t *testing.T) {
	t.Parallel()
	s := newSensor(t, Options{})
	id := dockertest.Run(t, dockertest.Spec{Name: name("victim"), Labels: labels(t, LabelService, "victim-"+run)})
	wakes := watch(t, s, id)
	dockertest.Eventually(t, 10*time.Second, "watch syncs the running container", func() bool {
		e, ok := cached(s, id)
		return ok && e.state == "running"
	})

	// A second subscriber, to time the die event itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dies := dockertest.Client(t).Events(ctx, client.EventsListOptions{
		Filters: client.Filters{}.Add("container", id).Add("event", "die"),
	})

	killed := time.Now()
	dockertest.Crash(t, id)
	w := await(t, wakes, "event:die", 5*time.Second, func(woken) bool { return true })
	select {
	case m := <-dies.Messages:
		died := time.Unix(0, m.TimeNano)
		t.Logf("kill → die event: %s; die event → wake: %s", died.Sub(killed), w.at.Sub(died))
		if d := w.at.Sub(died); d > time.Second {
			t.Errorf("die event → wake took %s", d)
		}
	case <-time.After(2 * time.Second):
		t.Logf("kill → wake(event:die): %s (die event not timed)", w.at.Sub(killed))
	}
	if !w.ok || w.e.state != "exited" || w.e.exitCode != 137 {
		t.Fatalf("at wake the cache shows ok=%v state=%s exit_code=%d; want exited 137", w.ok, w.e.state, w.e.exitCode)
	}
	_, r, ok := find(collect(t, s), id)
	if !ok || r.State != "exited" || r.ExitCode != 137 || r.CPUPercent != 0 || r.MemBytes != 0 {
		t.Errorf("collect after kill: %+v", r)
	}
}

func TestCollectCatchesDriftWithoutWatch(t *testing.T) {
	t.Parallel()
	s := newSensor(t, Options{ResyncEvery: 1000})
	id := dockertest.Run(t, dockertest.Spec{Name: name("drift"), Labels: labels(t)})
	if _, r, ok := find(collect(t, s), id); !ok || r.State != "running" {
		t.Fatalf("before kill: %+v", r)
	}
	dockertest.Crash(t, id)
	dockertest.Eventually(t, 5*time.Second, "collect sees the kill", func() bool {
		_, r, ok := find(collect(t, s), id)
		return ok && r.State == "exited" && r.ExitCode == 137
	})
	dockertest.Remove(id)
	if _, r, ok := find(collect(t, s), id); ok {
		t.Errorf("removed container still reported: %+v", r)
	}
}

func TestMemoryLimitAndLeak(t *testing.T) {
	t.Parallel()
	const limit = 64 << 20
	s := newSensor(t, Options{})
	id := dockertest.Run(t, dockertest.Spec{Name: name("leaky"), Labels: labels(t), MemLimit: limit, Publish: true})
	addr := dockertest.HostPort(t, id)
	collect(t, s)
	if e, _ := cached(s, id); e.cg == nil {
		t.Skip("SKIPPING: cgroup files not readable here; stream mode is covered by TestStreamMode")
	}
	_, before, _ := find(collect(t, s), id)
	if before.MemLimitBytes != limit || before.MemPercent <= 0 || before.MemPercent > 50 {
		t.Fatalf("before leak: limit %d, mem %d (%.1f%%)", before.MemLimitBytes, before.MemBytes, before.MemPercent)
	}
	if code, body, err := dockertest.Get(addr, "/leak?mb=20"); err != nil || code != 200 {
		t.Fatalf("leak: %d %s %v", code, body, err)
	}
	var after engine.Replica
	dockertest.Eventually(t, 5*time.Second, "mem_percent rises by 20 MiB of 64", func() bool {
		_, after, _ = find(collect(t, s), id)
		return after.MemPercent >= before.MemPercent+25
	})
	t.Logf("mem %.1f%% → %.1f%% (%d → %d bytes)", before.MemPercent, after.MemPercent, before.MemBytes, after.MemBytes)
}

func TestHealthTurnsUnhealthy(t *testing.T) {
	t.Parallel()
	s := newSensor(t, Options{})
	id := dockertest.Run(t, dockertest.Spec{Name: name("sick"), Labels: labels(t), Publish: true})
	addr := dockertest.HostPort(t, id)
	wakes := watch(t, s, id)
	dockertest.Eventually(t, 20*time.Second, "the container turns healthy", func() bool {
		e, ok := cached(s, id)
		return ok && e.health == "healthy"
	})
	if code, _, err := dockertest.Get(addr, "/sick"); err != nil || code != 200 {
		t.Fatalf("sick: %d %v", code, err)
	}
	await(t, wakes, "event:health_status", 10*time.Second, func(w woken) bool { return w.ok && w.e.health == "unhealthy" })
	if _, r, _ := find(collect(t, s), id); r.Health != "unhealthy" || r.State != "running" {
		t.Errorf("collect after /sick: state %s health %s", r.State, r.Health)
	}
}

func TestOOMKilled(t *testing.T) {
	t.Parallel()
	s := newSensor(t, Options{})
	id := dockertest.Run(t, dockertest.Spec{Name: name("oom"), Labels: labels(t), MemLimit: 32 << 20, Publish: true})
	addr := dockertest.HostPort(t, id)
	wakes := watch(t, s, id)
	dockertest.Eventually(t, 10*time.Second, "watch syncs the running container", func() bool {
		e, ok := cached(s, id)
		return ok && e.state == "running"
	})
	_, _, _ = dockertest.Get(addr, "/leak?mb=64") // the process may die before it answers

	deadline := time.Now().Add(10 * time.Second)
	var r engine.Replica
	for {
		_, r, _ = find(collect(t, s), id)
		if r.State == "exited" {
			break
		}
		if time.Now().After(deadline) {
			t.Skipf("SKIPPING: 64 MiB in a 32 MiB container did not get OOM-killed here (state %s; swap?)", r.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !r.OOMKilled || r.ExitCode != 137 {
		t.Errorf("after OOM: oom_killed %v exit_code %d; want true 137", r.OOMKilled, r.ExitCode)
	}
	// The daemon sends die and oom from separate goroutines, in either order; each wakes the
	// engine, so the tick woken by whichever comes last must see both the exit and the OOM kill.
	var last woken
	seen := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for !seen["event:die"] || !seen["event:oom"] {
		select {
		case w := <-wakes:
			if w.reason == "event:die" || w.reason == "event:oom" {
				seen[w.reason], last = true, w
			}
		case <-timeout:
			t.Fatalf("within 5s: die wake %v, oom wake %v", seen["event:die"], seen["event:oom"])
		}
	}
	if !last.ok || !last.e.oom || last.e.state != "exited" {
		t.Errorf("at the last of die and oom (%s) the cache shows oom_killed %v state %q; want true exited", last.reason, last.e.oom, last.e.state)
	}
}

func TestStreamMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"stream", Options{Stats: StatsStream}},
		{"auto without cgroup files", Options{Stats: StatsAuto, CgroupRoot: t.TempDir()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSensor(t, tc.opt)
			id := dockertest.Run(t, dockertest.Spec{Name: name(strings.ReplaceAll(tc.name, " ", "-")), Labels: labels(t), MemLimit: 64 << 20})
			watch(t, s, id)
			var r engine.Replica
			dockertest.Eventually(t, 8*time.Second, "stats stream reports mem_bytes", func() bool {
				_, r, _ = find(collect(t, s), id)
				return r.MemBytes > 0
			})
			if r.MemLimitBytes != 64<<20 || r.MemPercent <= 0 {
				t.Errorf("limit %d mem%% %.1f", r.MemLimitBytes, r.MemPercent)
			}
			if e, _ := cached(s, id); e.cg != nil {
				t.Error("cgroup files resolved")
			}
			if n := s.streaming.Load(); n != 1 {
				t.Errorf("%d stats streams, want 1", n)
			}
			dockertest.Remove(id)
			dockertest.Eventually(t, 5*time.Second, "the stream stops with the container", func() bool {
				return s.streaming.Load() == 0
			})
		})
	}
}
