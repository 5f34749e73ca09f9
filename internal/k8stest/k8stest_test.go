package k8stest

import (
	"context"
	"os"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// The control plane answers, enforces RBAC for anyone but the administrator, and gives a
// namespace its default ServiceAccount.
func TestControlPlane(t *testing.T) {
	c := Shared(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != K8sVersion {
		t.Errorf("server version %q, want %q", v.GitVersion, K8sVersion)
	}
	ns := c.Namespace(t)
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("default service account: %v", err)
	}
	// A service account token with no role bound: RBAC forbids reading pods.
	cs := kubernetes.NewForConfigOrDie(c.ServiceAccountConfig(t, ns, "default"))
	_, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list pods as an unbound service account: err %v, want forbidden", err)
	}
	if _, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list pods as admin: %v", err)
	}
}
