package ares

# conf is the configuration of service name: data.ares.config.defaults with every key set in
# data.ares.config.services[name] replacing the default (key by key, values are not merged).
# Decisions look it up once per service and then read thresholds as plain refs (c.cooldown_s);
# a key set nowhere is undefined, so rules using it do not fire.
conf(name) := object.union(object.remove(data.ares.config.defaults, object.keys(o)), o) if {
	o := data.ares.config.services[name]
	is_object(o)
} else := data.ares.config.defaults

# cfg is the value of threshold key for service name: data.ares.config.services[name][key] when
# set, else data.ares.config.defaults[key]. Undefined when neither is set.
cfg(name, key) := conf(name)[key]

# cooling: ARES acted on the service less than cooldown_s seconds ago (history from the
# governor). An absent history means no cooldown. For policies added beside the pack; the
# pack itself uses cooled with the service's conf.
cooling(name, svc) if cooled(svc, conf(name))

cooled(svc, c) if svc.history.seconds_since_last_action < c.cooldown_s

# sensor_ok: the named sensor reports fresh data. A missing entry counts as stale.
# Sections: docker (replicas, summary, desired_replicas), metrics, probe, anomaly. For policies
# added beside the pack; the pack's rules test input.sensors.<name>.ok == true inline.
sensor_ok(sensor) if input.sensors[sensor].ok == true
