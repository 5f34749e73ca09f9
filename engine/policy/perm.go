package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Whoever can write the policy directory decides which containers ARES restarts, recycles
// and scales, so ARES refuses to load policies that a user other than their owner can change,
// as sshd's StrictModes refuses an authorized_keys file that others can write:
//
//   - the directory, every directory below it and every policy and data file ARES reads
//     must be owned by root or by the user ARES runs as, and be neither group- nor
//     world-writable;
//   - each directory above it, up to /, must be owned by root or by that user, and be neither
//     group- nor world-writable unless its sticky bit is set (like /tmp, where other users
//     cannot rename or remove what is not theirs).
//
// Options.InsecureDir (ares run --insecure-policy-dir, policy.insecure_dir) skips the check,
// for development only.

// PermissionError is a policy path that users other than its owner could change.
type PermissionError struct {
	Path   string // the offending file or directory
	Reason string // e.g. "is group-writable (mode 0775)"
	Fix    string // the command that fixes it
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("policy: %s %s: whoever can write it decides what ARES does to your containers; fix: %s "+
		"(or, for development only, --insecure-policy-dir / policy.insecure_dir: true)", e.Path, e.Reason, e.Fix)
}

// CheckPermissions returns a *PermissionError for the first path of the policy directory dir
// (the directory, what ARES reads below it, and the directories above it) that a user other
// than its owner could change. A directory that does not exist is not an error here: loading
// it reports that.
func CheckPermissions(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("policy: %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("policy: %s: %w", dir, err)
	}
	uid := os.Geteuid()
	for p := filepath.Dir(real); ; p = filepath.Dir(p) {
		if err := checkPath(p, uid, true); err != nil {
			return err
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	return filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != real {
				return nil // removed while walking
			}
			return fmt.Errorf("policy: %w", err)
		}
		name := d.Name()
		if path != real && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && !isPolicyFile(name) {
			return nil
		}
		return checkPath(path, uid, false)
	})
}

// checkPath checks one path (following symbolic links: what is read is what counts). Above
// the policy directory a sticky, shared directory such as /tmp is accepted.
func checkPath(path string, uid int, above bool) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	owner, ok := ownerOf(fi)
	if !ok {
		return nil // no owners on this system
	}
	if owner != 0 && owner != uid {
		return &PermissionError{Path: path, Reason: fmt.Sprintf("is owned by uid %d, neither root nor the user ARES runs as (uid %d)", owner, uid),
			Fix: fmt.Sprintf("chown %d %s", uid, path)}
	}
	mode := fi.Mode()
	if above && mode&os.ModeSticky != 0 {
		return nil
	}
	perm := mode.Perm()
	var who string
	switch {
	case perm&0o002 != 0:
		who = "world-writable"
	case perm&0o020 != 0:
		who = "group-writable"
	default:
		return nil
	}
	if readOnlyMount(path) {
		return nil // mode bits grant no writes on a read-only mount (a Kubernetes ConfigMap volume's root is 0777)
	}
	return &PermissionError{Path: path, Reason: fmt.Sprintf("is %s (mode %04o)", who, perm), Fix: "chmod go-w " + path}
}
