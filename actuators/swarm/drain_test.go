package swarm

// This file drains the engine's only swarm node for a moment: no test in it may run in
// parallel (no t.Parallel), and it waits until no other test's service is on the swarm.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// activate puts the node back into scheduling: what an operator does with
// docker node update --availability active.
func activate(cli *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		n, err := cli.NodeInspect(ctx, id, client.NodeInspectOptions{})
		if err != nil {
			return err
		}
		if n.Node.Spec.Availability == swarm.NodeAvailabilityActive {
			return nil
		}
		spec := n.Node.Spec
		spec.Availability = swarm.NodeAvailabilityActive
		if _, err = cli.NodeUpdate(ctx, id, client.NodeUpdateOptions{Version: n.Node.Meta.Version, Spec: spec}); err == nil {
			return nil
		}
		select { // a version conflict: read again
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DRAINS THE ONLY NODE of the local single-node swarm, for as short as possible: the
// actuator's drain sets the node's availability to drain (with its version) and says how to
// undo it; a second drain is a no-op; the node is made active again at once and, whatever
// happens, in the cleanup. Unknown nodes are refused without any change.
func TestDrainSetsAvailability(t *testing.T) {
	cli := dockertest.Swarm(t)
	info, err := cli.Info(t.Context(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	self := info.Info.Swarm.NodeID
	a := New(cli, Options{}, nil)

	if _, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActDrain, Node: "no-such-node", Reason: "x"}}); !errors.Is(err, ErrRefused) {
		t.Errorf("drain of an unknown node: %v, want refused", err)
	}

	// Other tests' services lose their tasks while the node is drained: wait for them to end.
	quiet := false
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		res, err := cli.ServiceList(t.Context(), client.ServiceListOptions{Filters: client.Filters{}.Add("label", "ares.test=1")})
		if err == nil && len(res.Items) == 0 {
			quiet = true
			break
		}
	}
	if !quiet {
		t.Skip("other tests' swarm services are still running after 3 minutes: not draining the only node under them")
	}

	t.Cleanup(func() {
		if err := activate(cli, self); err != nil {
			t.Errorf("NODE %s LEFT DRAINED: %v; run: docker node update --availability active %s", self, err, self)
		}
	})
	out, err := act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActDrain, Node: info.Info.Name, Reason: "e2e: drain"}})
	n, ierr := cli.NodeInspect(context.Background(), self, client.NodeInspectOptions{})
	var again engine.Outcome
	var againErr error
	if err == nil {
		again, againErr = act(t, a, engine.Action{Decision: engine.Decision{Action: engine.ActDrain, Node: self, Reason: "e2e: again"}})
	}
	if aerr := activate(cli, self); aerr != nil {
		t.Fatalf("NODE %s LEFT DRAINED: %v", self, aerr)
	}
	if err != nil || ierr != nil {
		t.Fatalf("drain: %+v, %v; inspect: %v", out, err, ierr)
	}
	if n.Node.Spec.Availability != swarm.NodeAvailabilityDrain {
		t.Errorf("availability after drain = %q, want drain", n.Node.Spec.Availability)
	}
	if !strings.Contains(out.Detail, "active → drain") || !strings.Contains(out.Detail, "docker node update --availability active "+self) {
		t.Errorf("detail = %q, want what changed and how to undo it", out.Detail)
	}
	if againErr != nil || !strings.Contains(again.Detail, "drained already") {
		t.Errorf("second drain: %+v, %v; want a no-op", again, againErr)
	}
	back, err := cli.NodeInspect(context.Background(), self, client.NodeInspectOptions{})
	if err != nil || back.Node.Spec.Availability != swarm.NodeAvailabilityActive {
		t.Errorf("availability after reactivation = %q, %v", back.Node.Spec.Availability, err)
	}
}
