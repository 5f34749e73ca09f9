package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleFacts is a copy of the pinned example document (shared/examples/facts.json).
const exampleFacts = "testdata/example-facts.json"

func example(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(exampleFacts)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvalExampleWithDefaultPack(t *testing.T) {
	raw := example(t)
	for _, format := range []string{"text", "json"} {
		var out, errw bytes.Buffer
		err := runEval(context.Background(), evalOpts{facts: "-", policies: "../../policies", query: "data.ares.decisions", output: format},
			bytes.NewReader(raw), &out, &errw)
		if err != nil {
			t.Fatalf("%s: %v (stderr %s)", format, err, errw.String())
		}
		if format == "text" {
			if got := strings.TrimSpace(out.String()); got != "restart    api/demo-api-2  exited with code 137" {
				t.Errorf("text = %q", got)
			}
			continue
		}
		var res evalResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Decisions) != 1 || res.Decisions[0].Replica != "demo-api-2" || res.Decisions[0].Action != "restart" || res.PolicyRev == "" {
			t.Errorf("json = %+v", res)
		}
	}
}

func TestEvalBadInputNamesThePlace(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "pol.rego", "package ares\n\ndecisions contains {\"action\": \"notify\", \"service\": \"x\", \"reason\": \"r\"} if true\n")
	_ = good
	garbage := t.TempDir()
	writeFile(t, garbage, "g.rego", "package ares\n\ndecisions contains {\"action\": \"reboot\", \"service\": \"x\", \"reason\": \"r\"} if true\n\ndecisions contains 42 if true\n")
	broken := t.TempDir()
	writeFile(t, broken, "b.rego", "package ares\n\ndecisions contains x if {\n  x := \n}\n")

	cases := []struct {
		name, facts, policies string
		want                  []string
		stdout                string
	}{
		{"not json", "{\n  \"version\": 1,\n  oops\n}", dir, []string{"case.json", "not JSON", "line 3"}, ""},
		{"schema", `{"version": 1, "tick": 1, "time": "2026-12-01T08:30:00Z", "services": {"api": {"desired_replicas": 1, "replicas": [{"id": "a", "name": "api-1", "state": "sleeping", "health": "none", "exit_code": 0, "oom_killed": false, "restart_count": 0, "cpu_percent": 0, "mem_bytes": 0, "mem_limit_bytes": 0, "mem_percent": 0}]}}, "alerts": [], "sensors": {}}`,
			dir, []string{"case.json", "services.api.replicas[0].state"}, ""},
		{"version 2", `{"version": 2, "tick": 1, "time": "2026-12-01T08:30:00Z", "services": {}, "alerts": [], "sensors": {}}`, dir, []string{"case.json", "version"}, ""},
		{"broken policy", `{"version": 1, "tick": 1, "time": "2026-12-01T08:30:00Z", "services": {}, "alerts": [], "sensors": {}}`, broken, []string{"b.rego:"}, ""},
		{"garbage decisions", `{"version": 1, "tick": 1, "time": "2026-12-01T08:30:00Z", "services": {}, "alerts": [], "sensors": {}}`, garbage, []string{"2 invalid decision"}, "no decisions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "case.json", tc.facts)
			var out, errw bytes.Buffer
			err := runEval(context.Background(), evalOpts{facts: p, policies: tc.policies, query: "data.ares.decisions", output: "text"}, nil, &out, &errw)
			if err == nil {
				t.Fatalf("no error; stdout %q", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.stdout != "" && !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q", out.String())
			}
			if tc.name == "garbage decisions" {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != 1 {
					t.Errorf("want exit code 1, got %v", err)
				}
				if !strings.Contains(errw.String(), `unknown action \"reboot\"`) && !strings.Contains(errw.String(), `unknown action "reboot"`) {
					t.Errorf("stderr does not explain the rejection: %q", errw.String())
				}
			}
		})
	}
}

func TestEvalMissingFile(t *testing.T) {
	err := runEval(context.Background(), evalOpts{facts: filepath.Join(t.TempDir(), "nope.json"), policies: "../../policies", output: "text"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("err = %v", err)
	}
}

func TestRootHelpListsCommands(t *testing.T) {
	var out bytes.Buffer
	cmd := newRootCmd(nil, &out, &out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"run", "eval", "facts", "version"} {
		if !strings.Contains(out.String(), "  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := runVersion(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "ares ") || !strings.Contains(out.String(), "facts document v1") {
		t.Errorf("version = %q", out.String())
	}
}
