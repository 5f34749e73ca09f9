package dashboard

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults of the failed-authentication limit (Options.AuthFailures, Options.AuthFailEvery):
// a client may fail 10 times in a row, then once every 6 s.
const (
	DefaultAuthFailures  = 10
	DefaultAuthFailEvery = 6 * time.Second
)

// maxLimited bounds the clients the limiter remembers; past it, those whose bucket has
// refilled are forgotten first, then the whole table (a flood of addresses resets it rather
// than growing memory without bound).
const maxLimited = 10000

// authLimiter rate-limits failed authentication per client IP with a token bucket: each
// failure takes a token, tokens come back at one per every, up to burst. A client whose
// bucket is empty is answered 429 with Retry-After before its credentials are looked at, so
// guessing cannot go faster than the refill, whatever the guesses are. Successful requests
// take nothing, and other clients are not affected.
type authLimiter struct {
	burst float64
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newAuthLimiter(burst int, every time.Duration, now func() time.Time) *authLimiter {
	if burst <= 0 {
		burst = DefaultAuthFailures
	}
	if every <= 0 {
		every = DefaultAuthFailEvery
	}
	return &authLimiter{burst: float64(burst), every: every, now: now, clients: map[string]*bucket{}}
}

// refill brings b's tokens up to now; l.mu is held.
func (l *authLimiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+float64(d)/float64(l.every))
		b.at = now
	}
}

// retryAfter returns how long the client must wait before it may try again; 0: it may.
func (l *authLimiter) retryAfter(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[client]
	if b == nil {
		return 0
	}
	now := l.now()
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.every))
}

// fail takes a token from the client's bucket.
func (l *authLimiter) fail(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= maxLimited {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.clients[client] = b
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// prune forgets the clients whose bucket is full again, or everyone; l.mu is held.
func (l *authLimiter) prune(now time.Time) {
	for k, b := range l.clients {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.clients, k)
		}
	}
	if len(l.clients) >= maxLimited {
		clear(l.clients)
	}
}

// clientIP is the address the limit applies to: the peer's IP (behind a reverse proxy, the
// proxy's: forwarded headers are not trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limited answers 429 when the client has failed authentication too often; it reports
// whether it did.
func (s *Server) limited(w http.ResponseWriter, r *http.Request, op string) bool {
	d := s.authLimit.retryAfter(clientIP(r))
	if d <= 0 {
		return false
	}
	secs := int(math.Ceil(d.Seconds()))
	s.m.calls.WithLabelValues(op, "rate_limited").Inc()
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, http.StatusTooManyRequests, "too many failed authentication attempts from "+clientIP(r)+": retry after "+strconv.Itoa(secs)+" s")
	return true
}
