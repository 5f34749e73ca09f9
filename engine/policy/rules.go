package policy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/ares-sre/ares/engine"
)

// Approval values in data.<pkg>.approval.
const (
	approvalRequired = "required"
	approvalNone     = "none"
)

// Rules returns what the revision's policy data tells the governor: the escalation ladder
// (data.<pkg>.ladder) and the actions that need approval (data.<pkg>.approval), where <pkg>
// is the query's package (data.ares for data.ares.decisions).
func (s *Set) Rules() engine.Rules { return s.rules }

var _ engine.RulesSource = (*Set)(nil)

// loadRules evaluates data.<pkg>.ladder and data.<pkg>.approval once per revision. Both may be
// plain data (data.json) or rules that do not read input. Errors name the field.
func loadRules(ctx context.Context, compiler *ast.Compiler, store storage.Store, query string) (engine.Rules, error) {
	var r engine.Rules
	pkg := query
	if i := strings.LastIndexByte(query, '.'); i > 0 {
		pkg = query[:i]
	}
	ladder, ok, err := evalData(ctx, compiler, store, pkg+".ladder")
	if err != nil {
		return r, err
	}
	if ok {
		if r.Ladder, err = parseLadder(pkg+".ladder", ladder); err != nil {
			return r, err
		}
	}
	appr, ok, err := evalData(ctx, compiler, store, pkg+".approval")
	if err != nil {
		return r, err
	}
	if ok {
		if r.Approval, err = parseApproval(pkg+".approval", appr); err != nil {
			return r, err
		}
	}
	return r, nil
}

func evalData(ctx context.Context, compiler *ast.Compiler, store storage.Store, ref string) (any, bool, error) {
	if _, err := ast.ParseRef(ref); err != nil {
		return nil, false, fmt.Errorf("policy: %s: %w", ref, err)
	}
	rs, err := rego.New(rego.Query(ref), rego.Compiler(compiler), rego.Store(store)).Eval(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("policy: evaluate %s: %w", ref, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, false, nil
	}
	return rs[0].Expressions[0].Value, true, nil
}

func parseLadder(field string, v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("policy: %s: want an array of actions, got %T", field, v)
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		a, ok := x.(string)
		if !ok || !slices.Contains(engine.KnownActions, a) {
			return nil, fmt.Errorf("policy: %s[%d]: unknown action %v (want one of %v)", field, i, x, engine.KnownActions)
		}
		if a == engine.ActScaleIn {
			return nil, fmt.Errorf("policy: %s[%d]: scale_in removes capacity and cannot be a rung of the escalation ladder", field, i)
		}
		if slices.Contains(out, a) {
			return nil, fmt.Errorf("policy: %s[%d]: %s is listed twice", field, i, a)
		}
		out = append(out, a)
	}
	return out, nil
}

// parseApproval reads {"defaults": {action: "required"|"none"}, "services": {name: {...}}}.
func parseApproval(field string, v any) (map[string]map[string]bool, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: %s: want an object with \"defaults\" and \"services\", got %T", field, v)
	}
	out := map[string]map[string]bool{}
	for _, k := range sortedKeys(obj) {
		switch k {
		case "defaults":
			m, err := parseApprovalActions(field+".defaults", obj[k])
			if err != nil {
				return nil, err
			}
			out[""] = m
		case "services":
			svcs, ok := obj[k].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("policy: %s.services: want an object of services, got %T", field, obj[k])
			}
			names := make([]string, 0, len(svcs))
			for n := range svcs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if n == "" {
					return nil, fmt.Errorf("policy: %s.services: empty service name", field)
				}
				m, err := parseApprovalActions(field+".services."+n, svcs[n])
				if err != nil {
					return nil, err
				}
				out[n] = m
			}
		default:
			return nil, fmt.Errorf("policy: %s.%s: unknown key (want defaults or services)", field, k)
		}
	}
	return out, nil
}

func parseApprovalActions(field string, v any) (map[string]bool, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: %s: want an object of action: \"required\"|\"none\", got %T", field, v)
	}
	out := map[string]bool{}
	for a, x := range obj {
		if !slices.Contains(engine.KnownActions, a) {
			return nil, fmt.Errorf("policy: %s.%s: unknown action (want one of %v)", field, a, engine.KnownActions)
		}
		switch x {
		case approvalRequired:
			out[a] = true
		case approvalNone:
			out[a] = false
		default:
			return nil, fmt.Errorf("policy: %s.%s: want %q or %q, got %v", field, a, approvalRequired, approvalNone, x)
		}
	}
	return out, nil
}
