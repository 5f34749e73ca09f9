package policy

import (
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
)

// analysis is what static analysis of the compiled modules found.
type analysis struct {
	// partitioned: the decisions for the whole document equal the union, over the services,
	// of the decisions for a document whose input.services holds only that service.
	partitioned bool
	reason      string // why not partitioned: "file:line: what"
	// clock: some rule reads input.tick or input.time or calls a non-deterministic builtin
	// (time.now_ns, http.send, ...), so cached decisions are valid for one tick only.
	clock bool
	// keys: when partitioned, the one service key variable (as compiled) of every rule that
	// reads input.services; rules absent from it do not depend on services.
	keys map[*ast.Rule]ast.Var
}

// analyse decides whether the compiled modules may be evaluated per service. It is
// conservative: anything it cannot prove local to one service makes the set whole-document.
//
// A rule is service-derived when it reads input.services or another service-derived rule.
// Each rule body may reach services only through one variable key (input.services[name],
// helper[name]); a second key, a bare or constant-keyed reference, or a key first bound
// inside a comprehension, negation or every (an aggregate or quantifier over services) makes
// the set whole. Helper rules must be keyed by service name for this to hold.
func analyse(c *ast.Compiler, modules map[string]*ast.Module) analysis {
	var rules []*ast.Rule
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rules = append(rules, c.Modules[name].Rules...)
	}

	// Fixed point: which rule paths are service-derived.
	tainted := map[string]ast.Ref{}
	for changed := true; changed; {
		changed = false
		for _, r := range rules {
			p := r.Ref().GroundPrefix()
			if _, ok := tainted[p.String()]; ok {
				continue
			}
			if readsServices(r, tainted) {
				tainted[p.String()] = p
				changed = true
			}
		}
	}

	a := analysis{keys: map[*ast.Rule]ast.Var{}}
	for _, r := range rules {
		st := ruleState{tainted: tainted}
		st.walk(r, false)
		if st.clock {
			a.clock = true
		}
		if st.whole != "" {
			return analysis{reason: fmt.Sprintf("%s: %s", loc(r.Location), st.whole), clock: a.clock}
		}
		if len(st.keys) > 1 {
			return analysis{reason: fmt.Sprintf("%s: rule %s relates services through several keys", loc(r.Location), r.Head.Ref()), clock: a.clock}
		}
		for v, l := range st.closureKeys {
			if _, ok := st.keys[v]; !ok {
				if l == nil {
					l = r.Location
				}
				return analysis{reason: fmt.Sprintf("%s: rule %s aggregates or quantifies over services", loc(l), r.Head.Ref()), clock: a.clock}
			}
		}
		for v := range st.keys {
			a.keys[r] = v
		}
	}
	a.partitioned = true
	return a
}

func loc(l *ast.Location) string {
	if l == nil {
		return "?"
	}
	return fmt.Sprintf("%s:%d", l.File, l.Row)
}

// readsServices reports whether r refers to input.services or to a tainted rule.
func readsServices(r *ast.Rule, tainted map[string]ast.Ref) bool {
	found := false
	ast.WalkRefs(r, func(ref ast.Ref) bool {
		if isInputServices(ref) || taintedBy(ref, tainted) != nil || isBareInput(ref) {
			found = true
		}
		return found
	})
	return found
}

func isBareInput(ref ast.Ref) bool { return len(ref) == 1 && ref[0].Equal(ast.InputRootDocument) }

func isInputServices(ref ast.Ref) bool {
	return len(ref) >= 2 && ref[0].Equal(ast.InputRootDocument) && ref[1].Equal(kServices)
}

// taintedBy returns the tainted rule path that ref reaches, or nil. A ref to a package prefix
// of a tainted rule (data.ares, data.ares[x]) returns the ref's ground prefix.
func taintedBy(ref ast.Ref, tainted map[string]ast.Ref) ast.Ref {
	if !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	g := ref.GroundPrefix()
	for _, p := range tainted {
		if ref.HasPrefix(p) {
			return p
		}
		if p.HasPrefix(g) {
			return g
		}
	}
	return nil
}

type ruleState struct {
	tainted     map[string]ast.Ref
	keys        map[ast.Var]struct{}      // service keys bound in positive positions
	closureKeys map[ast.Var]*ast.Location // service keys used inside closures
	calls       map[string]struct{}       // tainted functions called
	whole       string                    // why the rule is not per-service
	clock       bool
}

// walk visits x; closure is true inside comprehensions, negations and every.
func (st *ruleState) walk(x any, closure bool) {
	ast.NewGenericVisitor(func(x any) bool {
		if st.whole != "" {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if x.IsCall() {
				st.call(x.Operator(), closure || x.Negated)
			}
			if x.Negated && !closure {
				st.walk(exprParts(x), true)
				for _, w := range x.With {
					st.walk(w, true)
				}
				return true
			}
		case ast.Call:
			if len(x) > 0 {
				if op, ok := x[0].Value.(ast.Ref); ok {
					st.call(op, closure)
				}
			}
		case *ast.ArrayComprehension, *ast.SetComprehension, *ast.ObjectComprehension, *ast.Every:
			if !closure {
				st.walk(x, true)
				return true
			}
		case *ast.Term:
			if r, ok := x.Value.(ast.Ref); ok {
				st.ref(r, closure, x.Location)
			}
		}
		return false
	}).Walk(x)
}

// exprParts are an expression's terms without the wrapping Expr (so that walk does not loop).
func exprParts(x *ast.Expr) any {
	switch t := x.Terms.(type) {
	case []*ast.Term:
		return t
	case *ast.Term:
		return t
	case *ast.SomeDecl:
		return t
	case *ast.Every:
		return t
	}
	return nil
}

// call notes calls of non-deterministic builtins and of service-derived functions. The latter
// count as one more service key, or make the rule whole inside a closure.
func (st *ruleState) call(op ast.Ref, closure bool) {
	if b, ok := ast.BuiltinMap[op.String()]; ok {
		if b.Nondeterministic {
			st.clock = true
		}
		return
	}
	p := taintedBy(op, st.tainted)
	if p == nil {
		return
	}
	if closure {
		st.whole = fmt.Sprintf("calls %s, which depends on input.services, inside an aggregate, negation or every", op)
		return
	}
	if st.calls == nil {
		st.calls = map[string]struct{}{}
	}
	st.calls[p.String()] = struct{}{}
	st.addKey(ast.Var("$call:"+p.String()), false, nil)
}

// ref classifies one reference. Call operators were handled by call and are seen here again;
// they are recognised by being exactly a called tainted function's path.
func (st *ruleState) ref(ref ast.Ref, closure bool, l *ast.Location) {
	switch {
	case isBareInput(ref):
		st.whole = "reads input as a whole"
	case isInputServices(ref):
		if len(ref) == 2 {
			st.whole = "reads input.services as a whole"
			return
		}
		v, ok := ref[2].Value.(ast.Var)
		if !ok {
			st.whole = fmt.Sprintf("reads input.services by a constant key (%s)", ref)
			return
		}
		st.addKey(v, closure, l)
	case len(ref) >= 2 && ref[0].Equal(ast.InputRootDocument):
		if ref[1].Equal(kTick) || ref[1].Equal(kTime) {
			st.clock = true
		}
		if _, ok := ref[1].Value.(ast.String); !ok {
			st.whole = fmt.Sprintf("reads input by a variable key (%s)", ref)
		}
	default:
		p := taintedBy(ref, st.tainted)
		if p == nil {
			return
		}
		if st.calls != nil {
			if _, ok := st.calls[p.String()]; ok && len(ref) == len(p) {
				return // the operator of a call, counted already
			}
		}
		if len(ref) <= len(p) {
			st.whole = fmt.Sprintf("reads %s as a whole, and it depends on input.services", ref)
			return
		}
		v, ok := ref[len(p)].Value.(ast.Var)
		if !ok {
			st.whole = fmt.Sprintf("reads %s by a constant key, and it depends on input.services", ref)
			return
		}
		st.addKey(v, closure, l)
	}
}

func (st *ruleState) addKey(v ast.Var, closure bool, l *ast.Location) {
	if closure {
		if st.closureKeys == nil {
			st.closureKeys = map[ast.Var]*ast.Location{}
		}
		st.closureKeys[v] = l
		return
	}
	if st.keys == nil {
		st.keys = map[ast.Var]struct{}{}
	}
	st.keys[v] = struct{}{}
}
