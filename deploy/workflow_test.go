package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ares-sre/ares/internal/dockertest"
)

type workflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		Steps []struct {
			ID   string `yaml:"id"`
			Name string `yaml:"name"`
			Run  string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// step returns the run script of the step with id in the workflow file.
func step(t *testing.T, file, id string) (script string, env map[string]string) {
	t.Helper()
	var wf workflow
	readYAML(t, file, &wf)
	for _, j := range wf.Jobs {
		for _, s := range j.Steps {
			if s.ID == id {
				return s.Run, wf.Env
			}
		}
	}
	t.Fatalf("%s: no step with id %s", file, id)
	return "", nil
}

var (
	aresOnce sync.Once
	aresDir  string
	aresErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if aresDir != "" {
		os.RemoveAll(aresDir)
	}
	os.Exit(code)
}

// aresBinDir builds cmd/ares once into a directory to put on PATH.
func aresBinDir(t *testing.T) string {
	t.Helper()
	aresOnce.Do(func() {
		aresDir, aresErr = os.MkdirTemp("", "ares-deploy-test-")
		if aresErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(aresDir, "ares"), "./cmd/ares")
		cmd.Dir = dockertest.ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			aresErr = err
			t.Logf("%s", out)
		}
	})
	if aresErr != nil {
		t.Fatalf("go build ./cmd/ares: %v", aresErr)
	}
	return aresDir
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The policy-ci workflow's fixture step, run as GitHub runs it (bash -e -o pipefail) with the
// real ares: the shipped fixtures pass with the default pack; a changed expectation and a
// fixture without one fail, each with an error annotation naming the file.
func TestPolicyCIFixtureStep(t *testing.T) {
	tool(t, "jq", "jq")
	root := dockertest.ModuleRoot(t)
	script, env := step(t, filepath.Join(root, ".github", "workflows", "policy-ci.yml"), "fixtures")
	bin := aresBinDir(t)

	runStep := func(repo string) (int, string) {
		cmd := exec.Command("bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"POLICIES="+env["POLICIES"], "FIXTURES="+env["FIXTURES"])
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}

	code, out := runStep(root)
	if code != 0 || !strings.Contains(out, "3 fixtures evaluated") {
		t.Fatalf("the shipped fixtures: exit %d\n%s", code, out)
	}

	repo := t.TempDir()
	copyTree(t, filepath.Join(root, "policies"), filepath.Join(repo, env["POLICIES"]))
	fixtures := filepath.Join(repo, env["FIXTURES"])
	copyTree(t, filepath.Join(root, env["FIXTURES"]), fixtures)
	if err := os.WriteFile(filepath.Join(fixtures, "replica-exited", "decisions.json"),
		[]byte(`[{"action": "recycle", "service": "api", "replica": "demo-api-2"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(fixtures, "all-healthy", "decisions.json")); err != nil {
		t.Fatal(err)
	}
	code, out = runStep(repo)
	if code != 1 {
		t.Errorf("changed fixtures: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"::error file=" + env["FIXTURES"] + "/replica-exited/decisions.json::",
		`ares eval decides [{"action":"restart","replica":"demo-api-2","service":"api"}]`,
		"::error file=" + env["FIXTURES"] + "/all-healthy/facts.json::no decisions.json",
		"ok    " + env["FIXTURES"] + "/alert-high-error-rate",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
