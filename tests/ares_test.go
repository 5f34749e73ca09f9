// Package tests holds ARES's end-to-end tests: the real ares binary against the real Docker
// engine, with FROM-scratch test containers that are labelled ares.test=1 and removed afterwards.
package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/internal/dockertest"
)

var (
	buildOnce sync.Once
	aresBin   string
	buildErr  error
)

// binary builds cmd/ares once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ares-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		aresBin = filepath.Join(dir, "ares")
		cmd := exec.Command("go", "build", "-o", aresBin, "./cmd/ares")
		cmd.Dir = dockertest.ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return aresBin
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// aresProc is a running `ares run`.
type aresProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
}

// scope returns a label unique to the test, so that the ARES it starts sees only its own
// containers even while other packages' tests run containers of their own.
func scope(t testing.TB) (label string, labels map[string]string) {
	v := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano()%1e6)
	return "ares.test.scope=" + v, map[string]string{"ares.test.scope": v, "ares.enable": "true"}
}

// startAres runs `ares run -o json` with the given policy dir and extra args, scoped to the
// label, and stops it (SIGTERM to its PID) when the test ends.
func startAres(t testing.TB, policies, label string, args ...string) *aresProc {
	t.Helper()
	dockertest.Client(t) // skip or fail loudly without an engine
	root := dockertest.ModuleRoot(t)
	all := append([]string{"run", "--config", filepath.Join(root, "ares.yaml"), "--policies", policies, "-o", "json"}, args...)
	cmd := exec.Command(binary(t), all...)
	if os.Getenv("ARES_METRICS_LISTEN") == "" {
		t.Setenv("ARES_METRICS_LISTEN", "")
	}
	if os.Getenv("ARES_DASHBOARD_LISTEN") == "" { // no dashboard unless the test asks for one
		t.Setenv("ARES_DASHBOARD_LISTEN", "")
	}
	if os.Getenv("ARES_JOURNAL_PATH") == "" { // each ARES its own journal unless the test shares one
		t.Setenv("ARES_JOURNAL_PATH", filepath.Join(t.TempDir(), "journal.db"))
	}
	cmd.Env = append(os.Environ(), "ARES_DOCKER_LABELS="+label, "ARES_LOG_LEVEL=debug")
	if os.Getenv("ARES_ENGINE_INTERVAL") == "" { // a fast tick unless the caller chose one
		cmd.Env = append(cmd.Env, "ARES_ENGINE_INTERVAL=500ms")
	}
	p := &aresProc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		// What ARES created in the test's scope (a recycled or scaled-out replica is a new
		// container with the scope's labels) goes too, now that nothing recreates it.
		if k, v, ok := strings.Cut(label, "="); ok {
			dockertest.RemoveLabelled(t, map[string]string{k: v})
		}
		if t.Failed() {
			t.Logf("ares stderr:\n%s", tail(p.stderr.String(), 60))
			t.Logf("ares stdout:\n%s", tail(p.stdout.String(), 30))
		}
	})
	dockertest.Eventually(t, 30*time.Second, "ares starts", func() bool {
		return strings.Contains(p.stderr.String(), "ares starting") || cmd.ProcessState != nil
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ticks parses the -o json output so far.
func (p *aresProc) ticks(t *testing.T) []journal.PrintedTick {
	t.Helper()
	return printedTicks(p.stdout.String())
}

// printedTicks parses `ares run -o json` output, skipping a line still being written.
func printedTicks(stdout string) []journal.PrintedTick {
	var out []journal.PrintedTick
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var pt journal.PrintedTick
		if err := json.Unmarshal(sc.Bytes(), &pt); err != nil {
			continue // a line still being written
		}
		out = append(out, pt)
	}
	return out
}

// actions returns every action printed so far with the given verdict ("" for any).
func (p *aresProc) actions(t *testing.T, verdict string) []string {
	var out []string
	for _, tk := range p.ticks(t) {
		for _, a := range tk.Actions {
			if verdict == "" || a.Verdict == verdict {
				out = append(out, a.Action+" "+a.Target())
			}
		}
	}
	return out
}

// hasAction reports whether any action printed so far satisfies pred.
func (p *aresProc) hasAction(t *testing.T, pred func(a engine.Action) bool) bool {
	for _, tk := range p.ticks(t) {
		for _, a := range tk.Actions {
			if pred(a) {
				return true
			}
		}
	}
	return false
}

// heldBack reports whether an action on replica was suppressed with a reason containing why.
func (p *aresProc) heldBack(t *testing.T, replica, why string) bool {
	return p.hasAction(t, func(a engine.Action) bool {
		return a.Replica == replica && a.Verdict == engine.VerdictSuppress && strings.Contains(a.Why, why)
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writePolicy(t testing.TB, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// post sends body as JSON to the ARES API at addr, with token as bearer token when set, and
// returns the status code.
func post(t *testing.T, addr, token, path, body string) int {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
