package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ares-sre/ares/engine"
)

// Watcher keeps the live policy revision of a directory and reloads it when files change.
// Reloads are all-or-nothing: a set that fails to load, compile or pass its tests is refused
// and the last good one keeps running. It implements engine.PolicySource.
type Watcher struct {
	dir string
	opt Options
	log *slog.Logger
	cur atomic.Pointer[Set]
	m   watcherMetrics

	reloadMu sync.Mutex // one reload at a time

	mu        sync.Mutex // guards the fields below
	lastErr   error
	lastErrAt time.Time
	hooks     []func(rev string, err error)
}

var _ engine.PolicySource = (*Watcher)(nil)

type watcherMetrics struct {
	reloads    *prometheus.CounterVec
	lastOK     prometheus.Gauge
	lastAt     prometheus.Gauge
	revInfo    *prometheus.GaugeVec
	cache      *cacheCounters
	currentRev string // label set on revInfo; guarded by reloadMu
}

// NewWatcher loads dir and registers the policy metrics with reg (nil: not registered). It
// fails when the initial load fails. Call Run to follow changes.
func NewWatcher(dir string, opt Options, reg prometheus.Registerer) (*Watcher, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	f := promauto.With(reg)
	w := &Watcher{dir: dir, opt: opt, log: opt.Log.With("dir", dir)}
	w.m = watcherMetrics{
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ares_policy_reloads_total", Help: "Policy loads and reloads, by result (success, failure).",
		}, []string{"result"}),
		lastOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "ares_policy_last_reload_success", Help: "Whether the last policy reload succeeded (1) or was refused (0).",
		}),
		lastAt: f.NewGauge(prometheus.GaugeOpts{
			Name: "ares_policy_last_reload_timestamp_seconds", Help: "Unix time of the last policy reload attempt.",
		}),
		revInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ares_policy_revision_info", Help: "The live policy revision (value 1).",
		}, []string{"revision"}),
		cache: &cacheCounters{
			hits: f.NewCounter(prometheus.CounterOpts{
				Name: "ares_policy_eval_cache_hits_total", Help: "Policy evaluations answered from the cache (per service when partitioned, per tick otherwise).",
			}),
			misses: f.NewCounter(prometheus.CounterOpts{
				Name: "ares_policy_eval_cache_misses_total", Help: "Policy evaluations that ran the query (per service when partitioned, per tick otherwise).",
			}),
		},
	}
	w.m.reloads.WithLabelValues("success")
	w.m.reloads.WithLabelValues("failure")
	if opt.InsecureDir {
		w.log.Warn("policy directory permissions are not checked (insecure_dir): whoever can write it controls ARES; for development only")
	}
	if err := w.reload(context.Background()); err != nil {
		return nil, err
	}
	return w, nil
}

// Current returns the live policy revision.
func (w *Watcher) Current() engine.Evaluator { return w.cur.Load() }

// Set returns the live policy revision as a *Set.
func (w *Watcher) Set() *Set { return w.cur.Load() }

// LastError returns the error of the last refused reload and when it happened; nil once a
// later reload succeeded.
func (w *Watcher) LastError() (error, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr, w.lastErrAt
}

// OnReload registers fn to be called after every reload attempt that found changed files:
// with the new revision and nil, or with the live revision and the reason the new files were
// refused. fn runs on the reloading goroutine and must not block.
func (w *Watcher) OnReload(fn func(rev string, err error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hooks = append(w.hooks, fn)
}

// Reload loads the directory now. It returns the reason a changed set was refused; the
// refusal is also recorded (metrics, LastError, hooks) but not logged.
func (w *Watcher) Reload(ctx context.Context) error { return w.reload(ctx) }

func (w *Watcher) reload(ctx context.Context) error {
	w.reloadMu.Lock()
	defer w.reloadMu.Unlock()
	skip := ""
	if cur := w.cur.Load(); cur != nil {
		skip = cur.Revision()
	}
	set, err := load(ctx, w.dir, w.opt, w.m.cache, skip)
	if errors.Is(err, errUnchanged) {
		return nil
	}
	now := time.Now()
	w.m.lastAt.Set(float64(now.UnixNano()) / 1e9)
	rev := skip
	if err != nil {
		w.m.reloads.WithLabelValues("failure").Inc()
		w.m.lastOK.Set(0)
	} else {
		rev = set.Revision()
		w.cur.Store(set)
		w.m.reloads.WithLabelValues("success").Inc()
		w.m.lastOK.Set(1)
		if w.m.currentRev != "" {
			w.m.revInfo.DeleteLabelValues(w.m.currentRev)
		}
		w.m.revInfo.WithLabelValues(rev).Set(1)
		w.m.currentRev = rev
		w.log.Info("policy activated", "policy_rev", rev, "files", len(set.files),
			"partitioned", set.Partitioned(), "whole_reason", set.PartitionReason())
	}
	w.mu.Lock()
	if err != nil {
		w.lastErr, w.lastErrAt = err, now
	} else {
		w.lastErr, w.lastErrAt = nil, time.Time{}
	}
	hooks := slices.Clone(w.hooks)
	w.mu.Unlock()
	for _, fn := range hooks {
		fn(rev, err)
	}
	return err
}

// Run watches the directory tree until ctx is cancelled and reloads after each burst of
// changes. Refused reloads are logged; Run returns only when it cannot watch at all.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watch %s: %w", w.dir, err)
	}
	defer fw.Close()
	if err := addTree(fw, w.dir); err != nil {
		return fmt.Errorf("policy: watch %s: %w", w.dir, err)
	}

	kick := make(chan struct{}, 1) // 1-slot: reload requests coalesce
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
				if err := w.reload(ctx); err != nil && ctx.Err() == nil {
					cur := ""
					if s := w.cur.Load(); s != nil {
						cur = s.Revision()
					}
					w.log.Error("policy reload refused; keeping the live revision", "policy_rev", cur, "err", err)
				}
			}
		}
	})

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !hidden(ev.Name) {
					if err := addTree(fw, ev.Name); err != nil {
						w.log.Warn("policy: cannot watch new directory", "err", err)
					}
				}
			}
			if hidden(ev.Name) && filepath.Base(ev.Name) != configMapData {
				continue // a chmod counts: a directory made group-writable is refused at once
			}
			timer.Reset(w.opt.Debounce) // bursts (editors write, rename, chmod) coalesce
		case <-timer.C:
			select {
			case kick <- struct{}{}:
			default:
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.log.Warn("policy: watch error", "err", err)
		}
	}
}

// addTree watches root and every directory below it except hidden ones.
func addTree(fw *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil // removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		return fw.Add(path)
	})
}

func hidden(path string) bool { return strings.HasPrefix(filepath.Base(path), ".") }

// configMapData is the symlink the kubelet swaps (rename over it) to update a ConfigMap
// volume at once: the visible files are symlinks through it and see no event of their own.
const configMapData = "..data"
