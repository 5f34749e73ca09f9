package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ares-sre/ares/internal/browsertest"
	"github.com/ares-sre/ares/shop/internal/testenv"
)

// A customer walks the web UI in headless Chromium: sign up, add a product, check out, see
// the order. The shop runs in-process against the real PostgreSQL and Redis.
func TestBrowserCheckout(t *testing.T) {
	s := testenv.Start(t)
	ctx := browsertest.Context(t, 1280, 900, 60*time.Second)

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("chromium: text of %s: %v", sel, err)
		}
		return v
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("chromium: %s: %v", what, err)
		}
	}
	step("sign up",
		chromedp.Navigate(s.Gateway+"/signup"),
		chromedp.WaitVisible(css("#signup-form")),
		chromedp.SendKeys(css("#name"), "Chrome Customer"),
		chromedp.SendKeys(css("#email"), "chrome@example.com"),
		chromedp.SendKeys(css("#password"), "browsing123"),
		chromedp.Click(css("#submit")),
		chromedp.WaitVisible(css("#flash")),
	)
	flash := text("#flash")
	step("add a product", chromedp.Click(css("#add-5")), chromedp.WaitVisible(css("#cart")))
	cart := text("#cart")
	step("check out", chromedp.Click(css("#checkout")), chromedp.WaitVisible(css("#orders")))
	orders := text("#orders")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	if !strings.Contains(flash, "Welcome") {
		t.Errorf("after sign-up the flash says %q", flash)
	}
	if !strings.Contains(cart, "Ridge Hiking Boots") {
		t.Errorf("cart shows %q", cart)
	}
	if !strings.Contains(orders, "Order #") || !strings.Contains(orders, "1 × Ridge Hiking Boots") {
		t.Errorf("orders page shows %q", orders)
	}
	path := filepath.Join(t.TempDir(), "shop-orders.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
	if dir := os.Getenv("SHOP_TEST_SCREENSHOT_DIR"); dir != "" { // keep it past the test
		if err := os.WriteFile(filepath.Join(dir, "shop-orders.png"), shot, 0o644); err != nil {
			t.Error(err)
		}
	}

	var n int
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id WHERE u.email = 'chrome@example.com'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("orders of the browser's user: %d, %v", n, err)
	}
}
