package ares

# cfg is the value of threshold key for service name: data.ares.config.services[name][key] when
# set, else data.ares.config.defaults[key]. Undefined when neither is set, so rules using it
# do not fire.
cfg(name, key) := object.get(data.ares.config, ["services", name, key], data.ares.config.defaults[key])

# cooling: ARES acted on the service less than cooldown_s seconds ago (history from the
# governor). An absent history means no cooldown.
cooling(name, svc) if svc.history.seconds_since_last_action < cfg(name, "cooldown_s")

# sensor_ok: the named sensor reports fresh data. A missing entry counts as stale.
# Sections: docker (replicas, summary, desired_replicas), metrics, probe, anomaly.
sensor_ok(sensor) if input.sensors[sensor].ok == true
