//go:build unix

package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// permDir writes a loadable policy set (a policy, a data file and a policy in a
// subdirectory) into a fresh directory with safe permissions and returns it.
func permDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policies")
	writeFiles(t, dir, map[string]string{
		"main.rego":     statePolicy("exited"),
		"data.json":     `{"limits": {"max": 1}}`,
		"sub/more.rego": "package ares.more\n\nx := 1\n",
	})
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRefusesPolicyPathsOthersCanWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breaks func(t *testing.T, dir string) string // returns the path the error must name; "" = still loads
		reason string
	}{
		{"safe", func(*testing.T, string) string { return "" }, ""},
		{"group-writable dir", func(t *testing.T, dir string) string { chmod(t, dir, 0o775); return dir }, "group-writable (mode 0775)"},
		{"world-writable dir", func(t *testing.T, dir string) string { chmod(t, dir, 0o757); return dir }, "world-writable (mode 0757)"},
		{"sticky world-writable dir", func(t *testing.T, dir string) string { chmod(t, dir, 0o777|os.ModeSticky); return dir }, "world-writable"},
		{"group-writable policy", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "main.rego")
			chmod(t, p, 0o664)
			return p
		}, "group-writable (mode 0664)"},
		{"world-writable data file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "data.json")
			chmod(t, p, 0o646)
			return p
		}, "world-writable (mode 0646)"},
		{"group-writable subdirectory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "sub")
			chmod(t, p, 0o775)
			return p
		}, "group-writable"},
		{"writable parent", func(t *testing.T, dir string) string {
			p := filepath.Dir(dir)
			chmod(t, p, 0o777)
			return p
		}, "world-writable (mode 0777)"},
		{"sticky shared parent like /tmp", func(t *testing.T, dir string) string {
			chmod(t, filepath.Dir(dir), 0o777|os.ModeSticky)
			return ""
		}, ""},
		{"writable hidden dir is not read", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ".git")
			writeFiles(t, p, map[string]string{"config": "x"})
			chmod(t, p, 0o777)
			return ""
		}, ""},
		{"writable non-policy file is not read", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "README.md")
			writeFiles(t, dir, map[string]string{"README.md": "x"})
			chmod(t, p, 0o666)
			return ""
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := permDir(t)
			want := tc.breaks(t, dir)
			_, err := Load(dir, Options{})
			if want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("Load: want a *PermissionError naming %s, got %v", want, err)
			}
			if pe.Path != want {
				t.Errorf("error names %s, want %s", pe.Path, want)
			}
			for _, s := range []string{tc.reason, "chmod go-w " + want, "--insecure-policy-dir"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if _, err := Load(dir, Options{InsecureDir: true}); err != nil {
				t.Errorf("Load with InsecureDir: %v", err)
			}
		})
	}
}

// What is read counts: a symbolic link to a directory others can write is refused, naming
// the directory behind it.
func TestLoadFollowsSymlinkToInsecureDir(t *testing.T) {
	dir := permDir(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := CheckPermissions(link); err != nil {
		t.Fatalf("CheckPermissions of a link to a safe dir: %v", err)
	}
	chmod(t, dir, 0o777)
	err := CheckPermissions(link)
	var pe *PermissionError
	if !errors.As(err, &pe) || pe.Path != dir {
		t.Fatalf("CheckPermissions of a link: want a *PermissionError naming %s, got %v", dir, err)
	}
}

func TestLoadRefusesPolicyFileOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	dir := permDir(t)
	p := filepath.Join(dir, "main.rego")
	if err := os.Chown(p, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, Options{})
	var pe *PermissionError
	if !errors.As(err, &pe) || pe.Path != p || !strings.Contains(err.Error(), "owned by uid 4242") || !strings.Contains(err.Error(), "chown 0 "+p) {
		t.Fatalf("Load: want a *PermissionError for %s owned by uid 4242, got %v", p, err)
	}
}

func TestCheckPermissionsOfMissingDirIsLeftToLoad(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if err := CheckPermissions(missing); err != nil {
		t.Errorf("CheckPermissions(missing): %v", err)
	}
	if _, err := Load(missing, Options{}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Load(missing): want a not-found error, got %v", err)
	}
}

// A reload into a directory that became writable by others is refused like a compile error:
// the live revision stays, the refusal is reported; fixing the mode lets the change in.
func TestWatcherRefusesReloadIntoInsecureDir(t *testing.T) {
	dir := permDir(t)
	w, _ := startWatcher(t, dir)
	rev := w.Current().Revision()
	var refused atomic.Int32
	w.OnReload(func(_ string, err error) {
		if err != nil {
			refused.Add(1)
		}
	})

	chmod(t, dir, 0o777) // the chmod alone is noticed by the running watcher
	eventually(t, "the watcher to refuse the world-writable directory", func() bool {
		err, _ := w.LastError()
		return err != nil
	})
	writeFiles(t, dir, map[string]string{"main.rego": statePolicy("dead")})
	err := w.Reload(context.Background())
	var pe *PermissionError
	if !errors.As(err, &pe) || pe.Path != dir {
		t.Fatalf("Reload: want a *PermissionError naming %s, got %v", dir, err)
	}
	if got := w.Current().Revision(); got != rev {
		t.Fatalf("revision changed to %s after a refused reload, want %s", got, rev)
	}
	if le, _ := w.LastError(); !errors.As(le, &pe) {
		t.Errorf("LastError = %v, want the permission error", le)
	}

	chmod(t, dir, 0o755)
	eventually(t, "the watcher to activate the change once the mode is fixed", func() bool {
		return w.Current().Revision() != rev
	})
	if le, _ := w.LastError(); le != nil {
		t.Errorf("LastError after the fix = %v, want nil", le)
	}
	if refused.Load() == 0 {
		t.Error("no reload hook saw the refusal")
	}
}

func TestWatcherInsecureDirOption(t *testing.T) {
	dir := permDir(t)
	chmod(t, dir, 0o777)
	if _, err := NewWatcher(dir, Options{}, nil); err == nil {
		t.Fatal("NewWatcher on a world-writable directory: want an error")
	}
	w, err := NewWatcher(dir, Options{InsecureDir: true, Debounce: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("NewWatcher with InsecureDir: %v", err)
	}
	if w.Current() == nil {
		t.Fatal("no live revision")
	}
}

// A policy cannot reach outside the facts: the network and ARES's own environment are
// refused at compile time, naming the file and the built-in.
func TestPolicyCannotCallOutside(t *testing.T) {
	for name, body := range map[string]string{
		"http.send": `package ares
decisions contains d if {
	resp := http.send({"method": "GET", "url": "http://127.0.0.1:1/"})
	d := {"action": "notify", "service": "x", "reason": sprintf("%v", [resp.status_code])}
}`,
		"opa.runtime": `package ares
decisions contains d if {
	d := {"action": "notify", "service": "x", "reason": sprintf("%v", [opa.runtime().env])}
}`,
		"net.lookup_ip_addr": `package ares
decisions contains d if {
	ips := net.lookup_ip_addr("example.com")
	d := {"action": "notify", "service": "x", "reason": sprintf("%v", [ips])}
}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := permDir(t)
			writeFiles(t, dir, map[string]string{"main.rego": body})
			_, err := Load(dir, Options{})
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "main.rego") {
				t.Fatalf("Load: want a compile error naming %s in main.rego, got %v", name, err)
			}
		})
	}
	if _, err := Load(permDir(t), Options{}); err != nil { // the sandbox leaves ordinary policies alone
		t.Fatalf("Load of an ordinary policy: %v", err)
	}
}

// eventually polls cond for up to 10 s (generous: the machine may be busy; the reload
// latency itself is measured elsewhere).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
