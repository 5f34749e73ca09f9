package metrics

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// BenchmarkCollect50 measures one Collect over 50 running test servers in 10 services, each
// scraped through its published 127.0.0.1 port (about 3,500 exposition lines in all, the Go
// runtime's metrics included), in steady state: every replica has a previous reading, so each
// Collect lists the containers, scrapes and parses all 50, and derives every replica's and
// service's metrics. Besides ns/op and allocs/op it reports the median and the slowest
// collect, and the CPU time of the whole test process per collect (cpu-ns/op).
func BenchmarkCollect50(b *testing.B) {
	const n = 50
	img := dockertest.BuildGoImage(b, noHealthImage, "./tests/testserver", "")
	start := time.Now()
	ids := make([]string, n)
	for i := range n {
		ids[i] = dockertest.Run(b, dockertest.Spec{
			Name: fmt.Sprintf("ares-metrics-%s-bench-%02d", run, i), Image: img, Publish: true,
			Labels: map[string]string{scopeLabel: scope(b), LabelEnable: "true",
				LabelService: fmt.Sprintf("bench-%d", i%10), LabelMetricsPort: "8080"},
		})
	}
	for _, id := range ids {
		addr := waitMetrics(b, id)
		// Some traffic, so that the histograms and counters have series to parse.
		if err := send(addr, "/status?code=200", "/status?code=500", "/slow?ms=1"); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("started %d containers in %s", n, time.Since(start).Round(time.Millisecond))

	sc := scope(b)
	b.Run("scrape", func(b *testing.B) { benchCollect(b, sc, n) })
}

func benchCollect(b *testing.B, sc string, n int) {
	s, err := New(dockertest.Client(b), Options{Labels: []string{scopeLabel + "=" + sc}, Networks: []string{noNetwork}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	collect := func(tick uint64) *engine.Facts {
		f := engine.NewFacts(tick, time.Now())
		if err := s.Collect(ctx, f); err != nil {
			b.Fatal(err)
		}
		return f
	}
	collect(0)
	if f := collect(1); len(f.Services) != 10 || len(s.prev) != n {
		b.Fatalf("%d services, %d replicas scraped; want 10, %d", len(f.Services), len(s.prev), n)
	}

	durs := make([]time.Duration, b.N)
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		collect(uint64(i + 2))
		durs[i] = time.Since(t0)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)-1].Nanoseconds()), "max-ns")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(n), "replicas")
}

// cpuTime is the user and system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
