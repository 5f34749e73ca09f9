package kubernetes

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/k8stest"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newActuator(t *testing.T, cs kubernetes.Interface, ns string) *Actuator {
	t.Helper()
	a, err := New(cs, Options{Namespace: ns, Timeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A crash-looping pod is evicted, and its ReplicaSet replaces it.
func TestEvictCrashLoopingPodIsReplaced(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{ControllerManager: true})
	ns, ctx := c.Namespace(t), ctxT(t)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, k8stest.Deployment(ns, "web", 2, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := k8stest.Pods(t, c.Client, ns, k8stest.Selector("web"), 2)
	bad := k8stest.SetCrashLoop(t, c.Client, pods[0], 1, "Error", 4)
	k8stest.SetRunning(t, c.Client, pods[1], true)

	a := newActuator(t, c.Client, ns)
	out, err := a.Act(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "web", Replica: bad.Name},
		Sensed: &engine.SensedReplica{ID: string(bad.UID)}})
	if err != nil || out.Result != engine.ResultOK || !strings.Contains(out.Detail, "evicted") {
		t.Fatalf("restart = %+v, %v", out, err)
	}
	now := k8stest.Pods(t, c.Client, ns, k8stest.Selector("web"), 2)
	for _, p := range now {
		if p.UID == bad.UID {
			t.Fatalf("evicted pod %s still there", bad.Name)
		}
	}
	// Again with the same sensed pod: already gone, nothing evicted.
	out, err = a.Act(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "web", Replica: bad.Name},
		Sensed: &engine.SensedReplica{ID: string(bad.UID)}})
	if err != nil || !strings.Contains(out.Detail, "already gone") {
		t.Fatalf("second restart = %+v, %v", out, err)
	}
	if got := k8stest.Pods(t, c.Client, ns, k8stest.Selector("web"), 2); got[0].UID != now[0].UID && got[0].UID != now[1].UID {
		t.Errorf("a healthy pod was replaced")
	}
}

// An eviction that a PodDisruptionBudget forbids is refused with ErrDisruptionBudget, and the
// pod stays.
func TestEvictionRefusedByDisruptionBudget(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{ControllerManager: true})
	ns, ctx := c.Namespace(t), ctxT(t)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, k8stest.Deployment(ns, "db", 1, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	one := intstr.FromInt32(1)
	if _, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "db"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := k8stest.Pods(t, c.Client, ns, k8stest.Selector("db"), 1)[0]
	pod = k8stest.SetCrashLoop(t, c.Client, pod, 137, "Error", 2)
	// The disruption controller must have seen the budget, else the API answers "try later".
	if !k8stest.Eventually(30*time.Second, func() bool {
		p, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "db", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration >= p.Generation && p.Status.ExpectedPods == 1
	}) {
		t.Fatal("disruption controller did not observe the budget")
	}
	a := newActuator(t, c.Client, ns)
	_, err := a.Act(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "db", Replica: pod.Name},
		Sensed: &engine.SensedReplica{ID: string(pod.UID)}})
	if !errors.Is(err, ErrDisruptionBudget) || !strings.Contains(err.Error(), "disruption budget") {
		t.Fatalf("evict under a budget: err = %v, want ErrDisruptionBudget with the API's message", err)
	}
	if got := k8stest.Pods(t, c.Client, ns, k8stest.Selector("db"), 1); got[0].UID != pod.UID {
		t.Fatalf("pod replaced despite the budget")
	}
}

// A bare pod (no controller) is never evicted: nothing would replace it.
func TestEvictRefusesBarePod(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{})
	ns, ctx := c.Namespace(t), ctxT(t)
	d := k8stest.Deployment(ns, "solo", 1, nil)
	p := d.Spec.Template
	p.Name = "solo-1"
	pod, err := c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: p.ObjectMeta, Spec: p.Spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newActuator(t, c.Client, ns).Act(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRecycle, Service: "solo", Replica: pod.Name}})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("recycle a bare pod: err = %v, want ErrRefused", err)
	}
}

// scale_out and scale_in move spec.replicas through the scale subresource, one at a time,
// within [replicas before ARES, ares.max_replicas].
func TestScaleOutAndBack(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{})
	ns, ctx := c.Namespace(t), ctxT(t)
	d := k8stest.Deployment(ns, "api", 1, nil)
	d.Annotations = map[string]string{AnnotationMax: "2"}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a := newActuator(t, c.Client, ns)
	act := func(kind string) (engine.Outcome, error) {
		return a.Act(ctx, engine.Action{Decision: engine.Decision{Action: kind, Service: "api"}})
	}
	replicas := func() (int32, string) {
		got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *got.Spec.Replicas, got.Annotations[AnnotationDesired]
	}
	if _, err := act(engine.ActScaleIn); !errors.Is(err, ErrRefused) {
		t.Fatalf("scale_in below what it ran before ARES: err = %v", err)
	}
	out, err := act(engine.ActScaleOut)
	if err != nil || !strings.Contains(out.Detail, "1 → 2") {
		t.Fatalf("scale_out = %+v, %v", out, err)
	}
	if n, desired := replicas(); n != 2 || desired != "1" {
		t.Fatalf("after scale_out: replicas %d, %s=%q", n, AnnotationDesired, desired)
	}
	if _, err := act(engine.ActScaleOut); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "bound of 2") {
		t.Fatalf("scale_out past ares.max_replicas: err = %v", err)
	}
	if out, err := act(engine.ActScaleIn); err != nil || !strings.Contains(out.Detail, "2 → 1") {
		t.Fatalf("scale_in = %+v, %v", out, err)
	}
	if n, desired := replicas(); n != 1 || desired != "" {
		t.Fatalf("after scale_in: replicas %d, %s=%q (want removed)", n, AnnotationDesired, desired)
	}
}

// A service restart is a rollout restart: the template's restartedAt annotation changes and
// so does the Deployment's generation.
func TestRolloutRestart(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{})
	ns, ctx := c.Namespace(t), ctxT(t)
	d, err := c.Client.AppsV1().Deployments(ns).Create(ctx, k8stest.Deployment(ns, "cart", 2, map[string]string{LabelService: "carts"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := newActuator(t, c.Client, ns)
	a.now = func() time.Time { return time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC) }
	if _, err := a.Act(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "cart"}}); !errors.Is(err, ErrRefused) {
		t.Fatalf("restart under the app name while ares.service says carts: err = %v", err)
	}
	out, err := a.Act(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "carts"}})
	if err != nil || !strings.Contains(out.Detail, "deployment/"+ns+"/cart") {
		t.Fatalf("restart = %+v, %v", out, err)
	}
	got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Spec.Template.Annotations[AnnotationRestarted]; v != "2026-12-04T12:00:00Z" {
		t.Errorf("restartedAt = %q", v)
	}
	if got.Generation != d.Generation+1 {
		t.Errorf("generation %d → %d, want +1", d.Generation, got.Generation)
	}
}

// Of two electors on one Lease exactly one leads; when it stops, the other takes over.
func TestLeaseElectsOneLeader(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{})
	ns := c.Namespace(t)
	opt := func(id string) LeaseOptions {
		return LeaseOptions{Namespace: ns, Name: "ares", Identity: id, LeaseDuration: 3 * time.Second,
			RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}
	}
	a, err := NewElector(c.Client, opt("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewElector(c.Client, opt("b"))
	if err != nil {
		t.Fatal(err)
	}
	actx, stopA := context.WithCancel(context.Background())
	bctx, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA := make(chan struct{})
	go func() { _ = a.Run(actx); close(doneA) }()
	if !k8stest.Eventually(20*time.Second, a.Leading) {
		t.Fatal("a never leads")
	}
	go func() { _ = b.Run(bctx) }()
	if !k8stest.Eventually(10*time.Second, func() bool { return b.Leader() == "a" }) {
		t.Fatalf("b sees leader %q, want a", b.Leader())
	}
	if b.Leading() {
		t.Fatal("both lead")
	}
	term, ok := a.Term()
	if !ok {
		t.Fatal("a leads without a term")
	}
	stopA() // releases the Lease
	<-doneA
	if term.Err() == nil || a.Leading() {
		t.Fatal("a still leads after stopping")
	}
	if !k8stest.Eventually(20*time.Second, b.Leading) {
		t.Fatal("b never takes over")
	}
	if b.Leader() != "b" || b.Instance() != "b" {
		t.Errorf("leader %q, instance %q", b.Leader(), b.Instance())
	}
}

// An action a restart of ARES interrupted is ok when the service's pods all run and are ready
// now (its own pod replaced or not), an error while one does not.
func TestReconcileInterrupted(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{ControllerManager: true})
	ns, ctx := c.Namespace(t), ctxT(t)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, k8stest.Deployment(ns, "shop", 2, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := k8stest.Pods(t, c.Client, ns, k8stest.Selector("shop"), 2)
	a := newActuator(t, c.Client, ns)
	gone := engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "shop", Replica: "shop-gone-pod"},
		Sensed: &engine.SensedReplica{ID: "old-uid"}}
	if out := a.Reconcile(ctx, gone); out.Result != engine.ResultError {
		t.Fatalf("pods pending: %+v, want an error", out)
	}
	for _, p := range pods {
		k8stest.SetRunning(t, c.Client, p, true)
	}
	if out := a.Reconcile(ctx, gone); out.Result != engine.ResultOK {
		t.Fatalf("replaced pod, service up: %+v", out)
	}
	k8stest.SetCrashLoop(t, c.Client, pods[1], 1, "Error", 1)
	out := a.Reconcile(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "shop"}})
	if out.Result != engine.ResultError || !strings.Contains(out.Error, pods[1].Name) {
		t.Fatalf("one pod crash-looping: %+v, want an error naming %s", out, pods[1].Name)
	}
	if out := a.Reconcile(ctx, engine.Action{Decision: engine.Decision{Action: engine.ActRestart, Service: "nothing"}}); out.Result != engine.ResultError {
		t.Fatalf("no pods: %+v", out)
	}
}
