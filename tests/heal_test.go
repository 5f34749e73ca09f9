package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/schema"
	"github.com/ares-sre/ares/internal/dockertest"
)

// kill crashes the container (SIGKILL to its main process, not a Docker API kill, which ARES
// would take for an operator's stop and leave alone).
func kill(t *testing.T, id string) {
	t.Helper()
	dockertest.Crash(t, id)
}

func inspectID(t *testing.T, name string) string {
	res, err := dockertest.Client(t).ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		return ""
	}
	return res.Container.ID
}

func waitHealthy(t *testing.T, id string) {
	t.Helper()
	dockertest.Eventually(t, 30*time.Second, id[:12]+" healthy", func() bool {
		st, h := dockertest.State(t, id)
		return st == "running" && h == "healthy"
	})
}

// The default policy pack, live: a killed labelled container is restarted and answers its
// health check again; a killed container without ares.enable is left alone.
func TestKilledContainerIsRestarted(t *testing.T) {
	label, labels := scope(t)
	name := "e2e-kill-" + labels["ares.test.scope"]
	labels["ares.service"] = "web"
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels, Publish: true})
	bystander := dockertest.Run(t, dockertest.Spec{Name: name + "-unlabelled",
		Labels: map[string]string{"ares.test.scope": labels["ares.test.scope"], "ares.service": "web"}})
	waitHealthy(t, id)

	p := startAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label)
	dockertest.Eventually(t, 10*time.Second, "first tick", func() bool { return len(p.ticks(t)) > 0 })
	kill(t, id)
	kill(t, bystander)
	killed := time.Now()

	dockertest.Eventually(t, 20*time.Second, "ares restarts the killed container", func() bool {
		return contains(p.actions(t, "admit"), "restart web/"+name)
	})
	waitHealthy(t, id)
	addr := dockertest.HostPort(t, id)
	dockertest.Eventually(t, 10*time.Second, "restarted container answers /health", func() bool {
		code, _, err := dockertest.Get(addr, "/health")
		return err == nil && code == 200
	})
	t.Logf("killed → healthy again in %s", time.Since(killed).Round(time.Millisecond))
	var outcome string
	for _, tk := range p.ticks(t) {
		for _, a := range tk.Actions {
			if a.Replica == name && a.Outcome != nil {
				outcome = a.Outcome.Result
			}
		}
	}
	if outcome != "ok" {
		t.Errorf("restart outcome = %q, want ok", outcome)
	}
	time.Sleep(2 * time.Second) // several more ticks
	if st, _ := dockertest.State(t, bystander); st != "exited" {
		t.Errorf("container without ares.enable=true was touched: state %s", st)
	}
	for _, a := range p.actions(t, "") {
		if strings.Contains(a, "unlabelled") {
			t.Errorf("ares decided on an unlabelled container: %s", a)
		}
	}
}

// --dry-run prints the decision and restarts nothing, in both output formats.
func TestDryRunPrintsAndRestartsNothing(t *testing.T) {
	label, labels := scope(t)
	name := "e2e-dry-" + labels["ares.test.scope"]
	labels["ares.service"] = "web"
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels})
	waitHealthy(t, id)
	policies := filepath.Join(dockertest.ModuleRoot(t), "policies")

	p := startAres(t, policies, label, "--dry-run")
	kill(t, id)
	dockertest.Eventually(t, 20*time.Second, "dry run decides restart", func() bool {
		return contains(p.actions(t, "dry_run"), "restart web/"+name)
	})
	time.Sleep(2 * time.Second)
	if st, _ := dockertest.State(t, id); st != "exited" {
		t.Fatalf("dry run changed the container: state %s", st)
	}
	if got := p.actions(t, "admit"); len(got) != 0 {
		t.Errorf("dry run admitted actions: %v", got)
	}

	// The text form, one tick.
	cmd := exec.Command(binary(t), "run", "--dry-run", "--once", "--policies", policies, "--config", filepath.Join(dockertest.ModuleRoot(t), "ares.yaml"))
	cmd.Env = append(os.Environ(), "ARES_DOCKER_LABELS="+label, "ARES_METRICS_LISTEN=", "ARES_JOURNAL_PATH="+filepath.Join(t.TempDir(), "journal.db"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ares run --once: %v", err)
	}
	want := fmt.Sprintf("tick 1  restart  web/%s  exited with code 137", name)
	if !strings.Contains(string(out), want) {
		t.Errorf("text output %q does not contain %q", out, want)
	}
	if st, _ := dockertest.State(t, id); st != "exited" {
		t.Errorf("dry run --once changed the container: state %s", st)
	}
}

const notifyPolicy = `package ares

decisions contains {"action": "notify", "service": name, "reason": data.ares.msg} if {
	some name, _ in input.services
}
`

// Editing a policy file changes the next decision without a restart; a broken file leaves the
// old policy acting and the error reported with its file and line.
func TestPolicyHotReload(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	dockertest.Run(t, dockertest.Spec{Name: "e2e-reload-" + labels["ares.test.scope"], Labels: labels})
	dir := t.TempDir()
	writePolicy(t, dir, "notify.rego", notifyPolicy)
	writePolicy(t, dir, "data.json", `{"ares": {"msg": "v1"}}`)

	metricsAddr := freeAddr(t)
	t.Setenv("ARES_METRICS_LISTEN", metricsAddr)
	p := startAres(t, dir, label, "--dry-run")
	reasons := func() []string {
		var out []string
		for _, tk := range p.ticks(t) {
			for _, d := range tk.Decisions {
				out = append(out, d.Reason)
			}
		}
		return out
	}
	dockertest.Eventually(t, 10*time.Second, "v1 decisions", func() bool { return contains(reasons(), "v1") })

	written := time.Now()
	writePolicy(t, dir, "data.json", `{"ares": {"msg": "v2"}}`)
	dockertest.Eventually(t, 10*time.Second, "v2 decisions after the edit", func() bool { return contains(reasons(), "v2") })
	t.Logf("edit → new decision in %s (ticks every 500ms)", time.Since(written).Round(time.Millisecond))
	revs := map[string]bool{}
	for _, tk := range p.ticks(t) {
		revs[tk.PolicyRev] = true
	}
	if len(revs) != 2 {
		t.Errorf("policy revisions seen: %v, want 2", revs)
	}

	writePolicy(t, dir, "broken.rego", "package ares\n\ndecisions contains x if {\n  x := \n}\n")
	dockertest.Eventually(t, 10*time.Second, "reload failure reported with file and line", func() bool {
		return strings.Contains(p.stderr.String(), "broken.rego:")
	})
	n := len(p.ticks(t))
	dockertest.Eventually(t, 10*time.Second, "ticks go on", func() bool { return len(p.ticks(t)) >= n+3 })
	last := p.ticks(t)[len(p.ticks(t))-1]
	if len(last.Decisions) != 1 || last.Decisions[0].Reason != "v2" {
		t.Errorf("after a broken edit the old policy must keep acting: %+v", last.Decisions)
	}
	if p.cmd.ProcessState != nil {
		t.Error("ares exited after a broken policy")
	}

	// The reloads are counted on /metrics, with the live revision.
	_, body, err := dockertest.Get(metricsAddr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ares_policy_reloads_total{result="success"} 2`, // the first load and the edit
		`ares_policy_reloads_total{result="failure"} 1`,
		`ares_policy_revision_info{revision="` + last.PolicyRev + `"} 1`,
		`ares_ticks_total{trigger="interval"}`,
		`ares_decisions_total{action="notify"}`,
		`ares_actions_total{action="notify",result="dry_run"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// recycle through `ares run`: an unhealthy replica is replaced by a new container with the same
// name that answers on the same network alias.
func TestRecycleKeepsNameAndAlias(t *testing.T) {
	label, labels := scope(t)
	sc := labels["ares.test.scope"]
	netw := dockertest.Network(t, "e2e-recycle")
	labels["ares.service"] = "api"
	name := "e2e-recycle-" + sc
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels, Network: netw, Alias: "api", Publish: true})
	probe := dockertest.Run(t, dockertest.Spec{Name: name + "-probe", Network: netw, Publish: true})
	waitHealthy(t, id)
	dir := t.TempDir()
	writePolicy(t, dir, "recycle.rego", `package ares

decisions contains {"action": "recycle", "service": name, "replica": r.name, "reason": "unhealthy"} if {
	some name, svc in input.services
	some r in svc.replicas
	r.health == "unhealthy"
}
`)
	p := startAres(t, dir, label)
	code, _, err := dockertest.Get(dockertest.HostPort(t, id), "/sick")
	if err != nil || code != 200 {
		t.Fatalf("make it sick: %d %v", code, err)
	}
	dockertest.Eventually(t, 30*time.Second, "recycled: new id under the same name", func() bool {
		nid := inspectID(t, name)
		return nid != "" && nid != id
	})
	nid := inspectID(t, name)
	t.Cleanup(func() { dockertest.Remove(nid) })
	waitHealthy(t, nid)
	paddr := dockertest.HostPort(t, probe)
	dockertest.Eventually(t, 15*time.Second, "new container answers on the alias", func() bool {
		code, body, err := dockertest.Get(paddr, "/fetch?url=http://api:8080/")
		return err == nil && code == 200 && body == nid[:12]
	})
	if !contains(p.actions(t, "admit"), "recycle api/"+name) {
		t.Errorf("no recycle action printed: %v", p.actions(t, ""))
	}
}

// scale_out through `ares run`: the new replica answers on the service's alias.
func TestScaleOutAnswersOnAlias(t *testing.T) {
	label, labels := scope(t)
	sc := labels["ares.test.scope"]
	netw := dockertest.Network(t, "e2e-scale")
	labels["ares.service"] = "api"
	name := "e2e-scale-" + sc
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels, Network: netw, Alias: "api"})
	probe := dockertest.Run(t, dockertest.Spec{Name: name + "-probe", Network: netw, Publish: true})
	waitHealthy(t, id)
	dir := t.TempDir()
	writePolicy(t, dir, "scale.rego", `package ares

decisions contains {"action": "scale_out", "service": name, "reason": "fewer than 2 replicas"} if {
	some name, svc in input.services
	svc.summary.replicas < 2
}
`)
	p := startAres(t, dir, label)
	dockertest.Eventually(t, 30*time.Second, "scale_out done", func() bool {
		return p.hasAction(t, func(a engine.Action) bool {
			return a.Action == "scale_out" && a.Outcome != nil && a.Outcome.Result == "ok"
		})
	})
	paddr := dockertest.HostPort(t, probe)
	seen := map[string]bool{}
	dockertest.Eventually(t, 20*time.Second, "two replicas answer on the alias", func() bool {
		_, body, err := dockertest.Get(paddr, "/fetch?url=http://api:8080/")
		if err == nil && len(body) == 12 {
			seen[body] = true
		}
		return len(seen) == 2
	})
	if !seen[id[:12]] {
		t.Errorf("original replica not among %v", seen)
	}
	time.Sleep(1500 * time.Millisecond)
	n := 0
	for _, a := range p.actions(t, "admit") {
		if strings.HasPrefix(a, "scale_out") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d scale_out actions, want exactly 1 (the policy stops at 2 replicas)", n)
	}
}

// `ares facts -o json` prints a schema-valid document with the live containers, which
// `ares eval` accepts; the text form is a table with one row per replica.
func TestFactsCommand(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	name := "e2e-facts-" + labels["ares.test.scope"]
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels, MemLimit: 64 << 20})
	waitHealthy(t, id)
	root := dockertest.ModuleRoot(t)
	run := func(args ...string) []byte {
		if args[0] != "eval" { // eval reads no config
			args = append(args, "--config", filepath.Join(root, "ares.yaml"))
		}
		cmd := exec.Command(binary(t), args...)
		cmd.Env = append(os.Environ(), "ARES_DOCKER_LABELS="+label)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ares %v: %v", args, err)
		}
		return out
	}
	raw := run("facts", "-o", "json")
	if err := schema.Validate(raw); err != nil {
		t.Fatalf("ares facts -o json is not a valid facts document: %v", err)
	}
	var f engine.Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	web := f.Services["web"]
	if web == nil || len(web.Replicas) != 1 || web.Replicas[0].Name != name {
		t.Fatalf("facts do not hold the test container: %s", raw)
	}
	r := web.Replicas[0]
	if r.State != "running" || r.Health != "healthy" || r.MemBytes <= 0 || r.MemLimitBytes != 64<<20 || r.MemPercent <= 0 {
		t.Errorf("replica = %+v", r)
	}
	if !f.Sensors["docker"].OK {
		t.Errorf("docker sensor not ok: %+v", f.Sensors)
	}
	if len(f.Services) != 1 {
		t.Errorf("facts leak containers outside the label scope: %v", f.Services)
	}
	table := string(run("facts"))
	if !strings.Contains(table, name) || !strings.Contains(table, "running  healthy") {
		t.Errorf("table:\n%s", table)
	}
	// The captured document replays through ares eval: the healthy service needs nothing.
	p := filepath.Join(t.TempDir(), "case.json")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := string(run("eval", "--facts", p, "--policies", filepath.Join(root, "policies"))); !strings.HasPrefix(out, "no decisions") {
		t.Errorf("eval of a healthy capture: %q", out)
	}
}

// A container that crashes in a loop is restarted with back-off delays close to the
// configured doubling sequence, not in a restart storm; the suppressions say why.
func TestCrashLoopBackoff(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "loop"
	name := "e2e-loop-" + labels["ares.test.scope"]
	dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels, Env: []string{"CRASH_AFTER=300ms"}})
	dir := t.TempDir()
	writePolicy(t, dir, "restart.rego", `package ares

decisions contains {"action": "restart", "service": name, "replica": r.name, "reason": "exited"} if {
	some name, svc in input.services
	some r in svc.replicas
	r.state == "exited"
}
`)
	t.Setenv("ARES_GOVERNOR_COOLDOWN", "10ms")
	t.Setenv("ARES_GOVERNOR_BACKOFF_INITIAL", "1s")
	t.Setenv("ARES_GOVERNOR_BACKOFF_MAX", "4s")
	t.Setenv("ARES_GOVERNOR_BUDGET", "100")
	t.Setenv("ARES_ENGINE_INTERVAL", "100ms")
	p := startAres(t, dir, label)

	restarts := func() []time.Time {
		var out []time.Time
		for _, tk := range p.ticks(t) {
			for _, a := range tk.Actions {
				if a.Verdict == "admit" && a.Action == "restart" && a.Replica == name {
					at, _ := time.Parse("2006-01-02T15:04:05.000Z07:00", tk.Time)
					out = append(out, at)
				}
			}
		}
		return out
	}
	dockertest.Eventually(t, 30*time.Second, "five restarts", func() bool { return len(restarts()) >= 5 })
	rs := restarts()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		gap := rs[i+1].Sub(rs[i])
		// The crash comes 300 ms after each start; the next restart is due once the back-off
		// has passed since the previous one, then the next tick (100 ms) picks it up.
		if gap < w || gap > w+time.Second {
			t.Errorf("gap %d = %s, want %s (+ up to 1s): restarts at %v", i, gap, w, rs)
		}
	}
	if !p.heldBack(t, name, "crash-loop back-off: "+name) {
		t.Error("no decision was held back with a crash-loop back-off reason")
	}

	// Still crashing after two restarts at the cap: one escalation to a human, then hands off.
	var escalatedAt time.Time
	dockertest.Eventually(t, 15*time.Second, "an escalation", func() bool {
		for _, tk := range p.ticks(t) {
			for _, a := range tk.Actions {
				if a.Action == "notify" && a.Verdict == "admit" && strings.HasPrefix(a.Reason, "escalation: crash-loop back-off:") {
					escalatedAt, _ = time.Parse("2006-01-02T15:04:05.000Z07:00", tk.Time)
					return true
				}
			}
		}
		return false
	})
	n := len(p.ticks(t))
	dockertest.Eventually(t, 15*time.Second, "ticks after the escalation", func() bool { return len(p.ticks(t)) >= n+10 })
	for _, at := range restarts() {
		if at.After(escalatedAt) {
			t.Errorf("restarted at %s, after the escalation at %s", at, escalatedAt)
		}
	}
}

// The journal outlives ARES: a restart restores the governor's brakes from it, and
// `ares actions` and `ares incidents` read what the first run did.
func TestJournalSurvivesRestart(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	name := "e2e-journal-" + labels["ares.test.scope"]
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels})
	waitHealthy(t, id)
	dbPath := filepath.Join(t.TempDir(), "journal.db")
	t.Setenv("ARES_JOURNAL_PATH", dbPath)
	policies := filepath.Join(dockertest.ModuleRoot(t), "policies")

	first := startAres(t, policies, label)
	kill(t, id)
	dockertest.Eventually(t, 20*time.Second, "first ARES restarts the container", func() bool {
		return contains(first.actions(t, "admit"), "restart web/"+name)
	})
	waitHealthy(t, id)
	dockertest.Eventually(t, 10*time.Second, "incident resolved", func() bool { return len(first.ticks(t)) > 3 })
	_ = first.cmd.Process.Signal(syscall.SIGTERM)
	_, _ = first.cmd.Process.Wait()

	second := startAres(t, policies, label)
	if !strings.Contains(second.stderr.String(), "governor restored from the journal") {
		t.Errorf("the second ARES did not restore the governor:\n%s", tail(second.stderr.String(), 20))
	}
	// Killed again within the cooldown: the restored history (the pack's cooldown reads it)
	// and the governor's restored cooldown hold the restart back.
	kill(t, id)
	n := len(second.ticks(t))
	dockertest.Eventually(t, 20*time.Second, "ticks after the kill", func() bool { return len(second.ticks(t)) >= n+6 })
	if got := second.actions(t, "admit"); contains(got, "restart web/"+name) {
		t.Errorf("the second ARES restarted within the cooldown: %v", got)
	}
	if st, _ := dockertest.State(t, id); st != "exited" {
		t.Errorf("container state %s: the restored cooldown did not hold", st)
	}
	root := dockertest.ModuleRoot(t)
	out, err := exec.Command(binary(t), "actions", "--config", filepath.Join(root, "ares.yaml"), "--service", "web").CombinedOutput()
	if err != nil || !strings.Contains(string(out), name) || !strings.Contains(string(out), "restart") {
		t.Errorf("ares actions: %v\n%s", err, out)
	}
	out, err = exec.Command(binary(t), "incidents", "--config", filepath.Join(root, "ares.yaml"), "-o", "json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"web"`) {
		t.Errorf("ares incidents: %v\n%s", err, out)
	}
}

// An Alertmanager webhook posted to a running ARES becomes a fact and, through the default
// pack's alert rule, a decision; a malformed payload is refused with 400.
func TestAlertmanagerWebhookBecomesDecision(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	dockertest.Run(t, dockertest.Spec{Name: "e2e-alert-" + labels["ares.test.scope"], Labels: labels})
	addr := freeAddr(t)
	t.Setenv("ARES_METRICS_LISTEN", addr)
	p := startAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label, "--dry-run")

	post := func(body string) int {
		resp, err := http.Post("http://"+addr+"/api/v1/alerts", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(`{"version": "4", "alerts": [`); code != http.StatusBadRequest {
		t.Errorf("malformed payload: %d, want 400", code)
	}
	payload := `{"version": "4", "status": "firing", "receiver": "ares", "groupKey": "{}:{}", "alerts": [
		{"status": "firing", "labels": {"alertname": "ServiceDown", "service": "web", "severity": "critical"},
		 "annotations": {"summary": "web is down"}, "startsAt": "2026-12-04T10:00:00Z", "fingerprint": "abc"}]}`
	if code := post(payload); code != http.StatusOK {
		t.Fatalf("payload: %d, want 200", code)
	}
	dockertest.Eventually(t, 10*time.Second, "the alert becomes a decision", func() bool {
		for _, tk := range p.ticks(t) {
			for _, d := range tk.Decisions {
				if d.Service == "web" && d.Action == "restart" && strings.HasPrefix(d.Reason, "alert ServiceDown firing since") {
					return true
				}
			}
		}
		return false
	})
}

// `ares run` serves the dashboard and its API: pages and facts to read, and a pause that needs
// the token and then holds the next action back.
func TestDashboardServedByAresRun(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	name := "e2e-dash-" + labels["ares.test.scope"]
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels})
	waitHealthy(t, id)
	addr := freeAddr(t)
	t.Setenv("ARES_DASHBOARD_LISTEN", addr)
	t.Setenv("ARES_API_TOKEN", "e2e-secret-token")
	p := startAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label)

	dockertest.Eventually(t, 10*time.Second, "the overview lists the service", func() bool {
		code, body, err := dockertest.Get(addr, "/")
		return err == nil && code == 200 && strings.Contains(body, name)
	})
	if code, body, _ := dockertest.Get(addr, "/api/v1/facts"); code != 200 || !strings.Contains(body, `"web"`) {
		t.Errorf("GET /api/v1/facts: %d %.200s", code, body)
	}
	pause := func(token string) int {
		return post(t, addr, token, "/api/v1/pause", `{"service": "web", "why": "e2e test"}`)
	}
	if code := pause(""); code != http.StatusUnauthorized {
		t.Fatalf("pause without a token: %d, want 401", code)
	}
	if code := pause("e2e-secret-token"); code != http.StatusOK {
		t.Fatalf("pause with the token: %d, want 200", code)
	}
	kill(t, id)
	dockertest.Eventually(t, 15*time.Second, "the restart is held back by the pause", func() bool {
		return p.heldBack(t, name, "paused")
	})
	if st, _ := dockertest.State(t, id); st != "exited" {
		t.Errorf("a paused service was touched: %s", st)
	}
	if strings.Contains(p.stderr.String(), "e2e-secret-token") || strings.Contains(p.stdout.String(), "e2e-secret-token") {
		t.Error("the API token appears in ARES's output")
	}
}

// Operators win: a replica a person labelled ares.paused=true is left alone when it dies; the
// suppression says why.
func TestPausedLabelIsRespected(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	labels["ares.paused"] = "true"
	name := "e2e-paused-" + labels["ares.test.scope"]
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels})
	waitHealthy(t, id)
	p := startAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label)
	kill(t, id)
	dockertest.Eventually(t, 15*time.Second, "the restart is held back by the label", func() bool {
		return p.heldBack(t, name, "ares.paused=true")
	})
	if st, _ := dockertest.State(t, id); st != "exited" {
		t.Errorf("a replica labelled ares.paused=true was touched: %s", st)
	}
}
