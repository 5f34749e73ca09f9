// Package store opens the shop's PostgreSQL pool (applying the embedded migrations) and its
// Redis client, and names the Redis keys every service shares.
package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

//go:embed migrations/*.sql
var migrations embed.FS

// OpenPostgres connects to dsn, checks the connection and applies the migrations.
func OpenPostgres(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres ping: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Migrate applies, in name order and in one transaction, every embedded migration not yet
// recorded in schema_migrations. Concurrent callers (every service applies them at start)
// are serialised by an advisory lock, so it is idempotent and safe to race.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	sort.Strings(names)
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('ares-shop-migrate:' || current_schema()))`); err != nil {
			return fmt.Errorf("store: migrate lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		for _, name := range names {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, name).Scan(&done); err != nil {
				return fmt.Errorf("store: migrate %s: %w", name, err)
			}
			if done {
				continue
			}
			sql, err := migrations.ReadFile(name)
			if err != nil {
				return fmt.Errorf("store: migrate %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("store: migrate %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, name); err != nil {
				return fmt.Errorf("store: migrate %s: %w", name, err)
			}
		}
		return nil
	})
}

// OpenRedis connects to addr and checks the connection.
func OpenRedis(ctx context.Context, addr, password string) (*redis.Client, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("store: redis %s: %w", addr, err)
	}
	return rdb, nil
}

// Keys names the Redis keys, all under one prefix so that runs can share a Redis.
type Keys struct{ Prefix string }

// Session is the key of the session whose token hashes to tokenHash.
func (k Keys) Session(tokenHash string) string { return k.Prefix + "session:" + tokenHash }

// Cart is the hash of a user's cart: product id → quantity.
func (k Keys) Cart(userID int64) string { return k.Prefix + "cart:" + strconv.FormatInt(userID, 10) }

// Product is the cached JSON of one product.
func (k Keys) Product(id int64) string { return k.Prefix + "product:" + strconv.FormatInt(id, 10) }

// Catalogue is the cached JSON of the product list.
func (k Keys) Catalogue() string { return k.Prefix + "catalogue" }

// InvalidateProducts drops the cached catalogue and the given products.
func (k Keys) InvalidateProducts(ctx context.Context, rdb redis.Cmdable, ids ...int64) error {
	keys := []string{k.Catalogue()}
	for _, id := range ids {
		keys = append(keys, k.Product(id))
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("store: invalidate products: %w", err)
	}
	return nil
}
