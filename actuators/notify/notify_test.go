package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

var action = engine.Action{
	Decision: engine.Decision{Action: engine.ActNotify, Service: "shop-cart", Replica: "shop-cart-1", Reason: "restarted 3 times in 10m"},
	Verdict:  engine.VerdictAdmit,
}

func TestPayload(t *testing.T) {
	type got struct {
		method, ctype, ua string
		body              map[string]any
	}
	gotc := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body is not JSON: %v: %s", err, b)
		}
		gotc <- got{r.Method, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), m}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	n := New(srv.URL+"/hook?token=secret", time.Second, nil)
	n.now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)) }
	out, err := n.Act(context.Background(), action)
	if err != nil {
		t.Fatalf("Act: %v", err)
	}
	if out.Result != engine.ResultOK || out.Duration <= 0 {
		t.Errorf("outcome = %+v, want ok with a duration", out)
	}
	g := <-gotc
	if g.method != http.MethodPost || g.ctype != "application/json" || g.ua != "ares" {
		t.Errorf("method %q, Content-Type %q, User-Agent %q", g.method, g.ctype, g.ua)
	}
	want := map[string]any{
		"action": "notify", "service": "shop-cart", "replica": "shop-cart-1",
		"reason": "restarted 3 times in 10m", "verdict": "admit", "time": "2025-01-02T02:04:05Z",
	}
	if len(g.body) != len(want) {
		t.Errorf("payload has keys %v, want exactly %v", g.body, want)
	}
	for k, v := range want {
		if g.body[k] != v {
			t.Errorf("payload[%q] = %v, want %v", k, g.body[k], v)
		}
	}
}

func TestErrors(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "boom "+strings.Repeat("x", 300))
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(release)

	tests := []struct {
		name, url string
		want      []string
		notWant   string
	}{
		{"non-2xx", srv.URL + "/fail?token=secret", []string{"500 Internal Server Error", "boom xxx"}, "secret"},
		{"timeout", srv.URL + "/slow?token=secret", []string{"notify: post to 127.0.0.1", "Client.Timeout"}, "secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := New(tc.url, 200*time.Millisecond, nil)
			start := time.Now()
			out, err := n.Act(context.Background(), action)
			if err == nil {
				t.Fatal("Act succeeded, want an error")
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("Act took %s, want it bounded by the timeout", time.Since(start))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
				t.Errorf("error %q leaks %q", err, tc.notWant)
			}
			if out.Result != engine.ResultError || out.Error != err.Error() {
				t.Errorf("outcome = %+v, want the error", out)
			}
		})
	}
	t.Run("no url: logged, not failed", func(t *testing.T) {
		out, err := New("", time.Second, nil).Act(context.Background(), action)
		if err != nil || out.Result != engine.ResultOK || out.Detail != LoggedOnly {
			t.Errorf("Act = %+v, %v; want ok, logged only", out, err)
		}
	})
	t.Run("body capped at 200 bytes", func(t *testing.T) {
		_, err := New(srv.URL+"/fail", time.Second, nil).Act(context.Background(), action)
		if err == nil || strings.Contains(err.Error(), strings.Repeat("x", 200)) {
			t.Errorf("error %v: want the body cut at 200 bytes", err)
		}
	})
}
