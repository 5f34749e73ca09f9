package dockertest

import (
	"testing"
	"time"
)

func TestRunPublishesAHealthyTestServer(t *testing.T) {
	id := Run(t, Spec{Publish: true})
	addr := HostPort(t, id)
	Eventually(t, 10*time.Second, "test server answers /health", func() bool {
		code, _, err := Get(addr, "/health")
		return err == nil && code == 200
	})
	Eventually(t, 10*time.Second, "docker reports the container healthy", func() bool {
		_, h := State(t, id)
		return h == "healthy"
	})
}
