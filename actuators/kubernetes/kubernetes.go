// Package kubernetes is the actuator for Kubernetes (runtime: kubernetes). It maps the
// decisions the policies make for Docker onto the cluster's own operations, so that the
// controllers, not ARES, create and place pods:
//
//   - restart or recycle of a replica (a pod): an eviction through the Eviction API, so that
//     PodDisruptionBudgets are honoured; the pod's ReplicaSet or StatefulSet replaces it. A
//     refusal (a budget, RBAC) is an error the journal records, not a retry loop: the
//     governor's back-off spaces the next try. A pod no controller owns is never evicted
//     (nothing would replace it);
//   - restart of a service: a rollout restart of its Deployments and StatefulSets (the pod
//     template annotation kubectl.kubernetes.io/restartedAt), carried out with the workload's
//     own rolling-update strategy;
//   - scale_out / scale_in: the workload's scale subresource, one replica at a time, between
//     the replicas it had before ARES scaled it (annotation ares.desired_replicas, written on
//     the first scale_out and removed when scaled back) and the bound (annotation
//     ares.max_replicas on the workload, else Options.MaxReplicas).
//
// Only pods labelled ares.enable=true (and Options.Labels), and workloads whose pod template
// carries those labels, are touched. Every Act reads them again first; every API call has a
// timeout.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/ares-sre/ares/engine"
	k8ssensor "github.com/ares-sre/ares/sensors/kubernetes"
)

// Labels and annotations the actuator reads and writes (the kubernetes sensor reads the same).
const (
	LabelEnable          = "ares.enable"
	LabelService         = "ares.service"
	LabelAppName         = "app.kubernetes.io/name"
	AnnotationDesired    = "ares.desired_replicas"
	AnnotationMax        = "ares.max_replicas"
	AnnotationRestarted  = "kubectl.kubernetes.io/restartedAt"
	fieldManager         = "ares"
	defaultTimeout       = 10 * time.Second
	defaultMaxReplicas   = 4
	kindDeployment       = "Deployment"
	kindStatefulSet      = "StatefulSet"
	podTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey
)

// ErrRefused marks an action the actuator will not carry out whatever the state.
var ErrRefused = errors.New("refused")

// ErrDisruptionBudget marks an eviction a PodDisruptionBudget forbade (HTTP 429).
var ErrDisruptionBudget = errors.New("refused by a PodDisruptionBudget")

// Options configure an Actuator. The zero value is usable.
type Options struct {
	Namespace   string   // "" acts in every namespace
	Labels      []string // extra "key=value" labels a pod must carry on top of ares.enable=true
	MaxReplicas int      // scale_out bound without an ares.max_replicas annotation; default 4
	Timeout     time.Duration
}

// Actuator carries out actions on pods and workloads. It keeps no state and is safe for
// concurrent use.
type Actuator struct {
	cs  kubernetes.Interface
	opt Options
	sel labels.Selector
	log *slog.Logger
	now func() time.Time
}

var _ engine.Actuator = (*Actuator)(nil)

// New returns an actuator that talks to the cluster through cs.
func New(cs kubernetes.Interface, opt Options, log *slog.Logger) (*Actuator, error) {
	if opt.MaxReplicas <= 0 {
		opt.MaxReplicas = defaultMaxReplicas
	}
	if opt.Timeout <= 0 {
		opt.Timeout = defaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := LabelEnable + "=true"
	for _, l := range opt.Labels {
		s += "," + l
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: labels %q: %w", opt.Labels, err)
	}
	return &Actuator{cs: cs, opt: opt, sel: sel, log: log, now: time.Now}, nil
}

// Name is "kubernetes".
func (a *Actuator) Name() string { return "kubernetes" }

// Act carries out act on the service act.Service names.
func (a *Actuator) Act(ctx context.Context, act engine.Action) (engine.Outcome, error) {
	var detail string
	var err error
	switch {
	case act.Action == engine.ActRestart && act.Replica == "":
		detail, err = a.rolloutRestart(ctx, act.Service)
	case act.Action == engine.ActRestart || act.Action == engine.ActRecycle:
		if act.Replica == "" {
			return engine.Outcome{}, fmt.Errorf("kubernetes: recycle %s: %w: needs a replica", act.Service, ErrRefused)
		}
		detail, err = a.evict(ctx, act)
	case act.Action == engine.ActScaleOut:
		detail, err = a.scale(ctx, act.Service, +1)
	case act.Action == engine.ActScaleIn:
		detail, err = a.scale(ctx, act.Service, -1)
	default:
		return engine.Outcome{}, fmt.Errorf("kubernetes: %w: action %q", ErrRefused, act.Action)
	}
	if err != nil {
		return engine.Outcome{}, err
	}
	return engine.Outcome{Result: engine.ResultOK, Detail: detail}, nil
}

// call runs f with the per-call timeout.
func (a *Actuator) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, a.opt.Timeout)
	defer cancel()
	return f(ctx)
}

// evict evicts the replica's pod, unless it is already gone or replaced.
func (a *Actuator) evict(ctx context.Context, act engine.Action) (string, error) {
	var list *corev1.PodList
	err := a.call(ctx, func(ctx context.Context) (err error) {
		list, err = a.cs.CoreV1().Pods(a.opt.Namespace).List(ctx, metav1.ListOptions{LabelSelector: a.sel.String()})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("kubernetes: list pods: %w", err)
	}
	var pod *corev1.Pod
	for i := range list.Items {
		p := &list.Items[i]
		if p.Name == act.Replica && k8ssensor.ServiceName(p.Labels, k8ssensor.OwnerName(p)) == act.Service {
			pod = p
			break
		}
	}
	switch {
	case pod == nil:
		return fmt.Sprintf("%s: pod %s already gone", act.Action, act.Replica), nil
	case act.Sensed != nil && act.Sensed.ID != "" && act.Sensed.ID != string(pod.UID):
		return fmt.Sprintf("%s: pod %s already replaced (uid %s, was %s)", act.Action, act.Replica, pod.UID, act.Sensed.ID), nil
	case pod.DeletionTimestamp != nil:
		return fmt.Sprintf("%s: pod %s already terminating", act.Action, act.Replica), nil
	case metav1.GetControllerOf(pod) == nil:
		return "", fmt.Errorf("kubernetes: %s %s/%s: %w: no controller owns the pod, nothing would replace it", act.Action, pod.Namespace, pod.Name, ErrRefused)
	}
	ev := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}},
	}
	err = a.call(ctx, func(ctx context.Context) error { return a.cs.PolicyV1().Evictions(pod.Namespace).Evict(ctx, ev) })
	switch {
	case err == nil:
	case apierrors.IsTooManyRequests(err):
		return "", fmt.Errorf("kubernetes: evict %s/%s: %w: %v", pod.Namespace, pod.Name, ErrDisruptionBudget, apiMessage(err))
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return fmt.Sprintf("%s: pod %s already gone or replaced", act.Action, act.Replica), nil
	default:
		return "", fmt.Errorf("kubernetes: evict %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return fmt.Sprintf("%s: pod %s/%s evicted; %s %s replaces it", act.Action, pod.Namespace, pod.Name,
		metav1.GetControllerOf(pod).Kind, metav1.GetControllerOf(pod).Name), nil
}

func apiMessage(err error) string {
	var s apierrors.APIStatus
	if errors.As(err, &s) && s.Status().Message != "" {
		return s.Status().Message
	}
	return err.Error()
}

// workload is a Deployment or StatefulSet of a service.
type workload struct {
	kind, ns, name string
	annotations    map[string]string
}

func (w workload) String() string { return strings.ToLower(w.kind) + "/" + w.ns + "/" + w.name }

// workloads lists the Deployments and StatefulSets whose pod template makes them the service's.
func (a *Actuator) workloads(ctx context.Context, service string) ([]workload, error) {
	var ds *appsv1.DeploymentList
	var ss *appsv1.StatefulSetList
	err := a.call(ctx, func(ctx context.Context) (err error) {
		ds, err = a.cs.AppsV1().Deployments(a.opt.Namespace).List(ctx, metav1.ListOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list deployments: %w", err)
	}
	err = a.call(ctx, func(ctx context.Context) (err error) {
		ss, err = a.cs.AppsV1().StatefulSets(a.opt.Namespace).List(ctx, metav1.ListOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list statefulsets: %w", err)
	}
	var out []workload
	for _, d := range ds.Items {
		if a.sel.Matches(labels.Set(d.Spec.Template.Labels)) && k8ssensor.ServiceName(d.Spec.Template.Labels, d.Name) == service {
			out = append(out, workload{kindDeployment, d.Namespace, d.Name, d.Annotations})
		}
	}
	for _, s := range ss.Items {
		if a.sel.Matches(labels.Set(s.Spec.Template.Labels)) && k8ssensor.ServiceName(s.Spec.Template.Labels, s.Name) == service {
			out = append(out, workload{kindStatefulSet, s.Namespace, s.Name, s.Annotations})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kubernetes: service %s: %w: no Deployment or StatefulSet with a pod template labelled %s", service, ErrRefused, a.sel)
	}
	return out, nil
}

func (a *Actuator) patch(ctx context.Context, w workload, pt types.PatchType, body []byte) error {
	return a.call(ctx, func(ctx context.Context) error {
		var err error
		opts := metav1.PatchOptions{FieldManager: fieldManager}
		if w.kind == kindDeployment {
			_, err = a.cs.AppsV1().Deployments(w.ns).Patch(ctx, w.name, pt, body, opts)
		} else {
			_, err = a.cs.AppsV1().StatefulSets(w.ns).Patch(ctx, w.name, pt, body, opts)
		}
		return err
	})
}

// rolloutRestart stamps the pod template of each of the service's workloads, as
// `kubectl rollout restart` does; the controllers then replace the pods by their strategy.
func (a *Actuator) rolloutRestart(ctx context.Context, service string) (string, error) {
	ws, err := a.workloads(ctx, service)
	if err != nil {
		return "", err
	}
	stamp := a.now().UTC().Format(time.RFC3339)
	body := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, AnnotationRestarted, stamp)
	var done []string
	for _, w := range ws {
		if err := a.patch(ctx, w, types.StrategicMergePatchType, body); err != nil {
			return "", fmt.Errorf("kubernetes: rollout restart %s: %w (done: %v)", w, err, done)
		}
		done = append(done, w.String())
	}
	return fmt.Sprintf("restart: rollout restart of %s (restartedAt %s)", strings.Join(done, ", "), stamp), nil
}

// scale moves the replica count by delta within [ares.desired_replicas, max replicas].
func (a *Actuator) scale(ctx context.Context, service string, delta int) (string, error) {
	ws, err := a.workloads(ctx, service)
	if err != nil {
		return "", err
	}
	if len(ws) != 1 {
		return "", fmt.Errorf("kubernetes: scale %s: %w: %d workloads serve it (%v); scale one by labelling it apart", service, ErrRefused, len(ws), ws)
	}
	w := ws[0]
	var sc *autoscalingv1.Scale
	err = a.call(ctx, func(ctx context.Context) (err error) {
		if w.kind == kindDeployment {
			sc, err = a.cs.AppsV1().Deployments(w.ns).GetScale(ctx, w.name, metav1.GetOptions{})
		} else {
			sc, err = a.cs.AppsV1().StatefulSets(w.ns).GetScale(ctx, w.name, metav1.GetOptions{})
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("kubernetes: scale of %s: %w", w, err)
	}
	cur := int(sc.Spec.Replicas)
	base := cur
	_, annotated := w.annotations[AnnotationDesired]
	if v, err := strconv.Atoi(w.annotations[AnnotationDesired]); err == nil && v > 0 {
		base = v
	}
	bound := a.opt.MaxReplicas
	if v, err := strconv.Atoi(w.annotations[AnnotationMax]); err == nil && v > 0 {
		bound = v
	}
	next := cur + delta
	switch {
	case delta > 0 && next > bound:
		return "", fmt.Errorf("kubernetes: scale_out %s: %w: at its bound of %d replicas", w, ErrRefused, bound)
	case delta < 0 && (next < base || next < 1):
		return "", fmt.Errorf("kubernetes: scale_in %s: %w: at its %d replicas without ARES's scaling", w, ErrRefused, base)
	}
	sc.Spec.Replicas = int32(next)                      //nolint:gosec // bounded by max replicas above
	err = a.call(ctx, func(ctx context.Context) error { // carries the read resourceVersion: a concurrent change conflicts
		var err error
		opts := metav1.UpdateOptions{FieldManager: fieldManager}
		if w.kind == kindDeployment {
			_, err = a.cs.AppsV1().Deployments(w.ns).UpdateScale(ctx, w.name, sc, opts)
		} else {
			_, err = a.cs.AppsV1().StatefulSets(w.ns).UpdateScale(ctx, w.name, sc, opts)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("kubernetes: scale %s to %d: %w", w, next, err)
	}
	if delta > 0 && !annotated { // remember what the workload runs without ARES
		body := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, AnnotationDesired, strconv.Itoa(cur))
		if err := a.patch(ctx, w, types.MergePatchType, body); err != nil {
			return "", fmt.Errorf("kubernetes: scaled %s to %d, but not annotated %s=%d: %w", w, next, AnnotationDesired, cur, err)
		}
	}
	if delta < 0 && next == base && annotated { // back where it was: a person's own scaling rules again
		body := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, AnnotationDesired)
		if err := a.patch(ctx, w, types.MergePatchType, body); err != nil {
			a.log.Warn("kubernetes: annotation not removed", "workload", w.String(), "err", err)
		}
	}
	return fmt.Sprintf("%s replicas %d → %d", w, cur, next), nil
}

// Reconcile decides the outcome of an action that a restart of ARES interrupted, from the
// cluster now: ok when its pod was replaced, or when the pods of its service (of the replica's
// service for a replaced pod) all run and none is unready; an error otherwise.
func (a *Actuator) Reconcile(ctx context.Context, act engine.Action) engine.Outcome {
	const why = "interrupted by a restart of ARES; "
	var list *corev1.PodList
	err := a.call(ctx, func(ctx context.Context) (err error) {
		list, err = a.cs.CoreV1().Pods(a.opt.Namespace).List(ctx, metav1.ListOptions{LabelSelector: a.sel.String()})
		return err
	})
	if err != nil {
		return engine.Outcome{Result: engine.ResultError, Error: why + "state unknown: " + err.Error()}
	}
	seen := 0
	for i := range list.Items {
		p := &list.Items[i]
		if k8ssensor.ServiceName(p.Labels, k8ssensor.OwnerName(p)) != act.Service || p.DeletionTimestamp != nil {
			continue
		}
		if act.Replica != "" && p.Name == act.Replica && act.Sensed != nil && act.Sensed.ID != "" && string(p.UID) != act.Sensed.ID {
			continue // a StatefulSet's replacement under the same name: judged with the others
		}
		seen++
		if !podUp(p) {
			return engine.Outcome{Result: engine.ResultError, Error: fmt.Sprintf("%s%s/%s is %s now", why, p.Namespace, p.Name, p.Status.Phase)}
		}
	}
	if seen == 0 {
		return engine.Outcome{Result: engine.ResultError, Error: why + "no pod of the service found now"}
	}
	return engine.Outcome{Result: engine.ResultOK, Detail: why + "the service's pods run now"}
}

// podUp: running, every container running and ready.
func podUp(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready {
			return false
		}
	}
	return true
}
