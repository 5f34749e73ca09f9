package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseOptions configure an Elector.
type LeaseOptions struct {
	Namespace string // of the Lease; required
	Name      string // of the Lease; default "ares"
	Identity  string // this instance; required (the pod's name)
	// LeaseDuration is how long a lease holds without renewal; RenewDeadline how long the
	// leader keeps trying to renew before it steps down; RetryPeriod the time between tries.
	// Defaults 15s, 10s, 2s (client-go's recommendations).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *slog.Logger
}

// Elector takes part in a leader election through a coordination.k8s.io Lease, so that of
// several ARES replicas in a cluster only one acts (engine/leader.Gate holds the others
// back). It implements engine/leader.Leadership and the dashboard's LeaderSource.
type Elector struct {
	opt LeaseOptions
	le  *leaderelection.LeaderElector

	mu     sync.Mutex
	term   context.Context // this instance's current term; nil when not leading
	leader string          // last leader observed
}

// NewElector returns an elector; Run takes part in the election.
func NewElector(cs kubernetes.Interface, opt LeaseOptions) (*Elector, error) {
	if opt.Name == "" {
		opt.Name = "ares"
	}
	if opt.Namespace == "" || opt.Identity == "" {
		return nil, fmt.Errorf("kubernetes: lease: namespace and identity are required (got %q, %q)", opt.Namespace, opt.Identity)
	}
	if opt.LeaseDuration <= 0 {
		opt.LeaseDuration = 15 * time.Second
	}
	if opt.RenewDeadline <= 0 {
		opt.RenewDeadline = 10 * time.Second
	}
	if opt.RetryPeriod <= 0 {
		opt.RetryPeriod = 2 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	e := &Elector{opt: opt}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metaName(opt.Namespace, opt.Name),
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: opt.Identity},
		},
		LeaseDuration:   opt.LeaseDuration,
		RenewDeadline:   opt.RenewDeadline,
		RetryPeriod:     opt.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            opt.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				e.mu.Lock()
				e.term, e.leader = ctx, opt.Identity
				e.mu.Unlock()
				opt.Log.Info("leading: this instance acts", "lease", opt.Namespace+"/"+opt.Name)
			},
			OnStoppedLeading: func() {
				e.mu.Lock()
				e.term = nil
				e.mu.Unlock()
				opt.Log.Warn("no longer leading: actions held back", "lease", opt.Namespace+"/"+opt.Name)
			},
			OnNewLeader: func(id string) {
				e.mu.Lock()
				e.leader = id
				e.mu.Unlock()
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: lease: %w", err)
	}
	e.le = le
	return e, nil
}

// Run takes part in the election until ctx ends, standing again after each lost term; the
// lease is released on the way out.
func (e *Elector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		e.le.Run(ctx) // returns when the term ends
		select {
		case <-ctx.Done():
		case <-time.After(e.opt.RetryPeriod):
		}
	}
	return nil
}

// Instance is this instance's identity.
func (e *Elector) Instance() string { return e.opt.Identity }

// Leading reports whether this instance holds the lease now.
func (e *Elector) Leading() bool {
	_, ok := e.Term()
	return ok
}

// Leader is the holder last observed, "" when none.
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Term is a context that ends with this instance's term; false when it does not lead.
func (e *Elector) Term() (context.Context, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil || e.term.Err() != nil || !e.le.IsLeader() {
		return nil, false
	}
	return e.term, true
}

func metaName(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
