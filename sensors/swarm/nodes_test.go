package swarm

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/ares-sre/ares/engine"
)

func node(id, host string, state swarm.NodeState, avail swarm.NodeAvailability, role swarm.NodeRole, leader bool) swarm.Node {
	var n swarm.Node
	n.ID, n.Description.Hostname, n.Status.State, n.Spec.Availability, n.Spec.Role = id, host, state, avail, role
	if role == swarm.NodeRoleManager {
		n.ManagerStatus = &swarm.ManagerStatus{Leader: leader}
	}
	return n
}

// Each node carries its state and role, the watched tasks running on it, and those that
// failed or were rejected on it within the last 10 minutes (older failures do not count).
func TestFillNodes(t *testing.T) {
	f := engine.NewFacts(1, t0)
	at := func(tk swarm.Task, node string, ago time.Duration) swarm.Task {
		tk.NodeID, tk.Status.Timestamp = node, t0.Add(-ago)
		return tk
	}
	tasks := []swarm.Task{
		at(task("a", 1, time.Minute, swarm.TaskStateRunning, swarm.TaskStateRunning, 0), "m1", time.Minute),
		at(task("b", 2, time.Minute, swarm.TaskStateFailed, swarm.TaskStateShutdown, 137), "w1", 2*time.Minute),
		at(task("c", 2, time.Minute, swarm.TaskStateRejected, swarm.TaskStateShutdown, 0), "w1", 9*time.Minute),
		at(task("d", 2, time.Minute, swarm.TaskStateFailed, swarm.TaskStateShutdown, 1), "w1", 11*time.Minute), // too old
		at(task("e", 3, time.Minute, swarm.TaskStateRunning, swarm.TaskStateRunning, 0), "gone", time.Minute),  // unknown node
	}
	FillNodes(f, []swarm.Node{
		node("m1", "mgr", swarm.NodeStateReady, swarm.NodeAvailabilityActive, swarm.NodeRoleManager, true),
		node("w1", "wrk", swarm.NodeStateDown, swarm.NodeAvailabilityActive, swarm.NodeRoleWorker, false),
	}, tasks)
	want := map[string]engine.Node{
		"m1": {Hostname: "mgr", Status: "ready", Availability: "active", Manager: true, Leader: true, TasksRunning: 1},
		"w1": {Hostname: "wrk", Status: "down", Availability: "active", TasksFailed10m: 2},
	}
	if len(f.Nodes) != len(want) {
		t.Fatalf("nodes = %+v, want %+v", f.Nodes, want)
	}
	for id, w := range want {
		if got := f.Nodes[id]; got != w {
			t.Errorf("node %s = %+v, want %+v", id, got, w)
		}
	}

	empty := engine.NewFacts(1, t0)
	FillNodes(empty, nil, tasks)
	if empty.Nodes != nil {
		t.Errorf("no nodes: facts.nodes = %+v, want absent", empty.Nodes)
	}
}
