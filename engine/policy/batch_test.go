package policy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Policies beside the two packs for the batching property test: decisions naming another
// service than the one they come from, helper sets keyed by service, rules that read no
// service, garbage per service, the same decision from several services, and annotations.
var batchPolicies = map[string]string{
	"other service": `package ares

decisions contains {"action": "restart", "service": "gateway", "reason": "api down"} if {
	some name, svc in input.services
	name == "api"
	some r in svc.replicas
	r.state != "running"
}

decisions contains {"action": "notify", "service": "all", "reason": "someone is idle"} if {
	some name, svc in input.services
	name != "gateway"
	svc.summary.mean_cpu_percent < 20
}
`,
	"helpers, base and garbage": `# METADATA
# title: batch test
package ares

busy contains name if {
	some name, svc in input.services
	svc.summary.mean_cpu_percent >= 50
}

# METADATA
# title: scale out busy services
decisions contains d if {
	some name, _ in input.services
	busy[name]
	d := {"action": "scale_out", "service": name, "reason": "busy"}
}

decisions contains {"action": "notify", "service": "ops", "reason": "docker stale"} if {
	input.sensors.docker.ok == false
}

decisions contains {"bad": name} if {
	some name, svc in input.services
	count(svc.replicas) > 1
	svc.replicas[0].state == "exited"
}
`,
}

// batchFacts is benchFacts with firing alerts on some services (the alert rules of the
// default pack) and a few services whose names share a prefix with others.
func batchFacts(rng *rand.Rand, n int) *engine.Facts {
	f := benchFacts(rng, n)
	f.Services["api"] = f.Services[sortedKeys(f.Services)[0]]
	f.Sensors["alertmanager"] = engine.SensorStatus{OK: true}
	names := sortedKeys(f.Services)
	for range n / 5 {
		f.Alerts = append(f.Alerts, engine.Alert{
			Name:     []string{"ServiceDown", "HighErrorRate", "HighLatency", "DiskFull"}[rng.IntN(4)],
			Service:  names[rng.IntN(len(names))],
			Severity: "critical",
			StartsAt: f.Time.Add(-time.Duration(rng.IntN(600)) * time.Second),
		})
	}
	f.Summarize()
	return f
}

// TestBatchedEqualsOneByOne: evaluating the changed services sixteen to a query (the keyed
// rules) gives exactly the decisions and rejections of evaluating them one per query and of
// evaluating the whole document, over random facts and ticks that change some services, all
// of them, the sensors or nothing.
func TestBatchedEqualsOneByOne(t *testing.T) {
	dirs := map[string]string{"testdata": packDir(t), "default": "../../policies"}
	for name, pol := range batchPolicies {
		dirs[name] = policyDir(t, map[string]string{"p.rego": pol})
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			batched := mustLoad(t, dir, Options{})
			if batched.kq == nil {
				t.Fatal("no keyed query: the set is evaluated one service per query")
			}
			oneByOne := mustLoad(t, dir, Options{})
			oneByOne.kq = nil
			whole := mustLoad(t, dir, Options{Partition: PartitionWhole})
			rng := rand.New(rand.NewPCG(3, 5))
			f := batchFacts(rng, 150)
			total := 0
			for tick := range 10 {
				switch tick % 5 {
				case 1:
					mutate(rng, f, 0.1)
				case 2:
					mutate(rng, f, 1)
				case 3:
					f.Sensors["docker"] = engine.SensorStatus{OK: !f.Sensors["docker"].OK}
				case 4:
					delete(f.Services, sortedKeys(f.Services)[1])
				}
				db, rb := mustEval(t, batched, f)
				do, ro := mustEval(t, oneByOne, f)
				dw, rw := mustEval(t, whole, f)
				if !reflect.DeepEqual(db, do) || !reflect.DeepEqual(rb, ro) {
					t.Fatalf("tick %d: batched and one by one differ:\nbatched    %+v %+v\none by one %+v %+v", tick, db, rb, do, ro)
				}
				if !reflect.DeepEqual(db, dw) || !reflect.DeepEqual(rb, rw) {
					t.Fatalf("tick %d: batched and whole differ:\nbatched %+v %+v\nwhole   %+v %+v", tick, db, rb, dw, rw)
				}
				total += len(db) + len(rb)
			}
			if total == 0 {
				t.Fatal("nothing decided: the facts exercise nothing")
			}
		})
	}
}

// TestKeyedRefused: a partitioned set whose service-reading rules have no named key is still
// evaluated, one service per query.
func TestKeyedRefused(t *testing.T) {
	const head = "package ares\n\n"
	for name, pol := range map[string]string{
		"wildcard key": head + `decisions contains {"action": "notify", "service": "all", "reason": "an exited replica"} if {
	input.services[_].replicas[_].state == "exited"
}
`,
		"key through a function": head + `decisions contains d if {
	some name in ["svc-00001", "svc-00002"]
	d := decide(name)
}

decide(name) := {"action": "notify", "service": name, "reason": "has replicas"} if {
	count(input.services[name].replicas) > 0
}
`,
	} {
		t.Run(name, func(t *testing.T) {
			s := mustLoad(t, policyDir(t, map[string]string{"p.rego": pol}), Options{})
			if !s.Partitioned() {
				t.Fatalf("not partitioned: %s", s.PartitionReason())
			}
			if s.kq != nil {
				t.Fatal("keyed query prepared, want none")
			}
			whole := mustLoad(t, policyDir(t, map[string]string{"p.rego": pol}), Options{Partition: PartitionWhole})
			f := genFacts(rand.New(rand.NewPCG(1, 2)), 40, 1)
			f.Services["svc-00001"].Replicas[0].State = "exited"
			dp, _ := mustEval(t, s, f)
			dw, _ := mustEval(t, whole, f)
			if len(dp) == 0 || !reflect.DeepEqual(dp, dw) {
				t.Errorf("per service %+v, whole %+v", dp, dw)
			}
		})
	}
}

// TestKeyedRuleNameTaken: a policy that defines the keyed rule's name itself keeps it and is
// evaluated one service per query.
func TestKeyedRuleNameTaken(t *testing.T) {
	pol := fmt.Sprintf(`package ares

%s contains "mine"

decisions contains {"action": "notify", "service": name, "reason": "x"} if {
	some name, _ in input.services
}
`, keyedRule)
	s := mustLoad(t, policyDir(t, map[string]string{"p.rego": pol}), Options{})
	if s.kq != nil {
		t.Fatal("keyed query prepared over a rule of the policy")
	}
	if ds, _ := mustEval(t, s, genFacts(rand.New(rand.NewPCG(1, 2)), 3, 1)); len(ds) != 3 {
		t.Errorf("decisions %+v, want 3", ds)
	}
}
