package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ares-sre/ares/dashboard"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/engine/leader"
)

// haRun wires leader election (ha.enabled) into `ares run`: the gate around the governor,
// the actuators and the journal, and the take-over that rebuilds the governor's state from
// the journal each time this instance becomes leader. A nil *haRun (ha off) changes nothing.
type haRun struct {
	el   haElector // *leader.Elector, or the Kubernetes Lease (kubernetes.go)
	gate *leader.Gate
	log  *slog.Logger

	mu     sync.Mutex
	synced time.Time // the governor counts every action done before this (zero: none)
}

// newHA returns nil when ha is off. store and reconcile are read at each take-over, so
// they may be set after newHA returns (before the elector runs).
func newHA(cfg config.Config, gov *governor.Governor, store *journal.Store, reconcile func(context.Context, journal.Intent) engine.Outcome,
	reg prometheus.Registerer, log *slog.Logger) (*haRun, error) {
	if !cfg.HA.Enabled {
		return nil, nil
	}
	h := &haRun{log: log}
	el, err := leader.New(leader.Options{DSN: cfg.LockDSN(), LockName: cfg.HA.LockName, Instance: cfg.HA.Instance,
		CheckInterval: cfg.HA.CheckInterval, Lease: cfg.HA.Lease, Registerer: reg, Log: log,
		OnLead: func(ctx context.Context) error {
			if *store == nil {
				return nil
			}
			return h.takeOver(ctx, *store, cfg, gov, reconcile)
		}})
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	h.el, h.gate = el, leader.NewGate(gov, el)
	return h, nil
}

// takeOver reconciles the actions the previous leader left unfinished and replays into the
// governor the actions it has not counted yet (those of other leaders since this instance
// last led), so that back-offs, budgets and cooldowns carry over.
func (h *haRun) takeOver(ctx context.Context, store journal.Store, cfg config.Config, gov *governor.Governor,
	reconcile func(context.Context, journal.Intent) engine.Outcome) error {
	n, err := store.Reconcile(ctx, func(in journal.Intent) engine.Outcome { return reconcile(ctx, in) })
	if err != nil {
		return fmt.Errorf("journal: reconcile the previous leader's actions: %w", err)
	}
	if n > 0 {
		h.log.Warn("reconciled actions the previous leader left unfinished", "n", n)
	}
	h.mu.Lock()
	synced := h.synced
	h.mu.Unlock()
	since := time.Now().Add(-restoreWindow(cfg))
	recent, err := store.RecentActions(ctx, since)
	if err != nil {
		return fmt.Errorf("journal: restore the governor: %w", err)
	}
	replayed := 0
	for _, d := range recent {
		if d.At.After(synced) {
			gov.Done(d.Action, d.At)
			replayed++
		}
	}
	h.log.Info("governor restored from the journal on taking the lead", "actions", replayed)
	// While leading, the governor counts this instance's own actions as they are done; from
	// the end of the term on, the next leader's are in the journal only.
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		h.synced = time.Now()
		h.mu.Unlock()
	})
	return nil
}

// restoreWindow is how far back the governor's brakes look.
func restoreWindow(cfg config.Config) time.Duration {
	return max(cfg.Governor.BudgetWindow, governor.Window, cfg.Governor.BackoffReset+cfg.Governor.BackoffMax)
}

func (h *haRun) governor(g engine.Governor) engine.Governor {
	if h == nil {
		return g
	}
	return h.gate
}

func (h *haRun) actuators(m map[string]engine.Actuator) map[string]engine.Actuator {
	if h == nil {
		return m
	}
	out := make(map[string]engine.Actuator, len(m))
	for k, a := range m {
		out[k] = h.gate.Actuator(a)
	}
	return out
}

func (h *haRun) journal(j engine.Journal) engine.Journal {
	if h == nil {
		return j
	}
	return h.gate.Journal(j)
}

// leaderSource is what the dashboard shows; nil without ha.
func (h *haRun) leaderSource() dashboard.LeaderSource {
	if h == nil {
		return nil
	}
	return h.el
}

// run takes part in the election until ctx ends.
func (h *haRun) run(ctx context.Context, wg *sync.WaitGroup) {
	if h == nil {
		return
	}
	wg.Go(func() { _ = h.el.Run(ctx) })
}
