package engine

import (
	"os"
	"runtime/debug"
)

// GCPercent is ARES's default GOGC. Most of a tick's allocations are OPA's evaluation
// bindings, short-lived: collecting less often made the policy evaluation of 1000 changed
// services about 35 % faster than Go's default of 100 (docs/performance.md; 6 % faster than
// 400), for a heap that peaked at 99 MB there (31 MB at 100, 67 MB at 400).
const GCPercent = 800

// TuneGC sets the garbage collector's target to GCPercent unless GOGC is set in the
// environment, which wins. `ares run` calls it at start, and the policy benchmarks too, so
// that they measure what the daemon does.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
