package ares_test

import data.ares

exited_service(history) := with_sections([with_replica("api-1", {"state": "exited", "exit_code": 1})], {"history": history})

history(seconds) := {"actions_10m": 1, "seconds_since_last_action": seconds}

test_cooldown_suppresses_every_decision if {
	svc := with_sections(
		[with_replica("api-1", {"state": "exited", "exit_code": 1}), with_replica("api-2", {"oom_killed": true})],
		object.union(object.union(summary({}), high_risk), {"history": history(59.9)}),
	)
	count(decide(svc)) == 0
}

test_cooldown_over if {
	decide(exited_service(history(60))) == {restart("api-1", "exited with code 1")}
	decide(exited_service(history(86400))) == {restart("api-1", "exited with code 1")}
}

test_absent_history_means_no_cooldown if {
	decide(exited_service(null)) == {restart("api-1", "exited with code 1")}
	decide(exited_service({"actions_10m": 3})) == {restart("api-1", "exited with code 1")}
}

test_cooldown_override if {
	svc := exited_service(history(90))
	count(decide(svc)) == 0 with data.ares.config.services.api.cooldown_s as 120
	count(decide(svc)) == 1 with data.ares.config.services.api.cooldown_s as 30
}

test_cooldown_is_per_service if {
	got := ares.decisions with input as facts({
		"api": exited_service(history(10)),
		"cart": service([with_replica("cart-1", {"state": "exited", "exit_code": 1})]),
	})
	got == {{"action": "restart", "service": "cart", "replica": "cart-1", "reason": "exited with code 1"}}
}

test_cfg_default_and_override if {
	ares.cfg("api", "max_replicas") == 4
	ares.cfg("cart", "max_replicas") == 8 with data.ares.config.services.cart.max_replicas as 8
	ares.cfg("api", "max_replicas") == 4 with data.ares.config.services.cart.max_replicas as 8
	not ares.cfg("api", "no_such_key")
}

test_cfg_without_services_section if {
	ares.cfg("api", "cooldown_s") == 60 with data.ares.config as {"defaults": {"cooldown_s": 60}}
}

test_sensor_ok if {
	ares.sensor_ok("docker") with input as {"sensors": all_ok}
	not ares.sensor_ok("docker") with input as {"sensors": stale("docker")}
	not ares.sensor_ok("docker") with input as {"sensors": missing("docker")}
	not ares.sensor_ok("docker") with input as {"sensors": {"docker": {"ok": "true"}}}
	not ares.sensor_ok("docker") with input as {}
}

test_no_sensors_no_decisions if {
	svc := with_sections(
		[with_replica("api-1", {"state": "exited", "exit_code": 1})],
		object.union(object.union(summary({}), high_risk), probe_failing(9)),
	)
	count(decide_with(svc, {})) == 0
}

test_cooling_helper if {
	ares.cooling("api", exited_service(history(59.9)))
	not ares.cooling("api", exited_service(history(60)))
	not ares.cooling("api", exited_service(null))
	ares.cooling("api", exited_service(history(90))) with data.ares.config.services.api.cooldown_s as 120
}

test_conf_overrides_key_by_key if {
	c := ares.conf("cart") with data.ares.config.services.cart as {"max_replicas": 8, "restart_states": ["dead"]}
	c.max_replicas == 8
	c.restart_states == ["dead"]
	c.cooldown_s == 60
	ares.conf("api") == data.ares.config.defaults
	ares.conf("api") == data.ares.config.defaults with data.ares.config.services.api as "not an object"
}
