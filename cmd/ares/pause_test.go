package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/dashboard"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
)

type noPolicies struct{}

func (noPolicies) Current() engine.Evaluator     { return nil }
func (noPolicies) LastError() (error, time.Time) { return nil, time.Time{} }

// ares pause and ares resume drive the governor of a running ARES through the real API.
func TestPauseAndResumeThroughTheAPI(t *testing.T) {
	gov := governor.New(governor.Options{})
	dash, err := dashboard.New(dashboard.Options{Token: "s3cret"}, dashboard.Deps{Controller: gov, Policies: noPolicies{},
		Submitter: dashboard.SubmitterFunc(func(engine.Decision) error { return nil })}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dash)
	defer srv.Close()
	// The API only accepts services it has seen in the facts.
	f := engine.NewFacts(1, time.Now())
	f.Service("cart").Replicas = []engine.Replica{{Name: "cart-1", State: "running"}}
	if err := dash.Record(context.Background(), engine.TickRecord{Tick: 1, At: time.Now(), Facts: f}); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	o := pauseOpts{api: srv.URL, service: "cart", dur: 30 * time.Minute, why: "manual migration"}
	if err := runPause(context.Background(), o, "wrong", &out); err == nil || !strings.Contains(err.Error(), "ARES refused") {
		t.Fatalf("a wrong token: %v", err)
	}
	if len(gov.Paused(time.Now())) != 0 {
		t.Fatal("a refused call paused something")
	}
	if err := runPause(context.Background(), o, "", &out); err == nil || !strings.Contains(err.Error(), "ARES_API_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
	if err := runPause(context.Background(), o, "s3cret", &out); err != nil {
		t.Fatal(err)
	}
	until, ok := gov.Paused(time.Now())["cart"]
	if !ok || until.Before(time.Now().Add(29*time.Minute)) {
		t.Fatalf("governor pauses = %v, want cart for 30m", gov.Paused(time.Now()))
	}
	if !strings.HasPrefix(out.String(), "paused cart") {
		t.Errorf("output %q", out.String())
	}
	out.Reset()
	if err := runPause(context.Background(), pauseOpts{api: srv.URL, service: "cart", why: "done", resume: true}, "s3cret", &out); err != nil {
		t.Fatal(err)
	}
	if len(gov.Paused(time.Now())) != 0 || !strings.Contains(out.String(), "no pause in force") {
		t.Errorf("after resume: pauses %v, output %q", gov.Paused(time.Now()), out.String())
	}
	if err := runPause(context.Background(), pauseOpts{api: "http://127.0.0.1:1", why: "x"}, "s3cret", &out); err == nil || !strings.Contains(err.Error(), "cannot reach ARES") {
		t.Errorf("unreachable API: %v", err)
	}
}
