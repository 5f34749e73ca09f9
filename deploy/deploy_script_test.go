package deploy_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ares-sre/ares/internal/dockertest"
)

// fakeHost stands in for the EC2 host's Docker: a docker command that records what it is asked
// (no registry and no EC2 here) and keeps the tag `compose up` last started in a file, and a real
// HTTP server as ARES's dashboard whose /api/v1/status follows that tag: "bad*" never ticks,
// "nopolicy*" refuses its policies, every other tag is healthy.
type fakeHost struct {
	dir, bin, log, running string
	health                 *httptest.Server

	mu       sync.Mutex
	requests int
	auth     []string
}

const fakeDocker = `#!/usr/bin/env bash
# fake docker for deploy.sh's test: records its calls, never touches a daemon.
echo "docker $*" >>"$FAKE_LOG"
case "$1 $2" in
"compose version") exit 0 ;;
"pull "*) [[ $3 == *missing* || $2 == *missing* ]] && exit 1; exit 0 ;;
"image inspect") exit 0 ;;
esac
if [ "$1" = compose ]; then
	shift
	while [ "$1" = -f ]; do shift 2; done
	if [ "$1" = up ]; then
		echo "up SHOP_TAG=$SHOP_TAG" >>"$FAKE_LOG"
		printf '%s' "$SHOP_TAG" >"$FAKE_RUNNING"
	fi
fi
exit 0
`

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	h := &fakeHost{dir: t.TempDir(), bin: t.TempDir()}
	h.log = filepath.Join(h.dir, "calls.log")
	h.running = filepath.Join(h.dir, "running")
	if err := os.WriteFile(filepath.Join(h.bin, "docker"), []byte(fakeDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	h.health = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests++
		h.auth = append(h.auth, r.Header.Get("Authorization"))
		h.mu.Unlock()
		if r.URL.Path != "/api/v1/status" {
			http.NotFound(w, r)
			return
		}
		tag, _ := os.ReadFile(h.running)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(string(tag), "bad"):
			fmt.Fprint(w, `{"tick":0,"automation":"running","services":[]}`)
		case strings.HasPrefix(string(tag), "nopolicy"):
			fmt.Fprint(w, `{"tick":12,"policy_rev":"abc","reload_failed":true,"services":[]}`)
		default:
			fmt.Fprint(w, `{"tick":7,"policy_rev":"abc","services":[]}`)
		}
	}))
	t.Cleanup(h.health.Close)
	return h
}

// deploy runs deploy.sh with args against the fake host and returns its exit code and output.
func (h *fakeHost) deploy(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	script := filepath.Join(dockertest.ModuleRoot(t), "deploy", "ec2", "deploy.sh")
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+h.bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"FAKE_LOG="+h.log, "FAKE_RUNNING="+h.running, "ARES_DIR="+h.dir,
		"HEALTH_URL="+h.health.URL+"/api/v1/status", "HEALTH_TIMEOUT=3", "REGISTRY=ghcr.io/acme")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// calls returns the recorded calls since the last call of calls, and forgets them.
func (h *fakeHost) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(h.log)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "docker compose version" {
			out = append(out, l)
		}
	}
	return out
}

func (h *fakeHost) deployed(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(h.dir, ".deployed-tag"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func ups(calls []string) []string {
	var out []string
	for _, c := range calls {
		if tag, ok := strings.CutPrefix(c, "up SHOP_TAG="); ok {
			out = append(out, tag)
		}
	}
	return out
}

// deploy.sh apply: pulls and retags every image, starts the new tag, keeps it when ARES reports
// healthy, and otherwise starts the tag that ran before again and fails.
func TestDeployScriptRollsBack(t *testing.T) {
	h := newFakeHost(t)

	// A first deploy: every image pulled from the registry and tagged with its local name.
	if code, out := h.deploy(t, nil, "apply", "v1"); code != 0 {
		t.Fatalf("deploy v1: exit %d\n%s", code, out)
	}
	calls := h.calls(t)
	for _, img := range []string{"ares-shop-gateway", "ares-shop-user", "ares-shop-product", "ares-shop-cart", "ares-shop-order", "ares"} {
		if !slices.Contains(calls, "docker pull -q ghcr.io/acme/"+img+":v1") || !slices.Contains(calls, "docker tag ghcr.io/acme/"+img+":v1 "+img+":v1") {
			t.Errorf("%s:v1 not pulled and tagged: %q", img, calls)
		}
	}
	if got := ups(calls); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("compose up with tags %q, want [v1]", got)
	}
	if got := h.deployed(t); got != "v1" {
		t.Errorf("deployed tag %q, want v1", got)
	}

	// A release whose ARES never ticks: rolled back to v1, exit 1.
	code, out := h.deploy(t, nil, "apply", "bad-2")
	if code != 1 || !strings.Contains(out, "rolling back to v1") || !strings.Contains(out, "rolled back to v1") {
		t.Errorf("deploy bad-2: exit %d, want 1 and a rollback to v1\n%s", code, out)
	}
	if got := ups(h.calls(t)); !slices.Equal(got, []string{"bad-2", "v1"}) {
		t.Errorf("compose up with tags %q, want [bad-2 v1]", got)
	}
	if got := h.deployed(t); got != "v1" {
		t.Errorf("deployed tag %q after a rollback, want v1", got)
	}

	// A release whose policies ARES refuses is not healthy either.
	code, out = h.deploy(t, nil, "apply", "nopolicy-3")
	if code != 1 || !strings.Contains(out, "refuses the policies") {
		t.Errorf("deploy nopolicy-3: exit %d, want 1\n%s", code, out)
	}
	if got := ups(h.calls(t)); !slices.Equal(got, []string{"nopolicy-3", "v1"}) {
		t.Errorf("compose up with tags %q, want [nopolicy-3 v1]", got)
	}

	// A good release replaces v1, which is kept as the previous tag.
	if code, out := h.deploy(t, nil, "apply", "v4"); code != 0 {
		t.Fatalf("deploy v4: exit %d\n%s", code, out)
	}
	h.calls(t)
	if got := h.deployed(t); got != "v4" {
		t.Errorf("deployed tag %q, want v4", got)
	}
	if b, _ := os.ReadFile(filepath.Join(h.dir, ".previous-tag")); strings.TrimSpace(string(b)) != "v1" {
		t.Errorf("previous tag %q, want v1", b)
	}

	// An image that cannot be pulled stops the deploy before anything is restarted.
	code, out = h.deploy(t, nil, "apply", "missing-5")
	if code != 1 || !strings.Contains(out, "pull ghcr.io/acme/ares-shop-gateway:missing-5 failed") {
		t.Errorf("deploy missing-5: exit %d\n%s", code, out)
	}
	if got := ups(h.calls(t)); len(got) != 0 {
		t.Errorf("compose up %q after a failed pull", got)
	}
	if got := h.deployed(t); got != "v4" {
		t.Errorf("deployed tag %q, want v4", got)
	}

	// Bad tags are refused before anything runs.
	for _, tag := range []string{"../etc", "a b", "-rf", ""} {
		if code, out := h.deploy(t, nil, "apply", tag); code == 0 || len(h.calls(t)) != 0 {
			t.Errorf("tag %q: exit %d\n%s", tag, code, out)
		}
	}
}

// The first deploy has nothing to roll back to: it fails with the reason.
func TestDeployScriptFirstDeployFails(t *testing.T) {
	h := newFakeHost(t)
	code, out := h.deploy(t, nil, "apply", "bad-1")
	if code != 1 || !strings.Contains(out, "no earlier tag to roll back to") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if got := ups(h.calls(t)); !slices.Equal(got, []string{"bad-1"}) {
		t.Errorf("compose up with tags %q, want [bad-1]", got)
	}
	if got := h.deployed(t); got != "" {
		t.Errorf("deployed tag %q after a failed first deploy", got)
	}
}

// The API token goes to the health check from a file, and never onto a command line.
func TestDeployScriptTokenFile(t *testing.T) {
	h := newFakeHost(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := h.deploy(t, []string{"ARES_API_TOKEN_FILE=" + tokenFile}, "apply", "v1"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.auth) == 0 || h.auth[len(h.auth)-1] != "Bearer s3cret-token" {
		t.Errorf("health check Authorization headers %q", h.auth)
	}
	for _, c := range h.calls(t) {
		if strings.Contains(c, "s3cret") {
			t.Errorf("the token is on a command line: %s", c)
		}
	}
}

// deploy.sh ship copies the stack over SSH and runs apply on the host. SSH here is a stand-in
// that runs the remote command locally (no host to SSH to), so the copy and the remote command
// line are real.
func TestDeployScriptShip(t *testing.T) {
	h := newFakeHost(t)
	remote := filepath.Join(t.TempDir(), "opt ares")
	fakeSSH := filepath.Join(h.bin, "fake-ssh")
	if err := os.WriteFile(fakeSSH, []byte(`#!/usr/bin/env bash
# fake-ssh [-o opt]... HOST COMMAND: runs COMMAND here, as ssh would on HOST.
while [ "$1" = -o ]; do shift 2; done
echo "ssh $1" >>"$FAKE_LOG"
exec bash -c "$2"
`), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out := h.deploy(t, []string{"SSH=fake-ssh -o BatchMode=yes", "REMOTE_DIR=" + remote, "ARES_DIR="},
		"ship", "deploy@ec2.example", "v9")
	if code != 0 {
		t.Fatalf("ship: exit %d\n%s", code, out)
	}
	for _, f := range []string{"docker-compose.yml", "docker-compose.local.yml", "deploy/ec2/deploy.sh",
		"deploy/prometheus/prometheus.yml", "deploy/alertmanager/alertmanager.yml", "policies/data.json"} {
		if _, err := os.Stat(filepath.Join(remote, f)); err != nil {
			t.Errorf("not copied to the host: %v", err)
		}
	}
	calls := h.calls(t)
	if !slices.Contains(calls, "ssh deploy@ec2.example") || !slices.Equal(ups(calls), []string{"v9"}) {
		t.Errorf("calls %q", calls)
	}
	if b, _ := os.ReadFile(filepath.Join(remote, ".deployed-tag")); strings.TrimSpace(string(b)) != "v9" {
		t.Errorf("deployed tag on the host %q, want v9\n%s", b, out)
	}
}
