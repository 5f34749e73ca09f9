package journal

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// sqliteDB is an SQLite file through modernc.org/sqlite: WAL (readers such as the CLI never
// block the daemon's writes), a busy timeout instead of immediate SQLITE_BUSY errors, and
// synchronous=NORMAL, which in WAL mode survives a crash of ARES (not a power loss) without
// an fsync per commit. Transactions take the write lock at BEGIN (_txlock=immediate), so two
// writers queue behind the busy timeout instead of failing on lock upgrade.
type sqliteDB struct{ db *sql.DB }

func openSQLite(ctx context.Context, path string) (backend, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("journal: sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: sqlite %s: %w", path, err)
	}
	be, err := newSQLBackend(ctx, sqliteDB{db}, "sqlite", "")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return be, nil
}

func (s sqliteDB) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.db.ExecContext(ctx, q, args...)
	return err
}

func (s sqliteDB) query(ctx context.Context, q string, args []any, each func(func(...any) error) error) error {
	return sqlQuery(ctx, s.db, q, args, each)
}

func (s sqliteDB) tx(ctx context.Context, fn func(execer) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(sqliteTx{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s sqliteDB) close() { _ = s.db.Close() }

type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqliteTx) query(ctx context.Context, q string, args []any, each func(func(...any) error) error) error {
	return sqlQuery(ctx, t.tx, q, args, each)
}

type sqlQueryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func sqlQuery(ctx context.Context, db sqlQueryer, q string, args []any, each func(func(...any) error) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
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
