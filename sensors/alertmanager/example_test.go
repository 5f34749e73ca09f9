package alertmanager_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/sensors/alertmanager"
)

func Example() {
	r := alertmanager.New(alertmanager.Options{}, nil) // service from the "service" label
	mux := http.NewServeMux()
	mux.Handle(alertmanager.PathV1, r.Handler()) // the handler checks the full path itself
	mux.Handle(alertmanager.PathV2, r.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/v1/alerts", "application/json", strings.NewReader(`{
		"version": "4", "status": "firing", "receiver": "ares", "groupKey": "{}:{}",
		"alerts": [{"status": "firing", "fingerprint": "c4d7a2f1e0b39a61",
			"labels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
			"annotations": {"summary": "5xx above 5%"},
			"startsAt": "2026-12-04T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	f := engine.NewFacts(1, time.Now())
	_ = r.Collect(context.Background(), f)
	for _, a := range f.Alerts {
		fmt.Println(a.Name, a.Service, a.Severity, a.StartsAt.Format(time.RFC3339))
	}
	// Output:
	// 200 OK
	// HighErrorRate api critical 2026-12-04T10:00:00Z
}
