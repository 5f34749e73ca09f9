package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/cart"
	"github.com/ares-sre/ares/shop/internal/config"
	"github.com/ares-sre/ares/shop/internal/fault"
	"github.com/ares-sre/ares/shop/internal/gateway"
	"github.com/ares-sre/ares/shop/internal/order"
	"github.com/ares-sre/ares/shop/internal/product"
	"github.com/ares-sre/ares/shop/internal/service"
	"github.com/ares-sre/ares/shop/internal/store"
	"github.com/ares-sre/ares/shop/internal/user"
)

// serve runs the service name until ctx is cancelled.
func serve(ctx context.Context, name string, cfg config.Config, stdout io.Writer) error {
	level, _ := cfg.Level() // validated by config.FromEnv
	log := service.NewLogger(stdout, level, name)
	reg := service.NewRegistry()
	o := service.Options{
		Name: name, Log: log, Registry: reg, Mux: http.NewServeMux(),
		Faults: fault.New(log, reg, os.Exit),
	}
	keys := store.Keys{Prefix: cfg.RedisPrefix}
	balancer := gateway.NewBalancer(cfg.ResolveTTL)
	client := func(addr string) *api.Client {
		return &api.Client{Base: "http://" + addr, HTTP: &http.Client{Transport: balancer, Timeout: 30 * time.Second}}
	}

	var db *pgxpool.Pool
	var rdb *redis.Client
	var err error
	if name == "user" || name == "product" || name == "order" {
		if db, err = retry(ctx, log, "postgres", func(ctx context.Context) (*pgxpool.Pool, error) {
			return store.OpenPostgres(ctx, cfg.PostgresDSN)
		}); err != nil {
			return err
		}
		defer db.Close()
	}
	if name != "gateway" {
		if rdb, err = retry(ctx, log, "redis", func(ctx context.Context) (*redis.Client, error) {
			return store.OpenRedis(ctx, cfg.RedisAddr, cfg.RedisPassword)
		}); err != nil {
			return err
		}
		defer rdb.Close()
	}

	switch name {
	case "gateway":
		g := &gateway.Gateway{Log: log, Transport: balancer, Up: gateway.Upstreams{
			User: cfg.UserAddr, Product: cfg.ProductAddr, Cart: cfg.CartAddr, Order: cfg.OrderAddr}}
		g.Routes(o.Mux)
		o.Ready = g.Ready
	case "user":
		s := &user.Service{DB: db, Redis: rdb, Keys: keys, SessionTTL: cfg.SessionTTL, Log: log}
		s.Routes(o.Mux)
		o.Ready = s.Ready
	case "product":
		s := &product.Service{DB: db, Redis: rdb, Keys: keys, CacheTTL: cfg.CacheTTL, Log: log}
		s.Routes(o.Mux)
		o.Ready = s.Ready
	case "cart":
		s := &cart.Service{Redis: rdb, Keys: keys, Products: client(cfg.ProductAddr), Log: log}
		s.Routes(o.Mux)
		o.Ready = s.Ready
	case "order":
		s := &order.Service{DB: db, Redis: rdb, Keys: keys, Carts: client(cfg.CartAddr), Log: log}
		s.Routes(o.Mux)
		o.Ready = s.Ready
	default:
		return fmt.Errorf("unknown service %q", name)
	}
	return service.Run(ctx, o, cfg.Port, cfg.AdminPort)
}

// retry calls open until it succeeds or 60 s pass: in a stack, the databases may start after
// the services.
func retry[T any](ctx context.Context, log *slog.Logger, what string, open func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := open(actx)
		acancel()
		if err == nil {
			return v, nil
		}
		log.Warn("waiting for dependency", "dependency", what, "err", err)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%s: %w", what, err)
		case <-time.After(time.Second):
		}
	}
}
