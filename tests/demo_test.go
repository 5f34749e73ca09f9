package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/internal/dockertest"
)

// `make demo` for real (scripts/demo.sh up, then down), on its own Compose project and ports so
// that a demo the user left running is not disturbed: the shop answers through its gateway,
// the dashboard answers, ARES restarted the crashed product replica (its API shows the
// admitted restart with outcome ok), and down leaves no container, network or volume of the
// project and no ARES process. About a minute with a warm build cache; set DEMO_TEST=0
// to skip it.
func TestDemoUpHealsAndDownRemovesEverything(t *testing.T) {
	if os.Getenv("DEMO_TEST") == "0" {
		t.Skip("DEMO_TEST=0")
	}
	cli := dockertest.Client(t)
	if err := exec.Command("docker", "compose", "version").Run(); err != nil {
		if _, err := exec.LookPath("docker-compose"); err != nil {
			dockertest.Unavailable(t, "docker compose or docker-compose", err)
		}
	}
	if os.Geteuid() != 0 {
		if err := exec.Command("sudo", "-n", "true").Run(); err != nil {
			dockertest.Unavailable(t, "root or password-less sudo (the demo crashes a replica by PID)", err)
		}
	}
	root := dockertest.ModuleRoot(t)
	project := fmt.Sprintf("ares-demo-test-%d", time.Now().UnixNano()%1e6)
	state := t.TempDir()
	shopPort, dashAddr, metricsAddr := freePort(t), "127.0.0.1:"+strconv.Itoa(freePort(t)), "127.0.0.1:"+strconv.Itoa(freePort(t))
	env := append(os.Environ(), "DEMO_PROJECT="+project, "SHOP_GATEWAY_PORT="+strconv.Itoa(shopPort),
		"DEMO_DASHBOARD="+dashAddr, "DEMO_METRICS="+metricsAddr, "DEMO_STATE="+state,
		"DEMO_LABELS="+dockertest.TestLabel+"=1")
	demo := func(arg string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "demo.sh"), arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := demo("down"); err != nil {
			t.Errorf("demo.sh down (cleanup): %v\n%s", err, out)
		}
	})

	start := time.Now()
	out, err := demo("up")
	if err != nil {
		t.Fatalf("demo.sh up: %v\n%s", err, out)
	}
	t.Logf("demo.sh up took %s:\n%s", time.Since(start).Round(time.Second), out)
	shopURL, dashURL := fmt.Sprintf("http://127.0.0.1:%d/", shopPort), "http://"+dashAddr+"/"
	for _, want := range []string{shopURL, dashURL} {
		if !strings.Contains(out, want) {
			t.Errorf("demo.sh up does not print %q", want)
		}
	}

	// The shop, through its gateway.
	code, body, err := get(shopURL)
	if err != nil || code != http.StatusOK {
		t.Errorf("GET %s = %d, %v", shopURL, code, err)
	}
	code, body, err = get(shopURL + "api/products")
	var products []struct {
		SKU string `json:"sku"`
	}
	if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &products) != nil || len(products) == 0 {
		t.Errorf("GET %sapi/products = %d, %v: %.200s", shopURL, code, err, body)
	}

	// The dashboard, and the restart ARES made.
	if code, _, err := get(dashURL); err != nil || code != http.StatusOK {
		t.Errorf("GET %s = %d, %v", dashURL, code, err)
	}
	code, body, err = get(dashURL + "api/v1/actions?service=product")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %sapi/v1/actions = %d, %v: %s", dashURL, code, err, body)
	}
	var acts struct {
		Actions []struct {
			Action, Service, Replica, Verdict string
			Outcome                           *struct{ Result string }
		}
	}
	if err := json.Unmarshal([]byte(body), &acts); err != nil {
		t.Fatalf("api/v1/actions: %v: %s", err, body)
	}
	healed := false
	for _, a := range acts.Actions {
		if a.Action == "restart" && a.Service == "product" && strings.HasPrefix(a.Replica, project) && a.Verdict == "admit" &&
			a.Outcome != nil && a.Outcome.Result == "ok" {
			healed = true
		}
	}
	if !healed {
		t.Errorf("ARES's API shows no admitted restart of a product replica of %s with outcome ok: %s", project, body)
	}

	pidText, err := os.ReadFile(filepath.Join(state, "ares.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatalf("ares.pid: %v", err)
	}

	if out, err := demo("down"); err != nil {
		t.Fatalf("demo.sh down: %v\n%s", err, out)
	}
	ctx := context.Background()
	f := client.Filters{}.Add("label", "com.docker.compose.project="+project)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(cs.Items) != 0 {
		t.Errorf("after down: %d containers of %s left (%v)", len(cs.Items), project, err)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil || len(ns.Items) != 0 {
		t.Errorf("after down: %d networks of %s left (%v)", len(ns.Items), project, err)
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil || len(vs.Items) != 0 {
		t.Errorf("after down: volumes of %s left (%v)", project, err)
	}
	dockertest.Eventually(t, 10*time.Second, fmt.Sprintf("ARES (pid %d) exits", pid), func() bool {
		return !running(pid)
	})
	if code, _, err := get(dashURL); err == nil {
		t.Errorf("the dashboard still answers after down: %d", code)
	}
}

// The composed stack publishes only on loopback, each port once, and the shop's gateway on
// 127.0.0.1:8000: the address `make demo` prints, and not the dashboard's default 8080 (which
// the compose ares service or an ARES on the host uses).
func TestShopComposePublishesDistinctLoopbackPorts(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		dockertest.Unavailable(t, "docker-compose", err)
	}
	root := dockertest.ModuleRoot(t)
	cmd := exec.Command(bin, "--project-directory", root, "-f", filepath.Join(root, "docker-compose.yml"),
		"-f", filepath.Join(root, "docker-compose.local.yml"), "config")
	cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME=ares-shop-ports-test")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v", err)
	}
	// docker-compose 1.x prints each service's ports in short syntax: "- IP:HOST:CONTAINER/tcp".
	seen := map[string]string{} // host address → service
	service := ""
	for _, line := range strings.Split(string(out), "\n") {
		if len(line) > 3 && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(line, ":") {
			service = strings.TrimSuffix(strings.TrimSpace(line), ":")
		}
		f := strings.TrimSpace(line)
		if !strings.HasPrefix(f, "- ") || strings.Count(f, ":") != 2 || !strings.HasSuffix(f, "/tcp") {
			continue
		}
		host := f[2:strings.LastIndexByte(f, ':')]
		if !strings.HasPrefix(host, "127.0.0.1:") {
			t.Errorf("%s publishes %s beyond loopback", service, host)
		}
		if host == "127.0.0.1:" { // a random loopback port: never a clash
			continue
		}
		if other, dup := seen[host]; dup {
			t.Errorf("%s and %s both publish %s", other, service, host)
		}
		seen[host] = service
	}
	if seen["127.0.0.1:8000"] != "gateway" {
		t.Errorf("the shop's gateway is not published on 127.0.0.1:8000 (published: %v)", seen)
	}
	if svc, ok := seen[config.Default().Dashboard.Listen]; ok && svc != "ares" {
		t.Errorf("%s publishes %s, the ARES dashboard's default listen address", svc, config.Default().Dashboard.Listen)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func get(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// running reports whether pid is a live process (a zombie waiting to be reaped is not).
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
