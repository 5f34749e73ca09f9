package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/internal/dockertest"
)

// Distinctive secrets: none may appear in ARES's output, journal or dashboard.
const (
	secretToken     = "tok-9f3c1e77aa41"
	secretDSNPass   = "pw-5e2d9b41c0"
	secretHookPath  = "hook-7c1a0f52d3"
	secretHookQuery = "q-3b8e6d90e1"
)

var secrets = []string{secretToken, secretDSNPass, secretHookPath, secretHookQuery}

// secretsNotifyPolicy tells a human about every service, every tick: the webhook is called at once.
const secretsNotifyPolicy = `package ares

decisions contains d if {
	some name, _ in input.services
	d := {"action": "notify", "service": name, "reason": "security test"}
}
`

func noSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			i := strings.Index(text, s)
			t.Errorf("%s shows a secret (%q) in: …%s…", where, s, text[max(0, i-120):min(len(text), i+len(s)+40)])
		}
	}
}

// echoingWebhook fails every call with a 404 page that echoes the path and the token, as
// many servers' error pages do. It counts the calls.
func echoingWebhook(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "Cannot POST "+r.URL.RequestURI()+" token="+r.URL.Query().Get("token"), http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func writeSecretFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSigned writes a certificate for 127.0.0.1 and its key; it returns their paths and a
// pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "ares-e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// runOnce runs `ares run --once` with extra environment and returns its exit error, stdout
// and stderr.
func runOnce(t *testing.T, env []string, args ...string) (error, string, string) {
	t.Helper()
	root := dockertest.ModuleRoot(t)
	cmd := exec.Command(binary(t), append([]string{"run", "--once", "--config", filepath.Join(root, "ares.yaml"), "-o", "json"}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"ARES_METRICS_LISTEN=", "ARES_DASHBOARD_LISTEN=", "ARES_LOG_LEVEL=debug"}, env...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err, out.String(), errb.String()
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("ares run --once did not finish in 60 s:\n%s", errb.String())
	}
	return nil, "", ""
}

// Secrets (the API token, the journal DSN's password, the webhook URL's token) come from the
// environment or files and never appear in ARES's standard output or error (at debug level),
// in its journal, or on its dashboard and API — also when the webhook fails with an answer
// that echoes its URL and when the database refuses the password.
func TestSecretsNeverShown(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	dockertest.Run(t, dockertest.Spec{Name: "e2e-secrets-" + labels["ares.test.scope"], Labels: labels})
	pol := t.TempDir()
	writePolicy(t, pol, "notify.rego", secretsNotifyPolicy)
	hook, calls := echoingWebhook(t)
	dir := t.TempDir()
	hookFile := writeSecretFile(t, dir, "webhook", hook.URL+"/hooks/"+secretHookPath+"?token="+secretHookQuery)
	tokenFile := writeSecretFile(t, dir, "token", secretToken)

	t.Run("once", func(t *testing.T) {
		jpath := filepath.Join(t.TempDir(), "journal.db")
		err, stdout, stderr := runOnce(t, []string{"ARES_DOCKER_LABELS=" + label, "ARES_JOURNAL_PATH=" + jpath,
			"ARES_NOTIFY_WEBHOOK_URL_FILE=" + hookFile, "ARES_API_TOKEN=" + secretToken}, "--policies", pol)
		if err != nil {
			t.Fatalf("ares run --once: %v\n%s", err, stderr)
		}
		if calls.Load() == 0 || !strings.Contains(stdout, "404") {
			t.Fatalf("the webhook was not called, or its failure not reported (calls %d):\n%s", calls.Load(), stdout)
		}
		noSecrets(t, "stdout", stdout)
		noSecrets(t, "stderr", stderr)
		noSecrets(t, "the journal", journalText(t, jpath))
	})

	t.Run("live", func(t *testing.T) {
		jpath := filepath.Join(t.TempDir(), "journal.db")
		cert, key, pool := selfSigned(t, t.TempDir())
		addr := freeAddr(t)
		t.Setenv("ARES_JOURNAL_PATH", jpath)
		t.Setenv("ARES_DASHBOARD_LISTEN", addr)
		t.Setenv("ARES_DASHBOARD_TLS_CERT", cert)
		t.Setenv("ARES_DASHBOARD_TLS_KEY", key)
		t.Setenv("ARES_API_TOKEN_FILE", tokenFile)
		t.Setenv("ARES_NOTIFY_WEBHOOK_URL_FILE", hookFile)
		p := startAres(t, pol, label)
		dockertest.Eventually(t, 20*time.Second, "a failed notification", func() bool {
			return strings.Contains(p.stdout.String(), "404")
		})
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		call := func(method, path, body string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest(method, "https://"+addr+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+secretToken)
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := call("POST", "/api/v1/pause", `{"service":"web","for":"1m","reason":"secrets test"}`); code != http.StatusOK {
			t.Fatalf("pause over HTTPS with the token from the file: %d %s", code, body)
		}
		var seen strings.Builder
		for _, path := range []string{"/api/v1/facts", "/api/v1/decisions", "/api/v1/actions", "/api/v1/incidents", "/api/v1/policy",
			"/api/v1/status", "/api/v1/audit", "/", "/services/web", "/incidents", "/activity", "/policies"} {
			code, body := call("GET", path, "")
			if code != http.StatusOK {
				t.Errorf("GET %s over HTTPS: %d", path, code)
			}
			noSecrets(t, "GET "+path, body)
			seen.WriteString(body)
		}
		if !strings.Contains(seen.String(), "secrets test") || !strings.Contains(seen.String(), "404") {
			t.Error("the dashboard shows neither the audited pause nor the failed notification: the check looked at nothing")
		}
		if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/api/v1/status"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("plain HTTP answered while TLS is configured")
			}
		}
		stopAres(t, p)
		noSecrets(t, "stdout", p.stdout.String())
		noSecrets(t, "stderr", p.stderr.String())
		noSecrets(t, "the journal", journalText(t, jpath))
	})

	t.Run("bad DSN password", func(t *testing.T) {
		dsn := "postgres://shop:" + secretDSNPass + "@127.0.0.1:5432/shop?sslmode=disable&connect_timeout=5"
		for name, env := range map[string][]string{
			"env":  {"ARES_JOURNAL_DSN=" + dsn},
			"file": {"ARES_JOURNAL_DSN_FILE=" + writeSecretFile(t, dir, "dsn", dsn)},
		} {
			err, stdout, stderr := runOnce(t, append(env, "ARES_DOCKER_LABELS="+label, "ARES_JOURNAL_BACKEND=postgres"), "--policies", pol)
			if err == nil {
				t.Fatalf("%s: ares run --once with a wrong database password succeeded", name)
			}
			if !strings.Contains(stderr, "journal") {
				t.Errorf("%s: the error does not name the journal:\n%s", name, stderr)
			}
			noSecrets(t, name+": stdout", stdout)
			noSecrets(t, name+": stderr", stderr)
		}
	})

	t.Run("bad webhook URL", func(t *testing.T) {
		err, stdout, stderr := runOnce(t, []string{"ARES_NOTIFY_WEBHOOK_URL=ftp://hooks.example.com/" + secretHookPath}, "--policies", pol)
		if err == nil || !strings.Contains(stderr, "notify.webhook_url") {
			t.Fatalf("want a notify.webhook_url error, got %v:\n%s", err, stderr)
		}
		noSecrets(t, "stdout", stdout)
		noSecrets(t, "stderr", stderr)
	})
}

// stopAres ends the ARES the test started (SIGTERM to its PID) and waits for it, so that its
// journal is complete.
func stopAres(t *testing.T, p *aresProc) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }() // the output is complete once Wait returns
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("ares did not stop within 15 s")
	}
}

// journalText is everything the SQLite journal at path holds, as text: the raw file and every
// tick (facts decompressed), decision, incident and audit record as JSON.
func journalText(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.Write(raw)
	ctx := context.Background()
	s, err := journal.Open(ctx, journal.Config{Backend: journal.BackendSQLite, Path: path}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	dump := func(v any) {
		b, _ := json.Marshal(v)
		sb.Write(b)
	}
	if err := s.Ticks(ctx, time.Time{}, func(rt journal.RecordedTick) error { n++; dump(rt); return nil }); err != nil {
		t.Fatal(err)
	}
	acts, err := s.Actions(ctx, journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	incs, err := s.Incidents(ctx, journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	audit, err := s.AuditLog(ctx, journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	dump(acts)
	dump(incs)
	dump(audit)
	if n == 0 || len(acts) == 0 {
		t.Errorf("the journal holds %d ticks and %d decisions: the check looked at nothing", n, len(acts))
	}
	return sb.String() + fmt.Sprint(n)
}

// ARES refuses policies others can write, on start, naming the path and the fix; the
// --insecure-policy-dir flag (policy.insecure_dir) overrides it for development.
func TestInsecurePolicyDirRefused(t *testing.T) {
	pol := filepath.Join(t.TempDir(), "policies")
	copyDir(t, filepath.Join(dockertest.ModuleRoot(t), "policies"), pol)
	if err := os.Chmod(pol, 0o777); err != nil {
		t.Fatal(err)
	}
	facts := filepath.Join(dockertest.ModuleRoot(t), "cmd", "ares", "testdata", "example-facts.json")
	want := []string{pol + " is world-writable (mode 0777)", "chmod go-w " + pol, "--insecure-policy-dir"}

	err, _, stderr := runOnce(t, []string{"ARES_DOCKER_LABELS=ares.test.scope=none"}, "--policies", pol, "--dry-run")
	if err == nil {
		t.Fatal("ares run accepted a world-writable policy directory")
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("ares run: error does not say %q:\n%s", w, stderr)
		}
	}
	out, err := exec.Command(binary(t), "eval", "--facts", facts, "--policies", pol).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "chmod go-w "+pol) {
		t.Errorf("ares eval on a world-writable directory: %v\n%s", err, out)
	}
	out, err = exec.Command(binary(t), "eval", "--facts", facts, "--policies", pol, "--insecure-policy-dir").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restart") {
		t.Errorf("ares eval --insecure-policy-dir: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("docker"); err == nil {
		dockertest.Client(t)
		err, _, stderr = runOnce(t, []string{"ARES_DOCKER_LABELS=ares.test.scope=none", "ARES_POLICY_INSECURE_DIR=true",
			"ARES_JOURNAL_PATH=" + filepath.Join(t.TempDir(), "j.db")}, "--policies", pol, "--dry-run")
		if err != nil {
			t.Errorf("ares run with policy.insecure_dir: true: %v\n%s", err, stderr)
		}
	}
}
