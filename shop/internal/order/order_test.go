package order_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/testenv"
)

func stock(t *testing.T, s *testenv.Shop, id int64) int64 {
	t.Helper()
	var n int64
	if err := s.DB.QueryRow(context.Background(), `SELECT stock FROM products WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func count(t *testing.T, s *testenv.Shop, table string) int {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func as(s api.Session) []string { return []string{api.HeaderUserID, strconv.FormatInt(s.User.ID, 10)} }

// Two users race for the last item, many times: exactly one order wins each round.
func TestConcurrentCheckoutOfTheLastItem(t *testing.T) {
	s := testenv.Start(t)
	alice, bob := testenv.User(t, s.User), testenv.User(t, s.User)
	const rounds = 10
	for round := range rounds {
		var pid int64
		if err := s.DB.QueryRow(context.Background(), `INSERT INTO products (sku, name, price_cents, stock)
			VALUES ($1, 'Last one', 500, 1) RETURNING id`, "LAST-"+strconv.Itoa(round)).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		body := `{"items":[{"product_id":` + strconv.FormatInt(pid, 10) + `,"quantity":1}]}`
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i, u := range []api.Session{alice, bob} {
			wg.Go(func() {
				codes[i], _, _ = testenv.Call(t, "POST", s.Order+"/api/orders", body, as(u)...)
			})
		}
		wg.Wait()
		won := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				won++
			case http.StatusConflict:
			default:
				t.Fatalf("round %d: status %d", round, c)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d checkouts succeeded (%v), want exactly 1", round, won, codes)
		}
		if n := stock(t, s, pid); n != 0 {
			t.Fatalf("round %d: stock %d", round, n)
		}
	}
	if n := count(t, s, "orders"); n != rounds {
		t.Errorf("%d orders, want %d", n, rounds)
	}
}

func TestCheckoutFromCart(t *testing.T) {
	s := testenv.Start(t)
	u := testenv.User(t, s.User)
	before1, before4 := stock(t, s, 1), stock(t, s, 4)
	testenv.Call(t, "GET", s.Product+"/api/products/1", "") // cache it
	for _, body := range []string{`{"product_id":1,"quantity":2}`, `{"product_id":4,"quantity":3}`} {
		if code, _, data := testenv.Call(t, "POST", s.Cart+"/api/cart/items", body, as(u)...); code != http.StatusOK {
			t.Fatalf("add: %d %s", code, data)
		}
	}
	code, _, data := testenv.Call(t, "POST", s.Order+"/api/orders/checkout", "", as(u)...)
	if code != http.StatusCreated {
		t.Fatalf("checkout: %d %s", code, data)
	}
	var o api.Order
	testenv.Decode(t, data, &o)
	if len(o.Items) != 2 || o.TotalCents != 2*12900+3*4900 {
		t.Errorf("order %+v", o)
	}
	if stock(t, s, 1) != before1-2 || stock(t, s, 4) != before4-3 {
		t.Errorf("stock not decremented")
	}
	_, _, data = testenv.Call(t, "GET", s.Cart+"/api/cart", "", as(u)...)
	var c api.Cart
	testenv.Decode(t, data, &c)
	if len(c.Items) != 0 {
		t.Errorf("cart after checkout: %v", c.Items)
	}
	var p api.Product
	_, h, data := testenv.Call(t, "GET", s.Product+"/api/products/1", "")
	testenv.Decode(t, data, &p)
	if h.Get("X-Cache") != "miss" || p.Stock != before1-2 {
		t.Errorf("product cache not invalidated: %s stock %d", h.Get("X-Cache"), p.Stock)
	}

	_, _, data = testenv.Call(t, "GET", s.Order+"/api/orders", "", as(u)...)
	var hist []api.Order
	testenv.Decode(t, data, &hist)
	if len(hist) != 1 || hist[0].ID != o.ID || len(hist[0].Items) != 2 {
		t.Errorf("history %+v", hist)
	}
	if code, _, _ := testenv.Call(t, "GET", s.Order+"/api/orders/"+strconv.FormatInt(o.ID, 10), "", as(u)...); code != http.StatusOK {
		t.Errorf("get own order: %d", code)
	}
	other := testenv.User(t, s.User)
	if code, _, _ := testenv.Call(t, "GET", s.Order+"/api/orders/"+strconv.FormatInt(o.ID, 10), "", as(other)...); code != http.StatusNotFound {
		t.Errorf("another user's order: %d, want 404", code)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	s := testenv.Start(t)
	u := testenv.User(t, s.User)
	if _, err := s.DB.Exec(context.Background(), `UPDATE products SET stock = 2 WHERE id = 12`); err != nil {
		t.Fatal(err)
	}
	stock1 := stock(t, s, 1)
	for _, tc := range []struct {
		name, path, body, code string
		status                 int
	}{
		{"malformed JSON", "/api/orders", `{"items":[`, "invalid_json", 400},
		{"no items", "/api/orders", `{"items":[]}`, "missing_field", 400},
		{"missing items", "/api/orders", `{}`, "missing_field", 400},
		{"negative quantity", "/api/orders", `{"items":[{"product_id":1,"quantity":-1}]}`, "invalid_quantity", 400},
		{"zero quantity", "/api/orders", `{"items":[{"product_id":1,"quantity":0}]}`, "invalid_quantity", 400},
		{"bad product id", "/api/orders", `{"items":[{"product_id":0,"quantity":1}]}`, "invalid_product", 400},
		// The first line's stock is decremented before the second line fails: the whole
		// transaction must roll back.
		{"unknown product after a good one", "/api/orders", `{"items":[{"product_id":1,"quantity":1},{"product_id":999999,"quantity":1}]}`, "unknown_product", 404},
		{"out of stock after a good one", "/api/orders", `{"items":[{"product_id":1,"quantity":1},{"product_id":12,"quantity":3}]}`, "out_of_stock", 409},
		{"empty cart", "/api/orders/checkout", "", "empty_cart", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, data := testenv.Call(t, "POST", s.Order+tc.path, tc.body, as(u)...)
			if code != tc.status {
				t.Errorf("status %d, want %d (%s)", code, tc.status, data)
			}
			testenv.CheckError(t, data, tc.code)
		})
	}
	if code, _, data := testenv.Call(t, "POST", s.Order+"/api/orders", `{"items":[{"product_id":1,"quantity":1}]}`); code != http.StatusUnauthorized {
		t.Errorf("no user: %d %s", code, data)
	}
	if stock(t, s, 1) != stock1 || stock(t, s, 12) != 2 {
		t.Errorf("stock changed: %d→%d, %d→2", stock1, stock(t, s, 1), stock(t, s, 12))
	}
	if n := count(t, s, "orders"); n != 0 {
		t.Errorf("%d orders after bad input", n)
	}
}
