package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAPITokenFromEnvOrFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("from-file-7d1e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env, file, want, err string
	}{
		{name: "neither"},
		{name: "env", env: "from-env-3a9c", want: "from-env-3a9c"},
		{name: "file", file: file, want: "from-file-7d1e"},
		{name: "both", env: "x", file: file, err: "not both"},
		{name: "missing file", file: filepath.Join(dir, "nope"), err: "ARES_API_TOKEN_FILE"},
		{name: "empty file", file: empty, err: "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("ARES_API_TOKEN", tc.env)
			} else {
				t.Setenv("ARES_API_TOKEN", "")
				os.Unsetenv("ARES_API_TOKEN")
			}
			t.Setenv("ARES_API_TOKEN_FILE", tc.file)
			got, err := apiToken()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("apiToken() = %q, %v; want an error containing %q", got, err, tc.err)
				}
				if strings.Contains(err.Error(), "from-file") {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("apiToken() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
