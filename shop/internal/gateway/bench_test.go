package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ares-sre/ares/shop/internal/testenv"
)

// Bounded load on loopback: each attack runs at a fixed rate for a fixed time.
const (
	loadRate     = 200 // requests per second
	loadDuration = 3 * time.Second
)

func attack(b *testing.B, name string, targeter vegeta.Targeter) *vegeta.Metrics {
	b.Helper()
	atk := vegeta.NewAttacker(vegeta.Timeout(5*time.Second), vegeta.Workers(16), vegeta.MaxWorkers(64), vegeta.KeepAlive(true))
	var m vegeta.Metrics
	for res := range atk.Attack(targeter, vegeta.ConstantPacer{Freq: loadRate, Per: time.Second}, loadDuration, name) {
		m.Add(res)
	}
	m.Close()
	if m.Success < 0.99 {
		b.Errorf("%s: success %.3f (errors: %v, status codes %v)", name, m.Success, m.Errors, m.StatusCodes)
	}
	return &m
}

func report(b *testing.B, prefix string, m *vegeta.Metrics) {
	b.ReportMetric(m.Throughput, prefix+"-rps")
	b.ReportMetric(float64(m.Latencies.P99.Microseconds())/1000, prefix+"-p99-ms")
}

// BenchmarkShopLoad measures browse and checkout under a bounded constant load through the
// gateway, and browse against the product service directly: the gateway's overhead is the
// ratio of the two p99 latencies. Needs PostgreSQL and Redis (scripts/services.sh).
func BenchmarkShopLoad(b *testing.B) {
	s := testenv.Start(b)
	// Enough stock that checkouts never run out during the attack.
	if _, err := s.DB.Exec(context.Background(), `UPDATE products SET stock = 1000000000 WHERE id = 5`); err != nil {
		b.Fatal(err)
	}
	sess := testenv.User(b, s.Gateway)
	auth := http.Header{"Authorization": {"Bearer " + sess.Token}, "Content-Type": {"application/json"}}
	for range b.N {
		direct := attack(b, "browse-direct", vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: s.Product + "/api/products"}))
		viaGW := attack(b, "browse-gateway", vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: s.Gateway + "/api/products"}))
		// Checkout: add one item, then check out, alternately.
		checkout := attack(b, "checkout-gateway", vegeta.NewStaticTargeter(
			vegeta.Target{Method: "POST", URL: s.Gateway + "/api/cart/items", Body: []byte(`{"product_id":5,"quantity":1}`), Header: auth},
			vegeta.Target{Method: "POST", URL: s.Gateway + "/api/orders/checkout", Header: auth},
		))
		report(b, "browse-direct", direct)
		report(b, "browse-gateway", viaGW)
		report(b, "checkout", checkout)
		b.ReportMetric(float64(viaGW.Latencies.P99)/float64(direct.Latencies.P99), "gateway-p99-overhead-x")
	}
}
