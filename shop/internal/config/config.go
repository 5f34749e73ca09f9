// Package config reads a shop service's configuration from the environment (SHOP_*), with
// defaults that work on a developer machine running scripts/services.sh.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// Config is every setting a shop service reads. Each service uses the part it needs.
type Config struct {
	Port      int    // SHOP_PORT: public HTTP port (API, /healthz, /readyz, /metrics)
	AdminPort int    // SHOP_ADMIN_PORT: fault injection; never routed by the gateway
	LogLevel  string // SHOP_LOG_LEVEL: debug, info, warn, error

	PostgresDSN   string // SHOP_PG_DSN
	RedisAddr     string // SHOP_REDIS_ADDR
	RedisPassword string // SHOP_REDIS_PASSWORD
	RedisPrefix   string // SHOP_REDIS_PREFIX: prefix of every key, so runs can share one Redis

	// Upstreams as host:port; the host is a Docker network alias, re-resolved per request.
	UserAddr    string // SHOP_USER_ADDR
	ProductAddr string // SHOP_PRODUCT_ADDR
	CartAddr    string // SHOP_CART_ADDR
	OrderAddr   string // SHOP_ORDER_ADDR

	SessionTTL time.Duration // SHOP_SESSION_TTL
	CacheTTL   time.Duration // SHOP_CACHE_TTL: product cache entries
	ResolveTTL time.Duration // SHOP_RESOLVE_TTL: how long the gateway keeps a DNS answer
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Port:        8080,
		AdminPort:   9090,
		LogLevel:    "info",
		PostgresDSN: "postgres://shop:shop@127.0.0.1:5432/shop?sslmode=disable",
		RedisAddr:   "127.0.0.1:6379",
		RedisPrefix: "shop:",
		UserAddr:    "user:8080",
		ProductAddr: "product:8080",
		CartAddr:    "cart:8080",
		OrderAddr:   "order:8080",
		SessionTTL:  24 * time.Hour,
		CacheTTL:    time.Minute,
		ResolveTTL:  time.Second,
	}
}

// FieldError names the variable and the value that is wrong.
type FieldError struct {
	Field, Value string
	Err          error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("config: %s: %v (got %q)", e.Field, e.Err, e.Value)
}
func (e *FieldError) Unwrap() error { return e.Err }

// FromEnv returns Default overridden by the SHOP_* variables that getenv reports, validated.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Default()
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	port := func(name string, dst *int) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err == nil && (n < 1 || n > 65535) {
			err = errors.New("must be in 1..65535")
		}
		if err != nil {
			errs = append(errs, &FieldError{name, v, err})
			return
		}
		*dst = n
	}
	dur := func(name string, dst *time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err == nil && d <= 0 {
			err = errors.New("must be > 0")
		}
		if err != nil {
			errs = append(errs, &FieldError{name, v, err})
			return
		}
		*dst = d
	}
	port("SHOP_PORT", &c.Port)
	port("SHOP_ADMIN_PORT", &c.AdminPort)
	str("SHOP_LOG_LEVEL", &c.LogLevel)
	str("SHOP_PG_DSN", &c.PostgresDSN)
	str("SHOP_REDIS_ADDR", &c.RedisAddr)
	str("SHOP_REDIS_PASSWORD", &c.RedisPassword)
	str("SHOP_REDIS_PREFIX", &c.RedisPrefix)
	str("SHOP_USER_ADDR", &c.UserAddr)
	str("SHOP_PRODUCT_ADDR", &c.ProductAddr)
	str("SHOP_CART_ADDR", &c.CartAddr)
	str("SHOP_ORDER_ADDR", &c.OrderAddr)
	dur("SHOP_SESSION_TTL", &c.SessionTTL)
	dur("SHOP_CACHE_TTL", &c.CacheTTL)
	dur("SHOP_RESOLVE_TTL", &c.ResolveTTL)
	if _, err := c.Level(); err != nil {
		errs = append(errs, &FieldError{"SHOP_LOG_LEVEL", c.LogLevel, err})
	}
	if c.Port == c.AdminPort {
		errs = append(errs, &FieldError{"SHOP_ADMIN_PORT", strconv.Itoa(c.AdminPort), errors.New("must differ from SHOP_PORT")})
	}
	return c, errors.Join(errs...)
}

// Level is LogLevel as a slog.Level.
func (c Config) Level() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// Env is os.Getenv, for FromEnv(config.Env).
func Env(name string) string { return os.Getenv(name) }
