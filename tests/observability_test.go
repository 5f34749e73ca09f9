package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// Debian's prometheus and prometheus-alertmanager packages (scripts/services.sh prometheus).
const (
	prometheusBin   = "/usr/bin/prometheus"
	alertmanagerBin = "/usr/bin/prometheus-alertmanager"
)

// The observability wiring end to end, with the shipped files: the real Debian Prometheus
// scrapes a real shop service (in a container) and evaluates deploy/prometheus's rules, the real
// Debian Alertmanager routes the alert with deploy/alertmanager/alertmanager.yml to a live
// `ares run`, and ARES restarts the service through the default policy pack's alert mapping.
//
// The test copies shorten only timing: every rule's `for:` becomes 1s and Alertmanager's
// group_wait/group_interval 1s; the rule expressions, labels and routes are the shipped ones.
// The fault: the shop's admin port makes the service answer every request with 500.
func TestAlertFiresAndAresActs(t *testing.T) {
	for _, bin := range []string{prometheusBin, alertmanagerBin} {
		if _, err := os.Stat(bin); err != nil {
			dockertest.Unavailable(t, bin+" (scripts/services.sh prometheus)", err)
		}
	}
	root := dockertest.ModuleRoot(t)
	label, labels := scope(t)
	sc := labels["ares.test.scope"]
	svc := "obs-" + sc[strings.LastIndex(sc, "-")+1:]
	labels["ares.service"] = svc

	// The shop's gateway: it needs no database, and its fault injection is what every shop
	// service has.
	shopAddr, adminAddr := freeAddr(t), freeAddr(t)
	id := runShop(t, "e2e-obs-"+labels["ares.test.scope"], labels, shopAddr, adminAddr)
	waitHTTP(t, "http://"+shopAddr+"/healthz")

	metricsAddr := freeAddr(t) // ARES's /metrics and Alertmanager receiver
	amAddr := startAlertmanager(t, root, metricsAddr)
	promAddr := startPrometheusWithRules(t, root, shopAddr, svc, metricsAddr, amAddr)

	t.Setenv("ARES_METRICS_LISTEN", metricsAddr)
	dashAddr := freeAddr(t) // to read ARES's facts
	t.Setenv("ARES_DASHBOARD_LISTEN", dashAddr)
	// Only the alert may lead to the restart: no scraping of its own (error rate), probes or
	// logs; the alertmanager receiver and the docker sensor stay on.
	t.Setenv("ARES_SENSORS_ALERTMANAGER_ENABLED", "true")
	t.Setenv("ARES_SENSORS_METRICS_ENABLED", "false")
	t.Setenv("ARES_SENSORS_PROBE_ENABLED", "false")
	t.Setenv("ARES_SENSORS_LOGS_ENABLED", "false")
	p := startAres(t, filepath.Join(root, "policies"), label)

	// Users: a request every 50 ms, for as long as the test runs (at most 4 minutes).
	ctx, stop := context.WithTimeout(context.Background(), 4*time.Minute)
	defer stop()
	go func() {
		c := http.Client{Timeout: 2 * time.Second}
		for ctx.Err() == nil {
			if resp, err := c.Get("http://" + shopAddr + "/healthz"); err == nil {
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	dockertest.Eventually(t, 60*time.Second, "prometheus scrapes the shop's requests", func() bool {
		return len(promQuery(t, promAddr, fmt.Sprintf(`shop_http_requests_total{service=%q, code="200"}`, svc))) > 0
	})
	if n := len(promQuery(t, promAddr, `ALERTS{alertname="HighErrorRate"}`)); n != 0 {
		t.Fatalf("HighErrorRate is pending or firing before any fault (%d series)", n)
	}

	// The fault: every request answered 500.
	resp, err := http.Post("http://"+adminAddr+"/fault/fail?percent=100", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fault injection: %s", resp.Status)
	}
	started := startedAt(t, id)

	dockertest.Eventually(t, 90*time.Second, "HighErrorRate fires in prometheus", func() bool {
		return len(promQuery(t, promAddr, fmt.Sprintf(`ALERTS{alertname="HighErrorRate", alertstate="firing", service=%q}`, svc))) > 0
	})
	dockertest.Eventually(t, 60*time.Second, "ARES restarts the service because of the alert", func() bool {
		return p.hasAction(t, func(a engine.Action) bool {
			return a.Service == svc && a.Action == engine.ActRestart && strings.HasPrefix(a.Reason, "alert HighErrorRate firing since") &&
				a.Outcome != nil && a.Outcome.Result == engine.ResultOK
		})
	})
	// The alert as ARES holds it: from Alertmanager, with the rule's labels.
	if got := aresAlerts(t, dashAddr, svc); len(got) != 1 || got[0].Name != "HighErrorRate" || got[0].Severity != "critical" ||
		got[0].Labels["alertname"] != "HighErrorRate" || got[0].Annotations["summary"] == "" {
		t.Errorf("ARES's facts.alerts for %s: %+v", svc, got)
	}
	if got := startedAt(t, id); !got.After(started) {
		t.Errorf("the container was not restarted: started %s, before the fault %s", got, started)
	}
	// A restarted process has no fault: the service answers again.
	dockertest.Eventually(t, 30*time.Second, "the restarted shop answers 200", func() bool {
		code, _, err := dockertest.Get(shopAddr, "/healthz")
		return err == nil && code == http.StatusOK
	})
	for _, tk := range p.ticks(t) {
		for _, d := range tk.Decisions {
			if d.Service == svc && !strings.HasPrefix(d.Reason, "alert ") {
				t.Errorf("a decision about %s not from the alert: %+v", svc, d)
			}
		}
	}

	// ARES's own metrics, scraped by the same Prometheus, show the decision and the action.
	dockertest.Eventually(t, 30*time.Second, "prometheus sees ARES's restart", func() bool {
		return len(promQuery(t, promAddr, `ares_actions_total{job="ares", action="restart", result="ok"} > 0`)) > 0 &&
			len(promQuery(t, promAddr, `ares_decisions_total{job="ares", action="restart"} > 0`)) > 0
	})
	// The Grafana dashboards' queries are valid PromQL over series that exist here.
	checkDashboardQueries(t, root, promAddr)

	// Healed, the service's error rate falls and the alert resolves (about a minute: the
	// rule's rate window); Alertmanager sends the resolution and ARES forgets the alert.
	healed := time.Now()
	dockertest.Eventually(t, 3*time.Minute, "HighErrorRate resolves in prometheus", func() bool {
		return len(promQuery(t, promAddr, fmt.Sprintf(`ALERTS{alertname="HighErrorRate", service=%q}`, svc))) == 0
	})
	dockertest.Eventually(t, 30*time.Second, "ARES's facts drop the resolved alert", func() bool {
		return len(aresAlerts(t, dashAddr, svc)) == 0
	})
	t.Logf("resolved %s after the restart; restarts admitted: %q", time.Since(healed).Round(time.Second), p.actions(t, engine.VerdictAdmit))
}

// aresAlerts returns the alerts about svc in ARES's facts (GET /api/v1/facts).
func aresAlerts(t *testing.T, dashAddr, svc string) []engine.Alert {
	t.Helper()
	code, body, err := dockertest.Get(dashAddr, "/api/v1/facts")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/facts: %d %v %.200s", code, err, body)
	}
	var f engine.Facts
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("facts: %v", err)
	}
	var out []engine.Alert
	for _, a := range f.Alerts {
		if a.Service == svc {
			out = append(out, a)
		}
	}
	return out
}

// runShop runs the shop gateway from a FROM-scratch image, its public port on shopAddr and its
// admin (fault) port on adminAddr (fixed ports: a restart keeps them), and removes it when
// the test ends.
func runShop(t *testing.T, name string, labels map[string]string, shopAddr, adminAddr string) string {
	t.Helper()
	image := dockertest.BuildGoImage(t, "ares-shop:test", "./shop/cmd/shop", "")
	cli := dockertest.Client(t)
	all := map[string]string{dockertest.TestLabel: "1"}
	for k, v := range labels {
		all[k] = v
	}
	bind := func(addr string) []network.PortBinding {
		host, port, _ := net.SplitHostPort(addr)
		return []network.PortBinding{{HostIP: netip.MustParseAddr(host), HostPort: port}}
	}
	public, admin := network.MustParsePort("8080/tcp"), network.MustParsePort("9090/tcp")
	cfg := &container.Config{Image: image, Labels: all, Cmd: []string{"gateway"},
		Env:          []string{"SHOP_PORT=8080", "SHOP_ADMIN_PORT=9090", "SHOP_LOG_LEVEL=warn"},
		ExposedPorts: network.PortSet{public: {}, admin: {}}}
	hc := &container.HostConfig{PortBindings: network.PortMap{public: bind(shopAddr), admin: bind(adminAddr)}}
	hc.Memory = 128 << 20
	ctx := context.Background()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: name})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() { dockertest.Remove(res.ID) })
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return res.ID
}

func startedAt(t *testing.T, id string) time.Time {
	t.Helper()
	res, err := dockertest.Client(t).ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, res.Container.State.StartedAt)
	if err != nil {
		t.Fatalf("started at %q: %v", res.Container.State.StartedAt, err)
	}
	return at
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	c := http.Client{Timeout: time.Second}
	dockertest.Eventually(t, 30*time.Second, u+" answers", func() bool {
		resp, err := c.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startDaemon starts bin with args, logging to dir/name.log, and kills it (by its PID) when the
// test ends, showing its log if the test failed.
func startDaemon(t *testing.T, dir, name, bin string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("%s log:\n%s", name, tail(string(b), 40))
			}
		}
	})
}

// rewrite applies re → repl to s and fails the test when re matches fewer than min times:
// the shipped file changed shape and the test must follow.
func rewrite(t *testing.T, s, re, repl string, min int) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	if n := len(rx.FindAllStringIndex(s, -1)); n < min {
		t.Fatalf("%s matches %d times, want at least %d", re, n, min)
	}
	return rx.ReplaceAllString(s, repl)
}

// startAlertmanager runs Alertmanager with the shipped configuration, its webhook pointed at
// ARES's receiver on aresAddr and its grouping waits at 1 s.
func startAlertmanager(t *testing.T, root, aresAddr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := rewrite(t, string(b), `http://ares:9464/api/v1/alerts`, "http://"+aresAddr+"/api/v1/alerts", 1)
	cfg = rewrite(t, cfg, `(?m)^(\s+group_(wait|interval):\s*)\S+$`, "${1}1s", 2)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startDaemon(t, dir, "alertmanager", alertmanagerBin, "--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--cluster.listen-address=", "--log.level=warn")
	waitHTTP(t, "http://"+addr+"/-/ready")
	return addr
}

// startPrometheusWithRules runs Prometheus with the shipped rule files (every `for:` at 1 s),
// scraping the shop at shopAddr as service svc and ARES at aresAddr every second, and
// alerting to Alertmanager at amAddr.
func startPrometheusWithRules(t *testing.T, root, shopAddr, svc, aresAddr, amAddr string) string {
	t.Helper()
	dir := t.TempDir()
	var ruleFiles []string
	for _, f := range []string{"shop.rules.yml", "ares.rules.yml"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "rules", f))
		if err != nil {
			t.Fatal(err)
		}
		rules := rewrite(t, string(b), `(?m)^(\s+for:\s*)\S+$`, "${1}1s", 3)
		if err := os.WriteFile(filepath.Join(dir, f), []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		ruleFiles = append(ruleFiles, fmt.Sprintf("%q", f))
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [%s]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: shop
    static_configs:
      - targets: [%q]
        labels: {service: %q}
  - job_name: ares
    static_configs:
      - targets: [%q]
`, strings.Join(ruleFiles, ", "), amAddr, shopAddr, svc, aresAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startDaemon(t, dir, "prometheus", prometheusBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	waitHTTP(t, "http://"+addr+"/-/ready")
	return addr
}

// promQuery runs an instant query and returns the result's series (nil on any error).
func promQuery(t *testing.T, addr, q string) []json.RawMessage {
	res, err := promQueryErr(addr, q)
	if err != nil {
		t.Logf("query %s: %v", q, err)
	}
	return res
}

func promQueryErr(addr, q string) ([]json.RawMessage, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s", body.Error)
	}
	return body.Data.Result, nil
}

// checkDashboardQueries runs every query of deploy/grafana/dashboards against Prometheus
// ($__rate_interval as 1m): each must be valid, and the ones over series this test produced
// must return data.
func checkDashboardQueries(t *testing.T, root, promAddr string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards")
	}
	// Series that must exist by now: the shop's traffic and errors, ARES's ticks, decisions
	// and actions.
	mustHaveData := regexp.MustCompile(`shop_http_requests_total|ares_ticks_total|ares_decisions_total|ares_actions_total|ares_policy_last_reload_success`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				n++
				expr := strings.ReplaceAll(q.Expr, "$__rate_interval", "1m")
				res, err := promQueryErr(promAddr, expr)
				if err != nil {
					t.Errorf("%s, panel %q: %s: %v", filepath.Base(f), p.Title, expr, err)
					continue
				}
				// increase() and rate() need two samples of a series in their window: a
				// counter born at the last scrape has data one scrape later.
				must := mustHaveData.MatchString(expr) && !strings.Contains(expr, "result=\"error\"")
				for wait := time.Now().Add(15 * time.Second); must && len(res) == 0 && time.Now().Before(wait); {
					time.Sleep(500 * time.Millisecond)
					res, _ = promQueryErr(promAddr, expr)
				}
				if must && len(res) == 0 {
					t.Errorf("%s, panel %q: no data for %s", filepath.Base(f), p.Title, expr)
				}
			}
		}
	}
	t.Logf("%d dashboard queries checked", n)
}
