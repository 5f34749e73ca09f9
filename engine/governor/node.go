package governor

import (
	"fmt"
	"strings"

	"github.com/ares-sre/ares/engine"
)

// checkNode is the blast radius of a node-level action (drain): the node must be in this
// tick's facts and not drained already; at most MaxUnavailable nodes are drained per tick;
// and a drain that would leave no ready, active node for the services' tasks is refused,
// which on a single-node swarm refuses every drain. targets holds the targets admitted so
// far this tick. g.mu held.
func (g *Governor) checkNode(d engine.Decision, f *engine.Facts, targets map[string]bool) string {
	if f == nil || len(f.Nodes) == 0 {
		return fmt.Sprintf("drain: node %s is not in the facts (no nodes: drain needs runtime: swarm)", d.Node)
	}
	id, n, ok := f.Node(d.Node)
	if !ok {
		return fmt.Sprintf("drain: node %s is not in the facts, or its hostname names several nodes (use the node id)", d.Node)
	}
	if n.Availability == "drain" {
		return fmt.Sprintf("drain: node %s (%s) is drained already", id, n.Hostname)
	}
	draining := map[string]bool{}
	for t := range targets {
		if name, ok := strings.CutPrefix(t, "node/"); ok {
			if nid, _, ok := f.Node(name); ok {
				draining[nid] = true
			}
		}
	}
	if len(draining) >= g.opt.MaxUnavailable {
		return fmt.Sprintf("blast radius: already draining %d node(s) this tick (max_unavailable %d)", len(draining), g.opt.MaxUnavailable)
	}
	left := 0
	for nid, o := range f.Nodes {
		if nid != id && !draining[nid] && o.Schedulable() {
			left++
		}
	}
	if left == 0 {
		return fmt.Sprintf("blast radius: draining node %s (%s) would leave no ready, active node for the services' tasks", id, n.Hostname)
	}
	return ""
}
