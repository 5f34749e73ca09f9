package docker

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// BenchmarkRestartExited measures the fast path after a die event: from calling Act(restart)
// on an exited replica to the ContainerStart request leaving (start-sent-ms), to ContainerStart
// returning (start-returned-ms), and to /health answering through the published port
// (health-ms). The container publishes a fixed host port so that no inspect sits in the way.
func BenchmarkRestartExited(b *testing.B) {
	base := dockertest.Client(b) // skips without an engine
	img := dockertest.TestServer(b)

	var sent, returned atomic.Int64
	cli, err := client.New(client.FromEnv,
		client.WithHTTPRequestHook(func(r *http.Request) error {
			if strings.HasSuffix(r.URL.Path, "/start") {
				sent.Store(time.Now().UnixNano())
			}
			return nil
		}),
		client.WithHTTPResponseHook(func(r *http.Response) {
			if r.Request != nil && strings.HasSuffix(r.Request.URL.Path, "/start") {
				returned.Store(time.Now().UnixNano())
			}
		}))
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		b.Fatal(err)
	}

	port := freePort(b)
	name := "ares-bench-" + strconv.Itoa(port)
	p := network.MustParsePort("8080/tcp")
	res, err := base.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{Image: img, ExposedPorts: network.PortSet{p: {}},
			Labels: map[string]string{dockertest.TestLabel: "1", LabelEnable: "true", LabelService: name}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer dockertest.Remove(res.ID)
	if _, err := base.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		b.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitHealth(b, addr, 10*time.Second)

	act := New(cli, Options{}, nil)
	action := engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: name, Replica: name, Reason: "bench"}, Verdict: engine.VerdictAdmit}
	var toSent, toReturned, toHealth time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dockertest.Crash(b, res.ID)
		wait, err := base.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		for err == nil && wait.Container.State.Running {
			time.Sleep(5 * time.Millisecond)
			wait, err = base.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		t0 := time.Now()
		if _, err := act.Act(ctx, action); err != nil {
			b.Fatal(err)
		}
		toSent += time.Duration(sent.Load() - t0.UnixNano())
		toReturned += time.Duration(returned.Load() - t0.UnixNano())
		waitHealth(b, addr, 10*time.Second)
		toHealth += time.Since(t0)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(toSent), "start-sent-ms")
	b.ReportMetric(ms(toReturned), "start-returned-ms")
	b.ReportMetric(ms(toHealth), "health-ms")
}

// waitHealth polls GET /health every 2 ms until it answers 200.
func waitHealth(b *testing.B, addr string, timeout time.Duration) {
	c := http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("%s/health did not answer within %s", addr, timeout)
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
