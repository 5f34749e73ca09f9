package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Labels the agent reads, the same as ARES's sensor and actuator.
const (
	LabelEnable  = "ares.enable"
	LabelService = "ares.service"
	LabelCompose = "com.docker.compose.service"
)

// revertTimeout bounds an automatic revert (duration ended, context cancelled).
const revertTimeout = 30 * time.Second

// watchEvery is how often kill and stop targets are polled to see them come back.
const watchEvery = 200 * time.Millisecond

// target is a resolved container with what the fault needs.
type target struct {
	Target
	pid  int    // main process, at injection
	path string // the container's executable (the shop binary for shop faults)
}

// InterruptedError is Inject's error when its context was cancelled while the fault was
// being injected and every target it may have reached was reverted: nothing is left behind.
type InterruptedError struct {
	Fault Fault
	Err   error // the injection's own error (usually the context's)
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("chaos: %s interrupted while injecting, every target reverted: %v", e.Fault.Kind, e.Err)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// Inject resolves the fault's targets and injects it. The injection reverts itself when
// f.Duration ends or ctx is cancelled (with a fresh context, so a cancelled ctx still
// reverts); Done is closed after that. Kill and stop injections also end early once every
// target is running again (healed, by ARES or anyone): nothing is left to revert. With
// Options.DryRun nothing changes: the targets are resolved, EventDryRun reported, and the
// returned injection is already done.
//
// When injecting into one of several targets fails, the ones already hit are reverted and
// the error returned. When ctx is cancelled during the injection, the target being hit is
// reverted too (the engine may carry out a call its client gave up on), and the error is an
// *InterruptedError if every revert succeeded.
func (a *Agent) Inject(ctx context.Context, f Fault) (*Injection, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	targets, err := a.resolve(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", f.Kind, err)
	}
	inj := &Injection{agent: a, fault: f, at: time.Now(), dryRun: a.opt.DryRun, done: make(chan struct{}), stop: make(chan struct{})}
	for _, t := range targets {
		inj.targets = append(inj.targets, t.Target)
	}
	if a.opt.DryRun {
		for _, t := range targets {
			a.emit(EventDryRun, f, t.Name, "would "+a.describe(f, t))
		}
		inj.once.Do(func() { close(inj.done) })
		return inj, nil
	}
	for n, t := range targets {
		detail, err := a.apply(ctx, f, &targets[n])
		if err != nil {
			err = fmt.Errorf("chaos: %s %s: %w", f.Kind, t.Name, err)
			a.emit(EventError, f, t.Name, err.Error())
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
			hit := targets[:n]
			if ctx.Err() != nil {
				// Interrupted mid-call: the engine may still carry it out (a stop goes on).
				hit = targets[:n+1]
			}
			reverted := true
			for _, done := range hit {
				rdetail, rerr := a.revert(rctx, f, done)
				if rerr != nil {
					rerr = fmt.Errorf("chaos: revert %s %s: %w", f.Kind, done.Name, rerr)
					a.emit(EventError, f, done.Name, rerr.Error())
					err = errors.Join(err, rerr)
					reverted = false
					continue
				}
				if rdetail != "" {
					a.emit(EventRevert, f, done.Name, rdetail)
				}
			}
			cancel()
			if ctx.Err() != nil && reverted {
				return nil, &InterruptedError{Fault: f, Err: err}
			}
			return nil, err
		}
		a.emit(EventInject, f, t.Name, detail)
	}
	inj.resolved = targets
	a.mu.Lock()
	a.active[inj] = struct{}{}
	a.mu.Unlock()
	go inj.wait(ctx)
	return inj, nil
}

// wait reverts the injection when its duration ends, ctx is cancelled, Revert is called or
// (kill, stop) every target is running again.
func (i *Injection) wait(ctx context.Context) {
	timer := time.NewTimer(i.fault.Duration)
	defer timer.Stop()
	var tick <-chan time.Time
	if i.fault.Kind == Kill || i.fault.Kind == Stop {
		t := time.NewTicker(watchEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-timer.C:
		case <-ctx.Done():
		case <-i.stop:
			return // Revert was called; it does the work
		case <-tick:
			if !i.agent.recovered(ctx, i) {
				continue
			}
		}
		break
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	_ = i.Revert(rctx) // reported through Progress and Err
}

// recovered polls the kill or stop targets not yet seen back, reports those running again
// (EventRevert, "running again") and tells whether all are.
func (a *Agent) recovered(ctx context.Context, i *Injection) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.back == nil {
		i.back = map[string]bool{}
	}
	back := i.back
	for _, t := range i.resolved {
		if back[t.ID] {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, a.opt.Timeout)
		res, err := a.cli.ContainerInspect(cctx, t.ID, client.ContainerInspectOptions{})
		cancel()
		switch {
		case cerrdefs.IsNotFound(err):
			back[t.ID] = true
			a.emit(EventRevert, i.fault, t.Name, fmt.Sprintf("container removed (replaced) after %s", since(i.at)))
		case err != nil:
		case res.Container.State != nil && res.Container.State.Running && res.Container.State.Pid != t.pid:
			back[t.ID] = true
			a.emit(EventRevert, i.fault, t.Name, fmt.Sprintf("running again after %s (pid %d)", since(i.at), res.Container.State.Pid))
		}
	}
	return len(back) == len(i.resolved)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// Revert undoes the fault now; it is idempotent and safe to call concurrently with the
// automatic revert (a second call waits for the first and returns its result). It returns
// the revert's error (nil when every target is back to normal).
func (i *Injection) Revert(ctx context.Context) error {
	i.once.Do(func() {
		close(i.stop)
		var errs []error
		for _, t := range i.resolved {
			i.mu.Lock()
			back := i.back[t.ID]
			i.mu.Unlock()
			if back {
				continue // kill, stop: seen running again (or replaced), reported then
			}
			detail, err := i.agent.revert(ctx, i.fault, t)
			if err != nil {
				err = fmt.Errorf("chaos: revert %s %s: %w", i.fault.Kind, t.Name, err)
				i.agent.emit(EventError, i.fault, t.Name, err.Error())
				errs = append(errs, err)
				continue
			}
			if detail != "" {
				i.agent.emit(EventRevert, i.fault, t.Name, detail)
			}
		}
		i.err = errors.Join(errs...)
		i.agent.mu.Lock()
		delete(i.agent.active, i)
		i.agent.mu.Unlock()
		close(i.done)
	})
	<-i.done
	return i.err
}

// Active lists the injections not yet reverted.
func (a *Agent) Active() []*Injection {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Injection, 0, len(a.active))
	for i := range a.active {
		out = append(out, i)
	}
	slices.SortFunc(out, func(x, y *Injection) int { return x.at.Compare(y.at) })
	return out
}

// RevertAll reverts every injection still active, newest first, and returns their errors
// joined. Give it a fresh context when the one the faults were injected with is cancelled.
func (a *Agent) RevertAll(ctx context.Context) error {
	active := a.Active()
	slices.Reverse(active)
	var errs []error
	for _, i := range active {
		errs = append(errs, i.Revert(ctx))
	}
	return errors.Join(errs...)
}

func (a *Agent) emit(kind string, f Fault, target, detail string) {
	ev := Event{At: time.Now(), Kind: kind, Fault: f, Target: target, Detail: detail}
	switch kind {
	case EventError, EventWarn:
		a.log.Warn("chaos "+kind, "fault", string(f.Kind), "service", f.Service, "replica", target, "detail", detail)
	default:
		a.log.Info("chaos "+kind, "fault", string(f.Kind), "service", f.Service, "replica", target, "detail", detail, "dry_run", a.opt.DryRun)
	}
	if a.opt.Progress != nil {
		a.opt.Progress(ev)
	}
}

// resolve finds the fault's containers among those in scope.
func (a *Agent) resolve(ctx context.Context, f Fault) ([]target, error) {
	flt := client.Filters{}.Add("label", LabelEnable+"=true")
	for _, l := range a.opt.Labels {
		flt = flt.Add("label", l)
	}
	cctx, cancel := context.WithTimeout(ctx, a.opt.Timeout)
	defer cancel()
	res, err := a.cli.ContainerList(cctx, client.ContainerListOptions{All: true, Filters: flt})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	var all []container.Summary
	for _, c := range res.Items {
		if serviceOf(c.Labels, nameOf(c.Names)) == f.Service {
			all = append(all, c)
		}
	}
	if len(all) == 0 {
		scope := LabelEnable + "=true"
		if len(a.opt.Labels) > 0 {
			scope += "," + strings.Join(a.opt.Labels, ",")
		}
		return nil, fmt.Errorf("no container of service %q in scope (labels %s)", f.Service, scope)
	}
	slices.SortFunc(all, func(x, y container.Summary) int { return strings.Compare(nameOf(x.Names), nameOf(y.Names)) })
	usable := func(c container.Summary) bool { return c.State == container.StateRunning }
	var picked []container.Summary
	switch f.Replica {
	case "":
		for _, c := range all {
			if usable(c) {
				picked = append(picked, c)
				break
			}
		}
		if len(picked) == 0 {
			return nil, fmt.Errorf("service %q has no running replica (of %d)", f.Service, len(all))
		}
	case AllReplicas:
		for _, c := range all {
			if usable(c) {
				picked = append(picked, c)
			}
		}
		if len(picked) == 0 {
			return nil, fmt.Errorf("service %q has no running replica (of %d)", f.Service, len(all))
		}
	default:
		want := strings.TrimPrefix(f.Replica, "/")
		for _, c := range all {
			if nameOf(c.Names) == want || (len(want) >= 4 && strings.HasPrefix(c.ID, want)) {
				picked = append(picked, c)
			}
		}
		switch {
		case len(picked) == 0:
			names := make([]string, 0, len(all))
			for _, c := range all {
				names = append(names, nameOf(c.Names))
			}
			return nil, fmt.Errorf("service %q has no replica %q (replicas: %s)", f.Service, f.Replica, strings.Join(names, ", "))
		case len(picked) > 1:
			return nil, fmt.Errorf("replica %q of service %q is ambiguous (%d containers match)", f.Replica, f.Service, len(picked))
		case !usable(picked[0]):
			return nil, fmt.Errorf("replica %s of service %q is %s, not running", f.Replica, f.Service, picked[0].State)
		}
	}
	out := make([]target, 0, len(picked))
	for _, c := range picked {
		t := target{Target: Target{ID: c.ID, Name: nameOf(c.Names), Service: f.Service}}
		ictx, cancel := context.WithTimeout(ctx, a.opt.Timeout)
		res, err := a.cli.ContainerInspect(ictx, c.ID, client.ContainerInspectOptions{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("docker: inspect %s: %w", t.Name, err)
		}
		ct := res.Container
		if ct.Config == nil || ct.Config.Labels[LabelEnable] != "true" {
			return nil, fmt.Errorf("%s is not labelled %s=true", t.Name, LabelEnable)
		}
		if ct.State != nil {
			t.pid = ct.State.Pid
		}
		t.path = ct.Path
		if isShopFault(f.Kind) && !looksLikeShop(ct) {
			return nil, fmt.Errorf("%s of service %q is not a shop service (no SHOP_* environment): %s faults need the shop's fault admin port", t.Name, f.Service, f.Kind)
		}
		out = append(out, t)
	}
	return out, nil
}

func nameOf(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// serviceOf names a container's service like ARES does: label ares.service, else the compose
// service, else the container name.
func serviceOf(labels map[string]string, name string) string {
	if s := labels[LabelService]; s != "" {
		return s
	}
	if s := labels[LabelCompose]; s != "" {
		return s
	}
	return name
}

func isShopFault(k Kind) bool { return k == Leak || k == CPU || k == Latency || k == Errors }

// looksLikeShop tells whether the container runs the shop binary, whose `fault` subcommand
// the shop faults exec: running another image's entrypoint with "fault" arguments could start
// a second server inside it.
func looksLikeShop(ct container.InspectResponse) bool {
	if ct.Config == nil {
		return false
	}
	for _, e := range ct.Config.Env {
		if strings.HasPrefix(e, "SHOP_") {
			return true
		}
	}
	return false
}

// describe says what injecting f into t does, for dry runs.
func (a *Agent) describe(f Fault, t target) string {
	switch f.Kind {
	case Kill:
		return fmt.Sprintf("SIGKILL pid %d of %s, then start it after %s if it is still down", t.pid, t.Name, f.Duration)
	case Stop:
		return fmt.Sprintf("stop %s through the Docker API, start it again after %s", t.Name, f.Duration)
	case Pause:
		return fmt.Sprintf("pause %s for %s", t.Name, f.Duration)
	default:
		sub, val := shopArgs(f)
		return fmt.Sprintf("exec `%s fault %s %s` in %s, reverted after %s", t.path, sub, val, t.Name, f.Duration)
	}
}

// shopArgs are the `shop fault` subcommand and value for a shop fault.
func shopArgs(f Fault) (sub, value string) {
	v := strconv.FormatFloat(f.Value, 'f', 0, 64)
	switch f.Kind {
	case Leak:
		return "leak", v
	case CPU:
		return "burn", v
	case Latency:
		return "latency", v
	case Errors:
		return "fail", v
	}
	return "", ""
}

// apply injects f into t and says what it did.
func (a *Agent) apply(ctx context.Context, f Fault, t *target) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opt.Timeout)
	defer cancel()
	switch f.Kind {
	case Kill:
		return a.kill(ctx, f, t)
	case Stop:
		if _, err := a.cli.ContainerStop(ctx, t.ID, client.ContainerStopOptions{}); err != nil {
			return "", fmt.Errorf("docker: stop: %w", err)
		}
		return "stopped through the Docker API", nil
	case Pause:
		if _, err := a.cli.ContainerPause(ctx, t.ID, client.ContainerPauseOptions{}); err != nil {
			return "", fmt.Errorf("docker: pause: %w", err)
		}
		return "paused", nil
	default:
		sub, val := shopArgs(f)
		out, err := a.exec(ctx, t, "fault", sub, val)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s fault %s %s: %s", t.path, sub, val, out), nil
	}
}

// kill sends SIGKILL to the container's main process directly, as a crash (or the kernel's
// OOM killer) would: Docker sees the process die, not an operator's kill. When that is not
// possible (not root, a remote engine, another PID namespace) it falls back to the Docker
// API's kill and warns: ARES treats that as an operator's action and leaves it down.
func (a *Agent) kill(ctx context.Context, f Fault, t *target) (string, error) {
	res, err := a.cli.ContainerInspect(ctx, t.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("docker: inspect: %w", err)
	}
	if res.Container.State == nil || !res.Container.State.Running {
		return "", errors.New("not running")
	}
	pid := res.Container.State.Pid
	t.pid = pid
	why := ""
	if pid <= 0 {
		why = "no pid"
	} else if !ownsPid(t.ID, pid) {
		why = fmt.Sprintf("pid %d is not visible here as the container's (remote engine or another PID namespace)", pid)
	} else if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		why = fmt.Sprintf("kill pid %d: %v", pid, err)
	} else {
		return fmt.Sprintf("SIGKILL to pid %d (a crash: exit 137)", pid), nil
	}
	a.emit(EventWarn, f, t.Name, "cannot SIGKILL the process directly ("+why+"): falling back to the Docker API kill, which ARES treats as an operator's action and leaves down")
	if _, err := a.cli.ContainerKill(ctx, t.ID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return "", fmt.Errorf("docker: kill: %w", err)
	}
	return "SIGKILL through the Docker API (an operator's kill)", nil
}

// ownsPid checks that /proc/<pid> here is the container's process: its cgroup path names the
// container ID. That holds when this process shares the engine's PID namespace.
func ownsPid(id string, pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	return err == nil && bytes.Contains(b, []byte(id))
}

// revert undoes f on t and says what it did ("" when there was nothing to undo).
func (a *Agent) revert(ctx context.Context, f Fault, t target) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opt.Timeout)
	defer cancel()
	res, err := a.cli.ContainerInspect(ctx, t.ID, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "container gone: nothing to revert", nil
	}
	if err != nil {
		return "", fmt.Errorf("docker: inspect: %w", err)
	}
	st := res.Container.State
	if st == nil {
		st = &container.State{}
	}
	switch f.Kind {
	case Kill, Stop:
		if st.Running || st.Restarting {
			return "", nil // back already: the watch reported it
		}
		if _, err := a.cli.ContainerStart(ctx, t.ID, client.ContainerStartOptions{}); err != nil {
			return "", fmt.Errorf("docker: start: %w", err)
		}
		return "still down: started again", nil
	case Pause:
		if !st.Paused {
			return "not paused any more", nil
		}
		if _, err := a.cli.ContainerUnpause(ctx, t.ID, client.ContainerUnpauseOptions{}); err != nil {
			return "", fmt.Errorf("docker: unpause: %w", err)
		}
		return "unpaused", nil
	default:
		if !st.Running || st.Paused {
			return fmt.Sprintf("container %s: the fault went with its process", st.Status), nil
		}
		if f.Kind == Leak {
			return a.resetLeak(ctx, t)
		}
		sub, _ := shopArgs(f)
		out, err := a.exec(ctx, &t, "fault", sub, "0")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("fault %s 0: %s", sub, out), nil
	}
}

// resetLeak stops the leak and frees its memory: `shop fault reset` clears every fault, so the
// others active on the replica are set again right after.
func (a *Agent) resetLeak(ctx context.Context, t target) (string, error) {
	before, err := a.exec(ctx, &t, "fault", "state")
	if err != nil {
		return "", err
	}
	var st struct {
		Burn    int `json:"burn_cores"`
		Latency int `json:"latency_ms"`
		Fail    int `json:"fail_percent"`
	}
	if err := json.Unmarshal([]byte(before), &st); err != nil {
		return "", fmt.Errorf("shop fault state: %w (got %q)", err, before)
	}
	out, err := a.exec(ctx, &t, "fault", "reset")
	if err != nil {
		return "", err
	}
	for _, kept := range []struct {
		sub string
		v   int
	}{{"burn", st.Burn}, {"latency", st.Latency}, {"fail", st.Fail}} {
		if kept.v == 0 {
			continue
		}
		if out, err = a.exec(ctx, &t, "fault", kept.sub, strconv.Itoa(kept.v)); err != nil {
			return "", fmt.Errorf("set %s again after the reset: %w", kept.sub, err)
		}
	}
	return "fault reset (leaked memory freed): " + out, nil
}

// exec runs the container's own binary with args through the Docker exec API and returns its
// standard output; a non-zero exit is an error carrying its standard error.
func (a *Agent) exec(ctx context.Context, t *target, args ...string) (string, error) {
	cmd := append([]string{t.path}, args...)
	cr, err := a.cli.ExecCreate(ctx, t.ID, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", fmt.Errorf("docker: exec %s: %w", strings.Join(cmd, " "), err)
	}
	att, err := a.cli.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", fmt.Errorf("docker: exec %s: attach: %w", strings.Join(cmd, " "), err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	copied := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); copied <- err }()
	select {
	case err = <-copied:
	case <-ctx.Done():
		return "", fmt.Errorf("docker: exec %s: %w", strings.Join(cmd, " "), ctx.Err())
	}
	if err != nil {
		return "", fmt.Errorf("docker: exec %s: read output: %w", strings.Join(cmd, " "), err)
	}
	ins, err := a.cli.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("docker: exec %s: inspect: %w", strings.Join(cmd, " "), err)
	}
	if ins.Running {
		return "", fmt.Errorf("docker: exec %s: still running after its output closed", strings.Join(cmd, " "))
	}
	if ins.ExitCode != 0 {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return "", fmt.Errorf("%s exited %d: %s", strings.Join(cmd, " "), ins.ExitCode, msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}
