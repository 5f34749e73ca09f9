package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/dashboard"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/journal"
)

const dashTestToken = "audit-test-token-5f1e"

// dashOn starts a dashboard over the journal store at path, as ares run wires it.
func dashOn(t *testing.T, path string) (*dashboard.Server, journal.Store) {
	t.Helper()
	store, err := journal.Open(context.Background(), journal.Config{Backend: journal.BackendSQLite, Path: path}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	dash, err := dashboard.New(dashboard.Options{Token: dashTestToken},
		dashboard.Deps{Controller: governor.New(governor.Options{}), Incidents: dashIncidents(store, journal.BackendSQLite),
			Audit: dashAudit(store, journal.BackendSQLite)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dash, store
}

func serve(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "198.51.100.23:40000"
	if method == http.MethodPost {
		r.Header.Set("Authorization", "Bearer "+dashTestToken)
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Every mutating call is journaled with who, from where and why, and the trail — like the
// incidents — is still on the dashboard after a restart of ARES.
func TestDashboardAuditAndIncidentsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	dash, store := dashOn(t, path)

	if w := serve(t, dash, http.MethodPost, "/api/v1/pause", `{"service":"cart","for":"15m","reason":"deploy window"}`); w.Code != http.StatusOK {
		t.Fatalf("pause: %d %s", w.Code, w.Body)
	}
	if w := serve(t, dash, http.MethodPost, "/api/v1/resume", `{"service":"cart"}`); w.Code != http.StatusOK {
		t.Fatalf("resume: %d %s", w.Code, w.Body)
	}
	// An incident in the journal: cart's replica exited, ARES restarted it.
	ctx := context.Background()
	at := time.Now().Add(-10 * time.Minute).UTC()
	f := engine.NewFacts(1, at)
	svc := f.Service("cart")
	svc.Replicas = []engine.Replica{{ID: "c1", Name: "shop-cart-1", State: "exited", Health: "none"}}
	svc.DesiredReplicas = 1
	f.Summarize()
	d := engine.Decision{Action: engine.ActRestart, Service: "cart", Replica: "shop-cart-1", Reason: "exited with code 137"}
	a := engine.Action{Decision: d, Verdict: engine.VerdictAdmit}
	id, err := store.Intent(ctx, 1, a)
	if err != nil {
		t.Fatal(err)
	}
	a.Outcome = &engine.Outcome{Result: engine.ResultOK, Duration: time.Second}
	if err := store.Outcome(ctx, id, a); err != nil {
		t.Fatal(err)
	}
	if err := store.Record(ctx, engine.TickRecord{Tick: 1, At: at, Facts: f, Decisions: []engine.Decision{d}, Actions: []engine.Action{a}}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// ARES restarts: a new dashboard (empty memory) over the same journal.
	dash2, _ := dashOn(t, path)
	w := serve(t, dash2, http.MethodGet, "/api/v1/audit", "")
	var got struct{ Audit []dashboard.AuditEntry }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/audit: %d %s", w.Code, w.Body)
	}
	if len(got.Audit) != 2 {
		t.Fatalf("audit after restart = %+v, want the pause and the resume", got.Audit)
	}
	pause, resume := got.Audit[1], got.Audit[0] // newest first
	if pause.Op != "pause" || pause.Target != "cart" || pause.Why != "deploy window" || pause.Remote != "198.51.100.23:40000" ||
		!strings.HasPrefix(pause.Who, "token:") || pause.Via != "api" || pause.Detail != "for 15m0s" {
		t.Errorf("pause entry = %+v", pause)
	}
	if resume.Op != "resume" || resume.Why != "(no reason given)" {
		t.Errorf("resume entry = %+v (a missing reason is defaulted)", resume)
	}
	if strings.Contains(w.Body.String(), dashTestToken) {
		t.Error("the audit trail shows the token itself")
	}
	if page := serve(t, dash2, http.MethodGet, "/activity", ""); !strings.Contains(page.Body.String(), "deploy window") ||
		!strings.Contains(page.Body.String(), "198.51.100.23") {
		t.Errorf("the activity page does not show the journaled audit trail:\n%s", page.Body)
	}

	w = serve(t, dash2, http.MethodGet, "/api/v1/incidents", "")
	var incs struct{ Incidents []dashboard.Incident }
	if err := json.Unmarshal(w.Body.Bytes(), &incs); err != nil {
		t.Fatal(err)
	}
	if len(incs.Incidents) != 1 || incs.Incidents[0].Service != "cart" || !incs.Incidents[0].Open() ||
		incs.Incidents[0].Cause != d.Reason || incs.Incidents[0].DetectedAt == nil {
		t.Fatalf("incidents after restart = %+v (%s)", incs.Incidents, w.Body)
	}
	if page := serve(t, dash2, http.MethodGet, "/incidents", ""); !strings.Contains(page.Body.String(), "exited with code 137") {
		t.Errorf("the incidents page does not show the journaled incident")
	}
}
