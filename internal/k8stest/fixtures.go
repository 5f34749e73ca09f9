package k8stest

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// Deployment is a Deployment of replicas pods labelled ares.enable=true and
// app.kubernetes.io/name=name, plus extra labels on the pod template, with a readiness probe
// and a 64Mi memory limit. Its image is never pulled: there is no kubelet.
func Deployment(ns, name string, replicas int32, extra map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app.kubernetes.io/name": name}
	tpl := map[string]string{"app.kubernetes.io/name": name, "ares.enable": "true"}
	for k, v := range extra {
		tpl[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: tpl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "ares-testserver:test",
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}},
						PeriodSeconds: 1, FailureThreshold: 1},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
				}}},
			},
		},
	}
}

// Pods waits (30s at most) until exactly n pods not being deleted match sel in ns, and
// returns them.
func Pods(t testing.TB, cs kubernetes.Interface, ns, sel string, n int) []corev1.Pod {
	t.Helper()
	var last []corev1.Pod
	ok := Eventually(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false
		}
		last = last[:0]
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil {
				last = append(last, p)
			}
		}
		return len(last) == n
	})
	if !ok {
		t.Fatalf("pods %q in %s: %d, want %d", sel, ns, len(last), n)
	}
	return last
}

// Selector is "app.kubernetes.io/name=<name>".
func Selector(name string) string {
	return labels.Set{"app.kubernetes.io/name": name}.String()
}

// Eventually polls cond every 100ms until it holds or limit passes.
func Eventually(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kubelet status writes, through the status subresource, standing for what a kubelet reports.

// SetRunning reports the pod running with its container ready or not.
func SetRunning(t testing.TB, cs kubernetes.Interface, p corev1.Pod, ready bool) corev1.Pod {
	t.Helper()
	started := metav1.NewTime(time.Now().Add(-time.Minute))
	return setStatus(t, cs, p, corev1.PodRunning, ready, corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}, corev1.ContainerState{}, 0)
}

// SetCrashLoop reports the pod's container in CrashLoopBackOff after exiting with code.
func SetCrashLoop(t testing.TB, cs kubernetes.Interface, p corev1.Pod, code int32, reason string, restarts int32) corev1.Pod {
	t.Helper()
	return setStatus(t, cs, p, corev1.PodRunning, false,
		corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}},
		corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason,
			StartedAt: metav1.NewTime(time.Now().Add(-time.Minute)), FinishedAt: metav1.NewTime(time.Now().Add(-30 * time.Second))}}, restarts)
}

func setStatus(t testing.TB, cs kubernetes.Interface, p corev1.Pod, phase corev1.PodPhase, ready bool, state, last corev1.ContainerState, restarts int32) corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	started := true
	now := metav1.Now()
	for range 5 { // the controllers write status too: retry on a conflict
		cur, err := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("k8stest: get pod %s: %v", p.Name, err)
		}
		cur.Status.Phase = phase
		cur.Status.StartTime = &now
		cur.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: cond, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "ares-testserver:test", ImageID: "sha256:0",
			ContainerID: fmt.Sprintf("containerd://%s-%d", cur.UID, restarts), Ready: ready, Started: &started,
			RestartCount: restarts, State: state, LastTerminationState: last}}
		out, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			return *out
		}
		if !apierrors.IsConflict(err) {
			t.Fatalf("k8stest: update status of %s: %v", p.Name, err)
		}
	}
	t.Fatalf("k8stest: update status of %s: conflicts", p.Name)
	return p
}
