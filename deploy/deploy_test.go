// Package deploy_test checks the deployment and observability files under deploy/ and
// .github/workflows with the tools that consume them: promtool (Debian prometheus), amtool
// (Debian prometheus-alertmanager), docker-compose, actionlint (go tool) and shellcheck.
// A missing tool skips loudly, or fails when CI=true (scripts/services.sh installs them).
package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ares-sre/ares/internal/dockertest"
)

// tool returns the path of a command, or skips (fails under CI=true) when it is missing.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		dockertest.Unavailable(t, name+" (Debian package "+pkg+")", err)
	}
	return p
}

// run runs a command in dir and fails the test with its output when it fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPrometheusConfig(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	dir := filepath.Join(dockertest.ModuleRoot(t), "deploy", "prometheus")
	out := run(t, dir, promtool, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "2 rule files found") {
		t.Errorf("promtool check config did not load both rule files:\n%s", out)
	}
}

// The rules are valid and their unit tests (tests/rules_test.yml) pass: each alert fires on
// its fault and stays quiet on the look-alikes.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	dir := filepath.Join(dockertest.ModuleRoot(t), "deploy", "prometheus")
	run(t, dir, promtool, "check", "rules", "rules/shop.rules.yml", "rules/ares.rules.yml")
	out := run(t, dir, promtool, "test", "rules", "tests/rules_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// A rule test that expects the wrong thing fails: the unit tests can fail.
func TestAlertRuleTestsCanFail(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	dir := filepath.Join(dockertest.ModuleRoot(t), "deploy", "prometheus")
	b, err := os.ReadFile(filepath.Join(dir, "tests", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(b), "exp_labels: {service: cart, severity: critical}", "exp_labels: {service: user, severity: critical}", 1)
	if broken == string(b) {
		t.Fatal("rules_test.yml no longer has the expected cart alert")
	}
	broken = strings.ReplaceAll(broken, "../rules/", filepath.Join(dir, "rules")+"/")
	tmp := filepath.Join(t.TempDir(), "broken_test.yml")
	if err := os.WriteFile(tmp, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", tmp)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "alertname: ServiceDown, time: 2m") {
		t.Errorf("a wrong expectation passed: %v\n%s", err, out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string            `yaml:"alert"`
			Expr   string            `yaml:"expr"`
			For    string            `yaml:"for"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The shop's alerts are what the default policy pack maps to actions (policies/data.json), and
// each is grouped by service, the label ARES's receiver reads; ARES's own alerts are marked
// component=ares and have no service, so they are never routed back to it.
func TestAlertNamesMatchDefaultPolicy(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	var data struct {
		Ares struct {
			Config struct {
				Alerts []struct {
					Alertname string `json:"alertname"`
					Action    string `json:"action"`
				} `json:"alerts"`
			} `json:"config"`
		} `json:"ares"`
	}
	b, err := os.ReadFile(filepath.Join(root, "policies", "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatalf("policies/data.json: %v", err)
	}
	var mapped []string
	for _, a := range data.Ares.Config.Alerts {
		mapped = append(mapped, a.Alertname)
	}
	var shop ruleFile
	readYAML(t, filepath.Join(root, "deploy", "prometheus", "rules", "shop.rules.yml"), &shop)
	var names []string
	for _, g := range shop.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if !slices.Contains(mapped, r.Alert) {
				t.Errorf("shop alert %s is not mapped to an action in policies/data.json (ares.config.alerts)", r.Alert)
			}
			if !strings.Contains(r.Expr, "by (service") {
				t.Errorf("shop alert %s does not keep the service label: %s", r.Alert, r.Expr)
			}
			if r.Labels["component"] == "ares" {
				t.Errorf("shop alert %s is marked component=ares and would not reach ARES", r.Alert)
			}
		}
	}
	for _, m := range mapped {
		if !slices.Contains(names, m) {
			t.Errorf("policies/data.json maps alert %s, which no shipped rule raises", m)
		}
	}
	var self ruleFile
	readYAML(t, filepath.Join(root, "deploy", "prometheus", "rules", "ares.rules.yml"), &self)
	for _, g := range self.Groups {
		for _, r := range g.Rules {
			if r.Labels["component"] != "ares" {
				t.Errorf("ARES alert %s lacks component=ares", r.Alert)
			}
			if strings.Contains(r.Expr, "service") {
				t.Errorf("ARES alert %s carries a service label; ARES would act on it: %s", r.Alert, r.Expr)
			}
		}
	}
}

// The Alertmanager configuration is valid, sends the shop's alerts to ARES's receiver (the path
// it serves, on the port ARES listens on in docker-compose.yml) and ARES's own to people.
func TestAlertmanagerConfig(t *testing.T) {
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	root := dockertest.ModuleRoot(t)
	cfg := filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml")
	run(t, root, amtool, "check-config", cfg)
	for _, c := range []struct {
		labels []string
		want   string
	}{
		{[]string{"alertname=HighErrorRate", "service=cart", "severity=critical"}, "ares"},
		{[]string{"alertname=ServiceDown", "service=gateway"}, "ares"},
		{[]string{"alertname=AresTicksStalled", "component=ares"}, "oncall"},
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + cfg, "--verify.receivers=" + c.want}, c.labels...)
		cmd := exec.Command(amtool, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%v routed elsewhere than %s: %v\n%s", c.labels, c.want, err, out)
		}
	}
	var am struct {
		Receivers []struct {
			Name     string `yaml:"name"`
			Webhooks []struct {
				URL          string `yaml:"url"`
				SendResolved bool   `yaml:"send_resolved"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	readYAML(t, cfg, &am)
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	readYAML(t, filepath.Join(root, "docker-compose.yml"), &compose)
	listen := compose.Services["ares"].Environment["ARES_METRICS_LISTEN"]
	_, port, _ := strings.Cut(listen, ":")
	want := "http://ares:" + port + "/api/v1/alerts"
	for _, r := range am.Receivers {
		if r.Name != "ares" {
			continue
		}
		if len(r.Webhooks) != 1 || r.Webhooks[0].URL != want || !r.Webhooks[0].SendResolved {
			t.Errorf("receiver ares: %+v, want one webhook to %s with send_resolved", r.Webhooks, want)
		}
		return
	}
	t.Error("no receiver named ares")
}

// The dashboards are valid JSON with unique uids, and every panel queries the provisioned
// Prometheus datasource. (The integration test runs every query against a live Prometheus.)
func TestGrafanaProvisioning(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(root, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("datasources: %+v", ds.Datasources)
	}
	uid := ds.Datasources[0].UID
	dashboards := Dashboards(t, root)
	if len(dashboards) < 2 {
		t.Fatalf("%d dashboards, want the shop's and ARES's", len(dashboards))
	}
	seen := map[string]bool{}
	for _, d := range dashboards {
		if d.UID == "" || seen[d.UID] {
			t.Errorf("%s: uid %q empty or not unique", d.File, d.UID)
		}
		seen[d.UID] = true
		for _, p := range d.Panels {
			if p.Datasource.UID != uid {
				t.Errorf("%s: panel %q uses datasource %q, want %q", d.File, p.Title, p.Datasource.UID, uid)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.File, p.Title)
			}
			for _, q := range p.Targets {
				if strings.TrimSpace(q.Expr) == "" {
					t.Errorf("%s: panel %q has an empty query", d.File, p.Title)
				}
			}
		}
	}
}

// Dashboard is the part of a Grafana dashboard the tests read.
type Dashboard struct {
	File   string
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// Dashboards reads deploy/grafana/dashboards/*.json.
func Dashboards(t testing.TB, root string) []Dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d Dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.File = filepath.Base(f)
		out = append(out, d)
	}
	return out
}

// actionlint (pinned in go.mod as a tool) accepts the workflows.
func TestWorkflows(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if len(files) < 2 {
		t.Fatalf("%d workflows in .github/workflows, want ci.yml and policy-ci.yml", len(files))
	}
	run(t, root, "go", append([]string{"tool", "actionlint", "-no-color"}, files...)...)
}

// The deployment scripts pass shellcheck.
func TestShellScripts(t *testing.T) {
	shellcheck := tool(t, "shellcheck", "shellcheck")
	root := dockertest.ModuleRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "*", "*.sh"))
	if len(files) == 0 {
		t.Fatal("no scripts under deploy/")
	}
	run(t, root, shellcheck, files...)
}

type composeConfig struct {
	Services map[string]struct {
		Ports    []any          `yaml:"ports"`
		Networks map[string]any `yaml:"networks"`
		Profiles []string       `yaml:"profiles"`
	} `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

var loopbackPort = regexp.MustCompile(`^127\.0\.0\.1:\d*:\d+(/tcp)?$`) // a fixed or random port on loopback

// Every combination of compose files and profiles is valid for docker-compose, and the
// resolved stacks keep the isolation docker-compose.yml promises: the gateway is the only
// port that may leave loopback, the shop never shares a network with ARES's Docker socket,
// and the backend and control networks are internal (except backend in the local variant,
// whose services must reach the host's PostgreSQL and Redis through host-gateway).
func TestComposeFiles(t *testing.T) {
	bin := tool(t, "docker-compose", "docker-compose")
	root := dockertest.ModuleRoot(t)
	for _, c := range []struct {
		name     string
		files    []string
		profiles []string
		want     []string // services
	}{
		{"default", []string{"docker-compose.yml"}, nil, []string{"gateway", "user", "product", "cart", "order", "postgres", "redis", "ares"}},
		{"observability", []string{"docker-compose.yml"}, []string{"observability"}, []string{"gateway", "ares", "prometheus", "alertmanager", "grafana", "postgres"}},
		{"local", []string{"docker-compose.yml", "docker-compose.local.yml"}, nil, []string{"gateway", "ares"}},
		{"local-observability", []string{"docker-compose.yml", "docker-compose.local.yml"}, []string{"observability"}, []string{"gateway", "ares", "prometheus", "grafana"}},
		{"ec2-host-ares", []string{"docker-compose.yml", "deploy/ec2/compose.host-ares.yml"}, []string{"observability"}, []string{"gateway", "prometheus", "alertmanager"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"--project-directory", root}
			for _, f := range c.files {
				args = append(args, "-f", filepath.Join(root, f))
			}
			for _, p := range c.profiles {
				args = append(args, "--profile", p)
			}
			cmd := exec.Command(bin, append(args, "config")...)
			cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME=ares-deploy-config-test")
			out, err := cmd.Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("docker-compose %v config: %v\n%s", args[2:], err, stderr)
			}
			var cfg composeConfig
			if err := yaml.Unmarshal(out, &cfg); err != nil {
				t.Fatalf("docker-compose config output: %v", err)
			}
			local := slices.Contains(c.files, "docker-compose.local.yml")
			for _, s := range c.want {
				if _, ok := cfg.Services[s]; !ok {
					t.Errorf("service %s missing", s)
				}
			}
			for name, s := range cfg.Services {
				// Compose v1 lists profiled services even without the profile; only the
				// active ones count.
				if len(s.Profiles) > 0 && !slices.ContainsFunc(s.Profiles, func(p string) bool { return slices.Contains(c.profiles, p) }) {
					continue
				}
				for _, p := range s.Ports {
					ps, _ := p.(string)
					if name != "gateway" && !loopbackPort.MatchString(ps) {
						t.Errorf("%s publishes %v beyond loopback", name, p)
					}
				}
				if _, onControl := s.Networks["control"]; onControl {
					if _, onBackend := s.Networks["backend"]; onBackend && name != "prometheus" {
						t.Errorf("%s is on both backend and control", name)
					}
				}
			}
			if _, ok := cfg.Services["ares"].Networks["backend"]; ok {
				t.Error("ares is on the backend network")
			}
			if !cfg.Networks["control"].Internal {
				t.Error("network control is not internal")
			}
			if got := cfg.Networks["backend"].Internal; got == local {
				t.Errorf("network backend internal=%v, want %v", got, !local)
			}
		})
	}
}
