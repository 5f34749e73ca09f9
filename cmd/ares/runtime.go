package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	swarmact "github.com/ares-sre/ares/actuators/swarm"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/config"
	swarmsensor "github.com/ares-sre/ares/sensors/swarm"
)

// runtimeSwarm is the value of `runtime` that heals Docker Swarm services (docs/scaling.md).
const runtimeSwarm = "swarm"

// swarmSensor checks that docker.host is a swarm manager and returns the swarm sensor.
func swarmSensor(ctx context.Context, cli *client.Client, cfg config.Config, log *slog.Logger) (engine.Sensor, error) {
	ictx, cancel := context.WithTimeout(ctx, cfg.Docker.APITimeout)
	defer cancel()
	info, err := cli.Info(ictx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("runtime swarm: docker info: %w", err)
	}
	if sw := info.Info.Swarm; sw.LocalNodeState != swarm.LocalNodeStateActive || !sw.ControlAvailable {
		return nil, fmt.Errorf("runtime swarm: the engine at %s is not a swarm manager (swarm state %q); point docker.host at a manager, or set runtime: docker",
			cli.DaemonHost(), sw.LocalNodeState)
	}
	s := swarmsensor.New(cli, swarmsensor.Options{Labels: cfg.Docker.Labels, Timeout: cfg.Docker.APITimeout}, log.With("sensor", "swarm"))
	if !cfg.Docker.Events {
		return noWatch{s}, nil
	}
	return s, nil
}

func swarmActuator(cli *client.Client, cfg config.Config, log *slog.Logger) engine.Actuator {
	return swarmact.New(cli, swarmact.Options{MaxReplicas: cfg.Docker.MaxReplicas, Labels: cfg.Docker.Labels}, log.With("actuator", "swarm"))
}
