package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Invalid scenario files stop `ares chaos run` before anything runs, every one named with its
// line and field, with exit status 2.
func TestChaosRunRejectsInvalidFiles(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(typo, []byte("name: x\nsteps:\n  - inject: {kind: kill, servce: cart}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("name: x\nsteps:\n  - wait: {for: 1s}\nexpect:\n  - service cart happy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errw bytes.Buffer
	err := runChaosRun(context.Background(), chaosRunOpts{output: "text"}, []string{typo, bad}, "", &out, &errw)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("err %v, want exit status 2", err)
	}
	for _, want := range []string{typo + `: line 3: inject: unknown field "servce"`, bad + `: line 5: unknown expectation "service cart happy"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if out.Len() != 0 {
		t.Errorf("something ran: %s", out.String())
	}
	if err := runChaosRun(context.Background(), chaosRunOpts{output: "yaml"}, []string{typo}, "", &out, &errw); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("-o yaml: %v", err)
	}
}
