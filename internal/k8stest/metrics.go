package k8stest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// There is no metrics-server (it needs kubelets). ServeMetricsAPI stands in for it with a
// CustomResourceDefinition that makes the apiserver serve metrics.k8s.io/v1beta1 pods in the
// shape metrics-server does (PodMetrics: timestamp, window, containers[].usage), and
// SetPodMetrics writes one pod's usage, as metrics-server would report it.

const metricsCRD = `{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "pods.metrics.k8s.io",
    "annotations": {"api-approved.kubernetes.io": "unapproved, test stand-in for metrics-server"}},
  "spec": {"group": "metrics.k8s.io", "scope": "Namespaced",
    "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics", "listKind": "PodMetricsList"},
    "versions": [{"name": "v1beta1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
}`

var metricsOnce sync.Mutex

// ServeMetricsAPI makes the cluster serve metrics.k8s.io/v1beta1 pods (idempotent).
func (c *Cluster) ServeMetricsAPI(t testing.TB) {
	t.Helper()
	metricsOnce.Lock()
	defer metricsOnce.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := c.Client.Discovery().RESTClient()
	err := rc.Post().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").
		SetHeader("Content-Type", "application/json").Body([]byte(metricsCRD)).Do(ctx).Error()
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("k8stest: metrics CRD: %v", err)
	}
	if !Eventually(20*time.Second, func() bool {
		_, err := c.Client.Discovery().ServerResourcesForGroupVersion("metrics.k8s.io/v1beta1")
		return err == nil
	}) {
		t.Fatal("k8stest: metrics.k8s.io/v1beta1 not served")
	}
}

// SetPodMetrics writes pod's usage (cpu like "900m", memory like "32Mi") for its container
// "app", with the pod's labels, as metrics-server reports them.
func (c *Cluster) SetPodMetrics(t testing.TB, pod corev1.Pod, cpu, memory string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obj := map[string]any{
		"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
		"metadata":  map[string]any{"name": pod.Name, "namespace": pod.Namespace, "labels": pod.Labels},
		"timestamp": time.Now().UTC().Format(time.RFC3339), "window": "15s",
		"containers": []any{map[string]any{"name": "app", "usage": map[string]any{"cpu": cpu, "memory": memory}}},
	}
	rc := c.Client.Discovery().RESTClient()
	base := fmt.Sprintf("/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods", pod.Namespace)
	for range 5 {
		cur := map[string]any{}
		raw, err := rc.Get().AbsPath(base, pod.Name).DoRaw(ctx)
		switch {
		case apierrors.IsNotFound(err):
			body, _ := json.Marshal(obj)
			err = rc.Post().AbsPath(base).SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
		case err == nil:
			_ = json.Unmarshal(raw, &cur)
			obj["metadata"].(map[string]any)["resourceVersion"] = cur["metadata"].(map[string]any)["resourceVersion"]
			body, _ := json.Marshal(obj)
			err = rc.Put().AbsPath(base, pod.Name).SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
		}
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("k8stest: pod metrics of %s: %v", pod.Name, err)
		}
	}
	t.Fatalf("k8stest: pod metrics of %s: conflicts", pod.Name)
}
