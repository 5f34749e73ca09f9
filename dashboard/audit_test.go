package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeAudit struct {
	mu   sync.Mutex
	recs []AuditEntry
	err  error
}

func (f *fakeAudit) RecordAudit(_ context.Context, e AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.recs = append(f.recs, e)
	return nil
}

func (f *fakeAudit) AuditLog(_ context.Context, since time.Time, service string) ([]AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AuditEntry
	for i := len(f.recs) - 1; i >= 0; i-- {
		if e := f.recs[i]; !e.At.Before(since) && auditConcerns(e.Target, service) {
			out = append(out, e)
		}
	}
	return out, nil
}

func auditOf(t *testing.T, fx *fixture, query string) []AuditEntry {
	t.Helper()
	w := fx.do(t, "GET", "/api/v1/audit"+query, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/audit%s: %d %s", query, w.Code, w.Body)
	}
	var got struct{ Audit []AuditEntry }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	return got.Audit
}

// Each mutating call reaches the audit store with who, from where, via what and why; GET
// /api/v1/audit reads it back, filtered by service.
func TestAuditTrail(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken})
	store := &fakeAudit{}
	fx.srv.deps.Audit = store
	if w := fx.do(t, "POST", "/api/v1/pause", `{"service":"cart","reason":"db migration"}`, bearer(testToken), from("192.0.2.50:1234")); w.Code != http.StatusOK {
		t.Fatalf("pause: %d %s", w.Code, w.Body)
	}
	if w := fx.do(t, "POST", "/api/v1/resume", `{"service":"order"}`, bearer(testToken)); w.Code != http.StatusOK {
		t.Fatalf("resume: %d %s", w.Code, w.Body)
	}
	if w := fx.do(t, "POST", "/api/v1/pause", `{"service":"cart"}`, bearer(testToken)); w.Code != http.StatusBadRequest {
		t.Errorf("pause without a reason: %d, want 400", w.Code)
	}
	if len(store.recs) != 2 {
		t.Fatalf("journaled %d calls, want 2 (a refused call is not journaled): %+v", len(store.recs), store.recs)
	}
	p := store.recs[0]
	if p.Op != opPause || p.Target != "cart" || p.Why != "db migration" || p.Remote != "192.0.2.50:1234" || p.Via != "api" ||
		p.Who != fx.srv.who() || p.At.IsZero() {
		t.Errorf("journaled pause = %+v", p)
	}
	if r := store.recs[1]; r.Why != "(no reason given)" {
		t.Errorf("resume without a reason journaled why %q", r.Why)
	}
	if got := auditOf(t, fx, "?service=cart"); len(got) != 1 || got[0].Target != "cart" {
		t.Errorf("audit of cart = %+v", got)
	}
	if got := auditOf(t, fx, ""); len(got) != 2 || got[0].Op != opResume {
		t.Errorf("audit = %+v, want both, newest first", got)
	}
	if w := fx.do(t, "GET", "/api/v1/audit?since=yesterday", ""); w.Code != http.StatusBadRequest {
		t.Errorf("bad since: %d, want 400", w.Code)
	}
}

// Without a journal the trail is in memory; a journal that fails does not fail the call but
// says so in the activity log.
func TestAuditWithoutOrFailingJournal(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken})
	if w := fx.do(t, "POST", "/api/v1/pause", `{"why":"memory only"}`, bearer(testToken)); w.Code != http.StatusOK {
		t.Fatalf("pause: %d", w.Code)
	}
	if got := auditOf(t, fx, ""); len(got) != 1 || got[0].Why != "memory only" || got[0].Target != "all services" {
		t.Errorf("in-memory audit = %+v", got)
	}
	fx.srv.deps.Audit = &fakeAudit{err: errors.New("database is down")}
	if w := fx.do(t, "POST", "/api/v1/resume", `{"why":"after outage"}`, bearer(testToken)); w.Code != http.StatusOK {
		t.Fatalf("resume with a failing journal: %d", w.Code)
	}
	page := fx.do(t, "GET", "/activity", "").Body.String()
	if !strings.Contains(page, "not journaled: database is down") {
		t.Error("the activity page does not say the call was not journaled")
	}
	if !strings.Contains(fx.logs.String(), "control not journaled") {
		t.Error("the daemon's log does not say the call was not journaled")
	}
}

type fakeIncidents struct {
	list []Incident
	err  error
}

func (f fakeIncidents) Incidents(context.Context, time.Time, string) ([]Incident, error) {
	return f.list, f.err
}

// Incidents from the journal that opened before this dashboard started are listed with those
// it derived since (so history survives a restart); later ones are not listed twice; a failing
// journal leaves the in-memory ones and says why.
func TestIncidentsFromJournalAfterRestart(t *testing.T) {
	fx := newFixture(t, Options{})
	start := fx.srv.started
	fx.srv.now = func() time.Time { return start.Add(time.Minute) }
	before := Incident{ID: "j-old", Service: "cart", Cause: "exited with code 137", OpenedAt: start.Add(-time.Hour), Actions: nil, Timeline: []TimelineEvent{}}
	after := Incident{ID: "j-dup", Service: "web", Cause: "duplicate of the in-memory one", OpenedAt: start.Add(time.Second)}
	fx.srv.deps.Incidents = fakeIncidents{list: []Incident{after, before}}
	if err := fx.srv.Record(context.Background(), tick(1, start.Add(2*time.Second), "web-1")); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Incidents []Incident
		Error     string
	}
	w := fx.do(t, "GET", "/api/v1/incidents?since=48h", "")
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, in := range got.Incidents {
		ids = append(ids, in.ID+"/"+in.Service)
	}
	if len(got.Incidents) != 2 || got.Incidents[0].Service != "web" || got.Incidents[1].ID != "j-old" {
		t.Errorf("incidents = %v, want the in-memory web one, then the journal's cart one from before the start", ids)
	}
	if page := fx.do(t, "GET", "/incidents?since=48h", "").Body.String(); !strings.Contains(page, "exited with code 137") {
		t.Error("the incidents page does not show the journal's incident")
	}

	fx.srv.deps.Incidents = fakeIncidents{err: errors.New("database is down")}
	w = fx.do(t, "GET", "/api/v1/incidents?since=48h", "")
	got.Incidents, got.Error = nil, ""
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
		t.Fatalf("with a failing journal: %d %s", w.Code, w.Body)
	}
	if len(got.Incidents) != 1 || !strings.Contains(got.Error, "database is down") {
		t.Errorf("with a failing journal: %+v, want the in-memory incident and the error", got)
	}
}
