// Package k8stest runs a real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC
// on) and, when asked, kube-controller-manager, each a process on loopback ports with its data
// in a temporary folder, built from the Go module proxy by scripts/k8s-bins.sh. There is no
// kubelet and no scheduler: pods stay unscheduled, and a test writes their status through the
// status subresource to stand for what a kubelet would report.
//
// One control plane serves a whole test package:
//
//	func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		c := k8stest.Shared(t, k8stest.Options{ControllerManager: true})
//		ns := c.Namespace(t) // a fresh namespace with its default ServiceAccount
//		...
//	}
//
// When the binaries are missing the test is skipped loudly, and fails under CI=true.
package k8stest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ares-sre/ares/internal/dockertest"
)

// Versions scripts/k8s-bins.sh builds by default; the cache folder is keyed by them.
const (
	K8sVersion  = "v1.37.2"
	EtcdVersion = "v3.7.0"
)

// Options choose what runs besides etcd and the apiserver.
type Options struct {
	// ControllerManager runs kube-controller-manager (ReplicaSets replace deleted pods, the
	// disruption controller fills PodDisruptionBudget status, namespaces get their default
	// ServiceAccount).
	ControllerManager bool
}

// Cluster is a running control plane.
type Cluster struct {
	// Config talks to the apiserver as an administrator (group system:masters).
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file for Config.
	Kubeconfig string
	// Host is the apiserver's https URL.
	Host string

	dir   string
	procs []*exec.Cmd
	logs  []string
	cm    bool
}

// BinDir is where the binaries are looked for: $ARES_K8S_BINS, else $KUBEBUILDER_ASSETS, else
// the cache folder scripts/k8s-bins.sh fills.
func BinDir() string {
	if d := os.Getenv("ARES_K8S_BINS"); d != "" {
		return d
	}
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "ares", "k8s-"+K8sVersion+"-etcd-"+EtcdVersion)
}

var (
	mu       sync.Mutex
	shared   *Cluster
	sharedCM bool
	startErr error
)

// Main runs the package's tests and then stops the shared control plane, if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
	return code
}

// Shared returns the package's control plane, starting it on first use (Main stops it). A
// test that asks for the controller manager after one was started without it gets it
// started then. Missing binaries: the test is skipped (fails under CI=true).
func Shared(t testing.TB, opt Options) *Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if startErr != nil {
		dockertest.Unavailable(t, "kubernetes control plane", startErr)
	}
	if shared == nil {
		shared, startErr = Start(opt)
		if startErr != nil {
			shared = nil
			if errors.Is(startErr, errNoBinaries) {
				dockertest.Unavailable(t, "kubernetes binaries", fmt.Errorf("%w (build them with scripts/k8s-bins.sh)", startErr))
			}
			t.Fatalf("k8stest: %v", startErr)
		}
	}
	if opt.ControllerManager && !shared.cm {
		if _, err := os.Stat(filepath.Join(BinDir(), "kube-controller-manager")); err != nil {
			dockertest.Unavailable(t, "kubernetes binaries", fmt.Errorf("%w: %v (build them with scripts/k8s-bins.sh)", errNoBinaries, err))
		}
		if err := shared.startControllerManager(); err != nil {
			t.Fatalf("k8stest: %v", err)
		}
	}
	return shared
}

var errNoBinaries = errors.New("kubernetes test binaries not found")

// Start starts a control plane; the caller stops it with Stop.
func Start(opt Options) (*Cluster, error) {
	bins := BinDir()
	need := []string{"etcd", "kube-apiserver"}
	if opt.ControllerManager {
		need = append(need, "kube-controller-manager")
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(bins, b)); err != nil {
			return nil, fmt.Errorf("%w: %s", errNoBinaries, filepath.Join(bins, b))
		}
	}
	dir, err := os.MkdirTemp("", "ares-k8stest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	if err := c.start(bins, opt); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// adminToken is the static token of the administrator the tests act as.
func adminToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Cluster) start(bins string, opt Options) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	if err := c.spawn("etcd", filepath.Join(bins, "etcd"),
		"--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--initial-advertise-peer-urls", "http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--initial-cluster", "default=http://127.0.0.1:"+strconv.Itoa(etcdPeer),
		"--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saKey := filepath.Join(c.dir, "sa.key")
	if err := os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	token := adminToken()
	tokens := filepath.Join(c.dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	certDir := filepath.Join(c.dir, "certs")
	c.Host = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := c.spawn("kube-apiserver", filepath.Join(bins, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(apiPort), "--cert-dir", certDir,
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--endpoint-reconciler-type", "none",
		"--disable-admission-plugins", "ServiceAccount",
		"--allow-privileged=false", "--v", "1"); err != nil {
		return err
	}
	c.Config = &rest.Config{Host: c.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS: 200, Burst: 400}
	c.Kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, []byte(Kubeconfig(c.Host, token)), 0o600); err != nil {
		return err
	}
	if err := c.waitReady(90 * time.Second); err != nil {
		return err
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}
	if opt.ControllerManager {
		return c.startControllerManager()
	}
	return nil
}

// startControllerManager runs the controllers the tests lean on.
func (c *Cluster) startControllerManager() error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	if err := c.spawn("kube-controller-manager", filepath.Join(BinDir(), "kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[0]),
		"--controllers", "deployment-controller,replicaset-controller,statefulset-controller,disruption-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller",
		"--service-account-private-key-file", filepath.Join(c.dir, "sa.key"),
		"--concurrent-deployment-syncs", "2", "--concurrent-replicaset-syncs", "2",
		"--v", "1"); err != nil {
		return err
	}
	c.cm = true
	return nil
}

// Kubeconfig is a kubeconfig file's text for a bearer token (server certificate unchecked:
// the apiserver made its own for loopback).
func Kubeconfig(host, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: test
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`, host, token)
}

func (c *Cluster) spawn(name, bin string, args ...string) error {
	logPath := filepath.Join(c.dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphans when the test binary dies
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	lf.Close()
	c.procs = append(c.procs, cmd)
	c.logs = append(c.logs, logPath)
	return nil
}

// waitReady polls /readyz until it answers ok.
func (c *Cluster) waitReady(limit time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback test apiserver with its own certificate
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		for i, p := range c.procs {
			if p.ProcessState != nil || !alive(p) {
				return fmt.Errorf("%s exited; log %s:\n%s", filepath.Base(p.Path), c.logs[i], tail(c.logs[i]))
			}
		}
		req, _ := http.NewRequest(http.MethodGet, c.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.Config.BearerToken)
		resp, err := hc.Do(req)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b.String())
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready within %s: %s; log:\n%s", limit, last, tail(c.logs[len(c.logs)-1]))
}

func alive(p *exec.Cmd) bool {
	return p.Process.Signal(syscall.Signal(0)) == nil
}

// Stop ends the processes (by PID, newest first) and removes the data folder.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// Namespace creates a namespace for one test, with the ServiceAccount "default" (the
// controller manager would make it; without it nothing does), and deletes it afterwards.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name = strings.Trim(name, "-") + "-" + hex.EncodeToString(b)
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("k8stest: create namespace: %v", err)
	}
	_, err = c.Client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("k8stest: create default service account: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// ServiceAccountConfig is a client configuration that authenticates as the ServiceAccount
// ns/name, with a token from the TokenRequest API: what a pod of that account would use.
func (c *Cluster) ServiceAccountConfig(t testing.TB, ns, name string) *rest.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exp := int64(3600)
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("k8stest: token for %s/%s: %v", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// Logs returns the tail of each process's log, for a failing test's message.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, l := range c.logs {
		fmt.Fprintf(&b, "== %s\n%s\n", filepath.Base(l), tail(l))
	}
	return b.String()
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePorts returns n loopback ports free right now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Own starts a control plane for one test and stops it when the test ends (for a package
// without k8stest.Main). Missing binaries: the test is skipped (fails under CI=true).
func Own(t testing.TB, opt Options) *Cluster {
	t.Helper()
	c, err := Start(opt)
	if errors.Is(err, errNoBinaries) {
		dockertest.Unavailable(t, "kubernetes binaries", fmt.Errorf("%w (build them with scripts/k8s-bins.sh)", err))
	}
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}
