package alertmanager_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/sensors/alertmanager"
)

type noJournal struct{}

func (noJournal) Record(context.Context, engine.TickRecord) error { return nil }

type fixedPolicy struct{ engine.Evaluator }

func (p fixedPolicy) Current() engine.Evaluator { return p.Evaluator }

const webhook = `{
  "version": "4",
  "groupKey": "{}:{alertname=\"HighErrorRate\"}",
  "truncatedAlerts": 0,
  "status": "STATUS",
  "receiver": "ares",
  "groupLabels": {"alertname": "HighErrorRate"},
  "commonLabels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
  "commonAnnotations": {"summary": "api answers 12% 5xx"},
  "externalURL": "http://alertmanager:9093",
  "alerts": [
    {
      "status": "STATUS",
      "labels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical", "job": "api"},
      "annotations": {"summary": "api answers 12% 5xx"},
      "startsAt": "2026-12-04T10:00:00Z",
      "endsAt": "ENDS_AT",
      "generatorURL": "http://prometheus:9090/graph",
      "fingerprint": "c4d7a2f1e0b39a61"
    }
  ]
}`

func send(t *testing.T, url, status, endsAt string) {
	t.Helper()
	body := strings.NewReplacer("STATUS", status, "ENDS_AT", endsAt).Replace(webhook)
	resp, err := http.Post(url+alertmanager.PathV1, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", status, resp.Status)
	}
}

// An Alertmanager notification posted over HTTP becomes an alert fact in a gathered document
// and, through the default policy pack, a service-level restart; the resolved notification
// takes both away.
func TestAlertBecomesDecision(t *testing.T) {
	r := alertmanager.New(alertmanager.Options{}, nil)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	docker := engine.SensorFunc{N: "docker", F: func(_ context.Context, f *engine.Facts) error {
		api := f.Service("api")
		api.DesiredReplicas = 1
		api.Replicas = append(api.Replicas, engine.Replica{ID: "a1", Name: "demo-api-1", State: "running", Health: "healthy", CPUPercent: 40})
		return nil
	}}
	set, err := policy.Load("../../policies", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !set.Partitioned() {
		t.Fatalf("default pack not partitioned: %s", set.PartitionReason())
	}
	e, err := engine.New(engine.Options{Sensors: []engine.Sensor{docker, r}, Policy: fixedPolicy{set}, Journal: noJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	decide := func(tick uint64) (*engine.Facts, []engine.Decision) {
		f := e.Gather(context.Background(), tick, time.Now())
		ds, rejected, err := set.Evaluate(context.Background(), f)
		if err != nil || len(rejected) > 0 {
			t.Fatalf("evaluate: %v, rejected %v", err, rejected)
		}
		return f, ds
	}

	send(t, srv.URL, "firing", "0001-01-01T00:00:00Z")
	f, ds := decide(1)
	if !f.Sensors["alertmanager"].OK || len(f.Alerts) != 1 || f.Alerts[0].Name != "HighErrorRate" || f.Alerts[0].Service != "api" || f.Alerts[0].Severity != "critical" {
		t.Fatalf("facts: sensors %v, alerts %+v", f.Sensors, f.Alerts)
	}
	want := []engine.Decision{{Action: "restart", Service: "api", Reason: "alert HighErrorRate firing since 2026-12-04T10:00:00Z"}}
	if !reflect.DeepEqual(ds, want) {
		t.Fatalf("decisions %+v, want %+v", ds, want)
	}

	send(t, srv.URL, "resolved", "2026-12-04T10:05:00Z")
	f, ds = decide(2)
	if len(f.Alerts) != 0 || len(ds) != 0 {
		t.Fatalf("after resolve: alerts %+v, decisions %+v; want none", f.Alerts, ds)
	}
}
