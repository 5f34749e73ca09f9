package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/policy"
)

func Example() {
	dir, _ := os.MkdirTemp("", "policies")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "restart.rego"), []byte(`package ares

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.state in {"exited", "dead"}
	d := {"action": "restart", "service": name, "replica": r.name, "reason": sprintf("replica is %s", [r.state])}
}
`), 0o644)

	set, err := policy.Load(dir, policy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := engine.NewFacts(1, time.Now())
	f.Service("api").Replicas = []engine.Replica{{Name: "api-1", State: "running"}, {Name: "api-2", State: "exited"}}
	decisions, rejected, err := set.Evaluate(context.Background(), f)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("partitioned:", set.Partitioned(), "rejected:", len(rejected))
	for _, d := range decisions {
		fmt.Println(d.Action, d.Target(), "-", d.Reason)
	}
	// Output:
	// partitioned: true rejected: 0
	// restart api/api-2 - replica is exited
}
