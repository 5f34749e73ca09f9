package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Balancer is an http.RoundTripper that spreads requests over every address a host name
// resolves to. Docker's embedded DNS answers a network alias with one address per replica, so
// re-resolving (answers are kept for TTL) sends traffic to added replicas and away from
// removed ones. A request whose connection cannot be made is retried on the next address
// (nothing was sent); an idempotent request is retried on any transport error.
type Balancer struct {
	Base    http.RoundTripper                                        // per-address transport
	Resolve func(ctx context.Context, host string) ([]string, error) // net.DefaultResolver.LookupHost
	TTL     time.Duration

	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	addrs    []string
	resolved time.Time
	next     uint64
	down     map[string]time.Time // address → until when it is tried last
}

// NewBalancer returns a Balancer over a transport with a short dial timeout.
func NewBalancer(ttl time.Duration) *Balancer {
	t := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &Balancer{Base: t, Resolve: net.DefaultResolver.LookupHost, TTL: ttl}
}

// maxAttempts bounds the retries of one request.
const maxAttempts = 3

// downFor is how long an address that refused a connection is tried last.
const downFor = 5 * time.Second

// RoundTrip sends req to one of the addresses of its host.
func (b *Balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	host, port, err := net.SplitHostPort(req.URL.Host)
	if err != nil {
		host, port = req.URL.Host, "80"
	}
	addrs, err := b.pick(req.Context(), host)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for i, a := range addrs[:min(len(addrs), maxAttempts)] {
		r := req.Clone(req.Context())
		r.URL.Host = net.JoinHostPort(a, port)
		r.Host = req.Host
		if i > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, lastErr
			}
			if r.Body, err = req.GetBody(); err != nil {
				return nil, lastErr
			}
		}
		resp, err := b.Base.RoundTrip(r)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if req.Context().Err() != nil || !retryable(req, err) {
			return nil, err
		}
		b.markDown(host, a)
	}
	return nil, lastErr
}

// retryable: a failed dial sent nothing; an idempotent request may be sent again.
func retryable(req *http.Request, err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return req.Method == http.MethodGet || req.Method == http.MethodHead
}

// pick returns host's addresses, fresh within TTL, starting with the next in round-robin
// order and with addresses marked down at the end.
func (b *Balancer) pick(ctx context.Context, host string) ([]string, error) {
	if net.ParseIP(host) != nil {
		return []string{host}, nil
	}
	b.mu.Lock()
	if b.hosts == nil {
		b.hosts = map[string]*hostState{}
	}
	st := b.hosts[host]
	fresh := st != nil && time.Since(st.resolved) < b.TTL
	b.mu.Unlock()
	if !fresh {
		addrs, err := b.Resolve(ctx, host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("gateway: resolve %s: %w", host, errors.Join(err, errNoAddrs(len(addrs))))
		}
		slices.Sort(addrs)
		b.mu.Lock()
		if st = b.hosts[host]; st == nil {
			st = &hostState{down: map[string]time.Time{}}
			b.hosts[host] = st
		}
		if !slices.Equal(st.addrs, addrs) && len(st.addrs) > 0 {
			// A replica went away or came: drop idle connections to ones no longer there.
			if t, ok := b.Base.(interface{ CloseIdleConnections() }); ok {
				t.CloseIdleConnections()
			}
		}
		st.addrs, st.resolved = addrs, time.Now()
		b.mu.Unlock()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(st.addrs)
	start := int(st.next % uint64(n))
	st.next++
	now := time.Now()
	var up, down []string
	for i := range n {
		a := st.addrs[(start+i)%n]
		if until, ok := st.down[a]; ok && now.Before(until) {
			down = append(down, a)
			continue
		}
		delete(st.down, a)
		up = append(up, a)
	}
	return append(up, down...), nil
}

func (b *Balancer) markDown(host, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.hosts[host]; st != nil {
		st.down[addr] = time.Now().Add(downFor)
		st.resolved = time.Time{} // re-resolve on the next request
	}
}

func errNoAddrs(n int) error {
	if n == 0 {
		return errors.New("no addresses")
	}
	return nil
}
