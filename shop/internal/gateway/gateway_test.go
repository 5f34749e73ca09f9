package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/gateway"
	"github.com/ares-sre/ares/shop/internal/testenv"
)

func TestAPIThroughTheGateway(t *testing.T) {
	s := testenv.Start(t)
	g := s.Gateway
	sess := testenv.User(t, g)
	bearer := []string{"Authorization", "Bearer " + sess.Token}

	if code, _, data := testenv.Call(t, "GET", g+"/api/cart", ""); code != http.StatusUnauthorized {
		t.Errorf("cart without session: %d %s", code, data)
	}
	// A client cannot pose as a user by sending the internal header.
	if code, _, _ := testenv.Call(t, "GET", g+"/api/orders", "", api.HeaderUserID, "1"); code != http.StatusUnauthorized {
		t.Errorf("spoofed X-User-ID: %d, want 401", code)
	}
	if code, _, _ := testenv.Call(t, "PATCH", g+"/api/products/1", `{"stock":0}`, bearer...); code == http.StatusOK {
		t.Errorf("product writes are routed by the gateway")
	}
	if code, _, _ := testenv.Call(t, "GET", g+"/api/products", ""); code != http.StatusOK {
		t.Errorf("products: %d", code)
	}
	if code, _, data := testenv.Call(t, "POST", g+"/api/cart/items", `{"product_id":5,"quantity":1}`, bearer...); code != http.StatusOK {
		t.Fatalf("add: %d %s", code, data)
	}
	code, h, data := testenv.Call(t, "POST", g+"/api/orders/checkout", "", append(bearer, api.HeaderRequestID, "req-abc")...)
	if code != http.StatusCreated {
		t.Fatalf("checkout: %d %s", code, data)
	}
	if h.Get(api.HeaderRequestID) != "req-abc" {
		t.Errorf("request id not propagated: %q", h.Get(api.HeaderRequestID))
	}
	var o api.Order
	testenv.Decode(t, data, &o)
	var owner int64
	if err := s.DB.QueryRow(context.Background(), `SELECT user_id FROM orders WHERE id = $1`, o.ID).Scan(&owner); err != nil || owner != sess.User.ID {
		t.Errorf("order row: user %d, err %v", owner, err)
	}
	if code, _, _ := testenv.Call(t, "POST", g+"/api/users/logout", "", bearer...); code != http.StatusNoContent {
		t.Errorf("logout: %d", code)
	}
	if code, _, _ := testenv.Call(t, "GET", g+"/api/orders", "", bearer...); code != http.StatusUnauthorized {
		t.Errorf("orders after logout: %d", code)
	}
	if code, _, data := testenv.Call(t, "GET", g+"/readyz", ""); code != http.StatusOK {
		t.Errorf("readyz: %d %s", code, data)
	}
	_, _, data = testenv.Call(t, "GET", g+"/metrics", "")
	for _, want := range []string{`shop_http_requests_total{code="201",route="/api/orders/"}`, "shop_http_request_duration_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// The UI, driven like a browser without JavaScript: forms, redirects and a cookie.
func TestUIFlow(t *testing.T) {
	s := testenv.Start(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", resp.Request.URL, resp.StatusCode, b)
		}
		return string(b)
	}
	home := page(c.Get(s.Gateway + "/"))
	if !strings.Contains(home, "Trailhead Rain Jacket") || !strings.Contains(home, "Log in") {
		t.Fatalf("home page lacks products or login link")
	}
	if body := page(c.Get(s.Gateway + "/static/style.css")); !strings.Contains(body, ".card") {
		t.Errorf("stylesheet not served")
	}
	if body := page(c.Get(s.Gateway + "/orders")); !strings.Contains(body, "Welcome back") {
		t.Errorf("orders without a session did not lead to the login page")
	}
	body := page(c.PostForm(s.Gateway+"/signup", url.Values{"name": {"Grace"}, "email": {"grace@example.com"}, "password": {"hopper123"}}))
	if !strings.Contains(body, "Hi, Grace") || !strings.Contains(body, "Your account is ready") {
		t.Fatalf("after signup:\n%s", body)
	}
	body = page(c.PostForm(s.Gateway+"/cart/add", url.Values{"product_id": {"6"}, "quantity": {"2"}}))
	if !strings.Contains(body, "Enamel Camp Mug") || !strings.Contains(body, "$28.00") {
		t.Fatalf("cart page:\n%s", body)
	}
	body = page(c.PostForm(s.Gateway+"/checkout", nil))
	if !strings.Contains(body, "Thank you! Order #") || !strings.Contains(body, "2 × Enamel Camp Mug") {
		t.Fatalf("orders page:\n%s", body)
	}
	body = page(c.PostForm(s.Gateway+"/logout", nil))
	if !strings.Contains(body, "You are logged out") {
		t.Errorf("after logout:\n%s", body)
	}
}

func TestUILoginErrorIsShown(t *testing.T) {
	s := testenv.Start(t)
	resp, err := http.PostForm(s.Gateway+"/login", url.Values{"email": {"x@example.com"}, "password": {"nope-nope"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "wrong email or password") {
		t.Errorf("login failure page: %d\n%s", resp.StatusCode, b)
	}
}

// The balancer spreads requests over every address of a name, skips a dead one without
// failing a request, and sends traffic to an address that appears.
func TestBalancerFollowsTheReplicas(t *testing.T) {
	var hits [3]atomic.Int64
	var addrs []string
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits[i].Add(1) }))
		t.Cleanup(srv.Close)
		addrs = append(addrs, srv.Listener.Addr().String())
	}
	// All three test servers share 127.0.0.1; give each a distinct fake "IP" and map it back.
	ips := map[string]string{"10.0.0.1": addrs[0], "10.0.0.2": addrs[1], "10.0.0.3": addrs[2]}
	var live atomic.Value
	live.Store([]string{"10.0.0.1", "10.0.0.2"})
	base := &http.Transport{}
	b := &gateway.Balancer{
		Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			host, _, _ := strings.Cut(r.URL.Host, ":")
			r.URL.Host = ips[host]
			return base.RoundTrip(r)
		}),
		Resolve: func(context.Context, string) ([]string, error) {
			return append([]string(nil), live.Load().([]string)...), nil
		},
		TTL: time.Millisecond,
	}
	c := &http.Client{Transport: b}
	get := func() {
		t.Helper()
		resp, err := c.Get("http://svc:80/")
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		resp.Body.Close()
	}
	for range 20 {
		get()
	}
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Errorf("not spread: %d %d", hits[0].Load(), hits[1].Load())
	}
	ips["10.0.0.9"] = "127.0.0.1:1" // refuses connections
	live.Store([]string{"10.0.0.9", "10.0.0.2"})
	for range 20 {
		get()
	}
	live.Store([]string{"10.0.0.2", "10.0.0.3"})
	time.Sleep(5 * time.Millisecond)
	for range 20 {
		get()
	}
	if hits[2].Load() == 0 {
		t.Errorf("the added replica got no traffic")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
