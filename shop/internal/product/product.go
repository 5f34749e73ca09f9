// Package product is the product service: the catalogue in PostgreSQL (seeded by the
// migrations) behind a read-through Redis cache that writes invalidate.
package product

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/service"
	"github.com/ares-sre/ares/shop/internal/store"
)

// CacheHeader tells whether an answer came from the cache ("hit") or PostgreSQL ("miss").
const CacheHeader = "X-Cache"

// Service is the product service.
type Service struct {
	DB       *pgxpool.Pool
	Redis    *redis.Client
	Keys     store.Keys
	CacheTTL time.Duration
	Log      *slog.Logger
}

// Routes adds the service's routes to mux. The gateway exposes only the GETs.
//
//	GET   /api/products        → 200 []Product
//	GET   /api/products/{id}   → 200 Product
//	POST  /api/products        Product → 201 Product
//	PATCH /api/products/{id}   {name?, description?, price_cents?, stock?, category?} → 200 Product
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/products", service.Handle(s.Log, s.list))
	mux.HandleFunc("GET /api/products/{id}", service.Handle(s.Log, s.get))
	mux.HandleFunc("POST /api/products", service.Handle(s.Log, s.create))
	mux.HandleFunc("PATCH /api/products/{id}", service.Handle(s.Log, s.update))
}

// Ready reports whether PostgreSQL and Redis answer.
func (s *Service) Ready(ctx context.Context) error {
	return errors.Join(s.DB.Ping(ctx), s.Redis.Ping(ctx).Err())
}

const columns = `id, sku, name, description, price_cents, stock, category`

func scan(row pgx.Row, p *api.Product) error {
	return row.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.PriceCents, &p.Stock, &p.Category)
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	return s.cached(w, r, s.Keys.Catalogue(), func(ctx context.Context) (any, error) {
		rows, err := s.DB.Query(ctx, `SELECT `+columns+` FROM products ORDER BY id`)
		if err != nil {
			return nil, fmt.Errorf("product: list: %w", err)
		}
		ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (api.Product, error) {
			var p api.Product
			return p, scan(row, &p)
		})
		if err != nil {
			return nil, fmt.Errorf("product: list: %w", err)
		}
		return ps, nil
	})
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	id, err := api.PathID(r, "id")
	if err != nil {
		return err
	}
	return s.cached(w, r, s.Keys.Product(id), func(ctx context.Context) (any, error) {
		var p api.Product
		err := scan(s.DB.QueryRow(ctx, `SELECT `+columns+` FROM products WHERE id = $1`, id), &p)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, api.Errorf(http.StatusNotFound, "unknown_product", "no product %d", id)
		}
		if err != nil {
			return nil, fmt.Errorf("product: get %d: %w", id, err)
		}
		return p, nil
	})
}

// cached answers from key when Redis has it, else from load, storing the result. A Redis
// failure is logged and the answer comes from PostgreSQL: the cache is never a dependency.
func (s *Service) cached(w http.ResponseWriter, r *http.Request, key string, load func(context.Context) (any, error)) error {
	ctx := r.Context()
	data, err := s.Redis.Get(ctx, key).Bytes()
	if err == nil {
		w.Header().Set(CacheHeader, "hit")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
		return nil
	}
	if !errors.Is(err, redis.Nil) {
		s.Log.Warn("cache read failed", "key", key, "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
	}
	v, err := load(ctx)
	if err != nil {
		return err
	}
	data, err = json.Marshal(v)
	if err != nil {
		return fmt.Errorf("product: encode: %w", err)
	}
	data = append(data, '\n')
	if err := s.Redis.Set(ctx, key, data, s.CacheTTL).Err(); err != nil {
		s.Log.Warn("cache write failed", "key", key, "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
	}
	w.Header().Set(CacheHeader, "miss")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
	return nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	var p api.Product
	if err := api.DecodeJSON(w, r, &p); err != nil {
		return err
	}
	p.SKU, p.Name = strings.TrimSpace(p.SKU), strings.TrimSpace(p.Name)
	switch {
	case p.SKU == "" || p.Name == "":
		return api.Errorf(http.StatusBadRequest, "missing_field", "sku and name are required")
	case p.PriceCents < 0 || p.Stock < 0:
		return api.Errorf(http.StatusBadRequest, "invalid_value", "price_cents and stock must be >= 0")
	}
	err := scan(s.DB.QueryRow(r.Context(), `INSERT INTO products (sku, name, description, price_cents, stock, category)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+columns, p.SKU, p.Name, p.Description, p.PriceCents, p.Stock, p.Category), &p)
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" {
		return api.Errorf(http.StatusConflict, "sku_taken", "a product with sku %q exists", p.SKU)
	}
	if err != nil {
		return fmt.Errorf("product: insert: %w", err)
	}
	s.invalidate(r, p.ID)
	api.WriteJSON(w, http.StatusCreated, p)
	return nil
}

type patch struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	PriceCents  *int64  `json:"price_cents"`
	Stock       *int64  `json:"stock"`
	Category    *string `json:"category"`
}

func (s *Service) update(w http.ResponseWriter, r *http.Request) error {
	id, err := api.PathID(r, "id")
	if err != nil {
		return err
	}
	var p patch
	if err := api.DecodeJSON(w, r, &p); err != nil {
		return err
	}
	if (p.PriceCents != nil && *p.PriceCents < 0) || (p.Stock != nil && *p.Stock < 0) {
		return api.Errorf(http.StatusBadRequest, "invalid_value", "price_cents and stock must be >= 0")
	}
	if p.Name != nil && strings.TrimSpace(*p.Name) == "" {
		return api.Errorf(http.StatusBadRequest, "invalid_value", "name must not be empty")
	}
	var out api.Product
	err = scan(s.DB.QueryRow(r.Context(), `UPDATE products SET
			name = COALESCE($2, name), description = COALESCE($3, description),
			price_cents = COALESCE($4, price_cents), stock = COALESCE($5, stock),
			category = COALESCE($6, category), updated_at = now()
		WHERE id = $1 RETURNING `+columns, id, p.Name, p.Description, p.PriceCents, p.Stock, p.Category), &out)
	if errors.Is(err, pgx.ErrNoRows) {
		return api.Errorf(http.StatusNotFound, "unknown_product", "no product %d", id)
	}
	if err != nil {
		return fmt.Errorf("product: update %d: %w", id, err)
	}
	s.invalidate(r, id)
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) invalidate(r *http.Request, id int64) {
	if err := s.Keys.InvalidateProducts(r.Context(), s.Redis, id); err != nil {
		s.Log.Error("cache invalidation failed", "err", err, "request_id", r.Header.Get(api.HeaderRequestID))
	}
}
