package dashboard

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

func tokenID() string {
	sum := sha256.Sum256([]byte(testToken))
	return "token:" + hex.EncodeToString(sum[:])[:8]
}

func TestReadEndpoints(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken})
	if w := fx.do(t, "GET", "/api/v1/facts", ""); w.Code != http.StatusServiceUnavailable {
		t.Errorf("facts before any tick: %d %s", w.Code, w.Body)
	}
	fx.feed(t, 5)
	rec := withAction(tick(6, t0.Add(6*time.Second), "web-1"),
		engine.Decision{Action: "restart", Service: "web", Replica: "web-1", Reason: "exited with code 137"}, engine.VerdictAdmit, "",
		&engine.Outcome{Result: "ok", Duration: 800 * time.Millisecond})
	_ = fx.srv.Record(context.Background(), rec)

	for _, tc := range []struct {
		path string
		code int
		want []string
	}{
		{"/api/v1/facts", 200, []string{`"services"`, `"web-1"`, `"api"`}},
		{"/api/v1/facts?service=api", 200, []string{`"api-1"`}},
		{"/api/v1/facts?service=nope", 404, []string{`unknown service`}},
		{"/api/v1/decisions", 200, []string{`"restart"`, `"verdict": "admit"`, `"tick": 6`}},
		{"/api/v1/decisions?service=api", 200, []string{`"decisions": []`}},
		{"/api/v1/decisions?limit=x", 400, []string{`limit`}},
		{"/api/v1/incidents", 200, []string{`"service": "web"`, `"stage": "detected"`, `"stage": "acted"`}},
		{"/api/v1/incidents?since=2026-01-01T00:00:00Z&state=open", 200, []string{`"web-6"`}},
		{"/api/v1/incidents?since=yesterday", 400, []string{`since`}},
		{"/api/v1/incidents?state=maybe", 400, []string{`state`}},
		{"/api/v1/actions", 200, []string{`"actions"`, `"requests": []`, `"duration_ns": 800000000`}},
		{"/api/v1/actions?service=api", 200, []string{`"actions": []`}},
		{"/api/v1/policy", 200, []string{`"revision": "abc123def456"`, `"decisions.rego"`, `"would_decide_now"`, `"replica": "web-1"`}},
		{"/api/v1/policy?eval=false", 200, []string{`"revision"`}},
		{"/api/v1/status", 200, []string{`"automation": "running"`, `"open_incident": "web-6"`}},
		{"/api/v1/nope", 404, []string{`no such endpoint`}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := fx.do(t, "GET", tc.path, "")
			if w.Code != tc.code {
				t.Fatalf("GET %s: %d, want %d: %s", tc.path, w.Code, tc.code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Errorf("not JSON: %s", w.Body)
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("GET %s: body lacks %s:\n%s", tc.path, s, w.Body)
				}
			}
		})
	}
}

func TestAuthRead(t *testing.T) {
	if _, err := New(Options{AuthRead: true}, Deps{}, nil); err == nil {
		t.Error("auth read without a token accepted")
	}
	fx := newFixture(t, Options{Token: testToken, AuthRead: true})
	fx.feed(t, 2)
	for _, p := range []string{"/api/v1/facts", "/api/v1/decisions", "/api/v1/incidents", "/api/v1/actions", "/api/v1/policy", "/api/v1/status", "/api/v1/events"} {
		if w := fx.do(t, "GET", p, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without token: %d", p, w.Code)
		}
		if w := fx.do(t, "GET", p, "", bearer("wrong")); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d", p, w.Code)
		}
		if p == "/api/v1/events" {
			continue // streams; covered by TestLiveEvents
		}
		if w := fx.do(t, "GET", p, "", bearer(testToken)); w.Code != http.StatusOK {
			t.Errorf("GET %s with the token: %d %s", p, w.Code, w.Body)
		}
	}
	for _, p := range []string{"/", "/services/web", "/incidents", "/activity", "/policies"} {
		w := fx.do(t, "GET", p, "")
		if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
			t.Errorf("GET %s without session: %d %s", p, w.Code, w.Header().Get("Location"))
		}
	}
	cookie := login(t, fx)
	if w := fx.do(t, "GET", "/", "", cookie); w.Code != 200 {
		t.Errorf("overview with session: %d", w.Code)
	}
	if w := fx.do(t, "GET", "/api/v1/status", "", cookie); w.Code != 200 {
		t.Errorf("read API with session cookie: %d", w.Code)
	}
}

// login posts the login form and returns the session cookie as a request option.
func login(t testing.TB, fx *fixture) reqOpt {
	t.Helper()
	if w := fx.do(t, "POST", "/login", "token=wrong&next=/"); w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Fatalf("login with a wrong token: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	w := fx.do(t, "POST", "/login", "token="+testToken+"&next=/services/web")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/services/web" {
		t.Fatalf("login: %d %s", w.Code, w.Header().Get("Location"))
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != sessionCookie || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie: %+v", cs)
	}
	if strings.Contains(cs[0].Value, testToken) {
		t.Fatal("the cookie holds the token")
	}
	c := cs[0]
	return func(r *http.Request) { r.AddCookie(c) }
}

func TestMutatingEndpoints(t *testing.T) {
	type call struct {
		name, path, body string
		opts             []reqOpt
		code             int
		want             string
	}
	refused := []call{
		// 401: no token, wrong token, wrong scheme; the cookie is not enough for the API.
		{"pause no token", "/api/v1/pause", `{"why":"x"}`, nil, 401, "missing or wrong token"},
		{"pause wrong token", "/api/v1/pause", `{"why":"x"}`, []reqOpt{bearer("nope")}, 401, "wrong token"},
		{"pause basic", "/api/v1/pause", `{"why":"x"}`, []reqOpt{func(r *http.Request) { r.Header.Set("Authorization", "Basic "+testToken) }}, 401, "token"},
		{"resume no token", "/api/v1/resume", `{}`, nil, 401, "token"},
		{"actions no token", "/api/v1/actions", `{"action":"restart","service":"web","replica":"web-1","reason":"x"}`, nil, 401, "token"},
		{"actions wrong token", "/api/v1/actions", `{"action":"restart","service":"web","replica":"web-1","reason":"x"}`, []reqOpt{bearer(testToken + "x")}, 401, "token"},
		{"approvals no token", "/api/v1/approvals/42", `{"approve":true}`, nil, 401, "token"},
		// 400: malformed bodies.
		{"pause empty", "/api/v1/pause", ``, []reqOpt{bearer(testToken)}, 400, "empty body"},
		{"pause not json", "/api/v1/pause", `why=x`, []reqOpt{bearer(testToken)}, 400, "malformed"},
		{"pause unknown field", "/api/v1/pause", `{"why":"x","until":"tomorrow"}`, []reqOpt{bearer(testToken)}, 400, "unknown field"},
		{"pause bad duration", "/api/v1/pause", `{"why":"x","for":"10 minutes"}`, []reqOpt{bearer(testToken)}, 400, `\"for\"`},
		{"pause negative duration", "/api/v1/pause", `{"why":"x","for":"-5m"}`, []reqOpt{bearer(testToken)}, 400, `\"for\"`},
		{"pause no why", "/api/v1/pause", `{"service":"web"}`, []reqOpt{bearer(testToken)}, 400, `\"why\"`},
		{"pause wrong type", "/api/v1/pause", `{"why":"x","for":600}`, []reqOpt{bearer(testToken)}, 400, "malformed"},
		{"pause trailing", "/api/v1/pause", `{"why":"x"} {"why":"y"}`, []reqOpt{bearer(testToken)}, 400, "after the JSON"},
		{"pause bad service", "/api/v1/pause", `{"why":"x","service":"we b"}`, []reqOpt{bearer(testToken)}, 400, "service"},
		{"resume unknown field", "/api/v1/resume", `{"service":"web","force":true}`, []reqOpt{bearer(testToken)}, 400, "unknown field"},
		{"actions unknown action", "/api/v1/actions", `{"action":"reboot","service":"web","reason":"x"}`, []reqOpt{bearer(testToken)}, 400, "unknown action"},
		{"actions no reason", "/api/v1/actions", `{"action":"restart","service":"web","replica":"web-1"}`, []reqOpt{bearer(testToken)}, 400, `\"reason\"`},
		{"actions no service", "/api/v1/actions", `{"action":"restart","reason":"x"}`, []reqOpt{bearer(testToken)}, 400, `\"service\"`},
		{"actions scale with replica", "/api/v1/actions", `{"action":"scale_out","service":"web","replica":"web-1","reason":"x"}`, []reqOpt{bearer(testToken)}, 400, "service-level"},
		{"actions unknown service", "/api/v1/actions", `{"action":"restart","service":"db","reason":"x"}`, []reqOpt{bearer(testToken)}, 400, "unknown service"},
		{"actions unknown replica", "/api/v1/actions", `{"action":"restart","service":"web","replica":"web-9","reason":"x"}`, []reqOpt{bearer(testToken)}, 400, "unknown replica"},
		{"actions unknown field", "/api/v1/actions", `{"action":"restart","service":"web","reason":"x","force":1}`, []reqOpt{bearer(testToken)}, 400, "unknown field"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, Options{Token: testToken})
			fx.feed(t, 2)
			cookie := login(t, fx)
			if c.code == 401 {
				c.opts = append(c.opts, cookie) // a session cookie must not open the API
			}
			before := fx.state()
			w := fx.do(t, "POST", c.path, c.body, c.opts...)
			if w.Code != c.code || !strings.Contains(w.Body.String(), c.want) {
				t.Fatalf("POST %s %s: %d %s; want %d with %q", c.path, c.body, w.Code, w.Body, c.code, c.want)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Errorf("error is not JSON: %s", w.Body)
			}
			if after := fx.state(); after != before {
				t.Errorf("state changed on a refused request:\nbefore %s\nafter  %s", before, after)
			}
			if c.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("disabled without a token", func(t *testing.T) {
		fx := newFixture(t, Options{})
		fx.feed(t, 1)
		before := fx.state()
		for _, p := range []string{"/api/v1/pause", "/api/v1/resume", "/api/v1/actions", "/api/v1/approvals/1"} {
			w := fx.do(t, "POST", p, `{"why":"x"}`, bearer("anything"))
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "ARES_API_TOKEN") {
				t.Errorf("POST %s without a configured token: %d %s", p, w.Code, w.Body)
			}
		}
		if after := fx.state(); after != before {
			t.Errorf("state changed: %s → %s", before, after)
		}
	})

	t.Run("accepted", func(t *testing.T) {
		fx := newFixture(t, Options{Token: testToken})
		fx.feed(t, 2)
		auth := bearer(testToken)
		w := fx.do(t, "POST", "/api/v1/pause", `{"service":"web","for":"15m","why":"deploying web"}`, auth)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"until"`) {
			t.Fatalf("pause: %d %s", w.Code, w.Body)
		}
		if u, ok := fx.ctl.Paused(time.Time{})["web"]; !ok || time.Until(u) < 14*time.Minute {
			t.Errorf("pause web for 15m: %v %v", u, ok)
		}
		if w := fx.do(t, "POST", "/api/v1/pause", `{"why":"maintenance window"}`, auth); w.Code != 200 {
			t.Fatalf("global pause: %d %s", w.Code, w.Body)
		}
		if u, ok := fx.ctl.Paused(time.Time{})[""]; !ok || !u.IsZero() {
			t.Errorf("global pause until resumed: %v %v", u, ok)
		}
		if w := fx.do(t, "GET", "/api/v1/status", ""); !strings.Contains(w.Body.String(), `"automation": "paused"`) {
			t.Errorf("status after global pause: %s", w.Body)
		}
		if w := fx.do(t, "POST", "/api/v1/resume", `{"why":"done"}`, auth); w.Code != 200 {
			t.Fatalf("resume: %d %s", w.Code, w.Body)
		}
		if _, ok := fx.ctl.Paused(time.Time{})[""]; ok {
			t.Error("global pause not lifted")
		}
		w = fx.do(t, "POST", "/api/v1/actions", `{"action":"restart","service":"web","replica":"web-2","reason":"stuck connections"}`, auth)
		if w.Code != http.StatusAccepted {
			t.Fatalf("manual action: %d %s", w.Code, w.Body)
		}
		subs := fx.sub.Submitted()
		if len(subs) != 1 || subs[0].Target() != "web/web-2" || !strings.Contains(subs[0].Reason, "stuck connections") || !strings.Contains(subs[0].Reason, tokenID()) {
			t.Errorf("submitted %+v", subs)
		}
		// Without a governor (Deps.Approver) there is nothing to approve: 503, nothing changes
		// (approvals_test.go covers the endpoint over a real governor).
		w = fx.do(t, "POST", "/api/v1/approvals/7", `{"decision":"approve"}`, auth)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "not available") {
			t.Errorf("approvals without a governor: %d %s", w.Code, w.Body)
		}

		// Every call is journaled with who and why, and returned by GET actions.
		w = fx.do(t, "GET", "/api/v1/actions", "")
		var got struct {
			Requests []AuditEntry `json:"requests"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Requests) != 4 {
			t.Fatalf("audit: %+v", got.Requests)
		}
		wantOps := []string{"action", "resume", "pause", "pause"} // newest first
		for i, e := range got.Requests {
			if e.Who != tokenID() || e.Via != "api" || e.Op != wantOps[i] {
				t.Errorf("audit %d: %+v", i, e)
			}
		}
		if got.Requests[2].Why != "maintenance window" || got.Requests[3].Target != "web" || got.Requests[3].Detail != "for 15m0s" {
			t.Errorf("audit details: %+v", got.Requests)
		}
		if w := fx.do(t, "GET", "/activity?kind=audit", ""); !strings.Contains(w.Body.String(), "deploying web") || !strings.Contains(w.Body.String(), tokenID()) {
			t.Errorf("activity page lacks the audit entries:\n%s", w.Body)
		}
		if strings.Contains(fx.logs.String(), testToken) {
			t.Errorf("the token appears in the logs:\n%s", fx.logs)
		}
		if !strings.Contains(fx.logs.String(), tokenID()) {
			t.Errorf("the logs do not name the token id:\n%s", fx.logs)
		}
	})
}

func TestUIControls(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken})
	fx.feed(t, 3)
	if w := fx.do(t, "GET", "/services/web", ""); strings.Contains(w.Body.String(), `id="pause-service"`) {
		t.Error("controls shown without login")
	}
	before := fx.state()
	// Without a session: redirected to the login form.
	w := fx.do(t, "POST", "/ui/pause", "service=web&why=x&back=/services/web&csrf="+fx.srv.csrf)
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
		t.Errorf("pause form without session: %d %s", w.Code, w.Header().Get("Location"))
	}
	cookie := login(t, fx)
	// Without the CSRF field: refused.
	if w := fx.do(t, "POST", "/ui/pause", "service=web&why=x", cookie); w.Code != http.StatusForbidden {
		t.Errorf("pause form without csrf: %d", w.Code)
	}
	// Malformed: a bad duration comes back as an error message.
	w = fx.do(t, "POST", "/ui/pause", "service=web&why=x&for=soon&back=/services/web&csrf="+fx.srv.csrf, cookie)
	if w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Location"), "err=") {
		t.Errorf("bad duration: %d %s", w.Code, w.Header().Get("Location"))
	}
	if after := fx.state(); after != before {
		t.Fatalf("state changed by refused forms: %s → %s", before, after)
	}
	page := fx.do(t, "GET", "/services/web", "", cookie).Body.String()
	if !strings.Contains(page, `id="pause-service"`) || !strings.Contains(page, fx.srv.csrf) {
		t.Fatal("controls not shown after login")
	}
	w = fx.do(t, "POST", "/ui/pause", "service=web&why=investigating&back=/services/web&csrf="+fx.srv.csrf, cookie)
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/services/web?msg=") {
		t.Fatalf("pause form: %d %s", w.Code, w.Header().Get("Location"))
	}
	if _, ok := fx.ctl.Paused(time.Time{})["web"]; !ok {
		t.Error("web not paused")
	}
	w = fx.do(t, "POST", "/ui/actions", "service=web&action=recycle&replica=web-1&reason=leak&back=https://evil.example/&csrf="+fx.srv.csrf, cookie)
	if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, "/?msg=") {
		t.Errorf("manual action form redirected to %q", loc)
	}
	if subs := fx.sub.Submitted(); len(subs) != 1 || subs[0].Action != "recycle" {
		t.Errorf("submitted %+v", subs)
	}
	if w := fx.do(t, "GET", "/api/v1/actions", ""); !strings.Contains(w.Body.String(), `"via": "ui"`) {
		t.Errorf("ui calls not journaled: %s", w.Body)
	}
}

func TestIncidentLifecycle(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken})
	fx.feed(t, 3) // healthy until t0+3s
	restart := engine.Decision{Action: "restart", Service: "web", Replica: "web-1", Reason: "exited with code 137"}
	steps := []engine.TickRecord{
		tick(4, t0.Add(4*time.Second), "web-1"),
		withAction(tick(5, t0.Add(5*time.Second), "web-1"), restart, engine.VerdictAdmit, "", &engine.Outcome{Result: "ok", Duration: 700 * time.Millisecond}),
		tick(6, t0.Add(7*time.Second)),
		tick(7, t0.Add(8*time.Second)),
	}
	for _, rec := range steps {
		_ = fx.srv.Record(context.Background(), rec)
	}
	incs, _ := fx.srv.Incidents(context.Background(), time.Time{}, "")
	if len(incs) != 1 {
		t.Fatalf("incidents: %+v", incs)
	}
	inc := incs[0]
	var stages []string
	for _, e := range inc.Timeline {
		stages = append(stages, e.Stage)
	}
	if got := strings.Join(stages, ","); got != "detected,decided,acted,verified,resolved" {
		t.Errorf("timeline %s", got)
	}
	if inc.Open() || inc.TimeToDetect != time.Second || inc.TimeToRecover != 3*time.Second || inc.Cause != "web-1 exited with code 137" {
		t.Errorf("incident %+v", inc)
	}
	if len(inc.Actions) != 1 || inc.ActedAt == nil {
		t.Errorf("actions %+v acted %v", inc.Actions, inc.ActedAt)
	}
	// An action on a healthy service opens one too, resolved at the next healthy tick.
	_ = fx.srv.Record(context.Background(), withAction(tick(8, t0.Add(9*time.Second)),
		engine.Decision{Action: "scale_out", Service: "api", Reason: "cpu"}, engine.VerdictAdmit, "", &engine.Outcome{Result: "ok"}))
	if incs, _ := fx.srv.Incidents(context.Background(), time.Time{}, "api"); len(incs) != 1 || !incs[0].Open() || incs[0].DetectedAt != nil {
		t.Errorf("action-opened incident: %+v", incs)
	}
	_ = fx.srv.Record(context.Background(), tick(9, t0.Add(10*time.Second)))
	if incs, _ := fx.srv.Incidents(context.Background(), time.Time{}, "api"); len(incs) != 1 || incs[0].Open() {
		t.Errorf("action-opened incident not resolved: %+v", incs)
	}
	// A suppression is shown once on the timeline, however many ticks repeat it.
	for i := 0; i < 5; i++ {
		_ = fx.srv.Record(context.Background(), withAction(tick(uint64(10+i), t0.Add(time.Duration(11+i)*time.Second), "api-1"),
			engine.Decision{Action: "restart", Service: "api", Replica: "api-1", Reason: "exited"}, engine.VerdictSuppress,
			"automation for api is paused until resumed", nil))
	}
	incs, _ = fx.srv.Incidents(context.Background(), time.Time{}, "api")
	n := 0
	for _, e := range incs[0].Timeline {
		if e.Stage == StageSuppressed {
			n++
		}
	}
	if n != 1 || !incs[0].Open() {
		t.Errorf("suppressions on the timeline: %d, %+v", n, incs[0])
	}
	fx.srv.mu.RLock()
	supp := fx.srv.actions.newest(0, func(e *ActionEntry) bool { return e.Verdict == engine.VerdictSuppress })
	fx.srv.mu.RUnlock()
	if len(supp) != 1 {
		t.Errorf("repeated suppressions logged %d times, want once a minute", len(supp))
	}
}

func TestPagesRender(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken, PolicyDir: "/etc/ares/policies"})
	fx.pol.err = errReload
	fx.feed(t, 30)
	_ = fx.srv.Record(context.Background(), withAction(tick(31, t0.Add(31*time.Second), "web-1"),
		engine.Decision{Action: "restart", Service: "web", Replica: "web-1", Reason: "exited with code 137"}, engine.VerdictSuppress, "cooldown: last action 3s ago", nil))
	fx.srv.PolicyReloaded("abc123def456", errReload)
	for _, tc := range []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{"web", "api", `class="incident open"`, "web-1 exited with code 137", "policy abc123def456", "last reload failed", "automation: running", `class="spark"`}},
		{"/services/web", 200, []string{"<polyline", "CPU", "Memory", "Anomaly score", "high ≥ 0.5", "cooldown", "web-2"}},
		{"/services/api", 200, []string{"Latency p99", "Error rate"}},
		{"/services/nope", 404, []string{"has not seen"}},
		{"/incidents", 200, []string{"detected", "web-1 exited"}},
		{"/incidents?service=api", 200, []string{"No incidents"}},
		{"/activity", 200, []string{"docker", "suppressed restart web/web-1", "reload refused"}},
		{"/activity?kind=governor", 200, []string{"suppressed"}},
		{"/policies", 200, []string{"abc123def456", "decisions.rego", "/etc/ares/policies", "Last reload refused", "rego_parse_error", `id="would-decide"`, "web/web-1"}},
		{"/login", 200, []string{`name="token"`}},
		{"/static/style.css", 200, []string{"--bg"}},
		{"/static/app.js", 200, []string{"EventSource"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := fx.do(t, "GET", tc.path, "")
			if w.Code != tc.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tc.path, w.Code, tc.code, w.Body)
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("GET %s lacks %q", tc.path, s)
				}
			}
			if strings.Contains(w.Body.String(), testToken) {
				t.Error("page shows the token")
			}
		})
	}
	// The service page's CPU graph has a data point per tick.
	body := fx.do(t, "GET", "/services/web", "").Body.String()
	i := strings.Index(body, `<polyline class="series" points="`)
	if i < 0 {
		t.Fatal("no polyline")
	}
	pts := strings.Fields(body[i+len(`<polyline class="series" points="`) : i+strings.Index(body[i:], `"/>`)])
	if len(pts) < 20 {
		t.Errorf("CPU polyline has %d points", len(pts))
	}
}

func TestLiveEvents(t *testing.T) {
	fx := newFixture(t, Options{})
	ts := httptest.NewServer(fx.srv)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	if l, _ := rd.ReadString('\n'); !strings.HasPrefix(l, "retry:") {
		t.Fatalf("first line %q", l)
	}
	for fx.srv.hub.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	_ = fx.srv.Record(context.Background(), tick(1, t0, "web-1"))
	seen := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for !seen["tick"] && time.Now().Before(deadline) {
		l, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if ev, ok := strings.CutPrefix(strings.TrimSpace(l), "event: "); ok {
			seen[ev] = true
		}
	}
	for _, ev := range []string{"tick", "incident", "activity"} {
		if !seen[ev] {
			t.Errorf("no %q event; saw %v", ev, seen)
		}
	}
}

// A client that never reads must not slow Record down: its events are dropped and counted.
func TestSlowClientDoesNotBlock(t *testing.T) {
	fx := newFixture(t, Options{})
	c := fx.srv.hub.subscribe()
	defer fx.srv.hub.unsubscribe(c)
	start := time.Now()
	for i := 1; i <= 500; i++ {
		_ = fx.srv.Record(context.Background(), tick(uint64(i), t0.Add(time.Duration(i)*time.Second)))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("500 records with a stuck client took %s", d)
	}
	fx.srv.hub.mu.Lock()
	dropped := c.dropped
	fx.srv.hub.mu.Unlock()
	if len(c.ch) != clientBuffer || dropped == 0 {
		t.Errorf("buffer %d, dropped %d", len(c.ch), dropped)
	}
}

func TestSeriesWindow(t *testing.T) {
	st := newSeriesStore(10)
	for i := 0; i < 25; i++ {
		f := engine.NewFacts(uint64(i), t0.Add(time.Duration(i)*time.Second))
		if i != 22 {
			r := replica("a-1")
			r.CPUPercent = float64(i)
			f.Service("a").Replicas = []engine.Replica{r}
		}
		st.add(t0.Add(time.Duration(i)*time.Second), f)
	}
	pts := st.window("a", mCPU, time.Time{}, 100)
	if len(pts) != 10 || pts[0].V != 15 || pts[9].V != 24 || pts[7].V == pts[7].V {
		t.Errorf("window %+v", pts)
	}
	if pts := st.window("a", mCPU, time.Time{}, 5); len(pts) != 5 || pts[4].V != 24 || pts[0].V != 16 {
		t.Errorf("bucketed (max of each pair) %+v", pts)
	}
	if pts := st.window("a", mCPU, t0.Add(20*time.Second), 100); len(pts) != 5 {
		t.Errorf("since: %+v", pts)
	}
}
