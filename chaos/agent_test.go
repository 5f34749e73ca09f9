package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/internal/dockertest"
)

// The tests scope the agent with a label of their own, so that it never sees the containers
// of other tests or of a demo running on the same engine.

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(ev Event) { r.mu.Lock(); r.events = append(r.events, ev); r.mu.Unlock() }

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Kind+":"+e.Target)
	}
	return out
}

// scope returns a label unique to the test and an agent limited to it.
func scope(t *testing.T, dryRun bool) (string, *Agent, *recorder) {
	t.Helper()
	cli := dockertest.Client(t)
	label := fmt.Sprintf("ares.chaos.test=%d", time.Now().UnixNano())
	rec := &recorder{}
	return label, New(cli, Options{Labels: []string{label}, DryRun: dryRun, Progress: rec.add}), rec
}

func labels(scope, service string) map[string]string {
	k, v, _ := strings.Cut(scope, "=")
	return map[string]string{"ares.enable": "true", "ares.service": service, k: v}
}

func name(t *testing.T, suffix string) string {
	return fmt.Sprintf("chaos-%s-%d", suffix, time.Now().UnixNano()%1e9)
}

type state struct {
	status   string
	exitCode int
	pid      int
	paused   bool
	started  string
}

func inspect(t *testing.T, id string) state {
	t.Helper()
	res, err := dockertest.Client(t).ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	st := res.Container.State
	return state{string(st.Status), st.ExitCode, st.Pid, st.Paused, st.StartedAt}
}

// dockerEvents lists the actions Docker recorded for the container since since.
func dockerEvents(t *testing.T, id string, since time.Time) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := dockertest.Client(t).Events(ctx, client.EventsListOptions{
		Since: strconv.FormatInt(since.Add(-time.Second).Unix(), 10), Until: strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		Filters: client.Filters{}.Add("container", id)})
	var out []string
	for {
		select {
		case m, ok := <-res.Messages:
			if !ok {
				return out
			}
			if m.TimeNano >= since.UnixNano() {
				out = append(out, string(m.Action))
			}
		case <-res.Err:
			return out
		}
	}
}

func TestKillIsACrashAndIsStartedAgainAfterItsDuration(t *testing.T) {
	label, agent, rec := scope(t, false)
	n := name(t, "kill")
	id := dockertest.Run(t, dockertest.Spec{Name: n, Labels: labels(label, "victim")})
	before := inspect(t, id)
	// The direct SIGKILL goes only to a pid whose cgroup names the container.
	if !ownsPid(id, before.pid) || ownsPid(id, os.Getpid()) {
		t.Fatalf("ownsPid: the container's pid %d not recognised, or this test's taken for it", before.pid)
	}

	start := time.Now()
	inj, err := agent.Inject(context.Background(), Fault{Kind: Kill, Service: "victim", Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := inj.Targets(); len(got) != 1 || got[0].ID != id || got[0].Name != n {
		t.Fatalf("targets = %+v, want %s", got, n)
	}
	dockertest.Eventually(t, 10*time.Second, "the killed container exits", func() bool { return inspect(t, id).status == "exited" })
	if st := inspect(t, id); st.exitCode != 137 {
		t.Fatalf("exit code %d, want 137 (SIGKILL)", st.exitCode)
	}
	// A crash, not an operator's kill: Docker saw the process die, nobody asked it to kill.
	evs := dockerEvents(t, id, start)
	for _, e := range evs {
		if e == "kill" || e == "stop" {
			t.Fatalf("docker events %v: the kill went through the Docker API", evs)
		}
	}
	if !strings.Contains(strings.Join(evs, ","), "die") {
		t.Fatalf("docker events %v: no die", evs)
	}
	// Nobody heals it here: after its 2 s the agent starts it again.
	select {
	case <-inj.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the kill injection never ended")
	}
	if err := inj.Err(); err != nil {
		t.Fatal(err)
	}
	after := inspect(t, id)
	if after.status != "running" || after.pid == before.pid {
		t.Fatalf("after the revert: %+v, want running with a new pid (was %d)", after, before.pid)
	}
	if got := rec.kinds(); strings.Join(got, ",") != "inject:"+n+",revert:"+n {
		t.Errorf("events %v", got)
	}
	if len(agent.Active()) != 0 {
		t.Errorf("active after the revert: %d", len(agent.Active()))
	}
}

func TestKillEndsOnceTheReplicaIsBack(t *testing.T) {
	label, agent, rec := scope(t, false)
	n := name(t, "healed")
	id := dockertest.Run(t, dockertest.Spec{Name: n, Labels: labels(label, "victim")})
	inj, err := agent.Inject(context.Background(), Fault{Kind: Kill, Service: "victim", Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 10*time.Second, "the killed container exits", func() bool { return inspect(t, id).status == "exited" })
	// Someone heals it (ARES would).
	if _, err := dockertest.Client(t).ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inj.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the kill injection did not end when the replica came back")
	}
	evs := rec.kinds()
	if len(evs) != 2 || evs[1] != "revert:"+n {
		t.Fatalf("events %v", evs)
	}
	if d := rec.events[1].Detail; !strings.Contains(d, "running again after") {
		t.Errorf("revert detail %q", d)
	}
}

func TestStopThenStartAgain(t *testing.T) {
	label, agent, _ := scope(t, false)
	id := dockertest.Run(t, dockertest.Spec{Name: name(t, "stop"), Labels: labels(label, "victim")})
	inj, err := agent.Inject(context.Background(), Fault{Kind: Stop, Service: "victim", Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if st := inspect(t, id); st.status != "exited" {
		t.Fatalf("after stop: %+v, want exited", st)
	}
	start := time.Now()
	if err := inj.Revert(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := inspect(t, id); st.status != "running" {
		t.Fatalf("after revert: %+v, want running", st)
	}
	if err := inj.Revert(context.Background()); err != nil { // idempotent
		t.Fatalf("second revert: %v", err)
	}
	evs := dockerEvents(t, id, start)
	if starts := len(evs) - len(slices.DeleteFunc(slices.Clone(evs), func(e string) bool { return e == "start" })); starts != 1 {
		t.Errorf("docker events after the reverts %v: want exactly one start", evs)
	}
}

// Cancelling the context an injection was made with reverts it: the CLI's Ctrl-C.
func TestPauseIsRevertedWhenTheContextIsCancelled(t *testing.T) {
	label, agent, _ := scope(t, false)
	id := dockertest.Run(t, dockertest.Spec{Name: name(t, "pause"), Labels: labels(label, "victim")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inj, err := agent.Inject(ctx, Fault{Kind: Pause, Service: "victim", Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if st := inspect(t, id); st.status != "paused" || !st.paused {
		t.Fatalf("after pause: %+v", st)
	}
	cancel()
	select {
	case <-inj.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling did not revert the pause")
	}
	if st := inspect(t, id); st.status != "running" || st.paused {
		t.Fatalf("after cancel: %+v, want running", st)
	}
}

// Ctrl-C can land while the pause call is in flight: the engine pauses the container, but
// the client gives up and sees only its context's error. The agent must revert that target
// anyway, say so, and return an *InterruptedError. The request hook plays the engine that
// carried the call out: it pauses the container through another client, then cancels.
func TestInterruptedMidInjectionIsReverted(t *testing.T) {
	shared := dockertest.Client(t)
	label := fmt.Sprintf("ares.chaos.test=%d", time.Now().UnixNano())
	id := dockertest.Run(t, dockertest.Spec{Name: name(t, "midpause"), Labels: labels(label, "victim")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hooked atomic.Bool
	cli, err := client.New(client.FromEnv, client.WithAPIVersion(shared.ClientVersion()),
		client.WithHTTPRequestHook(func(r *http.Request) error {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/pause") {
				return nil
			}
			hooked.Store(true)
			if _, err := shared.ContainerPause(context.Background(), id, client.ContainerPauseOptions{}); err != nil {
				return err
			}
			cancel()
			return ctx.Err()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rec := &recorder{}
	agent := New(cli, Options{Labels: []string{label}, Progress: rec.add})

	inj, err := agent.Inject(ctx, Fault{Kind: Pause, Service: "victim", Duration: time.Minute})
	if !hooked.Load() {
		t.Fatal("the pause request never reached the hook")
	}
	var ie *InterruptedError
	if inj != nil || !errors.As(err, &ie) {
		t.Fatalf("Inject = %v, %v; want nil, *InterruptedError", inj, err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if st := inspect(t, id); st.status != "running" || st.paused {
		t.Fatalf("after an interrupted pause the container is %+v, want running", st)
	}
	kinds := rec.kinds()
	if !slices.Contains(kinds, EventError+":"+containerName(t, id)) || !slices.Contains(kinds, EventRevert+":"+containerName(t, id)) {
		t.Errorf("events %v: want the error and the revert of the target", kinds)
	}
	if n := len(agent.Active()); n != 0 {
		t.Errorf("%d injections still active", n)
	}
}

func containerName(t *testing.T, id string) string {
	t.Helper()
	res, err := dockertest.Client(t).ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(res.Container.Name, "/")
}

func TestRevertAllAndReplicaSelection(t *testing.T) {
	label, agent, _ := scope(t, false)
	a := dockertest.Run(t, dockertest.Spec{Name: name(t, "a"), Labels: labels(label, "pair")})
	time.Sleep(time.Millisecond) // distinct names
	bName := name(t, "b")
	b := dockertest.Run(t, dockertest.Spec{Name: bName, Labels: labels(label, "pair")})
	other := dockertest.Run(t, dockertest.Spec{Name: name(t, "other"), Labels: labels(label, "other")})
	ctx := context.Background()

	if _, err := agent.Inject(ctx, Fault{Kind: Pause, Service: "pair", Replica: AllReplicas, Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Inject(ctx, Fault{Kind: Pause, Service: "other", Replica: other[:12], Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b, other} {
		if !inspect(t, id).paused {
			t.Fatalf("%s not paused", id)
		}
	}
	if got := len(agent.Active()); got != 2 {
		t.Fatalf("active = %d, want 2", got)
	}
	if err := agent.RevertAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b, other} {
		if st := inspect(t, id); st.paused || st.status != "running" {
			t.Fatalf("%s after RevertAll: %+v", id, st)
		}
	}

	// By name: only that one.
	inj, err := agent.Inject(ctx, Fault{Kind: Pause, Service: "pair", Replica: bName, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if inspect(t, a).paused || !inspect(t, b).paused {
		t.Fatal("--replica by name paused the wrong container")
	}
	// A paused replica is not running: it cannot be picked again.
	if _, err := agent.Inject(ctx, Fault{Kind: Kill, Service: "pair", Replica: bName, Duration: time.Minute}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("kill of a paused replica: %v", err)
	}
	_ = inj.Revert(ctx)

	for _, tc := range []struct {
		f    Fault
		want string
	}{
		{Fault{Kind: Pause, Service: "nobody", Duration: time.Second}, `no container of service "nobody" in scope`},
		{Fault{Kind: Pause, Service: "pair", Replica: "ghost", Duration: time.Second}, `has no replica "ghost"`},
		{Fault{Kind: Latency, Service: "pair", Value: 10, Duration: time.Second}, "not a shop service"},
		{Fault{Kind: Pause, Service: "pair", Duration: 0}, "duration:"},
	} {
		if _, err := agent.Inject(ctx, tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Inject(%v) = %v, want %q", tc.f, err, tc.want)
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	label, agent, rec := scope(t, true)
	n := name(t, "dry")
	id := dockertest.Run(t, dockertest.Spec{Name: n, Labels: labels(label, "victim")})
	before := inspect(t, id)
	start := time.Now()
	for _, k := range []Kind{Kill, Stop, Pause} {
		inj, err := agent.Inject(context.Background(), Fault{Kind: k, Service: "victim", Duration: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-inj.Done():
		default:
			t.Fatalf("%s: a dry-run injection is not done at once", k)
		}
		if !inj.DryRun() || len(inj.Targets()) != 1 {
			t.Fatalf("%s: %+v", k, inj)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if after := inspect(t, id); after != before {
		t.Fatalf("dry run changed the container: %+v → %+v", before, after)
	}
	for _, e := range dockerEvents(t, id, start) {
		if !strings.HasPrefix(e, "exec_") && !strings.HasPrefix(e, "health_status") { // the HEALTHCHECK
			t.Errorf("dry run caused docker event %q", e)
		}
	}
	want := []string{"dry-run:" + n, "dry-run:" + n, "dry-run:" + n}
	if got := rec.kinds(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", got, want)
	}
	if d := rec.events[0].Detail; !strings.Contains(d, "would SIGKILL pid") {
		t.Errorf("dry-run detail %q", d)
	}
}
