// Package e2e tests the shop as it ships: FROM-scratch containers of the shop binary on a
// Docker network, talking to the host's PostgreSQL and Redis through host-gateway, with only
// the gateway published (on 127.0.0.1); and the web UI in headless Chromium.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/internal/dockertest"
	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/testenv"
)

const image = "ares-shop:e2e"

// stack is the shop running in containers.
type stack struct {
	shop    *testenv.Shop // only DB, DSN, Redis and Keys are used: the schema and key prefix
	net     string
	env     []string
	gateway string // 127.0.0.1:port
	ids     map[string]string
}

func startStack(t *testing.T, replicas map[string]int) *stack {
	t.Helper()
	cli := dockertest.Client(t)
	db, dsn := testenv.Schema(t)
	rdb, keys := testenv.Redis(t)
	dockertest.BuildGoImage(t, image, "./shop/cmd/shop",
		`HEALTHCHECK --interval=1s --timeout=1s --start-period=5s --retries=3 CMD ["/shop","healthcheck"]`)
	s := &stack{
		shop: &testenv.Shop{DB: db, DSN: dsn, Redis: rdb, Keys: keys},
		net:  dockertest.Network(t, "shop-e2e"),
		ids:  map[string]string{},
	}
	s.env = []string{
		"SHOP_PG_DSN=" + viaHostGateway(t, dsn),
		"SHOP_REDIS_ADDR=host.docker.internal:" + port(testenv.RedisAddr()),
		"SHOP_REDIS_PREFIX=" + keys.Prefix,
		"SHOP_LOG_LEVEL=debug",
	}
	for _, svc := range []string{"user", "product", "cart", "order", "gateway"} {
		n := max(replicas[svc], 1)
		for i := 1; i <= n; i++ {
			name := fmt.Sprintf("%s-%s-%d", s.net, svc, i)
			s.ids[fmt.Sprintf("%s-%d", svc, i)] = s.run(t, cli, name, svc, svc == "gateway")
		}
	}
	s.gateway = dockertest.HostPort(t, s.ids["gateway-1"])
	dockertest.Eventually(t, 90*time.Second, "the gateway is ready (all services answer)", func() bool {
		code, _, err := dockertest.Get(s.gateway, "/readyz")
		return err == nil && code == http.StatusOK
	})
	return s
}

// run starts one shop container labelled ares.test=1, removed when the test ends.
func (s *stack) run(t *testing.T, cli *client.Client, name, svc string, publish bool) string {
	t.Helper()
	p8080 := network.MustParsePort("8080/tcp")
	cfg := &container.Config{Image: image, Cmd: []string{svc}, Env: s.env,
		Labels:       map[string]string{dockertest.TestLabel: "1", "ares.test.network": s.net, "ares.service": svc},
		ExposedPorts: network.PortSet{p8080: {}}}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(s.net),
		ExtraHosts: []string{"host.docker.internal:host-gateway"}}
	hc.Memory = 256 << 20
	if publish {
		hc.PortBindings = network.PortMap{p8080: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.net: {Aliases: []string{svc}}}}
	ctx := context.Background()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: name})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs(t, cli, name)
		}
		dockertest.Remove(res.ID)
	})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return res.ID
}

func logs(t *testing.T, cli *client.Client, name string) {
	rc, err := cli.ContainerLogs(context.Background(), name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return
	}
	defer rc.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	n, _ := rc.Read(buf)
	b.Write(buf[:n])
	t.Logf("logs of %s:\n%s", name, b.String())
}

// viaHostGateway rewrites a DSN for 127.0.0.1 into one for host.docker.internal.
func viaHostGateway(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("dsn: %v", err)
	}
	u.Host = net.JoinHostPort("host.docker.internal", port(u.Host))
	return u.String()
}

func port(hostport string) string {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "5432"
	}
	return p
}

func call(t *testing.T, method, url, body string, h ...string) (int, []byte) {
	t.Helper()
	code, _, data := testenv.Call(t, method, url, body, h...)
	return code, data
}

func TestShopInContainers(t *testing.T) {
	s := startStack(t, map[string]int{"product": 2})
	g := "http://" + s.gateway

	sess := testenv.User(t, g)
	bearer := []string{"Authorization", "Bearer " + sess.Token}
	if code, data := call(t, "POST", g+"/api/cart/items", `{"product_id":3,"quantity":2}`, bearer...); code != http.StatusOK {
		t.Fatalf("add to cart: %d %s", code, data)
	}
	code, data := call(t, "POST", g+"/api/orders/checkout", "", bearer...)
	if code != http.StatusCreated {
		t.Fatalf("checkout: %d %s", code, data)
	}
	var o api.Order
	testenv.Decode(t, data, &o)
	var user, qty int64
	err := s.shop.DB.QueryRow(context.Background(), `SELECT o.user_id, i.quantity FROM orders o
		JOIN order_items i ON i.order_id = o.id WHERE o.id = $1 AND i.product_id = 3`, o.ID).Scan(&user, &qty)
	if err != nil || user != sess.User.ID || qty != 2 {
		t.Fatalf("order row in PostgreSQL: user %d qty %d err %v", user, qty, err)
	}
	t.Logf("order %d found in PostgreSQL", o.ID)

	// Kill one product replica while requests flow through the gateway: the other serves,
	// and no request fails. Bounded: 300 requests.
	const total, killAt = 300, 100
	failed := 0
	for i := range total {
		if i == killAt {
			dockertest.Crash(t, s.ids["product-1"]) // a crash: a Docker API kill would be an operator's stop
			t.Logf("killed product-1 after %d requests", i)
		}
		code, _, err := dockertest.Get(s.gateway, "/api/products/"+fmt.Sprint(1+i%12))
		if err != nil || code != http.StatusOK {
			failed++
			t.Errorf("request %d: %d %v", i, code, err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d requests failed around the kill", failed, total)
	}
	if st, _ := dockertest.State(t, s.ids["product-1"]); st == "running" {
		t.Errorf("product-1 still running")
	}
	// The session and the cart path still work with one product replica.
	if code, data := call(t, "POST", g+"/api/cart/items", `{"product_id":4,"quantity":1}`, bearer...); code != http.StatusOK {
		t.Errorf("add to cart after the kill: %d %s", code, data)
	}
}
