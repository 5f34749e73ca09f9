// Package docker is the Docker sensor (facts name "docker"). It reports every container
// labelled ares.enable=true as a replica of its service, with state, health, exit code, OOM
// kill, restart count, CPU and memory.
//
// A tick never waits on the daemon's stats. The sensor keeps an in-memory cache of the
// containers: Collect lists the containers to catch drift and inspects only the new or changed
// ones (and all of them every Options.ResyncEvery lists), then reads CPU and memory
// from the containers' cgroup files. Where those are not readable (ARES in a container without
// the host's cgroup tree, or Options.Stats "stream"), Watch keeps one streaming stats connection
// per running container and Collect reads the latest sample it decoded.
//
// Watch follows Docker's events and updates the cache before it wakes the engine, so the tick
// a die, oom or health_status event triggers already sees the new state. While the event
// stream is live the cache is current, so Collect lists at most every Options.ListEvery: the
// tick an event triggers reads the cache and the cgroup files only and never waits on the
// daemon (which is busiest, cleaning up, right after a container dies).
package docker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// Labels the sensor reads.
const (
	LabelEnable  = "ares.enable"           // "true": ARES may watch and heal the container
	LabelService = "ares.service"          // service name; default the Compose service, then the name
	LabelDesired = "ares.desired_replicas" // the service's desired replica count
	LabelScaled  = "ares.scaled"           // "true": a replica ARES added with scale_out
	LabelPaused  = "ares.paused"           // "true": a person asked ARES to leave this replica alone
	labelCompose = "com.docker.compose.service"
)

// Stats modes.
const (
	StatsAuto   = "auto"   // cgroup files when readable for the container, else the stats stream
	StatsCgroup = "cgroup" // cgroup files only; CPU and memory are 0 where they are unreadable
	StatsStream = "stream" // Docker's streaming stats API only (needs Watch running)
)

const (
	inspectConcurrency = 8
	readBufSize        = 16 << 10
	tombstoneTTL       = time.Minute
)

// Options configure a Sensor. The zero value is usable.
type Options struct {
	CgroupRoot  string // default "/sys/fs/cgroup"
	Stats       string // StatsAuto (default), StatsCgroup or StatsStream
	ResyncEvery int    // re-inspect every container every N lists; default 10
	// ListEvery bounds how often Collect lists the containers while the event stream is live
	// (events keep the cache current in between); without events every Collect lists.
	// Default 5s.
	ListEvery time.Duration
	Timeout   time.Duration // per Docker API call; default 1s
	// Labels are extra "key=value" filters a container must match on top of ares.enable=true,
	// e.g. to share a host between ARES instances; tests use it to see only their containers.
	Labels []string
	// Own, when set, turns on operator-stop detection: a kill or stop event for a container
	// that Own does not expect (ARES did not announce it) marks the replica
	// stopped_by_operator until its next start. Nil: never marked.
	Own *engine.OwnActions
}

// Sensor is the Docker sensor. It is safe for concurrent use; Collect may run while Watch runs.
type Sensor struct {
	cli     *client.Client
	opt     Options
	log     *slog.Logger
	filters client.Filters
	kick    chan struct{} // 1-slot: the set of containers needing a stats stream may have changed

	streaming atomic.Int64 // stats stream goroutines alive, for tests

	collectMu sync.Mutex // serialises Collect; guards the fields below and entry.cpu*
	collects  int
	lists     int
	lastList  time.Time
	live      atomic.Bool // the event stream is subscribed and the cache synced from it
	scratch   []sample
	buf       []byte
	open      map[*cgroupFiles]*cgroupHandle // only Collect opens, reads and closes them

	mu   sync.Mutex // guards byID, gone and the entries' other fields
	byID map[string]*entry
	gone map[string]time.Time // destroyed container → when, so a late inspect cannot revive it
}

var (
	_ engine.Sensor = (*Sensor)(nil)
	_ engine.Waker  = (*Sensor)(nil)
)

// New returns a sensor reading from cli. An unknown opt.Stats is logged and treated as auto.
func New(cli *client.Client, opt Options, log *slog.Logger) *Sensor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sensor", "docker")
	if opt.CgroupRoot == "" {
		opt.CgroupRoot = "/sys/fs/cgroup"
	}
	switch opt.Stats {
	case StatsAuto, StatsCgroup, StatsStream:
	case "":
		opt.Stats = StatsAuto
	default:
		log.Error("unknown stats mode, using auto", "field", "stats", "value", opt.Stats)
		opt.Stats = StatsAuto
	}
	if opt.ResyncEvery <= 0 {
		opt.ResyncEvery = 10
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.ListEvery <= 0 {
		opt.ListEvery = 5 * time.Second
	}
	f := client.Filters{}.Add("label", LabelEnable+"=true")
	for _, l := range opt.Labels {
		f = f.Add("label", l)
	}
	return &Sensor{
		cli: cli, opt: opt, log: log, filters: f,
		kick: make(chan struct{}, 1),
		buf:  make([]byte, readBufSize),
		open: map[*cgroupFiles]*cgroupHandle{},
		byID: map[string]*entry{},
		gone: map[string]time.Time{},
	}
}

// Name is the facts key.
func (s *Sensor) Name() string { return "docker" }

// entry is the cache's view of one container.
type entry struct {
	// From events; guarded by Sensor.mu. A person stopped or killed the container (an event
	// Options.Own did not expect); cleared by its next start.
	operatorStop bool
	// From inspect; guarded by Sensor.mu.
	asOf     time.Time // when the inspect that produced these fields was sent
	id       string
	name     string
	service  string
	rawState string // the daemon's state, compared with list entries
	state    string
	health   string
	exitCode int
	oom      bool
	started  string // State.StartedAt: identifies one run of the container
	oomRun   string // the run an oom event was seen in; the daemon reports OOMKilled only at exit
	restarts int
	memLimit int64 // HostConfig.Memory; 0 when unlimited
	scaled   bool
	paused   bool
	desired  int // LabelDesired, 0 when absent or bad
	parent   string
	cg       *cgroupFiles // nil when not resolved or not readable
	cgTried  bool

	// From the stats stream; guarded by Sensor.mu.
	stream streamSample

	// The previous cgroup CPU reading; guarded by Sensor.collectMu.
	cpuCg *cgroupFiles
	cpuNs uint64
	cpuAt time.Time
}

type streamSample struct {
	ok       bool
	cpu      float64
	memBytes int64
}

// sample is an entry copied out of the cache for one Collect.
type sample struct {
	e       *entry
	service string
	desired int
	cg      *cgroupFiles
	stream  streamSample
	replica engine.Replica
}

// Collect fills facts.services with the labelled containers. It lists the containers (at most
// every Options.ListEvery while events are live), inspects the new or changed ones, and reads CPU and memory from the cgroup files or the
// latest streamed sample; it never waits on the daemon's stats.
func (s *Sensor) Collect(ctx context.Context, f *engine.Facts) error {
	s.collectMu.Lock()
	defer s.collectMu.Unlock()
	s.collects++
	if now := time.Now(); !s.live.Load() || now.Sub(s.lastList) >= s.opt.ListEvery {
		full := s.lists%s.opt.ResyncEvery == 0
		s.lists++
		if err := s.sync(ctx, full); err != nil {
			return err
		}
		s.lastList = now
	}
	samples := s.snapshot()
	for i := range samples {
		s.measure(&samples[i])
	}
	fill(f, samples)
	clear(s.scratch) // drop the entry pointers until the next collect
	for cg, h := range s.open {
		if h.used != s.collects { // stopped, removed or re-resolved
			h.close()
			delete(s.open, cg)
		}
	}
	return nil
}

// sync lists the labelled containers and brings the cache in line: it inspects containers
// that are new or whose state, health or name differ from the cache (all of them when full)
// and drops the ones that are gone.
func (s *Sensor) sync(ctx context.Context, full bool) error {
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	res, err := s.cli.ContainerList(lctx, client.ContainerListOptions{All: true, Filters: s.filters})
	cancel()
	if err != nil {
		return fmt.Errorf("docker: list: %w", err)
	}
	var todo []string
	removed := false
	s.mu.Lock()
	listed := make(map[string]struct{}, len(res.Items))
	for i := range res.Items {
		c := &res.Items[i]
		listed[c.ID] = struct{}{}
		e := s.byID[c.ID]
		if full || e == nil || (e.asOf.Before(start) && drifted(e, c)) {
			todo = append(todo, c.ID)
		}
	}
	for id, e := range s.byID {
		if _, ok := listed[id]; !ok && e.asOf.Before(start) {
			delete(s.byID, id)
			s.gone[id] = start
			removed = true
		}
	}
	for id, at := range s.gone {
		if time.Since(at) > tombstoneTTL {
			delete(s.gone, id)
		}
	}
	s.mu.Unlock()

	s.inspectAll(ctx, todo)
	if removed || len(todo) > 0 {
		s.kickStreams()
	}
	return nil
}

// drifted reports whether a list entry disagrees with the cache.
func drifted(e *entry, c *container.Summary) bool {
	name := ""
	if len(c.Names) > 0 {
		name = strings.TrimPrefix(c.Names[0], "/")
	}
	return string(c.State) != e.rawState || listHealth(c) != e.health || name != e.name
}

// listHealth is a list entry's health: the Health field (API ≥ 1.52) or the "(healthy)" suffix
// of its status text.
func listHealth(c *container.Summary) string {
	if c.Health != nil && c.Health.Status != "" {
		return string(c.Health.Status)
	}
	switch {
	case strings.HasSuffix(c.Status, "(healthy)"):
		return "healthy"
	case strings.HasSuffix(c.Status, "(unhealthy)"):
		return "unhealthy"
	case strings.HasSuffix(c.Status, "(health: starting)"):
		return "starting"
	}
	return "none"
}

// inspectAll refreshes the given containers, a few at a time. Failures are logged: a container
// that cannot be inspected keeps its cached state until the next collect.
func (s *Sensor) inspectAll(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	sem := make(chan struct{}, inspectConcurrency)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.refresh(ctx, id); err != nil {
				s.log.Warn("inspect failed", "replica", shortID(id), "err", err)
			}
		})
	}
	wg.Wait()
}

// refresh inspects one container and updates the cache; a container that is gone is dropped.
func (s *Sensor) refresh(ctx context.Context, id string) error {
	asOf := time.Now()
	ictx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	res, err := s.cli.ContainerInspect(ictx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		s.remove(id, asOf)
		return nil
	}
	if err != nil {
		return fmt.Errorf("docker: inspect %s: %w", shortID(id), err)
	}
	s.upsert(&res.Container, asOf)
	return nil
}

// remove drops a container from the cache and remembers that it is gone.
func (s *Sensor) remove(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
	s.gone[id] = at
}

// upsert stores an inspect result sent at asOf, unless the cache already holds a newer one.
func (s *Sensor) upsert(c *container.InspectResponse, asOf time.Time) {
	if c == nil || c.State == nil || c.Config == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.gone[c.ID]; ok && !asOf.After(at) {
		return
	}
	e := s.byID[c.ID]
	if e != nil && asOf.Before(e.asOf) {
		return // an older answer overtaken by a newer one
	}
	labels := c.Config.Labels
	isNew := e == nil
	if isNew {
		e = &entry{id: c.ID}
		s.byID[c.ID] = e
	}
	e.asOf = asOf
	e.name = strings.TrimPrefix(c.Name, "/")
	e.service = serviceName(labels, e.name)
	e.rawState = string(c.State.Status)
	e.state = replicaState(c.State.Status)
	e.health = "none"
	if c.State.Health != nil && c.State.Health.Status != "" {
		e.health = string(c.State.Health.Status)
	}
	e.exitCode = c.State.ExitCode
	e.started = c.State.StartedAt
	e.oom = c.State.OOMKilled || (e.oomRun != "" && e.oomRun == e.started)
	e.restarts = c.RestartCount
	e.scaled = labels[LabelScaled] == "true"
	e.paused = labels[LabelPaused] == "true"
	e.desired = 0
	if v, ok := labels[LabelDesired]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err == nil && n >= 1:
			e.desired = n
		case isNew: // labels never change, so this logs once per container
			s.log.Warn("ignoring bad label", "service", e.service, "replica", e.name, "label", LabelDesired, "value", v)
		}
	}
	e.memLimit, e.parent = 0, ""
	if c.HostConfig != nil {
		e.memLimit = c.HostConfig.Memory
		e.parent = c.HostConfig.CgroupParent
	}

	// Resolve the cgroup once per start: its directory only exists while the container runs.
	if c.State.Status != container.StateRunning && c.State.Status != container.StatePaused {
		e.cg, e.cgTried = nil, false
		e.stream = streamSample{}
	} else if !e.cgTried && s.opt.Stats != StatsStream {
		e.cgTried = true
		e.cg = resolveCgroup(s.opt.CgroupRoot, e.id, e.parent, make([]byte, readBufSize))
		if e.cg == nil {
			s.log.Debug("cgroup files not readable", "service", e.service, "replica", e.name, "stats", s.opt.Stats)
		}
	}
}

// serviceName is ares.service, else the Compose service, else the container name.
func serviceName(labels map[string]string, name string) string {
	if v := labels[LabelService]; v != "" {
		return v
	}
	if v := labels[labelCompose]; v != "" {
		return v
	}
	return name
}

// replicaState maps the daemon's state onto running|exited|restarting|paused|dead|created.
func replicaState(st container.ContainerState) string {
	switch st {
	case container.StateRunning, container.StateExited, container.StateRestarting,
		container.StatePaused, container.StateDead, container.StateCreated:
		return string(st)
	case container.StateRemoving:
		return string(container.StateExited) // stopped, about to disappear
	}
	return string(container.StateDead)
}

// snapshot copies the cache into s.scratch, sorted by service and replica name.
func (s *Sensor) snapshot() []sample {
	out := s.scratch[:0]
	s.mu.Lock()
	for _, e := range s.byID {
		out = append(out, sample{
			e: e, service: e.service, desired: e.desired, cg: e.cg, stream: e.stream,
			replica: engine.Replica{
				ID: e.id, Name: e.name, State: e.state, Health: e.health, ExitCode: e.exitCode,
				OOMKilled: e.oom, RestartCount: e.restarts, MemLimitBytes: e.memLimit, Scaled: e.scaled, Paused: e.paused,
				StoppedByOperator: e.operatorStop,
			},
		})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b sample) int {
		return cmp.Or(strings.Compare(a.service, b.service), strings.Compare(a.replica.Name, b.replica.Name))
	})
	s.scratch = out
	return out
}

// measure fills a running replica's CPU and memory from its cgroup files or, failing those,
// the latest streamed sample.
func (s *Sensor) measure(sm *sample) {
	r := &sm.replica
	if r.State != "running" && r.State != "paused" {
		return
	}
	e := sm.e
	if sm.cg != nil {
		rd, err := s.readCgroup(sm.cg)
		if err != nil {
			// The cgroup vanished between the inspect and now (the container is stopping):
			// report no usage rather than a stale one.
			return
		}
		now := time.Now()
		if e.cpuCg == sm.cg && rd.cpuNs >= e.cpuNs && now.After(e.cpuAt) {
			r.CPUPercent = float64(rd.cpuNs-e.cpuNs) / float64(now.Sub(e.cpuAt).Nanoseconds()) * 100
		}
		e.cpuCg, e.cpuNs, e.cpuAt = sm.cg, rd.cpuNs, now
		r.MemBytes, r.MemLimitBytes = rd.memBytes, rd.limit
		setMemPercent(r)
		return
	}
	if s.opt.Stats != StatsCgroup && sm.stream.ok {
		r.CPUPercent, r.MemBytes = sm.stream.cpu, sm.stream.memBytes
		setMemPercent(r)
	}
}

// readCgroup reads cg through a handle kept open across collects. A failed read closes the
// handle, so that a cgroup recreated under the same path is reopened next time.
func (s *Sensor) readCgroup(cg *cgroupFiles) (cgroupReading, error) {
	h := s.open[cg]
	if h == nil {
		var err error
		if h, err = openCgroup(cg); err != nil {
			return cgroupReading{}, err
		}
		s.open[cg] = h
	}
	rd, err := h.read(s.buf)
	if err != nil {
		h.close()
		delete(s.open, cg)
		return rd, err
	}
	h.used = s.collects
	return rd, nil
}

func setMemPercent(r *engine.Replica) {
	r.MemPercent = 0
	if r.MemLimitBytes > 0 {
		r.MemPercent = float64(r.MemBytes) / float64(r.MemLimitBytes) * 100
	}
}

// fill writes the samples, sorted by service and name, into f.
func fill(f *engine.Facts, samples []sample) {
	for i := 0; i < len(samples); {
		j := i + 1
		for j < len(samples) && samples[j].service == samples[i].service {
			j++
		}
		svc := f.Service(samples[i].service)
		desired, counted := 0, 0
		for _, sm := range samples[i:j] {
			svc.Replicas = append(svc.Replicas, sm.replica)
			if !sm.replica.Scaled {
				counted++
			}
			if desired == 0 && sm.desired > 0 {
				desired = sm.desired
			}
		}
		if desired == 0 {
			desired = max(counted, 1)
		}
		svc.DesiredReplicas = desired
		i = j
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
