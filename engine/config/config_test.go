package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ares.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	p := write(t, "engine:\n  interval: 2s\n  dry_run: false\npolicy:\n  dir: mine\n")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "")
	_ = dry
	if err := fs.Parse([]string{"--dry-run"}); err != nil {
		t.Fatal(err)
	}
	cfg, src, err := Load(Options{Path: p, Env: []string{"ARES_ENGINE_INTERVAL=3s", "PATH=/bin"},
		Flags: map[string]*pflag.Flag{"engine.dry_run": fs.Lookup("dry-run")}})
	if err != nil {
		t.Fatal(err)
	}
	if src != p {
		t.Errorf("source = %q", src)
	}
	if cfg.Engine.Interval != 3*time.Second {
		t.Errorf("env should override file: interval = %s", cfg.Engine.Interval)
	}
	if !cfg.Engine.DryRun {
		t.Error("flag should override file: dry_run = false")
	}
	if cfg.Policy.Dir != "mine" {
		t.Errorf("policy.dir = %q", cfg.Policy.Dir)
	}
	if cfg.Docker.MaxReplicas != 4 {
		t.Errorf("default lost: max_replicas = %d", cfg.Docker.MaxReplicas)
	}
}

func TestUnsetFlagDoesNotOverride(t *testing.T) {
	p := write(t, "engine:\n  dry_run: true\n")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.Bool("dry-run", false, "")
	cfg, _, err := Load(Options{Path: p, Env: []string{}, Flags: map[string]*pflag.Flag{"engine.dry_run": fs.Lookup("dry-run")}})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Engine.DryRun {
		t.Error("an unset flag overrode the file")
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"unknown key with hint", "engine:\n  intervall: 5s\n", nil, []string{"ares.yaml: engine.intervall: unknown key", `did you mean "engine.interval"`}},
		{"unknown section", "sensorz:\n  x: 1\n", nil, []string{"sensorz.x: unknown key"}},
		{"negative duration", "engine:\n  interval: -5s\n", nil, []string{"engine.interval: must be > 0 (got -5s)"}},
		{"bad duration", "engine:\n  interval: soon\n", nil, []string{"ares.yaml", "interval", "soon"}},
		{"bad enum", "docker:\n  stats: sometimes\n", nil, []string{"docker.stats: must be one of auto, cgroup, stream", `"sometimes"`}},
		{"malformed yaml", "engine:\n  interval: [5s\n", nil, []string{"ares.yaml: malformed YAML", "line"}},
		{"bad max replicas", "docker:\n  max_replicas: 0\n", nil, []string{"docker.max_replicas: must be >= 1 (got 0)"}},
		{"bad webhook", "notify:\n  webhook_url: ftp://x\n", nil, []string{"notify.webhook_url: must be an http"}},
		{"bad listen", "metrics:\n  listen: nowhere\n", nil, []string{"metrics.listen"}},
		{"unknown env", "", []string{"ARES_ENGINE_INTERVALL=1s"}, []string{"environment: ARES_ENGINE_INTERVALL: unknown ARES_ variable"}},
		{"bad env value", "", []string{"ARES_DOCKER_MAX_REPLICAS=lots"}, []string{"max_replicas", "lots"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, tc.yaml)
			env := tc.env
			if env == nil {
				env = []string{}
			}
			_, _, err := Load(Options{Path: p, Env: env})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestMissingExplicitFileIsAnError(t *testing.T) {
	_, _, err := Load(Options{Path: filepath.Join(t.TempDir(), "nope.yaml"), Env: []string{}})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("want error naming the file, got %v", err)
	}
}

// The shipped ares.yaml must load, and must document every key.
func TestShippedConfigDocumentsEveryKey(t *testing.T) {
	p := filepath.Join("..", "..", "ares.yaml")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(Options{Path: p, Env: []string{}}); err != nil {
		t.Fatalf("shipped ares.yaml does not load: %v", err)
	}
	for _, k := range Keys() {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(string(raw), leaf+":") {
			t.Errorf("ares.yaml does not document %s", k)
		}
	}
}

func TestDockerLabels(t *testing.T) {
	cfg, _, err := Load(Options{Path: write(t, "docker:\n  labels: [a=b, c=d]\n"), Env: []string{}})
	if err != nil || len(cfg.Docker.Labels) != 2 || cfg.Docker.Labels[1] != "c=d" {
		t.Fatalf("file labels = %v, %v", cfg.Docker.Labels, err)
	}
	cfg, _, err = Load(Options{Path: write(t, ""), Env: []string{"ARES_DOCKER_LABELS=x=1,y=2"}})
	if err != nil || len(cfg.Docker.Labels) != 2 || cfg.Docker.Labels[0] != "x=1" {
		t.Fatalf("env labels = %v, %v", cfg.Docker.Labels, err)
	}
	_, _, err = Load(Options{Path: write(t, "docker:\n  labels: [novalue]\n"), Env: []string{}})
	if err == nil || !strings.Contains(err.Error(), "docker.labels[0]: must be key=value") {
		t.Fatalf("err = %v", err)
	}
}

func TestJournal(t *testing.T) {
	d := Default().Journal
	if d.Backend != "sqlite" || d.Path != "ares-journal.db" || d.Buffer != 10000 || !d.SyncIntents || d.SyncTimeout <= 0 {
		t.Errorf("journal defaults = %+v", d)
	}
	cfg, _, err := Load(Options{Path: write(t, "journal:\n  backend: postgres\n"), Env: []string{"ARES_JOURNAL_DSN=postgres://a:b@h/db"}})
	if err != nil || cfg.Journal.DSN != "postgres://a:b@h/db" {
		t.Fatalf("dsn from the environment: %+v, %v", cfg.Journal, err)
	}
	for yaml, want := range map[string]string{
		"journal:\n  backend: postgres\n": "journal.dsn: must be set",
		"journal:\n  backend: mysql\n":    `journal.backend: must be one of file, sqlite, postgres (got "mysql")`,
		"journal:\n  buffer: 0\n":         "journal.buffer: must be >= 1 (got 0)",
	} {
		if _, _, err := Load(Options{Path: write(t, yaml), Env: []string{}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", yaml, err, want)
		}
	}
}

func TestSensorsProbeTargets(t *testing.T) {
	cfg, _, err := Load(Options{Path: write(t, "sensors:\n  probe:\n    targets:\n      cart: http://127.0.0.1:8081/healthz\n"), Env: []string{}})
	if err != nil || cfg.Sensors.Probe.Targets["cart"] != "http://127.0.0.1:8081/healthz" {
		t.Fatalf("targets = %v, %v", cfg.Sensors.Probe.Targets, err)
	}
	_, _, err = Load(Options{Path: write(t, "sensors:\n  probe:\n    targets:\n      cart: ftp://x\n"), Env: []string{}})
	if err == nil || !strings.Contains(err.Error(), "sensors.probe.targets.cart: must be an http:// or https:// URL") {
		t.Fatalf("err = %v", err)
	}
	_, _, err = Load(Options{Path: write(t, "sensors:\n  probe:\n    timeoutt: 1s\n"), Env: []string{}})
	if err == nil || !strings.Contains(err.Error(), "sensors.probe.timeoutt: unknown key") {
		t.Fatalf("err = %v", err)
	}
}
