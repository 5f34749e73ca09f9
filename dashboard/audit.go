package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// AuditStore keeps the audit trail where it survives a restart of ARES (the journal store,
// through an adapter in cmd/ares). Without one the trail lives in memory only.
type AuditStore interface {
	RecordAudit(ctx context.Context, e AuditEntry) error
	// AuditLog lists the entries since since, newest first; service "" means all, else the
	// entries on that service, its replicas and every service.
	AuditLog(ctx context.Context, since time.Time, service string) ([]AuditEntry, error)
}

// auditTimeout bounds the journal write of one audit entry.
const auditTimeout = 2 * time.Second

// caller is who made a control request and through what, for the audit trail.
type caller struct {
	via    string // api|ui
	remote string // the client's address (r.RemoteAddr: behind a proxy, the proxy's)
}

func callerOf(via string, r *http.Request) caller { return caller{via: via, remote: r.RemoteAddr} }

// Audit records a mutating call once it made its change: in the audit and activity logs (live
// to the pages), in the daemon's log and, with Deps.Audit, in the journal. Every control
// calls it: pause, resume, manual actions, approvals. Who defaults to the token's id; At to
// now. It never fails the call: a journal write that fails is logged and shown in the
// activity log.
func (s *Server) Audit(ctx context.Context, e AuditEntry) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.At = e.At.UTC()
	if e.Who == "" {
		e.Who = s.who()
	}
	if strings.TrimSpace(e.Why) == "" {
		e.Why = "(no reason given)"
	}
	s.m.calls.WithLabelValues(e.Op, "ok").Inc()
	ev := Event{At: e.At, Kind: KindAudit, Source: e.Via, Subject: e.Target, Level: LevelInfo,
		Message: fmt.Sprintf("%s %s %s %s — why: %s", e.Who, e.Op, e.Target, e.Detail, e.Why)}
	if e.Result != "ok" && e.Result != "queued" {
		ev.Level = LevelWarn
		ev.Message += " (" + e.Result + ")"
	}
	if s.deps.Audit != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		err := s.deps.Audit.RecordAudit(ctx, e)
		cancel()
		if err != nil {
			ev.Level = LevelWarn
			ev.Message += " (not journaled: " + err.Error() + ")"
			s.log.Error("dashboard: control not journaled", "op", e.Op, "target", e.Target, "err", err)
		}
	}
	s.mu.Lock()
	s.audit.push(e)
	s.events.push(ev)
	s.mu.Unlock()
	s.hub.publish(sseMessage("activity", ev))
	s.log.Info("dashboard: control", "who", e.Who, "remote", e.Remote, "via", e.Via, "op", e.Op, "target", e.Target,
		"detail", e.Detail, "why", e.Why, "result", e.Result)
}

// auditLog lists the audit trail since since for service ("" all), newest first, at most
// limit entries: from the journal when there is one, else from memory.
func (s *Server) auditLog(ctx context.Context, since time.Time, service string, limit int) ([]AuditEntry, error) {
	if s.deps.Audit != nil {
		out, err := s.deps.Audit.AuditLog(ctx, since, service)
		if err != nil {
			return nil, err
		}
		if len(out) > limit {
			out = out[:limit]
		}
		if out == nil {
			out = []AuditEntry{}
		}
		return out, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := s.audit.newest(limit, func(e *AuditEntry) bool {
		return !e.At.Before(since) && auditConcerns(e.Target, service)
	})
	return slices.Clip(out), nil
}

// auditConcerns reports whether an audit target concerns service ("" every).
func auditConcerns(target, service string) bool {
	return service == "" || target == service || target == "all services" || strings.HasPrefix(target, service+"/")
}

// apiAudit answers GET /api/v1/audit: the audit trail, newest first.
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r, 200, 5000)
	if err != nil {
		s.failRead(w, err)
		return
	}
	since, err := s.querySince(r, 7*24*time.Hour)
	if err != nil {
		s.failRead(w, err)
		return
	}
	out, err := s.auditLog(r.Context(), since, r.URL.Query().Get("service"), limit)
	if err != nil {
		writeError(w, http.StatusBadGateway, "audit: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"audit": out})
}
