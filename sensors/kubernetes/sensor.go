// Package kubernetes is the Kubernetes sensor (runtime: kubernetes). It fills the same section
// of the facts as the Docker sensor, under the same facts key ("docker"), so that policies do
// not change between runtimes: every pod labelled ares.enable=true is a replica, grouped into
// services by its ares.service label (else app.kubernetes.io/name, else the name of its
// Deployment or StatefulSet), with its state, exit code, OOM kill, restart count and health
// taken from its container statuses; desired_replicas comes from the Deployments and
// StatefulSets whose pod template carries the labels; CPU and memory come from the
// metrics.k8s.io API when it is served. docs/kubernetes.md has the mapping.
//
// The sensor reads from client-go informers (a watch per resource, not a list per tick), and
// Watch wakes the engine when a pod's state changes, as Docker events do.
package kubernetes

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ares-sre/ares/engine"
)

// Labels and annotations the sensor reads (the kubernetes actuator reads and writes the same).
const (
	LabelEnable  = "ares.enable"  // "true" on a pod (template): ARES may watch and heal it
	LabelService = "ares.service" // service name in the facts
	LabelAppName = "app.kubernetes.io/name"
	// AnnotationDesired on a Deployment or StatefulSet: its replicas without ARES's scaling
	// (the actuator writes it on the first scale_out).
	AnnotationDesired = "ares.desired_replicas"
	// Name is the sensor's facts key: the section it fills is the docker sensor's.
	Name = "docker"
	// Runtime is the value of services.<name>.runtime.
	Runtime = "kubernetes"
)

// Metrics modes (kubernetes.metrics).
const (
	MetricsAuto = "auto" // use metrics.k8s.io when the cluster serves it
	MetricsOn   = "on"   // expect it: the sensor fails while it is not served
	MetricsOff  = "off"
)

// Options configure a Sensor. The zero value is usable.
type Options struct {
	Namespace string   // "" watches every namespace
	Labels    []string // extra "key=value" labels a pod must carry, on top of ares.enable=true
	Timeout   time.Duration
	Metrics   string        // auto (default), on or off
	Resync    time.Duration // informer resync; default 10m
}

// Sensor reads pods and their workloads from informers. It is safe for concurrent use.
type Sensor struct {
	cs  kubernetes.Interface
	opt Options
	log *slog.Logger
	sel labels.Selector

	pods    corelisters.PodLister
	deploys appslisters.DeploymentLister
	sets    appslisters.StatefulSetLister
	synced  []cache.InformerSynced
	start   func(stop <-chan struct{})

	wake atomic.Pointer[func(string)]

	mu          sync.Mutex
	metricsAt   time.Time // when metricsOK was last asked of discovery
	metricsOK   bool
	metricsOnce bool
}

var (
	_ engine.Sensor = (*Sensor)(nil)
	_ engine.Waker  = (*Sensor)(nil)
)

// Selector is the label selector of the pods ARES watches.
func Selector(extra []string) (labels.Selector, error) {
	s := LabelEnable + "=true"
	for _, l := range extra {
		s += "," + l
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: labels %q: %w", extra, err)
	}
	return sel, nil
}

// New returns a sensor; Start must run before Collect returns anything.
func New(cs kubernetes.Interface, opt Options, log *slog.Logger) (*Sensor, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if opt.Resync <= 0 {
		opt.Resync = 10 * time.Minute
	}
	switch opt.Metrics {
	case "":
		opt.Metrics = MetricsAuto
	case MetricsAuto, MetricsOn, MetricsOff:
	default:
		return nil, fmt.Errorf("kubernetes: metrics %q: want auto, on or off", opt.Metrics)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sel, err := Selector(opt.Labels)
	if err != nil {
		return nil, err
	}
	s := &Sensor{cs: cs, opt: opt, log: log, sel: sel}
	podF := informers.NewSharedInformerFactoryWithOptions(cs, opt.Resync, informers.WithNamespace(opt.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel.String() }))
	appF := informers.NewSharedInformerFactoryWithOptions(cs, opt.Resync, informers.WithNamespace(opt.Namespace))
	pi := podF.Core().V1().Pods()
	di := appF.Apps().V1().Deployments()
	si := appF.Apps().V1().StatefulSets()
	s.pods, s.deploys, s.sets = pi.Lister(), di.Lister(), si.Lister()
	if _, err := pi.Informer().AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial {
				s.poke("event:pod:added")
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Pod)
			n, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 {
				return
			}
			if reason := changed(o, n); reason != "" {
				s.poke(reason)
			}
		},
		DeleteFunc: func(any) { s.poke("event:pod:deleted") },
	}); err != nil {
		return nil, fmt.Errorf("kubernetes: pod informer: %w", err)
	}
	s.synced = []cache.InformerSynced{pi.Informer().HasSynced, di.Informer().HasSynced, si.Informer().HasSynced}
	s.start = func(stop <-chan struct{}) {
		podF.Start(stop)
		appF.Start(stop)
	}
	return s, nil
}

// Start runs the informers until ctx ends and waits (at most the sensor's timeout, at least
// 30s) for their first list; an error means they have not synced yet (they keep trying, and
// Collect fails until they have).
func (s *Sensor) Start(ctx context.Context) error {
	s.start(ctx.Done())
	wctx, cancel := context.WithTimeout(ctx, max(s.opt.Timeout, 30*time.Second))
	defer cancel()
	if !cache.WaitForCacheSync(wctx.Done(), s.synced...) {
		return fmt.Errorf("kubernetes: informers not synced (can ARES list and watch pods, deployments and statefulsets?)")
	}
	return nil
}

// Name is "docker": the kubernetes sensor vouches for the replicas section, like the docker sensor.
func (s *Sensor) Name() string { return Name }

// Watch hands the engine's wake function to the informers' handlers and blocks until ctx ends.
func (s *Sensor) Watch(ctx context.Context, wake func(reason string)) error {
	s.wake.Store(&wake)
	<-ctx.Done()
	s.wake.Store(nil)
	return nil
}

func (s *Sensor) poke(reason string) {
	if w := s.wake.Load(); w != nil {
		(*w)(reason)
	}
}

// changed is "event:pod:<state>" when a pod's replica facts changed, else "".
func changed(o, n *corev1.Pod) string {
	a, b := Replica(o, time.Time{}), Replica(n, time.Time{})
	if a.State == b.State && a.Health == b.Health && a.OOMKilled == b.OOMKilled && a.RestartCount == b.RestartCount &&
		(o.DeletionTimestamp == nil) == (n.DeletionTimestamp == nil) {
		return ""
	}
	if b.Health == "unhealthy" {
		return "event:pod:unhealthy"
	}
	return "event:pod:" + b.State
}

// Workload is a Deployment or StatefulSet whose pod template carries the watched labels.
type Workload struct {
	Kind, Namespace, Name string
	Replicas              int // spec.replicas
	Desired               int // replicas without ARES's scaling (annotation), else Replicas
}

// Collect fills f.Services from the informers' caches and, when served, metrics.k8s.io.
func (s *Sensor) Collect(ctx context.Context, f *engine.Facts) error {
	for _, ok := range s.synced {
		if !ok() {
			return fmt.Errorf("kubernetes: informers not synced yet")
		}
	}
	pods, err := s.pods.List(s.sel)
	if err != nil {
		return fmt.Errorf("kubernetes: list pods: %w", err)
	}
	work, err := s.workloads()
	if err != nil {
		return err
	}
	usage, err := s.metrics(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	bySvc := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue // on its way out; its controller counts it gone
		}
		bySvc[ServiceName(p.Labels, OwnerName(p))] = append(bySvc[ServiceName(p.Labels, OwnerName(p))], p)
	}
	for name := range work {
		if _, ok := bySvc[name]; !ok {
			bySvc[name] = nil // a workload with no pod left is a service with no replica
		}
	}
	for name, ps := range bySvc {
		Fill(f.Service(name), ps, work[name], usage, now)
	}
	return nil
}

func (s *Sensor) workloads() (map[string][]Workload, error) {
	out := map[string][]Workload{}
	ds, err := s.deploys.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list deployments: %w", err)
	}
	for _, d := range ds {
		if s.sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			n := ServiceName(d.Spec.Template.Labels, d.Name)
			out[n] = append(out[n], workload("Deployment", d.ObjectMeta, d.Spec.Replicas))
		}
	}
	ss, err := s.sets.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list statefulsets: %w", err)
	}
	for _, st := range ss {
		if s.sel.Matches(labels.Set(st.Spec.Template.Labels)) {
			n := ServiceName(st.Spec.Template.Labels, st.Name)
			out[n] = append(out[n], workload("StatefulSet", st.ObjectMeta, st.Spec.Replicas))
		}
	}
	return out, nil
}

func workload(kind string, m metav1.ObjectMeta, replicas *int32) Workload {
	w := Workload{Kind: kind, Namespace: m.Namespace, Name: m.Name, Replicas: 1}
	if replicas != nil {
		w.Replicas = int(*replicas)
	}
	w.Desired = w.Replicas
	if v, err := strconv.Atoi(m.Annotations[AnnotationDesired]); err == nil && v > 0 && v < w.Replicas {
		w.Desired = v
	}
	return w
}

// ServiceName is the service a pod (or pod template) with these labels belongs to: its
// ares.service label, else app.kubernetes.io/name, else fallback (its workload's name).
func ServiceName(l map[string]string, fallback string) string {
	if n := l[LabelService]; n != "" {
		return n
	}
	if n := l[LabelAppName]; n != "" {
		return n
	}
	return fallback
}

// OwnerName is the name of the Deployment or StatefulSet that owns p (a ReplicaSet's name less
// its pod-template-hash suffix), else the pod's own name.
func OwnerName(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if o.Kind == "ReplicaSet" {
			if h := p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" {
				return strings.TrimSuffix(o.Name, "-"+h)
			}
		}
		return o.Name
	}
	return p.Name
}

// Usage is one pod's CPU (millicores) and memory (bytes) from metrics.k8s.io.
type Usage struct {
	MilliCPU int64
	MemBytes int64
}

// Fill turns one service's pods and workloads into the facts' service section (exported for
// tests and benchmarks that build synthetic clusters). usage is keyed "namespace/pod"; nil
// when no metrics are read.
func Fill(out *engine.Service, pods []*corev1.Pod, work []Workload, usage map[string]Usage, now time.Time) {
	out.Runtime = Runtime
	pods = slices.Clone(pods)
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { // oldest first: the newest are the scaled ones
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	desired, spec := 0, 0
	for _, w := range work {
		desired += w.Desired
		spec += w.Replicas
	}
	if len(work) == 0 { // bare pods: what runs is what is wanted
		desired, spec = len(pods), len(pods)
	}
	for i, p := range pods {
		r := Replica(p, now)
		if u, ok := usage[p.Namespace+"/"+p.Name]; ok && r.State == "running" {
			r.CPUPercent = float64(u.MilliCPU) / 10 // 1000m = one core = 100%
			r.MemBytes = u.MemBytes
			if r.MemLimitBytes > 0 {
				r.MemPercent = float64(r.MemBytes) / float64(r.MemLimitBytes) * 100
			}
		}
		r.Scaled = spec > desired && i >= desired
		out.Replicas = append(out.Replicas, r)
	}
	out.DesiredReplicas = max(desired, 1)
}

// Replica maps a pod onto a replica: one replica per pod, its state the worst of its
// containers'. now decides whether a not-yet-ready container is still starting (zero: never).
func Replica(p *corev1.Pod, now time.Time) engine.Replica {
	r := engine.Replica{ID: string(p.UID), Name: p.Name, State: "created", Health: "none", Node: p.Spec.NodeName}
	probes := map[string]*corev1.Probe{}
	var limit int64
	limited := len(p.Spec.Containers) > 0
	for _, c := range p.Spec.Containers {
		if c.ReadinessProbe != nil {
			probes[c.Name] = c.ReadinessProbe
		}
		if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			limit += m.Value()
		} else {
			limited = false
		}
	}
	if limited {
		r.MemLimitBytes = limit
	}
	exited := false
	exit := func(t *corev1.ContainerStateTerminated, why string) {
		if exited && r.ExitCode != 0 {
			return // the first failing container tells
		}
		exited = true
		r.ExitCode = int(t.ExitCode)
		r.OOMKilled = t.Reason == "OOMKilled"
		r.Error = strings.TrimSpace(why + " " + t.Reason + " (exit code " + strconv.Itoa(int(t.ExitCode)) + ")")
	}
	running, waiting := 0, ""
	unready, starting, probed := false, false, false
	for _, cs := range p.Status.ContainerStatuses {
		r.RestartCount += int(cs.RestartCount)
		switch {
		case cs.State.Terminated != nil:
			exit(cs.State.Terminated, "")
		case cs.State.Waiting != nil:
			w := cs.State.Waiting
			if last := cs.LastTerminationState.Terminated; last != nil && (w.Reason == "CrashLoopBackOff" || w.Reason == "") {
				exit(last, w.Reason+":")
			} else if waiting == "" {
				waiting = w.Reason
			}
		case cs.State.Running != nil:
			running++
			pr, ok := probes[cs.Name]
			if !ok {
				continue
			}
			probed = true
			if cs.Ready {
				continue
			}
			if (cs.Started != nil && !*cs.Started) || inGrace(pr, cs.State.Running.StartedAt.Time, now) {
				starting = true
			} else {
				unready = true
			}
		}
	}
	switch {
	case exited || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
		r.State = "exited"
		if r.Error == "" {
			r.Error = strings.TrimSpace(p.Status.Reason + " " + p.Status.Message)
		}
	case running > 0 && running == len(p.Spec.Containers) && p.Status.Phase == corev1.PodRunning:
		r.State = "running"
		switch {
		case !probed:
		case unready:
			r.Health = "unhealthy"
		case starting:
			r.Health = "starting"
		default:
			r.Health = "healthy"
		}
	default:
		r.Error = waiting // ContainerCreating, ImagePullBackOff, ...
	}
	return r
}

// inGrace: a container started less than the readiness probe's initial delay plus its
// failure threshold of periods ago may not be ready yet without being unhealthy.
func inGrace(p *corev1.Probe, started, now time.Time) bool {
	if now.IsZero() || started.IsZero() {
		return false
	}
	period, fails := p.PeriodSeconds, p.FailureThreshold
	if period <= 0 {
		period = 10
	}
	if fails <= 0 {
		fails = 3
	}
	grace := time.Duration(p.InitialDelaySeconds+period*fails) * time.Second
	return now.Sub(started) < grace
}

// metrics reads pod usage from metrics.k8s.io, or returns nil when it is off or (auto) not
// served.
func (s *Sensor) metrics(ctx context.Context) (map[string]Usage, error) {
	if s.opt.Metrics == MetricsOff {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	if !s.metricsServed(ctx) {
		if s.opt.Metrics == MetricsOn {
			return nil, fmt.Errorf("kubernetes: metrics.k8s.io is not served (kubernetes.metrics: on; install metrics-server, or set auto)")
		}
		return nil, nil
	}
	path := "/apis/metrics.k8s.io/v1beta1/pods"
	if s.opt.Namespace != "" {
		path = "/apis/metrics.k8s.io/v1beta1/namespaces/" + s.opt.Namespace + "/pods"
	}
	raw, err := s.cs.Discovery().RESTClient().Get().AbsPath(path).Param("labelSelector", s.sel.String()).DoRaw(ctx)
	if err != nil {
		if apierrors.IsNotFound(err) { // unregistered since discovery said otherwise
			s.mu.Lock()
			s.metricsAt = time.Time{}
			s.mu.Unlock()
		}
		return nil, fmt.Errorf("kubernetes: metrics.k8s.io pods: %w", err)
	}
	return ParseUsage(raw)
}

// ParseUsage reads a metrics.k8s.io PodMetricsList into usage keyed "namespace/pod".
func ParseUsage(raw []byte) (map[string]Usage, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Containers []struct {
				Usage map[string]resource.Quantity `json:"usage"`
			} `json:"containers"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("kubernetes: metrics.k8s.io pods: %w", err)
	}
	out := make(map[string]Usage, len(list.Items))
	for _, it := range list.Items {
		var u Usage
		for _, c := range it.Containers {
			if q, ok := c.Usage["cpu"]; ok {
				u.MilliCPU += q.MilliValue()
			}
			if q, ok := c.Usage["memory"]; ok {
				u.MemBytes += q.Value()
			}
		}
		out[it.Metadata.Namespace+"/"+it.Metadata.Name] = u
	}
	return out, nil
}

// metricsServed asks discovery, at most once a minute, whether metrics.k8s.io/v1beta1 is served.
func (s *Sensor) metricsServed(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metricsOnce && time.Since(s.metricsAt) < time.Minute {
		return s.metricsOK
	}
	err := s.cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1").Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() != nil {
		return s.metricsOK // no answer in time: keep what was known, ask again next tick
	}
	ok := err == nil
	if ok != s.metricsOK || !s.metricsOnce {
		s.log.Info("kubernetes: metrics.k8s.io", "served", ok)
	}
	s.metricsOK, s.metricsAt, s.metricsOnce = ok, time.Now(), true
	return ok
}
