package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/policy"
)

const policyA = `package ares

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.state == "exited"
	d := {"action": "restart", "service": name, "replica": r.name, "reason": "exited"}
}
`

// policyB recycles OOM-killed replicas instead of restarting them, and notifies about dead ones.
const policyB = `package ares

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.state == "exited"
	not r.oom_killed
	d := {"action": "restart", "service": name, "replica": r.name, "reason": "exited, reason reworded"}
}

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.oom_killed
	d := {"action": "recycle", "service": name, "replica": r.name, "reason": "oom"}
}

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	r.state == "dead"
	d := {"action": "notify", "service": name, "reason": "dead"}
}
`

func policyDir(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "heal.rego"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The replay of recorded ticks against a changed policy reports exactly the decisions that
// changed, and nothing for the ticks where both agree.
func TestReplayReportsExactlyTheChangedDecisions(t *testing.T) {
	ctx := context.Background()
	a, err := policy.Load(policyDir(t, policyA), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := newTestJournal(t)
	start := time.Now().UTC().Add(-10 * time.Minute)
	for i, r := range []engine.Replica{
		{State: "running"},                 // 1: nothing either way
		{State: "exited", ExitCode: 1},     // 2: restart either way
		{State: "exited", OOMKilled: true}, // 3: restart → recycle
		{State: "dead"},                    // 4: + notify
		{State: "exited", ExitCode: 1},     // 5: restart either way
		{State: "running"},                 // 6: nothing
		{State: "running"},                 // 7: unchanged facts, stored once
	} {
		n := uint64(i + 1)
		at := start.Add(time.Duration(i) * 5 * time.Second)
		f := cartFacts(n, at, r)
		ds, _, err := a.Evaluate(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		j.play(n, at, f, ds, "")
	}
	if err := j.s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := j.s.Stats(ctx); st.FactsBlobs != 4 || st.Ticks != 7 {
		t.Errorf("stats = %+v, want 7 ticks and 4 facts blobs (ticks 2/5 and 1/6/7 share theirs)", st)
	}
	j.done()

	var buf bytes.Buffer
	o := replayOpts{cf: configFlags{path: j.config}, since: time.Hour, policies: policyDir(t, policyB), output: "text"}
	if err := runReplay(ctx, o, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 3 differences and a summary, got:\n%s", buf.String())
	}
	for i, want := range []string{"tick 3  + recycle    cart/shop-cart-1  oom", "tick 3  - restart    cart/shop-cart-1  exited",
		"tick 4  + notify     cart  dead"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[3], "replayed 7 ticks") || !strings.Contains(lines[3], "2 differ (2 decisions added, 1 removed)") {
		t.Errorf("summary = %q", lines[3])
	}

	buf.Reset()
	o.output = "json"
	if err := runReplay(ctx, o, &buf); err != nil {
		t.Fatal(err)
	}
	var res replayResult
	if err := json.Unmarshal(buf.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Ticks != 7 || res.DifferentTicks != 2 || len(res.Diffs) != 2 || res.Diffs[0].Tick != 3 || res.Diffs[1].Tick != 4 ||
		len(res.Diffs[1].Added) != 1 || res.Diffs[1].Added[0].Action != "notify" || len(res.Diffs[1].Removed) != 0 {
		t.Errorf("json = %+v", res)
	}

	// The recorded policy itself replays without a difference.
	buf.Reset()
	o.policies, o.output = policyDir(t, policyA), "text"
	if err := runReplay(ctx, o, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "replayed 7 ticks") || !strings.Contains(buf.String(), "0 differ") {
		t.Errorf("same policy: %s", buf.String())
	}
}
