// Benchmarks of the policy runtime against plain rego.EvalInput, on testdata/pack (six rules
// like the default pack, thresholds in data.json) over N services with two replicas each.
//
//	go test -run xxx -bench . -benchtime 20x ./engine/policy/
//
// Measured 2026-12-04, OPA v1.22.4, Go 1.26, 2 cores (AMD EPYC) shared with other builds: load
// average 3.4 to 5 during the runs, so the spread is wide; ranges over 3 to 6 runs, ms/tick:
//
//	Evaluate   services=1000, 10% changed     7.2 .. 12
//	Evaluate   services=1000, all changed    53 .. 98   (target 30: missed on this host)
//	Evaluate   services=5000, steady          6.4 .. 9.7
//	Baseline   services=1000 (EvalInput)    101 .. 116
//	Baseline   services=5000 (EvalInput)    580 .. 813
//
// Where the time goes when everything changed: about 7 ms converting 1000 services to
// ast.Value (now spread over the workers), about 6.6 us fixed cost per Eval, and 35..65 us of
// OPA evaluation per service for this pack; GC adds a quarter. The default pack in policies/
// costs about 150 us per service (comprehension-based precedence), 11 ms at 10 % changed.
package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/ares-sre/ares/engine"
)

func reportTick(b *testing.B, total time.Duration) {
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/tick")
}

func BenchmarkEvaluate(b *testing.B) {
	for _, bc := range []struct {
		services int
		changed  string
		frac     float64
	}{
		{1000, "10pct", 0.10},
		{1000, "all", 1},
		{5000, "steady", 0},
	} {
		b.Run(fmt.Sprintf("services=%d,changed=%s", bc.services, bc.changed), func(b *testing.B) {
			set := mustLoad(b, packDir(b), Options{})
			if !set.Partitioned() {
				b.Fatalf("pack is not partitioned: %s", set.PartitionReason())
			}
			rng := rand.New(rand.NewPCG(1, 2))
			f := genFacts(rng, bc.services, 1)
			mustEval(b, set, f) // warm the cache
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if bc.frac > 0 {
					mutate(rng, f, bc.frac)
				}
				b.StartTimer()
				start := time.Now()
				mustEval(b, set, f)
				total += time.Since(start)
			}
			reportTick(b, total)
		})
	}
}

// BenchmarkBaselineEvalInput is the plain approach: the facts as a JSON-decoded map through
// rego.EvalInput, one query over the whole document, no cache.
func BenchmarkBaselineEvalInput(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			set := mustLoad(b, packDir(b), Options{})
			pq := set.pq
			f := genFacts(rand.New(rand.NewPCG(1, 2)), n, 1)
			input := jsonMap(b, f)
			ctx := context.Background()
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if _, err := pq.Eval(ctx, rego.EvalInput(input)); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			reportTick(b, total)
		})
	}
}

func jsonMap(tb testing.TB, f *engine.Facts) any {
	bs, err := json.Marshal(f)
	if err != nil {
		tb.Fatal(err)
	}
	var v any
	if err := util.UnmarshalJSON(bs, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}
