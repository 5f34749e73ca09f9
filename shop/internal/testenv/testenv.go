// Package testenv gives the shop's tests real PostgreSQL and Redis (started by
// scripts/services.sh): each test gets its own PostgreSQL schema and Redis key prefix, dropped
// when it ends, so parallel packages never collide. It also starts the whole shop in-process.
//
// When PostgreSQL or Redis does not answer, tests skip with the reason on a laptop and fail
// when CI=true.
package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/cart"
	"github.com/ares-sre/ares/shop/internal/fault"
	"github.com/ares-sre/ares/shop/internal/gateway"
	"github.com/ares-sre/ares/shop/internal/order"
	"github.com/ares-sre/ares/shop/internal/product"
	"github.com/ares-sre/ares/shop/internal/service"
	"github.com/ares-sre/ares/shop/internal/store"
	"github.com/ares-sre/ares/shop/internal/user"
)

// Unavailable skips the test with reason, or fails it when CI=true: CI must run every test.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s unavailable: %v (run scripts/services.sh to install and start it)", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and " + msg)
	}
	t.Skip("SKIPPING: " + msg)
}

// PostgresDSN is the DSN of the shop database: $SHOP_TEST_PG_DSN, else the one
// scripts/services.sh creates.
func PostgresDSN() string {
	if v := os.Getenv("SHOP_TEST_PG_DSN"); v != "" {
		return v
	}
	return "postgres://shop:shop@127.0.0.1:5432/shop?sslmode=disable"
}

// RedisAddr is $SHOP_TEST_REDIS_ADDR, else 127.0.0.1:6379.
func RedisAddr() string {
	if v := os.Getenv("SHOP_TEST_REDIS_ADDR"); v != "" {
		return v
	}
	return "127.0.0.1:6379"
}

// Name returns a name unique to this run and test, usable as a schema name or key prefix.
func Name(t testing.TB) string {
	return fmt.Sprintf("shoptest_%d_%s", os.Getpid(), service.NewID()[:8])
}

// Schema creates a fresh schema, applies the migrations in it, and returns a pool and a DSN
// whose search_path is that schema. The schema is dropped when the test ends.
func Schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgxpool.New(ctx, PostgresDSN())
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		Unavailable(t, "postgresql", err)
	}
	schema := Name(t)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("testenv: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("testenv: drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	dsn := WithSearchPath(PostgresDSN(), schema)
	pool, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}

// WithSearchPath returns dsn with its search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Redis returns a client and a key prefix unique to the test; the keys are deleted when the
// test ends.
func Redis(t testing.TB) (*redis.Client, store.Keys) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rdb, err := store.OpenRedis(ctx, RedisAddr(), os.Getenv("SHOP_TEST_REDIS_PASSWORD"))
	if err != nil {
		Unavailable(t, "redis", err)
	}
	keys := store.Keys{Prefix: Name(t) + ":"}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, keys.Prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	return rdb, keys
}

// Shop is the whole shop running in-process on loopback test servers.
type Shop struct {
	DB    *pgxpool.Pool
	DSN   string
	Redis *redis.Client
	Keys  store.Keys
	// Base URLs ("http://127.0.0.1:port") of each service.
	Gateway, User, Product, Cart, Order string
}

// Start runs the five services against a fresh schema and key prefix. Logs go to the test
// log only when SHOP_TEST_LOG is set.
func Start(t testing.TB) *Shop {
	t.Helper()
	db, dsn := Schema(t)
	rdb, keys := Redis(t)
	var w io.Writer = io.Discard
	if os.Getenv("SHOP_TEST_LOG") != "" {
		w = os.Stderr
	}
	s := &Shop{DB: db, DSN: dsn, Redis: rdb, Keys: keys}
	hc := &http.Client{Timeout: 10 * time.Second}
	serve := func(name string, routes func(*service.Options)) string {
		log := service.NewLogger(w, slog.LevelDebug, name)
		reg := service.NewRegistry()
		o := service.Options{Name: name, Log: log, Registry: reg, Mux: http.NewServeMux(),
			Faults: fault.New(log, reg, func(int) { t.Errorf("%s: crash injected", name) })}
		routes(&o)
		srv := httptest.NewServer(service.Handler(o))
		t.Cleanup(srv.Close)
		t.Cleanup(o.Faults.Close)
		return srv.URL
	}
	s.User = serve("user", func(o *service.Options) {
		u := &user.Service{DB: db, Redis: rdb, Keys: keys, SessionTTL: time.Hour, BcryptCost: bcrypt.MinCost, Log: o.Log}
		u.Routes(o.Mux)
		o.Ready = u.Ready
	})
	s.Product = serve("product", func(o *service.Options) {
		p := &product.Service{DB: db, Redis: rdb, Keys: keys, CacheTTL: time.Minute, Log: o.Log}
		p.Routes(o.Mux)
		o.Ready = p.Ready
	})
	s.Cart = serve("cart", func(o *service.Options) {
		c := &cart.Service{Redis: rdb, Keys: keys, Products: &api.Client{Base: s.Product, HTTP: hc}, Log: o.Log}
		c.Routes(o.Mux)
		o.Ready = c.Ready
	})
	s.Order = serve("order", func(o *service.Options) {
		or := &order.Service{DB: db, Redis: rdb, Keys: keys, Carts: &api.Client{Base: s.Cart, HTTP: hc}, Log: o.Log}
		or.Routes(o.Mux)
		o.Ready = or.Ready
	})
	s.Gateway = serve("gateway", func(o *service.Options) {
		host := func(u string) string { return strings.TrimPrefix(u, "http://") }
		g := &gateway.Gateway{Log: o.Log, Transport: gateway.NewBalancer(time.Second), Up: gateway.Upstreams{
			User: host(s.User), Product: host(s.Product), Cart: host(s.Cart), Order: host(s.Order)}}
		g.Routes(o.Mux)
		o.Ready = g.Ready
	})
	return s
}

// Call sends body ("" for none) to url with the header name/value pairs and returns the
// status, headers and body of the answer.
func Call(t testing.TB, method, url, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("testenv: %s %s: %v", method, url, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("testenv: %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("testenv: %s %s: read: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, data
}

// CheckError fails the test unless data is an api.ErrorBody with code.
func CheckError(t testing.TB, data []byte, code string) {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(data, &e); err != nil || e.Code != code || e.Error == "" {
		t.Errorf("want JSON error with code %q, got %s", code, data)
	}
}

// Decode unmarshals data into v or fails the test.
func Decode(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

// User signs up a fresh user through the user service at base and returns its session.
func User(t testing.TB, base string) api.Session {
	t.Helper()
	email := service.NewID() + "@example.com"
	code, _, data := Call(t, http.MethodPost, base+"/api/users/signup",
		`{"email":"`+email+`","password":"correct horse","name":"Test"}`)
	if code != http.StatusCreated {
		t.Fatalf("signup: %d %s", code, data)
	}
	var s api.Session
	Decode(t, data, &s)
	return s
}
