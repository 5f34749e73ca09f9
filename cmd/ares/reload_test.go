package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/engine/policy"
)

func TestChangedKeys(t *testing.T) {
	a := config.Default()
	b := config.Default()
	if got := changedKeys(a, b); len(got) != 0 {
		t.Errorf("equal configs: %v", got)
	}
	b.Engine.Interval *= 2
	b.Docker.Labels = []string{"team=web"}
	b.Sensors.Probe.Targets = map[string]string{"api": "http://api/health"}
	want := []string{"docker.labels", "engine.interval", "sensors.probe"}
	if got := changedKeys(a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("changedKeys = %v, want %v", got, want)
	}
}

// A SIGHUP reload re-reads the config file: log.level applies at once, other changes are
// named as waiting for a restart; and it reloads the policies.
func TestHangupReloadsLogLevelAndPolicies(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, pdir, "decisions.rego", doctorPolicy)
	cfgPath := writeFile(t, dir, "ares.yaml", "policy:\n  dir: "+pdir+"\nlog:\n  level: info\n")
	cf := configFlags{path: cfgPath}
	cfg, _, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log, level := newLevelLogger(cfg.Log, &logs)
	pol, err := policy.NewWatcher(pdir, policy.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd, _ := newSDNotifier(envOf(nil))
	h := &hangupReloader{pol: pol, cf: cf, cfg: cfg, level: level, sd: sd, log: log}

	log.Debug("before")
	writeFile(t, dir, "ares.yaml", "policy:\n  dir: "+pdir+"\nlog:\n  level: debug\nengine:\n  interval: 2s\n")
	rev := pol.Current().Revision()
	writeFile(t, pdir, "more.rego", "package ares\n\nnote := \"x\"\n")
	h.reload(context.Background())
	log.Debug("after")

	out := logs.String()
	if strings.Contains(out, "msg=before") || !strings.Contains(out, "msg=after") {
		t.Errorf("log level not applied live:\n%s", out)
	}
	for _, want := range []string{"SIGHUP: log level changed", "from=info to=debug",
		"config changes take effect at the next restart", "keys=engine.interval", "SIGHUP: policies reloaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if pol.Current().Revision() == rev {
		t.Error("the policies were not reloaded")
	}

	// A config that no longer loads changes nothing and says so.
	writeFile(t, dir, "ares.yaml", "log:\n  level: loud\n")
	logs.Reset()
	h.reload(context.Background())
	if out := logs.String(); !strings.Contains(out, "SIGHUP: config not re-read") || !strings.Contains(out, "log.level") {
		t.Errorf("bad config on SIGHUP:\n%s", out)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("level %v after a bad config, want debug kept", level.Level())
	}
}
