package tests

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ares-sre/ares/internal/dockertest"
)

// coverageFloor is the least share of the default pack's lines its own tests must run.
const coverageFloor = 90.0

// The default pack's tests pass and cover at least coverageFloor percent of it, measured by the
// same OPA CLI that `make test` runs (go tool opa).
func TestPolicyPackCoverage(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	cmd := exec.Command("go", "tool", "opa", "test", "--coverage", "--format=json", filepath.Join(root, "policies"))
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("opa test --coverage: %v\n%s", err, out)
	}
	var rep struct {
		Coverage float64 `json:"coverage"`
		Files    map[string]struct {
			Coverage float64 `json:"coverage"`
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("coverage report: %v", err)
	}
	t.Logf("policy coverage: %.1f%%", rep.Coverage)
	if rep.Coverage < coverageFloor {
		for f, c := range rep.Files {
			t.Logf("  %s: %.1f%%", f, c.Coverage)
		}
		t.Errorf("policy coverage %.1f%% is below the floor of %.0f%%", rep.Coverage, coverageFloor)
	}
}
