package fault_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ares-sre/ares/shop/internal/fault"
)

func setup(t *testing.T) (*fault.Injector, *prometheus.Registry, chan int, http.Handler, http.Handler) {
	reg := prometheus.NewRegistry()
	exits := make(chan int, 1)
	f := fault.New(slog.New(slog.NewJSONHandler(io.Discard, nil)), reg, func(code int) { exits <- code })
	t.Cleanup(f.Close)
	app := f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	return f, reg, exits, f.Handler(), app
}

func do(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestAdminAPI(t *testing.T) {
	f, reg, exits, admin, app := setup(t)

	if rec := do(admin, "POST", "/fault/latency?ms=50"); rec.Code != http.StatusOK {
		t.Fatalf("latency: %d %s", rec.Code, rec.Body)
	}
	start := time.Now()
	do(app, "GET", "/x")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("latency not added: %s", d)
	}

	do(admin, "POST", "/fault/fail?percent=100")
	if rec := do(app, "GET", "/x"); rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "fault_injected") {
		t.Errorf("fail 100%%: %d %s", rec.Code, rec.Body)
	}
	if rec := do(app, "GET", "/metrics"); rec.Code != http.StatusOK {
		t.Errorf("/metrics is failed too: %d", rec.Code)
	}

	do(admin, "POST", "/fault/leak?mb_per_s=10")
	do(admin, "POST", "/fault/burn?cores=1")
	deadline := time.Now().Add(5 * time.Second)
	for f.State().LeakedBytes == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := f.State()
	if st.LeakedBytes == 0 || st.BurnCores != 1 || st.LatencyMS != 50 || st.FailPercent != 100 {
		t.Errorf("state %+v", st)
	}
	if v := metric(t, reg, "shop_fault_leaked_bytes")[0].GetGauge().GetValue(); v <= 0 {
		t.Errorf("leaked bytes metric %v", v)
	}

	do(admin, "POST", "/fault/reset")
	if st := f.State(); st != (fault.State{}) {
		t.Errorf("after reset: %+v", st)
	}
	if rec := do(app, "GET", "/x"); rec.Code != http.StatusOK {
		t.Errorf("after reset: %d", rec.Code)
	}
	if n := len(metric(t, reg, "shop_fault_injections_total")); n != 5 {
		t.Errorf("injection series %d, want one per fault used", n)
	}

	if rec := do(admin, "POST", "/fault/crash?code=3"); rec.Code != http.StatusAccepted {
		t.Fatalf("crash: %d", rec.Code)
	}
	select {
	case code := <-exits:
		if code != 3 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(2 * time.Second):
		t.Error("crash did not exit")
	}
}

func TestAdminAPIRefusesBadValues(t *testing.T) {
	f, _, _, admin, _ := setup(t)
	for _, target := range []string{
		"/fault/leak?mb_per_s=-1", "/fault/leak?mb_per_s=99999", "/fault/burn?cores=x",
		"/fault/latency?ms=-5", "/fault/fail?percent=101", "/fault/crash?code=0", "/fault/fail",
	} {
		if rec := do(admin, "POST", target); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "invalid_fault") {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
	if st := f.State(); st != (fault.State{}) {
		t.Errorf("state after refused values: %+v", st)
	}
}

func metric(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
