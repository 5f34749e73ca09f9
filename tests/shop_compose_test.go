package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ares-sre/ares/internal/dockertest"
)

// Both compose files are valid for the docker-compose that scripts/services.sh installs: the
// full stack, and the override that uses the host's PostgreSQL and Redis.
func TestShopComposeFilesAreValid(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		dockertest.Unavailable(t, "docker-compose", err)
	}
	root := dockertest.ModuleRoot(t)
	for name, files := range map[string][]string{
		"full":  {"docker-compose.yml"},
		"local": {"docker-compose.yml", "docker-compose.local.yml"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"--project-directory", root}
			for _, f := range files {
				args = append(args, "-f", filepath.Join(root, f))
			}
			cmd := exec.Command(bin, append(args, "config", "--quiet")...)
			cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME=ares-shop-config-test")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("docker-compose %v config: %v\n%s", files, err, out)
			}
		})
	}
}
