package chaos

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestValidateBounds(t *testing.T) {
	cores := float64(runtime.NumCPU())
	for _, tc := range []struct {
		name string
		f    Fault
		want string // substring of the error, "" for valid
	}{
		{"kill", Fault{Kind: Kill, Service: "cart", Duration: time.Second}, ""},
		{"pause an hour", Fault{Kind: Pause, Service: "cart", Duration: time.Hour}, ""},
		{"leak max", Fault{Kind: Leak, Service: "cart", Value: 1024, Duration: 5 * time.Second}, ""},
		{"cpu all cores", Fault{Kind: CPU, Service: "cart", Value: cores, Duration: 5 * time.Second}, ""},
		{"latency 60s", Fault{Kind: Latency, Service: "cart", Value: 60000, Duration: 5 * time.Second}, ""},
		{"errors 100", Fault{Kind: Errors, Service: "cart", Value: 100, Duration: 5 * time.Second}, ""},

		{"unknown kind", Fault{Kind: "boom", Service: "cart", Duration: time.Second}, `kind: unknown fault kind "boom"`},
		{"no service", Fault{Kind: Kill, Duration: time.Second}, "service:"},
		{"too short", Fault{Kind: Kill, Service: "cart", Duration: 500 * time.Millisecond}, "duration: must be in 1s..1h0m0s"},
		{"too long", Fault{Kind: Pause, Service: "cart", Duration: 2 * time.Hour}, "duration:"},
		{"value on kill", Fault{Kind: Kill, Service: "cart", Value: 3, Duration: time.Second}, "takes no value"},
		{"leak too much", Fault{Kind: Leak, Service: "cart", Value: 1025, Duration: time.Second}, "value: leak must be in 1..1024 MB/s"},
		{"leak zero", Fault{Kind: Leak, Service: "cart", Duration: time.Second}, "value: leak must be in 1..1024"},
		{"too many cores", Fault{Kind: CPU, Service: "cart", Value: cores + 1, Duration: time.Second}, "value: cpu must be in 1.."},
		{"latency over 60s", Fault{Kind: Latency, Service: "cart", Value: 60001, Duration: time.Second}, "value: latency must be in 1..60000 ms"},
		{"errors over 100", Fault{Kind: Errors, Service: "cart", Value: 101, Duration: time.Second}, "value: errors must be in 1..100 %"},
		{"fraction", Fault{Kind: Latency, Service: "cart", Value: 2.5, Duration: time.Second}, "whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tc.f, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate(%+v) = %v, want an error containing %q", tc.f, err, tc.want)
			}
		})
	}
}

func TestParseFault(t *testing.T) {
	f, err := ParseFault("LATENCY", "product", "", 300, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != Latency || f.Duration != DefaultDuration || f.Value != 300 {
		t.Fatalf("ParseFault = %+v", f)
	}
	if got := f.String(); got != "latency 300 ms on product for 30s" {
		t.Errorf("String() = %q", got)
	}
	if _, err := ParseFault("nuke", "product", "", 0, 0); err == nil || !strings.Contains(err.Error(), "kill, stop, pause, leak, cpu, latency, errors") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := ParseFault("errors", "product", "", 0, time.Minute); err == nil {
		t.Error("errors without a value was accepted")
	}
}
