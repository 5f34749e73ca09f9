package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/internal/dockertest"
	"github.com/ares-sre/ares/internal/k8stest"
)

// syncBuffer is a bytes.Buffer that ARES writes and the test reads at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// actions are the actions of every tick printed so far (-o json).
func (s *syncBuffer) actions(t *testing.T) []engine.Action {
	t.Helper()
	var out []engine.Action
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var tick journal.PrintedTick
		if err := json.Unmarshal(sc.Bytes(), &tick); err != nil {
			continue // a partial line
		}
		out = append(out, tick.Actions...)
	}
	return out
}

// copyPolicies copies the shipped policy pack and sets its thresholds for a fast test (data
// only; the Rego is the pack's, unchanged): a 1s cooldown, api scaled to 2 replicas at most.
func copyPolicies(t *testing.T) string {
	t.Helper()
	src := filepath.Join(dockertest.ModuleRoot(t), "policies")
	dst := filepath.Join(t.TempDir(), "policies")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "data.json" {
			var d map[string]any
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			cfg := d["ares"].(map[string]any)["config"].(map[string]any)
			cfg["defaults"].(map[string]any)["cooldown_s"] = 1
			cfg["services"] = map[string]any{"api": map[string]any{"max_replicas": 2}}
			b, _ = json.Marshal(d)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// ARES under runtime: kubernetes, against a real apiserver, with the shipped policies and the
// least-privilege ServiceAccount of deploy/kubernetes/rbac.yaml, two instances electing a
// leader through a Lease: a high-CPU service is scaled out through the scale subresource and
// back in; a crash-looping pod is evicted and replaced; an eviction a PodDisruptionBudget
// forbids is refused, journaled and not retried in a storm; only the Lease holder acts; the
// ServiceAccount cannot read Secrets.
func TestRunKubernetes(t *testing.T) {
	c := k8stest.Own(t, k8stest.Options{ControllerManager: true})
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	rbac, err := os.ReadFile(filepath.Join(dockertest.ModuleRoot(t), "deploy", "kubernetes", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c.Apply(t, string(rbac), "ares", ns)
	for _, m := range []string{"deployment.yaml", "config.yaml"} { // the apiserver validates the manifests
		b, err := os.ReadFile(filepath.Join(dockertest.ModuleRoot(t), "deploy", "kubernetes", m))
		if err != nil {
			t.Fatal(err)
		}
		c.Apply(t, string(b), "", "")
	}
	c.ServeMetricsAPI(t)
	sa := c.ServiceAccountConfig(t, ns, "ares")
	as := kubernetes.NewForConfigOrDie(sa)
	if _, err := as.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("ARES's service account lists Secrets: err = %v, want forbidden", err)
	}
	if err := as.CoreV1().Pods(ns).Delete(ctx, "any", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("ARES's service account deletes pods: err = %v, want forbidden", err)
	}

	cs := c.Client
	for _, d := range []struct {
		name string
		n    int32
	}{{"web", 2}, {"db", 1}, {"api", 1}} {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, k8stest.Deployment(ns, d.name, d.n, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	one := intstr.FromInt32(1)
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "db"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := k8stest.Pods(t, cs, ns, k8stest.Selector("web"), 2)
	db := k8stest.Pods(t, cs, ns, k8stest.Selector("db"), 1)[0]
	api := k8stest.Pods(t, cs, ns, k8stest.Selector("api"), 1)[0]
	for _, p := range append(web, db) {
		k8stest.SetRunning(t, cs, p, true)
		c.SetPodMetrics(t, p, "100m", "16Mi")
	}
	api = k8stest.SetRunning(t, cs, api, true)
	c.SetPodMetrics(t, api, "50m", "16Mi")

	// Two instances, one kubeconfig: the service account's token.
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(k8stest.Kubeconfig(c.Host, sa.BearerToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	pols := copyPolicies(t)
	outs := map[string]*syncBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	for _, id := range []string{"a", "b"} {
		cfg := fmt.Sprintf(`runtime: kubernetes
engine: {interval: 1s, tick_timeout: 8s, sensor_timeout: 5s}
policy: {dir: %s}
governor: {cooldown: 2s, budget: 50, backoff_initial: 15s, verify_timeout: 30s}
journal: {path: %s}
dashboard: {listen: ""}
metrics: {listen: ""}
anomaly: {enabled: false}
sensors: {alertmanager: {enabled: false}}
log: {level: warn}
kubernetes:
  kubeconfig: %s
  namespace: %s
  metrics: on
  leader_election: {enabled: true, namespace: %s, identity: %s, lease_duration: 8s, renew_deadline: 6s, retry_period: 1s}
`, pols, filepath.Join(dir, id+".db"), kc, ns, ns, id)
		path := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		out, logs := &syncBuffer{}, &syncBuffer{}
		outs[id] = out
		wg.Go(func() {
			if err := runRun(runCtx, runOpts{cf: configFlags{path: path}, output: "json"}, out, logs); err != nil && runCtx.Err() == nil {
				t.Errorf("ares %s: %v\n%s", id, err, logs.String())
			}
		})
	}
	// `ares facts` under the same config shows the pods as replicas.
	var facts bytes.Buffer
	if err := runFacts(ctx, factsOpts{cf: configFlags{path: filepath.Join(dir, "a.yaml")}, output: "json"}, &facts); err != nil {
		t.Fatalf("ares facts: %v", err)
	}
	var f engine.Facts
	if err := json.Unmarshal(facts.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	if s := f.Services["web"]; s == nil || len(s.Replicas) != 2 || s.Runtime != "kubernetes" || s.Replicas[0].State != "running" ||
		f.Services["api"] == nil || f.Services["api"].Replicas[0].CPUPercent != 5 {
		t.Fatalf("ares facts: %s", facts.String())
	}

	leader := ""
	if !k8stest.Eventually(30*time.Second, func() bool {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "ares", metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil {
			leader = *l.Spec.HolderIdentity
		}
		return leader != ""
	}) {
		t.Fatal("no instance took the Lease")
	}
	standby := map[string]string{"a": "b", "b": "a"}[leader]
	t.Logf("leader %s, standby %s", leader, standby)

	// A high-CPU service is scaled out through the scale subresource...
	c.SetPodMetrics(t, api, "950m", "16Mi")
	replicas := func(name string) int32 {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}
	if !k8stest.Eventually(30*time.Second, func() bool { return replicas("api") == 2 }) {
		t.Fatalf("api not scaled out; leader's actions: %+v", outs[leader].actions(t))
	}
	// ...and back in when it idles.
	for _, p := range k8stest.Pods(t, cs, ns, k8stest.Selector("api"), 2) {
		k8stest.SetRunning(t, cs, p, true)
		c.SetPodMetrics(t, p, "10m", "16Mi")
	}
	if !k8stest.Eventually(30*time.Second, func() bool { return replicas("api") == 1 }) {
		t.Fatalf("api not scaled back in; leader's actions: %+v", outs[leader].actions(t))
	}

	// A crash-looping pod is evicted; its ReplicaSet replaces it.
	bad := k8stest.SetCrashLoop(t, cs, web[0], 1, "Error", 5)
	if !k8stest.Eventually(30*time.Second, func() bool {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, bad.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}) {
		t.Fatalf("crash-looping pod not evicted; leader's actions: %+v", outs[leader].actions(t))
	}
	k8stest.Pods(t, cs, ns, k8stest.Selector("web"), 2) // replaced

	// An eviction the budget forbids is refused and journaled, and not retried in a storm.
	k8stest.SetCrashLoop(t, cs, db, 137, "Error", 2)
	refused := func() (n int) {
		for _, a := range outs[leader].actions(t) {
			if a.Service == "db" && a.Outcome != nil && a.Outcome.Result == engine.ResultError &&
				strings.Contains(a.Outcome.Error, "disruption budget") {
				n++
			}
		}
		return n
	}
	if !k8stest.Eventually(30*time.Second, func() bool { return refused() > 0 }) {
		t.Fatalf("no refused eviction of db; leader's actions: %+v", outs[leader].actions(t))
	}
	time.Sleep(8 * time.Second) // eight more ticks
	attempts := 0
	for _, a := range outs[leader].actions(t) {
		if a.Service == "db" && a.Outcome != nil {
			attempts++
		}
	}
	if attempts > 2 {
		t.Errorf("%d eviction attempts on db within ~10 ticks: a storm", attempts)
	}
	if got := k8stest.Pods(t, cs, ns, k8stest.Selector("db"), 1); got[0].UID != db.UID {
		t.Error("db's pod replaced despite its budget")
	}

	// Only the Lease holder acted; the standby held the same decisions back.
	held := 0
	for _, a := range outs[standby].actions(t) {
		if a.Outcome != nil {
			t.Errorf("standby %s acted: %+v", standby, a)
		}
		if a.Verdict == engine.VerdictSuppress && strings.HasPrefix(a.Why, "standby: instance "+leader+" leads") {
			held++
		}
	}
	if held == 0 {
		t.Errorf("standby %s held nothing back: %+v", standby, outs[standby].actions(t))
	}
	stop()
	wg.Wait()

	// The refusal is in the leader's journal, not only on its standard output.
	st, err := journal.Open(ctx, journal.Config{Backend: journal.BackendSQLite, Path: filepath.Join(dir, leader+".db")}, nil, nil)
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	defer st.Close()
	recent, err := st.RecentActions(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, d := range recent {
		a := d.Action
		if a.Outcome == nil {
			continue
		}
		k := a.Service + " " + a.Action + " " + a.Outcome.Result
		if a.Service == "db" && !strings.Contains(a.Outcome.Error, "disruption budget") {
			k += " (other error: " + a.Outcome.Error + ")"
		}
		kinds[k]++
	}
	t.Logf("journal: %v; db eviction attempts %d; standby held back %d actions", kinds, attempts, held)
	for _, want := range []string{"api scale_out ok", "api scale_in ok", "web restart ok", "db restart error"} {
		if kinds[want] == 0 {
			t.Errorf("journal lacks %q: %v", want, kinds)
		}
	}
}
