// Package scenario runs chaos scenarios against a live stack watched by ARES: YAML files of
// steps (start load, inject a fault, wait, revert) and expectations about what ARES did and
// how the stack fared (docs/chaos.md). The runner executes the steps in order, records a
// timeline, the replicas' states (from Docker), ARES's decisions and actions (from its JSON
// API) and the load report, always reverts its faults, and judges every expectation against
// that record.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/chaos/load"
)

// DefaultShort is the factor --short applies to the step durations when a file sets none.
const DefaultShort = 0.5

// Scenario is one scenario file.
type Scenario struct {
	// File is the path the scenario was read from (set by Load).
	File        string `yaml:"-" json:"file,omitempty"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	// Stack selects the containers: ARES's own scope (ares.enable=true) plus these labels.
	Stack Stack `yaml:"stack" json:"stack"`
	// Target is the default base URL of load steps (the shop's gateway).
	Target string `yaml:"target" json:"target,omitempty"`
	// Short is the factor --short multiplies every step duration by (load duration, surge
	// after and for, fault duration and every, wait for); 0 means DefaultShort. Wait
	// timeouts and the expectations' windows are never scaled: they measure ARES, not the scenario.
	Short float64 `yaml:"short" json:"short,omitempty"`
	// DryRun marks a scenario meant for an ARES in --dry-run: it decides, changes nothing.
	DryRun bool          `yaml:"dry_run" json:"dry_run,omitempty"`
	Steps  []Step        `yaml:"steps" json:"steps"`
	Expect []Expectation `yaml:"expect" json:"expect"`
}

// Stack selects the containers of the scenario.
type Stack struct {
	// Labels are "key=value" (or "key") filters on top of ares.enable=true.
	Labels []string `yaml:"labels" json:"labels,omitempty"`
	// Services are the services watched for the timeline; default: those the steps and
	// expectations name.
	Services []string `yaml:"services" json:"services,omitempty"`
}

// Step is one step: exactly one of its fields is set.
type Step struct {
	Line   int         `yaml:"-" json:"-"`
	Load   *LoadStep   `yaml:"load" json:"load,omitempty"`
	Inject *InjectStep `yaml:"inject" json:"inject,omitempty"`
	Wait   *WaitStep   `yaml:"wait" json:"wait,omitempty"`
	Revert *RevertStep `yaml:"revert" json:"revert,omitempty"`
}

// LoadStep starts load in the background; it runs until its duration ends (the runner waits
// for it before judging) or the scenario is interrupted.
type LoadStep struct {
	Target   string    `yaml:"target" json:"target,omitempty"` // default: the scenario's target
	Rate     int       `yaml:"rate" json:"rate"`
	Duration Duration  `yaml:"duration" json:"duration"`
	Paths    []string  `yaml:"paths" json:"paths,omitempty"`
	Surge    *SurgeDef `yaml:"surge" json:"surge,omitempty"`
}

// SurgeDef is a step of the load's rate to Factor × rate After the start, For a while.
type SurgeDef struct {
	Factor float64  `yaml:"factor" json:"factor"`
	After  Duration `yaml:"after" json:"after"`
	For    Duration `yaml:"for" json:"for,omitempty"`
}

// InjectStep injects a fault; it is reverted after its duration, by a revert step, or at
// the end of the scenario, whichever comes first.
type InjectStep struct {
	Name     string   `yaml:"name" json:"name,omitempty"` // for revert steps; default the kind
	Kind     string   `yaml:"kind" json:"kind"`
	Service  string   `yaml:"service" json:"service"`
	Replica  string   `yaml:"replica" json:"replica,omitempty"`
	Value    float64  `yaml:"value" json:"value,omitempty"`
	Duration Duration `yaml:"duration" json:"duration"`
	// Repeat re-injects the fault every Every until Duration has passed from the first
	// injection (a crash loop: kill the replica again each time it runs). 0: once.
	Every Duration `yaml:"every" json:"every,omitempty"`
}

// WaitStep waits For a fixed time, or Until an expectation holds (at most Timeout).
type WaitStep struct {
	For     Duration `yaml:"for" json:"for,omitempty"`
	Until   string   `yaml:"until" json:"until,omitempty"`
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// ShortTimeout replaces Timeout under --short (the short versions run against an ARES on
	// a faster clock); 0: Timeout.
	ShortTimeout Duration `yaml:"short_timeout" json:"short_timeout,omitempty"`
	// Fail: an until that times out fails the scenario (default: it is only noted).
	Fail bool `yaml:"fail" json:"fail,omitempty"`

	until *Expectation
}

// RevertStep reverts the named injection, or every active one when Name is empty.
type RevertStep struct {
	Name string `yaml:"name" json:"name,omitempty"`
}

// Duration is a time.Duration written like "500ms", "10s", "2m".
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string, naming the line on error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 500ms, 10s or 2m", n.Line)
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: bad duration %q (want e.g. 500ms, 10s, 2m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string ("10s").
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalYAML decodes one step, recording its line.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	// A plain type, so that this method is not called again; the strict decoder's
	// KnownFields does not reach inside a custom unmarshaler, so the keys are checked here.
	type plain Step
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a step is a mapping with one of load, inject, wait, revert", n.Line)
	}
	if err := strictKeys(n, map[string][]string{
		"load":   {"target", "rate", "duration", "paths", "surge"},
		"inject": {"name", "kind", "service", "replica", "value", "duration", "every"},
		"wait":   {"for", "until", "timeout", "short_timeout", "fail"},
		"revert": {"name"},
	}); err != nil {
		return err
	}
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = Step(p)
	s.Line = n.Line
	return nil
}

// strictKeys checks a step's mapping: exactly one known step key, and only known fields in
// its value (and in a load's surge).
func strictKeys(n *yaml.Node, fields map[string][]string) error {
	kinds := []string{"load", "inject", "wait", "revert"}
	if len(n.Content) != 2 {
		var keys []string
		for i := 0; i < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
		}
		return fmt.Errorf("line %d: a step has exactly one of %s (got %s)", n.Line, strings.Join(kinds, ", "), strings.Join(keys, ", "))
	}
	k, v := n.Content[0], n.Content[1]
	known, ok := fields[k.Value]
	if !ok {
		return fmt.Errorf("line %d: unknown step %q (want one of %s)", k.Line, k.Value, strings.Join(kinds, ", "))
	}
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s: want a mapping of %s", v.Line, k.Value, strings.Join(known, ", "))
	}
	check := func(where string, m *yaml.Node, known []string) error {
		for i := 0; i < len(m.Content); i += 2 {
			f, v := m.Content[i], m.Content[i+1]
			if !contains(known, f.Value) {
				return fmt.Errorf("line %d: %s: unknown field %q (want %s)", f.Line, where, f.Value, strings.Join(known, ", "))
			}
			if contains(durationFields, f.Value) {
				var d Duration
				if err := d.UnmarshalYAML(v); err != nil {
					return fmt.Errorf("line %d: %s: %s: %s", v.Line, where, f.Value, strings.TrimPrefix(err.Error(), fmt.Sprintf("line %d: ", v.Line)))
				}
			}
		}
		return nil
	}
	if err := check(k.Value, v, known); err != nil {
		return err
	}
	for i := 0; i < len(v.Content); i += 2 {
		if v.Content[i].Value == "surge" && v.Content[i+1].Kind == yaml.MappingNode {
			if err := check("load.surge", v.Content[i+1], []string{"factor", "after", "for"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// durationFields are the step fields holding a Duration.
var durationFields = []string{"duration", "after", "for", "timeout", "short_timeout", "every"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Load reads and validates a scenario file. Errors name the file and, where there is one,
// the line and field.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.File = path
	return s, nil
}

// Parse decodes and validates a scenario document (strict: unknown fields are errors).
func Parse(data []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, yamlError(err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("more than one YAML document: one scenario per file")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// yamlError turns yaml's "yaml: unmarshal errors:\n  line 3: field x not found in type
// scenario.Step" into "line 3: unknown field x".
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, m := range te.Errors {
			if i := strings.Index(m, ": field "); i >= 0 && strings.Contains(m, " not found in type ") {
				f := strings.TrimPrefix(m[i:], ": field ")
				f = f[:strings.Index(f, " not found in type ")]
				m = m[:i] + ": unknown field " + strconvQuote(f)
			}
			msgs = append(msgs, m)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	if err.Error() == "EOF" {
		return errors.New("empty file")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

func strconvQuote(s string) string { return `"` + s + `"` }

// Validate checks the scenario as a whole; errors name the step or expectation.
func (s *Scenario) Validate() error {
	if strings.TrimSpace(s.Name) == "" {
		return errors.New("name: required")
	}
	if s.Short < 0 || s.Short > 1 {
		return fmt.Errorf("short: must be in 0..1 (got %g)", s.Short)
	}
	if len(s.Steps) == 0 {
		return errors.New("steps: at least one step is required")
	}
	names := map[string]bool{}
	loads := 0
	for i := range s.Steps {
		st := &s.Steps[i]
		where := fmt.Sprintf("line %d: steps[%d]", st.Line, i)
		switch {
		case st.Load != nil:
			l := st.Load
			if loads++; loads > 1 {
				return fmt.Errorf("%s: load: only one load step per scenario (use surge for a change of rate)", where)
			}
			if l.Target == "" && s.Target == "" {
				return fmt.Errorf("%s: load: target: required (or set the scenario's target)", where)
			}
			if l.Rate <= 0 || l.Rate > load.MaxRate {
				return fmt.Errorf("%s: load: rate: must be in 1..%d (got %d)", where, load.MaxRate, l.Rate)
			}
			if l.Duration <= 0 {
				return fmt.Errorf("%s: load: duration: required", where)
			}
			if l.Surge != nil && (l.Surge.Factor <= 0 || float64(l.Rate)*l.Surge.Factor > load.MaxRate) {
				return fmt.Errorf("%s: load: surge: factor: must be > 0 with rate × factor ≤ %d (got %g)", where, load.MaxRate, l.Surge.Factor)
			}
		case st.Inject != nil:
			in := st.Inject
			f, err := chaos.ParseFault(in.Kind, in.Service, in.Replica, in.Value, in.Duration.D())
			if err != nil {
				return fmt.Errorf("%s: inject: %w", where, err)
			}
			if in.Every < 0 || (in.Every > 0 && in.Every.D() >= f.Duration) {
				return fmt.Errorf("%s: inject: every: must be shorter than the duration (got %s)", where, in.Every.D())
			}
			if in.Name == "" {
				in.Name = in.Kind
			}
			names[in.Name] = true
		case st.Wait != nil:
			w := st.Wait
			if (w.For > 0) == (w.Until != "") {
				return fmt.Errorf("%s: wait: set exactly one of for and until", where)
			}
			if w.Until != "" {
				e, err := ParseExpectation(w.Until)
				if err != nil {
					return fmt.Errorf("%s: wait: until: %w", where, err)
				}
				if !e.Live() {
					return fmt.Errorf("%s: wait: until: %q cannot be waited for (only service, replicas, action and decision expectations can)", where, w.Until)
				}
				w.until = e
				if w.Timeout <= 0 {
					return fmt.Errorf("%s: wait: timeout: required with until", where)
				}
			}
		case st.Revert != nil:
			if n := st.Revert.Name; n != "" && !names[n] {
				return fmt.Errorf("%s: revert: name: no earlier inject step named %q", where, n)
			}
		default:
			return fmt.Errorf("%s: empty step", where)
		}
	}
	for i := range s.Expect {
		if s.Expect[i].Kind == "" {
			return fmt.Errorf("expect[%d]: empty expectation", i)
		}
	}
	return nil
}

// Services are the services the scenario watches: Stack.Services, else every service its
// steps and expectations name.
func (s *Scenario) Services() []string {
	if len(s.Stack.Services) > 0 {
		return s.Stack.Services
	}
	var out []string
	add := func(name string) {
		if name != "" && !contains(out, name) {
			out = append(out, name)
		}
	}
	for _, st := range s.Steps {
		if st.Inject != nil {
			add(st.Inject.Service)
		}
		if st.Wait != nil && st.Wait.until != nil {
			add(st.Wait.until.Service)
		}
	}
	for _, e := range s.Expect {
		add(e.Service)
	}
	return out
}

// NeedsTraffic reports whether an expectation or a wait needs the replicas' request counters.
func (s *Scenario) NeedsTraffic() bool {
	for _, st := range s.Steps {
		if st.Wait != nil && st.Wait.until != nil && st.Wait.until.NeedsTraffic() {
			return true
		}
	}
	for i := range s.Expect {
		if s.Expect[i].NeedsTraffic() {
			return true
		}
	}
	return false
}

// NeedsMemory reports whether an expectation needs the services' memory.
func (s *Scenario) NeedsMemory() bool {
	for i := range s.Expect {
		if s.Expect[i].Kind == ExpectMemory {
			return true
		}
	}
	return false
}

// Scaled returns a copy of the scenario with every step duration multiplied by factor
// (rounded to the millisecond, at least chaos.MinDuration for faults). Expectation windows
// keep their values; a wait's timeout becomes its short_timeout when it has one.
func (s *Scenario) Scaled(factor float64) *Scenario {
	c := *s
	c.Steps = make([]Step, len(s.Steps))
	sc := func(d Duration) Duration {
		return Duration(time.Duration(float64(d) * factor).Round(time.Millisecond))
	}
	for i, st := range s.Steps {
		switch {
		case st.Load != nil:
			l := *st.Load
			l.Duration = sc(l.Duration)
			if l.Surge != nil {
				sg := *l.Surge
				sg.After, sg.For = sc(sg.After), sc(sg.For)
				l.Surge = &sg
			}
			st.Load = &l
		case st.Inject != nil:
			in := *st.Inject
			in.Duration = max(sc(in.Duration), Duration(chaos.MinDuration))
			in.Every = sc(in.Every)
			st.Inject = &in
		case st.Wait != nil:
			w := *st.Wait
			w.For = sc(w.For)
			if w.ShortTimeout > 0 {
				w.Timeout = w.ShortTimeout
			}
			st.Wait = &w
		}
		c.Steps[i] = st
	}
	return &c
}

// ShortFactor is the factor --short applies.
func (s *Scenario) ShortFactor() float64 {
	if s.Short > 0 {
		return s.Short
	}
	return DefaultShort
}
