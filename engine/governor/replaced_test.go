package governor

import (
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// A replica fix whose target is replaced under a new name (a Kubernetes eviction: the
// ReplicaSet's new pod has a new name) is judged by the service: cured when every replica is
// healthy, not cured while the new one still fails.
func TestFixReplacedUnderNewNameIsJudgedByTheService(t *testing.T) {
	g := New(Options{Cooldown: time.Second, VerifyTimeout: 30 * time.Second})
	g.SetRules(defaultLadder)
	g.Done(engine.Action{Decision: restart("api-1")}, t0)
	f := facts("api-2:running:healthy", "api-3:running:starting")
	g.Annotate(f, t0.Add(5*time.Second))
	if h := f.Services["api"].History; !h.Verifying {
		t.Fatalf("new pod still starting counts as cured: %+v", h)
	}
	f = facts("api-2:running:healthy", "api-3:running:healthy")
	g.Annotate(f, t0.Add(8*time.Second))
	h := f.Services["api"].History
	if h.Verifying || h.LadderStep != 0 || h.LastActionVerified == nil || !*h.LastActionVerified {
		t.Fatalf("history after the replacement is healthy = %+v, want verified true, ladder_step 0", h)
	}
}
