//go:build !unix

package dockertest

import "testing"

// Crash kills the container's main process from the host; only on Unix hosts.
func Crash(t testing.TB, id string) {
	t.Helper()
	Unavailable(t, "crashing a container by pid (Unix hosts only)", nil)
}
