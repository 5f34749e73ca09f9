package policy

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/ares-sre/ares/engine"
)

// This file converts engine.Facts to ast.Value directly. The result equals what OPA makes of
// json.Marshal(facts) (rego.EvalInput round-trips through JSON): same keys, omitted nil
// sections, null for nil maps, slices and pointers, numbers spelled as encoding/json spells
// them, times as RFC 3339 strings, invalid UTF-8 replaced byte by byte. Non-finite floats,
// which encoding/json refuses, become null.

// Interned key terms: shared, never mutated.
var (
	kVersion, kTick, kTime, kServices, kAlerts, kSensors = ast.StringTerm("version"), ast.StringTerm("tick"), ast.StringTerm("time"), ast.StringTerm("services"), ast.StringTerm("alerts"), ast.StringTerm("sensors")

	kReplicas, kDesired, kSummary, kMetrics, kProbe, kAnomaly, kHistory = ast.StringTerm("replicas"), ast.StringTerm("desired_replicas"), ast.StringTerm("summary"), ast.StringTerm("metrics"), ast.StringTerm("probe"), ast.StringTerm("anomaly"), ast.StringTerm("history")

	kID, kName, kState, kHealth, kExitCode, kOOM, kRestarts = ast.StringTerm("id"), ast.StringTerm("name"), ast.StringTerm("state"), ast.StringTerm("health"), ast.StringTerm("exit_code"), ast.StringTerm("oom_killed"), ast.StringTerm("restart_count")
	kCPU, kMemBytes, kMemLimit, kMemPct, kTrend, kScaled    = ast.StringTerm("cpu_percent"), ast.StringTerm("mem_bytes"), ast.StringTerm("mem_limit_bytes"), ast.StringTerm("mem_percent"), ast.StringTerm("trend"), ast.StringTerm("scaled")
	kSlope, kSecsToLimit                                    = ast.StringTerm("mem_slope_bytes_per_s"), ast.StringTerm("seconds_to_mem_limit")

	kSumReplicas, kRunning, kMeanCPU, kMaxMem, kScaledReplicas, kUnhealthyOrDown = ast.StringTerm("replicas"), ast.StringTerm("running"), ast.StringTerm("mean_cpu_percent"), ast.StringTerm("max_mem_percent"), ast.StringTerm("scaled_replicas"), ast.StringTerm("unhealthy_or_down")

	kRPS, kErrorRate, kP99                   = ast.StringTerm("rps"), ast.StringTerm("error_rate"), ast.StringTerm("latency_p99_ms")
	kP50, kLogs                              = ast.StringTerm("latency_p50_ms"), ast.StringTerm("logs")
	kErrorsPerMin, kLastError, kLastErrorAt  = ast.StringTerm("errors_per_min"), ast.StringTerm("last_error"), ast.StringTerm("last_error_at")
	kOK, kConsecFails, kLatency              = ast.StringTerm("ok"), ast.StringTerm("consecutive_failures"), ast.StringTerm("latency_ms")
	kScore, kIsAnomaly, kRisk                = ast.StringTerm("score"), ast.StringTerm("is_anomaly"), ast.StringTerm("risk")
	kFeatures, kDrivers, kModelAge, kWarming = ast.StringTerm("features"), ast.StringTerm("drivers"), ast.StringTerm("model_age_ticks"), ast.StringTerm("warming_up")
	kActions10m, kSinceLast, kBackoffUntil   = ast.StringTerm("actions_10m"), ast.StringTerm("seconds_since_last_action"), ast.StringTerm("backoff_until")
	kPaused, kLastActionAt                   = ast.StringTerm("paused"), ast.StringTerm("last_action_at")
	kStoppedByOperator, kLadderStep          = ast.StringTerm("stopped_by_operator"), ast.StringTerm("ladder_step")
	kLastVerified, kVerifying, kPendingAppr  = ast.StringTerm("last_action_verified"), ast.StringTerm("verifying"), ast.StringTerm("pending_approvals")
	kSeverity, kLabels, kAnnotations         = ast.StringTerm("severity"), ast.StringTerm("labels"), ast.StringTerm("annotations")
	kStartsAt, kService, kAgeS, kErrS        = ast.StringTerm("starts_at"), ast.StringTerm("service"), ast.StringTerm("age_s"), ast.StringTerm("error")
	kRuntime, kNode, kNodeStatus, kNodeAvail = ast.StringTerm("runtime"), ast.StringTerm("node"), ast.StringTerm("node_status"), ast.StringTerm("node_availability")

	kNodes, kHostname, kStatus, kAvailability         = ast.StringTerm("nodes"), ast.StringTerm("hostname"), ast.StringTerm("status"), ast.StringTerm("availability")
	kManager, kLeader, kTasksRunning, kTasksFailed10m = ast.StringTerm("manager"), ast.StringTerm("leader"), ast.StringTerm("tasks_running"), ast.StringTerm("tasks_failed_10m")
)

// FactsValue converts f to the ast.Value that OPA builds from json.Marshal(f).
func FactsValue(f *engine.Facts) ast.Value {
	if f == nil {
		return ast.Null{}
	}
	var services ast.Value = ast.Null{}
	if f.Services != nil {
		pairs := make([][2]*ast.Term, 0, len(f.Services))
		for name, s := range f.Services {
			pairs = append(pairs, [2]*ast.Term{strTerm(name), serviceTerm(s)})
		}
		services = objectFromPairs(pairs)
	}
	return documentValue(f, ast.NewTerm(services), ast.NewTerm(alertsValue(f.Alerts)), ast.NewTerm(sensorsValue(f.Sensors)), nodesTerm(f.Nodes))
}

// documentValue assembles the top level from pre-built sections; nodes is nil when the facts
// have none (the key is then absent, as in the JSON).
func documentValue(f *engine.Facts, services, alerts, sensors, nodes *ast.Term) ast.Object {
	o := ast.NewObject(
		[2]*ast.Term{kVersion, intTerm(int64(f.Version))},
		[2]*ast.Term{kTick, ast.NumberTerm(jsonNumber(strconv.FormatUint(f.Tick, 10)))},
		[2]*ast.Term{kTime, timeTerm(f.Time)},
		[2]*ast.Term{kServices, services},
		[2]*ast.Term{kAlerts, alerts},
		[2]*ast.Term{kSensors, sensors},
	)
	if nodes != nil {
		o.Insert(kNodes, nodes)
	}
	return o
}

// nodesTerm converts the swarm's nodes; nil when there are none (omitempty).
func nodesTerm(ns map[string]engine.Node) *ast.Term {
	if len(ns) == 0 {
		return nil
	}
	pairs := make([][2]*ast.Term, 0, len(ns))
	for id, n := range ns {
		pairs = append(pairs, [2]*ast.Term{strTerm(id), ast.ObjectTerm(
			[2]*ast.Term{kHostname, strTerm(n.Hostname)},
			[2]*ast.Term{kStatus, strTerm(n.Status)},
			[2]*ast.Term{kAvailability, strTerm(n.Availability)},
			[2]*ast.Term{kManager, ast.InternedTerm(n.Manager)},
			[2]*ast.Term{kLeader, ast.InternedTerm(n.Leader)},
			[2]*ast.Term{kTasksRunning, intTerm(int64(n.TasksRunning))},
			[2]*ast.Term{kTasksFailed10m, intTerm(int64(n.TasksFailed10m))},
		)})
	}
	return ast.NewTerm(objectFromPairs(pairs))
}

func serviceValue(s *engine.Service) ast.Value {
	if s == nil {
		return ast.Null{}
	}
	pairs := make([][2]*ast.Term, 0, 7)
	var reps ast.Value = ast.Null{}
	if s.Replicas != nil {
		ts := make([]*ast.Term, len(s.Replicas))
		for i := range s.Replicas {
			ts[i] = ast.NewTerm(replicaValue(&s.Replicas[i]))
		}
		reps = ast.NewArray(ts...)
	}
	pairs = append(pairs,
		[2]*ast.Term{kReplicas, ast.NewTerm(reps)},
		[2]*ast.Term{kDesired, intTerm(int64(s.DesiredReplicas))},
	)
	if s.Runtime != "" { // omitempty, as in engine.Service
		pairs = append(pairs, [2]*ast.Term{kRuntime, strTerm(s.Runtime)})
	}
	if m := s.Summary; m != nil {
		pairs = append(pairs, [2]*ast.Term{kSummary, ast.ObjectTerm(
			[2]*ast.Term{kSumReplicas, intTerm(int64(m.Replicas))},
			[2]*ast.Term{kRunning, intTerm(int64(m.Running))},
			[2]*ast.Term{kMeanCPU, floatTerm(m.MeanCPUPercent)},
			[2]*ast.Term{kMaxMem, floatTerm(m.MaxMemPercent)},
			[2]*ast.Term{kScaledReplicas, intTerm(int64(m.ScaledReplicas))},
			[2]*ast.Term{kUnhealthyOrDown, intTerm(int64(m.UnhealthyOrDown))},
		)})
	}
	if m := s.Metrics; m != nil {
		pairs = append(pairs, [2]*ast.Term{kMetrics, metricsTerm(m)})
	}
	if l := s.Logs; l != nil {
		lp := [][2]*ast.Term{{kErrorsPerMin, floatTerm(l.ErrorsPerMin)}, {kLastError, strTerm(l.LastError)}}
		if l.LastErrorAt != nil {
			lp = append(lp, [2]*ast.Term{kLastErrorAt, timeTerm(*l.LastErrorAt)})
		}
		pairs = append(pairs, [2]*ast.Term{kLogs, ast.ObjectTerm(lp...)})
	}
	if p := s.Probe; p != nil {
		pairs = append(pairs, [2]*ast.Term{kProbe, ast.ObjectTerm(
			[2]*ast.Term{kOK, ast.InternedTerm(p.OK)},
			[2]*ast.Term{kConsecFails, intTerm(int64(p.ConsecutiveFailures))},
			[2]*ast.Term{kLatency, floatTerm(p.LatencyMs)},
		)})
	}
	if a := s.Anomaly; a != nil {
		ap := [][2]*ast.Term{
			{kScore, floatTerm(a.Score)},
			{kIsAnomaly, ast.InternedTerm(a.IsAnomaly)},
			{kRisk, vocabTerm(a.Risk)},
		}
		if a.ModelAgeTicks != 0 { // omitempty, as in engine.Anomaly
			ap = append(ap, [2]*ast.Term{kModelAge, intTerm(int64(a.ModelAgeTicks))})
		}
		if a.WarmingUp {
			ap = append(ap, [2]*ast.Term{kWarming, ast.InternedTerm(true)})
		}
		if len(a.Features) > 0 {
			fp := make([][2]*ast.Term, 0, len(a.Features))
			for k, v := range a.Features {
				fp = append(fp, [2]*ast.Term{strTerm(k), floatTerm(v)})
			}
			ap = append(ap, [2]*ast.Term{kFeatures, ast.NewTerm(objectFromPairs(fp))})
		}
		if len(a.Drivers) > 0 {
			ds := make([]*ast.Term, len(a.Drivers))
			for i, d := range a.Drivers {
				ds[i] = strTerm(d)
			}
			ap = append(ap, [2]*ast.Term{kDrivers, ast.ArrayTerm(ds...)})
		}
		pairs = append(pairs, [2]*ast.Term{kAnomaly, ast.ObjectTerm(ap...)})
	}
	if h := s.History; h != nil {
		hp := [][2]*ast.Term{
			{kActions10m, intTerm(int64(h.Actions10m))},
			{kSinceLast, floatTerm(h.SecondsSinceLastAction)},
		}
		if h.BackoffUntil != nil {
			hp = append(hp, [2]*ast.Term{kBackoffUntil, timeTerm(*h.BackoffUntil)})
		}
		if h.LastActionAt != nil {
			hp = append(hp, [2]*ast.Term{kLastActionAt, timeTerm(*h.LastActionAt)})
		}
		if h.Paused {
			hp = append(hp, [2]*ast.Term{kPaused, ast.InternedTerm(true)})
		}
		if h.LadderStep != 0 {
			hp = append(hp, [2]*ast.Term{kLadderStep, intTerm(int64(h.LadderStep))})
		}
		if h.LastActionVerified != nil {
			hp = append(hp, [2]*ast.Term{kLastVerified, ast.InternedTerm(*h.LastActionVerified)})
		}
		if h.Verifying {
			hp = append(hp, [2]*ast.Term{kVerifying, ast.InternedTerm(true)})
		}
		if h.PendingApprovals != 0 {
			hp = append(hp, [2]*ast.Term{kPendingAppr, intTerm(int64(h.PendingApprovals))})
		}
		pairs = append(pairs, [2]*ast.Term{kHistory, ast.ObjectTerm(hp...)})
	}
	return ast.NewObject(pairs...)
}

func metricsTerm(m *engine.Metrics) *ast.Term {
	return ast.ObjectTerm(
		[2]*ast.Term{kRPS, floatTerm(m.RPS)},
		[2]*ast.Term{kErrorRate, floatTerm(m.ErrorRate)},
		[2]*ast.Term{kP50, floatTerm(m.LatencyP50Ms)},
		[2]*ast.Term{kP99, floatTerm(m.LatencyP99Ms)},
	)
}

func replicaValue(r *engine.Replica) ast.Value {
	pairs := make([][2]*ast.Term, 0, 13)
	pairs = append(pairs,
		[2]*ast.Term{kID, strTerm(r.ID)},
		[2]*ast.Term{kName, strTerm(r.Name)},
		[2]*ast.Term{kState, vocabTerm(r.State)},
		[2]*ast.Term{kHealth, vocabTerm(r.Health)},
		[2]*ast.Term{kExitCode, intTerm(int64(r.ExitCode))},
		[2]*ast.Term{kOOM, ast.InternedTerm(r.OOMKilled)},
		[2]*ast.Term{kRestarts, intTerm(int64(r.RestartCount))},
		[2]*ast.Term{kCPU, floatTerm(r.CPUPercent)},
		[2]*ast.Term{kMemBytes, intTerm(r.MemBytes)},
		[2]*ast.Term{kMemLimit, intTerm(r.MemLimitBytes)},
		[2]*ast.Term{kMemPct, floatTerm(r.MemPercent)},
	)
	if t := r.Trend; t != nil {
		var secs = ast.NullTerm()
		if t.SecondsToMemLimit != nil {
			secs = floatTerm(*t.SecondsToMemLimit)
		}
		pairs = append(pairs, [2]*ast.Term{kTrend, ast.ObjectTerm(
			[2]*ast.Term{kSlope, floatTerm(t.MemSlopeBytesPerS)},
			[2]*ast.Term{kSecsToLimit, secs},
		)})
	}
	if r.Metrics != nil {
		pairs = append(pairs, [2]*ast.Term{kMetrics, metricsTerm(r.Metrics)})
	}
	if r.Scaled {
		pairs = append(pairs, [2]*ast.Term{kScaled, ast.InternedTerm(true)})
	}
	if r.Paused {
		pairs = append(pairs, [2]*ast.Term{kPaused, ast.InternedTerm(true)})
	}
	if r.StoppedByOperator {
		pairs = append(pairs, [2]*ast.Term{kStoppedByOperator, ast.InternedTerm(true)})
	}
	for _, f := range [...]struct {
		k *ast.Term
		v string
	}{{kNode, r.Node}, {kNodeStatus, r.NodeStatus}, {kNodeAvail, r.NodeAvailability}, {kErrS, r.Error}} {
		if f.v != "" { // omitempty, as in engine.Replica
			pairs = append(pairs, [2]*ast.Term{f.k, strTerm(f.v)})
		}
	}
	return ast.NewObject(pairs...)
}

func alertsValue(as []engine.Alert) ast.Value {
	if as == nil {
		return ast.Null{}
	}
	ts := make([]*ast.Term, len(as))
	for i := range as {
		a := &as[i]
		ts[i] = ast.ObjectTerm(
			[2]*ast.Term{kName, strTerm(a.Name)},
			[2]*ast.Term{kService, strTerm(a.Service)},
			[2]*ast.Term{kSeverity, strTerm(a.Severity)},
			[2]*ast.Term{kLabels, stringMapTerm(a.Labels)},
			[2]*ast.Term{kAnnotations, stringMapTerm(a.Annotations)},
			[2]*ast.Term{kStartsAt, timeTerm(a.StartsAt)},
		)
	}
	return ast.NewArray(ts...)
}

func sensorsValue(ss map[string]engine.SensorStatus) ast.Value {
	if ss == nil {
		return ast.Null{}
	}
	pairs := make([][2]*ast.Term, 0, len(ss))
	for name, s := range ss {
		pairs = append(pairs, [2]*ast.Term{strTerm(name), ast.ObjectTerm(
			[2]*ast.Term{kOK, ast.InternedTerm(s.OK)},
			[2]*ast.Term{kAgeS, floatTerm(s.AgeS)},
			[2]*ast.Term{kErrS, strTerm(s.Error)},
		)})
	}
	return objectFromPairs(pairs)
}

func stringMapTerm(m map[string]string) *ast.Term {
	if m == nil {
		return ast.NullTerm()
	}
	pairs := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, [2]*ast.Term{strTerm(k), strTerm(v)})
	}
	return ast.NewTerm(objectFromPairs(pairs))
}

// objectFromPairs builds an object from map entries. Keys are unique unless UTF-8 repair made
// two of them equal; then, as when decoding JSON, the last one in key order wins.
func objectFromPairs(pairs [][2]*ast.Term) ast.Object {
	seen := make(map[string]struct{}, len(pairs))
	for _, p := range pairs {
		k := string(p[0].Value.(ast.String))
		if _, dup := seen[k]; dup {
			return dedupObject(pairs)
		}
		seen[k] = struct{}{}
	}
	return ast.NewObject(pairs...)
}

func dedupObject(pairs [][2]*ast.Term) ast.Object {
	obj := ast.NewObjectWithCapacity(len(pairs))
	slices.SortFunc(pairs, func(a, b [2]*ast.Term) int { return a[0].Value.Compare(b[0].Value) })
	for _, p := range pairs {
		obj.Insert(p[0], p[1])
	}
	return obj
}

func strTerm(s string) *ast.Term { return ast.StringTerm(validUTF8(s)) }

// vocabTerms are the terms of the strings most replicas and services share (Docker states and
// health, anomaly risk levels), built once. OPA never mutates an input term, so every input
// shares them, which spares two allocations per string.
var vocabTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, s := range []string{
		"running", "exited", "dead", "restarting", "paused", "created", "removing",
		"healthy", "unhealthy", "starting", "none",
		"low", "medium", "high",
	} {
		m[s] = ast.StringTerm(s)
	}
	return m
}()

// vocabTerm is strTerm for a string that is usually one of vocabTerms.
func vocabTerm(s string) *ast.Term {
	if t, ok := vocabTerms[s]; ok {
		return t
	}
	return strTerm(s)
}

// validUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

func intTerm(i int64) *ast.Term { return ast.InternedTerm(int(i)) }

func jsonNumber(s string) json.Number { return json.Number(s) }

// floatDigits is the precision of the numbers in the input: float64 holds 15 significant
// decimal digits for sure, and OPA compares numbers of up to 15 digits exactly and cheaply
// (more go through math/big, about 1 µs and 20 allocations a comparison).
const floatDigits = 15

// floatTerm spells f as encoding/json spells a float64 (floatEncoder for 64-bit floats),
// rounded to floatDigits significant digits unless it is an integer.
func floatTerm(f float64) *ast.Term {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ast.NullTerm()
	}
	if f == math.Trunc(f) {
		return spellFloat(f) // integers keep every digit
	}
	// A non-integer float64 is below 2^52 in magnitude. Its spelling with floatDigits
	// significant digits, trailing zeros dropped, is what encoding/json spells for the float64
	// nearest that decimal: above the subnormals, two decimals of floatDigits digits lie
	// further apart than two float64 of the same magnitude, so no shorter spelling maps to the
	// same float64. One fixed-precision formatting does it (the rounded float64 is not needed).
	var buf, dbuf, sbuf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'e', floatDigits-1, 64) // [-]d.dddddddddddddde±dd
	if math.Abs(f) < 0x1p-1022 {
		// Subnormal: float64 are spaced evenly there, and a shorter spelling may exist.
		f, _ = strconv.ParseFloat(string(b), 64)
		return spellFloat(f)
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	e := 1 + floatDigits // the 'e'
	exp := 0
	for _, c := range b[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if b[e+1] == '-' {
		exp = -exp
	}
	digits := append(dbuf[:0], b[0])
	digits = append(digits, b[2:e]...)
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	s := sbuf[:0] // at most 24 bytes: "-0.00000" and 15 digits, or "-d." 14 digits "e-308"
	if neg {
		s = append(s, '-')
	}
	switch {
	case exp < -6: // below 1e-6: exponent form, "e-07" spelled "e-7"
		s = append(s, digits[0])
		if len(digits) > 1 {
			s = append(s, '.')
			s = append(s, digits[1:]...)
		}
		s = append(s, 'e', '-')
		s = strconv.AppendInt(s, int64(-exp), 10)
	case exp < 0:
		s = append(s, '0', '.')
		for range -exp - 1 {
			s = append(s, '0')
		}
		s = append(s, digits...)
	case exp+1 >= len(digits): // rounded to an integer
		s = append(s, digits...)
		for range exp + 1 - len(digits) {
			s = append(s, '0')
		}
	default:
		s = append(s, digits[:exp+1]...)
		s = append(s, '.')
		s = append(s, digits[exp+1:]...)
	}
	return ast.NumberTerm(jsonNumber(string(s)))
}

// spellFloat is the term of f spelled as encoding/json does.
func spellFloat(f float64) *ast.Term {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 && !(f == 0 && math.Signbit(f)) {
		return intTerm(int64(f)) // same digits as 'f' formatting, and often interned
	}
	var buf [32]byte
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(buf[:0], f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return ast.NumberTerm(jsonNumber(string(b)))
}

// timeTerm formats t as time.Time.MarshalJSON does. Times MarshalJSON refuses (years outside
// 0..9999) become null.
func timeTerm(t time.Time) *ast.Term {
	if y := t.Year(); y < 0 || y > 9999 {
		return ast.NullTerm()
	}
	return ast.StringTerm(t.Format(time.RFC3339Nano))
}

// serviceTerm is one service's input fragment, wrapped for reuse as an object value.
func serviceTerm(s *engine.Service) *ast.Term { return ast.NewTerm(serviceValue(s)) }

// --- cache keys ---
//
// A cache key is a compact binary encoding of everything a service's decisions depend on.
// Keys are compared byte for byte, so a hit is exact (no hash collisions).

type keyBuf []byte

func (b keyBuf) u64(v uint64) keyBuf { return binary.AppendUvarint(b, v) }
func (b keyBuf) i64(v int64) keyBuf  { return binary.AppendVarint(b, v) }
func (b keyBuf) f64(v float64) keyBuf {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}
func (b keyBuf) str(s string) keyBuf     { return append(b.u64(uint64(len(s))), s...) }
func (b keyBuf) flag(v bool) keyBuf      { return append(b, boolByte(v)) }
func (b keyBuf) time(t time.Time) keyBuf { return b.str(t.Format(time.RFC3339Nano)) }

func (b keyBuf) metrics(m *engine.Metrics) keyBuf {
	if m == nil {
		return append(b, 0)
	}
	return append(b, 1).f64(m.RPS).f64(m.ErrorRate).f64(m.LatencyP50Ms).f64(m.LatencyP99Ms)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendServiceKey(b keyBuf, s *engine.Service) keyBuf {
	if s == nil {
		return append(b, 0)
	}
	b = append(b, 1, boolByte(s.Replicas != nil))
	b = b.u64(uint64(len(s.Replicas))).i64(int64(s.DesiredReplicas)).str(s.Runtime)
	for i := range s.Replicas {
		r := &s.Replicas[i]
		b = b.str(r.ID).str(r.Name).str(r.State).str(r.Health).i64(int64(r.ExitCode)).flag(r.OOMKilled).
			i64(int64(r.RestartCount)).f64(r.CPUPercent).i64(r.MemBytes).i64(r.MemLimitBytes).f64(r.MemPercent).flag(r.Scaled).flag(r.Paused).
			flag(r.StoppedByOperator).str(r.Node).str(r.NodeStatus).str(r.NodeAvailability).str(r.Error)
		b = b.metrics(r.Metrics)
		if t := r.Trend; t != nil {
			b = append(b, 1).f64(t.MemSlopeBytesPerS)
			if t.SecondsToMemLimit != nil {
				b = append(b, 1).f64(*t.SecondsToMemLimit)
			} else {
				b = append(b, 0)
			}
		} else {
			b = append(b, 0)
		}
	}
	if m := s.Summary; m != nil {
		b = append(b, 1).i64(int64(m.Replicas)).i64(int64(m.Running)).f64(m.MeanCPUPercent).f64(m.MaxMemPercent).
			i64(int64(m.ScaledReplicas)).i64(int64(m.UnhealthyOrDown))
	} else {
		b = append(b, 0)
	}
	b = b.metrics(s.Metrics)
	if l := s.Logs; l != nil {
		b = append(b, 1).f64(l.ErrorsPerMin).str(l.LastError)
		if l.LastErrorAt != nil {
			b = append(b, 1).time(*l.LastErrorAt)
		} else {
			b = append(b, 0)
		}
	} else {
		b = append(b, 0)
	}
	if p := s.Probe; p != nil {
		b = append(b, 1).flag(p.OK).i64(int64(p.ConsecutiveFailures)).f64(p.LatencyMs)
	} else {
		b = append(b, 0)
	}
	if a := s.Anomaly; a != nil {
		b = append(b, 1).f64(a.Score).flag(a.IsAnomaly).str(a.Risk).i64(int64(a.ModelAgeTicks)).flag(a.WarmingUp)
		b = b.u64(uint64(len(a.Features)))
		for _, k := range sortedKeys(a.Features) {
			b = b.str(k).f64(a.Features[k])
		}
		b = b.u64(uint64(len(a.Drivers)))
		for _, d := range a.Drivers {
			b = b.str(d)
		}
	} else {
		b = append(b, 0)
	}
	if h := s.History; h != nil {
		b = append(b, 1).i64(int64(h.Actions10m)).f64(h.SecondsSinceLastAction)
		if h.BackoffUntil != nil {
			b = append(b, 1).time(*h.BackoffUntil)
		} else {
			b = append(b, 0)
		}
		if h.LastActionAt != nil {
			b = append(b, 1).time(*h.LastActionAt)
		} else {
			b = append(b, 0)
		}
		b = b.flag(h.Paused).i64(int64(h.LadderStep)).flag(h.Verifying).i64(int64(h.PendingApprovals))
		if v := h.LastActionVerified; v != nil {
			b = append(b, 1).flag(*v)
		} else {
			b = append(b, 0)
		}
	} else {
		b = append(b, 0)
	}
	return b
}

// appendGlobalKey encodes what every service's input shares: version, alerts, sensor
// statuses and nodes, plus tick and time when the policy reads them.
func appendGlobalKey(b keyBuf, f *engine.Facts, withClock bool) keyBuf {
	b = b.i64(int64(f.Version))
	if withClock {
		b = b.u64(f.Tick).time(f.Time)
	}
	b = append(b, boolByte(f.Alerts != nil)).u64(uint64(len(f.Alerts)))
	for i := range f.Alerts {
		a := &f.Alerts[i]
		b = b.str(a.Name).str(a.Service).str(a.Severity).time(a.StartsAt)
		b = appendStringMapKey(b, a.Labels)
		b = appendStringMapKey(b, a.Annotations)
	}
	b = append(b, boolByte(f.Sensors != nil)).u64(uint64(len(f.Sensors)))
	for _, name := range sortedKeys(f.Sensors) {
		s := f.Sensors[name]
		b = b.str(name).flag(s.OK).f64(s.AgeS).str(s.Error)
	}
	b = b.u64(uint64(len(f.Nodes)))
	for _, id := range sortedKeys(f.Nodes) {
		n := f.Nodes[id]
		b = b.str(id).str(n.Hostname).str(n.Status).str(n.Availability).flag(n.Manager).flag(n.Leader)
		b = b.i64(int64(n.TasksRunning)).i64(int64(n.TasksFailed10m))
	}
	return b
}

func appendStringMapKey(b keyBuf, m map[string]string) keyBuf {
	b = append(b, boolByte(m != nil)).u64(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		b = b.str(k).str(m[k])
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
