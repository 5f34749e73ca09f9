package gateway

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ares-sre/ares/shop/internal/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var stylesheet []byte

// ui serves the server-rendered shop. It calls the services through the same clients as the
// API, as the session's user.
type ui struct {
	g     *Gateway
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"money": func(cents int64) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) },
	"hue":   func(id int64) int64 { return (id * 47) % 360 },
	"monogram": func(name string) string {
		var b strings.Builder
		for _, w := range strings.Fields(name) {
			if b.Len() < 2 && w != "" {
				b.WriteString(strings.ToUpper(w[:1]))
			}
		}
		return b.String()
	},
}

func newUI(g *Gateway) *ui {
	u := &ui{g: g, pages: map[string]*template.Template{}}
	for _, name := range []string{"home", "auth", "cart", "orders", "error"} {
		u.pages[name] = template.Must(template.New(name).Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return u
}

func (u *ui) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		http.ServeContent(w, r, "style.css", time.Time{}, bytes.NewReader(stylesheet))
	})
	mux.HandleFunc("GET /{$}", u.home)
	mux.HandleFunc("GET /signup", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusOK, "auth", "Sign up", page{Data: "signup"})
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusOK, "auth", "Log in", page{Data: "login"})
	})
	mux.HandleFunc("POST /signup", u.auth("/api/users/signup", "signup"))
	mux.HandleFunc("POST /login", u.auth("/api/users/login", "login"))
	mux.HandleFunc("POST /logout", u.logout)
	mux.HandleFunc("GET /cart", u.loggedIn(u.cart))
	mux.HandleFunc("POST /cart/add", u.loggedIn(u.add))
	mux.HandleFunc("POST /cart/update", u.loggedIn(u.update))
	mux.HandleFunc("POST /checkout", u.loggedIn(u.checkout))
	mux.HandleFunc("GET /orders", u.loggedIn(u.orders))
}

// page is what every template gets.
type page struct {
	Title     string
	User      *api.User
	CartCount int64
	Flash     string
	Error     string
	Data      any
}

// render fills in the header (user, cart count) and writes the page.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name, title string, p page) {
	p.Title = title
	if p.User == nil {
		if usr, err := u.g.session(r); err == nil {
			p.User = &usr
		}
	}
	if p.User != nil {
		var c api.Cart
		if err := u.call(r, p.User.ID, http.MethodGet, u.g.carts, "/api/cart", nil, &c); err == nil {
			for _, it := range c.Items {
				p.CartCount += it.Quantity
			}
		}
	}
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		u.g.Log.Error("template failed", "page", name, "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders err: a 4xx keeps its message, anything else is logged and shown as a 502.
func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *api.Error
	if errors.As(err, &e) && e.Status < 500 {
		u.render(w, r, e.Status, "error", "Error", page{Data: e.Msg})
		return
	}
	u.g.Log.Error("page failed", "path", r.URL.Path, "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
	u.render(w, r, http.StatusBadGateway, "error", "Error", page{Data: "The shop is having trouble right now. Please try again in a moment."})
}

func (u *ui) call(r *http.Request, userID int64, method string, c *api.Client, path string, body, out any) error {
	return c.Do(r.Context(), api.Call{Method: method, Path: path, UserID: userID,
		RequestID: r.Header.Get(api.HeaderRequestID), Body: body}, out)
}

func (u *ui) home(w http.ResponseWriter, r *http.Request) {
	var ps []api.Product
	if err := u.call(r, 0, http.MethodGet, u.g.products, "/api/products", nil, &ps); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "home", "Shop", page{Data: ps, Flash: flash(r)})
}

// flash is the message a redirect asked for.
func flash(r *http.Request) string {
	switch r.URL.Query().Get("m") {
	case "welcome":
		return "Welcome! Your account is ready."
	case "bye":
		return "You are logged out."
	case "added":
		return "Added to your cart."
	}
	return ""
}

func (u *ui) auth(path, tmpl string) http.HandlerFunc {
	title := map[string]string{"signup": "Sign up", "login": "Log in"}[tmpl]
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			u.render(w, r, http.StatusBadRequest, "auth", title, page{Data: tmpl, Error: "The form could not be read."})
			return
		}
		body := map[string]string{"email": r.PostForm.Get("email"), "password": r.PostForm.Get("password")}
		if tmpl == "signup" {
			body["name"] = r.PostForm.Get("name")
		}
		var s api.Session
		err := u.call(r, 0, http.MethodPost, u.g.users, path, body, &s)
		var e *api.Error
		if errors.As(err, &e) && e.Status < 500 {
			u.render(w, r, e.Status, "auth", title, page{Data: tmpl, Error: e.Msg})
			return
		}
		if err != nil {
			u.fail(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: s.Token, Path: "/", HttpOnly: true,
			Secure: u.g.SecureCookie, SameSite: http.SameSiteLaxMode, Expires: s.ExpiresAt})
		next := "/?m=welcome"
		if tmpl == "login" {
			next = "/"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	if t := token(r); t != "" {
		err := u.g.users.Do(r.Context(), api.Call{Method: http.MethodPost, Path: "/api/users/logout", Token: t,
			RequestID: r.Header.Get(api.HeaderRequestID)}, nil)
		if err != nil {
			u.g.Log.Warn("logout failed", "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, "/?m=bye", http.StatusSeeOther)
}

// loggedIn runs h with the session's user, or redirects to the login page.
func (u *ui) loggedIn(h func(w http.ResponseWriter, r *http.Request, usr api.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		usr, err := u.g.session(r)
		if errors.Is(err, errNoSession) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
			return
		}
		if err != nil {
			u.fail(w, r, err)
			return
		}
		h(w, r, usr)
	}
}

func formItem(r *http.Request) (api.Item, error) {
	if err := r.ParseForm(); err != nil {
		return api.Item{}, api.Errorf(http.StatusBadRequest, "invalid_form", "the form could not be read")
	}
	id, err1 := strconv.ParseInt(r.PostForm.Get("product_id"), 10, 64)
	q, err2 := strconv.ParseInt(r.PostForm.Get("quantity"), 10, 64)
	if err1 != nil || err2 != nil {
		return api.Item{}, api.Errorf(http.StatusBadRequest, "invalid_form", "product and quantity must be numbers")
	}
	return api.Item{ProductID: id, Quantity: q}, nil
}

func (u *ui) add(w http.ResponseWriter, r *http.Request, usr api.User) {
	it, err := formItem(r)
	if err == nil {
		err = u.call(r, usr.ID, http.MethodPost, u.g.carts, "/api/cart/items", it, nil)
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}

func (u *ui) update(w http.ResponseWriter, r *http.Request, usr api.User) {
	it, err := formItem(r)
	if err == nil {
		err = u.call(r, usr.ID, http.MethodPut, u.g.carts, "/api/cart/items/"+strconv.FormatInt(it.ProductID, 10),
			map[string]int64{"quantity": it.Quantity}, nil)
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}

type cartLine struct {
	ProductID  int64
	Name       string
	PriceCents int64
	Quantity   int64
	Subtotal   int64
}

type cartView struct {
	Lines []cartLine
	Total int64
}

func (u *ui) cartView(r *http.Request, usr api.User) (cartView, error) {
	var c api.Cart
	if err := u.call(r, usr.ID, http.MethodGet, u.g.carts, "/api/cart", nil, &c); err != nil {
		return cartView{}, err
	}
	var ps []api.Product
	if err := u.call(r, 0, http.MethodGet, u.g.products, "/api/products", nil, &ps); err != nil {
		return cartView{}, err
	}
	byID := map[int64]api.Product{}
	for _, p := range ps {
		byID[p.ID] = p
	}
	var v cartView
	for _, it := range c.Items {
		p, ok := byID[it.ProductID]
		if !ok {
			continue
		}
		l := cartLine{ProductID: p.ID, Name: p.Name, PriceCents: p.PriceCents, Quantity: it.Quantity, Subtotal: p.PriceCents * it.Quantity}
		v.Lines = append(v.Lines, l)
		v.Total += l.Subtotal
	}
	return v, nil
}

func (u *ui) cart(w http.ResponseWriter, r *http.Request, usr api.User) {
	v, err := u.cartView(r, usr)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "cart", "Cart", page{User: &usr, Data: v})
}

func (u *ui) checkout(w http.ResponseWriter, r *http.Request, usr api.User) {
	var o api.Order
	err := u.call(r, usr.ID, http.MethodPost, u.g.orders, "/api/orders/checkout", nil, &o)
	var e *api.Error
	if errors.As(err, &e) && e.Status < 500 {
		v, verr := u.cartView(r, usr)
		if verr != nil {
			u.fail(w, r, verr)
			return
		}
		u.render(w, r, e.Status, "cart", "Cart", page{User: &usr, Data: v, Error: "Your order could not be placed: " + e.Msg})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/orders?placed="+strconv.FormatInt(o.ID, 10), http.StatusSeeOther)
}

func (u *ui) orders(w http.ResponseWriter, r *http.Request, usr api.User) {
	var os []api.Order
	if err := u.call(r, usr.ID, http.MethodGet, u.g.orders, "/api/orders", nil, &os); err != nil {
		u.fail(w, r, err)
		return
	}
	p := page{User: &usr, Data: os}
	if id := r.URL.Query().Get("placed"); id != "" {
		if _, err := strconv.ParseInt(id, 10, 64); err == nil {
			p.Flash = "Thank you! Order #" + id + " is placed."
		}
	}
	u.render(w, r, http.StatusOK, "orders", "Orders", p)
}
