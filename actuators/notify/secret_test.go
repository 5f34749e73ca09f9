package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A webhook that echoes its path in an error page (as many servers do) does not make the
// token in the URL appear in the outcome, which is journaled and shown on the dashboard.
func TestErrorEchoingURLHidesToken(t *testing.T) {
	const pathTok, queryTok = "T0B0PathTok3n9", "QueryTok3n77"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Cannot POST "+r.URL.RequestURI()+" (token "+r.URL.Query().Get("token")+")", http.StatusNotFound)
	}))
	defer srv.Close()
	n := New(srv.URL+"/hooks/"+pathTok+"?token="+queryTok, time.Second, nil)
	out, err := n.Act(context.Background(), action)
	if err == nil {
		t.Fatal("Act: want an error from a 404")
	}
	for _, s := range []string{err.Error(), out.Error, out.Detail} {
		if strings.Contains(s, pathTok) || strings.Contains(s, queryTok) {
			t.Errorf("outcome shows the webhook's token: %q", s)
		}
	}
	if !strings.Contains(out.Error, "404") || !strings.Contains(out.Error, "Cannot POST") {
		t.Errorf("outcome error %q lost the status or the answer", out.Error)
	}
}
