// Package gateway is the shop's single entry point: it proxies /api/* to the services by their
// Docker network alias (re-resolved, so added replicas get traffic), checks the session on
// protected routes, and serves the server-rendered web UI.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/service"
	"github.com/ares-sre/ares/shop/internal/user"
)

// SessionCookie holds the session token of a browser.
const SessionCookie = "shop_session"

// Upstreams are the services' host:port addresses (Docker network aliases).
type Upstreams struct {
	User, Product, Cart, Order string
}

// Gateway is the gateway service.
type Gateway struct {
	Log       *slog.Logger
	Transport http.RoundTripper // a *Balancer in production
	Up        Upstreams
	// SecureCookie marks the session cookie Secure (behind TLS termination).
	SecureCookie bool

	users, products, carts, orders *api.Client
	ui                             *ui
}

// Routes adds the API proxy and the UI to mux.
//
//	/api/users/...     → user (public)
//	/api/products...   → product (GET only)
//	/api/cart...       → cart (session required)
//	/api/orders...     → order (session required)
//	/, /login, /signup, /cart, /orders, /static/ ... the web UI
func (g *Gateway) Routes(mux *http.ServeMux) {
	hc := &http.Client{Transport: g.Transport}
	client := func(addr string) *api.Client { return &api.Client{Base: "http://" + addr, HTTP: hc} }
	g.users, g.products, g.carts, g.orders = client(g.Up.User), client(g.Up.Product), client(g.Up.Cart), client(g.Up.Order)

	users, products := g.proxy(g.Up.User), g.proxy(g.Up.Product)
	carts, orders := g.proxy(g.Up.Cart), g.proxy(g.Up.Order)
	mux.Handle("/api/users/", g.public(users))
	mux.Handle("GET /api/products", g.public(products))
	mux.Handle("GET /api/products/", g.public(products))
	mux.Handle("/api/cart", g.protected(carts))
	mux.Handle("/api/cart/", g.protected(carts))
	mux.Handle("/api/orders", g.protected(orders))
	mux.Handle("/api/orders/", g.protected(orders))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "not_found", "no route %s %s", r.Method, r.URL.Path))
	})
	g.ui = newUI(g)
	g.ui.routes(mux)
}

// Ready reports whether every upstream answers /healthz.
func (g *Gateway) Ready(ctx context.Context) error {
	var errs []error
	for name, c := range map[string]*api.Client{"user": g.users, "product": g.products, "cart": g.carts, "order": g.orders} {
		if err := c.Do(ctx, api.Call{Method: http.MethodGet, Path: "/healthz"}, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// proxy forwards to addr. The body is buffered (at most 1 MiB) so that the balancer can
// retry a request whose connection could not be made.
func (g *Gateway) proxy(addr string) http.Handler {
	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = addr
		},
		Transport: g.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.Log.Error("upstream failed", "upstream", addr, "path", r.URL.Path, "err", err,
				"request_id", r.Header.Get(api.HeaderRequestID))
			api.WriteError(w, api.Errorf(http.StatusBadGateway, "upstream_unavailable", "the %s service is unavailable", strings.Split(addr, ":")[0]))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			if err != nil {
				api.WriteError(w, api.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body over 1 MiB"))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(data))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
			r.ContentLength = int64(len(data))
		}
		rp.ServeHTTP(w, r)
	})
}

// public forwards without a user: a client-sent X-User-ID is dropped.
func (g *Gateway) public(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(api.HeaderUserID)
		if r.Header.Get("Authorization") == "" {
			if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
				r.Header.Set("Authorization", "Bearer "+c.Value)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// protected forwards as the session's user, or answers 401.
func (g *Gateway) protected(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(api.HeaderUserID)
		u, err := g.session(r)
		if err != nil {
			service.Handle(g.Log, func(http.ResponseWriter, *http.Request) error { return err })(w, r)
			return
		}
		r.Header.Set(api.HeaderUserID, strconv.FormatInt(u.ID, 10))
		next.ServeHTTP(w, r)
	})
}

var errNoSession = api.Errorf(http.StatusUnauthorized, "unauthenticated", "log in first")

// token is the session token of a request: the Bearer token, else the session cookie.
func token(r *http.Request) string {
	if t := user.BearerToken(r); t != "" {
		return t
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// session asks the user service whose session r carries.
func (g *Gateway) session(r *http.Request) (api.User, error) {
	t := token(r)
	if t == "" {
		return api.User{}, errNoSession
	}
	var u api.User
	err := g.users.Do(r.Context(), api.Call{Method: http.MethodGet, Path: "/api/users/session",
		Token: t, RequestID: r.Header.Get(api.HeaderRequestID)}, &u)
	var e *api.Error
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		return api.User{}, errNoSession
	}
	if err != nil {
		return api.User{}, fmt.Errorf("gateway: session: %w", err)
	}
	return u, nil
}
