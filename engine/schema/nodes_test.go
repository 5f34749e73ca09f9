package schema_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/schema"
)

// The swarm's nodes validate as the sensor writes them; a bad status names its place.
func TestValidateNodes(t *testing.T) {
	f := engine.NewFacts(1, time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	f.Nodes = map[string]engine.Node{"n1": {Hostname: "h", Status: "down", Availability: "active", Manager: true, TasksFailed10m: 2}}
	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(raw); err != nil {
		t.Fatalf("facts with nodes: %v", err)
	}
	bad := strings.Replace(string(raw), `"status":"down"`, `"status":"sleepy"`, 1)
	if err := schema.Validate([]byte(bad)); err == nil || !strings.Contains(err.Error(), "nodes.n1.status") {
		t.Errorf("bad node status: %v, want an error naming nodes.n1.status", err)
	}
}
