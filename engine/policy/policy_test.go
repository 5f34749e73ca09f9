package policy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const minimal = `package ares

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.state == data.ares.config.bad_state
	d := {"action": "restart", "service": name, "replica": r.name, "reason": "exited"}
}
`

func TestLoad(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		opt       Options
		wantFiles []string
	}{
		{
			name:      "policy and root data.json",
			files:     map[string]string{"restart.rego": minimal, "data.json": `{"ares": {"config": {"bad_state": "exited"}}}`},
			wantFiles: []string{"data.json", "restart.rego"},
		},
		{
			name: "data merged at its directory path, yaml too",
			files: map[string]string{
				"restart.rego":          minimal,
				"ares/config/data.yaml": "bad_state: exited\n",
				"ares/data.yml":         "other: 1\n",
			},
			wantFiles: []string{"ares/config/data.yaml", "ares/data.yml", "restart.rego"},
		},
		{
			name: "tests listed but not compiled without RequireTests; hidden files skipped",
			files: map[string]string{
				"restart.rego":      minimal,
				"restart_test.rego": "this is not rego",
				"data.json":         `{"ares": {"config": {"bad_state": "exited"}}}`,
				".#restart.rego":    "garbage",
				".git/x.rego":       "garbage",
			},
			wantFiles: []string{"data.json", "restart.rego", "restart_test.rego"},
		},
		{
			name:      "custom query",
			files:     map[string]string{"p.rego": "package custom\n\nout contains {\"action\": \"notify\", \"service\": \"a\", \"reason\": \"r\"}\n"},
			opt:       Options{Query: "data.custom.out"},
			wantFiles: []string{"p.rego"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustLoad(t, policyDir(t, tt.files), tt.opt)
			if got := s.Files(); !slices.Equal(got, tt.wantFiles) {
				t.Errorf("Files() = %v, want %v", got, tt.wantFiles)
			}
			if len(s.Revision()) != 12 {
				t.Errorf("Revision() = %q, want 12 hex digits", s.Revision())
			}
		})
	}
}

func TestLoadDataPaths(t *testing.T) {
	dir := policyDir(t, map[string]string{"restart.rego": minimal, "ares/config/data.json": `{"bad_state": "exited"}`})
	s := mustLoad(t, dir, Options{})
	ds, _ := mustEval(t, s, factsWith(map[string]string{"api": "exited", "web": "running"}))
	if len(ds) != 1 || ds[0].Service != "api" {
		t.Fatalf("decisions = %+v, want one restart of api (data.ares.config from ares/config/data.json)", ds)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		opt   Options
		want  []string // substrings; "$DIR" is replaced by the directory
	}{
		{
			name:  "parse error names file and line",
			files: map[string]string{"ok.rego": minimal, "bad.rego": "package ares\n\ndecisions contains d if {\n\td := \n}\n"},
			want:  []string{filepath.Join("$DIR", "bad.rego") + ":", "rego_parse_error"},
		},
		{
			name:  "compile error names file and line",
			files: map[string]string{"bad.rego": "package ares\n\ndecisions contains d if {\n\td := no_such_function(1)\n}\n"},
			want:  []string{filepath.Join("$DIR", "bad.rego") + ":4: rego_type_error"},
		},
		{
			name:  "strict mode: unused variable",
			files: map[string]string{"bad.rego": "package ares\n\ndecisions contains 1 if {\n\tx := 2\n}\n"},
			want:  []string{filepath.Join("$DIR", "bad.rego") + ":4: rego_compile_error", "x"},
		},
		{
			name:  "bad data.json names file and line",
			files: map[string]string{"ok.rego": minimal, "data.json": "{\n  \"a\": 1,\n  oops\n}\n"},
			want:  []string{filepath.Join("$DIR", "data.json") + ":3: invalid character"},
		},
		{
			name:  "data.json not an object",
			files: map[string]string{"ok.rego": minimal, "data.json": "[1, 2]"},
			want:  []string{filepath.Join("$DIR", "data.json") + ": data file must hold an object (got array)"},
		},
		{
			name:  "bad data.yaml",
			files: map[string]string{"ok.rego": minimal, "x/data.yaml": "a: [1, 2\n"},
			want:  []string{filepath.Join("$DIR", "x", "data.yaml") + ":"},
		},
		{
			name:  "conflicting data files",
			files: map[string]string{"ok.rego": minimal, "data.json": `{"ares": {"x": 1}}`, "ares/data.json": `{"x": 2}`},
			want:  []string{"conflicts with another data file"},
		},
		{
			name:  "no rego files",
			files: map[string]string{"data.json": "{}", "README.md": "hi"},
			want:  []string{"$DIR: no .rego policy files"},
		},
		{
			name:  "query not defined",
			files: map[string]string{"p.rego": "package other\n\nx := 1\n"},
			want:  []string{"no rule defines data.ares.decisions"},
		},
		{
			name:  "bad partition option",
			files: map[string]string{"ok.rego": minimal},
			opt:   Options{Partition: "sometimes"},
			want:  []string{"partition", "sometimes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := policyDir(t, tt.files)
			_, err := Load(dir, tt.opt)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "$DIR", dir)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRequireTests(t *testing.T) {
	passing := "package ares_test\n\nimport data.ares\n\ntest_ok if {\n\tcount(ares.decisions) == 0 with input as {}\n}\n"
	failing := "package ares_test\n\nimport data.ares\n\ntest_broken if {\n\tcount(ares.decisions) == 1 with input as {}\n}\n"
	data := `{"ares": {"config": {"bad_state": "exited"}}}`
	tests := []struct {
		name    string
		files   map[string]string
		opt     Options
		wantErr []string
	}{
		{"passing tests", map[string]string{"p.rego": minimal, "data.json": data, "p_test.rego": passing}, Options{RequireTests: true}, nil},
		{"failing test refuses the set", map[string]string{"p.rego": minimal, "data.json": data, "p_test.rego": passing, "q_test.rego": failing}, Options{RequireTests: true},
			[]string{"1 of 2 tests failed", "data.ares_test.test_broken", "q_test.rego:5", "FAIL"}},
		{"failing test ignored without RequireTests", map[string]string{"p.rego": minimal, "data.json": data, "q_test.rego": failing}, Options{}, nil},
		{"pack tests pass", nil, Options{RequireTests: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := packDir(t)
			if tt.files != nil {
				dir = policyDir(t, tt.files)
			}
			_, err := Load(dir, tt.opt)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Load succeeded, want the failing test reported")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRevision(t *testing.T) {
	files := map[string]string{"p.rego": minimal, "data.json": `{"ares": {"config": {"bad_state": "exited"}}}`}
	a := mustLoad(t, policyDir(t, files), Options{})
	b := mustLoad(t, policyDir(t, files), Options{})
	if a.Revision() != b.Revision() {
		t.Errorf("same files, revisions %s and %s differ", a.Revision(), b.Revision())
	}
	files["data.json"] = `{"ares": {"config": {"bad_state": "dead"}}}`
	c := mustLoad(t, policyDir(t, files), Options{})
	if c.Revision() == a.Revision() {
		t.Errorf("changed data.json, revision %s unchanged", c.Revision())
	}
}
