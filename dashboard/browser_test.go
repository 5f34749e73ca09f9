package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	dockeract "github.com/ares-sre/ares/actuators/docker"
	"github.com/ares-sre/ares/dashboard"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/internal/browsertest"
	"github.com/ares-sre/ares/internal/dockertest"
	dockersensor "github.com/ares-sre/ares/sensors/docker"
)

// An on-call engineer's first minutes, in headless Chromium against an in-process ARES (docker
// sensor and actuator, the default policy pack, the governor, the engine with the dashboard as
// its journal) over real containers: the overview lists the services; a killed replica shows
// up as an incident without a reload; the service page graphs CPU and memory; pausing a
// service from the page stops the next action, and the suppression is shown.
func TestBrowserControlCenter(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.TestServer(t)
	scope := fmt.Sprintf("dash-%d", time.Now().UnixNano()%1e6)
	run := func(service, name string) (string, string) {
		full := "ares-" + scope + "-" + name
		id := dockertest.Run(t, dockertest.Spec{Name: full, Image: image, Labels: map[string]string{
			"ares.enable": "true", "ares.service": service, "ares.test.scope": scope}})
		return id, full
	}
	web1, web1Name := run("web", "web-1")
	web2, _ := run("web", "web-2")
	api1, api1Name := run("api", "api-1")
	for _, id := range []string{web1, web2, api1} {
		dockertest.Eventually(t, 30*time.Second, id[:12]+" healthy", func() bool {
			st, h := dockertest.State(t, id)
			return st == "running" && h == "healthy"
		})
	}

	// ARES, in process.
	const token = "browser-test-token-0123456789"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	labels := []string{"ares.test.scope=" + scope}
	polDir := filepath.Join(dockertest.ModuleRoot(t), "policies")
	pol, err := policy.NewWatcher(polDir, policy.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gov := governor.New(governor.Options{})
	var eng *engine.Engine
	dash, err := dashboard.New(dashboard.Options{Token: token, PolicyDir: polDir, History: 720},
		dashboard.Deps{Controller: gov, Policies: pol, Submitter: dashboard.SubmitterFunc(func(d engine.Decision) error { return eng.Submit(d) })}, log)
	if err != nil {
		t.Fatal(err)
	}
	pol.OnReload(dash.PolicyReloaded)
	act := dockeract.New(cli, dockeract.Options{Labels: labels}, log)
	eng, err = engine.New(engine.Options{Interval: time.Second, Sensors: []engine.Sensor{dockersensor.New(cli, dockersensor.Options{Labels: labels}, log)},
		Policy: pol, Governor: gov, Journal: dash, Log: log,
		Actuators: map[string]engine.Actuator{engine.ActRestart: act, engine.ActRecycle: act, engine.ActScaleOut: act, engine.ActScaleIn: act}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = eng.Run(ctx); done <- struct{}{} }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = dash.Serve(ctx, ln); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	base := "http://" + ln.Addr().String()

	// The browser.
	bctx := browsertest.Context(t, 1400, 1000, 120*time.Second)
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("chromium: %s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("chromium: text of %s: %v", sel, err)
		}
		return v
	}
	shots := t.TempDir()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("chromium: screenshot: %v", err)
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
		if dir := os.Getenv("ARES_TEST_SCREENSHOT_DIR"); dir != "" { // keep it past the test
			_ = os.WriteFile(filepath.Join(dir, name), png, 0o644)
		}
	}
	// waitText waits until the element's text contains every want, re-reading it as the page
	// updates itself.
	waitText := func(sel string, within time.Duration, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel), chromedp.AtLeast(0)))
			ok := err == nil
			for _, w := range want {
				ok = ok && strings.Contains(got, w)
			}
			if ok {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s, %s shows %q (err %v); want %q", within, sel, got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// 1. The overview lists the test services.
	step("overview", chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr.svc[data-service="web"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.svc[data-service="api"]`)))
	if s := text("table.services"); !strings.Contains(s, web1Name) || !strings.Contains(s, api1Name) {
		t.Errorf("overview services table: %q", s)
	}

	// Log in for the controls.
	step("log in", chromedp.Navigate(base+"/login?next=/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login-btn")),
		chromedp.WaitVisible(chromedp.CSS("#pause-all")))

	// 2. Killing a replica makes an incident appear within 5 s, without a reload.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int]("window.__aresNoReload = 42")); err != nil {
		t.Fatal(err)
	}
	dockertest.Crash(t, web1) // a crash: a Docker API kill would be an operator's stop
	killed := time.Now()
	waitText("#open-incidents", 5*time.Second, "web", web1Name)
	t.Logf("incident on the page %s after the kill", time.Since(killed).Round(time.Millisecond))
	if v, err := chromedp.Run(bctx, chromedp.Evaluate[int]("window.__aresNoReload || 0")); err != nil || v != 42 {
		t.Errorf("the page reloaded (marker %d, %v)", v, err)
	}
	shot("overview-incident.png")
	dockertest.Eventually(t, 20*time.Second, "ARES restarts the killed replica", func() bool {
		st, _ := dockertest.State(t, web1)
		return st == "running"
	})

	// 3. The service page graphs CPU and memory with data points.
	step("service page", chromedp.Navigate(base+"/services/web"),
		chromedp.WaitVisible(chromedp.CSS(`svg.chart.cpu polyline.series`)))
	for _, class := range []string{"cpu", "mem"} {
		pts, err := chromedp.Run(bctx, chromedp.Evaluate[int](
			`(document.querySelector("svg.chart.`+class+` polyline.series")||{points:{length:0}}).points.length`))
		if err != nil || pts < 2 {
			t.Errorf("%s graph: %d points (%v)", class, pts, err)
		}
	}
	waitText("#content", 10*time.Second, "restart web/"+web1Name, "ok")
	shot("service-web.png")

	// 4. Pausing api from its page stops the next action; the suppression is shown.
	// A live update may swap the page's content between finding the form and typing into it
	// (the swap stops once a field holds text): start the form over when a node went stale.
	for attempt := 1; ; attempt++ {
		err := chromedp.Do(bctx, chromedp.Navigate(base+"/services/api"),
			chromedp.WaitVisible(chromedp.CSS("#pause-why")),
			chromedp.SendKeys(chromedp.CSS("#pause-why"), "browser test: hands off"),
			chromedp.Click(chromedp.CSS("#pause-btn")),
			chromedp.WaitVisible(chromedp.CSS("#flash")))
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Could not find node") {
			t.Fatalf("chromium: pause api: %v", err)
		}
	}
	if f := text("#flash"); !strings.Contains(f, "Paused automation for api") {
		t.Fatalf("flash after pause: %q", f)
	}
	if _, ok := gov.Paused(time.Now())["api"]; !ok {
		t.Fatal("the governor has no pause for api")
	}
	step("activity", chromedp.Navigate(base+"/activity"), chromedp.WaitVisible(chromedp.CSS("table.events")))
	dockertest.Crash(t, api1)
	waitText("table.events", 10*time.Second, "suppressed restart api/"+api1Name, "automation for api is paused")
	time.Sleep(3 * time.Second) // three more ticks
	if st, _ := dockertest.State(t, api1); st != "exited" {
		t.Errorf("paused service's replica was acted on: state %s", st)
	}
	shot("activity-paused.png")
	step("incidents", chromedp.Navigate(base+"/incidents?service=api"))
	waitText("#content", 5*time.Second, "restart api/"+api1Name+" — automation for api is paused until resumed")
	shot("incidents-api.png")
}
