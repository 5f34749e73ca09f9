package journal

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgDB is PostgreSQL through a pgx connection pool.
type pgDB struct{ pool *pgxpool.Pool }

// pgMigrationLock serializes migrations of ARES instances sharing one database.
const pgMigrationLock = `SELECT pg_advisory_xact_lock(7236111)`

func openPostgres(ctx context.Context, dsn string) (backend, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("journal: postgres dsn: %w", err) // pgx does not echo the password
	}
	if cfg.MaxConns > 4 {
		cfg.MaxConns = 4
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("journal: postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("journal: postgres %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	be, err := newSQLBackend(ctx, pgDB{pool}, "postgres", pgMigrationLock)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return be, nil
}

// rebind turns ? placeholders into $1, $2, ... (the journal's SQL has no ? in literals).
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString("$" + strconv.Itoa(n))
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func (p pgDB) exec(ctx context.Context, q string, args ...any) error {
	_, err := p.pool.Exec(ctx, rebind(q), args...)
	return err
}

func (p pgDB) query(ctx context.Context, q string, args []any, each func(func(...any) error) error) error {
	return pgQuery(ctx, p.pool, q, args, each)
}

func (p pgDB) tx(ctx context.Context, fn func(execer) error) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return fn(pgTx{tx}) })
}

func (p pgDB) close() { p.pool.Close() }

type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, rebind(q), args...)
	return err
}

func (t pgTx) query(ctx context.Context, q string, args []any, each func(func(...any) error) error) error {
	return pgQuery(ctx, t.tx, q, args, each)
}

type pgRowsQueryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func pgQuery(ctx context.Context, db pgRowsQueryer, q string, args []any, each func(func(...any) error) error) error {
	rows, err := db.Query(ctx, rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}
