// Package dockertest gives integration tests a real Docker engine: a client, FROM-scratch images
// built from the project's own Go commands, and containers and networks that are labelled
// ares.test=1 and removed when the test ends.
//
// When the engine is missing, tests skip with a loud reason on a laptop and fail when CI=true.
package dockertest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// TestLabel marks everything a test creates.
const TestLabel = "ares.test"

// TestServerImage is the image built from tests/testserver.
const TestServerImage = "ares-testserver:test"

// Unavailable skips the test with reason, or fails it when CI=true: CI must run every test.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s unavailable: %v (run scripts/services.sh to install and start it)", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and " + msg)
	}
	t.Skip("SKIPPING: " + msg)
}

var (
	clientOnce sync.Once
	sharedCli  *client.Client
	clientErr  error
)

// Client returns a client for the local engine, or skips/fails the test when none answers.
func Client(t testing.TB) *client.Client {
	t.Helper()
	clientOnce.Do(func() {
		sharedCli, clientErr = client.New(client.FromEnv)
		if clientErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, clientErr = sharedCli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	})
	if clientErr != nil {
		Unavailable(t, "docker engine", clientErr)
	}
	return sharedCli
}

// ModuleRoot is the repository root (the directory holding go.mod).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		t.Fatalf("dockertest: cannot find go.mod: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

var (
	buildMu sync.Mutex
	built   = map[string]error{}
)

// BuildGoImage builds the Go main package pkg (relative to the module root, e.g.
// "./tests/testserver") as a static binary and wraps it in a FROM-scratch image tagged tag,
// once per test process. dockerfileExtra is appended to the Dockerfile (e.g. a HEALTHCHECK).
func BuildGoImage(t testing.TB, tag, pkg, dockerfileExtra string) string {
	t.Helper()
	cli := Client(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	if err, ok := built[tag]; ok {
		if err != nil {
			t.Fatalf("dockertest: build %s: %v", tag, err)
		}
		return tag
	}
	err := buildGoImage(cli, ModuleRoot(t), tag, pkg, dockerfileExtra)
	built[tag] = err
	if err != nil {
		t.Fatalf("dockertest: build %s: %v", tag, err)
	}
	return tag
}

func buildGoImage(cli *client.Client, root, tag, pkg, extra string) error {
	dir, err := os.MkdirTemp("", "ares-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	dockerfile := "FROM scratch\nCOPY app /app\n" + extra + "\nENTRYPOINT [\"/app\"]\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	binData, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"app", 0o755, binData}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Labels: map[string]string{TestLabel: "1"},
	})
	if err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	defer res.Body.Close()
	// The build streams JSON messages; an "error" field means it failed.
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Error != "" {
			return fmt.Errorf("image build: %s", m.Error)
		}
	}
	return sc.Err()
}

// TestServer builds (once) and returns the tests/testserver image. Its HEALTHCHECK runs every
// 500 ms.
func TestServer(t testing.TB) string {
	return BuildGoImage(t, TestServerImage, "./tests/testserver",
		`HEALTHCHECK --interval=500ms --timeout=1s --start-period=5s --retries=2 CMD ["/app","healthcheck"]`)
}

// Network creates a bridge network labelled ares.test=1 and removes it when the test ends.
func Network(t testing.TB, name string) string {
	t.Helper()
	cli := Client(t)
	ctx := context.Background()
	name = fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1e9)
	res, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge", Labels: map[string]string{TestLabel: "1"},
	})
	if err != nil {
		t.Fatalf("dockertest: network create %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Containers a test's code created on this network (scale_out replicas, recycled
		// containers) carry ares.test=1 too, so remove them first.
		RemoveLabelled(t, map[string]string{"ares.test.network": name})
		_, _ = cli.NetworkRemove(context.Background(), res.ID, client.NetworkRemoveOptions{})
	})
	return name
}

// Spec describes a test container.
type Spec struct {
	Name    string
	Image   string // default: the test server
	Labels  map[string]string
	Env     []string
	Network string // network name; Alias is its alias there
	Alias   string
	// Publish maps the container port 8080 to a random port on 127.0.0.1 when true.
	Publish  bool
	MemLimit int64
	Cmd      []string
	// ExtraHosts are /etc/hosts entries ("host.docker.internal:host-gateway").
	ExtraHosts []string
}

// Run creates and starts a container labelled ares.test=1 and removes it (force) when the test
// ends. It returns the container id.
func Run(t testing.TB, s Spec) string {
	t.Helper()
	cli := Client(t)
	if s.Image == "" {
		s.Image = TestServer(t)
	}
	labels := map[string]string{TestLabel: "1"}
	if s.Network != "" {
		labels["ares.test.network"] = s.Network
	}
	for k, v := range s.Labels {
		labels[k] = v
	}
	cfg := &container.Config{Image: s.Image, Labels: labels, Env: s.Env, Cmd: s.Cmd,
		ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}}}
	hc := &container.HostConfig{ExtraHosts: s.ExtraHosts}
	hc.Memory = s.MemLimit
	if s.Publish {
		hc.PortBindings = network.PortMap{network.MustParsePort("8080/tcp"): {{HostIP: netip.MustParseAddr(localhost()), HostPort: ""}}}
	}
	var nc *network.NetworkingConfig
	if s.Network != "" {
		hc.NetworkMode = container.NetworkMode(s.Network)
		es := &network.EndpointSettings{}
		if s.Alias != "" {
			es.Aliases = []string{s.Alias}
		}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: es}}
	}
	ctx := context.Background()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: s.Name})
	if err != nil {
		t.Fatalf("dockertest: create %s: %v", s.Name, err)
	}
	t.Cleanup(func() { Remove(res.ID) })
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("dockertest: start %s: %v", s.Name, err)
	}
	return res.ID
}

// Remove force-removes a container, ignoring "not found".
func Remove(id string) {
	if sharedCli == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _ = sharedCli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
}

// RemoveLabelled force-removes every container carrying all of labels (plus ares.test=1).
func RemoveLabelled(t testing.TB, labels map[string]string) {
	cli := Client(t)
	f := client.Filters{}
	f = f.Add("label", TestLabel+"=1")
	for k, v := range labels {
		f = f.Add("label", k+"="+v)
	}
	ctx := context.Background()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return
	}
	for _, c := range res.Items {
		Remove(c.ID)
	}
}

func localhost() string { return "127.0.0.1" }

// HostPort returns the 127.0.0.1 address published for the container's port 8080, once
// something answers HTTP there (up to 15 s): the published port accepts connections as soon as
// the container starts, before its server listens, and a request sent then is reset.
func HostPort(t testing.TB, id string) string {
	t.Helper()
	addr := publishedAddr(t, id)
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// /metrics: the test server does not count it among its requests.
		resp, err := c.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
			break
		}
	}
	return addr
}

// publishedAddr returns the 127.0.0.1 address published for the container's port 8080.
func publishedAddr(t testing.TB, id string) string {
	t.Helper()
	cli := Client(t)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("dockertest: inspect %s: %v", id, err)
		}
		if res.Container.NetworkSettings != nil {
			for _, b := range res.Container.NetworkSettings.Ports[network.MustParsePort("8080/tcp")] {
				if b.HostPort != "" {
					return net.JoinHostPort(localhost(), b.HostPort)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dockertest: %s has no published port", id)
	return ""
}

// Get fetches http://addr+path with a short timeout.
func Get(addr, path string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// Eventually polls cond every 50 ms until it holds or timeout passes, then fails with msg.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s: %s", timeout, msg)
}

// State returns the container's state string and health status ("none" when it has no
// healthcheck).
func State(t testing.TB, id string) (state, health string) {
	t.Helper()
	res, err := Client(t).ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		return "gone", "none"
	}
	st := res.Container.State
	health = "none"
	if st.Health != nil {
		health = string(st.Health.Status)
	}
	return string(st.Status), health
}
