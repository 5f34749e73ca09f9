// Package schema validates facts documents against the documented JSON Schema,
// docs/facts.schema.json (embedded as docs.FactsSchema), so that a captured or hand-written
// document fails with the place that is wrong instead of making policies silently decide nothing.
package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown/cache"

	"github.com/ares-sre/ares/docs"
)

// MaxProblems is how many problems an Error lists; the rest are counted.
const MaxProblems = 10

// Problem is one place where a document departs from the schema.
type Problem struct {
	Path    string // e.g. services.api.replicas[1].state; empty for the document itself
	Message string // e.g. must be one of running, exited (got "sleeping")
}

func (p Problem) String() string {
	if p.Path == "" {
		return "facts: " + p.Message
	}
	return "facts: " + p.Path + ": " + p.Message
}

// Error lists the problems of a document that does not match the schema, sorted by path.
type Error struct {
	Problems []Problem // at most MaxProblems
	More     int       // problems found beyond Problems
}

func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	for _, p := range e.Problems {
		lines = append(lines, p.String())
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("facts: and %d more problems", e.More))
	}
	return strings.Join(lines, "\n")
}

// validator is the schema query, prepared once per process.
type validator struct {
	query rego.PreparedEvalQuery
	cache cache.InterQueryValueCache // keeps the compiled schema between evaluations
}

var (
	prepareOnce sync.Once
	prepared    *validator
	prepareErr  error
)

func load() (*validator, error) {
	prepareOnce.Do(func() {
		prepared, prepareErr = prepare(context.Background())
	})
	return prepared, prepareErr
}

func prepare(ctx context.Context) (*validator, error) {
	var s map[string]any
	if err := json.Unmarshal(docs.FactsSchema, &s); err != nil {
		return nil, fmt.Errorf("facts schema: %w", err)
	}
	q, err := rego.New(
		rego.Query("result := json.match_schema(input, data.facts_schema)"),
		rego.Store(inmem.NewFromObject(map[string]any{"facts_schema": s})),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("facts schema: prepare: %w", err)
	}
	return &validator{query: q, cache: cache.NewInterQueryValueCache(ctx, nil)}, nil
}

// Validate checks a raw facts document against docs.FactsSchema. It returns nil for a valid
// document, an *Error naming every problem's place for an invalid one, and an error with line
// and column for input that is not JSON.
func Validate(raw []byte) error {
	v, err := load()
	if err != nil {
		return err
	}
	doc, err := decode(raw)
	if err != nil {
		return err
	}
	rs, err := v.query.Eval(context.Background(), rego.EvalInput(doc), rego.EvalInterQueryBuiltinValueCache(v.cache))
	if err != nil {
		return fmt.Errorf("facts: validate: %w", err)
	}
	if len(rs) != 1 {
		return fmt.Errorf("facts: validate: schema query returned %d results", len(rs))
	}
	res, ok := rs[0].Bindings["result"].([]any)
	if !ok || len(res) != 2 {
		return fmt.Errorf("facts: validate: unexpected schema result %v", rs[0].Bindings["result"])
	}
	if valid, _ := res[0].(bool); valid {
		return nil
	}
	raws, _ := res[1].([]any)
	return problems(doc, raws)
}

// decode parses raw keeping numbers exact (integer checks must see 137, not 1.37e+02).
func decode(raw []byte) (any, error) {
	if !json.Valid(raw) {
		var x any
		err := json.Unmarshal(raw, &x)
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line, col := position(raw, syn.Offset)
			return nil, fmt.Errorf("facts: not JSON: line %d column %d: %w", line, col, err)
		}
		return nil, fmt.Errorf("facts: not JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("facts: not JSON: %w", err)
	}
	return doc, nil
}

// position converts a json.SyntaxError offset (bytes read, including the offending one) into a
// 1-based line and byte column.
func position(raw []byte, offset int64) (line, col int) {
	i := int(offset) - 1
	i = max(0, min(i, len(raw)))
	before := raw[:i]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = i - bytes.LastIndexByte(before, '\n')
	return line, col
}

// problems turns json.match_schema errors into sorted, de-duplicated problems.
func problems(doc any, raws []any) error {
	seen := map[Problem]bool{}
	var all []Problem
	for _, r := range raws {
		m, _ := r.(map[string]any)
		typ, _ := m["type"].(string)
		field, _ := m["field"].(string)
		desc, _ := m["desc"].(string)
		p := problem(doc, typ, field, desc)
		if !seen[p] {
			seen[p] = true
			all = append(all, p)
		}
	}
	if len(all) == 0 {
		all = append(all, Problem{Message: "does not match the schema"})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Path != all[j].Path {
			return all[i].Path < all[j].Path
		}
		return all[i].Message < all[j].Message
	})
	e := &Error{Problems: all}
	if len(all) > MaxProblems {
		e.Problems, e.More = all[:MaxProblems], len(all)-MaxProblems
	}
	return e
}

// problem words one schema error. field is gojsonschema's dotted context ("(Root)",
// "services.api.replicas.1.state"); it is resolved against the document to print array indexes
// and keys that contain dots.
func problem(doc any, typ, field, desc string) Problem {
	path, val, found := resolve(doc, field)
	switch typ {
	case "required":
		prop := strings.TrimSuffix(desc, " is required")
		return Problem{Path: join(path, prop), Message: "required field is missing"}
	case "invalid_type":
		want := desc
		if _, after, ok := strings.Cut(desc, "Expected: "); ok {
			want, _, _ = strings.Cut(after, ", given:")
		}
		want = strings.ReplaceAll(strings.Trim(want, "[]"), ",", " or ") // "[number,null]"
		return Problem{Path: path, Message: withGot("must be of type "+want, val, found)}
	case "enum":
		if _, after, ok := strings.Cut(desc, "must be one of the following: "); ok {
			return Problem{Path: path, Message: withGot("must be one of "+strings.ReplaceAll(after, `"`, ""), val, found)}
		}
	case "const":
		if _, after, ok := strings.Cut(desc, "does not match: "); ok {
			return Problem{Path: path, Message: withGot("must be "+after, val, found)}
		}
	}
	msg := desc
	if msg != "" {
		msg = strings.ToLower(msg[:1]) + msg[1:]
	}
	return Problem{Path: path, Message: withGot(msg, val, found)}
}

// resolve walks doc along a dotted field and returns the printable path and the value found.
func resolve(doc any, field string) (path string, val any, found bool) {
	if field == "" || strings.EqualFold(field, "(root)") {
		return "", doc, true
	}
	parts := strings.Split(field, ".")
	cur := doc
	var b strings.Builder
	for i := 0; i < len(parts); {
		switch c := cur.(type) {
		case []any:
			n, err := strconv.Atoi(parts[i])
			if err != nil || n < 0 || n >= len(c) {
				return unresolved(b.String(), parts[i:])
			}
			fmt.Fprintf(&b, "[%d]", n)
			cur = c[n]
			i++
		case map[string]any:
			// The longest run of parts naming a key wins, so "web.v2" stays one key.
			j := len(parts)
			for ; j > i; j-- {
				if v, ok := c[strings.Join(parts[i:j], ".")]; ok {
					cur = v
					break
				}
			}
			if j == i {
				return unresolved(b.String(), parts[i:])
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(strings.Join(parts[i:j], "."))
			i = j
		default:
			return unresolved(b.String(), parts[i:])
		}
	}
	return b.String(), cur, true
}

func unresolved(prefix string, rest []string) (string, any, bool) {
	return join(prefix, strings.Join(rest, ".")), nil, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// withGot appends the offending value: scalars as JSON (truncated), containers by kind.
func withGot(msg string, val any, found bool) string {
	if !found {
		return msg
	}
	var got string
	switch v := val.(type) {
	case map[string]any:
		got = "an object"
	case []any:
		got = "an array"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return msg
		}
		got = string(b)
		if len(got) > 40 {
			got = got[:37] + "..."
		}
	}
	return msg + " (got " + got + ")"
}
