package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/internal/dockertest"
)

func decodeManifests(t *testing.T, name string) []runtime.Object {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dockertest.ModuleRoot(t), "deploy", "kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []runtime.Object
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		body := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")
		if strings.TrimSpace(body) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s document %d: %v", name, i, err)
		}
		out = append(out, obj)
	}
	return out
}

// The manifests decode as Kubernetes objects; the shipped ares.yaml loads with runtime
// kubernetes and reads its policies where the Deployment mounts the ConfigMap; the
// ClusterRole grants exactly the verbs ARES uses (docs/kubernetes.md) and nothing on Secrets.
func TestKubernetesManifests(t *testing.T) {
	var dep *appsv1.Deployment
	for _, o := range decodeManifests(t, "deployment.yaml") {
		if d, ok := o.(*appsv1.Deployment); ok {
			dep = d
		}
	}
	if dep == nil || dep.Spec.Template.Spec.ServiceAccountName != "ares" {
		t.Fatalf("deployment.yaml: no Deployment running as ServiceAccount ares: %+v", dep)
	}
	mounts := map[string]string{}
	for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
		if (m.Name == "policies" || m.Name == "config") && !m.ReadOnly {
			t.Errorf("volume %s mounted writable", m.Name)
		}
	}
	var cm *corev1.ConfigMap
	for _, o := range decodeManifests(t, "config.yaml") {
		cm, _ = o.(*corev1.ConfigMap)
	}
	if cm == nil || cm.Data["ares.yaml"] == "" {
		t.Fatal("config.yaml: no ConfigMap with ares.yaml")
	}
	p := filepath.Join(t.TempDir(), "ares.yaml")
	if err := os.WriteFile(p, []byte(cm.Data["ares.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(config.Options{Path: p, Env: []string{}})
	if err != nil {
		t.Fatalf("config.yaml's ares.yaml: %v", err)
	}
	if cfg.Runtime != "kubernetes" || cfg.Policy.Dir != mounts["policies"] || !cfg.Kubernetes.LeaderElection.Enabled {
		t.Errorf("runtime %q, policy.dir %q (policies mounted at %q), leader election %v", cfg.Runtime, cfg.Policy.Dir, mounts["policies"], cfg.Kubernetes.LeaderElection.Enabled)
	}

	want := map[string][]string{
		"/pods": {"list", "watch"}, "/pods/eviction": {"create"},
		"apps/deployments": {"list", "patch", "watch"}, "apps/statefulsets": {"list", "patch", "watch"},
		"apps/deployments/scale": {"get", "update"}, "apps/statefulsets/scale": {"get", "update"},
		"metrics.k8s.io/pods": {"list"}, "coordination.k8s.io/leases": {"create", "get", "update"},
	}
	got := map[string][]string{}
	for _, o := range decodeManifests(t, "rbac.yaml") {
		var rules []rbacv1.PolicyRule
		switch r := o.(type) {
		case *rbacv1.ClusterRole:
			rules = r.Rules
		case *rbacv1.Role:
			rules = r.Rules
		}
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					got[g+"/"+res] = append(got[g+"/"+res], r.Verbs...)
				}
			}
		}
	}
	for k := range got {
		slices.Sort(got[k])
		if strings.Contains(k, "secrets") || slices.Contains(got[k], "*") || slices.Contains(got[k], "delete") {
			t.Errorf("rbac.yaml grants %s %v", k, got[k])
		}
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("rbac.yaml: %s verbs %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rbac.yaml grants %v, want exactly %v", got, want)
	}
}
