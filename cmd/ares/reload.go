package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/engine/policy"
)

// hangupReloader is what `ares run` does on SIGHUP (systemctl reload ares): reload the policy
// directory now, all-or-nothing exactly as a file change does (for policies deployed where
// file events do not reach ARES: network file systems, bind mounts, a renamed symlink), and
// re-read the config file. Of the config only log.level is applied live; other changes are
// logged as needing a restart, because the components were built from them.
type hangupReloader struct {
	pol   *policy.Watcher
	cf    configFlags
	cfg   config.Config // the running config: as loaded at start, with the log level applied since
	level *slog.LevelVar
	sd    *sdNotifier
	log   *slog.Logger
}

// reload runs one SIGHUP reload and reports the policy revision live after it.
func (h *hangupReloader) reload(ctx context.Context) {
	if err := h.sd.Reloading(); err != nil {
		h.log.Warn("systemd notify failed", "err", err)
	}
	h.rereadConfig()
	before := h.pol.Current().Revision()
	err := h.pol.Reload(ctx)
	rev := h.pol.Current().Revision()
	switch {
	case err != nil:
		h.log.Error("SIGHUP: policy reload refused; keeping the live revision", "policy_rev", rev, "err", err)
	case rev != before:
		h.log.Info("SIGHUP: policies reloaded", "policy_rev", rev, "previous", before)
	default:
		h.log.Info("SIGHUP: policies unchanged", "policy_rev", rev)
	}
	if err := h.sd.Ready("ticking; policy_rev " + rev); err != nil {
		h.log.Warn("systemd notify failed", "err", err)
	}
}

func (h *hangupReloader) rereadConfig() {
	next, source, err := h.cf.load()
	if err != nil {
		h.log.Error("SIGHUP: config not re-read; keeping the running one", "err", err)
		return
	}
	if next.Log.Level != h.cfg.Log.Level {
		var lv slog.Level
		_ = lv.UnmarshalText([]byte(next.Log.Level)) // validated by load
		h.level.Set(lv)
		h.log.Info("SIGHUP: log level changed", "config", source, "from", h.cfg.Log.Level, "to", next.Log.Level)
	}
	h.cfg.Log.Level = next.Log.Level // h.cfg is what runs: the rest is not applied
	if changed := changedKeys(h.cfg, next); len(changed) > 0 {
		h.log.Warn("SIGHUP: config changes take effect at the next restart (only log.level and the policies reload)",
			"config", source, "keys", strings.Join(changed, ","))
	}
}

// changedKeys lists the config keys (section.key) whose values differ between a and b.
func changedKeys(a, b config.Config) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := range t.NumField() {
		sa, sb := va.Field(i), vb.Field(i)
		section := t.Field(i).Tag.Get("mapstructure")
		if sa.Kind() != reflect.Struct {
			if !reflect.DeepEqual(sa.Interface(), sb.Interface()) {
				out = append(out, section)
			}
			continue
		}
		for j := range sa.NumField() {
			if !reflect.DeepEqual(sa.Field(j).Interface(), sb.Field(j).Interface()) {
				out = append(out, section+"."+sa.Type().Field(j).Tag.Get("mapstructure"))
			}
		}
	}
	sort.Strings(out)
	return out
}

// supervise connects a running `ares run` to whoever supervises it: it reloads on SIGHUP and,
// started by systemd (Type=notify), says READY=1 now, feeds the watchdog while live reports
// the tick loop alive, and says STOPPING=1 when ctx ends. It owns h.sd from here on and closes
// it. Its goroutines end with ctx and are counted in wg.
func supervise(ctx context.Context, wg *sync.WaitGroup, h *hangupReloader, live *liveness) {
	var mine sync.WaitGroup
	defer wg.Go(func() {
		mine.Wait()
		_ = h.sd.Close()
	})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	mine.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				h.reload(ctx)
			}
		}
	})
	if !h.sd.Enabled() {
		return
	}
	if err := h.sd.Ready(fmt.Sprintf("ticking every %s; policy_rev %s", h.cfg.Engine.Interval, h.pol.Current().Revision())); err != nil {
		h.log.Warn("systemd notify failed", "err", err)
	}
	h.log.Info("systemd notified", "watchdog", h.sd.Watchdog())
	mine.Go(func() {
		h.sd.RunWatchdog(ctx, live.Alive, func(err error) { h.log.Error("systemd watchdog", "err", err) })
	})
}
