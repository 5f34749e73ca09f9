package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ares-sre/ares/chaos/scenario"
	"github.com/ares-sre/ares/internal/dockertest"
)

// The seed's scenarios (tests/scenarios/*.yaml), short versions (`ares chaos run --short`),
// against the shop in FROM-scratch containers (the host's PostgreSQL and Redis, like shop/e2e)
// with `ares run` live and its dashboard API. Each test starts only the services its scenario
// touches, scoped by a label of its own, and runs one scenario file through the real binary.

const scenarioShopImage = "ares-shop:scenarios"

// scenarioShop is a shop stack for one scenario.
type scenarioShop struct {
	net     string
	env     []string
	labels  map[string]string
	gateway string // 127.0.0.1:port, "" without a gateway
}

// shopSvc is one service of a scenario's stack.
type shopSvc struct {
	name     string // the shop service the replicas run
	as       string // their ares.service label and network alias; "" is name
	replicas int
	memLimit int64 // default 256 MiB
	// metrics labels the replicas for ARES's metrics sensor (the shop's metric names) and
	// publishes their port on loopback, where ARES on the host scrapes it.
	metrics bool
}

func (svc shopSvc) service() string {
	if svc.as != "" {
		return svc.as
	}
	return svc.name
}

func scenarioPostgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SHOP_TEST_PG_DSN")
	if dsn == "" {
		dsn = "postgres://shop:shop@127.0.0.1:5432/shop?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		dockertest.Unavailable(t, "postgresql", err)
	}
	schema := fmt.Sprintf("scenario_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		t.Fatalf("create schema: %v", err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(u.Host)
	u.Host = net.JoinHostPort("host.docker.internal", port)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func scenarioRedis(t testing.TB) (addr, prefix string) {
	t.Helper()
	addr = os.Getenv("SHOP_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		dockertest.Unavailable(t, "redis", err)
	}
	prefix = fmt.Sprintf("scenario_%d_%d:", os.Getpid(), time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	_, port, _ := net.SplitHostPort(addr)
	return "host.docker.internal:" + port, prefix
}

// startScenarioShop runs the services (the gateway published on 127.0.0.1) labelled
// ares.enable=true plus labels, and waits until every replica is healthy.
func startScenarioShop(t testing.TB, labels map[string]string, svcs ...shopSvc) *scenarioShop {
	t.Helper()
	dockertest.Client(t) // skip or fail loudly without an engine
	dsn := scenarioPostgres(t)
	raddr, prefix := scenarioRedis(t)
	dockertest.BuildGoImage(t, scenarioShopImage, "./shop/cmd/shop",
		`HEALTHCHECK --interval=1s --timeout=1s --start-period=5s --retries=3 CMD ["/app","healthcheck"]`)
	s := &scenarioShop{net: dockertest.Network(t, "scenario"), labels: labels}
	s.env = []string{"SHOP_PG_DSN=" + dsn, "SHOP_REDIS_ADDR=" + raddr, "SHOP_REDIS_PREFIX=" + prefix, "SHOP_LOG_LEVEL=info"}
	var ids []string
	for _, svc := range svcs {
		for i := 1; i <= max(svc.replicas, 1); i++ {
			id := s.run(t, fmt.Sprintf("%s-%s-%d", s.net, svc.service(), i), svc)
			ids = append(ids, id)
			if svc.name == "gateway" && s.gateway == "" {
				s.gateway = dockertest.HostPort(t, id)
			}
		}
	}
	for _, id := range ids {
		dockertest.Eventually(t, 60*time.Second, "shop replica healthy", func() bool {
			st, h := dockertest.State(t, id)
			return st == "running" && h == "healthy"
		})
	}
	return s
}

func (s *scenarioShop) run(t testing.TB, name string, svc shopSvc) string {
	t.Helper()
	labels := map[string]string{"ares.service": svc.service()}
	for k, v := range s.labels {
		labels[k] = v
	}
	if svc.metrics {
		labels["ares.metrics.port"] = "8080"
		labels["ares.metrics.requests"] = "shop_http_requests_total"
		labels["ares.metrics.duration"] = "shop_http_request_duration_seconds"
	}
	mem := svc.memLimit
	if mem == 0 {
		mem = 256 << 20
	}
	return dockertest.Run(t, dockertest.Spec{Name: name, Image: scenarioShopImage, Cmd: []string{svc.name},
		Env: s.env, Labels: labels, Network: s.net, Alias: svc.service(), MemLimit: mem,
		Publish: svc.name == "gateway" || svc.metrics, ExtraHosts: []string{"host.docker.internal:host-gateway"}})
}

// scenarioPolicies copies the default pack with its cooldown_s set to cooldown seconds: the
// short versions of the scenarios that need two actions on one service (scale_out then
// scale_in, a crash loop's restarts) run on a faster clock, like the governor's env below.
func scenarioPolicies(t testing.TB, cooldown int) string {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), dir)
	p := filepath.Join(dir, "data.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(string(raw), `"cooldown_s": 60`, fmt.Sprintf(`"cooldown_s": %d`, cooldown), 1)
	if out == string(raw) {
		t.Fatal(`policies/data.json has no "cooldown_s": 60 to shorten`)
	}
	writePolicy(t, dir, "data.json", out)
	return dir
}

// startScenarioAres runs `ares run` scoped to label with its dashboard API on a free port and
// returns the API's base URL.
func startScenarioAres(t testing.TB, policies, label string, args ...string) (*aresProc, string) {
	t.Helper()
	addr := freeAddr(t)
	t.Setenv("ARES_DASHBOARD_LISTEN", addr)
	p := startAres(t, policies, label, args...)
	dockertest.Eventually(t, 20*time.Second, "ARES's API answers", func() bool {
		code, _, err := dockertest.Get(addr, "/api/v1/status")
		return err == nil && code == 200
	})
	return p, "http://" + addr
}

// runScenario runs `ares chaos run --short -o json FILE` and returns the report; the live
// timeline (stderr) is logged.
func runScenario(t testing.TB, file, aresURL, label string, s *scenarioShop) *scenario.Report {
	t.Helper()
	root := dockertest.ModuleRoot(t)
	args := []string{"chaos", "run", "--short", "-o", "json", "--config", filepath.Join(root, "ares.yaml"),
		"--ares", aresURL, "--label", label}
	if s.gateway != "" {
		args = append(args, "--target", "http://"+s.gateway)
	}
	args = append(args, filepath.Join(root, "tests", "scenarios", file))
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "ARES_METRICS_LISTEN=", "ARES_DASHBOARD_LISTEN=")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("ares chaos run %s:\n%s", file, stderr.String())
	var doc struct {
		Pass      bool               `json:"pass"`
		Scenarios []*scenario.Report `json:"scenarios"`
	}
	if jerr := json.Unmarshal([]byte(stdout.String()), &doc); jerr != nil || len(doc.Scenarios) != 1 {
		t.Fatalf("ares chaos run: %v; report: %v\n%s", err, jerr, stdout.String())
	}
	rep := doc.Scenarios[0]
	var text strings.Builder
	rep.WriteText(&text)
	t.Logf("report:%s", text.String())
	if doc.Pass != (err == nil) {
		t.Errorf("exit status %v does not match pass=%v", err, doc.Pass)
	}
	return rep
}

func requirePass(t *testing.T, rep *scenario.Report) {
	t.Helper()
	for _, r := range rep.Results {
		if !r.Pass {
			t.Errorf("%s: %s", r.Expectation, r.Detail)
		}
	}
	if rep.Error != "" {
		t.Errorf("run error: %s", rep.Error)
	}
	if !rep.Pass {
		t.Errorf("scenario %s failed", rep.Name)
	}
}

// Scenario 1: one of two product replicas is SIGKILLed under load through the gateway; ARES
// restarts it and the gateway serves on the other replica meanwhile.
func TestScenario1KillBackendReplica(t *testing.T) {
	label, labels := scope(t)
	shop := startScenarioShop(t, labels, shopSvc{name: "product", replicas: 2}, shopSvc{name: "gateway"})
	_, api := startScenarioAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label)
	rep := runScenario(t, "01-kill-backend.yaml", api, label, shop)
	requirePass(t, rep)
	if len(rep.Faults) != 1 || rep.Faults[0].TimeToDetect == nil || rep.Faults[0].TimeToRecover == nil {
		t.Fatalf("faults %+v: want one with both times", rep.Faults)
	}
	if rep.Load == nil || rep.Load.Requests == 0 {
		t.Errorf("no load report: %+v", rep.Load)
	}
}

// Scenario 2: a surge plus one core of CPU on product drives its mean CPU over the pack's
// 80 % → scale_out; the new replica serves through the gateway; once the burn ends, scale_in
// back to one replica. The pack's and the governor's cooldowns are shortened to 3 s so that
// the scale_in may follow within the short version.
func TestScenario2SurgeScalesOutAndIn(t *testing.T) {
	label, labels := scope(t)
	// product's metrics port is published on loopback: the runner reads each replica's
	// served requests there ("new replicas of product serve traffic"), scaled-out ones too.
	shop := startScenarioShop(t, labels, shopSvc{name: "product", metrics: true}, shopSvc{name: "gateway"})
	t.Setenv("ARES_GOVERNOR_COOLDOWN", "3s")
	_, api := startScenarioAres(t, scenarioPolicies(t, 3), label)
	rep := runScenario(t, "02-surge-scale.yaml", api, label, shop)
	requirePass(t, rep)
}

// Scenario 3: product leaks memory under a 64 MiB limit; ARES recycles it when it reaches 90 %
// of the limit while still growing (or right after the OOM kill).
func TestScenario3LeakIsRecycled(t *testing.T) {
	label, labels := scope(t)
	shop := startScenarioShop(t, labels, shopSvc{name: "product", memLimit: 64 << 20}, shopSvc{name: "gateway"})
	_, api := startScenarioAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label)
	rep := runScenario(t, "03-leak-recycle.yaml", api, label, shop)
	requirePass(t, rep)
}

// Scenario 4: 3 s of latency on product; its health check (1 s timeout in the test image) fails,
// ARES restarts the replica, and the p99 through the gateway is back under 300 ms.
func TestScenario4LatencyIsRestarted(t *testing.T) {
	label, labels := scope(t)
	shop := startScenarioShop(t, labels, shopSvc{name: "product"}, shopSvc{name: "gateway"})
	_, api := startScenarioAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label)
	rep := runScenario(t, "04-latency-restart.yaml", api, label, shop)
	requirePass(t, rep)
}

// Scenario 5: cart is killed again each time it runs; the governor backs off between restarts
// and escalates once, instead of restarting in a storm. Governor and pack run on a faster
// clock (back-off 1 s doubling to 2 s, cooldowns 1 s).
func TestScenario5CrashLoopBacksOffAndEscalates(t *testing.T) {
	label, labels := scope(t)
	shop := startScenarioShop(t, labels, shopSvc{name: "cart"})
	t.Setenv("ARES_GOVERNOR_COOLDOWN", "1s")
	t.Setenv("ARES_GOVERNOR_BACKOFF_INITIAL", "1s")
	t.Setenv("ARES_GOVERNOR_BACKOFF_MAX", "2s")
	t.Setenv("ARES_GOVERNOR_VERIFY_TIMEOUT", "5s")
	p, api := startScenarioAres(t, scenarioPolicies(t, 1), label)
	rep := runScenario(t, "05-crash-loop.yaml", api, label, shop)
	requirePass(t, rep)
	if t.Failed() {
		t.Logf("ARES actions: %v", p.actions(t, ""))
	}
}

// The dry-run pass: ARES in --dry-run decides a restart of a killed product replica and of a
// slow cart, a recycle of a leaking user and a scale_out of a busy order, and carries out
// nothing.
func TestScenarioDryRunDecidesAndChangesNothing(t *testing.T) {
	label, labels := scope(t)
	shop := startScenarioShop(t, labels, shopSvc{name: "product"}, shopSvc{name: "cart"},
		shopSvc{name: "user", memLimit: 128 << 20}, shopSvc{name: "order"})
	_, api := startScenarioAres(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), label, "--dry-run")
	rep := runScenario(t, "06-dry-run.yaml", api, label, shop)
	requirePass(t, rep)
	for _, a := range rep.Actions {
		if a.Verdict == "admit" {
			t.Errorf("dry run admitted %s %s", a.Action, a.Target())
		}
	}
}
