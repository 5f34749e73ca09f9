package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// drainEveryNodePolicy wants every active node drained: on a single-node swarm that is the
// only node, so only the governor stands between the policy and an engine with nowhere to
// run anything.
const drainEveryNodePolicy = `package ares

import rego.v1

decisions contains d if {
	some id, n in input.nodes
	n.availability == "active"
	d := {"action": "drain", "node": id, "reason": sprintf("e2e: drain %s", [n.hostname])}
}
`

// `ares run` with runtime: swarm on a single-node swarm: the facts carry the node; a policy
// that drains it, and a person who asks for the same drain through the API, are both refused
// by the governor (the last ready, active node), journaled with the reason, before any
// approval is asked for; `ares actions` lists the refusals by node; and the node stays active.
// The actuator's drain itself is tested in actuators/swarm (TestDrainSetsAvailability).
func TestSwarmDrainOfTheLastNodeIsRefused(t *testing.T) {
	cli := dockertest.Swarm(t)
	info, err := cli.Info(t.Context(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	self := info.Info.Swarm.NodeID
	if nodes, err := cli.NodeList(t.Context(), client.NodeListOptions{}); err != nil || len(nodes.Items) != 1 {
		t.Skipf("this test needs a single-node swarm (nodes: %d, %v)", len(nodes.Items), err)
	}
	t.Cleanup(func() { // should ARES ever drain the node, other tests must not find it drained
		n, err := cli.NodeInspect(context.Background(), self, client.NodeInspectOptions{})
		if err != nil || n.Node.Spec.Availability == swarm.NodeAvailabilityActive {
			return
		}
		spec := n.Node.Spec
		spec.Availability = swarm.NodeAvailabilityActive
		if _, err := cli.NodeUpdate(context.Background(), self, client.NodeUpdateOptions{Version: n.Node.Meta.Version, Spec: spec}); err != nil {
			t.Errorf("NODE %s LEFT DRAINED: %v; run: docker node update --availability active %s", self, err, self)
		}
	})
	label, _ := scope(t)
	dir := t.TempDir()
	writePolicy(t, dir, "drain.rego", drainEveryNodePolicy)
	writePolicy(t, dir, "data.json", `{"ares": {"approval": {"defaults": {"drain": "required"}}}}`)
	addr := freeAddr(t)
	const token = "e2e-drain-token"
	journalPath := filepath.Join(t.TempDir(), "journal.db")
	t.Setenv("ARES_RUNTIME", "swarm")
	t.Setenv("ARES_DASHBOARD_LISTEN", addr)
	t.Setenv("ARES_API_TOKEN", token)
	t.Setenv("ARES_JOURNAL_PATH", journalPath)
	p := startAres(t, dir, label)

	dockertest.Eventually(t, 30*time.Second, "the node in the facts", func() bool {
		code, body, err := dockertest.Get(addr, "/api/v1/facts")
		var f struct {
			Nodes map[string]engine.Node `json:"nodes"`
			Facts *struct {
				Nodes map[string]engine.Node `json:"nodes"`
			} `json:"facts"`
		}
		if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &f) != nil {
			return false
		}
		if f.Nodes == nil && f.Facts != nil {
			f.Nodes = f.Facts.Nodes
		}
		n, ok := f.Nodes[self]
		return ok && n.Status == "ready" && n.Availability == "active" && n.Manager && n.Leader && n.Hostname == info.Info.Name
	})

	const refused = "would leave no ready, active node"
	dockertest.Eventually(t, 30*time.Second, "the policy's drain of the only node refused", func() bool {
		return p.hasAction(t, func(a engine.Action) bool {
			return a.Action == engine.ActDrain && a.Node == self && a.Verdict == engine.VerdictSuppress && strings.Contains(a.Why, refused)
		})
	})
	if p.hasAction(t, func(a engine.Action) bool { return a.Action == engine.ActDrain && a.Verdict != engine.VerdictSuppress }) {
		t.Error("a drain of the only node was admitted")
	}

	// A person asks for the same drain by hostname: queued, then refused the same way.
	body := `{"action": "drain", "node": "` + info.Info.Name + `", "reason": "e2e: by hand"}`
	if code := post(t, addr, token, "/api/v1/actions", body); code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("manual drain: HTTP %d", code)
	}
	dockertest.Eventually(t, 30*time.Second, "the manual drain refused", func() bool {
		return p.hasAction(t, func(a engine.Action) bool {
			return a.Action == engine.ActDrain && a.Node == info.Info.Name && strings.HasPrefix(a.Reason, "manual by ") &&
				a.Verdict == engine.VerdictSuppress && strings.Contains(a.Why, refused)
		})
	})
	for _, ap := range approvals(t, addr) {
		if ap.Decision.Action == engine.ActDrain {
			t.Errorf("an approval was asked for a drain the governor refuses: %+v", ap)
		}
	}
	if n, err := cli.NodeInspect(t.Context(), self, client.NodeInspectOptions{}); err != nil || n.Node.Spec.Availability != "active" {
		t.Errorf("node %s availability %q, %v; want active", self, n.Node.Spec.Availability, err)
	}

	// The journal keeps the refusals by node: `ares actions` lists them.
	dockertest.Eventually(t, 30*time.Second, "ares actions lists the refused drain", func() bool {
		cmd := exec.Command(binary(t), "actions", "--config", filepath.Join(dockertest.ModuleRoot(t), "ares.yaml"), "--since", "1h")
		cmd.Env = append(os.Environ(), "ARES_JOURNAL_PATH="+journalPath)
		out, err := cmd.CombinedOutput()
		return err == nil && strings.Contains(string(out), "node/"+self) && strings.Contains(string(out), refused)
	})
}
