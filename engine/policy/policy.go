// Package policy is ARES's policy runtime: it loads a directory of Rego policies and data
// files, compiles and prepares them once per revision, and evaluates the facts document into
// decisions (engine.Evaluator). A Watcher hot-reloads the directory all-or-nothing and hands
// out the live revision (engine.PolicySource).
//
// Evaluation is incremental. The facts document is converted to OPA's ast.Value directly,
// without a JSON round-trip, and, when static analysis of the compiled modules shows that no
// rule relates two services to each other, the policy is evaluated per service, with
// input.services holding only that service, and each service's decisions are cached until
// its facts, the alerts, the sensor statuses or the revision change. The changed services are
// evaluated sixteen to a query through keyed copies of the query's rules, which say which
// service each decision came from (batch.go). Policies that read the document as a whole
// (count(input.services), input.services["db"], joins over two services) are evaluated in one
// query instead; see Set.Partitioned.
package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ares-sre/ares/engine"
)

// DefaultQuery is the query a Set evaluates unless Options.Query says otherwise.
const DefaultQuery = "data.ares.decisions"

// Partition modes for Options.Partition.
const (
	PartitionAuto    = "auto"    // per service unless static analysis finds cross-service rules
	PartitionService = "service" // always per service (the caller vouches for the policy)
	PartitionWhole   = "whole"   // always one query over the whole document
)

// Options configure loading and evaluation. The zero value is usable.
type Options struct {
	// Query is evaluated to the decision set; default DefaultQuery.
	Query string
	// RequireTests runs the set's own *_test.rego tests at load and refuses the set when one
	// fails or errors.
	RequireTests bool
	// Lax compiles without OPA's strict mode (unused variables and imports are then accepted).
	Lax bool
	// Partition is PartitionAuto (default), PartitionService or PartitionWhole.
	Partition string
	// Debounce coalesces bursts of file events in a Watcher; default 100ms.
	Debounce time.Duration
	// InsecureDir loads policies even from a directory that users other than its owner can
	// write (see CheckPermissions); for development only.
	InsecureDir bool
	Log         *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Query == "" {
		o.Query = DefaultQuery
	}
	switch o.Partition {
	case "":
		o.Partition = PartitionAuto
	case PartitionAuto, PartitionService, PartitionWhole:
	default:
		return o, fmt.Errorf("policy: options: partition: must be %q, %q or %q (got %q)",
			PartitionAuto, PartitionService, PartitionWhole, o.Partition)
	}
	if o.Debounce <= 0 {
		o.Debounce = 100 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Set is one compiled, prepared policy revision. It implements engine.Evaluator. A Set may be
// evaluated from several goroutines; evaluations are serialised.
type Set struct {
	dir      string
	query    string
	files    []string // relative to dir, slash-separated, sorted
	rev      string
	pq       rego.PreparedEvalQuery
	kq       *rego.PreparedEvalQuery // the keyed query (batch.go); nil: one service per query
	store    storage.Store
	plan     analysis
	rules    engine.Rules
	log      *slog.Logger
	counters *cacheCounters // may be nil

	hits, misses atomic.Uint64

	mu    sync.Mutex // guards cache
	cache evalCache
}

var _ engine.Evaluator = (*Set)(nil)

// Revision is the first 12 hex digits of the sha256 over the set's file paths and contents.
func (s *Set) Revision() string { return s.rev }

// Files lists the loaded files (policies, tests and data) relative to the directory.
func (s *Set) Files() []string { return slices.Clone(s.files) }

// Partitioned reports whether the set is evaluated per service (see the package doc).
func (s *Set) Partitioned() bool { return s.plan.partitioned }

// PartitionReason explains why a set is evaluated as a whole document ("" when partitioned).
func (s *Set) PartitionReason() string { return s.plan.reason }

// CacheStats returns the cumulative evaluation cache hits and misses of this set: per service
// when partitioned, per tick otherwise.
func (s *Set) CacheStats() (hits, misses uint64) { return s.hits.Load(), s.misses.Load() }

// cacheCounters are a Watcher's metrics, shared by every set it activates.
type cacheCounters struct{ hits, misses prometheus.Counter }

// sourceFile is one file read from the policy directory.
type sourceFile struct {
	rel  string // relative to dir, slash-separated
	path string // dir joined with rel: what errors name
	data []byte
}

func (f sourceFile) isTest() bool { return strings.HasSuffix(f.rel, "_test.rego") }

// Load reads every *.rego file and every data.json, data.yaml and data.yml under dir, compiles
// the policies (tests excluded), prepares opt.Query and, with opt.RequireTests, runs the tests.
// Errors name the file and, where known, the line. Unless opt.InsecureDir, a directory that
// users other than its owner can write is refused first (CheckPermissions).
func Load(dir string, opt Options) (*Set, error) {
	return load(context.Background(), dir, opt, nil, "")
}

// errUnchanged is load's answer when the directory still hashes to skipRev.
var errUnchanged = errors.New("policy: unchanged")

func load(ctx context.Context, dir string, opt Options, counters *cacheCounters, skipRev string) (*Set, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if !opt.InsecureDir {
		if err := CheckPermissions(dir); err != nil {
			return nil, err
		}
	}
	files, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	rev := revision(files)
	if rev == skipRev {
		return nil, errUnchanged
	}

	var modules, tests = map[string]*ast.Module{}, map[string]*ast.Module{}
	var errs []error
	data := map[string]any{}
	popts := ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}
	for _, f := range files {
		switch {
		case strings.HasSuffix(f.rel, ".rego"):
			if f.isTest() && !opt.RequireTests {
				continue // hashed and listed, not compiled
			}
			m, err := ast.ParseModuleWithOpts(f.path, string(f.data), popts)
			if err != nil {
				errs = append(errs, flattenAST(err)...)
				continue
			}
			if f.isTest() {
				tests[f.path] = m
			} else {
				modules[f.path] = m
			}
		default:
			if err := mergeDataFile(data, f); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(modules) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("policy: %s: no .rego policy files", dir)
	}
	if len(errs) > 0 {
		return nil, loadError(errs)
	}

	newCompiler := func() *ast.Compiler {
		return ast.NewCompiler().WithStrict(!opt.Lax).WithEnablePrintStatements(false).WithCapabilities(capabilities())
	}
	compiler := newCompiler()
	if compiler.Compile(modules); compiler.Failed() {
		return nil, loadError(flattenAST(compiler.Errors))
	}
	qref, err := ast.ParseRef(opt.Query)
	if err != nil {
		return nil, fmt.Errorf("policy: query %q: %w", opt.Query, err)
	}
	if len(compiler.GetRules(qref)) == 0 {
		return nil, fmt.Errorf("policy: %s: no rule defines %s", dir, opt.Query)
	}

	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true))
	if opt.RequireTests {
		if err := runTests(ctx, modules, tests, data, !opt.Lax); err != nil {
			return nil, err
		}
	}
	pq, err := rego.New(
		rego.Query(opt.Query),
		rego.Compiler(compiler),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare %s: %w", opt.Query, err)
	}

	rules, err := loadRules(ctx, compiler, store, opt.Query)
	if err != nil {
		return nil, err
	}

	plan := analyse(compiler, modules)
	var kq *rego.PreparedEvalQuery
	if opt.Partition != PartitionWhole {
		var why string
		if kq, why = prepareKeyed(ctx, compiler, modules, opt.Query, plan, newCompiler, store); kq == nil && plan.partitioned {
			opt.Log.Debug("policy: changed services are evaluated one per query", "policy_rev", rev, "err", why)
		}
	}
	switch opt.Partition {
	case PartitionService:
		plan.partitioned, plan.reason = true, ""
	case PartitionWhole:
		plan.partitioned, plan.reason = false, "forced by options"
	}

	rels := make([]string, len(files))
	for i, f := range files {
		rels[i] = f.rel
	}
	return &Set{
		dir: dir, query: opt.Query, files: rels, rev: rev, pq: pq, kq: kq, store: store, plan: plan, rules: rules,
		log: opt.Log, counters: counters,
	}, nil
}

// readDir returns the policy and data files under dir, sorted by relative path. Hidden files
// and directories (editor swap files, .git) are skipped.
func readDir(dir string) ([]sourceFile, error) {
	var files []sourceFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isPolicyFile(name) {
			return nil
		}
		bs, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, sourceFile{rel: filepath.ToSlash(rel), path: path, data: bs})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, nil
}

func isPolicyFile(name string) bool {
	switch name {
	case "data.json", "data.yaml", "data.yml":
		return true
	}
	return strings.HasSuffix(name, ".rego")
}

func revision(files []sourceFile) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		for _, b := range [][]byte{[]byte(f.rel), f.data} {
			l := uint64(len(b))
			for i := range n {
				n[i] = byte(l >> (8 * i))
			}
			h.Write(n[:])
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// flattenAST turns OPA's error lists into one error per problem, each "file:line: code: msg".
func flattenAST(err error) []error {
	var errs ast.Errors
	if errors.As(err, &errs) {
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = e
		}
		return out
	}
	return []error{err}
}

// loadError joins the problems of one load, one per line, behind a single prefix.
func loadError(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("policy: %s", strings.Join(msgs, "\n"))
}

// mergeDataFile merges a data file into data at the file's directory path, as OPA bundles do.
func mergeDataFile(data map[string]any, f sourceFile) error {
	var v any
	if strings.HasSuffix(f.rel, ".json") {
		dec := json.NewDecoder(bytes.NewReader(f.data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%s:%d: %w", f.path, jsonErrLine(f.data, err), err)
		}
		if dec.More() {
			return fmt.Errorf("%s: more than one JSON value", f.path)
		}
	} else if err := util.Unmarshal(f.data, &v); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: data file must hold an object (got %s)", f.path, jsonKind(v))
	}
	node := data
	if d := strings.TrimSuffix(pathDir(f.rel), "/"); d != "" {
		for _, seg := range strings.Split(d, "/") {
			next, ok := node[seg]
			if !ok {
				m := map[string]any{}
				node[seg], next = m, m
			}
			m, ok := next.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: data path %s conflicts with another data file", f.path, d)
			}
			node = m
		}
	}
	return mergeInto(node, obj, f.path, pathDir(f.rel))
}

func pathDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i+1]
	}
	return ""
}

func mergeInto(dst, src map[string]any, file, at string) error {
	for k, v := range src {
		cur, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		cm, ok1 := cur.(map[string]any)
		vm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: key %s%s conflicts with another data file", file, at, k)
		}
		if err := mergeInto(cm, vm, file, at+k+"."); err != nil {
			return err
		}
	}
	return nil
}

func jsonErrLine(src []byte, err error) int {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		off = int64(len(src))
	}
	off = min(off, int64(len(src)))
	return 1 + bytes.Count(src[:off], []byte{'\n'})
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number, float64, int:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// runTests runs the set's *_test.rego files against its policies and data.
func runTests(ctx context.Context, modules, tests map[string]*ast.Module, data map[string]any, strict bool) error {
	if len(tests) == 0 {
		return nil
	}
	all := make(map[string]*ast.Module, len(modules)+len(tests))
	for k, m := range modules {
		all[k] = m.Copy()
	}
	for k, m := range tests {
		all[k] = m
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(true))
	ch, err := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithStrict(strict).WithCapabilities(capabilities())).
		SetStore(store).
		SetModules(all).
		SetTimeout(10*time.Second).
		RunTests(ctx, nil)
	if err != nil {
		return loadError(flattenAST(err))
	}
	var failed []string
	n := 0
	for r := range ch {
		n++
		if r.Pass() || r.Skip {
			continue
		}
		where := ""
		if r.Location != nil {
			where = fmt.Sprintf(" (%s:%d)", r.Location.File, r.Location.Row)
		}
		if r.Error != nil {
			failed = append(failed, fmt.Sprintf("%s.%s%s: ERROR: %v", r.Package, r.Name, where, r.Error))
		} else {
			failed = append(failed, fmt.Sprintf("%s.%s%s: FAIL", r.Package, r.Name, where))
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("policy: %d of %d tests failed:\n%s", len(failed), n, strings.Join(failed, "\n"))
	}
	return nil
}
