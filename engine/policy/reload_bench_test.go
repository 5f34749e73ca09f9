package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkHotReload measures, with the default pack and 100 services, the time from writing a
// policy file to the new revision being live and evaluated once. Target: ≤ 250 ms.
func BenchmarkHotReload(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join("..", "..", "policies")
	entries, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		writeFiles(b, dir, map[string]string{e.Name(): string(raw)})
	}
	w, err := NewWatcher(dir, Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // the watch is in place
	f := genFacts(rand.New(rand.NewPCG(3, 4)), 100, 1)
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		before := w.Current().Revision()
		start := time.Now()
		writeFiles(b, dir, map[string]string{"extra.rego": fmt.Sprintf("package ares\n\nbench_marker := %d\n", i)})
		for w.Current().Revision() == before {
			if time.Since(start) > 5*time.Second {
				b.Fatal("no reload within 5s")
			}
			time.Sleep(time.Millisecond)
		}
		if _, _, err := w.Current().Evaluate(ctx, f); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/reload")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N)/250, "ratio-to-250ms-target")
}
