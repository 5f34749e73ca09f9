package governor

import (
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// facts builds one service "api" with replicas given as "name:state[:health]".
func facts(replicas ...string) *engine.Facts {
	f := engine.NewFacts(1, t0)
	s := f.Service("api")
	for _, r := range replicas {
		p := strings.Split(r, ":")
		rep := engine.Replica{Name: p[0], State: p[1], Health: "none"}
		if len(p) > 2 {
			rep.Health = p[2]
		}
		s.Replicas = append(s.Replicas, rep)
	}
	f.Service("db")
	return f
}

func restart(replica string) engine.Decision {
	return engine.Decision{Action: engine.ActRestart, Service: "api", Replica: replica, Reason: "exited"}
}

func verdicts(as []engine.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Verdict
		if a.Verdict == engine.VerdictSuppress {
			out[i] += ": " + a.Why
		}
	}
	return out
}

func TestHistoryFlowsIntoFacts(t *testing.T) {
	g := New(Options{})
	f := facts("api-1:running")
	g.Annotate(f, t0)
	if h := f.Services["api"].History; h == nil || h.Actions10m != 0 || h.SecondsSinceLastAction != HistoryCap || h.BackoffUntil != nil || h.LastActionAt != nil {
		t.Fatalf("fresh history = %+v, want 0 actions, the cap and no last action", h)
	}
	g.Done(engine.Action{Decision: restart("api-1")}, t0)
	g.Done(engine.Action{Decision: restart("api-2")}, t0.Add(5*time.Minute))

	f = facts("api-1:running", "api-2:exited")
	g.Annotate(f, t0.Add(5*time.Minute+5*time.Second))
	h := f.Services["api"].History
	if h.Actions10m != 2 || h.SecondsSinceLastAction != 5 {
		t.Errorf("api history = %+v, want 2 actions, 5 s", h)
	}
	if h.LastActionAt == nil || !h.LastActionAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("last_action_at = %v, want the second restart's time", h.LastActionAt)
	}
	if h.BackoffUntil == nil || !h.BackoffUntil.Equal(t0.Add(5*time.Minute+10*time.Second)) {
		t.Errorf("backoff_until = %v, want the last restart + 10s", h.BackoffUntil)
	}
	if h := f.Services["db"].History; h.Actions10m != 0 || h.SecondsSinceLastAction != HistoryCap {
		t.Errorf("db history = %+v, want untouched", h)
	}
	f = facts("api-1:running")
	g.Annotate(f, t0.Add(11*time.Minute))
	if h := f.Services["api"].History; h.Actions10m != 1 {
		t.Errorf("after the window the first action must age out: %+v", h)
	}
}

func TestCooldownAndBudget(t *testing.T) {
	g := New(Options{Cooldown: time.Minute, Budget: 3, BudgetWindow: 10 * time.Minute, BackoffInitial: time.Second, BackoffMax: time.Second})
	f := facts("api-1:exited")
	now := t0
	for i := range 3 {
		got := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
		if got[0].Verdict != engine.VerdictAdmit {
			t.Fatalf("action %d: %v", i, verdicts(got))
		}
		g.Done(got[0], now)
		got = g.Admit([]engine.Decision{restart("api-1")}, f, now.Add(30*time.Second), false)
		if !strings.HasPrefix(got[0].Why, "cooldown: last action on api 30s ago (cooldown 1m0s)") {
			t.Fatalf("within the cooldown: %v", verdicts(got))
		}
		now = now.Add(2 * time.Minute)
	}
	got := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
	if !strings.HasPrefix(got[0].Why, "budget: 3 actions on api in the last 10m0s (budget 3)") {
		t.Fatalf("over budget: %v", verdicts(got))
	}
	// The spent budget escalated and paused the service (TestEscalation); a person resumes it.
	g.Resume("api")
	if got := g.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(11*time.Minute), false); got[0].Verdict != engine.VerdictAdmit {
		t.Errorf("once the first action left the window: %v", verdicts(got))
	}
}

// A replica that keeps crashing gets Kubernetes-like delays: 10s, 20s, 40s, ... capped at 5m,
// and a clean slate after 10 minutes of running.
func TestCrashLoopBackoff(t *testing.T) {
	g := New(Options{Cooldown: time.Millisecond, Budget: 1000})
	now := t0
	var gaps []time.Duration
	last := now
	for len(gaps) < 7 {
		f := facts("api-1:exited")
		g.Annotate(f, now)
		got := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
		if got[0].Verdict == engine.VerdictAdmit {
			if now != t0 {
				gaps = append(gaps, now.Sub(last))
			}
			last = now
			g.Done(got[0], now)
		} else if !strings.HasPrefix(got[0].Why, "crash-loop back-off: api-1 was restarted") {
			t.Fatalf("unexpected suppression: %s", got[0].Why)
		}
		now = now.Add(time.Second)
	}
	want := []time.Duration{10, 20, 40, 80, 160, 300, 300}
	for i, w := range want {
		if gaps[i] != w*time.Second {
			t.Errorf("gap %d = %s, want %ds (all: %v)", i, gaps[i], w, gaps)
		}
	}
	// Running and healthy for the reset period: the next crash is restarted at once.
	g.Annotate(facts("api-1:running:healthy"), now)
	g.Annotate(facts("api-1:running:healthy"), now.Add(10*time.Minute))
	crash := now.Add(10*time.Minute + time.Second)
	if got := g.Admit([]engine.Decision{restart("api-1")}, facts("api-1:exited"), crash, false); got[0].Verdict != engine.VerdictAdmit {
		t.Errorf("after 10 minutes of stability: %v", verdicts(got))
	}
	// A replica that was unstable in between does not reset.
	g2 := New(Options{Cooldown: time.Millisecond})
	g2.Done(engine.Action{Decision: restart("api-1")}, t0)
	g2.Annotate(facts("api-1:running"), t0.Add(time.Second))
	g2.Annotate(facts("api-1:running:unhealthy"), t0.Add(5*time.Minute))
	g2.Annotate(facts("api-1:running"), t0.Add(11*time.Minute))
	g2.Done(engine.Action{Decision: restart("api-1")}, t0.Add(11*time.Minute))
	if got := g2.Admit([]engine.Decision{restart("api-1")}, facts("api-1:exited"), t0.Add(11*time.Minute+15*time.Second), false); got[0].Verdict != engine.VerdictSuppress {
		t.Errorf("second restart after an unstable spell must wait 20s: %v", verdicts(got))
	}
}

func TestBlastRadius(t *testing.T) {
	cases := []struct {
		name     string
		replicas []string
		ds       []engine.Decision
		want     []string
	}{
		{"two down: one per tick", []string{"api-1:exited", "api-2:exited", "api-3:running"},
			[]engine.Decision{restart("api-1"), restart("api-2")},
			[]string{"admit", "suppress: blast radius: already acting on 1 replica(s) of api this tick (max_unavailable 1)"}},
		{"last healthy replica kept while another is down", []string{"api-1:exited", "api-2:running:healthy"},
			[]engine.Decision{{Action: engine.ActRecycle, Service: "api", Replica: "api-2", Reason: "leak"}},
			[]string{"suppress: blast radius: 1 replica(s) of api already down; api-2 is serving (max_unavailable 1)"}},
		{"a running replica may be recycled when all others serve", []string{"api-1:running", "api-2:running:healthy"},
			[]engine.Decision{{Action: engine.ActRecycle, Service: "api", Replica: "api-2", Reason: "leak"}},
			[]string{"admit"}},
		{"an unhealthy replica counts as down, and may be restarted", []string{"api-1:running:unhealthy", "api-2:running:healthy"},
			[]engine.Decision{restart("api-1")},
			[]string{"admit"}},
		{"service-level actions are not replica actions", []string{"api-1:exited", "api-2:running"},
			[]engine.Decision{restart("api-1"), {Action: engine.ActScaleOut, Service: "api", Reason: "cpu"}},
			[]string{"admit", "admit"}},
		{"one action per target", []string{"api-1:exited"},
			[]engine.Decision{restart("api-1"), restart("api-1")},
			[]string{"admit", "suppress: another action on api/api-1 this tick"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := verdicts(New(Options{}).Admit(tc.ds, facts(tc.replicas...), t0, false))
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("decision %d: %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestDryRunShowsWhatWouldBeHeldBack(t *testing.T) {
	g := New(Options{})
	f := facts("api-1:exited", "api-2:exited")
	got := g.Admit([]engine.Decision{restart("api-1"), restart("api-2")}, f, t0, true)
	if got[0].Verdict != engine.VerdictDryRun || got[0].Admitted() {
		t.Errorf("dry run admitted: %+v", got[0])
	}
	if got[1].Verdict != engine.VerdictSuppress {
		t.Errorf("dry run must still show the blast-radius suppression: %+v", got[1])
	}
}

func TestPauseAndResume(t *testing.T) {
	g := New(Options{})
	f := facts("api-1:exited")
	g.Pause("api", t0.Add(30*time.Minute))
	got := g.Admit([]engine.Decision{restart("api-1")}, f, t0, false)
	if got[0].Why != "automation for api is paused until 2026-12-01T08:30:00Z" {
		t.Errorf("paused service: %v", verdicts(got))
	}
	g.Annotate(f, t0)
	if !f.Services["api"].History.Paused || f.Services["db"].History.Paused {
		t.Errorf("history.paused: api %v, db %v", f.Services["api"].History.Paused, f.Services["db"].History.Paused)
	}
	if got := g.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(31*time.Minute), false); got[0].Verdict != engine.VerdictAdmit {
		t.Errorf("an expired pause still holds: %v", verdicts(got))
	}
	g.Pause("", time.Time{}) // the kill switch
	if got := g.Admit([]engine.Decision{restart("api-1")}, f, t0, false); got[0].Why != "automation is paused until resumed" {
		t.Errorf("global pause: %v", verdicts(got))
	}
	if p := g.Paused(t0); len(p) != 1 {
		t.Errorf("Paused = %v", p)
	}
	g.Resume("")
	if got := g.Admit([]engine.Decision{restart("api-1")}, f, t0, false); got[0].Verdict != engine.VerdictAdmit {
		t.Errorf("after resume: %v", verdicts(got))
	}
}

// Operators win: a replica labelled ares.paused=true is left alone, and so is its service as a
// whole; its siblings are not.
func TestReplicaLabelledPaused(t *testing.T) {
	f := facts("api-1:exited", "api-2:exited")
	f.Services["api"].Replicas[0].Paused = true
	got := New(Options{}).Admit([]engine.Decision{
		restart("api-1"),
		{Action: engine.ActRestart, Service: "api", Reason: "probe"},
		{Action: engine.ActNotify, Service: "api", Replica: "api-1", Reason: "tell"},
	}, f, t0, false)
	want := []string{
		"suppress: api-1 is labelled ares.paused=true: left alone",
		"suppress: a service-level restart would touch api-1, labelled ares.paused=true",
		"admit",
	}
	for i, w := range want {
		if v := verdicts(got)[i]; v != w {
			t.Errorf("decision %d: %q, want %q", i, v, w)
		}
	}
	if got := New(Options{}).Admit([]engine.Decision{restart("api-2")}, f, t0, false); got[0].Verdict != engine.VerdictAdmit {
		t.Errorf("the unlabelled sibling: %v", verdicts(got))
	}
}

// Telling a human never holds back a repair, and the same target is told once per cooldown.
func TestNotificationsDoNotBrakeRepairs(t *testing.T) {
	g := New(Options{Cooldown: time.Minute})
	f := facts("api-1:exited")
	tell := engine.Decision{Action: engine.ActNotify, Service: "api", Reason: "anomaly risk high"}
	got := g.Admit([]engine.Decision{tell}, f, t0, false)
	if got[0].Verdict != engine.VerdictAdmit {
		t.Fatalf("first notification: %v", verdicts(got))
	}
	g.Done(got[0], t0)
	got = g.Admit([]engine.Decision{restart("api-1"), tell}, f, t0.Add(10*time.Second), false)
	if got[0].Verdict != engine.VerdictAdmit {
		t.Errorf("a notification started the service's cooldown: %v", verdicts(got))
	}
	if !strings.HasPrefix(got[1].Why, "already notified about api 10s ago") {
		t.Errorf("repeated notification: %v", verdicts(got))
	}
	g.Annotate(f, t0.Add(10*time.Second))
	if h := f.Services["api"].History; h.Actions10m != 0 || h.SecondsSinceLastAction != HistoryCap {
		t.Errorf("a notification counted as an action in the history: %+v", h)
	}
	if got := g.Admit([]engine.Decision{tell}, f, t0.Add(61*time.Second), false); got[0].Verdict != engine.VerdictAdmit {
		t.Errorf("after the cooldown: %v", verdicts(got))
	}
}

// When the budget is spent, the held-back decision becomes one notification for a human and
// automation for the service pauses; nothing more is escalated while paused.
func TestEscalation(t *testing.T) {
	g := New(Options{Cooldown: time.Second, Budget: 2, EscalationPause: 30 * time.Minute})
	f := facts("api-1:exited")
	now := t0
	for range 2 {
		got := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
		g.Done(got[0], now)
		now = now.Add(20 * time.Second) // past the cooldown and the first back-offs
	}
	now = now.Add(time.Minute)
	got := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
	if len(got) != 2 || got[0].Verdict != engine.VerdictSuppress || !strings.HasPrefix(got[0].Why, "budget:") {
		t.Fatalf("over budget: %v", verdicts(got))
	}
	esc := got[1]
	if esc.Action != engine.ActNotify || esc.Verdict != engine.VerdictAdmit || !strings.HasPrefix(esc.Reason, "escalation: budget:") ||
		!strings.Contains(esc.Reason, "needs a human") {
		t.Errorf("escalation = %+v", esc)
	}
	if _, ok := g.Paused(now)["api"]; !ok {
		t.Error("automation for api not paused after the escalation")
	}
	got = g.Admit([]engine.Decision{restart("api-1")}, f, now.Add(time.Minute), false)
	if len(got) != 1 || !strings.HasPrefix(got[0].Why, "automation for api is paused until") {
		t.Errorf("after the escalation: %v", verdicts(got))
	}

	// Under --dry-run the escalation is shown, nothing is paused.
	g2 := New(Options{Cooldown: time.Second, Budget: 1})
	g2.Done(engine.Action{Decision: restart("api-1")}, t0)
	got = g2.Admit([]engine.Decision{restart("api-1")}, f, t0.Add(time.Minute), true)
	if len(got) != 2 || got[1].Verdict != engine.VerdictDryRun || len(g2.Paused(t0.Add(time.Minute))) != 0 {
		t.Errorf("dry run: %v, pauses %v", verdicts(got), g2.Paused(t0.Add(time.Minute)))
	}
}

// A replica whose back-off reached its cap escalates too.
func TestEscalationAtBackoffCap(t *testing.T) {
	g := New(Options{Cooldown: time.Millisecond, Budget: 1000, BackoffInitial: time.Second, BackoffMax: 4 * time.Second})
	f := facts("api-1:exited")
	now := t0
	escalated := false
	for i := 0; i < 200 && !escalated; i++ {
		got := g.Admit([]engine.Decision{restart("api-1")}, f, now, false)
		if got[0].Verdict == engine.VerdictAdmit {
			g.Done(got[0], now)
		}
		for _, a := range got[1:] {
			escalated = a.Action == engine.ActNotify && strings.HasPrefix(a.Reason, "escalation: crash-loop back-off:")
		}
		now = now.Add(500 * time.Millisecond)
	}
	if !escalated {
		t.Fatal("no escalation once the back-off reached its cap")
	}
}
