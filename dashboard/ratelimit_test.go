package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func from(addr string) reqOpt { return func(r *http.Request) { r.RemoteAddr = addr } }

// After AuthFailures failed authentications a client gets 429 with Retry-After, even with the
// right token (so guessing cannot go faster than the refill), while other clients and
// successful requests are not affected; the bucket refills with time.
func TestFailedAuthIsRateLimited(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	fx := newFixture(t, Options{Token: testToken, AuthFailures: 3, AuthFailEvery: 10 * time.Second})
	fx.srv.now = func() time.Time { return now }
	attacker, friend := from("203.0.113.9:50000"), from("198.51.100.4:40000")
	pause := `{"why":"test"}`

	for i := 0; i < 5; i++ { // successes never count
		if w := fx.do(t, "POST", "/api/v1/pause", pause, bearer(testToken), attacker); w.Code != http.StatusOK {
			t.Fatalf("authorized pause %d: %d %s", i, w.Code, w.Body)
		}
	}
	for i := 0; i < 3; i++ {
		if w := fx.do(t, "POST", "/api/v1/pause", pause, bearer("guess"), attacker); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, w.Code)
		}
	}
	before := fx.state()
	for _, tc := range []struct {
		name string
		opts []reqOpt
	}{
		{"another guess", []reqOpt{bearer("guess-4"), attacker}},
		{"the right token from the limited address", []reqOpt{bearer(testToken), attacker}},
		{"no token", []reqOpt{attacker}},
	} {
		w := fx.do(t, "POST", "/api/v1/pause", pause, tc.opts...)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
			t.Errorf("%s: %d Retry-After %q, want 429 with Retry-After 10", tc.name, w.Code, w.Header().Get("Retry-After"))
		}
	}
	if fx.state() != before {
		t.Errorf("a limited request changed state: %s → %s", before, fx.state())
	}
	form := url.Values{"token": {testToken}}.Encode()
	if w := fx.do(t, "POST", "/login", form, attacker); w.Code != http.StatusTooManyRequests {
		t.Errorf("login from the limited address: %d, want 429", w.Code)
	}
	if w := fx.do(t, "POST", "/api/v1/pause", pause, bearer(testToken), friend); w.Code != http.StatusOK {
		t.Errorf("another client: %d, want 200", w.Code)
	}

	now = now.Add(4 * time.Second) // 0.4 of a token back: still limited, for the rest
	if w := fx.do(t, "POST", "/api/v1/pause", pause, bearer(testToken), attacker); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "6" {
		t.Errorf("after 4s: %d Retry-After %q, want 429 with Retry-After 6", w.Code, w.Header().Get("Retry-After"))
	}
	now = now.Add(6 * time.Second) // one token back: one more try
	if w := fx.do(t, "POST", "/api/v1/pause", pause, bearer(testToken), attacker); w.Code != http.StatusOK {
		t.Errorf("after the refill, the right token: %d, want 200", w.Code)
	}
	if w := fx.do(t, "POST", "/api/v1/pause", pause, bearer("guess-5"), attacker); w.Code != http.StatusUnauthorized {
		t.Errorf("after the refill, a guess: %d, want 401", w.Code)
	}
	if w := fx.do(t, "POST", "/api/v1/pause", pause, bearer("guess-6"), attacker); w.Code != http.StatusTooManyRequests {
		t.Errorf("the guess after: %d, want 429", w.Code)
	}
	if !strings.Contains(fx.logs.String(), "unauthorized control request") {
		t.Error("failed authentication is not logged")
	}
}

// With dashboard.auth: read the read endpoints count failures too; the login form does.
func TestFailedReadAuthAndLoginAreRateLimited(t *testing.T) {
	fx := newFixture(t, Options{Token: testToken, AuthRead: true, AuthFailures: 2})
	ip := from("203.0.113.10:1")
	for i := 0; i < 2; i++ {
		if w := fx.do(t, "GET", "/api/v1/status", "", bearer("nope"), ip); w.Code != http.StatusUnauthorized {
			t.Fatalf("read %d: %d, want 401", i, w.Code)
		}
	}
	if w := fx.do(t, "GET", "/api/v1/status", "", bearer(testToken), ip); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("read after 2 failures: %d, want 429 with Retry-After", w.Code)
	}
	other := from("203.0.113.11:1")
	for i := 0; i < 2; i++ {
		if w := fx.do(t, "POST", "/login", url.Values{"token": {"nope"}}.Encode(), other); w.Code != http.StatusUnauthorized {
			t.Fatalf("login %d: %d, want 401", i, w.Code)
		}
	}
	if w := fx.do(t, "POST", "/login", url.Values{"token": {testToken}}.Encode(), other); w.Code != http.StatusTooManyRequests {
		t.Errorf("login after 2 failures: %d, want 429", w.Code)
	}
}

// The limiter's memory is bounded under a flood of addresses.
func TestAuthLimiterBounded(t *testing.T) {
	now := time.Now()
	l := newAuthLimiter(1, time.Minute, func() time.Time { return now })
	for i := 0; i < maxLimited+500; i++ {
		l.fail("10.0." + string(rune('a'+i%26)) + "." + time.Duration(i).String())
	}
	if n := len(l.clients); n > maxLimited {
		t.Errorf("limiter remembers %d clients, want at most %d", n, maxLimited)
	}
}
