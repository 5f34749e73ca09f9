package config

import (
	"strings"
	"testing"
	"time"
)

func TestRuntimeAndHA(t *testing.T) {
	d := Default()
	if d.Runtime != "docker" || d.HA.Enabled || d.HA.LockName != "ares" || d.HA.CheckInterval != 2*time.Second || d.HA.Lease != 10*time.Second {
		t.Errorf("defaults: runtime %q, ha %+v", d.Runtime, d.HA)
	}
	cfg, _, err := Load(Options{Path: write(t, "runtime: swarm\nha:\n  enabled: true\n  instance: a\njournal:\n  backend: postgres\n"),
		Env: []string{"ARES_JOURNAL_DSN=postgres://a:b@h/db"}})
	if err != nil || cfg.Runtime != "swarm" || cfg.LockDSN() != "postgres://a:b@h/db" || cfg.HA.Instance != "a" {
		t.Fatalf("swarm + ha on the journal's dsn: %+v, %v", cfg, err)
	}
	cfg, _, err = Load(Options{Path: write(t, "ha:\n  enabled: true\n  dsn: postgres://x@h/lock\n"), Env: []string{}})
	if err != nil || cfg.LockDSN() != "postgres://x@h/lock" {
		t.Fatalf("ha.dsn beside a sqlite journal: %v", err)
	}
	for _, c := range []struct{ yaml, want string }{
		{"runtime: nomad\n", `runtime: must be one of docker, swarm, kubernetes`},
		{"ha:\n  enabled: true\n", "ha.dsn: must be set when ha.enabled"},
		{"ha:\n  enabled: true\n  dsn: postgres://x@h/db\n  lease: 3s\n", "ha.lease: must be at least twice ha.check_interval (2s)"},
		{"ha:\n  enabled: true\n  dsn: postgres://x@h/db\n  lock_name: \"\"\n", "ha.lock_name: must not be empty"},
		{"ha:\n  enabled: true\n  dsn: postgres://x@h/db\n  check_interval: 0s\n", "ha.check_interval: must be > 0"},
	} {
		_, _, err := Load(Options{Path: write(t, c.yaml), Env: []string{}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.yaml, err, c.want)
		}
	}
}
