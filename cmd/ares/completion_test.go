package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// Every command, including ones added later, documents itself with an example in --help.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := newRootCmd(nil, &bytes.Buffer{}, &bytes.Buffer{})
	var missing []string
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		n++
		if strings.TrimSpace(c.Example) == "" {
			missing = append(missing, c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 12 {
		t.Fatalf("walked only %d commands", n)
	}
	if len(missing) > 0 {
		t.Errorf("commands without an Example in their --help: %s", strings.Join(missing, ", "))
	}
}

// And --help prints it.
func TestHelpShowsExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"doctor", "--help"}, {"completion", "--help"}} {
		var out bytes.Buffer
		root := newRootCmd(nil, &out, &out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.Contains(out.String(), "Examples:\n") {
			t.Errorf("ares %s prints no examples:\n%s", strings.Join(args, " "), out.String())
		}
	}
}

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var out, errw bytes.Buffer
	root := newRootCmd(nil, &out, &errw)
	root.SetArgs([]string{"completion", shell})
	if err := root.Execute(); err != nil {
		t.Fatalf("completion %s: %v (%s)", shell, err, errw.String())
	}
	return out.String()
}

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct{ shell, marker, checker string }{
		{"bash", "__start_ares", "bash"},
		{"zsh", "#compdef ares", "zsh"},
		{"fish", "complete -c ares", "fish"},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			s := completionScript(t, tc.shell)
			if !strings.Contains(s, tc.marker) || !strings.Contains(s, "__complete") {
				t.Fatalf("%s script lacks %q or the __complete call:\n%.300s", tc.shell, tc.marker, s)
			}
			sh, err := exec.LookPath(tc.checker)
			if err != nil {
				t.Logf("SKIPPING the syntax check: %s is not installed", tc.checker)
				return
			}
			f := filepath.Join(t.TempDir(), "ares."+tc.shell)
			if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(sh, "-n", f).CombinedOutput(); err != nil {
				t.Fatalf("%s -n rejects the script: %v\n%s", tc.shell, err, out)
			}
		})
	}
}

func TestCompletionRejectsUnknownShells(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		var out bytes.Buffer
		root := newRootCmd(nil, &out, &out)
		root.SetArgs(args)
		if err := root.Execute(); err == nil {
			t.Errorf("ares %s: no error", strings.Join(args, " "))
		}
	}
}

var (
	buildBinOnce sync.Once
	builtBin     string
	buildBinErr  error
)

// aresBinary builds this command once per test process.
func aresBinary(t *testing.T) string {
	t.Helper()
	buildBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ares-cli-")
		if err != nil {
			buildBinErr = err
			return
		}
		builtBin = filepath.Join(dir, "ares")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildBinErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildBinErr != nil {
		t.Fatal(buildBinErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// The bash script, sourced into a real bash with the real binary on PATH, completes
// subcommands, arguments and flag values, as pressing Tab would (COMP_WORDS simulated).
func TestBashCompletionCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("SKIPPING: bash is not installed")
	}
	const bashCompletion = "/usr/share/bash-completion/bash_completion" // Debian's, Ubuntu's
	if _, err := os.Stat(bashCompletion); err != nil {
		t.Skip("SKIPPING: the bash-completion package is not installed (apt install bash-completion)")
	}
	bin := aresBinary(t)
	script := filepath.Join(t.TempDir(), "ares.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		line := strings.Join(words, " ")
		prog := `source ` + bashCompletion + `; source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$LINE"; COMP_POINT=${#COMP_LINE}
__start_ares ares "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, append([]string{"--norc", "--noprofile", "-c", prog, "bash", script}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "LINE="+line)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("completing %q: %v\n%s", line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				got = append(got, l)
			}
		}
		return got
	}
	for _, tc := range []struct {
		words []string
		want  []string
		not   []string
	}{
		{[]string{"ares", ""}, []string{"run", "doctor", "completion", "eval", "pause", "resume"}, []string{"__complete"}},
		{[]string{"ares", "do"}, []string{"doctor"}, []string{"run"}},
		{[]string{"ares", "completion", ""}, []string{"bash", "zsh", "fish"}, nil},
		{[]string{"ares", "doctor", "-o", ""}, []string{"text", "json"}, nil},
		{[]string{"ares", "run", "--dry"}, []string{"--dry-run"}, nil},
	} {
		got := complete(tc.words...)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q<Tab>: %v lacks %q", strings.Join(tc.words, " "), got, w)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(got, w) {
				t.Errorf("%q<Tab>: %v offers %q", strings.Join(tc.words, " "), got, w)
			}
		}
	}
}

// The fish script, sourced into a real fish, completes as well (fish's complete -C asks it).
func TestFishCompletionCompletes(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("SKIPPING: fish is not installed (apt install fish)")
	}
	bin := aresBinary(t)
	script := filepath.Join(t.TempDir(), "ares.fish")
	if err := os.WriteFile(script, []byte(completionScript(t, "fish")), 0o644); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]string{
		"ares do":               "doctor",
		"ares completion z":     "zsh",
		"ares doctor --output ": "json",
	} {
		cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C$argv[2]", script, line)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		if !slices.Contains(got, want) {
			t.Errorf("%q<Tab>: %v lacks %q", line, got, want)
		}
	}
}
