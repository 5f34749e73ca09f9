package tests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ares-sre/ares/internal/dockertest"
)

const nonRootImage = "ares-e2e-nonroot:test"

// buildAresImage builds deploy/shop/ares.Dockerfile from a context laid out as
// `make shop-images` lays out dist/shop, in a temporary directory.
func buildAresImage(t *testing.T) {
	t.Helper()
	root := dockertest.ModuleRoot(t)
	ctxDir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "ares"), "./cmd/ares")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	copyDir(t, filepath.Join(root, "policies"), filepath.Join(ctxDir, "policies"))
	copyDir(t, filepath.Join(root, "deploy", "shop", "ares-etc"), filepath.Join(ctxDir, "ares-etc"))
	if err := os.Mkdir(filepath.Join(ctxDir, "ares-state"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chmod", "-R", "go-w", filepath.Join(ctxDir, "policies")).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "--label", dockertest.TestLabel+"=1", "-f", filepath.Join(root, "deploy", "shop", "ares.Dockerfile"),
		"-t", nonRootImage, ctxDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

// The ARES image runs as a non-root user whose only privilege is the Docker socket (through
// its group, as docker-compose.yml grants it): without the group it cannot reach Docker at
// all; with it, a tick runs and the journal is written to its own working directory (the
// image's, owned by that user).
func TestAresImageRunsAsNonRoot(t *testing.T) {
	dockertest.Client(t) // skip or fail loudly without an engine
	if _, err := exec.LookPath("docker"); err != nil {
		dockertest.Unavailable(t, "docker CLI", err)
	}
	buildAresImage(t)
	out, err := exec.Command("docker", "image", "inspect", nonRootImage).Output()
	if err != nil {
		t.Fatal(err)
	}
	var img []struct {
		Config struct{ User, WorkingDir string }
	}
	if err := json.Unmarshal(out, &img); err != nil || len(img) != 1 {
		t.Fatalf("docker image inspect: %v %s", err, out)
	}
	user := img[0].Config.User
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Fatalf("image user = %q, want a non-root uid", user)
	}
	t.Logf("image user %s, working dir %s", user, img[0].Config.WorkingDir)

	fi, err := os.Stat("/var/run/docker.sock")
	if err != nil {
		dockertest.Unavailable(t, "/var/run/docker.sock", err)
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid
	run := func(groupAdd bool) (string, error) {
		args := []string{"run", "--rm", "--label", dockertest.TestLabel + "=1", "--network", "none", "--cap-drop", "ALL",
			"--security-opt", "no-new-privileges:true", "-v", "/var/run/docker.sock:/var/run/docker.sock",
			"-e", "ARES_DOCKER_LABELS=ares.test.scope=nonroot-image-none", "-e", "ARES_METRICS_LISTEN=", "-e", "ARES_DASHBOARD_LISTEN="}
		if groupAdd {
			args = append(args, "--group-add", strconv.FormatUint(uint64(gid), 10))
		}
		args = append(args, nonRootImage,
			"run", "--once", "--dry-run", "-o", "json", "--policies", "/etc/ares/policies")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run(false); err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("without the socket's group ARES reached Docker (so it runs with more than the socket's group): %v\n%s", err, out)
	}
	out2, err := run(true)
	if err != nil || !strings.Contains(out2, `"tick":1`) {
		t.Fatalf("with the socket's group: %v\n%s", err, out2)
	}
}
