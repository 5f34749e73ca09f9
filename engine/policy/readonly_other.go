//go:build !linux

package policy

// readOnlyMount is false where read-only mounts are not detected: mode bits decide.
var readOnlyMount = func(string) bool { return false }
