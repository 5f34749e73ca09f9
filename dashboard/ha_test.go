package dashboard

import (
	"strings"
	"testing"
)

type fakeLeader struct {
	leader  string
	leading bool
}

func (f fakeLeader) Instance() string { return "b" }
func (f fakeLeader) Leader() string   { return f.leader }
func (f fakeLeader) Leading() bool    { return f.leading }

// With ha on, the status API and the overview say which instance leads; without, neither
// mentions it.
func TestStatusShowsLeader(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.feed(t, 2)
	if w := fx.do(t, "GET", "/api/v1/status", ""); strings.Contains(w.Body.String(), `"ha"`) {
		t.Errorf("status without ha mentions it: %s", w.Body.String())
	}
	if w := fx.do(t, "GET", "/", ""); strings.Contains(w.Body.String(), "standby") {
		t.Error("overview without ha shows standby")
	}
	fx.srv.deps.Leader = fakeLeader{leader: "a"}
	w := fx.do(t, "GET", "/api/v1/status", "")
	for _, want := range []string{`"instance": "b"`, `"leader": "a"`, `"leading": false`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("status lacks %s: %s", want, w.Body.String())
		}
	}
	if w := fx.do(t, "GET", "/", ""); !strings.Contains(w.Body.String(), "standby") || !strings.Contains(w.Body.String(), "a leads") {
		t.Errorf("overview of a standby does not name the leader")
	}
	fx.srv.deps.Leader = fakeLeader{leader: "b", leading: true}
	if w := fx.do(t, "GET", "/", ""); !strings.Contains(w.Body.String(), ">leader<") {
		t.Errorf("overview of the leader does not say so")
	}
}
