package chaos

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/internal/dockertest"
)

// shopImage is the shop binary in a FROM-scratch image (entrypoint /app).
func shopImage(t *testing.T) string {
	return dockertest.BuildGoImage(t, "ares-chaos-shop:test", "./shop/cmd/shop", "")
}

// metric reads one unlabelled gauge from the shop's /metrics (served on its public port,
// which the faults do not slow or fail).
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	code, body, err := dockertest.Get(addr, "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// The shop faults go through the shop's admin port, reached with `shop fault` run by docker
// exec: the admin port is not published, only the public one (for /metrics).
func TestShopFaultsAreInjectedAndReverted(t *testing.T) {
	label, agent, rec := scope(t, false)
	id := dockertest.Run(t, dockertest.Spec{Name: name(t, "shop"), Image: shopImage(t), Cmd: []string{"gateway"},
		Env: []string{"SHOP_LOG_LEVEL=warn"}, Labels: labels(label, "gateway"), Publish: true})
	addr := dockertest.HostPort(t, id)
	ctx := context.Background()

	for _, tc := range []struct {
		kind   Kind
		value  float64
		metric string
		want   float64
	}{
		{Latency, 250, "shop_fault_latency_seconds", 0.25},
		{Errors, 40, "shop_fault_fail_ratio", 0.4},
		{CPU, 1, "shop_fault_burn_cores", 1},
		{Leak, 8, "shop_fault_leak_rate_bytes_per_second", 8e6},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			inj, err := agent.Inject(ctx, Fault{Kind: tc.kind, Service: "gateway", Value: tc.value, Duration: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if got := metric(t, addr, tc.metric); got != tc.want {
				t.Fatalf("%s = %g while injected, want %g", tc.metric, got, tc.want)
			}
			if tc.kind == Leak {
				dockertest.Eventually(t, 10*time.Second, "the leak holds memory", func() bool {
					return metric(t, addr, "shop_fault_leaked_bytes") > 0
				})
			}
			if err := inj.Revert(ctx); err != nil {
				t.Fatal(err)
			}
			if got := metric(t, addr, tc.metric); got != 0 {
				t.Fatalf("%s = %g after the revert, want 0", tc.metric, got)
			}
			if tc.kind == Leak {
				if got := metric(t, addr, "shop_fault_leaked_bytes"); got != 0 {
					t.Fatalf("leaked bytes %g after the revert: the memory was not freed", got)
				}
			}
		})
	}

	// Reverting a leak frees its memory without clearing another fault active beside it.
	lat, err := agent.Inject(ctx, Fault{Kind: Latency, Service: "gateway", Value: 100, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	leak, err := agent.Inject(ctx, Fault{Kind: Leak, Service: "gateway", Value: 4, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := leak.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, addr, "shop_fault_latency_seconds"); got != 0.1 {
		t.Fatalf("latency %g after the leak's revert, want 0.1 kept", got)
	}
	if err := agent.RevertAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, addr, "shop_fault_latency_seconds"); got != 0 || lat.Err() != nil {
		t.Fatalf("latency %g after RevertAll (err %v)", got, lat.Err())
	}
	if n := len(rec.kinds()); n < 12 {
		t.Errorf("only %d events for 6 injections and reverts", n)
	}
}

// A fault whose duration ends is reverted by itself.
func TestShopFaultEndsAfterItsDuration(t *testing.T) {
	label, agent, _ := scope(t, false)
	id := dockertest.Run(t, dockertest.Spec{Name: name(t, "shopdur"), Image: shopImage(t), Cmd: []string{"gateway"},
		Env: []string{"SHOP_LOG_LEVEL=warn"}, Labels: labels(label, "gateway"), Publish: true})
	addr := dockertest.HostPort(t, id)
	inj, err := agent.Inject(context.Background(), Fault{Kind: Errors, Service: "gateway", Value: 100, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := dockertest.Get(addr, "/healthz"); code != 500 {
		t.Errorf("GET /healthz during errors 100%%: %d, want 500", code)
	}
	select {
	case <-inj.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the fault was not reverted after its duration")
	}
	if got := metric(t, addr, "shop_fault_fail_ratio"); got != 0 || inj.Err() != nil {
		t.Fatalf("fail ratio %g after the duration (err %v)", got, inj.Err())
	}
}
