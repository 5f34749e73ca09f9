package schema_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/schema"
)

// example is the shared example document (shared/examples/facts.json, the pinned example).
func example(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestValidateExample(t *testing.T) {
	if err := schema.Validate(example(t)); err != nil {
		t.Fatalf("example facts: %v", err)
	}
}

func TestValidateMarshalledFacts(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 30, 0, 123456789, time.FixedZone("CET", 3600))
	f := engine.NewFacts(7, now)
	toLimit := 120.5
	api := f.Service("api")
	api.DesiredReplicas = 2
	api.Replicas = append(api.Replicas,
		engine.Replica{
			ID: "a1", Name: "demo-api-1", State: "running", Health: "healthy",
			CPUPercent: 12.5, MemBytes: 1 << 20, MemLimitBytes: 1 << 27, MemPercent: 0.8,
			Trend:  &engine.Trend{MemSlopeBytesPerS: 1200, SecondsToMemLimit: &toLimit},
			Scaled: true,
		},
		engine.Replica{
			ID: "a2", Name: "demo-api-2", State: "exited", Health: "none", ExitCode: 137,
			OOMKilled: true, RestartCount: 3,
			Trend: &engine.Trend{MemSlopeBytesPerS: -3},
		},
	)
	api.Metrics = &engine.Metrics{RPS: 120, ErrorRate: 0.004, LatencyP99Ms: 48}
	api.Probe = &engine.Probe{OK: false, ConsecutiveFailures: 4, LatencyMs: 2.1}
	api.Anomaly = &engine.Anomaly{Score: 0.91, IsAnomaly: true, Risk: "high"}
	api.History = &engine.History{Actions10m: 2, SecondsSinceLastAction: 30.5}
	worker := f.Service("worker") // nil sections: absent from the JSON
	worker.DesiredReplicas = 1
	worker.Replicas = append(worker.Replicas, engine.Replica{ID: "w1", Name: "demo-worker-1", State: "running", Health: "none"})
	f.Service("empty") // no replicas at all
	f.Summarize()
	f.Alerts = append(f.Alerts,
		engine.Alert{Name: "HighErrorRate", Service: "api", Severity: "critical",
			Labels: map[string]string{"team": "shop"}, Annotations: map[string]string{"summary": "5xx"}, StartsAt: now},
		engine.Alert{Name: "NoLabels", Service: "api", Severity: "info"}, // nil maps marshal as null
	)
	f.Sensors["docker"] = engine.SensorStatus{OK: true, AgeS: 0.2}
	f.Sensors["metrics"] = engine.SensorStatus{OK: false, AgeS: 95, Error: "prometheus: timeout"}
	f.Sensors["probe"] = engine.SensorStatus{OK: false, AgeS: -1, Error: "never succeeded"}

	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(raw); err != nil {
		t.Fatalf("marshalled engine.Facts: %v\n%s", err, raw)
	}
}

// mutate applies fn to the decoded example and re-encodes it.
func mutate(t *testing.T, fn func(doc map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(example(t), &doc); err != nil {
		t.Fatal(err)
	}
	fn(doc)
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func obj(v any, keys ...any) map[string]any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v.(map[string]any)
}

func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(doc map[string]any)
		want []string // lines the error must contain, in order
	}{
		{
			name: "wrong type",
			edit: func(d map[string]any) { obj(d, "services", "api")["desired_replicas"] = "two" },
			want: []string{`facts: services.api.desired_replicas: must be of type integer (got "two")`},
		},
		{
			name: "not an integer",
			edit: func(d map[string]any) { obj(d, "services", "api", "replicas", 1)["exit_code"] = 1.5 },
			want: []string{`facts: services.api.replicas[1].exit_code: must be of type integer (got 1.5)`},
		},
		{
			name: "bad state",
			edit: func(d map[string]any) { obj(d, "services", "api", "replicas", 1)["state"] = "sleeping" },
			want: []string{`facts: services.api.replicas[1].state: must be one of running, exited, restarting, paused, dead, created, removing (got "sleeping")`},
		},
		{
			name: "bad health",
			edit: func(d map[string]any) { obj(d, "services", "worker", "replicas", 0)["health"] = "ok" },
			want: []string{`facts: services.worker.replicas[0].health: must be one of healthy, unhealthy, starting, none (got "ok")`},
		},
		{
			name: "bad risk",
			edit: func(d map[string]any) { obj(d, "services", "api", "anomaly")["risk"] = "severe" },
			want: []string{`facts: services.api.anomaly.risk: must be one of low, medium, high (got "severe")`},
		},
		{
			name: "missing top-level key",
			edit: func(d map[string]any) { delete(d, "tick") },
			want: []string{`facts: tick: required field is missing`},
		},
		{
			name: "missing replica key",
			edit: func(d map[string]any) { delete(obj(d, "services", "api", "replicas", 0), "name") },
			want: []string{`facts: services.api.replicas[0].name: required field is missing`},
		},
		{
			name: "version 2",
			edit: func(d map[string]any) { d["version"] = 2 },
			want: []string{`facts: version: must be 1 (got 2)`},
		},
		{
			name: "null section",
			edit: func(d map[string]any) { obj(d, "services", "api")["metrics"] = nil },
			want: []string{`facts: services.api.metrics: must be of type object (got null)`},
		},
		{
			name: "null replicas",
			edit: func(d map[string]any) { obj(d, "services", "worker")["replicas"] = nil },
			want: []string{`facts: services.worker.replicas: must be of type array (got null)`},
		},
		{
			name: "seconds_to_mem_limit string",
			edit: func(d map[string]any) {
				obj(d, "services", "api", "replicas", 0, "trend")["seconds_to_mem_limit"] = "soon"
			},
			want: []string{`facts: services.api.replicas[0].trend.seconds_to_mem_limit: must be of type number or null (got "soon")`},
		},
		{
			name: "error rate above 1",
			edit: func(d map[string]any) { obj(d, "services", "api", "metrics")["error_rate"] = 5 },
			want: []string{`facts: services.api.metrics.error_rate: `, `(got 5)`},
		},
		{
			name: "time not RFC 3339",
			edit: func(d map[string]any) { d["time"] = "yesterday" },
			want: []string{`facts: time: `, `date-time`, `(got "yesterday")`},
		},
		{
			name: "sensor status",
			edit: func(d map[string]any) { obj(d, "sensors", "probe")["ok"] = "yes" },
			want: []string{`facts: sensors.probe.ok: must be of type boolean (got "yes")`},
		},
		{
			name: "service name with dots",
			edit: func(d map[string]any) {
				svc := obj(d, "services", "worker")
				svc["desired_replicas"] = -1
				obj(d, "services")["web.v2"] = svc
			},
			want: []string{`facts: services.web.v2.desired_replicas: `, `facts: services.worker.desired_replicas: `},
		},
		{
			name: "sorted by path",
			edit: func(d map[string]any) {
				d["version"] = "1"
				obj(d, "services", "worker", "replicas", 0)["state"] = "zombie"
				obj(d, "services", "api")["probe"] = []any{}
			},
			want: []string{
				`facts: services.api.probe: must be of type object (got an array)`,
				`facts: services.worker.replicas[0].state: must be one of`,
				`facts: version: must be 1 (got "1")`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.Validate(mutate(t, tt.edit))
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("Validate() = %T %v, want *schema.Error", err, err)
			}
			assertInOrder(t, err.Error(), tt.want)
		})
	}
}

func assertInOrder(t *testing.T, got string, want []string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("error does not contain %q (in order):\n%s", w, got)
		}
		rest = rest[i+len(w):]
	}
}

func TestValidateCapsProblems(t *testing.T) {
	raw := mutate(t, func(d map[string]any) {
		for i := range 15 {
			obj(d, "services")[fmt.Sprintf("s%02d", i)] = map[string]any{"replicas": []any{}}
		}
	})
	err := schema.Validate(raw)
	var se *schema.Error
	if !errors.As(err, &se) {
		t.Fatalf("Validate() = %v, want *schema.Error", err)
	}
	if len(se.Problems) != schema.MaxProblems || se.More != 5 {
		t.Fatalf("got %d problems and %d more, want %d and 5:\n%v", len(se.Problems), se.More, schema.MaxProblems, err)
	}
	if first := se.Problems[0].String(); first != "facts: services.s00.desired_replicas: required field is missing" {
		t.Fatalf("first problem = %q", first)
	}
	assertInOrder(t, err.Error(), []string{"services.s09.desired_replicas", "facts: and 5 more problems"})
}

func TestValidateNotJSON(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"bad token", "{\n  \"version\": 1,\n    x\n}", "facts: not JSON: line 3 column 5: invalid character 'x'"},
		{"first line", `{"version": 1,}`, "facts: not JSON: line 1 column 15: invalid character '}'"},
		{"truncated", "{\n  \"version\": 1", "facts: not JSON: line 2 column 14: unexpected end of JSON input"},
		{"empty", "", "facts: not JSON: line 1 column 1: unexpected end of JSON input"},
		{"trailing data", "{}\n{}", "facts: not JSON: line 2 column 1: invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.Validate([]byte(tt.raw))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestValidateNotAnObject(t *testing.T) {
	err := schema.Validate([]byte(`[1, 2]`))
	if err == nil || err.Error() != "facts: must be of type object (got an array)" {
		t.Fatalf("Validate() = %v", err)
	}
}

func ExampleValidate() {
	err := schema.Validate([]byte(`{"version": 2, "tick": 1, "time": "2026-12-01T08:30:00Z",
		"services": {"api": {"replicas": [{"id": "1", "name": "api-1", "state": "sleeping", "health": "none",
			"exit_code": 0, "oom_killed": false, "restart_count": 0, "cpu_percent": 0, "mem_bytes": 0,
			"mem_limit_bytes": 0, "mem_percent": 0}], "desired_replicas": 1}},
		"alerts": [], "sensors": {}}`))
	fmt.Println(err)
	// Output:
	// facts: services.api.replicas[0].state: must be one of running, exited, restarting, paused, dead, created, removing (got "sleeping")
	// facts: version: must be 1 (got 2)
}
