package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// env is one integration test's service: a unique name (other test runs share the engine), an
// actuator, and a cleanup that removes every container of the service, including the ones the
// actuator created (recycled and scaled-out replicas).
type env struct {
	t   *testing.T
	cli *client.Client
	act *Actuator
	svc string
}

func newEnv(t *testing.T, opt Options) *env {
	t.Helper()
	cli := dockertest.Client(t)
	dockertest.TestServer(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e := &env{t: t, cli: cli, act: New(cli, opt, nil), svc: "ares-t-" + hex.EncodeToString(b)}
	t.Cleanup(func() { dockertest.RemoveLabelled(t, map[string]string{LabelService: e.svc}) })
	return e
}

// labels are the labels of an opted-in replica of the env's service, plus extra.
func (e *env) labels(extra ...string) map[string]string {
	l := map[string]string{LabelEnable: "true", LabelService: e.svc}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func (e *env) act1(action, replica string) (engine.Outcome, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.act.Act(ctx, engine.Action{
		Decision: engine.Decision{Action: action, Service: e.svc, Replica: replica, Reason: "test"},
		Verdict:  engine.VerdictAdmit,
	})
}

func (e *env) mustAct(action, replica string) engine.Outcome {
	e.t.Helper()
	out, err := e.act1(action, replica)
	if err != nil {
		e.t.Fatalf("Act(%s %s): %v", action, replica, err)
	}
	if out.Result != engine.ResultOK {
		e.t.Fatalf("Act(%s %s) outcome %+v, want ok", action, replica, out)
	}
	return out
}

func (e *env) inspect(idOrName string) container.InspectResponse {
	e.t.Helper()
	res, err := e.cli.ContainerInspect(context.Background(), idOrName, client.ContainerInspectOptions{})
	if err != nil {
		e.t.Fatalf("inspect %s: %v", idOrName, err)
	}
	return res.Container
}

func (e *env) waitHealthy(id string) {
	e.t.Helper()
	dockertest.Eventually(e.t, 20*time.Second, id+" healthy", func() bool {
		st, h := dockertest.State(e.t, id)
		return st == "running" && h == "healthy"
	})
}

func (e *env) kill(id string) {
	e.t.Helper()
	dockertest.Crash(e.t, id)
	dockertest.Eventually(e.t, 10*time.Second, id+" exited", func() bool {
		st, _ := dockertest.State(e.t, id)
		return st == "exited"
	})
}

// fetch asks the probe container to GET u from inside the network.
func fetch(probe, u string) string {
	code, body, err := dockertest.Get(probe, "/fetch?url="+url.QueryEscape(u))
	if err != nil || code != 200 {
		return ""
	}
	return body
}

func TestRestartReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	name := e.svc + "-1"
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: e.labels(), Publish: true})
	e.waitHealthy(id)

	t.Run("exited", func(t *testing.T) {
		e.kill(id)
		out := e.mustAct(engine.ActRestart, name)
		if !strings.HasPrefix(out.Detail, "started "+name+" (was exited") {
			t.Errorf("detail %q, want it to say the replica was started", out.Detail)
		}
		e.waitHealthy(id)
		addr := dockertest.HostPort(t, id)
		dockertest.Eventually(t, 10*time.Second, "/health answers through the published port", func() bool {
			code, _, err := dockertest.Get(addr, "/health")
			return err == nil && code == 200
		})
	})

	t.Run("running", func(t *testing.T) {
		before := e.inspect(id).State.StartedAt
		out := e.mustAct(engine.ActRestart, name)
		if !strings.HasPrefix(out.Detail, "restarted "+name+" (was running)") {
			t.Errorf("detail %q, want it to say the replica was restarted", out.Detail)
		}
		c := e.inspect(id)
		if c.State.StartedAt == before || !c.State.Running {
			t.Errorf("StartedAt %s (before %s), running %v: want a restart", c.State.StartedAt, before, c.State.Running)
		}
	})

	t.Run("sensed down: started by id without a read", func(t *testing.T) {
		e.kill(id)
		out, err := e.act.Act(context.Background(), engine.Action{
			Decision: engine.Decision{Action: engine.ActRestart, Service: e.svc, Replica: name, Reason: "test"},
			Verdict:  engine.VerdictAdmit, Sensed: &engine.SensedReplica{ID: id, State: "exited"}})
		if err != nil || out.Detail != "started "+name+" (was exited)" {
			t.Fatalf("Act = %+v, %v; want the sensed fast path", out, err)
		}
		e.waitHealthy(id)
	})

	t.Run("sensed id gone: falls back to the name", func(t *testing.T) {
		e.kill(id)
		out, err := e.act.Act(context.Background(), engine.Action{
			Decision: engine.Decision{Action: engine.ActRestart, Service: e.svc, Replica: name, Reason: "test"},
			Verdict:  engine.VerdictAdmit, Sensed: &engine.SensedReplica{ID: strings.Repeat("0", 64), State: "exited"}})
		if err != nil || !strings.HasPrefix(out.Detail, "started "+name+" (was exited, exit code 137)") {
			t.Fatalf("Act = %+v, %v; want the inspect path", out, err)
		}
		e.waitHealthy(id)
	})

	t.Run("sensed down but running by now: a no-op, not a restart", func(t *testing.T) {
		before := e.inspect(id).State.StartedAt
		_, err := e.act.Act(context.Background(), engine.Action{
			Decision: engine.Decision{Action: engine.ActRestart, Service: e.svc, Replica: name, Reason: "test"},
			Verdict:  engine.VerdictAdmit, Sensed: &engine.SensedReplica{ID: id, State: "exited"}})
		if err != nil {
			t.Fatal(err)
		}
		if after := e.inspect(id).State.StartedAt; after != before {
			t.Errorf("a running container was restarted (StartedAt %s → %s)", before, after)
		}
	})

	t.Run("unknown replica", func(t *testing.T) {
		_, err := e.act1(engine.ActRestart, e.svc+"-nope")
		if err == nil || !strings.Contains(err.Error(), `"`+e.svc+`-nope"`) || !strings.HasPrefix(err.Error(), "docker: restart "+e.svc+"-nope: ") {
			t.Errorf("error %v, want one naming the replica", err)
		}
	})
}

func TestUnlabelledRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	name := e.svc + "-1"
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: map[string]string{LabelService: e.svc}})
	e.kill(id)
	before := e.inspect(id)

	for _, action := range []string{engine.ActRestart, engine.ActRecycle} {
		_, err := e.act1(action, name)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), LabelEnable+"=true") {
			t.Errorf("%s: error %v, want a refusal naming %s", action, err, LabelEnable)
		}
	}
	for _, action := range []string{engine.ActRestart, engine.ActScaleOut, engine.ActScaleIn} {
		if _, err := e.act1(action, ""); err == nil {
			t.Errorf("service-level %s of a service without opted-in replicas succeeded", action)
		}
	}

	// An actuator with extra label filters refuses an opted-in container that lacks them.
	other := dockertest.Run(t, dockertest.Spec{Name: e.svc + "-2", Labels: e.labels()})
	e.kill(other)
	filtered := New(e.cli, Options{Labels: []string{"ares.instance=elsewhere"}}, nil)
	ctx := context.Background()
	restart := engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: e.svc, Replica: e.svc + "-2", Reason: "test"}}
	if _, err := filtered.Act(ctx, restart); !errors.Is(err, ErrRefused) {
		t.Errorf("filtered actuator: error %v, want a refusal", err)
	}
	restart.Replica = ""
	if _, err := filtered.Act(ctx, restart); err == nil || !strings.Contains(err.Error(), "no replica") {
		t.Errorf("filtered actuator, service-level: error %v, want no replica", err)
	}
	if st, _ := dockertest.State(t, other); st != "exited" {
		t.Errorf("container outside the label filters is %s, want it left exited", st)
	}

	after := e.inspect(id)
	if after.ID != before.ID || after.State.Status != container.StateExited || after.State.StartedAt != before.State.StartedAt {
		t.Errorf("unlabelled container touched: %s %s started %s (before %s)", after.ID, after.State.Status, after.State.StartedAt, before.State.StartedAt)
	}
}

func TestRecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	net := dockertest.Network(t, "recycle")
	probe := dockertest.HostPort(t, dockertest.Run(t, dockertest.Spec{Name: e.svc + "-probe", Network: net, Publish: true}))
	name := e.svc + "-1"
	old := dockertest.Run(t, dockertest.Spec{Name: name, Labels: e.labels(), Network: net, Alias: "svc", Env: []string{"X=1"}})
	// A second network, joined after create: the recycled container must join it again.
	net2 := dockertest.Network(t, "recycle2")
	t.Cleanup(func() { dockertest.RemoveLabelled(t, map[string]string{LabelService: e.svc}) }) // before net2 goes
	if _, err := e.cli.NetworkConnect(context.Background(), net2, client.NetworkConnectOptions{
		Container: old, EndpointConfig: &network.EndpointSettings{Aliases: []string{"svc2"}},
	}); err != nil {
		t.Fatal(err)
	}
	before := e.inspect(old)

	out := e.mustAct(engine.ActRecycle, name)
	now := e.inspect(name)
	if out.Detail != "new id "+now.ID || now.ID == old {
		t.Fatalf("detail %q, container %s (old %s): want a new id reported", out.Detail, now.ID, old)
	}
	if !maps.Equal(now.Config.Labels, before.Config.Labels) {
		t.Errorf("labels %v, want %v", now.Config.Labels, before.Config.Labels)
	}
	if !strings.Contains(strings.Join(now.Config.Env, " "), "X=1") {
		t.Errorf("env %v lost X=1", now.Config.Env)
	}
	for nw, alias := range map[string]string{net: "svc", net2: "svc2"} {
		ep := now.NetworkSettings.Networks[nw]
		if ep == nil || !contains(ep.Aliases, alias) || contains(ep.Aliases, shortID(old)) {
			t.Errorf("network %s: endpoint %+v, want alias %s and not the old id", nw, ep, alias)
		}
	}
	if _, err := e.cli.ContainerInspect(context.Background(), old, client.ContainerInspectOptions{}); err == nil {
		t.Error("old container still exists")
	}
	dockertest.Eventually(t, 15*time.Second, "svc answers with the new container's hostname", func() bool {
		return fetch(probe, "http://svc:8080/") == shortID(now.ID)
	})
}

func TestScale(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	net := dockertest.Network(t, "scale")
	probe := dockertest.HostPort(t, dockertest.Run(t, dockertest.Spec{Name: e.svc + "-probe", Network: net, Publish: true}))
	first := dockertest.Run(t, dockertest.Spec{Name: e.svc + "-1", Labels: e.labels(LabelMaxReplicas, "2"),
		Network: net, Alias: "svc", Publish: true})
	e.waitHealthy(first)

	if _, err := e.act1(engine.ActScaleIn, ""); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no ARES-scaled replica to remove") {
		t.Errorf("scale_in with nothing scaled: error %v", err)
	}

	clone := e.mustAct(engine.ActScaleOut, "").Detail
	if !strings.HasPrefix(clone, e.svc+"-ares-") {
		t.Fatalf("detail %q, want the new name %s-ares-<random>", clone, e.svc)
	}
	c := e.inspect(clone)
	if c.Config.Labels[LabelScaled] != "true" || c.Config.Labels[LabelService] != e.svc || c.Config.Labels["ares.test.network"] != net {
		t.Errorf("clone labels %v, want the source's plus %s=true", c.Config.Labels, LabelScaled)
	}
	if aliases := c.NetworkSettings.Networks[net].Aliases; !contains(aliases, "svc") {
		t.Errorf("clone aliases %v, want svc", aliases)
	}
	e.waitHealthy(c.ID)

	want := map[string]bool{shortID(first): false, shortID(c.ID): false}
	start := time.Now()
	for i := 0; i < 60 && time.Since(start) < 15*time.Second && !(want[shortID(first)] && want[shortID(c.ID)]); i++ {
		if h := fetch(probe, "http://svc:8080/"); h != "" {
			want[h] = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(want) != 2 || !want[shortID(first)] || !want[shortID(c.ID)] {
		t.Errorf("hostnames seen through alias svc: %v, want both replicas", want)
	}

	if _, err := e.act1(engine.ActScaleOut, ""); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "max 2") {
		t.Errorf("scale_out beyond ares.max_replicas=2: error %v, want a refusal", err)
	}

	// With the person's replica down, the clone is the last running one: it stays.
	e.kill(first)
	if _, err := e.act1(engine.ActScaleIn, ""); !errors.Is(err, ErrRefused) {
		t.Errorf("scale_in of the last running replica: error %v, want a refusal", err)
	}
	e.mustAct(engine.ActRestart, e.svc+"-1")

	if out := e.mustAct(engine.ActScaleIn, ""); out.Detail != "removed "+clone {
		t.Errorf("scale_in detail %q, want removed %s", out.Detail, clone)
	}
	if _, err := e.cli.ContainerInspect(context.Background(), clone, client.ContainerInspectOptions{}); err == nil {
		t.Error("scaled replica still exists after scale_in")
	}
	if st, _ := dockertest.State(t, first); st != "running" {
		t.Errorf("the person's replica is %s after scale_in", st)
	}
	if _, err := e.act1(engine.ActScaleIn, ""); err == nil || !strings.Contains(err.Error(), "no ARES-scaled replica to remove") {
		t.Errorf("second scale_in: error %v", err)
	}
}

func TestRestartService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ids := []string{
		dockertest.Run(t, dockertest.Spec{Name: e.svc + "-1", Labels: e.labels()}),
		dockertest.Run(t, dockertest.Spec{Name: e.svc + "-2", Labels: e.labels()}),
	}
	e.kill(ids[1]) // a stopped replica is started in its turn
	e.waitHealthy(ids[0])
	before := []string{e.inspect(ids[0]).State.StartedAt, e.inspect(ids[1]).State.StartedAt}

	out := e.mustAct(engine.ActRestart, "")
	if !strings.HasPrefix(out.Detail, "rolling restart of 2 replicas: restarted "+e.svc+"-1 (was running), healthy; started "+e.svc+"-2 (was exited") {
		t.Errorf("detail %q", out.Detail)
	}
	var now [2]container.InspectResponse
	for i, id := range ids {
		now[i] = e.inspect(id)
		if now[i].State.StartedAt == before[i] || now[i].State.Health == nil || now[i].State.Health.Status != container.Healthy {
			t.Errorf("replica %d: started %s (before %s), health %+v: want restarted and healthy", i+1, now[i].State.StartedAt, before[i], now[i].State.Health)
		}
	}
	// One by one: the first replica passed a healthcheck after its restart before the second
	// was started.
	started1, _ := time.Parse(time.RFC3339Nano, now[0].State.StartedAt)
	started2, _ := time.Parse(time.RFC3339Nano, now[1].State.StartedAt)
	var firstHealthy time.Time
	for _, r := range now[0].State.Health.Log {
		if r.ExitCode == 0 && r.Start.After(started1) {
			firstHealthy = r.End
			break
		}
	}
	if firstHealthy.IsZero() || !started2.After(firstHealthy) {
		t.Errorf("replica 2 started at %s, replica 1 restarted at %s and healthy at %s: want 2 after 1 was healthy", started2, started1, firstHealthy)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
