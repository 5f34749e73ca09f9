package scenario

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ares-sre/ares/engine"
)

// Expectation kinds.
const (
	ExpectHealthy      = "healthy"      // service X healthy [within D]
	ExpectRecovered    = "recovered"    // service X recovered [within D]
	ExpectAction       = "action"       // action A on X [within D]
	ExpectDecision     = "decision"     // decision A on X [within D]
	ExpectNoAction     = "no_action"    // no action [A] on X
	ExpectAtMost       = "at_most"      // at most N A on X
	ExpectEscalation   = "escalation"   // escalation on X
	ExpectAvailability = "availability" // availability >= P%
	ExpectLatency      = "latency"      // p99 <= D [after recovery [of X]]
	ExpectReplicas     = "replicas"     // replicas of X == N [within D | at end]
	ExpectNewTraffic   = "new_traffic"  // new replicas of X serve traffic
	ExpectMemory       = "memory"       // memory of X <= P% at end
)

// Expectation is one parsed expectation. Text is what the file said.
type Expectation struct {
	Text    string        `json:"text"`
	Kind    string        `json:"kind"`
	Service string        `json:"service,omitempty"`
	Action  string        `json:"action,omitempty"` // "" in no_action: any action
	Within  time.Duration `json:"within_ns,omitempty"`
	AtEnd   bool          `json:"at_end,omitempty"`
	Op      string        `json:"op,omitempty"` // >=, >, <=, <, ==
	Number  float64       `json:"number,omitempty"`
	// Quantile is 50, 90 or 99 for latency; AfterRecovery limits it to the seconds after the
	// service (Service, else the first injected one) was healthy again.
	Quantile      int  `json:"quantile,omitempty"`
	AfterRecovery bool `json:"after_recovery,omitempty"`
}

// Forms lists the expectation forms, for error messages and docs.
var Forms = []string{
	"service X healthy within D",
	"service X recovered [within D]",
	"action A on X [within D]",
	"decision A on X [within D]",
	"no action [A] on X",
	"at most N A on X (A an action, or actions: any but escalations)",
	"escalation on X",
	"availability >= P%",
	"p99 <= D [after recovery [of X]]",
	"replicas of X == N [within D | at end]",
	"new replicas of X serve traffic",
	"memory of X <= P% at end",
}

var (
	reHealthy    = regexp.MustCompile(`^service (\S+) (healthy|recovered)(?: within (\S+))?$`)
	reAction     = regexp.MustCompile(`^(action|decision) (\S+) on (\S+)(?: within (\S+))?$`)
	reNoAction   = regexp.MustCompile(`^no (?:action|actions)(?: (\S+))? on (\S+)$`)
	reAtMost     = regexp.MustCompile(`^at most (\d+) (\S+) on (\S+)$`)
	reEscalation = regexp.MustCompile(`^escalation on (\S+)$`)
	reAvail      = regexp.MustCompile(`^availability (>=|>) ([0-9.]+) ?%$`)
	reLatency    = regexp.MustCompile(`^p(50|90|99) (<=|<) (\S+)( after recovery(?: of (\S+))?)?$`)
	reMemory     = regexp.MustCompile(`^memory of (\S+) (<=|<) ([0-9.]+) ?% at end$`)
	reNewTraffic = regexp.MustCompile(`^new replicas of (\S+) serve traffic$`)
	reReplicas   = regexp.MustCompile(`^replicas of (\S+) (==|>=|<=) (\d+)(?: within (\S+)| (at end))?$`)
)

// UnmarshalYAML parses an expectation string, naming its line on error.
func (e *Expectation) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: an expectation is a string like %q", n.Line, Forms[0])
	}
	p, err := ParseExpectation(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*e = *p
	return nil
}

// ParseExpectation parses one expectation (see Forms); keywords are case-insensitive.
func ParseExpectation(text string) (*Expectation, error) {
	s := strings.Join(strings.Fields(strings.ToLower(text)), " ")
	e := &Expectation{Text: strings.TrimSpace(text)}
	dur := func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("expectation %q: bad duration %q (want e.g. 500ms, 10s, 2m)", e.Text, v)
		}
		return d, nil
	}
	action := func(v string) (string, error) {
		for _, a := range engine.KnownActions {
			if v == a || v == a+"s" {
				return a, nil
			}
		}
		return "", fmt.Errorf("expectation %q: unknown action %q (want one of %s)", e.Text, v, strings.Join(engine.KnownActions, ", "))
	}
	var err error
	switch {
	case reHealthy.MatchString(s):
		m := reHealthy.FindStringSubmatch(s)
		e.Kind, e.Service = ExpectHealthy, m[1]
		if m[2] == "recovered" {
			e.Kind = ExpectRecovered
		}
		if m[3] != "" {
			e.Within, err = dur(m[3])
		}
	case reAction.MatchString(s):
		m := reAction.FindStringSubmatch(s)
		e.Kind, e.Service = m[1], m[3]
		if e.Action, err = action(m[2]); err == nil && m[4] != "" {
			e.Within, err = dur(m[4])
		}
	case reNoAction.MatchString(s):
		m := reNoAction.FindStringSubmatch(s)
		e.Kind, e.Service = ExpectNoAction, m[2]
		if m[1] != "" {
			e.Action, err = action(m[1])
		}
	case reAtMost.MatchString(s):
		m := reAtMost.FindStringSubmatch(s)
		e.Kind, e.Service = ExpectAtMost, m[3]
		e.Number, _ = strconv.ParseFloat(m[1], 64)
		if m[2] != "action" && m[2] != "actions" { // any action but escalations
			e.Action, err = action(m[2])
		}
	case reEscalation.MatchString(s):
		e.Kind, e.Service = ExpectEscalation, reEscalation.FindStringSubmatch(s)[1]
	case reAvail.MatchString(s):
		m := reAvail.FindStringSubmatch(s)
		e.Kind, e.Op = ExpectAvailability, m[1]
		e.Number, err = strconv.ParseFloat(m[2], 64)
		if err != nil || e.Number < 0 || e.Number > 100 {
			err = fmt.Errorf("expectation %q: availability must be a percentage in 0..100 (got %q)", e.Text, m[2])
		}
	case reLatency.MatchString(s):
		m := reLatency.FindStringSubmatch(s)
		e.Kind, e.Op, e.AfterRecovery, e.Service = ExpectLatency, m[2], m[4] != "", m[5]
		e.Quantile, _ = strconv.Atoi(m[1])
		var d time.Duration
		d, err = dur(m[3])
		e.Number = float64(d)
	case reReplicas.MatchString(s):
		m := reReplicas.FindStringSubmatch(s)
		e.Kind, e.Service, e.Op, e.AtEnd = ExpectReplicas, m[1], m[2], m[5] != ""
		e.Number, _ = strconv.ParseFloat(m[3], 64)
		if m[4] != "" {
			e.Within, err = dur(m[4])
		}
	case reMemory.MatchString(s):
		m := reMemory.FindStringSubmatch(s)
		e.Kind, e.Service, e.Op, e.AtEnd = ExpectMemory, m[1], m[2], true
		e.Number, err = strconv.ParseFloat(m[3], 64)
		if err != nil || e.Number < 0 || e.Number > 100 {
			err = fmt.Errorf("expectation %q: memory must be a percentage in 0..100 (got %q)", e.Text, m[3])
		}
	case reNewTraffic.MatchString(s):
		e.Kind, e.Service = ExpectNewTraffic, reNewTraffic.FindStringSubmatch(s)[1]
	default:
		return nil, fmt.Errorf("unknown expectation %q (want one of: %s)", e.Text, strings.Join(Forms, "; "))
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Live reports whether the expectation can be checked while the scenario runs (wait until).
func (e *Expectation) Live() bool {
	switch e.Kind {
	case ExpectHealthy, ExpectRecovered, ExpectReplicas, ExpectAction, ExpectDecision, ExpectEscalation, ExpectNewTraffic:
		return true
	}
	return false
}

// Result is the verdict on one expectation.
type Result struct {
	Expectation string `json:"expectation"`
	Pass        bool   `json:"pass"`
	// Detail says what was observed: "healthy 2.1s after the injection", "no restart on cart".
	Detail string `json:"detail"`
}

// Evaluate judges the expectation against the record.
func (e *Expectation) Evaluate(r *Record) Result {
	pass, detail := e.judge(r)
	return Result{Expectation: e.Text, Pass: pass, Detail: detail}
}

func (e *Expectation) judge(r *Record) (bool, string) {
	switch e.Kind {
	case ExpectHealthy, ExpectRecovered:
		anchor := r.Anchor(e.Service)
		at, ok, wasDown, why := r.recovery(e.Service)
		if !ok {
			return false, why
		}
		if e.Kind == ExpectRecovered && !wasDown {
			return false, "not seen down or unhealthy after the injection"
		}
		took := at.Sub(anchor)
		if e.Within > 0 && took > e.Within {
			return false, fmt.Sprintf("healthy again %s after the injection, later than %s", round(took), e.Within)
		}
		return true, fmt.Sprintf("healthy again %s after the injection (%s)", round(took), why)
	case ExpectAction, ExpectDecision:
		if r.AresErr != "" {
			return false, "ARES's API could not be read: " + r.AresErr
		}
		anchor := r.Anchor(e.Service)
		var seen []string
		for _, a := range r.Actions {
			if a.Service != e.Service || a.Action != e.Action {
				continue
			}
			seen = append(seen, a.Verdict)
			if e.Kind == ExpectAction && !a.acted() {
				continue
			}
			if e.Within > 0 && a.At.Sub(anchor) > e.Within {
				return false, fmt.Sprintf("%s %s on %s came %s after the injection, later than %s", a.Verdict, a.Action, a.Target(), round(a.At.Sub(anchor)), e.Within)
			}
			return true, fmt.Sprintf("%s %s (%s) %s after the injection: %s", a.Verdict, a.Target(), a.outcome(), round(a.At.Sub(anchor)), a.Reason)
		}
		if len(seen) > 0 {
			return false, fmt.Sprintf("%s on %s was decided but never carried out (verdicts: %s)", e.Action, e.Service, strings.Join(uniq(seen), ", "))
		}
		return false, fmt.Sprintf("no %s on %s (ARES %s)", e.Action, e.Service, r.summary(e.Service))
	case ExpectNoAction:
		if r.AresErr != "" {
			return false, "ARES's API could not be read: " + r.AresErr
		}
		for _, a := range r.Actions {
			if a.Service == e.Service && (e.Action == "" || a.Action == e.Action) && a.Verdict == engine.VerdictAdmit {
				return false, fmt.Sprintf("ARES did %s on %s: %s", a.Action, a.Target(), a.Reason)
			}
		}
		what := "action"
		if e.Action != "" {
			what = e.Action
		}
		return true, fmt.Sprintf("no %s on %s", what, e.Service)
	case ExpectAtMost:
		if r.AresErr != "" {
			return false, "ARES's API could not be read: " + r.AresErr
		}
		n, held := 0, 0
		for _, a := range r.Actions {
			if a.Service != e.Service || (e.Action != "" && a.Action != e.Action) || (e.Action == "" && a.isEscalation()) {
				continue
			}
			switch a.Verdict {
			case engine.VerdictAdmit:
				n++
			case engine.VerdictSuppress:
				held++
			}
		}
		what := e.Action
		if what == "" {
			what = "actions"
		}
		detail := fmt.Sprintf("%d %s on %s carried out, %d held back", n, what, e.Service, held)
		return float64(n) <= e.Number, detail
	case ExpectEscalation:
		if r.AresErr != "" {
			return false, "ARES's API could not be read: " + r.AresErr
		}
		for _, a := range r.Actions {
			if a.Service == e.Service && a.isEscalation() && a.Verdict != engine.VerdictSuppress {
				return true, fmt.Sprintf("%s %s after the injection: %s", a.Verdict, round(a.At.Sub(r.Anchor(e.Service))), a.Reason)
			}
		}
		return false, fmt.Sprintf("no escalation on %s (ARES %s)", e.Service, r.summary(e.Service))
	case ExpectAvailability:
		if r.Load == nil || r.Load.Requests == 0 {
			return false, "no load was sent: availability needs a load step"
		}
		got := r.Load.Availability() * 100
		detail := fmt.Sprintf("%.2f%% (%d of %d requests served)", got, r.Load.Succeeded, r.Load.Requests)
		return compare(got, e.Op, e.Number), detail
	case ExpectLatency:
		return e.judgeLatency(r)
	case ExpectReplicas:
		anchor := r.Anchor(e.Service)
		var last *Sample
		for i := range r.Samples {
			s := &r.Samples[i]
			if s.At.Before(anchor) {
				continue
			}
			last = s
			n := float64(s.running(e.Service))
			if e.AtEnd || !compare(n, e.Op, e.Number) {
				continue
			}
			took := s.At.Sub(anchor)
			if e.Within > 0 && took > e.Within {
				return false, fmt.Sprintf("%d running replicas only %s after the injection, later than %s", int(n), round(took), e.Within)
			}
			return true, fmt.Sprintf("%d running replicas %s after the injection", int(n), round(took))
		}
		if last == nil {
			return false, "no observation of " + e.Service + " after the injection"
		}
		n := float64(last.running(e.Service))
		if e.AtEnd && compare(n, e.Op, e.Number) {
			return true, fmt.Sprintf("%d running replicas at the end", int(n))
		}
		return false, fmt.Sprintf("%d running replicas at the end (max seen %d)", int(n), r.maxRunning(e.Service))
	case ExpectNewTraffic:
		return r.newTraffic(e.Service)
	case ExpectMemory:
		peak, last, ok := 0.0, 0.0, false
		for _, m := range r.Memory {
			if v, seen := m.Percent[e.Service]; seen {
				peak, last, ok = max(peak, v), v, true
			}
		}
		if !ok {
			if r.AresErr != "" {
				return false, "ARES's API could not be read: " + r.AresErr
			}
			return false, "ARES reported no memory of " + e.Service
		}
		return compare(last, e.Op, e.Number), fmt.Sprintf("%.1f%% of the limit at the end (peak %.1f%%)", last, peak)
	}
	return false, "unknown expectation kind " + e.Kind
}

// NeedsTraffic reports whether the expectation needs the replicas' request counters.
func (e *Expectation) NeedsTraffic() bool { return e.Kind == ExpectNewTraffic }

func (e *Expectation) judgeLatency(r *Record) (bool, string) {
	if r.Load == nil || r.Load.Requests == 0 {
		return false, "no load was sent: latency needs a load step"
	}
	limit := time.Duration(e.Number)
	if !e.AfterRecovery {
		var got time.Duration
		switch e.Quantile {
		case 50:
			got = r.Load.Latency.P50
		case 90:
			got = r.Load.Latency.P90
		default:
			got = r.Load.Latency.P99
		}
		return compare(float64(got), e.Op, e.Number), fmt.Sprintf("p%d %s over the whole load", e.Quantile, round(got))
	}
	if e.Quantile != 99 {
		return false, "after recovery only p99 is known (the load's per-second timeline)"
	}
	svc := e.Service
	if svc == "" {
		svc = r.firstInjected()
	}
	at, ok, why := r.RecoveredAt(svc)
	if !ok {
		return false, "never recovered: " + why
	}
	// Whole seconds of the load that start after the recovery.
	var worst time.Duration
	n := 0
	for _, s := range r.Load.Seconds {
		start := r.Load.Start.Add(time.Duration(s.Second) * time.Second)
		if start.Before(at) || s.Requests == 0 {
			continue
		}
		n++
		worst = max(worst, s.P99)
	}
	if n == 0 {
		return false, fmt.Sprintf("no load after %s recovered (%s after the load started): make the load last longer", svc, round(at.Sub(r.Load.Start)))
	}
	return compare(float64(worst), e.Op, float64(limit)), fmt.Sprintf("worst per-second p99 %s over %d s after %s recovered", round(worst), n, svc)
}

func compare(got float64, op string, want float64) bool {
	switch op {
	case ">=":
		return got >= want
	case ">":
		return got > want
	case "<=":
		return got <= want
	case "<":
		return got < want
	case "==":
		return got == want
	}
	return false
}

func round(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Millisecond)
	}
}

func uniq(list []string) []string {
	var out []string
	for _, s := range list {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
