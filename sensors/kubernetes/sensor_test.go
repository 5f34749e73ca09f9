package kubernetes

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/k8stest"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func pod(statuses ...corev1.ContainerStatus) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", UID: "u1"},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app",
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 5, FailureThreshold: 3},
			Resources:      corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: statuses}}
	return p
}

func running(ready bool, since time.Duration) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: "app", Ready: ready, RestartCount: 1,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0.Add(-since))}}}
}

func crashLoop(code int32, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: "app", RestartCount: 7,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}
}

// Container statuses map onto the replica fields the policies read.
func TestReplica(t *testing.T) {
	failed := pod()
	failed.Status.Phase, failed.Status.Reason = corev1.PodFailed, "Evicted"
	pending := pod(corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}})
	pending.Status.Phase = corev1.PodPending
	noProbe := pod(running(true, time.Hour))
	noProbe.Spec.Containers[0].ReadinessProbe = nil
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want engine.Replica
	}{
		{"ready", pod(running(true, time.Hour)), engine.Replica{State: "running", Health: "healthy", RestartCount: 1}},
		{"no readiness probe", noProbe, engine.Replica{State: "running", Health: "none", RestartCount: 1}},
		{"not ready", pod(running(false, time.Hour)), engine.Replica{State: "running", Health: "unhealthy", RestartCount: 1}},
		{"not ready yet", pod(running(false, 5*time.Second)), engine.Replica{State: "running", Health: "starting", RestartCount: 1}},
		{"crash loop", pod(crashLoop(1, "Error")), engine.Replica{State: "exited", Health: "none", ExitCode: 1, RestartCount: 7,
			Error: "CrashLoopBackOff: Error (exit code 1)"}},
		{"OOM kill loop", pod(crashLoop(137, "OOMKilled")), engine.Replica{State: "exited", Health: "none", ExitCode: 137, OOMKilled: true,
			RestartCount: 7, Error: "CrashLoopBackOff: OOMKilled (exit code 137)"}},
		{"pod failed", failed, engine.Replica{State: "exited", Health: "none", Error: "Evicted"}},
		{"creating", pending, engine.Replica{State: "created", Health: "none", Error: "ContainerCreating"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Replica(c.pod, t0)
			c.want.ID, c.want.Name, c.want.Node, c.want.MemLimitBytes = "u1", "web-1", "node-a", 100<<20
			if got != c.want {
				t.Errorf("Replica =\n %+v\nwant\n %+v", got, c.want)
			}
		})
	}
}

// desired_replicas comes from the workloads (without ARES's scaling); the newest pods beyond
// it are the scaled ones; usage becomes cpu_percent (of one core) and mem_percent.
func TestFill(t *testing.T) {
	mk := func(name string, age time.Duration) *corev1.Pod {
		p := pod(running(true, time.Hour))
		p.Name, p.Namespace = name, "shop"
		p.CreationTimestamp = metav1.NewTime(t0.Add(-age))
		return p
	}
	pods := []*corev1.Pod{mk("web-c", time.Minute), mk("web-a", time.Hour), mk("web-b", 2*time.Hour)}
	var out engine.Service
	Fill(&out, pods, []Workload{{Kind: "Deployment", Name: "web", Replicas: 3, Desired: 2}},
		map[string]Usage{"shop/web-a": {MilliCPU: 1500, MemBytes: 50 << 20}}, t0)
	if out.Runtime != "kubernetes" || out.DesiredReplicas != 2 || len(out.Replicas) != 3 {
		t.Fatalf("service = %+v", out)
	}
	names := []string{out.Replicas[0].Name, out.Replicas[1].Name, out.Replicas[2].Name}
	if names[0] != "web-b" || names[2] != "web-c" || out.Replicas[0].Scaled || out.Replicas[1].Scaled || !out.Replicas[2].Scaled {
		t.Errorf("order/scaled: %v %+v", names, out.Replicas)
	}
	if r := out.Replicas[1]; r.CPUPercent != 150 || r.MemBytes != 50<<20 || r.MemPercent != 50 {
		t.Errorf("usage: %+v", r)
	}
}

func TestParseUsage(t *testing.T) {
	u, err := ParseUsage([]byte(`{"kind":"PodMetricsList","items":[{"metadata":{"name":"p","namespace":"n"},
		"containers":[{"name":"a","usage":{"cpu":"250m","memory":"1Ki"}},{"name":"b","usage":{"cpu":"1","memory":"1Mi"}}]}]}`))
	if err != nil || u["n/p"] != (Usage{MilliCPU: 1250, MemBytes: 1024 + 1<<20}) {
		t.Fatalf("ParseUsage = %v, %v", u, err)
	}
}

// Against a real apiserver: the informers see the pods of a Deployment; a pod turning bad
// wakes a tick; its CrashLoopBackOff and OOM kill are in the facts; metrics.k8s.io usage
// becomes cpu_percent once served.
func TestSensorAgainstAPIServer(t *testing.T) {
	c := k8stest.Shared(t, k8stest.Options{ControllerManager: true})
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, k8stest.Deployment(ns, "web", 2, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := k8stest.Pods(t, c.Client, ns, k8stest.Selector("web"), 2)
	k8stest.SetRunning(t, c.Client, pods[0], true)
	k8stest.SetRunning(t, c.Client, pods[1], true)

	s, err := New(c.Client, Options{Namespace: ns, Metrics: MetricsAuto}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wakes := make(chan string, 16)
	go func() { _ = s.Watch(ctx, func(r string) { wakes <- r }) }()
	collect := func() *engine.Service {
		t.Helper()
		f := engine.NewFacts(0, t0)
		if err := s.Collect(ctx, f); err != nil {
			t.Fatalf("collect: %v", err)
		}
		return f.Services["web"]
	}
	if !k8stest.Eventually(10*time.Second, func() bool {
		svc := collect()
		return svc != nil && len(svc.Replicas) == 2 && svc.Replicas[0].State == "running" && svc.Replicas[1].State == "running"
	}) {
		t.Fatalf("web = %+v", collect())
	}
	if svc := collect(); svc.DesiredReplicas != 2 || svc.Runtime != "kubernetes" || svc.Replicas[0].Health != "healthy" {
		t.Fatalf("web = %+v", svc)
	}
	for len(wakes) > 0 {
		<-wakes
	}
	k8stest.SetCrashLoop(t, c.Client, pods[0], 137, "OOMKilled", 3)
	select {
	case r := <-wakes:
		if r != "event:pod:exited" {
			t.Errorf("wake reason %q", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no wake after a pod turned bad")
	}
	var bad engine.Replica
	k8stest.Eventually(5*time.Second, func() bool {
		for _, r := range collect().Replicas {
			if r.Name == pods[0].Name {
				bad = r
			}
		}
		return bad.State == "exited"
	})
	if bad.State != "exited" || !bad.OOMKilled || bad.ExitCode != 137 || bad.RestartCount != 3 || bad.ID != string(pods[0].UID) {
		t.Fatalf("crash-looping replica = %+v", bad)
	}
	if r := collect().Replicas; r[0].CPUPercent != 0 && r[1].CPUPercent != 0 {
		t.Fatalf("cpu without metrics.k8s.io: %+v", r)
	}

	c.ServeMetricsAPI(t)
	c.SetPodMetrics(t, pods[1], "900m", "32Mi")
	s2, err := New(c.Client, Options{Namespace: ns, Metrics: MetricsOn}, nil) // discovery is asked afresh
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f := engine.NewFacts(0, t0)
	if err := s2.Collect(ctx, f); err != nil {
		t.Fatalf("collect with metrics: %v", err)
	}
	for _, r := range f.Services["web"].Replicas {
		if r.Name == pods[1].Name && (r.CPUPercent != 90 || r.MemBytes != 32<<20 || r.MemPercent != 50) {
			t.Errorf("usage of %s = cpu %v mem %v (%v%%)", r.Name, r.CPUPercent, r.MemBytes, r.MemPercent)
		}
	}
}
