// Package order is the order service: checkout in one PostgreSQL transaction that creates the
// order and decrements stock, refusing when stock is short; and the order history.
package order

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/cart"
	"github.com/ares-sre/ares/shop/internal/service"
	"github.com/ares-sre/ares/shop/internal/store"
)

// MaxLines is the most distinct products in one order.
const MaxLines = 50

// Service is the order service.
type Service struct {
	DB    *pgxpool.Pool
	Redis *redis.Client // to invalidate the product cache after stock changed
	Keys  store.Keys
	Carts *api.Client // the cart service
	Log   *slog.Logger
}

// Routes adds the service's routes to mux. Every route needs X-User-ID (set by the gateway).
//
//	POST /api/orders            {items: [{product_id, quantity}]} → 201 Order
//	POST /api/orders/checkout   the user's cart → 201 Order, and the cart is emptied
//	GET  /api/orders            → 200 []Order, newest first
//	GET  /api/orders/{id}       → 200 Order
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/orders", service.Handle(s.Log, s.create))
	mux.HandleFunc("POST /api/orders/checkout", service.Handle(s.Log, s.checkout))
	mux.HandleFunc("GET /api/orders", service.Handle(s.Log, s.list))
	mux.HandleFunc("GET /api/orders/{id}", service.Handle(s.Log, s.get))
}

// Ready reports whether PostgreSQL answers.
func (s *Service) Ready(ctx context.Context) error { return s.DB.Ping(ctx) }

func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	var body struct {
		Items []api.Item `json:"items"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	o, err := s.Place(r.Context(), uid, body.Items)
	if err != nil {
		return err
	}
	s.placed(r, o)
	api.WriteJSON(w, http.StatusCreated, o)
	return nil
}

func (s *Service) checkout(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	reqID := r.Header.Get(api.HeaderRequestID)
	var c api.Cart
	if err := s.Carts.Do(r.Context(), api.Call{Method: http.MethodGet, Path: "/api/cart", UserID: uid, RequestID: reqID}, &c); err != nil {
		return fmt.Errorf("order: read cart: %w", err)
	}
	if len(c.Items) == 0 {
		return api.Errorf(http.StatusBadRequest, "empty_cart", "the cart is empty")
	}
	o, err := s.Place(r.Context(), uid, c.Items)
	if err != nil {
		return err
	}
	s.placed(r, o)
	// The order stands even if emptying the cart fails; the user sees a stale cart.
	if err := s.Carts.Do(r.Context(), api.Call{Method: http.MethodDelete, Path: "/api/cart", UserID: uid, RequestID: reqID}, nil); err != nil {
		s.Log.Error("cart not emptied after checkout", "order_id", o.ID, "err", err, "request_id", reqID)
	}
	api.WriteJSON(w, http.StatusCreated, o)
	return nil
}

func (s *Service) placed(r *http.Request, o api.Order) {
	reqID := r.Header.Get(api.HeaderRequestID)
	s.Log.Info("order placed", "order_id", o.ID, "user_id", o.UserID, "total_cents", o.TotalCents, "request_id", reqID)
	ids := make([]int64, len(o.Items))
	for i, it := range o.Items {
		ids[i] = it.ProductID
	}
	if err := s.Keys.InvalidateProducts(r.Context(), s.Redis, ids...); err != nil {
		s.Log.Error("cache invalidation failed", "err", err, "request_id", reqID)
	}
}

// normalize validates items and merges repeated products, sorted by product id so that
// concurrent orders lock rows in one order and cannot deadlock.
func normalize(items []api.Item) ([]api.Item, error) {
	if len(items) == 0 {
		return nil, api.Errorf(http.StatusBadRequest, "missing_field", "items must not be empty")
	}
	sum := map[int64]int64{}
	for _, it := range items {
		if it.ProductID <= 0 {
			return nil, api.Errorf(http.StatusBadRequest, "invalid_product", "product_id must be positive (got %d)", it.ProductID)
		}
		if it.Quantity < 1 || it.Quantity > cart.MaxQuantity {
			return nil, api.Errorf(http.StatusBadRequest, "invalid_quantity", "quantity must be in 1..%d (got %d)", cart.MaxQuantity, it.Quantity)
		}
		sum[it.ProductID] += it.Quantity
	}
	if len(sum) > MaxLines {
		return nil, api.Errorf(http.StatusBadRequest, "too_many_items", "at most %d products per order", MaxLines)
	}
	out := make([]api.Item, 0, len(sum))
	for id, q := range sum {
		out = append(out, api.Item{ProductID: id, Quantity: q})
	}
	slices.SortFunc(out, func(a, b api.Item) int { return cmp.Compare(a.ProductID, b.ProductID) })
	return out, nil
}

// Place creates an order for userID in one transaction: each line's stock is decremented by
// a conditional UPDATE (row lock, "stock >= quantity"), so of two concurrent orders for the
// last item exactly one succeeds; the other gets a 409 and nothing changes.
func (s *Service) Place(ctx context.Context, userID int64, items []api.Item) (api.Order, error) {
	items, err := normalize(items)
	if err != nil {
		return api.Order{}, err
	}
	o := api.Order{UserID: userID, Status: "placed"}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		for _, it := range items {
			line := api.OrderItem{ProductID: it.ProductID, Quantity: it.Quantity}
			err := tx.QueryRow(ctx, `UPDATE products SET stock = stock - $2, updated_at = now()
				WHERE id = $1 AND stock >= $2 RETURNING name, price_cents`, it.ProductID, it.Quantity).
				Scan(&line.Name, &line.PriceCents)
			if errors.Is(err, pgx.ErrNoRows) {
				return refusal(ctx, tx, it)
			}
			if err != nil {
				return fmt.Errorf("order: decrement stock of %d: %w", it.ProductID, err)
			}
			o.Items = append(o.Items, line)
			o.TotalCents += line.PriceCents * line.Quantity
		}
		if err := tx.QueryRow(ctx, `INSERT INTO orders (user_id, total_cents, status) VALUES ($1, $2, $3)
			RETURNING id, created_at`, userID, o.TotalCents, o.Status).Scan(&o.ID, &o.CreatedAt); err != nil {
			return fmt.Errorf("order: insert: %w", err)
		}
		for _, l := range o.Items {
			if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, product_id, name, quantity, price_cents)
				VALUES ($1, $2, $3, $4, $5)`, o.ID, l.ProductID, l.Name, l.Quantity, l.PriceCents); err != nil {
				return fmt.Errorf("order: insert item: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return api.Order{}, err
	}
	return o, nil
}

// refusal explains why the conditional UPDATE matched no row: no such product, or too little
// stock.
func refusal(ctx context.Context, tx pgx.Tx, it api.Item) error {
	var stock int64
	err := tx.QueryRow(ctx, `SELECT stock FROM products WHERE id = $1`, it.ProductID).Scan(&stock)
	if errors.Is(err, pgx.ErrNoRows) {
		return api.Errorf(http.StatusNotFound, "unknown_product", "no product %d", it.ProductID)
	}
	if err != nil {
		return fmt.Errorf("order: read stock of %d: %w", it.ProductID, err)
	}
	return api.Errorf(http.StatusConflict, "out_of_stock", "product %d: %d in stock, %d wanted", it.ProductID, stock, it.Quantity)
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	orders, err := s.load(r.Context(), `WHERE o.user_id = $1`, uid)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, orders)
	return nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	uid, err := api.UserID(r)
	if err != nil {
		return err
	}
	id, err := api.PathID(r, "id")
	if err != nil {
		return err
	}
	orders, err := s.load(r.Context(), `WHERE o.user_id = $1 AND o.id = $2`, uid, id)
	if err != nil {
		return err
	}
	if len(orders) == 0 {
		return api.Errorf(http.StatusNotFound, "unknown_order", "no order %d", id)
	}
	api.WriteJSON(w, http.StatusOK, orders[0])
	return nil
}

// load returns the orders matching where (over orders o), newest first, with their items.
func (s *Service) load(ctx context.Context, where string, args ...any) ([]api.Order, error) {
	rows, err := s.DB.Query(ctx, `SELECT o.id, o.user_id, o.total_cents, o.status, o.created_at,
			i.product_id, i.name, i.quantity, i.price_cents
		FROM orders o JOIN order_items i ON i.order_id = o.id `+where+`
		ORDER BY o.id DESC, i.product_id LIMIT 1000`, args...)
	if err != nil {
		return nil, fmt.Errorf("order: list: %w", err)
	}
	defer rows.Close()
	orders := []api.Order{}
	for rows.Next() {
		var o api.Order
		var it api.OrderItem
		var at time.Time
		if err := rows.Scan(&o.ID, &o.UserID, &o.TotalCents, &o.Status, &at, &it.ProductID, &it.Name, &it.Quantity, &it.PriceCents); err != nil {
			return nil, fmt.Errorf("order: list: %w", err)
		}
		if n := len(orders); n == 0 || orders[n-1].ID != o.ID {
			o.CreatedAt = at
			orders = append(orders, o)
		}
		last := &orders[len(orders)-1]
		last.Items = append(last.Items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("order: list: %w", err)
	}
	return orders, nil
}
