package policy

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// factsWith builds a document with one replica per service, named <service>-1, in the given state.
func factsWith(states map[string]string) *engine.Facts {
	f := engine.NewFacts(1, time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC))
	for name, st := range states {
		s := f.Service(name)
		s.DesiredReplicas = 1
		s.Replicas = append(s.Replicas, engine.Replica{Name: name + "-1", State: st, Health: "none"})
	}
	f.Sensors["docker"] = engine.SensorStatus{OK: true}
	f.Summarize()
	return f
}

func TestEvaluateRejects(t *testing.T) {
	pol := `package ares

decisions contains {"action": "restart", "service": "api", "replica": "api-1", "reason": "ok"}
decisions contains {"action": "explode", "service": "api", "reason": "unknown action"}
decisions contains {"action": "restart", "service": "api"}
decisions contains {"action": "restart", "reason": "no service"}
decisions contains {"action": 7, "service": "api", "reason": "wrong type"}
decisions contains {"action": "scale_out", "service": "api", "replica": "api-1", "reason": "service-level"}
decisions contains "not an object"
decisions contains 42
`
	s := mustLoad(t, policyDir(t, map[string]string{"p.rego": pol}), Options{})
	ds, rej := mustEval(t, s, factsWith(map[string]string{"api": "running"}))
	want := []engine.Decision{{Action: "restart", Service: "api", Replica: "api-1", Reason: "ok"}}
	if !reflect.DeepEqual(ds, want) {
		t.Errorf("decisions = %+v, want %+v", ds, want)
	}
	wantRej := map[string]string{
		`{"action":"explode","reason":"unknown action","service":"api"}`:                    `unknown action "explode"`,
		`{"action":"restart","service":"api"}`:                                              `missing field "reason"`,
		`{"action":"restart","reason":"no service"}`:                                        `missing field "service"`,
		`{"action":7,"reason":"wrong type","service":"api"}`:                                `field "action": want string (got number)`,
		`{"action":"scale_out","reason":"service-level","replica":"api-1","service":"api"}`: `service-level`,
		`"not an object"`: "decision is string, want an object",
		`42`:              "decision is number, want an object",
	}
	if len(rej) != len(wantRej) {
		t.Errorf("got %d rejected, want %d: %+v", len(rej), len(wantRej), rej)
	}
	for _, r := range rej {
		w, ok := wantRej[r.Raw]
		if !ok {
			t.Errorf("unexpected rejected %+v", r)
			continue
		}
		if !strings.Contains(r.Error, w) {
			t.Errorf("rejected %s: error %q does not contain %q", r.Raw, r.Error, w)
		}
	}
}

func TestEvaluateResultShape(t *testing.T) {
	tests := []struct {
		name, pol string
		wantErr   string
	}{
		{"object", "package ares\n\ndecisions := {\"a\": 1}\n", "query data.ares.decisions: result is object, want a set or array"},
		{"string", "package ares\n\ndecisions := \"restart\"\n", "query data.ares.decisions: result is string"},
		{"array is fine", "package ares\n\ndecisions := [{\"action\": \"notify\", \"service\": \"a\", \"reason\": \"r\"}]\n", ""},
		{"undefined is no decisions", "package ares\n\ndecisions := [] if input.nothing\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, part := range []string{PartitionAuto, PartitionWhole} {
				s := mustLoad(t, policyDir(t, map[string]string{"p.rego": tt.pol}), Options{Partition: part})
				_, _, err := s.Evaluate(context.Background(), factsWith(map[string]string{"a": "running"}))
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("%s: Evaluate: %v", part, err)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Errorf("%s: error %v, want it to contain %q", part, err, tt.wantErr)
				}
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	pol := `package ares

decisions contains d if {
	some name, svc in input.services
	some r in svc.replicas
	some act in ["restart", "recycle", "notify"]
	d := {"action": act, "service": name, "replica": r.name, "reason": sprintf("%s it", [act])}
}

decisions contains d if {
	some name, _ in input.services
	some reason in ["b reason", "a reason"]
	d := {"action": "scale_out", "service": name, "reason": reason}
}
`
	want := []engine.Decision{
		{Action: "scale_out", Service: "api", Reason: "a reason"},
		{Action: "recycle", Service: "api", Replica: "api-1", Reason: "recycle it"},
		{Action: "scale_out", Service: "db", Reason: "a reason"},
		{Action: "recycle", Service: "db", Replica: "db-1", Reason: "recycle it"},
	}
	for _, part := range []string{PartitionAuto, PartitionWhole} {
		t.Run(part, func(t *testing.T) {
			s := mustLoad(t, policyDir(t, map[string]string{"p.rego": pol}), Options{Partition: part})
			ds, _ := mustEval(t, s, factsWith(map[string]string{"db": "running", "api": "exited"}))
			if !reflect.DeepEqual(ds, want) {
				t.Errorf("decisions =\n%+v\nwant\n%+v", ds, want)
			}
		})
	}
}

func TestCache(t *testing.T) {
	dir := packDir(t)
	s := mustLoad(t, dir, Options{})
	if !s.Partitioned() {
		t.Fatalf("pack not partitioned: %s", s.PartitionReason())
	}
	f := factsWith(map[string]string{"api": "running", "db": "running", "web": "running"})
	step := func(name string, wantHits, wantMisses uint64, wantRestart []string) {
		t.Helper()
		h0, m0 := s.CacheStats()
		ds, _ := mustEval(t, s, f)
		h1, m1 := s.CacheStats()
		if h1-h0 != wantHits || m1-m0 != wantMisses {
			t.Errorf("%s: hits %d misses %d, want %d and %d", name, h1-h0, m1-m0, wantHits, wantMisses)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.Service)
		}
		if !reflect.DeepEqual(got, wantRestart) {
			t.Errorf("%s: decisions for %v, want %v", name, got, wantRestart)
		}
	}
	step("first", 0, 3, nil)
	f.Tick++
	f.Time = f.Time.Add(5 * time.Second)
	step("unchanged (tick and time are not read)", 3, 0, nil)
	f.Services["db"].Replicas[0].State = "exited"
	f.Summarize()
	step("db changed", 2, 1, []string{"db"})
	step("unchanged again", 3, 0, []string{"db"})
	f.Sensors["docker"] = engine.SensorStatus{OK: false, Error: "down"}
	step("shared sensors changed", 0, 3, nil)
	f.Sensors["docker"] = engine.SensorStatus{OK: true}
	delete(f.Services, "web")
	step("web removed", 0, 2, []string{"db"})
	if n := len(s.cache.services); n != 2 {
		t.Errorf("cache holds %d services after web left, want 2", n)
	}

	// A new revision starts with an empty cache and sees the new policy.
	writeFiles(t, dir, map[string]string{"data.json": `{"ares": {"config": {"cooldown_s": 60, "probe_failures": 3, "mem_percent": 90, "cpu_high": 80, "cpu_low": 10, "max_replicas": 5, "error_rate": 0.05}}}` + "\n"})
	s2 := mustLoad(t, dir, Options{})
	if s2.Revision() == s.Revision() {
		t.Fatal("revision did not change")
	}
	ds, _ := mustEval(t, s2, f)
	if h, m := s2.CacheStats(); h != 0 || m != 2 || len(ds) != 1 {
		t.Errorf("new revision: hits %d misses %d decisions %+v", h, m, ds)
	}
}

func TestClockPolicy(t *testing.T) {
	pol := `package ares

decisions contains d if {
	some name, _ in input.services
	input.tick % 2 == 0
	d := {"action": "notify", "service": name, "reason": "even tick"}
}
`
	s := mustLoad(t, policyDir(t, map[string]string{"p.rego": pol}), Options{})
	if !s.Partitioned() || !s.plan.clock {
		t.Fatalf("partitioned=%v clock=%v, want both", s.Partitioned(), s.plan.clock)
	}
	f := factsWith(map[string]string{"a": "running"})
	for tick := uint64(1); tick <= 4; tick++ {
		f.Tick = tick
		ds, _ := mustEval(t, s, f)
		if want := int(1 - tick%2); len(ds) != want {
			t.Errorf("tick %d: %d decisions, want %d", tick, len(ds), want)
		}
	}
}

func TestGlobalRulesReportedOnce(t *testing.T) {
	pol := `package ares

decisions contains d if {
	some a in input.alerts
	d := {"action": "notify", "service": a.service, "reason": a.name}
}

decisions contains {"bad": true} if count(input.alerts) > 0

decisions contains d if {
	some name, _ in input.services
	d := {"action": "notify", "service": name, "reason": "per service"}
}
`
	f := factsWith(map[string]string{"a": "running", "b": "running"})
	f.Alerts = append(f.Alerts, engine.Alert{Name: "HighLatency", Service: "shop"})
	var results [][]engine.Decision
	for _, part := range []string{PartitionAuto, PartitionWhole} {
		s := mustLoad(t, policyDir(t, map[string]string{"p.rego": pol}), Options{Partition: part})
		ds, rej := mustEval(t, s, f)
		if len(rej) != 1 {
			t.Errorf("%s: rejected %+v, want the bad element once", part, rej)
		}
		results = append(results, ds)
	}
	if len(results[0]) != 3 || !reflect.DeepEqual(results[0], results[1]) {
		t.Errorf("per service %+v, whole %+v", results[0], results[1])
	}
}

// TestDifferential: on randomized facts and over several ticks with partial changes, per-service
// evaluation with the cache gives exactly the decisions of one whole-document evaluation.
func TestDifferential(t *testing.T) {
	dir := packDir(t)
	per := mustLoad(t, dir, Options{})
	whole := mustLoad(t, dir, Options{Partition: PartitionWhole})
	if !per.Partitioned() || whole.Partitioned() {
		t.Fatalf("partitioned: per=%v whole=%v", per.Partitioned(), whole.Partitioned())
	}
	rng := rand.New(rand.NewPCG(7, 11))
	total := 0
	for seed := range 3 {
		f := genFacts(rng, 60+seed*40, 1)
		for tick := range 8 {
			switch tick % 4 {
			case 1:
				mutate(rng, f, 0.1)
			case 2:
				f.Sensors["anomaly"] = engine.SensorStatus{OK: !f.Sensors["anomaly"].OK}
			case 3:
				mutate(rng, f, 1)
				delete(f.Services, sortedKeys(f.Services)[0])
			}
			dp, rp := mustEval(t, per, f)
			dw, rw := mustEval(t, whole, f)
			if !reflect.DeepEqual(dp, dw) || !reflect.DeepEqual(rp, rw) {
				t.Fatalf("seed %d tick %d: per-service and whole differ:\nper   %+v\nwhole %+v", seed, tick, dp, dw)
			}
			total += len(dp)
		}
	}
	if total == 0 {
		t.Fatal("no decisions at all: the generator exercises nothing")
	}
}

func TestEvaluateNilFacts(t *testing.T) {
	s := mustLoad(t, packDir(t), Options{})
	if _, _, err := s.Evaluate(context.Background(), nil); err == nil {
		t.Error("Evaluate(nil) succeeded")
	}
	f := engine.NewFacts(1, time.Now())
	f.Services = nil
	f.Alerts = nil
	if ds, rej := mustEval(t, s, f); len(ds)+len(rej) != 0 {
		t.Errorf("empty document: %+v %+v", ds, rej)
	}
}
