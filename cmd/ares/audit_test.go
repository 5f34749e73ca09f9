package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine/journal"
)

func TestAuditCommand(t *testing.T) {
	j := newTestJournal(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, r := range []journal.AuditRecord{
		{At: now.Add(-2 * time.Hour), Who: "token:0a1b2c3d", Remote: "192.0.2.9:5000", Via: "api", Op: "pause", Target: "cart", Detail: "for 30m0s", Why: "migration", Result: "ok"},
		{At: now.Add(-time.Hour), Who: "token:0a1b2c3d", Via: "ui", Op: "action", Target: "order/shop-order-1", Detail: "restart", Why: "stuck", Result: "queued"},
		{At: now.Add(-30 * 24 * time.Hour), Who: "token:0a1b2c3d", Via: "api", Op: "resume", Target: "cart", Why: "old", Result: "ok"},
	} {
		if err := j.s.Audit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	j.done()

	var buf bytes.Buffer
	if err := runAudit(ctx, auditOpts{cf: configFlags{path: j.config}, since: 24 * time.Hour, output: "text"}, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"WHO", "token:0a1b2c3d", "192.0.2.9:5000", "pause for 30m0s", "migration", "restart", "order/shop-order-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "old") || strings.Index(out, "stuck") > strings.Index(out, "migration") {
		t.Errorf("want the last day only, newest first:\n%s", out)
	}
	buf.Reset()
	if err := runAudit(ctx, auditOpts{cf: configFlags{path: j.config}, since: 24 * time.Hour, service: "cart", output: "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	var list []journal.AuditRecord
	if err := json.Unmarshal(buf.Bytes(), &list); err != nil || len(list) != 1 || list[0].Why != "migration" {
		t.Errorf("json for cart: %v %+v", err, list)
	}
}
