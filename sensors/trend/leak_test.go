package trend_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
	"github.com/ares-sre/ares/sensors/docker"
	"github.com/ares-sre/ares/sensors/trend"
)

// TestLeakingContainer runs a test server limited to 64 MiB that leaks 4 MiB every 300 ms,
// collects it with the docker sensor at the same pace, and expects a positive slope and a
// finite seconds_to_mem_limit that shrinks as the container approaches its limit.
func TestLeakingContainer(t *testing.T) {
	t.Parallel()
	scope := strconv.FormatInt(time.Now().UnixNano(), 36)
	const limit = 64 << 20
	img := dockertest.BuildGoImage(t, "ares-testserver:nohealthcheck", "./tests/testserver", "")
	id := dockertest.Run(t, dockertest.Spec{
		Name: "ares-trend-leak-" + scope, Image: img, Publish: true, MemLimit: limit,
		Labels: map[string]string{"ares.test.trend": scope, docker.LabelEnable: "true", docker.LabelService: "leaky"},
	})
	addr := dockertest.HostPort(t, id)
	dockertest.Eventually(t, 15*time.Second, "test server answers", func() bool {
		code, _, err := dockertest.Get(addr, "/health")
		return err == nil && code == 200
	})

	d := docker.New(dockertest.Client(t), docker.Options{Labels: []string{"ares.test.trend=" + scope}}, nil)
	// Where the cgroup files are not readable, memory comes from the stats stream Watch keeps.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Watch(ctx, func(string) {}) })
	defer func() { cancel(); wg.Wait() }()

	a := trend.New(trend.Options{})
	var toLimit []float64
	var last *engine.Trend
	// 10 leaks of 4 MiB: about 45 MiB in use at the end, short of the limit.
	for i := range 10 {
		if code, _, err := dockertest.Get(addr, "/leak?mb=4"); err != nil || code != 200 {
			t.Fatalf("leak: %d %v", code, err)
		}
		f := engine.NewFacts(uint64(i), time.Now())
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := d.Collect(cctx, f)
		ccancel()
		if err != nil {
			t.Fatalf("docker collect: %v", err)
		}
		if err := a.Analyze(ctx, f); err != nil {
			t.Fatal(err)
		}
		svc := f.Services["leaky"]
		if svc == nil || len(svc.Replicas) != 1 {
			t.Fatalf("services = %v, want leaky with one replica", f.Services)
		}
		r := svc.Replicas[0]
		if r.Trend != nil {
			last = r.Trend
			secs := "null"
			if r.Trend.SecondsToMemLimit != nil {
				toLimit = append(toLimit, *r.Trend.SecondsToMemLimit)
				secs = strconv.FormatFloat(*r.Trend.SecondsToMemLimit, 'f', 1, 64)
			}
			t.Logf("mem %5.1f MiB of %d: slope %6.2f MiB/s, seconds_to_mem_limit %s",
				float64(r.MemBytes)/(1<<20), r.MemLimitBytes>>20, r.Trend.MemSlopeBytesPerS/(1<<20), secs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if last == nil || last.MemSlopeBytesPerS <= 0 {
		t.Fatalf("trend = %+v, want a positive slope", last)
	}
	if len(toLimit) < 2 {
		t.Fatalf("seconds_to_mem_limit finite %d times, want at least 2", len(toLimit))
	}
	if first, end := toLimit[0], toLimit[len(toLimit)-1]; end >= first {
		t.Errorf("seconds_to_mem_limit went from %.1f to %.1f, want it to shrink", first, end)
	}
}
