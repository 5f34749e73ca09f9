package product_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/product"
	"github.com/ares-sre/ares/shop/internal/testenv"
)

func get(t *testing.T, url string, wantCache string) []byte {
	t.Helper()
	code, h, data := testenv.Call(t, "GET", url, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, data)
	}
	if got := h.Get(product.CacheHeader); got != wantCache {
		t.Errorf("GET %s: %s %q, want %q", url, product.CacheHeader, got, wantCache)
	}
	return data
}

func TestCatalogueIsSeededAndCached(t *testing.T) {
	s := testenv.Start(t)
	var ps []api.Product
	testenv.Decode(t, get(t, s.Product+"/api/products", "miss"), &ps)
	if len(ps) < 10 {
		t.Fatalf("seeded catalogue has %d products", len(ps))
	}
	get(t, s.Product+"/api/products", "hit")

	// A change behind the service's back is not seen while the cache holds the product:
	// the answer really comes from Redis.
	get(t, s.Product+"/api/products/1", "miss")
	if _, err := s.DB.Exec(context.Background(), `UPDATE products SET name = 'Renamed' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	var p api.Product
	testenv.Decode(t, get(t, s.Product+"/api/products/1", "hit"), &p)
	if p.Name == "Renamed" {
		t.Errorf("cached answer shows the database's change")
	}
}

func TestWritesInvalidateTheCache(t *testing.T) {
	s := testenv.Start(t)
	get(t, s.Product+"/api/products", "miss")
	get(t, s.Product+"/api/products/2", "miss")
	get(t, s.Product+"/api/products/2", "hit")

	code, _, data := testenv.Call(t, "PATCH", s.Product+"/api/products/2", `{"price_cents":4200,"stock":7}`)
	if code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, data)
	}
	var p api.Product
	testenv.Decode(t, get(t, s.Product+"/api/products/2", "miss"), &p)
	if p.PriceCents != 4200 || p.Stock != 7 {
		t.Errorf("after patch: %+v", p)
	}
	var ps []api.Product
	testenv.Decode(t, get(t, s.Product+"/api/products", "miss"), &ps)
	if ps[1].PriceCents != 4200 {
		t.Errorf("catalogue after patch shows %d", ps[1].PriceCents)
	}

	code, _, data = testenv.Call(t, "POST", s.Product+"/api/products",
		`{"sku":"NEW-1","name":"New thing","price_cents":100,"stock":3,"category":"Gear"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, data)
	}
	testenv.Decode(t, get(t, s.Product+"/api/products", "miss"), &ps)
	if ps[len(ps)-1].SKU != "NEW-1" {
		t.Errorf("new product missing from the catalogue")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	s := testenv.Start(t)
	var before []api.Product
	_, _, data := testenv.Call(t, "GET", s.Product+"/api/products", "")
	testenv.Decode(t, data, &before)
	for _, tc := range []struct {
		name, method, path, body, code string
		status                         int
	}{
		{"unknown product", "GET", "/api/products/999999", "", "unknown_product", 404},
		{"bad id", "GET", "/api/products/abc", "", "invalid_id", 400},
		{"negative id", "PATCH", "/api/products/-1", `{"stock":1}`, "invalid_id", 400},
		{"malformed patch", "PATCH", "/api/products/1", `{"stock":`, "invalid_json", 400},
		{"negative stock", "PATCH", "/api/products/1", `{"stock":-5}`, "invalid_value", 400},
		{"negative price", "PATCH", "/api/products/1", `{"price_cents":-1}`, "invalid_value", 400},
		{"wrong type", "PATCH", "/api/products/1", `{"stock":"many"}`, "invalid_json", 400},
		{"patch unknown", "PATCH", "/api/products/999999", `{"stock":1}`, "unknown_product", 404},
		{"create missing name", "POST", "/api/products", `{"sku":"X"}`, "missing_field", 400},
		{"create negative stock", "POST", "/api/products", `{"sku":"X","name":"X","stock":-1}`, "invalid_value", 400},
		{"create duplicate sku", "POST", "/api/products", `{"sku":"CAMP-MUG","name":"X"}`, "sku_taken", 409},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, data := testenv.Call(t, tc.method, s.Product+tc.path, tc.body)
			if code != tc.status {
				t.Errorf("status %d, want %d (%s)", code, tc.status, data)
			}
			testenv.CheckError(t, data, tc.code)
		})
	}
	rows, _ := s.DB.Query(context.Background(), `SELECT id, price_cents, stock FROM products ORDER BY id`)
	n := 0
	for rows.Next() {
		var id, price, stock int64
		if err := rows.Scan(&id, &price, &stock); err != nil {
			t.Fatal(err)
		}
		if n >= len(before) || before[n].ID != id || before[n].PriceCents != price || before[n].Stock != stock {
			t.Errorf("product %d changed or appeared: price %d stock %d", id, price, stock)
		}
		n++
	}
	if rows.Err() != nil || n != len(before) {
		t.Errorf("%d products after bad input, want %d (%v)", n, len(before), rows.Err())
	}
}
