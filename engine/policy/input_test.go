package policy

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/ares-sre/ares/engine"
)

// viaJSON is what rego.EvalInput makes of f (a JSON round-trip, then ast conversion), with
// every number that is not an integer rounded to 15 significant digits and spelled as
// encoding/json spells the rounded float64: the input's documented precision.
func viaJSON(t *testing.T, f *engine.Facts) ast.Value {
	t.Helper()
	bs, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := util.UnmarshalJSON(bs, &v); err != nil {
		t.Fatal(err)
	}
	val, err := ast.InterfaceToValue(round15(t, v))
	if err != nil {
		t.Fatal(err)
	}
	return val
}

// round15 rounds the non-integer numbers of a decoded JSON document to 15 significant digits.
func round15(t *testing.T, v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = round15(t, x)
		}
	case []any:
		for i, x := range v {
			v[i] = round15(t, x)
		}
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			return v // an integer, of any size
		}
		f, err := v.Float64()
		if err != nil {
			t.Fatalf("number %s: %v", v, err)
		}
		r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
		bs, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return json.Number(bs)
	}
	return v
}

func assertSameValue(t *testing.T, name string, got, want ast.Value) {
	t.Helper()
	// Compare is structural; String also catches numbers spelled differently ("1" vs "1.0").
	if got.Compare(want) != 0 || got.String() != want.String() {
		t.Errorf("%s: FactsValue differs from the JSON round-trip:\ngot  %s\nwant %s", name, got, want)
	}
}

func TestFactsValueExample(t *testing.T) {
	// A copy of the pinned example document (shared/examples/facts.json).
	bs, err := os.ReadFile(filepath.Join("..", "schema", "testdata", "facts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f engine.Facts
	if err := json.Unmarshal(bs, &f); err != nil {
		t.Fatal(err)
	}
	assertSameValue(t, "example", FactsValue(&f), viaJSON(t, &f))
	f.Summarize()
	assertSameValue(t, "example, summarized", FactsValue(&f), viaJSON(t, &f))
}

func TestFactsValueEdgeCases(t *testing.T) {
	secs := 1e-7
	zone := time.FixedZone("x", 5*3600+1800)
	tests := []struct {
		name string
		f    *engine.Facts
	}{
		{"nil sections", &engine.Facts{Version: 1}},
		{"empty sections", engine.NewFacts(0, time.Time{})},
		{"nil service, nil replicas", &engine.Facts{Services: map[string]*engine.Service{"a": nil, "b": {}}}},
		{"numbers", &engine.Facts{Tick: math.MaxUint64, Services: map[string]*engine.Service{"a": {Replicas: []engine.Replica{{
			CPUPercent: math.Copysign(0, -1), MemBytes: math.MaxInt64, MemLimitBytes: math.MinInt64, MemPercent: 1e21,
			RestartCount: -3, Trend: &engine.Trend{MemSlopeBytesPerS: 123456789.123456789, SecondsToMemLimit: &secs},
		}, {CPUPercent: 1e15, MemPercent: 0.1 + 0.2, Trend: &engine.Trend{MemSlopeBytesPerS: -2.5e-300}},
			{CPUPercent: 89.99999999999999, MemPercent: 2.9999999999999996, MemBytes: 1 << 62,
				Trend: &engine.Trend{MemSlopeBytesPerS: 1.2345678901234567e19}}}}}}},
		{"non-finite floats become null", &engine.Facts{Services: map[string]*engine.Service{"a": {Summary: &engine.Summary{MeanCPUPercent: math.NaN(), MaxMemPercent: math.Inf(1)}}}}},
		{"times and strings", &engine.Facts{Time: time.Date(2026, 1, 2, 3, 4, 5, 600700, zone),
			Alerts:  []engine.Alert{{Name: "a<b>&\u2028", Service: "x\xffy", Labels: map[string]string{"k\xfe": "v"}, StartsAt: time.Unix(0, 1).UTC()}, {}},
			Sensors: map[string]engine.SensorStatus{"docker": {OK: true, AgeS: -1, Error: "boom \"quoted\"\n"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "non-finite floats become null" {
				// encoding/json refuses NaN; compare with the same document holding nulls.
				v := FactsValue(tt.f).String()
				want := `"summary": {"max_mem_percent": null, "mean_cpu_percent": null`
				if !contains(v, want) {
					t.Errorf("got %s, want it to contain %s", v, want)
				}
				return
			}
			assertSameValue(t, tt.name, FactsValue(tt.f), viaJSON(t, tt.f))
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func TestFactsValueRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 50 {
		f := genFacts(rng, 1+rng.IntN(8), uint64(i))
		for name, s := range f.Services {
			switch rng.IntN(6) {
			case 0:
				s.Summary = nil
			case 1:
				s.Replicas = nil
			case 2:
				f.Services[name] = nil
			}
		}
		if rng.IntN(3) == 0 {
			f.Alerts = append(f.Alerts, engine.Alert{Name: "A", Service: "svc-00000", Severity: "page",
				Labels: map[string]string{"team": "sre"}, StartsAt: f.Time.Add(-time.Duration(rng.Int64N(1e12)))})
		}
		if rng.IntN(5) == 0 {
			f.Alerts, f.Sensors = nil, nil
		}
		assertSameValue(t, "random", FactsValue(f), viaJSON(t, f))
	}
}

// TestFloatTermSpellsAsJSON checks floatTerm against its definition, number by number: an
// integer as encoding/json spells it, any other float64 rounded to 15 significant digits and
// spelled as encoding/json spells the rounded float64. Random floats of every magnitude, and
// the edges: roundings that carry into the next decade or to an integer, the 1e-6 switch to
// exponent form, subnormals, the largest non-integers.
func TestFloatTermSpellsAsJSON(t *testing.T) {
	want := func(f float64) string {
		if f != math.Trunc(f) {
			f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
		}
		bs, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(bs)
	}
	cases := []float64{0, math.Copysign(0, -1), 0.1 + 0.2, 1e-7, 1e-6, 9.999999999999999e-7, 9.9999999999999995e-7,
		0.9999999999999999, 0.99999999999999994, 89.99999999999999, 2.9999999999999996, 999999999999999.9,
		4503599627370495.5, -4503599627370495.5, 123456789.123456789, 5e-324, -2.5e-300, 1.5, -0.001, 12.5e-7,
		1e15, 1e21, 1.2345678901234567e19, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}
	rng := rand.New(rand.NewPCG(7, 11))
	for range 20000 {
		f := math.Float64frombits(rng.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		cases = append(cases, f, rng.Float64()*math.Pow(10, float64(rng.IntN(30)-15)))
	}
	for _, f := range cases {
		got := floatTerm(f).Value.String()
		if w := want(f); got != w {
			t.Errorf("floatTerm(%v) = %s, want %s", f, got, w)
		}
	}
}
