package policy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/ares-sre/ares/engine"
)

// evalCache is a Set's memory of the previous ticks. It holds no pointer into any Facts.
type evalCache struct {
	round  uint64 // Evaluate calls so far; marks the services seen this tick
	gen    uint64 // bumped when the shared sections (or the clock, if read) change
	global []byte // key of the shared sections
	buf    keyBuf // scratch for keys
	alerts *ast.Term
	sensor *ast.Term
	nodes  *ast.Term // nil when the facts have no nodes

	services map[string]*svcEntry

	// Partitioned: decisions of the document with no services (rules that do not read
	// input.services); subtracted from every service's own result.
	base    *result
	baseGen uint64

	// Whole document: the last result and the generation it belongs to.
	whole    *result
	wholeGen uint64
	dirty    bool // a service was added, changed or removed since whole was computed
}

type svcEntry struct {
	key  []byte
	term *ast.Term // the service's input value
	seen uint64
	gen  uint64 // generation res was computed in; 0: none
	res  *result
}

// result is the decoded answer of one query.
type result struct {
	ds  []engine.Decision
	rej []engine.RejectedDecision
}

// parallelMin is the number of services to evaluate below which one goroutine does it all.
const parallelMin = 32

// Evaluate evaluates the policy over f. It returns the valid decisions, at most one per target
// (lowest engine.Rank wins, then the lexically first reason), sorted by service, replica and
// action, and the results that failed validation, sorted by their JSON. err is set when the
// query failed or its result is not a set or array; then no decisions are returned.
func (s *Set) Evaluate(ctx context.Context, f *engine.Facts) ([]engine.Decision, []engine.RejectedDecision, error) {
	if f == nil {
		return nil, nil, errors.New("policy: evaluate: nil facts")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.cache
	c.round++
	if c.services == nil {
		c.services = make(map[string]*svcEntry, len(f.Services))
	}

	g := appendGlobalKey(c.buf[:0], f, s.plan.clock)
	if c.gen == 0 || !bytes.Equal(g, c.global) {
		c.gen++
		c.global = append(c.global[:0], g...)
		c.alerts = ast.NewTerm(alertsValue(f.Alerts))
		c.sensor = ast.NewTerm(sensorsValue(f.Sensors))
		c.nodes = nodesTerm(f.Nodes)
	}
	c.buf = g[:0]

	var todo []string
	for name, svc := range f.Services {
		k := appendServiceKey(c.buf[:0], svc)
		e := c.services[name]
		if e == nil {
			e = &svcEntry{}
			c.services[name] = e
		}
		if e.key == nil || !bytes.Equal(k, e.key) {
			e.key = append(e.key[:0], k...)
			e.term = nil // converted when needed: by the workers when partitioned
			e.gen, e.res = 0, nil
			c.dirty = true
		}
		c.buf = k[:0]
		e.seen = c.round
		if e.gen != c.gen {
			todo = append(todo, name)
		}
	}
	if len(c.services) > len(f.Services) { // bounded: forget services not present this tick
		for name, e := range c.services {
			if e.seen != c.round {
				delete(c.services, name)
				c.dirty = true
			}
		}
	}

	txn, err := s.store.NewTransaction(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: evaluate: %w", err)
	}
	defer s.store.Abort(ctx, txn)
	run := evalRun{txn: txn, cancel: topdown.NewCancel()}
	defer context.AfterFunc(ctx, run.cancel.Cancel)()
	if s.plan.partitioned {
		return s.evalPartitioned(ctx, run, f, todo)
	}
	return s.evalWhole(ctx, run, f)
}

func (s *Set) evalPartitioned(ctx context.Context, run evalRun, f *engine.Facts, todo []string) ([]engine.Decision, []engine.RejectedDecision, error) {
	c := &s.cache
	if c.base == nil || c.baseGen != c.gen {
		in := documentValue(f, ast.ObjectTerm(), c.alerts, c.sensor, c.nodes)
		res, err := s.eval(ctx, run, in)
		if err != nil {
			return nil, nil, err
		}
		c.base, c.baseGen = res, c.gen
	}
	s.count(len(f.Services)-len(todo), len(todo))

	results := make([]*result, len(todo))
	entries := make([]*svcEntry, len(todo))
	for i, name := range todo {
		entries[i] = c.services[name]
	}
	// one evaluates todo[i] alone; the terms are converted here, on the workers.
	one := func(i int) error {
		name, e := todo[i], entries[i]
		if e.term == nil {
			e.term = serviceTerm(f.Services[name])
		}
		in := documentValue(f, ast.ObjectTerm([2]*ast.Term{strTerm(name), e.term}), c.alerts, c.sensor, c.nodes)
		res, err := s.eval(ctx, run, in)
		if err != nil {
			return fmt.Errorf("service %q: %w", name, err)
		}
		results[i] = res.minus(c.base)
		return nil
	}
	var err error
	if s.kq == nil {
		err = s.parallel(ctx, len(todo), len(todo), one)
	} else {
		// batch evaluates todo[lo:hi] with the keyed query (batch.go); on an error it
		// evaluates them one by one, for the error that names the service.
		batch := func(lo, hi int) error {
			pairs := make([][2]*ast.Term, 0, hi-lo)
			for i := lo; i < hi; i++ {
				if e := entries[i]; e.term == nil {
					e.term = serviceTerm(f.Services[todo[i]])
				}
				pairs = append(pairs, [2]*ast.Term{strTerm(todo[i]), entries[i].term})
			}
			services := objectFromPairs(pairs)
			byName, err := s.evalKeyed(ctx, run, documentValue(f, ast.NewTerm(services), c.alerts, c.sensor, c.nodes))
			if err != nil || services.Len() != hi-lo { // or two names equal after UTF-8 repair
				for i := lo; i < hi; i++ {
					if err := one(i); err != nil {
						return err
					}
				}
				return nil
			}
			for i := lo; i < hi; i++ {
				res := byName[validUTF8(todo[i])]
				if res == nil {
					res = &result{}
				}
				results[i] = res.minus(c.base)
			}
			return nil
		}
		batches := (len(todo) + batchSize - 1) / batchSize
		err = s.parallel(ctx, batches, len(todo), func(b int) error {
			return batch(b*batchSize, min((b+1)*batchSize, len(todo)))
		})
	}
	if err != nil {
		return nil, nil, err
	}
	for i, name := range todo {
		e := c.services[name]
		e.res, e.gen = results[i], c.gen
	}

	n := len(c.base.ds)
	for _, e := range c.services {
		n += len(e.res.ds)
	}
	ds := append(make([]engine.Decision, 0, n), c.base.ds...)
	rej := slices.Clone(c.base.rej)
	for _, e := range c.services {
		ds = append(ds, e.res.ds...)
		rej = append(rej, e.res.rej...)
	}
	return resolve(ds), sortRejected(rej), nil
}

func (s *Set) evalWhole(ctx context.Context, run evalRun, f *engine.Facts) ([]engine.Decision, []engine.RejectedDecision, error) {
	c := &s.cache
	if c.whole != nil && !c.dirty && c.wholeGen == c.gen {
		s.count(1, 0)
		return slices.Clone(c.whole.ds), slices.Clone(c.whole.rej), nil
	}
	s.count(0, 1)
	services := ast.NullTerm()
	if f.Services != nil {
		pairs := make([][2]*ast.Term, 0, len(f.Services))
		for name, svc := range f.Services {
			e := c.services[name]
			if e.term == nil {
				e.term = serviceTerm(svc)
			}
			pairs = append(pairs, [2]*ast.Term{strTerm(name), e.term})
		}
		services = ast.NewTerm(objectFromPairs(pairs))
	}
	res, err := s.eval(ctx, run, documentValue(f, services, c.alerts, c.sensor, c.nodes))
	if err != nil {
		c.whole = nil
		return nil, nil, err
	}
	res.ds, res.rej = resolve(res.ds), sortRejected(res.rej)
	c.whole, c.wholeGen, c.dirty = res, c.gen, false
	return slices.Clone(res.ds), slices.Clone(res.rej), nil
}

func (s *Set) count(hits, misses int) {
	s.hits.Add(uint64(hits))
	s.misses.Add(uint64(misses))
	if s.counters != nil {
		s.counters.hits.Add(float64(hits))
		s.counters.misses.Add(float64(misses))
	}
}

// parallel runs fn(0..n-1) on up to GOMAXPROCS goroutines, one per parallelMin services of
// the services the n calls cover, and returns the first error.
func (s *Set) parallel(ctx context.Context, n, services int, fn func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), 8, n, (services+parallelMin-1)/parallelMin)
	if workers <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// evalRun is what the evaluations of one tick share: one read transaction (the store never
// changes within a Set) and one cancellation watching the tick's context (without it, every
// query starts a goroutine of its own to watch ctx). Metrics are not collected.
type evalRun struct {
	txn    storage.Transaction
	cancel topdown.Cancel
}

// eval runs the prepared query on one input and decodes the decision set.
func (s *Set) eval(ctx context.Context, run evalRun, input ast.Value) (*result, error) {
	elems, err := s.run(ctx, run, &s.pq, s.query, input)
	if err != nil {
		return nil, err
	}
	res := &result{}
	for _, el := range elems {
		res.add(el)
	}
	return res, nil
}

// run evaluates pq (named query in errors) on one input and returns the elements of the set
// or array it results in; none when it is undefined.
func (s *Set) run(ctx context.Context, run evalRun, pq *rego.PreparedEvalQuery, query string, input ast.Value) ([]any, error) {
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalTransaction(run.txn),
		rego.EvalExternalCancel(run.cancel), rego.EvalMetrics(metrics.NoOp()))
	if err != nil {
		return nil, fmt.Errorf("policy: evaluate %s: %w", query, err)
	}
	if len(rs) == 0 {
		return nil, nil // undefined: nothing decided
	}
	if len(rs) > 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("policy: query %s: %d results, want one decision set", query, len(rs))
	}
	v := rs[0].Expressions[0].Value
	elems, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("policy: query %s: result is %s, want a set or array of decisions", query, jsonKind(v))
	}
	return elems, nil
}

// add decodes one element of the decision set into r.
func (r *result) add(el any) {
	d, err := decodeDecision(el)
	if err != nil {
		r.rej = append(r.rej, engine.RejectedDecision{Raw: compactJSON(el), Error: err.Error()})
		return
	}
	r.ds = append(r.ds, d)
}

// decodeDecision checks the shape of one result element and validates it.
func decodeDecision(v any) (engine.Decision, error) {
	var d engine.Decision
	m, ok := v.(map[string]any)
	if !ok {
		return d, fmt.Errorf("decision is %s, want an object", jsonKind(v))
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"action", &d.Action}, {"service", &d.Service}, {"replica", &d.Replica}, {"node", &d.Node}, {"reason", &d.Reason}} {
		raw, ok := m[f.name]
		if !ok {
			continue
		}
		str, ok := raw.(string)
		if !ok {
			return d, fmt.Errorf("field %q: want string (got %s)", f.name, jsonKind(raw))
		}
		*f.dst = str
	}
	return d, d.Validate()
}

func compactJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// minus drops what base already holds: results of rules that do not read input.services
// appear in every service's evaluation and are reported once, from base.
func (r *result) minus(base *result) *result {
	if len(base.ds) == 0 && len(base.rej) == 0 {
		return r
	}
	out := &result{}
	for _, d := range r.ds {
		if !slices.Contains(base.ds, d) {
			out.ds = append(out.ds, d)
		}
	}
	for _, x := range r.rej {
		if !slices.ContainsFunc(base.rej, func(b engine.RejectedDecision) bool { return b.Raw == x.Raw }) {
			out.rej = append(out.rej, x)
		}
	}
	return out
}

// resolve keeps one decision per target, lowest engine.Rank first, ties to the lexically first
// reason, and sorts the survivors by service, replica and action.
func resolve(ds []engine.Decision) []engine.Decision {
	best := make(map[string]engine.Decision, len(ds))
	for _, d := range ds {
		t := d.Target()
		cur, ok := best[t]
		if !ok || better(d, cur) {
			best[t] = d
		}
	}
	out := make([]engine.Decision, 0, len(best))
	for _, d := range best {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b engine.Decision) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Node, b.Node), cmp.Compare(a.Replica, b.Replica), cmp.Compare(a.Action, b.Action))
	})
	return out
}

func better(a, b engine.Decision) bool {
	if ra, rb := engine.Rank(a.Action), engine.Rank(b.Action); ra != rb {
		return ra < rb
	}
	if a.Reason != b.Reason {
		return a.Reason < b.Reason
	}
	return a.Action < b.Action
}

func sortRejected(rej []engine.RejectedDecision) []engine.RejectedDecision {
	slices.SortFunc(rej, func(a, b engine.RejectedDecision) int {
		return cmp.Or(cmp.Compare(a.Raw, b.Raw), cmp.Compare(a.Error, b.Error))
	})
	return slices.CompactFunc(rej, func(a, b engine.RejectedDecision) bool { return a == b })
}
