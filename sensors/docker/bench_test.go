package docker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// BenchmarkCollect50 measures Collect over 50 running labelled containers in steady state
// (cache warm; a full re-inspect every ResyncEvery=10 collects is part of the average), with
// CPU and memory from cgroup files and from the streaming stats API. Besides ns/op and
// allocs/op it reports the median and the slowest collect.
//
// The containers run the test server without its 500 ms HEALTHCHECK, so that 100 health
// execs a second do not turn the benchmark into one of dockerd.
func BenchmarkCollect50(b *testing.B) {
	const n = 50
	image := dockertest.BuildGoImage(b, "ares-testserver:nohealthcheck", "./tests/testserver", "")
	sc := scope(b)
	start := time.Now()
	for i := range n {
		dockertest.Run(b, dockertest.Spec{
			Name:   name(fmt.Sprintf("bench-%02d", i)),
			Image:  image,
			Labels: labelsIn(sc, LabelService, fmt.Sprintf("bench-%d", i%10)),
		})
	}
	b.Logf("started %d containers in %s", n, time.Since(start).Round(time.Millisecond))
	// As ARES runs: events live, so Collect reads the cache and lists at most every ListEvery.
	for _, mode := range []string{StatsCgroup, StatsStream} {
		b.Run(mode, func(b *testing.B) { benchCollect(b, sc, mode, n, true) })
	}
	// Without the event stream every Collect lists the containers (docker.events: false).
	b.Run(StatsCgroup+"-no-events", func(b *testing.B) { benchCollect(b, sc, StatsCgroup, n, false) })
}

func benchCollect(b *testing.B, sc, mode string, n int, events bool) {
	s := newSensorIn(b, sc, Options{Stats: mode}, slog.LevelWarn)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if events {
		wg.Go(func() { _ = s.Watch(ctx, func(string) {}) })
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	dockertest.Eventually(b, 30*time.Second, "every replica reports memory", func() bool {
		f := collect(b, s)
		measured := 0
		for _, svc := range f.Services {
			for _, r := range svc.Replicas {
				if r.MemBytes > 0 {
					measured++
				}
			}
		}
		return measured == n
	})

	durs := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		f := engine.NewFacts(uint64(i), t0)
		if err := s.Collect(ctx, f); err != nil {
			b.Fatal(err)
		}
		durs[i] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)-1].Nanoseconds()), "max-ns")
	b.ReportMetric(float64(n), "replicas")
}
