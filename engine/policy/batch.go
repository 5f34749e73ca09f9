package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Evaluating several changed services in one query amortises OPA's fixed cost per evaluation
// (about 6 us and 60 allocations, a tenth of a service's cost with the default pack) and skips
// the rules that do not read input.services, which a per-service evaluation runs again for
// every service. The decisions of such a query must still be told apart per service, for the
// cache: so beside every rule of the query's set that reads input.services, a copy is compiled
// whose elements carry the rule's service key (the one variable analyse found it reads
// input.services and service-keyed rules through):
//
//	decisions contains d if { some name, svc in input.services; ... }
//	keyedRule contains [name, d] if { some name, svc in input.services; ... }
//
// The copy has the original's body, so for each service it yields exactly the decisions that
// evaluating the original over a document holding only that service yields, less those of the
// rules that do not read input.services (the base, evaluated once per tick as before). The
// copies are compiled into a compiler of their own: the policy's own compiler, and so every
// other query, never sees them.

// keyedRule names the copies, in the package of the query's rules.
const keyedRule = "__ares_keyed"

// batchSize is the number of services per keyed evaluation: 16 costs 15 % less than one per
// evaluation with the default pack; more gains nothing and balances the cores less well.
const batchSize = 16

// prepareKeyed prepares the keyed query for a partitioned set, or returns nil and why not.
// Keying needs the query to name a partial set whose service-reading rules are plain
// `name contains term if body` rules with a named key variable.
func prepareKeyed(ctx context.Context, c *ast.Compiler, modules map[string]*ast.Module, query string, plan analysis,
	newCompiler func() *ast.Compiler, store storage.Store,
) (*rego.PreparedEvalQuery, string) {
	if !plan.partitioned {
		return nil, "not partitioned"
	}
	qref, err := ast.ParseRef(query)
	if err != nil || len(qref) < 2 {
		return nil, fmt.Sprintf("query %s is not a rule", query)
	}
	pkg, name := qref[:len(qref)-1], qref[len(qref)-1]
	if _, ok := name.Value.(ast.String); !ok {
		return nil, fmt.Sprintf("query %s is not a rule", query)
	}
	keyedRef := pkg.Append(ast.StringTerm(keyedRule))
	if len(c.GetRules(keyedRef)) > 0 {
		return nil, fmt.Sprintf("a rule %s exists", keyedRef)
	}

	copies := map[string]*ast.Module{} // by file: the parsed module with the copies added
	for _, r := range c.GetRules(qref) {
		v, reads := plan.keys[r]
		if !reads {
			continue // part of the base
		}
		if !r.Module.Package.Path.Equal(pkg) || len(r.Head.Ref()) != 1 || r.Head.RuleKind() != ast.MultiValue {
			return nil, fmt.Sprintf("%s: rule %s is not a plain partial set rule of %s", loc(r.Location), r.Head.Ref(), pkg)
		}
		if orig, ok := c.RewrittenVars[v]; ok {
			v = orig
		}
		if v.IsGenerated() || v.IsWildcard() || strings.HasPrefix(string(v), "$") {
			return nil, fmt.Sprintf("%s: rule %s has no named service key", loc(r.Location), r.Head.Ref())
		}
		file := r.Location.File
		parsed := findRule(modules[file], r.Location)
		if parsed == nil {
			return nil, fmt.Sprintf("%s: rule %s not found in the parsed module", loc(r.Location), r.Head.Ref())
		}
		m, ok := copies[file]
		if !ok {
			m = modules[file].Copy()
			copies[file] = m
		}
		cp := parsed.Copy()
		cp.Head = ast.NewHead(ast.Var(keyedRule), ast.ArrayTerm(ast.VarTerm(string(v)), parsed.Head.Key.Copy()))
		cp.Head.Location = parsed.Head.Location
		cp.Module = m
		m.Rules = append(m.Rules, cp)
	}
	if len(copies) == 0 {
		return nil, "no rule of the query reads input.services"
	}

	all := make(map[string]*ast.Module, len(modules))
	for file, m := range modules {
		all[file] = m
	}
	for file, m := range copies {
		all[file] = m
	}
	kc := newCompiler()
	if kc.Compile(all); kc.Failed() {
		return nil, fmt.Sprintf("keyed copies do not compile: %v", kc.Errors)
	}
	pq, err := rego.New(rego.Query(keyedRef.String()), rego.Compiler(kc), rego.Store(store)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Sprintf("prepare keyed query: %v", err)
	}
	return &pq, ""
}

// findRule returns the rule of m at l (a compiled rule's location), or nil.
func findRule(m *ast.Module, l *ast.Location) *ast.Rule {
	if m == nil || l == nil {
		return nil
	}
	for _, r := range m.Rules {
		if r.Location != nil && r.Location.Row == l.Row && r.Location.Col == l.Col {
			return r
		}
	}
	return nil
}

// evalKeyed evaluates the keyed query on a document holding several services and returns
// each service's decoded decisions (services that decided nothing are absent).
func (s *Set) evalKeyed(ctx context.Context, run evalRun, input ast.Value) (map[string]*result, error) {
	elems, err := s.run(ctx, run, s.kq, s.query+" (keyed)", input)
	if err != nil {
		return nil, err
	}
	out := map[string]*result{}
	for _, el := range elems {
		pair, ok := el.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("policy: keyed query: element %s, want [service, decision]", compactJSON(el))
		}
		name, ok := pair[0].(string)
		if !ok {
			return nil, fmt.Errorf("policy: keyed query: service key %s, want a string", compactJSON(pair[0]))
		}
		res := out[name]
		if res == nil {
			res = &result{}
			out[name] = res
		}
		res.add(pair[1])
	}
	return out, nil
}
