package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/moby/moby/client"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	kubeact "github.com/ares-sre/ares/actuators/kubernetes"
	"github.com/ares-sre/ares/dashboard"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/engine/leader"
	kubesensor "github.com/ares-sre/ares/sensors/kubernetes"
)

// runtimeKubernetes is the value of `runtime` that heals the pods of a Kubernetes cluster
// (docs/kubernetes.md).
const runtimeKubernetes = "kubernetes"

// haElector is what haRun needs of an election: engine/leader's PostgreSQL lock, or the
// Kubernetes Lease.
type haElector interface {
	leader.Leadership
	dashboard.LeaderSource
	Run(ctx context.Context) error
}

// kubeRuntime is the sensor, actuator and (optional) Lease election of runtime: kubernetes.
type kubeRuntime struct {
	host    string
	sensor  *kubesensor.Sensor
	act     *kubeact.Actuator
	elector *kubeact.Elector // nil without kubernetes.leader_election
	events  bool
}

// kubeRESTConfig is the client configuration: kubernetes.kubeconfig, else in-cluster, else
// $KUBECONFIG or ~/.kube/config.
func kubeRESTConfig(c config.Kubernetes) (*rest.Config, error) {
	if c.Kubeconfig == "" && c.Context == "" {
		if rc, err := rest.InClusterConfig(); err == nil {
			return rc, nil
		} else if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("kubernetes: in-cluster config: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes.kubeconfig: %w (not in a cluster either)", err)
	}
	return rc, nil
}

// podNamespace is the namespace ARES's own pod runs in: POD_NAMESPACE, else its service
// account's, else "default".
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// newKubeRuntime connects to the cluster and starts the sensor's informers (until ctx ends).
func newKubeRuntime(ctx context.Context, cfg config.Config, log *slog.Logger) (*kubeRuntime, error) {
	if cfg.HA.Enabled && cfg.Kubernetes.LeaderElection.Enabled {
		return nil, errors.New("ha.enabled and kubernetes.leader_election.enabled: choose one election")
	}
	k := cfg.Kubernetes
	rc, err := kubeRESTConfig(k)
	if err != nil {
		return nil, err
	}
	// No client-wide timeout: it would cut the informers' watches. Each call of the sensor and
	// the actuator is bounded by a context (kubernetes.api_timeout), the Lease by its deadlines.
	rc.UserAgent = "ares/" + version
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	s, err := kubesensor.New(cs, kubesensor.Options{Namespace: k.Namespace, Labels: k.Labels, Timeout: k.APITimeout, Metrics: k.Metrics},
		log.With("sensor", "kubernetes"))
	if err != nil {
		return nil, err
	}
	a, err := kubeact.New(cs, kubeact.Options{Namespace: k.Namespace, Labels: k.Labels, MaxReplicas: k.MaxReplicas, Timeout: k.APITimeout},
		log.With("actuator", "kubernetes"))
	if err != nil {
		return nil, err
	}
	kr := &kubeRuntime{host: rc.Host, sensor: s, act: a, events: k.Events}
	if le := k.LeaderElection; le.Enabled {
		ns, id := le.Namespace, le.Identity
		if ns == "" {
			ns = podNamespace()
		}
		if id == "" {
			if id, err = os.Hostname(); err != nil {
				return nil, fmt.Errorf("kubernetes.leader_election.identity: empty and no hostname: %w", err)
			}
		}
		kr.elector, err = kubeact.NewElector(cs, kubeact.LeaseOptions{Namespace: ns, Name: le.LeaseName, Identity: id,
			LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod, Log: log.With("component", "lease")})
		if err != nil {
			return nil, err
		}
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	log.Info("kubernetes runtime", "api", rc.Host, "namespace", k.Namespace, "leader_election", k.LeaderElection.Enabled)
	return kr, nil
}

// engineSensor is the sensor as the engine gets it: without Watch when events are off.
func (k *kubeRuntime) engineSensor() engine.Sensor {
	if !k.events {
		return noWatch{k.sensor}
	}
	return k.sensor
}

// ha is the Lease election's gate, in the shape ha.enabled has; nil without leader election.
func (k *kubeRuntime) ha(gov *governor.Governor, log *slog.Logger) *haRun {
	if k == nil || k.elector == nil {
		return nil
	}
	return &haRun{el: k.elector, gate: leader.NewGate(gov, k.elector), log: log}
}

// fleetHost is what ARES talks to, for the start-up log line.
func fleetHost(cli *client.Client, kube *kubeRuntime) string {
	if kube != nil {
		return kube.host
	}
	return cli.DaemonHost()
}

// reconcileFleet decides an interrupted action's outcome from the pods under runtime:
// kubernetes, else from the containers.
func reconcileFleet(ctx context.Context, cli *client.Client, kube *kubeRuntime, labels []string, in journal.Intent) engine.Outcome {
	if kube != nil {
		return kube.act.Reconcile(ctx, in.Action)
	}
	return reconcileOutcome(ctx, cli, labels, in)
}
