package dashboard

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// A manual drain names a node of the latest facts, by id or hostname, and no service; it is
// queued as a node-level decision.
func TestManualDrain(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken})
	rec := tick(1, t0.Add(time.Second))
	rec.Facts.Nodes = map[string]engine.Node{"n1": {Hostname: "host-1", Status: "ready", Availability: "active"}}
	if err := fx.srv.Record(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"action":"drain","node":"n9","reason":"x"}`, 400, "unknown node"},
		{`{"action":"drain","service":"web","node":"n1","reason":"x"}`, 400, "node-level"},
		{`{"action":"drain","reason":"x"}`, 400, `\"node\"`},
		{`{"action":"restart","service":"web","node":"n1","reason":"x"}`, 400, `takes no \"node\"`},
		{`{"action":"drain","node":"host 1","reason":"x"}`, 400, "not a valid name"},
		{`{"action":"drain","node":"host-1","reason":"disk failing"}`, http.StatusAccepted, `"node": "host-1"`},
	} {
		w := fx.do(t, "POST", "/api/v1/actions", c.body, bearer(testToken))
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("POST %s: %d %s; want %d with %q", c.body, w.Code, w.Body, c.code, c.want)
		}
	}
	got := fx.sub.Submitted()
	if len(got) != 1 || got[0].Action != engine.ActDrain || got[0].Node != "host-1" || got[0].Service != "" ||
		!strings.HasSuffix(got[0].Reason, ": disk failing") {
		t.Errorf("submitted %+v, want one drain of host-1", got)
	}
}
