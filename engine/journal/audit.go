package journal

import (
	"context"
	"fmt"
	"time"
)

// AuditRecord is one mutating call of the API or the dashboard: pause, resume, a manual
// action, an approval. It names who made it (the API token's id, never the token) and from
// where, what it asked for, why, and what came of it.
type AuditRecord struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Who    string    `json:"who"`              // "token:<first 8 hex digits of sha256(token)>"
	Remote string    `json:"remote,omitempty"` // the client's address
	Via    string    `json:"via"`              // api|ui
	Op     string    `json:"op"`               // pause|resume|action|approval|...
	Target string    `json:"target"`           // service, service/replica, "all services" or an approval id
	Detail string    `json:"detail,omitempty"`
	Why    string    `json:"why"`
	Result string    `json:"result"` // ok|queued|refused: <reason>|...
}

const kindAudit = "audit"

// Audit records a mutating call. The record is written before Audit returns unless the
// database does not answer within Config.SyncTimeout; then it is queued (never dropped, like
// intents) and durable once the database answers. At and ID are set when zero.
func (s *dbStore) Audit(ctx context.Context, r AuditRecord) error {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	r.At = r.At.UTC()
	if r.ID == "" {
		r.ID = newID(r.At)
	}
	_, err := s.w.writeNow(ctx, s.cfg.SyncTimeout, op{kind: kindAudit, audit: &r})
	return err
}

// AuditLog lists the audit records since q.Since, newest first; with q.Service, those on
// that service (or one of its replicas) and those on every service.
func (s *dbStore) AuditLog(ctx context.Context, q Query) ([]AuditRecord, error) {
	out, err := s.be.auditLog(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("journal: audit: %w", err)
	}
	return out, nil
}

func insertAudit(ctx context.Context, x execer, r *AuditRecord) error {
	return x.exec(ctx, `INSERT INTO audit (id, at_ns, who, remote, via, op, target, detail, why, result)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		r.ID, ns(r.At), r.Who, r.Remote, r.Via, r.Op, r.Target, r.Detail, r.Why, r.Result)
}

func (b *sqlBackend) auditLog(ctx context.Context, q Query) ([]AuditRecord, error) {
	where, args := `at_ns >= ?`, []any{ns(q.Since)}
	if q.Service != "" {
		where += ` AND (target = ? OR target = ? OR substr(target, 1, ?) = ?)`
		args = append(args, q.Service, "all services", len(q.Service)+1, q.Service+"/")
	}
	var out []AuditRecord
	err := b.db.query(ctx, `SELECT id, at_ns, who, remote, via, op, target, detail, why, result FROM audit WHERE `+where+
		` ORDER BY at_ns DESC, id DESC`, args, func(scan func(...any) error) error {
		var r AuditRecord
		var at int64
		if err := scan(&r.ID, &at, &r.Who, &r.Remote, &r.Via, &r.Op, &r.Target, &r.Detail, &r.Why, &r.Result); err != nil {
			return err
		}
		r.At = fromNS(at)
		out = append(out, r)
		return nil
	})
	if out == nil {
		out = []AuditRecord{}
	}
	return out, err
}

// Audit is not recorded by the file journal (its lines are tick records): the dashboard
// keeps the trail in memory and in the daemon's log.
func (*fileStore) Audit(context.Context, AuditRecord) error {
	return fmt.Errorf("audit: %w (use journal.backend sqlite or postgres)", ErrUnsupported)
}

func (*fileStore) AuditLog(context.Context, Query) ([]AuditRecord, error) {
	return nil, fmt.Errorf("audit: %w (use journal.backend sqlite or postgres)", ErrUnsupported)
}
