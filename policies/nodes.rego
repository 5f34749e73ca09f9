package ares

# Node-level decisions (runtime: swarm): drain a failing node, so that the swarm moves its tasks
# to the other nodes. A drain decision names the node by id and no service:
#
#   {"action": "drain", "node": NODE_ID, "reason": TEXT}
#
# A node is failing when its status is down, disconnected or unknown, or when at least
# data.ares.config.nodes.drain_failed_tasks_10m tasks of the watched services failed on it in
# the last 10 minutes (input.nodes[id].tasks_failed_10m). Only an active node is drained, only
# while another node is ready and active to take its tasks, and only on fresh facts from the
# docker sensor. Without nodes (one Docker host) nothing is decided here. The governor checks
# again (never the last ready, active node; at most governor.max_unavailable drains a tick) and
# the default policy data requires a person's approval (data.ares.approval.defaults.drain).
#
# Putting a node back is an operator's job: docker node update --availability active NODE_ID.
decisions contains decision if {
	input.sensors.docker.ok == true
	some id, node in input.nodes
	node.availability == "active"
	why := node_failing(node)
	some other_id, other in input.nodes
	other_id != id
	other.status == "ready"
	other.availability == "active"
	decision := {"action": "drain", "node": id, "reason": sprintf("node %s (%s) %s", [node.hostname, id, why])}
}

# node_failing says why the node is failing; undefined when it is not.
node_failing(node) := sprintf("is %s", [node.status]) if {
	node.status in {"down", "disconnected", "unknown"}
} else := sprintf("had %d failed tasks in 10m (threshold %d)", [node.tasks_failed_10m, t]) if {
	t := data.ares.config.nodes.drain_failed_tasks_10m
	node.tasks_failed_10m >= t
}
