package docker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Watch follows Docker's container events for the labelled containers until ctx is done. Each
// event updates the cache for its container (an inspect, or a removal on destroy) before wake
// is called, for die, oom and health_status events only, with "event:die", "event:oom" or
// "event:health_status". With Options.Own, kill and stop events that ARES did not announce mark
// the container stopped_by_operator until its next start. When the event stream fails Watch logs, waits with back-off, resyncs
// the whole cache and subscribes again. Watch also runs the streaming stats connections the
// cache needs (Options.Stats "stream", or "auto" where cgroup files are unreadable), and returns
// only when ctx is done and all of them have ended.
func (s *Sensor) Watch(ctx context.Context, wake func(reason string)) error {
	st := &streams{s: s, running: map[string]context.CancelFunc{}}
	defer st.stopAll()
	backoff := minBackoff
	for {
		began := time.Now()
		err := s.follow(ctx, wake, st)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > time.Minute {
			backoff = minBackoff
		}
		s.log.Warn("docker events interrupted, reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow subscribes to the events, resyncs the cache (whatever happened while nobody listened)
// and handles events until the stream fails or ctx is done.
func (s *Sensor) follow(ctx context.Context, wake func(string), st *streams) error {
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := s.filters.Clone().Add("type", string(events.ContainerEventType))
	ev := s.cli.Events(ectx, client.EventsListOptions{Filters: f})
	// Events returns once the daemon answered, so nothing is missed between here and the list.
	if err := s.sync(ctx, true); err != nil {
		return err
	}
	s.live.Store(true)
	defer s.live.Store(false)
	st.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-ev.Err:
			if err == nil {
				err = errors.New("docker: events stream closed")
			}
			return err
		case m := <-ev.Messages:
			s.handle(ctx, m, wake)
			st.reconcile(ctx)
		case <-s.kick:
			st.reconcile(ctx)
		}
	}
}

// handle applies one event to the cache, then wakes the engine if the event warrants a tick.
//
// For die, oom and health_status the event itself carries what changed (exit code, health), so
// the cache takes it from the event and the engine is woken at once; the inspect that follows
// fills in the rest. Inspecting first would add tens of milliseconds: after a die the daemon
// holds the container's lock while it cleans up, and inspect waits for it.
func (s *Sensor) handle(ctx context.Context, m events.Message, wake func(string)) {
	if m.Type != events.ContainerEventType || m.Actor.ID == "" {
		return
	}
	received := time.Now()
	// "health_status: unhealthy" → "health_status"
	action, _, _ := strings.Cut(string(m.Action), ":")
	switch events.Action(action) {
	case events.ActionDestroy:
		s.opt.Own.Forget(m.Actor.ID)
		s.remove(m.Actor.ID, received)
		return
	case events.ActionDie, events.ActionOOM, events.ActionHealthStatus:
		woken := s.apply(m, received)
		if woken {
			wake("event:" + action)
		}
		if err := s.refresh(ctx, m.Actor.ID); err != nil {
			s.log.Warn("inspect after event failed", "replica", shortID(m.Actor.ID), "event", action, "err", err)
		}
		if !woken {
			wake("event:" + action)
		}
	case events.ActionKill, events.ActionStop:
		// A person's stop or kill (Docker emits kill, die, stop for a stop): the replica is
		// marked before the die wakes the engine, so that ARES leaves it alone.
		if s.opt.Own == nil || s.opt.Own.Expected(m.Actor.ID) {
			return
		}
		if events.Action(action) == events.ActionKill && !stopSignal(m.Actor.Attributes["signal"]) {
			return // a reload or a user signal: the container keeps running
		}
		if !s.markOperatorStop(m.Actor.ID, true) {
			if err := s.refresh(ctx, m.Actor.ID); err != nil {
				s.log.Warn("inspect after event failed", "replica", shortID(m.Actor.ID), "event", action, "err", err)
			}
			s.markOperatorStop(m.Actor.ID, true)
		}
		s.log.Info("stopped by an operator: left alone until started again", "replica", shortID(m.Actor.ID), "event", action)
	case events.ActionCreate, events.ActionStart, events.ActionRestart, events.ActionPause,
		events.ActionUnPause, events.ActionUpdate, events.ActionRename:
		if events.Action(action) == events.ActionStart {
			s.opt.Own.Forget(m.Actor.ID) // a restart by ARES ends here
			s.markOperatorStop(m.Actor.ID, false)
		}
		if err := s.refresh(ctx, m.Actor.ID); err != nil {
			// The next Collect's list catches the change.
			s.log.Warn("inspect after event failed", "replica", shortID(m.Actor.ID), "event", action, "err", err)
		}
	default: // exec_*, attach, ...: nothing we report changes
	}
}

// markOperatorStop sets or clears a cached container's stopped_by_operator; false when the
// container is not cached.
func (s *Sensor) markOperatorStop(id string, stopped bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[id]
	if e == nil {
		return false
	}
	e.operatorStop = stopped
	return true
}

// stopSignal reports whether a kill event's signal ends a process unless it handles it: KILL,
// TERM, INT, QUIT, ABRT (by number or name). Empty (an older daemon) counts as a stop.
func stopSignal(sig string) bool {
	switch strings.TrimPrefix(strings.ToUpper(sig), "SIG") {
	case "", "9", "KILL", "15", "TERM", "2", "INT", "3", "QUIT", "6", "ABRT":
		return true
	}
	return false
}

// apply updates a cached container from a die, oom or health_status event received at at. It
// reports false, changing nothing, when the container is not cached, the cache is newer than
// the event or the event lacks what it should carry; the caller then inspects first.
func (s *Sensor) apply(m events.Message, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[m.Actor.ID]
	if e == nil || (m.TimeNano > 0 && time.Unix(0, m.TimeNano).Before(e.asOf)) {
		return false
	}
	switch action, status, _ := strings.Cut(string(m.Action), ":"); events.Action(action) {
	case events.ActionDie:
		code, err := strconv.Atoi(m.Actor.Attributes["exitCode"])
		if err != nil {
			return false
		}
		e.rawState, e.state, e.exitCode = string(container.StateExited), string(container.StateExited), code
		e.cg, e.cgTried, e.stream = nil, false, streamSample{}
	case events.ActionOOM:
		e.oom, e.oomRun = true, e.started
	case events.ActionHealthStatus:
		switch h := container.HealthStatus(strings.TrimSpace(status)); h {
		case container.Healthy, container.Unhealthy, container.Starting:
			e.health = string(h)
		default:
			return false
		}
	default:
		return false
	}
	e.asOf = at
	return true
}

// kickStreams tells Watch that the set of containers needing a stats stream may have changed.
func (s *Sensor) kickStreams() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// streamTargets are the running containers whose stats come from the streaming API.
func (s *Sensor) streamTargets() map[string]struct{} {
	if s.opt.Stats == StatsCgroup {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]struct{}{}
	for id, e := range s.byID {
		if e.rawState == string(container.StateRunning) && (s.opt.Stats == StatsStream || e.cg == nil) {
			want[id] = struct{}{}
		}
	}
	return want
}

// streams runs one stats-streaming goroutine per target container. Only Watch's goroutine
// touches it.
type streams struct {
	s       *Sensor
	wg      sync.WaitGroup
	running map[string]context.CancelFunc
}

// reconcile starts and stops streams to match the cache.
func (st *streams) reconcile(ctx context.Context) {
	want := st.s.streamTargets()
	for id, cancel := range st.running {
		if _, ok := want[id]; !ok {
			cancel()
			delete(st.running, id)
		}
	}
	for id := range want {
		if _, ok := st.running[id]; ok {
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		st.running[id] = cancel
		st.wg.Go(func() { st.s.stream(sctx, id) })
	}
}

func (st *streams) stopAll() {
	for id, cancel := range st.running {
		cancel()
		delete(st.running, id)
	}
	st.wg.Wait()
}

// stream keeps a streaming stats connection to one container open until ctx is done,
// reconnecting with back-off, and stores each sample in the cache.
func (s *Sensor) stream(ctx context.Context, id string) {
	s.streaming.Add(1)
	defer s.streaming.Add(-1)
	backoff := minBackoff
	for {
		got, err := s.streamOnce(ctx, id)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = minBackoff
		}
		if cerrdefs.IsNotFound(err) {
			<-ctx.Done() // removed: reconcile cancels us once the destroy is handled
			return
		}
		s.log.Debug("stats stream ended", "replica", shortID(id), "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// streamOnce decodes one stats connection until it ends. got reports whether any sample came.
func (s *Sensor) streamOnce(ctx context.Context, id string) (got bool, err error) {
	res, err := s.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: true})
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var v container.StatsResponse
		if err := dec.Decode(&v); err != nil {
			return got, err
		}
		got = true
		s.storeStream(id, streamSampleOf(&v))
	}
}

func (s *Sensor) storeStream(id string, smp streamSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byID[id]; e != nil && e.rawState == string(container.StateRunning) {
		e.stream = smp
	}
}

// streamSampleOf computes CPU and memory like docker stats: CPU is the container's share of
// the host's CPU time since the previous sample times the online CPUs (100 = one core), memory
// is usage minus inactive file cache.
func streamSampleOf(v *container.StatsResponse) streamSample {
	smp := streamSample{ok: true}
	cpu, pre := v.CPUStats, v.PreCPUStats
	online := float64(cpu.OnlineCPUs)
	if online == 0 {
		online = float64(len(cpu.CPUUsage.PercpuUsage))
	}
	if cpu.CPUUsage.TotalUsage > pre.CPUUsage.TotalUsage && cpu.SystemUsage > pre.SystemUsage && pre.SystemUsage > 0 {
		cpuDelta := float64(cpu.CPUUsage.TotalUsage - pre.CPUUsage.TotalUsage)
		sysDelta := float64(cpu.SystemUsage - pre.SystemUsage)
		smp.cpu = cpuDelta / sysDelta * online * 100
	}
	mem := v.MemoryStats
	usage := mem.Usage
	inactive, ok := mem.Stats["total_inactive_file"] // cgroup v1
	if !ok {
		inactive = mem.Stats["inactive_file"] // cgroup v2
	}
	if inactive < usage {
		usage -= inactive
	}
	smp.memBytes = int64(min(usage, unlimited))
	return smp
}
