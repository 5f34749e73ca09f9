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
	dockersensor "github.com/ares-sre/ares/sensors/docker"
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

// BenchmarkResourceUsage runs ARES in-process at a 1 s tick over 50 labelled containers for
// 20 s, once reading CPU and memory from the cgroup files and once from Docker's streaming
// stats API, and reports the CPU used by ARES and by the Docker daemon (dockerd, containerd
// and shims) in percent of one core. Target: under 3 % in total with cgroup files, against
// ~20 % for the stats API.
func BenchmarkResourceUsage(b *testing.B) {
	const services = 50
	const window = 20 * time.Second
	image := dockertest.BuildGoImage(b, "ares-testserver-nohc:test", "./tests/testserver", "")
	scopeVal := fmt.Sprintf("res-%d", time.Now().UnixNano()%1e6)
	for i := range services {
		dockertest.Run(b, dockertest.Spec{Name: fmt.Sprintf("ares-res-%s-%02d", scopeVal, i), Image: image,
			Labels: map[string]string{"ares.enable": "true", "ares.service": fmt.Sprintf("svc%02d", i), "ares.test.scope": scopeVal}})
	}
	cli := dockertest.Client(b)
	labels := []string{"ares.test.scope=" + scopeVal}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pol, err := policy.NewWatcher(filepath.Join(dockertest.ModuleRoot(b), "policies"), policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	measure := func(mode string) (ares, daemon float64) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		eng, err := engine.New(engine.Options{Interval: time.Second, DryRun: true,
			Sensors: []engine.Sensor{dockersensor.New(cli, dockersensor.Options{Stats: mode, Labels: labels}, log)},
			Policy:  pol, Governor: governor.New(governor.Options{}), Journal: journalFunc(func(engine.TickRecord) {}), Log: log})
		if err != nil {
			b.Fatal(err)
		}
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
