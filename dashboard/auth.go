package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Authentication (docs/api.md, "Authentication"):
//
//   - The API takes the token as "Authorization: Bearer <token>". Mutating endpoints always
//     need it; read endpoints need it with AuthRead.
//   - The pages take a session cookie that the login form sets after checking the token. The
//     cookie holds HMAC-SHA256(token, "ares-dashboard-session"), never the token, so it
//     stops working when the token changes. It is HttpOnly and SameSite=Strict (Secure under
//     TLS). Control forms also carry a CSRF field, HMAC-SHA256(token, "ares-dashboard-csrf").
//   - The API's mutating endpoints do not accept the cookie, so a page of another site cannot
//     make a logged-in browser call them.
const sessionCookie = "ares_session"

// equal compares two secrets in constant time (also when their lengths differ).
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// bearer reports whether the request carries the token as a bearer token.
func (s *Server) bearer(r *http.Request) bool {
	if s.opt.Token == "" {
		return false
	}
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	return ok && strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(tok), s.opt.Token)
}

// loggedIn reports whether the request carries a valid session cookie.
func (s *Server) loggedIn(r *http.Request) bool {
	if s.opt.Token == "" {
		return false
	}
	c, err := r.Cookie(sessionCookie)
	return err == nil && equal(c.Value, s.session)
}

// who names the caller in the audit log: the token's id, never the token.
func (s *Server) who() string { return "token:" + s.tokenID }

// read guards a read endpoint: with AuthRead it needs the bearer token or a session cookie.
func (s *Server) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opt.AuthRead && s.limited(w, r, "read") {
			return
		}
		if s.opt.AuthRead && !s.bearer(r) && !s.loggedIn(r) {
			s.authLimit.fail(clientIP(r))
			w.Header().Set("WWW-Authenticate", `Bearer realm="ares"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <ARES_API_TOKEN> (dashboard.auth: read)")
			return
		}
		h(w, r)
	}
}

// write guards a mutating endpoint: 403 without a configured token, 401 without the right
// bearer token.
func (s *Server) write(op string, h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opt.Token == "" {
			s.m.calls.WithLabelValues(op, "disabled").Inc()
			writeError(w, http.StatusForbidden, "mutating endpoints are disabled: start ARES with ARES_API_TOKEN set to enable them")
			return
		}
		if s.limited(w, r, op) {
			return
		}
		if !s.bearer(r) {
			s.authLimit.fail(clientIP(r))
			s.m.calls.WithLabelValues(op, "unauthorized").Inc()
			s.log.Warn("dashboard: unauthorized control request", "op", op, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="ares"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <ARES_API_TOKEN>")
			return
		}
		h(w, r)
	}
}

// page guards a page: with AuthRead it needs a session, else it redirects to the login form.
func (s *Server) page(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opt.AuthRead && !s.loggedIn(r) && !s.bearer(r) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r)
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	d := s.layout(r, "Log in", "")
	d.Flash = msg
	s.render(w, code, "login", struct {
		Layout
		Next     string
		Disabled bool
	}{d, localPath(r.FormValue("next")), s.opt.Token == ""})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.opt.Token == "" {
		s.renderLogin(w, r, http.StatusForbidden, "Controls are disabled: start ARES with ARES_API_TOKEN set.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if d := s.authLimit.retryAfter(clientIP(r)); d > 0 {
		s.m.calls.WithLabelValues("login", "rate_limited").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		s.renderLogin(w, r, http.StatusTooManyRequests, "Too many wrong tokens from your address: try again later.")
		return
	}
	if !equal(r.PostFormValue("token"), s.opt.Token) {
		s.authLimit.fail(clientIP(r))
		time.Sleep(s.loginDelay) // slows down guessing
		s.log.Warn("dashboard: failed login", "remote", r.RemoteAddr)
		s.renderLogin(w, r, http.StatusUnauthorized, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.session, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.opt.TLSCert != "", MaxAge: int((12 * time.Hour).Seconds())})
	s.log.Info("dashboard: login", "who", s.who(), "remote", r.RemoteAddr)
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.opt.TLSCert != "", MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// localPath returns p when it is a path on this site, else "/".
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}
