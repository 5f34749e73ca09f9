package policy

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
	"runtime"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

func BenchmarkProbeWholeAll(b *testing.B) {
	set := mustLoad(b, packDir(b), Options{Partition: PartitionWhole})
	rng := rand.New(rand.NewPCG(1, 2))
	f := genFacts(rng, 1000, 1)
	for range b.N {
		b.StopTimer()
		mutate(rng, f, 1)
		b.StartTimer()
		mustEval(b, set, f)
	}
}

func BenchmarkProbeTrivialEval(b *testing.B) {
	set := mustLoad(b, policyDir(b, map[string]string{"a.rego": "package ares\ndecisions contains 1 if input.x\n"}), Options{})
	in := ast.NewObject([2]*ast.Term{ast.StringTerm("x"), ast.BooleanTerm(false)})
	for range b.N {
		set.pq.Eval(context.Background(), rego.EvalParsedInput(in))
	}
}

func BenchmarkProbeOneService(b *testing.B) {
	set := mustLoad(b, packDir(b), Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	f := genFacts(rng, 1, 1)
	set.cache.services = map[string]*svcEntry{}
	var name string
	for n, s := range f.Services {
		name = n
		set.cache.services[n] = &svcEntry{term: serviceTerm(s)}
	}
	in := documentValue(f, ast.ObjectTerm([2]*ast.Term{strTerm(name), set.cache.services[name].term}), ast.NewTerm(alertsValue(f.Alerts)), ast.NewTerm(sensorsValue(f.Sensors)))
	for range b.N {
		set.eval(context.Background(), nil, in)
	}
}

func TestProbePhases(t *testing.T) {
	set := mustLoad(t, packDir(t), Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	f := genFacts(rng, 1000, 1)
	mustEval(t, set, f)
	for i := 0; i < 5; i++ {
		mutate(rng, f, 1)
		st := time.Now()
		for _, s := range f.Services {
			serviceTerm(s)
		}
		conv := time.Since(st)
		st = time.Now()
		mustEval(t, set, f)
		t.Logf("conv %v eval %v", conv, time.Since(st))
	}
	set2 := mustLoad(t, packDir(t), Options{})
	runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(2)
	for i := 0; i < 3; i++ {
		mutate(rng, f, 1)
		st := time.Now()
		mustEval(t, set2, f)
		t.Logf("1proc eval %v", time.Since(st))
	}
}

func TestProbeBatch(t *testing.T) {
	set := mustLoad(t, packDir(t), Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	f := genFacts(rng, 1000, 1)
	names := sortedKeys(f.Services)
	terms := map[string]*ast.Term{}
	for _, n := range names {
		terms[n] = serviceTerm(f.Services[n])
	}
	al, se := ast.NewTerm(alertsValue(f.Alerts)), ast.NewTerm(sensorsValue(f.Sensors))
	for _, k := range []int{1, 4, 16, 64, 1000} {
		st := time.Now()
		for i := 0; i < len(names); i += k {
			var pairs [][2]*ast.Term
			for _, n := range names[i:min(i+k, len(names))] {
				pairs = append(pairs, [2]*ast.Term{ast.StringTerm(n), terms[n]})
			}
			if _, err := set.eval(context.Background(), nil, documentValue(f, ast.NewTerm(ast.NewObject(pairs...)), al, se)); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("batch %d: %v", k, time.Since(st))
	}
}
