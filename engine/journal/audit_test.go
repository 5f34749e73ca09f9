package journal

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The audit trail on every database backend: written at once, read back newest first,
// filtered by time and service, and still there after a restart.
func testAudit(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	recs := []AuditRecord{
		{At: t0, Who: "token:1a2b3c4d", Remote: "192.0.2.7:51000", Via: "api", Op: "pause", Target: "all services", Detail: "for 15m0s", Why: "deploy window", Result: "ok"},
		{At: t0.Add(time.Minute), Who: "token:1a2b3c4d", Remote: "192.0.2.7:51001", Via: "ui", Op: "action", Target: "cart/shop-cart-1", Detail: "restart", Why: "stuck", Result: "queued"},
		{At: t0.Add(2 * time.Minute), Who: "token:1a2b3c4d", Remote: "[2001:db8::1]:443", Via: "api", Op: "resume", Target: "order", Why: "", Result: "ok"},
		{At: t0.Add(3 * time.Minute), Who: "token:1a2b3c4d", Via: "api", Op: "pause", Target: "cartography", Why: "similar prefix", Result: "ok"},
	}
	for _, r := range recs {
		if err := s.Audit(ctx, r); err != nil {
			t.Fatalf("Audit: %v", err)
		}
	}
	all, err := s.AuditLog(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(recs) {
		t.Fatalf("AuditLog = %d records, want %d: %+v", len(all), len(recs), all)
	}
	for i, got := range all {
		want := recs[len(recs)-1-i] // newest first
		if got.ID == "" {
			t.Errorf("record %d has no id", i)
		}
		got.ID = ""
		if got != want {
			t.Errorf("record %d = %+v, want %+v", i, got, want)
		}
	}
	cart, err := s.AuditLog(ctx, Query{Service: "cart"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cart) != 2 || cart[0].Target != "cart/shop-cart-1" || cart[1].Target != "all services" {
		t.Errorf("AuditLog(service cart) = %+v, want the cart action and the pause of all services", cart)
	}
	recent, err := s.AuditLog(ctx, Query{Since: t0.Add(90 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 2 || recent[1].Op != "resume" {
		t.Errorf("AuditLog(since) = %+v, want the last two", recent)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, cfgs[s], nil, nil) // a restart of ARES: a new store on the same database
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	after, err := again.AuditLog(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(recs) {
		t.Errorf("after a restart AuditLog = %d records, want %d", len(after), len(recs))
	}
}

func TestAuditSQLite(t *testing.T) {
	testAudit(t, func(t *testing.T) Store {
		return reopenable(t, Config{Backend: BackendSQLite, Path: filepath.Join(t.TempDir(), "j.db"), SyncIntents: true})
	})
}

func TestAuditPostgres(t *testing.T) {
	admin := pgAdmin(t)
	testAudit(t, func(t *testing.T) Store {
		return reopenable(t, Config{Backend: BackendPostgres, DSN: testDB(t, admin), SyncIntents: true})
	})
}

// A mutating call made while the database is down is not lost: queued, written once it is back.
func TestAuditDuringOutageIsQueued(t *testing.T) {
	be := &downBackend{}
	s, err := newDBStore(context.Background(), be, Config{Buffer: 4, SyncTimeout: 50 * time.Millisecond}.withDefaults(), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Audit(context.Background(), AuditRecord{Who: "token:x", Op: "pause", Target: "all services", Why: "outage", Result: "ok"}); err != nil {
		t.Fatalf("Audit while down: %v", err)
	}
	be.setUp()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	n := 0
	for _, o := range be.applied {
		if o.kind == kindAudit && o.audit.Why == "outage" && o.audit.ID != "" && !o.audit.At.IsZero() {
			n++
		}
	}
	if n != 1 {
		t.Errorf("audit records written after the outage = %d, want 1 (applied %+v)", n, be.applied)
	}
}

func TestAuditFileBackendUnsupported(t *testing.T) {
	s, err := Open(context.Background(), Config{Backend: BackendFile, Path: filepath.Join(t.TempDir(), "j.jsonl")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Audit(context.Background(), AuditRecord{Op: "pause"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Audit on a file journal = %v, want ErrUnsupported", err)
	}
	if _, err := s.AuditLog(context.Background(), Query{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("AuditLog on a file journal = %v, want ErrUnsupported", err)
	}
}
