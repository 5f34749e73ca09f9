package scenario

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/chaos"
)

const good = `name: kill
description: one replica dies
stack: {labels: [com.docker.compose.project=shop], services: [product]}
target: http://127.0.0.1:8000
short: 0.25
steps:
  - load: {rate: 40, duration: 40s, paths: [/api/products], surge: {factor: 2, after: 10s, for: 8s}}
  - wait: {for: 5s}
  - inject: {name: crash, kind: kill, service: product, duration: 30s}
  - wait: {until: service product healthy, timeout: 60s, short_timeout: 20s}
  - revert: {name: crash}
expect:
  - action restart on product within 10s
  - service product healthy within 30s
  - no action on gateway
  - availability >= 99.5%
  - p99 <= 300ms after recovery of product
  - replicas of product == 2 at end
  - at most 3 restarts on product
  - escalation on product
  - decision restart on product
`

func TestParseGood(t *testing.T) {
	s, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "kill" || len(s.Steps) != 5 || len(s.Expect) != 9 {
		t.Fatalf("parsed %+v", s)
	}
	l := s.Steps[0].Load
	if l.Rate != 40 || l.Duration.D() != 40*time.Second || l.Surge.Factor != 2 || l.Surge.For.D() != 8*time.Second {
		t.Errorf("load = %+v", l)
	}
	if s.Steps[2].Inject.Kind != "kill" || s.Steps[2].Line != 9 {
		t.Errorf("inject = %+v line %d", s.Steps[2].Inject, s.Steps[2].Line)
	}
	want := []Expectation{
		{Kind: ExpectAction, Action: "restart", Service: "product", Within: 10 * time.Second},
		{Kind: ExpectHealthy, Service: "product", Within: 30 * time.Second},
		{Kind: ExpectNoAction, Service: "gateway"},
		{Kind: ExpectAvailability, Op: ">=", Number: 99.5},
		{Kind: ExpectLatency, Op: "<=", Number: float64(300 * time.Millisecond), Quantile: 99, AfterRecovery: true, Service: "product"},
		{Kind: ExpectReplicas, Service: "product", Op: "==", Number: 2, AtEnd: true},
		{Kind: ExpectAtMost, Service: "product", Action: "restart", Number: 3},
		{Kind: ExpectEscalation, Service: "product"},
		{Kind: ExpectDecision, Service: "product", Action: "restart"},
	}
	for i, w := range want {
		got := s.Expect[i]
		got.Text = ""
		if got != w {
			t.Errorf("expect[%d] = %+v, want %+v", i, got, w)
		}
	}
	if got := s.Services(); strings.Join(got, ",") != "product" {
		t.Errorf("services = %v (stack.services wins)", got)
	}
	short := s.Scaled(s.ShortFactor())
	if d := short.Steps[0].Load.Duration.D(); d != 10*time.Second {
		t.Errorf("short load duration %s, want 10s", d)
	}
	if d := short.Steps[2].Inject.Duration.D(); d != 7500*time.Millisecond {
		t.Errorf("short fault duration %s, want 7.5s", d)
	}
	if d := short.Steps[3].Wait.Timeout.D(); d != 20*time.Second {
		t.Errorf("short wait timeout %s, want its short_timeout 20s (never scaled)", d)
	}
	if d := s.Steps[3].Wait.Timeout.D(); d != 60*time.Second {
		t.Errorf("wait timeout %s, want 60s", d)
	}
	if s.Steps[0].Load.Duration.D() != 40*time.Second {
		t.Error("Scaled changed the original")
	}
}

// Every shipped scenario parses.
func TestShippedScenariosParse(t *testing.T) {
	files, err := filepath.Glob("../../tests/scenarios/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("scenario files: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"typo in a step field", "name: x\nsteps:\n  - inject: {kind: kill, servce: cart}\n", `line 3: inject: unknown field "servce"`},
		{"typo in a top-level field", "name: x\nstepz: []\n", `line 2: unknown field "stepz"`},
		{"typo in a surge", "name: x\ntarget: http://127.0.0.1:1\nsteps:\n  - load:\n      rate: 1\n      duration: 1s\n      surge: {factr: 2}\n", `line 7: load.surge: unknown field "factr"`},
		{"unknown step", "name: x\nsteps:\n  - sleep: {for: 1s}\n", `line 3: unknown step "sleep"`},
		{"two steps in one", "name: x\nsteps:\n  - wait: {for: 1s}\n    revert: {}\n", "line 3: a step has exactly one of"},
		{"bad duration", "name: x\nsteps:\n  - wait: {for: 5 seconds}\n", `line 3: wait: for: bad duration "5 seconds"`},
		{"negative duration", "name: x\nsteps:\n  - wait:\n      for: -1s\n", `line 4: wait: for: bad duration "-1s"`},
		{"unknown expectation", "name: x\nsteps:\n  - wait: {for: 1s}\nexpect:\n  - service cart happy\n", `line 5: unknown expectation "service cart happy"`},
		{"unknown action", "name: x\nsteps:\n  - wait: {for: 1s}\nexpect:\n  - action reboot on cart\n", `line 5: expectation "action reboot on cart": unknown action "reboot"`},
		{"bad window", "name: x\nsteps:\n  - wait: {for: 1s}\nexpect:\n  - service cart healthy within soon\n", `bad duration "soon"`},
		{"bad fault kind", "name: x\nsteps:\n  - inject: {kind: explode, service: cart, duration: 5s}\n", `line 3: steps[0]: inject: unknown fault kind "explode"`},
		{"fault without service", "name: x\nsteps:\n  - inject: {kind: kill, duration: 5s}\n", "inject: service:"},
		{"wait until what cannot be waited for", "name: x\nsteps:\n  - wait: {until: availability >= 99%, timeout: 5s}\n", "cannot be waited for"},
		{"wait until without timeout", "name: x\nsteps:\n  - wait: {until: service cart healthy}\n", "wait: timeout: required"},
		{"load without target", "name: x\nsteps:\n  - load: {rate: 5, duration: 5s}\n", "load: target: required"},
		{"two loads", "name: x\ntarget: http://127.0.0.1:1\nsteps:\n  - load: {rate: 5, duration: 5s}\n  - load: {rate: 5, duration: 5s}\n", "only one load step"},
		{"revert of an unknown fault", "name: x\nsteps:\n  - revert: {name: crash}\n", `no earlier inject step named "crash"`},
		{"no name", "steps:\n  - wait: {for: 1s}\n", "name: required"},
		{"no steps", "name: x\n", "steps: at least one"},
		{"empty", "", "empty file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "typo.yaml")
	writeFile(t, p, "name: x\nsteps:\n  - inject: {kind: kill, service: cart, duratoin: 5s}\n")
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+": line 3: inject: unknown field \"duratoin\"") {
		t.Errorf("error %v", err)
	}
}

func TestDefaultNameOfInject(t *testing.T) {
	s, err := Parse([]byte("name: x\nsteps:\n  - inject: {kind: kill, service: cart, duration: 5s}\n  - revert: {name: kill}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps[0].Inject.Name != "kill" || s.Steps[0].Inject.Duration.D() != 5*time.Second {
		t.Errorf("inject = %+v", s.Steps[0].Inject)
	}
	if _, err := chaos.ParseFault(s.Steps[0].Inject.Kind, "cart", "", 0, 5*time.Second); err != nil {
		t.Error(err)
	}
}
