package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/internal/dockertest"
	"github.com/ares-sre/ares/sensors/anomaly"
	dockersensor "github.com/ares-sre/ares/sensors/docker"
	"github.com/ares-sre/ares/sensors/logs"
	"github.com/ares-sre/ares/sensors/metrics"
	"github.com/ares-sre/ares/sensors/probe"
	"github.com/ares-sre/ares/sensors/trend"
)

// daemonCPU is the CPU time used so far by the Docker daemon, containerd and the container
// shims, read from /proc.
func daemonCPU(b *testing.B) time.Duration {
	b.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		switch c := strings.TrimSpace(string(comm)); {
		case c == "dockerd", c == "containerd", strings.HasPrefix(c, "containerd-shim"):
		default:
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the ")" that ends comm: state is field 3; utime and stime are 14 and 15.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fleet is 50 labelled test containers, one service each, exporting /metrics and answering a
// health probe through ports published on 127.0.0.1, for the benchmarks of a whole ARES.
type fleet struct {
	scope   string
	targets map[string]string // service → probe URL
}

func newFleet(b *testing.B, n int) fleet {
	image := dockertest.BuildGoImage(b, "ares-testserver-nohc:test", "./tests/testserver", "")
	f := fleet{scope: fmt.Sprintf("res-%d", time.Now().UnixNano()%1e6), targets: map[string]string{}}
	for i := range n {
		svc := fmt.Sprintf("svc%02d", i)
		id := dockertest.Run(b, dockertest.Spec{Name: fmt.Sprintf("ares-res-%s-%02d", f.scope, i), Image: image, Publish: true,
			Labels: map[string]string{"ares.enable": "true", "ares.service": svc, "ares.test.scope": f.scope, "ares.metrics.port": "8080"}})
		f.targets[svc] = "http://" + dockertest.HostPort(b, id) + "/health"
	}
	return f
}

// aresOver builds ARES as `ares run` does, with every sensor and analyzer, over the fleet, the
// docker sensor reading CPU and memory in the given stats mode.
func aresOver(b *testing.B, f fleet, stats string, interval, scrapeEvery time.Duration) *engine.Engine {
	cli := dockertest.Client(b)
	labels := []string{"ares.test.scope=" + f.scope}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pol, err := policy.NewWatcher(filepath.Join(dockertest.ModuleRoot(b), "policies"), policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := metrics.New(cli, metrics.Options{Labels: labels, Networks: []string{"none-" + f.scope}, Interval: scrapeEvery}, log)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Interval: interval, DryRun: true,
		Sensors: []engine.Sensor{
			dockersensor.New(cli, dockersensor.Options{Stats: stats, Labels: labels}, log), m,
			probe.New(cli, probe.Options{Targets: f.targets, Labels: labels}, log),
			logs.New(cli, logs.Options{Labels: labels}, log),
		},
		Analyzers: []engine.Analyzer{m.Replicas(), trend.New(trend.Options{}), anomaly.NewAnalyzer(anomaly.Options{}, log)},
		Policy:    pol, Governor: governor.New(governor.Options{}), Journal: journalFunc(func(engine.TickRecord) {}), Log: log})
	if err != nil {
		b.Fatal(err)
	}
	return eng
}

// BenchmarkGather50 is one full gather (every sensor and analyzer) over 50 containers: wall
// time and allocations per tick.
func BenchmarkGather50(b *testing.B) {
	f := newFleet(b, 50)
	eng := aresOver(b, f, dockersensor.StatsCgroup, time.Hour, 0) // every gather scrapes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }() // the watchers (events, logs) and a first tick
	defer func() { cancel(); <-done }()
	time.Sleep(3 * time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		fs := eng.Gather(ctx, uint64(i+2), time.Now())
		if len(fs.Services) != 50 || !fs.Sensors["metrics"].OK || !fs.Sensors["probe"].OK {
			b.Fatalf("gather: %d services, sensors %+v", len(fs.Services), fs.Sensors)
		}
	}
}

// BenchmarkResourceUsage runs a whole ARES (every sensor and analyzer as ares.yaml configures
// them, metrics scraped every 5 s; dry run) at a 1 s tick
// over 50 labelled containers for 20 s, once with CPU and memory from the cgroup files and once
// from Docker's streaming stats API, and reports the CPU used by ARES and by the Docker daemon
// (dockerd, containerd and the shims) in percent of one core. Target: under 3 % in total with
// cgroup files, against ~20 % for the stats API.
func BenchmarkResourceUsage(b *testing.B) {
	const window = 20 * time.Second
	f := newFleet(b, 50)
	measure := func(mode string) (ares, daemon float64) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		eng := aresOver(b, f, mode, time.Second, 5*time.Second) // as ares.yaml: scrapes every 5 s
		done := make(chan struct{})
		go func() { _ = eng.Run(ctx); close(done) }()
		time.Sleep(3 * time.Second) // streams connected, caches warm
		s0, d0, t0 := selfCPU(), daemonCPU(b), time.Now()
		time.Sleep(window)
		s1, d1, el := selfCPU(), daemonCPU(b), time.Since(t0)
		cancel()
		<-done
		return 100 * float64(s1-s0) / float64(el), 100 * float64(d1-d0) / float64(el)
	}
	for range b.N {
		aresCg, daemonCg := measure(dockersensor.StatsCgroup)
		aresSt, daemonSt := measure(dockersensor.StatsStream)
		b.ReportMetric(aresCg, "cgroup-ares-%core")
		b.ReportMetric(daemonCg, "cgroup-daemon-%core")
		b.ReportMetric(aresCg+daemonCg, "cgroup-total-%core")
		b.ReportMetric(aresSt+daemonSt, "stream-total-%core")
		b.ReportMetric((aresSt+daemonSt)/(aresCg+daemonCg), "stream/cgroup-x")
	}
}
