package k8stest

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// Apply creates the objects of a multi-document manifest (the kinds deploy/kubernetes uses),
// after replacing each "namespace: <from>" with "namespace: <to>" (from "" leaves them), and
// returns them. A cluster-scoped object that exists already is replaced.
func (c *Cluster) Apply(t testing.TB, manifest, from, to string) []any {
	t.Helper()
	if from != "" {
		manifest = regexp.MustCompile(`(?m)^(\s*namespace:\s*)`+regexp.QuoteMeta(from)+`\s*$`).ReplaceAllString(manifest, "${1}"+to)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []any
	for _, doc := range docSep.Split(manifest, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("k8stest: decode manifest: %v\n%s", err, doc)
		}
		cr := metav1.CreateOptions{}
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = c.Client.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, cr)
		case *corev1.ConfigMap:
			_, err = c.Client.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, cr)
		case *corev1.Namespace:
			_, err = c.Client.CoreV1().Namespaces().Create(ctx, o, cr)
		case *appsv1.Deployment:
			_, err = c.Client.AppsV1().Deployments(o.Namespace).Create(ctx, o, cr)
		case *rbacv1.Role:
			_, err = c.Client.RbacV1().Roles(o.Namespace).Create(ctx, o, cr)
		case *rbacv1.RoleBinding:
			_, err = c.Client.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, cr)
		case *rbacv1.ClusterRole:
			_ = c.Client.RbacV1().ClusterRoles().Delete(ctx, o.Name, metav1.DeleteOptions{})
			_, err = c.Client.RbacV1().ClusterRoles().Create(ctx, o, cr)
		case *rbacv1.ClusterRoleBinding:
			_ = c.Client.RbacV1().ClusterRoleBindings().Delete(ctx, o.Name, metav1.DeleteOptions{})
			_, err = c.Client.RbacV1().ClusterRoleBindings().Create(ctx, o, cr)
		default:
			t.Fatalf("k8stest: Apply does not know %T", obj)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("k8stest: create %T: %v", obj, err)
		}
		out = append(out, obj)
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
