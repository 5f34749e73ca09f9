package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newReceiver(opt Options) (*Receiver, *clock) {
	c := &clock{t: t0.Add(time.Minute)}
	opt.Now = c.Now
	return New(opt, nil), c
}

type alertSpec struct {
	status, name, service, severity, fingerprint string
	startsAt, endsAt                             time.Time
}

func payload(alerts ...alertSpec) string {
	var as []map[string]any
	for _, a := range alerts {
		labels := map[string]string{"alertname": a.name, "severity": a.severity, "instance": "x:9090"}
		if a.service != "" {
			labels["service"] = a.service
		}
		m := map[string]any{
			"status": a.status, "labels": labels,
			"annotations":  map[string]string{"summary": a.name + " on " + a.service},
			"startsAt":     a.startsAt.Format(time.RFC3339Nano),
			"endsAt":       a.endsAt.Format(time.RFC3339Nano),
			"generatorURL": "http://prometheus/graph",
			"fingerprint":  a.fingerprint,
		}
		as = append(as, m)
	}
	raw, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0, "status": "firing",
		"receiver": "ares", "groupLabels": map[string]string{}, "commonLabels": map[string]string{},
		"commonAnnotations": map[string]string{}, "externalURL": "http://alertmanager:9093", "alerts": as,
	})
	return string(raw)
}

func firing(name, service, fp string) alertSpec {
	return alertSpec{status: "firing", name: name, service: service, severity: "critical", fingerprint: fp, startsAt: t0}
}

func resolved(name, service, fp string) alertSpec {
	a := firing(name, service, fp)
	a.status, a.endsAt = "resolved", t0.Add(30*time.Second)
	return a
}

func post(t testing.TB, h http.Handler, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed && ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func alerts(t testing.TB, r *Receiver) []engine.Alert {
	t.Helper()
	f := engine.NewFacts(1, time.Now())
	if err := r.Collect(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	return f.Alerts
}

func names(as []engine.Alert) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.Name+"/"+a.Service)
	}
	return out
}

func TestFiringThenResolved(t *testing.T) {
	r, _ := newReceiver(Options{})
	code, out := post(t, r.Handler(), PathV1, payload(firing("HighErrorRate", "api", "fp1"), firing("HighLatency", "cart", "fp2")))
	if code != http.StatusOK || out["firing"] != 2.0 {
		t.Fatalf("firing: %d %v", code, out)
	}
	got := alerts(t, r)
	want := []engine.Alert{
		{Name: "HighErrorRate", Service: "api", Severity: "critical",
			Labels:      map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical", "instance": "x:9090"},
			Annotations: map[string]string{"summary": "HighErrorRate on api"}, StartsAt: t0},
		{Name: "HighLatency", Service: "cart", Severity: "critical",
			Labels:      map[string]string{"alertname": "HighLatency", "service": "cart", "severity": "critical", "instance": "x:9090"},
			Annotations: map[string]string{"summary": "HighLatency on cart"}, StartsAt: t0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("alerts:\n got %+v\nwant %+v", got, want)
	}
	// The facts hold copies: changing them does not change the receiver.
	got[0].Labels["alertname"] = "changed"
	if alerts(t, r)[0].Labels["alertname"] != "HighErrorRate" {
		t.Fatal("Collect shares its maps with the receiver")
	}

	// The same alert again (a repeat notification) is kept once; the v2 alias works.
	if code, _ := post(t, r.Handler(), PathV2, payload(firing("HighErrorRate", "api", "fp1"))); code != http.StatusOK {
		t.Fatalf("repeat on v2: %d", code)
	}
	if n := len(alerts(t, r)); n != 2 {
		t.Fatalf("%d alerts after a repeat, want 2", n)
	}

	code, out = post(t, r.Handler(), PathV1, payload(resolved("HighErrorRate", "api", "fp1")))
	if code != http.StatusOK || out["resolved"] != 1.0 {
		t.Fatalf("resolved: %d %v", code, out)
	}
	if got := names(alerts(t, r)); !reflect.DeepEqual(got, []string{"HighLatency/cart"}) {
		t.Fatalf("after resolve: %v", got)
	}
}

func TestWithoutFingerprint(t *testing.T) {
	r, _ := newReceiver(Options{ServiceLabel: "app"})
	a := firing("ServiceDown", "", "")
	body := strings.Replace(payload(a), `"instance":"x:9090"`, `"instance":"x:9090","app":"shop"`, 1)
	post(t, r.Handler(), PathV1, body)
	got := alerts(t, r)
	if len(got) != 1 || got[0].Service != "shop" {
		t.Fatalf("alerts %+v, want ServiceDown for service shop (label app)", got)
	}
	res := strings.Replace(body, `"status":"firing"`, `"status":"resolved"`, 1)
	post(t, r.Handler(), PathV1, res)
	if n := len(alerts(t, r)); n != 0 {
		t.Fatalf("%d alerts after resolving by label set, want 0", n)
	}
}

func TestExpiry(t *testing.T) {
	r, c := newReceiver(Options{TTL: time.Hour})
	ends := firing("A", "api", "fp-ends")
	ends.endsAt = t0.Add(5 * time.Minute)
	past := firing("B", "api", "fp-past")
	past.endsAt = t0.Add(30 * time.Second) // already over at t0+1m
	post(t, r.Handler(), PathV1, payload(ends, past, firing("C", "api", "fp-ttl")))
	if got := names(alerts(t, r)); !reflect.DeepEqual(got, []string{"A/api", "C/api"}) {
		t.Fatalf("alerts %v, want A and C (B ended already)", got)
	}
	c.Add(5 * time.Minute) // t0+6m: A's endsAt passed
	if got := names(alerts(t, r)); !reflect.DeepEqual(got, []string{"C/api"}) {
		t.Fatalf("alerts %v, want only C", got)
	}
	c.Add(time.Hour) // C not notified for the TTL
	if got := alerts(t, r); len(got) != 0 {
		t.Fatalf("alerts %v after the TTL, want none", names(got))
	}
	if r.Len() != 0 {
		t.Fatalf("Len %d, want 0", r.Len())
	}
}

func TestBounded(t *testing.T) {
	r, c := newReceiver(Options{MaxAlerts: 3})
	for i := range 5 {
		post(t, r.Handler(), PathV1, payload(firing(fmt.Sprintf("A%d", i), "api", fmt.Sprint(i))))
		c.Add(time.Second)
	}
	if got := names(alerts(t, r)); !reflect.DeepEqual(got, []string{"A2/api", "A3/api", "A4/api"}) || r.Dropped() != 2 {
		t.Fatalf("kept %v, dropped %d; want the 3 most recent and 2 dropped", got, r.Dropped())
	}
	// A repeat notification makes an alert the most recent.
	post(t, r.Handler(), PathV1, payload(firing("A2", "api", "2"), firing("A5", "api", "5")))
	if got := names(alerts(t, r)); !reflect.DeepEqual(got, []string{"A2/api", "A4/api", "A5/api"}) {
		t.Fatalf("kept %v", got)
	}

	r, _ = newReceiver(Options{MaxBytes: 2500}) // about 1.1 kB per alert below
	big := strings.Repeat("x", 600)
	for i := range 4 {
		post(t, r.Handler(), PathV1, strings.Replace(payload(firing(fmt.Sprintf("B%d", i), "api", fmt.Sprint(i))), `"summary":"`, `"summary":"`+big, 1))
	}
	if r.Len() != 2 || r.Dropped() != 2 {
		t.Fatalf("byte bound: kept %d, dropped %d; want 2 and 2", r.Len(), r.Dropped())
	}
}

func TestDeterministicOrder(t *testing.T) {
	r, _ := newReceiver(Options{})
	b1 := firing("B", "api", "z")
	b2 := firing("B", "api", "a")
	b3 := firing("B", "api", "m")
	b3.startsAt = t0.Add(-time.Hour)
	post(t, r.Handler(), PathV1, payload(firing("C", "api", "c"), b1, firing("B", "cart", "b"), b2, firing("A", "web", "w"), b3))
	var keys []string
	for _, a := range alerts(t, r) {
		keys = append(keys, a.Name+"/"+a.Service+"/"+a.StartsAt.Format("15:04"))
	}
	want := []string{"A/web/10:00", "B/api/09:00", "B/api/10:00", "B/api/10:00", "B/cart/10:00", "C/api/10:00"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("order %v, want %v", keys, want)
	}
}

func TestMalformed(t *testing.T) {
	valid := payload(resolved("Existing", "api", "fp-existing"), firing("New", "api", "fp-new"))
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", "hello", "not a webhook payload"},
		{"empty", "", "not a webhook payload"},
		{"array", "[]", "not a webhook payload"},
		{"trailing data", valid + "{}", "data after"},
		{"wrong version", strings.Replace(valid, `"version":"4"`, `"version":"3"`, 1), "version"},
		{"version as number", strings.Replace(valid, `"version":"4"`, `"version":4`, 1), "not a webhook payload"},
		{"no alerts", `{"version":"4","status":"firing"}`, "alerts: missing"},
		{"null alerts", `{"version":"4","alerts":null}`, "alerts: missing"},
		{"alerts not array", `{"version":"4","alerts":{}}`, "not a webhook payload"},
		{"bad status", strings.Replace(valid, `"status":"firing"}`, `"status":"pending"}`, 1), "alerts[1].status"},
		{"bad startsAt", strings.Replace(valid, `"startsAt":"2026-12-04T10:00:00Z"`, `"startsAt":"yesterday"`, 1), "not a webhook payload"},
		{"missing startsAt", strings.Replace(valid, `"startsAt":"2026-12-04T10:00:00Z",`, ``, 1), "startsAt: missing"},
		{"endsAt before startsAt", strings.Replace(valid, `"endsAt":"2026-12-04T10:00:30Z"`, `"endsAt":"2026-12-04T09:00:00Z"`, 1), "alerts[0].endsAt"},
		{"labels not strings", strings.Replace(valid, `"severity":"critical"`, `"severity":3`, 1), "not a webhook payload"},
		{"too big", strings.Replace(valid, `"generatorURL":"`, `"generatorURL":"`+strings.Repeat("x", MaxBody), 1), "body over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReceiver(Options{})
			if code, _ := post(t, r.Handler(), PathV1, payload(firing("Existing", "api", "fp-existing"))); code != http.StatusOK {
				t.Fatal(code)
			}
			before := alerts(t, r)
			code, out := post(t, r.Handler(), PathV1, tt.body)
			msg, _ := out["error"].(string)
			if code != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
				t.Fatalf("got %d %v, want 400 with an error containing %q", code, out, tt.want)
			}
			if after := alerts(t, r); !reflect.DeepEqual(after, before) {
				t.Fatalf("state changed: %v → %v", names(before), names(after))
			}
		})
	}
	// The valid payload the cases were derived from is accepted and applied.
	r, _ := newReceiver(Options{})
	post(t, r.Handler(), PathV1, payload(firing("Existing", "api", "fp-existing")))
	if code, out := post(t, r.Handler(), PathV1, valid); code != http.StatusOK {
		t.Fatalf("valid: %d %v", code, out)
	}
	if got := names(alerts(t, r)); !reflect.DeepEqual(got, []string{"New/api"}) {
		t.Fatalf("after valid: %v", got)
	}
	// An empty alerts array is valid and changes nothing.
	if code, _ := post(t, r.Handler(), PathV1, `{"version":"4","alerts":[]}`); code != http.StatusOK {
		t.Fatalf("empty alerts: %d", code)
	}
}

func TestRoutes(t *testing.T) {
	r, _ := newReceiver(Options{})
	h := r.Handler()
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, PathV1, http.StatusMethodNotAllowed},
		{http.MethodPut, PathV2, http.StatusMethodNotAllowed},
		{http.MethodPost, "/api/v3/alerts", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader("{}")))
		if rec.Code != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
	if r.Name() != "alertmanager" {
		t.Error(r.Name())
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(payload(firing("A", "api", "fp"), resolved("B", "cart", ""))))
	f.Add([]byte(`{"version":"4","alerts":[]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","startsAt":"2026-12-04T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		wh, err := Decode(body)
		if err != nil {
			return
		}
		// Whatever decodes is applied and collected without panic.
		r, _ := newReceiver(Options{MaxAlerts: 4})
		r.apply(wh)
		_ = alerts(t, r)
	})
}
