package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ares-sre/ares/internal/dockertest"
)

const doctorPolicy = `package ares

decisions contains d if {
	some name, svc in input.services
	svc.summary.down > 0
	d := {"action": "restart", "service": name, "reason": "down"}
}
`

const doctorPolicyTest = `package ares_test

import data.ares

test_nothing_down_nothing_decided if {
	count(ares.decisions) == 0 with input as {"services": {}}
}
`

// doctorEnv is a config where every check passes: a labelled container in the test's own
// label scope, a compiling policy directory with passing tests, a writable SQLite journal
// directory, free metrics and dashboard addresses.
type doctorEnv struct {
	dir, policies string
	cfg           map[string]any // "section.key" or "section.sub.key" → value
}

func newDoctorEnv(t *testing.T) *doctorEnv {
	t.Helper()
	dockertest.Client(t) // skip loudly (fail under CI=true) without an engine
	scope := fmt.Sprintf("doctor-%d", time.Now().UnixNano()%1e9)
	dockertest.Run(t, dockertest.Spec{Name: "ares-test-" + scope,
		Labels: map[string]string{"ares.enable": "true", "ares.test.scope": scope, "ares.service": "web"}})
	e := &doctorEnv{dir: t.TempDir()}
	e.policies = filepath.Join(e.dir, "policies")
	if err := os.Mkdir(e.policies, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.policies, "decisions.rego", doctorPolicy)
	writeFile(t, e.policies, "decisions_test.rego", doctorPolicyTest)
	e.cfg = map[string]any{
		"docker.labels":      []string{"ares.test.scope=" + scope},
		"policy.dir":         e.policies,
		"journal.backend":    "sqlite",
		"journal.path":       filepath.Join(e.dir, "journal", "ares.db"),
		"metrics.listen":     freeLoopback(t),
		"dashboard.listen":   freeLoopback(t),
		"notify.webhook_url": "https://hooks.example.com/T000/secret-token",
	}
	if err := os.Mkdir(filepath.Join(e.dir, "journal"), 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// run writes the config (the base with overrides, as JSON, which is YAML too) and runs
// ares doctor on it.
func (e *doctorEnv) run(t *testing.T, output string, override map[string]any) (string, error) {
	t.Helper()
	doc := map[string]any{}
	for _, kv := range []map[string]any{e.cfg, override} {
		for k, v := range kv {
			parts := strings.Split(k, ".")
			m := doc
			for _, p := range parts[:len(parts)-1] {
				if _, ok := m[p]; !ok {
					m[p] = map[string]any{}
				}
				m = m[p].(map[string]any)
			}
			m[parts[len(parts)-1]] = v
		}
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, "ares.yaml")
	writeFile(t, e.dir, "ares.yaml", string(raw))
	var out bytes.Buffer
	err = runDoctor(context.Background(), doctorOpts{cf: configFlags{path: path}, output: output}, &out)
	return out.String(), err
}

// line returns the report line of one check.
func line(t *testing.T, report, name string) string {
	t.Helper()
	for _, l := range strings.Split(report, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(strings.Join(f[1:], " "), name+" ") {
			return l
		}
	}
	t.Fatalf("no %q line in:\n%s", name, report)
	return ""
}

func TestDoctorAllOK(t *testing.T) {
	e := newDoctorEnv(t)
	out, err := e.run(t, "text", nil)
	if err != nil {
		t.Fatalf("doctor failed: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "ok ") {
			t.Errorf("not ok: %s", l)
		}
	}
	for name, want := range map[string]string{
		"config":                "ares.yaml parses",
		"docker":                "API 1.",
		"containers":            "1 labelled container (1 running), services: web",
		"policy permissions":    e.policies + ": only its owner",
		"policies":              "2 files",
		"policy tests":          "1 test file pass",
		"journal":               "will be created",
		"metrics":               "can be bound",
		"dashboard":             "can be bound",
		"prometheus":            "not configured",
		"alertmanager receiver": "/api/v2/alerts",
		"notify webhook":        "https://hooks.example.com/… (path hidden)",
	} {
		if l := line(t, out, name); !strings.Contains(l, want) {
			t.Errorf("%s: %q lacks %q", name, l, want)
		}
	}
	if strings.Contains(out, "secret-token") {
		t.Errorf("the webhook's secret path is printed:\n%s", out)
	}
}

func TestDoctorFailures(t *testing.T) {
	e := newDoctorEnv(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	closed := freeLoopback(t) // nothing listens there
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T)
		override map[string]any
		check    string
		want     []string // in the check's line
	}{
		{name: "broken policy file", check: "policies",
			setup: func(t *testing.T) {
				writeFile(t, e.policies, "broken.rego", "package ares\n\ndecisions contains x if {\n  x := \n}\n")
				t.Cleanup(func() { os.Remove(filepath.Join(e.policies, "broken.rego")) })
			},
			want: []string{"FAIL", "broken.rego:", "(fix: correct the file and line named"}},
		{name: "failing policy test", check: "policy tests",
			setup: func(t *testing.T) {
				writeFile(t, e.policies, "wrong_test.rego", "package ares_test\n\nimport data.ares\n\ntest_wrong if {\n\tcount(ares.decisions) == 1 with input as {\"services\": {}}\n}\n")
				t.Cleanup(func() { os.Remove(filepath.Join(e.policies, "wrong_test.rego")) })
			},
			override: map[string]any{"policy.require_tests": true},
			want:     []string{"FAIL", "test_wrong", "(fix: make the failing tests pass"}},
		{name: "group-writable policy dir", check: "policy permissions",
			setup: func(t *testing.T) {
				if err := os.Chmod(e.policies, 0o775); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(e.policies, 0o755) })
			},
			want: []string{"FAIL", e.policies, "group-writable", "(fix: chmod go-w " + e.policies + ")"}},
		{name: "docker host without a daemon", check: "docker",
			override: map[string]any{"docker.host": "unix://" + filepath.Join(e.dir, "no-docker.sock")},
			want:     []string{"FAIL", "no-docker.sock", "(fix: start Docker (sudo systemctl start docker), or point docker.host"}},
		{name: "journal on a closed port", check: "journal",
			override: map[string]any{"journal.backend": "postgres", "journal.dsn": "postgres://ares:hunter2@" + closed + "/ares"},
			want:     []string{"FAIL", "postgres 127.0.0.1:", "(fix: start PostgreSQL there"}},
		{name: "journal directory missing", check: "journal",
			override: map[string]any{"journal.path": filepath.Join(e.dir, "nowhere", "ares.db")},
			want:     []string{"FAIL", "does not exist", "(fix: mkdir -p " + filepath.Join(e.dir, "nowhere")}},
		{name: "metrics address taken", check: "metrics",
			override: map[string]any{"metrics.listen": taken.Addr().String()},
			want:     []string{"FAIL", taken.Addr().String(), "(fix: another process holds it"}},
		{name: "config key misspelled", check: "config",
			override: map[string]any{"engine.intervall": "5s"},
			want:     []string{"FAIL", "engine.intervall", "unknown key", "(fix: correct engine.intervall in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			out, err := e.run(t, "text", tc.override)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 1 {
				t.Fatalf("exit: %v, want status 1\n%s", err, out)
			}
			l := line(t, out, tc.check)
			for _, w := range tc.want {
				if !strings.Contains(l, w) {
					t.Errorf("%q lacks %q", l, w)
				}
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("a password is printed:\n%s", out)
			}
		})
	}
}

// A configured Prometheus that does not answer fails with a fix; one that does passes.
func TestDoctorPrometheus(t *testing.T) {
	e := newDoctorEnv(t)
	closed := freeLoopback(t)
	out, err := e.run(t, "text", map[string]any{"sensors.metrics.prometheus_url": "http://user:pw@" + closed})
	if err == nil {
		t.Fatalf("doctor passed with Prometheus down:\n%s", out)
	}
	l := line(t, out, "prometheus")
	for _, w := range []string{"FAIL", closed, "does not answer", "(fix: start Prometheus there"} {
		if !strings.Contains(l, w) {
			t.Errorf("%q lacks %q", l, w)
		}
	}
	if strings.Contains(out, ":pw@") {
		t.Errorf("the Prometheus password is printed: %s", l)
	}
}

func TestDoctorJSON(t *testing.T) {
	e := newDoctorEnv(t)
	out, err := e.run(t, "json", map[string]any{"docker.host": "unix://" + filepath.Join(e.dir, "no-docker.sock")})
	if err == nil {
		t.Fatal("no error with Docker unreachable")
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.OK || !strings.HasSuffix(rep.Config, "ares.yaml") || len(rep.Checks) < 12 {
		t.Fatalf("report: %+v", rep)
	}
	byName := map[string]doctorCheck{}
	for _, c := range rep.Checks {
		if c.Name == "" || c.Detail == "" || (c.Status != checkOK && c.Status != checkWarn && c.Status != checkFail) {
			t.Errorf("malformed check %+v", c)
		}
		byName[c.Name] = c
	}
	if c := byName["docker"]; c.Status != checkFail || c.Fix == "" {
		t.Errorf("docker: %+v", c)
	}
	if c := byName["containers"]; c.Status != checkWarn {
		t.Errorf("containers without Docker: %+v", c)
	}
	if c := byName["policies"]; c.Status != checkOK {
		t.Errorf("policies: %+v", c)
	}
}

func TestDoctorNoLabelledContainersWarns(t *testing.T) {
	e := newDoctorEnv(t)
	out, err := e.run(t, "text", map[string]any{"docker.labels": []string{"ares.test.scope=nobody-has-this"}})
	if err != nil {
		t.Fatalf("a warning must not fail: %v\n%s", err, out)
	}
	l := line(t, out, "containers")
	for _, w := range []string{"warn", "no container labelled ares.enable=true, ares.test.scope=nobody-has-this", "(fix: label the services"} {
		if !strings.Contains(l, w) {
			t.Errorf("%q lacks %q", l, w)
		}
	}
}

// The journal on a real PostgreSQL: connected, and the password never shown.
func TestDoctorPostgresJournal(t *testing.T) {
	dsn := os.Getenv("ARES_TEST_PG_DSN")
	if dsn == "" {
		dsn = "postgres://shop:shop@127.0.0.1:5432/shop?sslmode=disable" // scripts/services.sh
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		dockertest.Unavailable(t, "PostgreSQL", err)
	}
	conn.Close(ctx)
	pc, _ := pgx.ParseConfig(dsn)
	e := newDoctorEnv(t)
	out, err := e.run(t, "text", map[string]any{"journal.backend": "postgres", "journal.dsn": dsn})
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	l := line(t, out, "journal")
	if want := fmt.Sprintf("ok    journal                postgres %s:%d/%s as %s: connected", pc.Host, pc.Port, pc.Database, pc.User); l != want {
		t.Errorf("journal line\n got %q\nwant %q", l, want)
	}
	if pc.Password != "" && strings.Contains(out, pc.Password+"@") {
		t.Errorf("the password is printed:\n%s", out)
	}
}

// A real Prometheus (Debian's), once ready, passes.
func TestDoctorPrometheusReady(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		dockertest.Unavailable(t, "prometheus (Debian package prometheus)", err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "prometheus.yml", "global:\n  scrape_interval: 1m\n")
	addr := freeLoopback(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	dockertest.Eventually(t, 30*time.Second, "prometheus ready", func() bool {
		code, _, err := dockertest.Get(addr, "/-/ready")
		return err == nil && code == 200
	})
	e := newDoctorEnv(t)
	out, err := e.run(t, "text", map[string]any{"sensors.metrics.prometheus_url": "http://" + addr})
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	if l := line(t, out, "prometheus"); !strings.HasPrefix(l, "ok ") || !strings.Contains(l, "http://"+addr+" is ready") {
		t.Errorf("prometheus line: %q", l)
	}
}
