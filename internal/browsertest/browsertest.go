// Package browsertest starts Debian's headless Chromium for the project's browser tests, with
// the flags this closed network needs (no background networking, component updates or sync;
// no sandbox, since tests run as root in CI) and a fresh profile per test. Without Chromium,
// tests skip with a loud reason on a laptop and fail when CI=true.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ares-sre/ares/internal/dockertest"
)

// Path finds Chromium: $ARES_TEST_CHROMIUM, else Debian's chromium on the PATH.
func Path(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ARES_TEST_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	dockertest.Unavailable(t, "chromium (scripts/services.sh chromium installs it)", exec.ErrNotFound)
	return ""
}

// Context starts a headless browser with a window of width×height and returns a chromedp
// context bounded by timeout; the browser is closed when the test ends.
func Context(t testing.TB, width, height int, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root in CI
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(width, height),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() { cancel(); bcancel(); acancel() })
	return ctx
}
