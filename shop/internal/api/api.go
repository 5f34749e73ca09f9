// Package api holds the shop's wire types, the JSON error shape every service answers with, and
// a small client the services and the gateway use to call each other.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Headers the gateway sets on requests it forwards. Backends trust them: they are reachable
// only on the backend network. The gateway strips any copy a client sends.
const (
	HeaderUserID    = "X-User-ID"
	HeaderRequestID = "X-Request-ID"
)

// User is a shop account as the API shows it (never the password hash).
type User struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// Session is what sign-up and login return: the bearer token and its user.
type Session struct {
	Token     string    `json:"token"`
	User      User      `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Product is one catalogue entry. Prices are integer cents.
type Product struct {
	ID          int64  `json:"id"`
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	PriceCents  int64  `json:"price_cents"`
	Stock       int64  `json:"stock"`
	Category    string `json:"category"`
}

// Item is a product and a quantity, in a cart or an order request.
type Item struct {
	ProductID int64 `json:"product_id"`
	Quantity  int64 `json:"quantity"`
}

// Cart is a user's cart.
type Cart struct {
	Items []Item `json:"items"`
}

// OrderItem is one line of a placed order, with the price paid.
type OrderItem struct {
	ProductID  int64  `json:"product_id"`
	Name       string `json:"name"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// Order is a placed order.
type Order struct {
	ID         int64       `json:"id"`
	UserID     int64       `json:"user_id"`
	TotalCents int64       `json:"total_cents"`
	Status     string      `json:"status"`
	CreatedAt  time.Time   `json:"created_at"`
	Items      []OrderItem `json:"items"`
}

// ErrorBody is the JSON body of every 4xx and 5xx answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error is an error with the HTTP status and machine-readable code it maps to.
type Error struct {
	Status int
	Code   string // e.g. "invalid_json", "out_of_stock"
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Msg) }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// WriteError writes err as an ErrorBody: an *Error keeps its status and code, anything else
// is a 500 whose text is not shown to the client.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error"}
	}
	WriteJSON(w, e.Status, ErrorBody{Error: e.Msg, Code: e.Code})
}

// maxBody bounds every JSON request body.
const maxBody = 1 << 20

// DecodeJSON reads one JSON object from r's body into v, refusing unknown fields, trailing
// data and bodies over 1 MiB, with a 400 *Error.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON body: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON body: trailing data")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON body: trailing data")
	}
	return nil
}

// UserID returns the user id the gateway put in the request, or a 401 *Error.
func UserID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.Header.Get(HeaderUserID), 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(http.StatusUnauthorized, "unauthenticated", "no session")
	}
	return id, nil
}

// PathID parses the path value name as a positive id, or returns a 400 *Error.
func PathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(http.StatusBadRequest, "invalid_id", "%s must be a positive integer (got %q)", name, r.PathValue(name))
	}
	return id, nil
}
