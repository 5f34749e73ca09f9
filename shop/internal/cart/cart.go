// Package cart is the cart service: one Redis hash per user (product id → quantity). It asks
// the product service whether a product exists before adding it.
package cart

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/service"
	"github.com/ares-sre/ares/shop/internal/store"
)

// MaxQuantity is the most of one product a cart holds.
const MaxQuantity = 99

// TTL is how long an untouched cart lives.
const TTL = 30 * 24 * time.Hour

// Service is the cart service.
type Service struct {
	Redis    *redis.Client
	Keys     store.Keys
	Products *api.Client // the product service
	Log      *slog.Logger
}

// Routes adds the service's routes to mux. Every route needs X-User-ID (set by the gateway).
//
//	GET    /api/cart               → 200 Cart
//	POST   /api/cart/items         {product_id, quantity} → 200 Cart (adds)
//	PUT    /api/cart/items/{id}    {quantity} → 200 Cart (sets; 0 removes)
//	DELETE /api/cart/items/{id}    → 200 Cart
//	DELETE /api/cart               → 204
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/cart", service.Handle(s.Log, s.get))
	mux.HandleFunc("POST /api/cart/items", service.Handle(s.Log, s.add))
	mux.HandleFunc("PUT /api/cart/items/{id}", service.Handle(s.Log, s.set))
	mux.HandleFunc("DELETE /api/cart/items/{id}", service.Handle(s.Log, s.remove))
	mux.HandleFunc("DELETE /api/cart", service.Handle(s.Log, s.clear))
}

// Ready reports whether Redis answers.
func (s *Service) Ready(ctx context.Context) error { return s.Redis.Ping(ctx).Err() }

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	return s.writeCart(w, r, uid)
}

func (s *Service) writeCart(w http.ResponseWriter, r *http.Request, uid int64) error {
	m, err := s.Redis.HGetAll(r.Context(), s.Keys.Cart(uid)).Result()
	if err != nil {
		return fmt.Errorf("cart: read %d: %w", uid, err)
	}
	c := api.Cart{Items: []api.Item{}}
	for k, v := range m {
		id, err1 := strconv.ParseInt(k, 10, 64)
		q, err2 := strconv.ParseInt(v, 10, 64)
		if err1 != nil || err2 != nil || q <= 0 {
			continue
		}
		c.Items = append(c.Items, api.Item{ProductID: id, Quantity: q})
	}
	slices.SortFunc(c.Items, func(a, b api.Item) int { return cmp.Compare(a.ProductID, b.ProductID) })
	api.WriteJSON(w, http.StatusOK, c)
	return nil
}

// addScript adds ARGV[2] of product ARGV[1] unless the line would exceed ARGV[3]; it returns
// the new quantity, or -1 when refused.
var addScript = redis.NewScript(`
local q = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if q > tonumber(ARGV[3]) then
	redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))
	return -1
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return q`)

func (s *Service) add(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	var it api.Item
	if err := api.DecodeJSON(w, r, &it); err != nil {
		return err
	}
	if it.ProductID <= 0 {
		return api.Errorf(http.StatusBadRequest, "missing_field", "product_id is required and must be positive")
	}
	if it.Quantity < 1 || it.Quantity > MaxQuantity {
		return api.Errorf(http.StatusBadRequest, "invalid_quantity", "quantity must be in 1..%d (got %d)", MaxQuantity, it.Quantity)
	}
	if err := s.exists(r, it.ProductID); err != nil {
		return err
	}
	q, err := addScript.Run(r.Context(), s.Redis, []string{s.Keys.Cart(uid)},
		it.ProductID, it.Quantity, MaxQuantity, int(TTL.Seconds())).Int64()
	if err != nil {
		return fmt.Errorf("cart: add: %w", err)
	}
	if q < 0 {
		return api.Errorf(http.StatusConflict, "quantity_limit", "at most %d of one product per cart", MaxQuantity)
	}
	return s.writeCart(w, r, uid)
}

func (s *Service) set(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	pid, err := api.PathID(r, "id")
	if err != nil {
		return err
	}
	var body struct {
		Quantity *int64 `json:"quantity"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Quantity == nil {
		return api.Errorf(http.StatusBadRequest, "missing_field", "quantity is required")
	}
	if q := *body.Quantity; q < 0 || q > MaxQuantity {
		return api.Errorf(http.StatusBadRequest, "invalid_quantity", "quantity must be in 0..%d (got %d)", MaxQuantity, q)
	}
	key := s.Keys.Cart(uid)
	if *body.Quantity == 0 {
		if err := s.Redis.HDel(r.Context(), key, strconv.FormatInt(pid, 10)).Err(); err != nil {
			return fmt.Errorf("cart: remove: %w", err)
		}
		return s.writeCart(w, r, uid)
	}
	if err := s.exists(r, pid); err != nil {
		return err
	}
	_, err = s.Redis.TxPipelined(r.Context(), func(p redis.Pipeliner) error {
		p.HSet(r.Context(), key, strconv.FormatInt(pid, 10), *body.Quantity)
		p.Expire(r.Context(), key, TTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cart: set: %w", err)
	}
	return s.writeCart(w, r, uid)
}

func (s *Service) remove(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	pid, err := api.PathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.Redis.HDel(r.Context(), s.Keys.Cart(uid), strconv.FormatInt(pid, 10)).Err(); err != nil {
		return fmt.Errorf("cart: remove: %w", err)
	}
	return s.writeCart(w, r, uid)
}

func (s *Service) clear(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	if err := s.Redis.Del(r.Context(), s.Keys.Cart(uid)).Err(); err != nil {
		return fmt.Errorf("cart: clear: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// exists asks the product service for id: 404 becomes an unknown_product 404 of our own.
func (s *Service) exists(r *http.Request, id int64) error {
	err := s.Products.Do(r.Context(), api.Call{Method: http.MethodGet, Path: "/api/products/" + strconv.FormatInt(id, 10),
		RequestID: r.Header.Get(api.HeaderRequestID)}, nil)
	var e *api.Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return api.Errorf(http.StatusNotFound, "unknown_product", "no product %d", id)
	}
	if err != nil {
		return fmt.Errorf("cart: product %d: %w", id, err)
	}
	return nil
}
