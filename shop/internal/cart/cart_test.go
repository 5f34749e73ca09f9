package cart_test

import (
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/testenv"
)

func TestCartOperations(t *testing.T) {
	s := testenv.Start(t)
	as := func(uid int64) []string { return []string{api.HeaderUserID, strconv.FormatInt(uid, 10)} }
	cartOf := func(method, path, body string, uid int64) []api.Item {
		t.Helper()
		code, _, data := testenv.Call(t, method, s.Cart+path, body, as(uid)...)
		if code != http.StatusOK {
			t.Fatalf("%s %s %s: %d %s", method, path, body, code, data)
		}
		var c api.Cart
		testenv.Decode(t, data, &c)
		return c.Items
	}
	steps := []struct {
		method, path, body string
		want               []api.Item
	}{
		{"GET", "/api/cart", "", []api.Item{}},
		{"POST", "/api/cart/items", `{"product_id":3,"quantity":1}`, []api.Item{{ProductID: 3, Quantity: 1}}},
		{"POST", "/api/cart/items", `{"product_id":3,"quantity":2}`, []api.Item{{ProductID: 3, Quantity: 3}}},
		{"POST", "/api/cart/items", `{"product_id":1,"quantity":1}`, []api.Item{{ProductID: 1, Quantity: 1}, {ProductID: 3, Quantity: 3}}},
		{"PUT", "/api/cart/items/3", `{"quantity":5}`, []api.Item{{ProductID: 1, Quantity: 1}, {ProductID: 3, Quantity: 5}}},
		{"PUT", "/api/cart/items/1", `{"quantity":0}`, []api.Item{{ProductID: 3, Quantity: 5}}},
		{"POST", "/api/cart/items", `{"product_id":2,"quantity":1}`, []api.Item{{ProductID: 2, Quantity: 1}, {ProductID: 3, Quantity: 5}}},
		{"DELETE", "/api/cart/items/3", "", []api.Item{{ProductID: 2, Quantity: 1}}},
		{"GET", "/api/cart", "", []api.Item{{ProductID: 2, Quantity: 1}}},
	}
	for _, st := range steps {
		if got := cartOf(st.method, st.path, st.body, 7); !reflect.DeepEqual(got, st.want) {
			t.Fatalf("%s %s %s: cart %v, want %v", st.method, st.path, st.body, got, st.want)
		}
	}
	if got := cartOf("GET", "/api/cart", "", 8); len(got) != 0 {
		t.Errorf("another user's cart: %v", got)
	}
	if code, _, _ := testenv.Call(t, "DELETE", s.Cart+"/api/cart", "", as(7)...); code != http.StatusNoContent {
		t.Errorf("clear: %d", code)
	}
	if got := cartOf("GET", "/api/cart", "", 7); len(got) != 0 {
		t.Errorf("after clear: %v", got)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	s := testenv.Start(t)
	user := []string{api.HeaderUserID, "42"}
	if code, _, data := testenv.Call(t, "POST", s.Cart+"/api/cart/items", `{"product_id":1,"quantity":2}`, user...); code != http.StatusOK {
		t.Fatalf("add: %d %s", code, data)
	}
	for _, tc := range []struct {
		name, method, path, body, code string
		status                         int
		noUser                         bool
	}{
		{"malformed JSON", "POST", "/api/cart/items", `{"product_id":1,`, "invalid_json", 400, false},
		{"missing product", "POST", "/api/cart/items", `{"quantity":1}`, "missing_field", 400, false},
		{"missing quantity", "POST", "/api/cart/items", `{"product_id":1}`, "invalid_quantity", 400, false},
		{"negative quantity", "POST", "/api/cart/items", `{"product_id":1,"quantity":-3}`, "invalid_quantity", 400, false},
		{"huge quantity", "POST", "/api/cart/items", `{"product_id":1,"quantity":1000}`, "invalid_quantity", 400, false},
		{"over the line limit", "POST", "/api/cart/items", `{"product_id":1,"quantity":98}`, "quantity_limit", 409, false},
		{"unknown product", "POST", "/api/cart/items", `{"product_id":999999,"quantity":1}`, "unknown_product", 404, false},
		{"set negative", "PUT", "/api/cart/items/1", `{"quantity":-1}`, "invalid_quantity", 400, false},
		{"set missing", "PUT", "/api/cart/items/1", `{}`, "missing_field", 400, false},
		{"set unknown product", "PUT", "/api/cart/items/999999", `{"quantity":1}`, "unknown_product", 404, false},
		{"bad id", "DELETE", "/api/cart/items/x", "", "invalid_id", 400, false},
		{"no user", "GET", "/api/cart", "", "unauthenticated", 401, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if !tc.noUser {
				h = user
			}
			code, _, data := testenv.Call(t, tc.method, s.Cart+tc.path, tc.body, h...)
			if code != tc.status {
				t.Errorf("status %d, want %d (%s)", code, tc.status, data)
			}
			testenv.CheckError(t, data, tc.code)
		})
	}
	_, _, data := testenv.Call(t, "GET", s.Cart+"/api/cart", "", user...)
	var c api.Cart
	testenv.Decode(t, data, &c)
	if !reflect.DeepEqual(c.Items, []api.Item{{ProductID: 1, Quantity: 2}}) {
		t.Errorf("cart after bad input: %v", c.Items)
	}
}
