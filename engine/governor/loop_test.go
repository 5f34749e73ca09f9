package governor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

var defaultLadder = engine.Rules{Ladder: []string{engine.ActRestart, engine.ActRecycle, engine.ActScaleOut, engine.ActNotify}}

// A restart that does not cure the replica within the verification timeout moves the service
// up the ladder: the policy's next restart becomes a recycle, then a scale_out, then a
// notify for a person (an escalation that pauses the service); facts show the rung.
func TestRestartThatDoesNotCureClimbsTheLadder(t *testing.T) {
	g := New(Options{Cooldown: time.Second, VerifyTimeout: 30 * time.Second, Budget: 100})
	g.SetRules(defaultLadder)
	now := t0
	sick := func() *engine.Facts { return facts("api-1:running:unhealthy", "api-2:running:healthy") }

	act := func(want string) engine.Action {
		t.Helper()
		f := sick()
		g.Annotate(f, now)
		as := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
		if len(as) != 1 || as[0].Verdict != engine.VerdictAdmit || as[0].Action != want {
			t.Fatalf("at %s: actions = %+v, want one admitted %s", now.Sub(t0), as, want)
		}
		g.Done(as[0], now)
		return as[0]
	}
	if a := act(engine.ActRestart); a.From != nil {
		t.Fatalf("first fix moved up the ladder: %+v", a)
	}
	// Starting again after the restart, before the timeout: verifying, no climb yet, and no
	// second fix meanwhile.
	now = now.Add(10 * time.Second)
	f := facts("api-1:running:starting", "api-2:running:healthy")
	g.Annotate(f, now)
	if h := f.Services["api"].History; !h.Verifying || h.LadderStep != 0 || h.LastActionVerified != nil {
		t.Fatalf("history while verifying = %+v", h)
	}
	if as := g.Admit([]engine.Decision{restart("api-1")}, f, now, false); !strings.HasPrefix(as[0].Why, "verifying: the restart of api/api-1") {
		t.Fatalf("a second fix while verifying: %v", verdicts(as))
	}
	// Timeout passed, still not healthy: rung 1.
	now = now.Add(25 * time.Second)
	f = facts("api-1:running:starting", "api-2:running:healthy")
	g.Annotate(f, now)
	if h := f.Services["api"].History; h.Verifying || h.LadderStep != 1 || h.LastActionVerified == nil || *h.LastActionVerified {
		t.Fatalf("history after a failed fix = %+v, want ladder_step 1, last_action_verified false", h)
	}
	a := act(engine.ActRecycle)
	if a.From == nil || a.From.Action != engine.ActRestart || a.Replica != "api-1" || !strings.Contains(a.Reason, "escalation ladder") {
		t.Fatalf("recycle = %+v, want From restart api-1 and a ladder reason", a)
	}
	now = now.Add(31 * time.Second)
	a = act(engine.ActScaleOut)
	if a.Replica != "" {
		t.Fatalf("scale_out kept a replica: %+v", a)
	}
	now = now.Add(31 * time.Second)
	f = sick()
	g.Annotate(f, now)
	as := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
	if len(as) != 1 || as[0].Action != engine.ActNotify || !as[0].Escalation || as[0].Verdict != engine.VerdictAdmit {
		t.Fatalf("last rung = %+v, want one admitted escalation notify", as)
	}
	if _, ok := g.Paused(now)["api"]; !ok {
		t.Error("the ladder's last rung did not pause the service")
	}
}

// A fix that cures its target puts the service back at the bottom of the ladder.
func TestCuredFixResetsTheLadder(t *testing.T) {
	g := New(Options{Cooldown: time.Second, VerifyTimeout: 30 * time.Second})
	g.SetRules(defaultLadder)
	g.Done(engine.Action{Decision: restart("api-1")}, t0)
	f := facts("api-1:running:unhealthy")
	g.Annotate(f, t0.Add(31*time.Second))
	if f.Services["api"].History.LadderStep != 1 {
		t.Fatalf("ladder_step = %d, want 1", f.Services["api"].History.LadderStep)
	}
	g.Done(engine.Action{Decision: engine.Decision{Action: engine.ActRecycle, Service: "api", Replica: "api-1", Reason: "x"}}, t0.Add(40*time.Second))
	f = facts("api-1:running:starting")
	g.Annotate(f, t0.Add(42*time.Second))
	if h := f.Services["api"].History; !h.Verifying {
		t.Fatalf("starting counts as cured: %+v", h)
	}
	f = facts("api-1:running:healthy")
	g.Annotate(f, t0.Add(45*time.Second))
	h := f.Services["api"].History
	if h.LadderStep != 0 || h.LastActionVerified == nil || !*h.LastActionVerified || h.Verifying {
		t.Fatalf("history after a cure = %+v, want ladder_step 0, verified true", h)
	}
	as := g.Admit([]engine.Decision{restart("api-1")}, facts("api-1:running:unhealthy"), t0.Add(2*time.Minute), false)
	if as[0].Action != engine.ActRestart || as[0].From != nil {
		t.Errorf("after a cure the restart was moved: %+v", as[0])
	}
}

// A fix whose target is seen failing again (after the grace) fails before the timeout.
func TestFixSeenFailingFailsEarly(t *testing.T) {
	g := New(Options{Cooldown: time.Second, VerifyTimeout: time.Minute})
	g.SetRules(defaultLadder)
	g.Done(engine.Action{Decision: restart("api-1")}, t0)
	f := facts("api-1:exited")
	g.Annotate(f, t0.Add(time.Second)) // within the grace: the sensor may not have seen the restart
	if h := f.Services["api"].History; !h.Verifying || h.LadderStep != 0 {
		t.Fatalf("history within the grace = %+v", h)
	}
	f = facts("api-1:exited")
	g.Annotate(f, t0.Add(3*time.Second))
	if h := f.Services["api"].History; h.Verifying || h.LadderStep != 1 || h.LastActionVerified == nil || *h.LastActionVerified {
		t.Fatalf("history after the replica died again = %+v, want ladder_step 1", h)
	}
}

// Without a ladder in the policy data the policy's decision always stands.
func TestNoLadderNoClimb(t *testing.T) {
	g := New(Options{Cooldown: time.Second, VerifyTimeout: time.Second})
	g.Done(engine.Action{Decision: restart("api-1")}, t0)
	f := facts("api-1:running:unhealthy")
	g.Annotate(f, t0.Add(2*time.Second))
	as := g.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(2*time.Second), false)
	if as[0].Action != engine.ActRestart || f.Services["api"].History.LadderStep != 0 {
		t.Errorf("climbed without a ladder: %+v, history %+v", as[0], f.Services["api"].History)
	}
}

// Operators win: a replica a person stopped is left alone, and so is a service restart that
// would start it; with IgnoreOperatorStop the action goes through.
func TestOperatorStopIsRespected(t *testing.T) {
	f := facts("api-1:exited", "api-2:running")
	f.Services["api"].Replicas[0].StoppedByOperator = true
	g := New(Options{})
	as := g.Admit([]engine.Decision{restart("api-1")}, f, t0, false)
	if as[0].Verdict != engine.VerdictSuppress || !strings.HasPrefix(as[0].Why, "stopped by an operator") {
		t.Fatalf("verdicts = %v, want suppressed: stopped by an operator", verdicts(as))
	}
	as = g.Admit([]engine.Decision{{Action: engine.ActRestart, Service: "api", Reason: "probe"}}, f, t0, false)
	if as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "api-1") {
		t.Fatalf("service restart verdicts = %v", verdicts(as))
	}
	g = New(Options{IgnoreOperatorStop: true})
	if as := g.Admit([]engine.Decision{restart("api-1")}, f, t0, false); as[0].Verdict != engine.VerdictAdmit {
		t.Errorf("IgnoreOperatorStop: verdicts = %v, want admit", verdicts(as))
	}
}

// An action that needs approval waits, pending, until approved; then the next decision for
// it passes (and other checks still apply); a rejected or expired one never does.
func TestApprovalGate(t *testing.T) {
	g := New(Options{Cooldown: time.Minute, ApprovalTTL: 10 * time.Minute})
	g.SetRules(engine.Rules{Approval: map[string]map[string]bool{"api": {engine.ActRestart: true}}})
	f := facts("api-1:exited", "api-2:running")
	as := g.Admit([]engine.Decision{restart("api-1")}, f, t0, false)
	if as[0].Verdict != engine.VerdictSuppress || !strings.HasPrefix(as[0].Why, "awaiting approval") || as[0].Approval == "" {
		t.Fatalf("first verdict = %v, want awaiting approval", verdicts(as))
	}
	id := as[0].Approval
	// Decided again: the same approval, not a second one.
	as = g.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(time.Second), false)
	if as[0].Approval != id || len(g.Approvals(t0)) != 1 {
		t.Fatalf("second tick: approval %q (want %q), %d approvals", as[0].Approval, id, len(g.Approvals(t0)))
	}
	g.Annotate(f, t0.Add(time.Second))
	if n := f.Services["api"].History.PendingApprovals; n != 1 {
		t.Errorf("history.pending_approvals = %d, want 1", n)
	}
	// Other services and actions need none.
	if as := g.Admit([]engine.Decision{{Action: engine.ActRestart, Service: "db", Reason: "x"}}, f, t0, false); as[0].Verdict != engine.VerdictAdmit {
		t.Errorf("db restart: %v", verdicts(as))
	}
	if _, err := g.Decide("nope", true, "tok", "", t0); !errors.Is(err, ErrUnknownApproval) {
		t.Errorf("unknown id: err = %v", err)
	}
	ap, err := g.Decide(id, true, "token:abc", "go ahead", t0.Add(2*time.Second))
	if err != nil || ap.Status != engine.ApprovalApproved || ap.DecidedBy != "token:abc" {
		t.Fatalf("approve: %+v, %v", ap, err)
	}
	if _, err := g.Decide(id, false, "tok", "no", t0.Add(3*time.Second)); !errors.Is(err, ErrApprovalClosed) {
		t.Errorf("decide twice: err = %v", err)
	}
	as = g.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(3*time.Second), false)
	if as[0].Verdict != engine.VerdictAdmit || as[0].Approval != id {
		t.Fatalf("after approval: %v (approval %q)", verdicts(as), as[0].Approval)
	}
	g.Done(as[0], t0.Add(3*time.Second))
	if got := g.Approvals(t0.Add(4 * time.Second))[0].Status; got != engine.ApprovalDone {
		t.Errorf("status after the action = %s, want done", got)
	}
	// Used up: the next restart asks again (after the cooldown).
	as = g.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(2*time.Minute), false)
	if !strings.HasPrefix(as[0].Why, "awaiting approval") || as[0].Approval == id {
		t.Fatalf("after the approved action: %v", verdicts(as))
	}
	id2 := as[0].Approval
	if _, err := g.Decide(id2, false, "token:abc", "not now", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	as = g.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(3*time.Minute), false)
	if as[0].Verdict != engine.VerdictSuppress || !strings.Contains(as[0].Why, "rejected by token:abc: not now") {
		t.Fatalf("after rejection: %v", verdicts(as))
	}
	// Rejection over: asked again; that one expires unanswered and is never admitted.
	now := t0.Add(2*time.Minute + 11*time.Minute)
	as = g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
	id3 := as[0].Approval
	if !strings.HasPrefix(as[0].Why, "awaiting approval") || id3 == id2 {
		t.Fatalf("after the rejection expired: %v", verdicts(as))
	}
	now = now.Add(11 * time.Minute)
	if _, err := g.Decide(id3, true, "tok", "", now); !errors.Is(err, ErrApprovalClosed) {
		t.Errorf("approving an expired approval: err = %v", err)
	}
}
