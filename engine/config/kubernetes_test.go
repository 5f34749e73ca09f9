package config

import (
	"strings"
	"testing"
	"time"
)

func TestKubernetes(t *testing.T) {
	d := Default().Kubernetes
	if d.Metrics != "auto" || !d.Events || d.MaxReplicas != 4 || d.APITimeout != 10*time.Second || d.LeaderElection.Enabled ||
		d.LeaderElection.LeaseName != "ares" || d.LeaderElection.LeaseDuration != 15*time.Second {
		t.Errorf("defaults: %+v", d)
	}
	cfg, _, err := Load(Options{Path: write(t, "runtime: kubernetes\nkubernetes:\n  namespace: shop\n  labels: [team=a]\n  leader_election:\n    enabled: true\n"),
		Env: []string{"ARES_KUBERNETES_METRICS=on"}})
	if err != nil || cfg.Runtime != "kubernetes" || cfg.Kubernetes.Namespace != "shop" || cfg.Kubernetes.Labels[0] != "team=a" ||
		cfg.Kubernetes.Metrics != "on" || !cfg.Kubernetes.LeaderElection.Enabled {
		t.Fatalf("kubernetes: %+v, %v", cfg.Kubernetes, err)
	}
	// The section is checked only when it is the runtime.
	if _, _, err := Load(Options{Path: write(t, "kubernetes:\n  metrics: sometimes\n"), Env: []string{}}); err != nil {
		t.Errorf("kubernetes section under runtime docker: %v", err)
	}
	for _, c := range []struct{ yaml, want string }{
		{"kubernetes:\n  metrics: sometimes\n", `kubernetes.metrics: must be one of auto, on, off (got "sometimes")`},
		{"kubernetes:\n  api_timeout: 0s\n", "kubernetes.api_timeout: must be > 0"},
		{"kubernetes:\n  max_replicas: 0\n", "kubernetes.max_replicas: must be >= 1"},
		{"kubernetes:\n  labels: [novalue]\n", "kubernetes.labels[0]: must be key=value"},
		{"kubernetes:\n  leader_election:\n    enabled: true\n    lease_duration: 5s\n", "kubernetes.leader_election.lease_duration: must be longer than renew_deadline (10s)"},
		{"kubernetes:\n  leader_election:\n    enabled: true\n    retry_period: 9s\n", "kubernetes.leader_election.renew_deadline: must be longer than 1.2 × retry_period (9s)"},
		{"kubernetes:\n  leader_election:\n    enabled: true\n    lease_name: \"\"\n", "kubernetes.leader_election.lease_name: must not be empty"},
	} {
		_, _, err := Load(Options{Path: write(t, "runtime: kubernetes\n"+c.yaml), Env: []string{}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.yaml, err, c.want)
		}
	}
}
