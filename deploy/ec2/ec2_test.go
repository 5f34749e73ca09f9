// Package ec2_test checks the EC2 host files with the tools that consume them: the systemd
// unit with systemd-analyze verify, the cloud-init user-data script with bash -n and
// shellcheck, the config it writes with ARES's own loader, and the compose override with
// docker-compose. A missing tool skips loudly, or fails when CI=true.
package ec2_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/internal/dockertest"
)

func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		dockertest.Unavailable(t, name+" (Debian package "+pkg+")", err)
	}
	return p
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// directives parses a unit file into section → key → values (a key may repeat).
func directives(t *testing.T, unit string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("ares.service: malformed line %q", l)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// verify runs systemd-analyze verify on unit, with ExecStart's binary replaced by an existing
// executable (verify insists on it), and returns what it complained about.
func verify(t *testing.T, analyze, unit string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ares.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/local/bin/ares", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil && len(out) == 0 {
		return err.Error()
	}
	return strings.TrimSpace(string(out))
}

func TestUnitVerifies(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	unit := read(t, "ares.service")
	if out := verify(t, analyze, unit); out != "" {
		t.Errorf("systemd-analyze verify ares.service:\n%s", out)
	}
	// The check can fail: a typo is reported.
	broken := strings.Replace(unit, "WatchdogSec=30s", "WatchdogSec=thirty\nRestartt=always", 1)
	if out := verify(t, analyze, broken); !strings.Contains(out, "thirty") || !strings.Contains(out, "Restartt") {
		t.Errorf("systemd-analyze verify missed the typos: %q", out)
	}
}

func TestUnitRunsARESAsTheSystemdGuideSays(t *testing.T) {
	d := directives(t, read(t, "ares.service"))
	svc := d["Service"]
	for key, want := range map[string]string{
		"Type":                  "notify", // READY=1 from ares run (cmd/ares/sdnotify.go)
		"WatchdogSec":           "30s",    // WATCHDOG=1 while the tick loop makes progress
		"Restart":               "always",
		"ExecStart":             "/usr/local/bin/ares run --config /etc/ares/ares.yaml",
		"ExecReload":            "/bin/kill -HUP $MAINPID", // SIGHUP reloads the policies
		"User":                  "ares",
		"SupplementaryGroups":   "docker",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ReadWritePaths":        "/var/lib/ares",
		"StateDirectory":        "ares",
		"CapabilityBoundingSet": "",
	} {
		got, ok := svc[key]
		if !ok || len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", key, got, want)
		}
	}
	if got := d["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q", got)
	}
	if !strings.Contains(strings.Join(d["Unit"]["After"], " "), "docker.service") {
		t.Errorf("[Unit] After = %q: ARES starts after Docker", d["Unit"]["After"])
	}
}

// userDataYAML is the /etc/ares/ares.yaml the user-data script writes.
func userDataYAML(t *testing.T) string {
	t.Helper()
	s := read(t, "user-data.sh")
	_, rest, ok := strings.Cut(s, "<<'YAML'\n")
	if !ok {
		t.Fatal("user-data.sh writes no ares.yaml heredoc")
	}
	body, _, ok := strings.Cut(rest, "\nYAML\n")
	if !ok {
		t.Fatal("user-data.sh: unterminated YAML heredoc")
	}
	return body + "\n"
}

// The config the user-data script installs loads, and agrees with the unit: its journal and
// anomaly state live where the unit lets ARES write, its policies where the script puts them.
func TestUserDataConfigLoadsAndFitsTheUnit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ares.yaml")
	if err := os.WriteFile(p, []byte(userDataYAML(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(config.Options{Path: p, Env: []string{}})
	if err != nil {
		t.Fatalf("the config user-data.sh writes does not load: %v", err)
	}
	rw := directives(t, read(t, "ares.service"))["Service"]["ReadWritePaths"][0]
	for key, path := range map[string]string{"journal.path": cfg.Journal.Path, "anomaly.state_file": cfg.Anomaly.StateFile} {
		if !strings.HasPrefix(path, rw+"/") {
			t.Errorf("%s %q is outside ReadWritePaths=%s: ProtectSystem=strict makes it read-only", key, path, rw)
		}
	}
	if cfg.Policy.Dir != "/etc/ares/policies" || !strings.Contains(read(t, "user-data.sh"), "mv /etc/ares/policies.new /etc/ares/policies") {
		t.Errorf("policy.dir %q is not where user-data.sh installs the policies", cfg.Policy.Dir)
	}
	for key, addr := range map[string]string{"metrics.listen": cfg.Metrics.Listen, "dashboard.listen": cfg.Dashboard.Listen} {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("%s %q: bind to loopback on a server", key, addr)
		}
	}
}

func TestUserDataScript(t *testing.T) {
	if out, err := exec.Command("bash", "-n", "user-data.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n user-data.sh: %v\n%s", err, out)
	}
	sc := tool(t, "shellcheck", "shellcheck")
	if out, err := exec.Command(sc, "user-data.sh").CombinedOutput(); err != nil {
		t.Errorf("shellcheck user-data.sh: %v\n%s", err, out)
	}
	s := read(t, "user-data.sh")
	if !strings.HasPrefix(s, "#!/bin/bash\n") {
		t.Error("cloud-init runs user-data with a #! line: #!/bin/bash")
	}
	// Every repository file the script uses exists.
	root := filepath.Join("..", "..")
	for _, f := range []string{"deploy/ec2/ares.service", "deploy/ec2/deploy.sh", "deploy/ec2/compose.host-ares.yml",
		"docker-compose.yml", "policies"} {
		if !strings.Contains(s, strings.TrimPrefix(f, "deploy/ec2/")) {
			t.Errorf("user-data.sh does not use %s", f)
		}
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("user-data.sh uses %s: %v", f, err)
		}
	}
	// The steps come in an order that works on a fresh host.
	_, code, _ := strings.Cut(s, "\nset -euo pipefail\n") // past the header comment
	steps := []string{"apt-get install -y -q --no-install-recommends ca-certificates curl git docker.io",
		"usermod -aG docker ares", "docker cp", "/etc/ares/ares.env", "systemctl enable ares.service", `bash "$script" apply`}
	at := -1
	for _, step := range steps {
		i := strings.Index(code, step)
		if i < 0 {
			t.Fatalf("user-data.sh lacks %q", step)
		}
		if i < at {
			t.Errorf("user-data.sh: %q comes too early", step)
		}
		at = i
	}
}

// With the override, compose does not start the stack's own ARES container: ARES runs on the
// host, and two controllers must never heal the same containers.
func TestComposeOverrideDisablesTheARESContainer(t *testing.T) {
	dc := tool(t, "docker-compose", "docker-compose")
	cmd := exec.Command(dc, "-f", "docker-compose.yml", "-f", "deploy/ec2/compose.host-ares.yml", "config")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v", err)
	}
	var doc struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	ares, ok := doc.Services["ares"]
	if !ok || len(ares.Profiles) != 1 || ares.Profiles[0] != "container-ares" {
		t.Errorf("ares service profiles = %v, want [container-ares]", ares.Profiles)
	}
	for _, svc := range []string{"gateway", "user", "product", "cart", "order", "postgres", "redis"} {
		if s, ok := doc.Services[svc]; !ok || len(s.Profiles) != 0 {
			t.Errorf("%s: missing or moved into a profile (%v)", svc, s.Profiles)
		}
	}
}
