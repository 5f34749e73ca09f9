package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/internal/dockertest"
)

// The README's policy tour must stay true: its Rego is docs/examples/ verbatim, and those files
// load beside the default pack with their tests passing.
func TestReadmeTourPolicyWorks(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyDir(t, filepath.Join(root, "policies"), dir)
	examples, _ := filepath.Glob(filepath.Join(root, "docs", "examples", "*.rego"))
	if len(examples) == 0 {
		t.Fatal("no docs/examples/*.rego")
	}
	for _, ex := range examples {
		body, err := os.ReadFile(ex)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), string(body)) {
			t.Errorf("README.md does not show %s verbatim", filepath.Base(ex))
		}
		writePolicy(t, dir, filepath.Base(ex), string(body))
	}
	if _, err := policy.Load(dir, policy.Options{RequireTests: true}); err != nil {
		t.Fatalf("the tour's policy does not load with its tests: %v", err)
	}
}
