package engine

// Node returns the id and the state of the node that name names: a node id, or the hostname
// of exactly one node. ok is false when no node, or more than one, matches.
func (f *Facts) Node(name string) (id string, n Node, ok bool) {
	if f == nil || name == "" {
		return "", Node{}, false
	}
	if n, ok := f.Nodes[name]; ok {
		return name, n, true
	}
	for nid, x := range f.Nodes {
		if x.Hostname != name {
			continue
		}
		if ok {
			return "", Node{}, false // ambiguous: a decision must use the id
		}
		id, n, ok = nid, x, true
	}
	return id, n, ok
}

// Schedulable reports whether the swarm may place tasks on the node: ready and active.
func (n Node) Schedulable() bool { return n.Status == "ready" && n.Availability == "active" }
