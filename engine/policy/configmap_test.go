package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// configMapDir lays out dir as the kubelet's atomic writer does for a ConfigMap volume: the
// files in a hidden timestamped directory, a "..data" symlink to it, and each key a symlink
// "key -> ..data/key"; the volume's root is world-writable (an emptyDir, mounted read-only).
func configMapDir(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	ts := writeGeneration(t, dir, files, 1)
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// writeGeneration writes the files of one ConfigMap update into a new timestamped directory
// (files root-owned 0644, directory 0755, as the kubelet makes them) and returns its name.
func writeGeneration(t *testing.T, dir string, files map[string]string, gen int) string {
	t.Helper()
	ts := "..2026_12_04_12_00_0" + string(rune('0'+gen)) + ".000000001"
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, ts, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

// swapGeneration updates the ConfigMap volume the kubelet's way: a new timestamped directory,
// a "..data_tmp" symlink to it renamed over "..data" (atomic), the old directory removed. The
// visible key symlinks are not touched, so no event names a policy file.
func swapGeneration(t *testing.T, dir string, files map[string]string, gen int) {
	t.Helper()
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	ts := writeGeneration(t, dir, files, gen)
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
		t.Fatal(err)
	}
}

// A policy ConfigMap updated through the ..data symlink swap is reloaded.
func TestWatcherConfigMapSwap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	configMapDir(t, dir, map[string]string{"p.rego": statePolicy("exited")})
	w, _ := startWatcher(t, dir)
	if got := restarts(t, w.Current()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("first generation restarts %v, want [a]", got)
	}
	rev := w.Set().Revision()
	swapGeneration(t, dir, map[string]string{"p.rego": statePolicy("dead")}, 2)
	deadline := time.Now().Add(5 * time.Second)
	for w.Set().Revision() == rev && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w.Set().Revision() == rev {
		t.Fatal("the ..data swap did not reload the policy")
	}
	if got := restarts(t, w.Current()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("second generation restarts %v, want [b]", got)
	}
}

// The permission check accepts a ConfigMap volume: root-owned 0644 files reached through
// symlinks, and a world-writable root that is mounted read-only (as the kubelet mounts it).
// The same world-writable root on a writable file system is refused.
func TestConfigMapPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the kubelet's files are root's: run as root to reproduce them")
	}
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	configMapDir(t, dir, map[string]string{"p.rego": statePolicy("exited")})
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckPermissions(dir); err != nil {
		t.Fatalf("ConfigMap layout refused: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // the emptyDir under the volume
		t.Fatal(err)
	}
	var pe *PermissionError
	if err := CheckPermissions(dir); !errors.As(err, &pe) || pe.Path != dir {
		t.Fatalf("world-writable, writable mount: err = %v, want a PermissionError for %s", err, dir)
	}
	orig := readOnlyMount
	t.Cleanup(func() { readOnlyMount = orig })
	readOnlyMount = func(p string) bool { return p == dir || filepath.Dir(p) == dir } // stands for a read-only mount at dir
	if err := CheckPermissions(dir); err != nil {
		t.Fatalf("world-writable but read-only mount: %v", err)
	}
	if _, err := Load(dir, Options{}); err != nil {
		t.Fatalf("load through the symlinks: %v", err)
	}
}
