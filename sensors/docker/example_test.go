package docker_test

import (
	"log/slog"
	"os"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/sensors/docker"
)

// The sensor is both an engine.Sensor and an engine.Waker: the engine runs its Watch, which
// wakes a tick on die, oom and health_status events.
func ExampleNew() {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		panic(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sensor := docker.New(cli, docker.Options{Stats: docker.StatsAuto}, log)
	_ = engine.Options{Sensors: []engine.Sensor{sensor}}
}
