package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// restartSickPolicy restarts exited and unhealthy replicas; its data.json sets the ladder.
const restartSickPolicy = `package ares

decisions contains {"action": "restart", "service": name, "replica": r.name, "reason": "unhealthy or exited"} if {
	some name, svc in input.services
	some r in svc.replicas
	sick(r)
}

sick(r) if r.health == "unhealthy"

sick(r) if {
	r.state == "exited"
	not r.stopped_by_operator
}
`

// A restart that does not cure the fault escalates to recycle: a replica unhealthy from its
// start (SICK=1, which a restart keeps) is restarted once; when it is still unhealthy at the
// verification timeout the policy's next restart is carried out as a recycle, the next rung
// of the ladder in the policy data.
func TestRestartThatDoesNotCureEscalatesToRecycle(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "sick"
	name := "e2e-sick-" + labels["ares.test.scope"]
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels, Env: []string{"SICK=1"}})
	dir := t.TempDir()
	writePolicy(t, dir, "sick.rego", restartSickPolicy)
	writePolicy(t, dir, "data.json", `{"ares": {"ladder": ["restart", "recycle", "scale_out", "notify"]}}`)
	t.Setenv("ARES_GOVERNOR_COOLDOWN", "1s")
	t.Setenv("ARES_GOVERNOR_BACKOFF_INITIAL", "1s")
	t.Setenv("ARES_GOVERNOR_VERIFY_TIMEOUT", "8s")
	p := startAres(t, dir, label)

	admitted := func(action string) *engine.Action {
		var found *engine.Action
		p.hasAction(t, func(a engine.Action) bool {
			if a.Replica == name && a.Verdict == engine.VerdictAdmit && a.Action == action && found == nil {
				found = &a
			}
			return false
		})
		return found
	}
	dockertest.Eventually(t, 40*time.Second, "a restart of the sick replica", func() bool { return admitted("restart") != nil })
	dockertest.Eventually(t, 60*time.Second, "a recycle after the restart did not cure it", func() bool { return admitted("recycle") != nil })
	rc := admitted("recycle")
	if rc.From == nil || rc.From.Action != "restart" || !strings.Contains(rc.Reason, "escalation ladder") {
		t.Errorf("recycle = %+v, want one moved up the ladder from the policy's restart", rc)
	}
	// Exactly one restart came first: the failed fix was not repeated.
	n := 0
	for _, tk := range p.ticks(t) {
		for _, a := range tk.Actions {
			if a.Replica == name && a.Verdict == engine.VerdictAdmit && a.Action == "restart" {
				n++
			}
		}
	}
	if n != 1 {
		t.Errorf("%d restarts admitted, want 1 before the recycle", n)
	}
	if got := inspectID(t, name); got == "" || got == id {
		t.Errorf("container %s after the recycle: id %q, want a new one", name, got)
	}
}

// factsReplica reads one replica from the dashboard's GET /api/v1/facts.
func factsReplica(t *testing.T, addr, service, replica string) (engine.Replica, bool) {
	code, body, err := dockertest.Get(addr, "/api/v1/facts")
	if err != nil || code != http.StatusOK {
		return engine.Replica{}, false
	}
	var f engine.Facts
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		var wrapped struct {
			Facts *engine.Facts `json:"facts"`
		}
		if json.Unmarshal([]byte(body), &wrapped) != nil || wrapped.Facts == nil {
			return engine.Replica{}, false
		}
		f = *wrapped.Facts
	}
	if r := f.Replica(service, replica); r != nil {
		return *r, true
	}
	return engine.Replica{}, false
}

// A docker stop by a person is respected: ARES, live, sees the stop through the Docker API,
// marks the replica stopped_by_operator and leaves it stopped; once the person starts it
// again the mark is gone (and a crash after that is healed as usual).
func TestDockerStopByAPersonIsRespected(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	name := "e2e-opstop-" + labels["ares.test.scope"]
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels})
	waitHealthy(t, id)
	addr := freeAddr(t)
	t.Setenv("ARES_DASHBOARD_LISTEN", addr)
	p := startAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label)
	dockertest.Eventually(t, 15*time.Second, "ARES sees the replica", func() bool {
		r, ok := factsReplica(t, addr, "web", name)
		return ok && r.State == "running"
	})

	timeout := 1
	if _, err := dockertest.Client(t).ContainerStop(context.Background(), id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("docker stop: %v", err)
	}
	dockertest.Eventually(t, 15*time.Second, "facts show stopped_by_operator", func() bool {
		r, ok := factsReplica(t, addr, "web", name)
		return ok && r.State == "exited" && r.StoppedByOperator
	})
	ticks := len(p.ticks(t))
	dockertest.Eventually(t, 20*time.Second, "ten more ticks", func() bool { return len(p.ticks(t)) >= ticks+10 })
	if p.hasAction(t, func(a engine.Action) bool { return a.Replica == name && a.Verdict == engine.VerdictAdmit }) {
		t.Fatal("ARES acted on a replica a person stopped")
	}
	if st, _ := dockertest.State(t, id); st != "exited" {
		t.Fatalf("a replica a person stopped is %s", st)
	}

	if _, err := dockertest.Client(t).ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("docker start: %v", err)
	}
	dockertest.Eventually(t, 15*time.Second, "the mark clears on start", func() bool {
		r, ok := factsReplica(t, addr, "web", name)
		return ok && r.State == "running" && !r.StoppedByOperator
	})
	waitHealthy(t, id)
	kill(t, id) // a crash now is ARES's to heal
	dockertest.Eventually(t, 30*time.Second, "the crash after the start is healed", func() bool {
		return p.hasAction(t, func(a engine.Action) bool {
			return a.Replica == name && a.Action == "restart" && a.Verdict == engine.VerdictAdmit
		})
	})
}

// approvals reads GET /api/v1/approvals.
func approvals(t *testing.T, addr string) []engine.Approval {
	code, body, err := dockertest.Get(addr, "/api/v1/approvals")
	if err != nil || code != http.StatusOK {
		return nil
	}
	var l struct {
		Approvals []engine.Approval `json:"approvals"`
	}
	_ = json.Unmarshal([]byte(body), &l)
	return l.Approvals
}

func pendingFor(t *testing.T, addr, replica string) *engine.Approval {
	for _, ap := range approvals(t, addr) {
		if ap.Decision.Replica == replica && ap.Status == engine.ApprovalPending {
			return &ap
		}
	}
	return nil
}

func decide(t *testing.T, addr, token, id, body string) int {
	return post(t, addr, token, "/api/v1/approvals/"+id, body)
}

// An action that needs approval runs only after approval: three crashed replicas whose
// restarts the policy data marks approval: required wait, pending in the API; the approved
// one is restarted, the rejected one and the one left to expire never are.
func TestActionThatNeedsApprovalRunsOnlyAfterApproval(t *testing.T) {
	label, labels := scope(t)
	ids, names := map[string]string{}, map[string]string{}
	for _, svc := range []string{"yes", "no", "later"} {
		l := map[string]string{"ares.service": svc}
		for k, v := range labels {
			l[k] = v
		}
		names[svc] = "e2e-appr-" + svc + "-" + labels["ares.test.scope"]
		ids[svc] = dockertest.Run(t, dockertest.Spec{Name: names[svc], Labels: l})
	}
	for _, id := range ids {
		waitHealthy(t, id)
	}
	dir := t.TempDir()
	writePolicy(t, dir, "sick.rego", restartSickPolicy)
	writePolicy(t, dir, "data.json", `{"ares": {"approval": {"defaults": {"restart": "required"}}}}`)
	addr := freeAddr(t)
	const token = "e2e-approval-token"
	t.Setenv("ARES_DASHBOARD_LISTEN", addr)
	t.Setenv("ARES_API_TOKEN", token)
	t.Setenv("ARES_GOVERNOR_APPROVAL_TTL", "12s")
	p := startAres(t, dir, label)
	for _, id := range ids {
		kill(t, id)
	}
	pend := map[string]*engine.Approval{}
	dockertest.Eventually(t, 20*time.Second, "three pending approvals", func() bool {
		for svc, n := range names {
			pend[svc] = pendingFor(t, addr, n)
		}
		return pend["yes"] != nil && pend["no"] != nil && pend["later"] != nil
	})
	if !p.heldBack(t, names["yes"], "awaiting approval") {
		t.Error("no decision was held back awaiting approval")
	}
	for svc, id := range ids {
		if st, _ := dockertest.State(t, id); st != "exited" {
			t.Fatalf("%s restarted before any approval: %s", svc, st)
		}
	}
	// Refused without a token, malformed, or for an unknown id: nothing changes.
	if code := decide(t, addr, "", pend["yes"].ID, `{"decision": "approve"}`); code != http.StatusUnauthorized {
		t.Errorf("approve without a token: %d, want 401", code)
	}
	if code := decide(t, addr, token, pend["yes"].ID, `{"decision": "maybe"}`); code != http.StatusBadRequest {
		t.Errorf("decision maybe: %d, want 400", code)
	}
	if code := decide(t, addr, token, "0000000000000000", `{"decision": "approve"}`); code != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", code)
	}
	if pendingFor(t, addr, names["yes"]) == nil {
		t.Fatal("a refused call changed the approval")
	}

	if code := decide(t, addr, token, pend["no"].ID, `{"decision": "reject", "reason": "e2e: leave it"}`); code != http.StatusOK {
		t.Fatalf("reject: %d", code)
	}
	if code := decide(t, addr, token, pend["yes"].ID, `{"decision": "approve", "reason": "e2e: go"}`); code != http.StatusOK {
		t.Fatalf("approve: %d", code)
	}
	dockertest.Eventually(t, 20*time.Second, "the approved restart runs", func() bool {
		st, _ := dockertest.State(t, ids["yes"])
		return st == "running"
	})
	// The tick is printed once its action is done: wait for it.
	dockertest.Eventually(t, 10*time.Second, "an admitted restart with the approval's id", func() bool {
		return p.hasAction(t, func(a engine.Action) bool {
			return a.Replica == names["yes"] && a.Verdict == engine.VerdictAdmit && a.Approval == pend["yes"].ID
		})
	})
	// Past the approval TTL: the unanswered one expired; neither it nor the rejected one ran.
	dockertest.Eventually(t, 30*time.Second, "the unanswered approval expires", func() bool {
		for _, ap := range approvals(t, addr) {
			if ap.ID == pend["later"].ID {
				return ap.Status == engine.ApprovalExpired
			}
		}
		return false
	})
	for _, svc := range []string{"no", "later"} {
		if st, _ := dockertest.State(t, ids[svc]); st != "exited" {
			t.Errorf("%s (rejected or expired) is %s", svc, st)
		}
		if p.hasAction(t, func(a engine.Action) bool { return a.Replica == names[svc] && a.Verdict == engine.VerdictAdmit }) {
			t.Errorf("%s (rejected or expired) was acted on", svc)
		}
	}
}
