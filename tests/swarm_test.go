package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// swarmPolicy reports every replica the orchestrator replaced (so the count shows in the
// output) and always wants one more replica of "grow": only the governor's cooldown stops it.
const swarmPolicy = `package ares

import rego.v1

decisions contains d if {
	some name, svc in input.services
	svc.runtime == "swarm"
	some r in svc.replicas
	r.restart_count > 0
	r.state == "running"
	d := {"action": "notify", "service": name, "replica": r.name,
		"reason": sprintf("replaced %d times, on node %s", [r.restart_count, r.node])}
}

decisions contains d if {
	svc := input.services.grow
	svc.runtime == "swarm"
	d := {"action": "scale_out", "service": "grow", "reason": sprintf("%d replicas", [svc.summary.replicas])}
}
`

// `ares run` with runtime: swarm on a single-node swarm: a crashed task is replaced by the
// orchestrator and counted in the facts; a scale_out decision changes the running task count;
// the governor's cooldown holds the next ones back although the policy keeps asking.
func TestSwarmRuntime(t *testing.T) {
	dockertest.Swarm(t)
	label, labels := scope(t)
	sc := labels["ares.test.scope"]
	crash, grow := "ares-e2e-crash-"+sc, "ares-e2e-grow-"+sc
	dockertest.Service(t, dockertest.ServiceSpec{Name: crash, Replicas: 1, RestartDelay: 2 * time.Second,
		Labels: map[string]string{"ares.test.scope": sc, "ares.enable": "true", "ares.service": "crash"}})
	dockertest.Service(t, dockertest.ServiceSpec{Name: grow, Replicas: 1,
		Labels: map[string]string{"ares.test.scope": sc, "ares.enable": "true", "ares.service": "grow"}})
	for _, s := range []string{crash, grow} {
		dockertest.Eventually(t, 60*time.Second, s+" running", func() bool { return len(dockertest.RunningTasks(t, s)) == 1 })
	}
	dir := t.TempDir()
	writePolicy(t, dir, "swarm.rego", swarmPolicy)
	t.Setenv("ARES_RUNTIME", "swarm")
	p := startAres(t, dir, label)

	dockertest.Eventually(t, 30*time.Second, "scale_out of grow admitted", func() bool {
		return contains(p.actions(t, engine.VerdictAdmit), "scale_out grow")
	})
	dockertest.Eventually(t, 60*time.Second, "grow runs 2 tasks", func() bool { return len(dockertest.RunningTasks(t, grow)) == 2 })
	n := len(p.ticks(t))
	dockertest.Eventually(t, 20*time.Second, "more ticks", func() bool { return len(p.ticks(t)) >= n+6 })
	if got := len(dockertest.RunningTasks(t, grow)); got != 2 {
		t.Errorf("grow runs %d tasks: the governor's cooldown did not hold the next scale_out back", got)
	}
	held := p.hasAction(t, func(a engine.Action) bool {
		return a.Action == engine.ActScaleOut && a.Verdict == engine.VerdictSuppress && strings.Contains(a.Why, "cooldown")
	})
	if !held {
		t.Error("no scale_out of grow was held back by the cooldown")
	}
	admitted := 0
	for _, a := range p.actions(t, engine.VerdictAdmit) {
		if a == "scale_out grow" {
			admitted++
		}
	}
	if admitted != 1 {
		t.Errorf("scale_out admitted %d times, want 1", admitted)
	}

	// Crash the task of "crash": the swarm replaces it and the facts count it.
	ids := dockertest.RunningTasks(t, crash)
	dockertest.Crash(t, ids[0])
	dockertest.Eventually(t, 60*time.Second, "the replaced task counted in the facts", func() bool {
		return p.hasAction(t, func(a engine.Action) bool {
			return a.Action == engine.ActNotify && a.Service == "crash" && strings.HasPrefix(a.Reason, "replaced 1 times, on node ")
		})
	})
	if got := dockertest.RunningTasks(t, crash); len(got) != 1 || got[0] == ids[0] {
		t.Errorf("crash tasks %v after the crash of %s", got, ids[0])
	}
	// `ares facts` reads the same facts under runtime: swarm.
	cmd := exec.Command(binary(t), "facts", "--config", filepath.Join(dockertest.ModuleRoot(t), "ares.yaml"), "-o", "json")
	cmd.Env = append(os.Environ(), "ARES_DOCKER_LABELS="+label)
	out, err := cmd.Output()
	var f engine.Facts
	if err != nil || json.Unmarshal(out, &f) != nil {
		t.Fatalf("ares facts: %v\n%s", err, out)
	}
	if g := f.Services["grow"]; g == nil || g.Runtime != "swarm" || len(g.Replicas) != 2 || g.DesiredReplicas != 1 || !g.Replicas[1].Scaled {
		t.Errorf("ares facts, grow = %+v", g)
	}
	res, err := dockertest.Swarm(t).ServiceInspect(t.Context(), grow, client.ServiceInspectOptions{})
	if err != nil || res.Service.Spec.Labels["ares.desired_replicas"] != "1" {
		t.Errorf("grow's ares.desired_replicas = %q, %v; want 1", res.Service.Spec.Labels["ares.desired_replicas"], err)
	}
}
