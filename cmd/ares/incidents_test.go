package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/journal"
)

func TestIncidents(t *testing.T) {
	j := newTestJournal(t)
	now := time.Now().UTC().Add(-time.Minute)
	restart := engine.Decision{Action: engine.ActRestart, Service: "cart", Replica: "shop-cart-1", Reason: "replica exited (137)"}
	j.play(1, now, cartFacts(1, now, engine.Replica{State: "exited"}), []engine.Decision{restart}, "")
	j.play(2, now.Add(12*time.Second), cartFacts(2, now, engine.Replica{State: "running"}), nil, "")
	j.done()

	var buf bytes.Buffer
	if err := runIncidents(context.Background(), incidentsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "text"}, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"OPENED", "DETECT", "RECOVER", "cart", "resolved", "12s", "restart cart/shop-cart-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := runIncidents(context.Background(), incidentsOpts{cf: configFlags{path: j.config}, since: time.Hour, output: "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	var list []journal.Incident
	if err := json.Unmarshal(buf.Bytes(), &list); err != nil || len(list) != 1 || list[0].TimeToRecover != 12*time.Second {
		t.Errorf("json: %v %+v", err, list)
	}
}
