package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/chaos/load"
)

// chaosRevertTimeout bounds the revert of every fault after Ctrl-C.
const chaosRevertTimeout = 30 * time.Second

func newChaosCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Inject faults and load into the services ARES watches, to see it heal them",
		Long: `chaos is the fault and load agent. Faults go to containers labelled ares.enable=true
(plus docker.labels and --label), like everything ARES does:

  kill     SIGKILL the main process, as a crash would (ARES should restart it)
  stop     stop the container through the Docker API, as an operator would (ARES leaves it)
  pause    freeze the container (docker pause)
  leak     leak memory, MB/s          (shop services: their fault admin port, through docker exec)
  cpu      burn CPU cores             (shop services)
  latency  add latency to requests    (shop services)
  errors   answer a share with 500    (shop services)

Every fault lasts --for (default 30s) and is reverted when it ends or when the command is
interrupted (Ctrl-C leaves nothing behind); kill and stop end early once the replica runs
again. load and surge send bounded HTTP load to a loopback address and report throughput,
latency percentiles and errors. --dry-run prints what would be done and changes nothing.`,
		Example: `  # crash one cart replica and watch ARES restart it
  ares chaos kill --service cart

  # 300 ms of latency on product for a minute
  ares chaos latency --service product --ms 300 --for 1m

  # 100 req/s on the shop gateway for 30 s, then a 4x surge
  ares chaos load --rate 100 --duration 30s
  ares chaos surge --rate 50 --factor 4 --duration 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	for _, k := range chaos.Kinds() {
		cmd.AddCommand(newChaosFaultCmd(k))
	}
	cmd.AddCommand(newChaosLoadCmd(false), newChaosLoadCmd(true), newChaosRunCmd())
	return cmd
}

// faultOpts are the flags of one fault command.
type faultOpts struct {
	cf      configFlags
	kind    chaos.Kind
	service string
	replica string
	value   float64
	dur     time.Duration
	labels  []string
	dryRun  bool
	output  string
}

// valueFlag names the flag that carries a kind's value.
func valueFlag(k chaos.Kind) (name, usage string) {
	switch k {
	case chaos.Leak:
		return "mb-per-s", "memory to leak, MB per second (1..1024)"
	case chaos.CPU:
		return "cores", "cores to keep busy (1..the host's cores)"
	case chaos.Latency:
		return "ms", "latency to add to every request, milliseconds (1..60000)"
	case chaos.Errors:
		return "percent", "share of requests answered 500, percent (1..100)"
	}
	return "", ""
}

var faultShort = map[chaos.Kind]string{
	chaos.Kill:    "SIGKILL a replica's main process, as a crash would",
	chaos.Stop:    "Stop a replica through the Docker API, as an operator would; started again after --for",
	chaos.Pause:   "Freeze a replica (docker pause) for --for",
	chaos.Leak:    "Make a shop replica leak memory for --for",
	chaos.CPU:     "Make a shop replica burn CPU cores for --for",
	chaos.Latency: "Add latency to a shop replica's requests for --for",
	chaos.Errors:  "Make a shop replica answer a share of its requests with 500 for --for",
}

var faultExample = map[chaos.Kind]string{
	chaos.Kill: `  # crash the first cart replica; give ARES up to 30 s to restart it
  ares chaos kill --service cart

  # every replica of product, showing what would happen
  ares chaos kill --service product --replica all --dry-run`,
	chaos.Stop: `  # an operator's stop: ARES should leave it down; started again after 20 s
  ares chaos stop --service cart --for 20s`,
	chaos.Pause: `  # freeze one replica for 15 s
  ares chaos pause --service order --replica ares-demo_order_1 --for 15s`,
	chaos.Leak: `  # leak 20 MB/s in cart for 45 s (memory freed when it ends)
  ares chaos leak --service cart --mb-per-s 20 --for 45s`,
	chaos.CPU: `  # keep one core busy in product for a minute
  ares chaos cpu --service product --cores 1 --for 1m`,
	chaos.Latency: `  # 300 ms more on every product request for 30 s
  ares chaos latency --service product --ms 300`,
	chaos.Errors: `  # half of cart's requests fail for 20 s, report as JSON
  ares chaos errors --service cart --percent 50 --for 20s -o json`,
}

func newChaosFaultCmd(k chaos.Kind) *cobra.Command {
	o := faultOpts{kind: k}
	cmd := &cobra.Command{
		Use:     string(k) + " --service NAME",
		Short:   faultShort[k],
		Example: faultExample[k],
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFault(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Long = cmd.Short + `.

The target is the first running replica of --service by name, or --replica (a container
name or ID prefix, or "all"). The fault is reverted after --for, on error, and on Ctrl-C.`
	switch k {
	case chaos.Kill:
		cmd.Long += `
The process is killed with SIGKILL directly (exit 137, as a crash or the OOM killer would), not
through the Docker API: ARES treats a Docker-API kill as an operator's action and leaves the
replica down. After --for, a replica still down is started again. The command ends as soon as
the replica runs again.`
	case chaos.Stop:
		cmd.Long += `
The command ends early when something else starts the replica again.`
	case chaos.Leak, chaos.CPU, chaos.Latency, chaos.Errors:
		cmd.Long += `
The fault goes through the shop's fault admin port: ares runs ` + "`shop fault ...`" + ` inside the
container with docker exec, so no port is published.`
	}
	o.cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.service, "service", "", "service to hit (label ares.service, else the compose service)")
	f.StringVar(&o.replica, "replica", "", `container name or ID prefix, or "all" (default: the first running replica)`)
	f.DurationVar(&o.dur, "for", chaos.DefaultDuration, "how long the fault lasts before it is reverted (1s..1h)")
	f.StringArrayVar(&o.labels, "label", nil, "only containers with this label too (key=value; repeatable), on top of docker.labels")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would be injected and change nothing")
	f.StringVarP(&o.output, "output", "o", "text", "final report format: text or json")
	_ = cmd.MarkFlagRequired("service")
	if name, usage := valueFlag(k); name != "" {
		f.Float64Var(&o.value, name, 0, usage)
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// faultReport is the final report of a fault command.
type faultReport struct {
	Fault      chaos.Fault    `json:"fault"`
	DryRun     bool           `json:"dry_run"`
	Targets    []chaos.Target `json:"targets"`
	InjectedAt time.Time      `json:"injected_at"`
	RevertedAt time.Time      `json:"reverted_at,omitzero"`
	Seconds    float64        `json:"seconds"` // injection to revert
	Events     []chaos.Event  `json:"events"`
	Error      string         `json:"error,omitempty"`
}

// flagError rewrites a chaos validation error ("value: ...") to name the flag.
func flagError(k chaos.Kind, err error) error {
	msg := err.Error()
	name, _ := valueFlag(k)
	for field, flag := range map[string]string{"value: ": "--" + name + ": ", "duration: ": "--for: ", "service: ": "--service: "} {
		if strings.HasPrefix(msg, field) {
			return errors.New(flag + strings.TrimPrefix(msg, field))
		}
	}
	return err
}

// timeline prints one line per event, with the time since start.
type timeline struct {
	mu     sync.Mutex
	w      io.Writer
	start  time.Time
	events []chaos.Event
}

func (t *timeline) event(ev chaos.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, ev)
	if t.w != nil {
		fmt.Fprintf(t.w, "%+8.3fs  %-8s %-8s %-24s %s\n", ev.At.Sub(t.start).Seconds(), ev.Kind, ev.Fault.Kind, ev.Target, ev.Detail)
	}
}

func (t *timeline) all() []chaos.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.events)
}

func runFault(ctx context.Context, o faultOpts, stdout, stderr io.Writer) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	f, err := chaos.ParseFault(string(o.kind), o.service, o.replica, o.value, o.dur)
	if err != nil {
		return flagError(o.kind, err)
	}
	cfg, _, err := o.cf.load()
	if err != nil {
		return err
	}
	cli, err := dockerClient(ctx, cfg.Docker)
	if err != nil {
		return err
	}
	defer cli.Close()

	// The live timeline goes to stdout in text, to stderr when stdout is JSON.
	tl := &timeline{w: stdout, start: time.Now()}
	if o.output == "json" {
		tl.w = stderr
	}
	agent := chaos.New(cli, chaos.Options{Labels: append(slices.Clone(cfg.Docker.Labels), o.labels...),
		DryRun: o.dryRun, Progress: tl.event})
	if o.output == "text" {
		verb := "injecting"
		if o.dryRun {
			verb = "dry run, would inject"
		}
		fmt.Fprintf(stdout, "%s %s\n", verb, f)
	}
	inj, err := agent.Inject(ctx, f)
	var ie *chaos.InterruptedError
	if errors.As(err, &ie) {
		// Ctrl-C while the fault was going in: the agent reverted what it may have reached.
		if o.output == "json" {
			rep := faultReport{Fault: f, Events: tl.all(), Error: err.Error()}
			if werr := writeJSON(stdout, rep); werr != nil {
				return werr
			}
		}
		return &exitError{code: 130, err: errors.New("interrupted: every fault reverted")}
	}
	if err != nil {
		return err
	}
	var interrupted bool
	select {
	case <-inj.Done():
	case <-ctx.Done():
		interrupted = true
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), chaosRevertTimeout)
		_ = agent.RevertAll(rctx) // errors are in the injection's Err and the timeline
		cancel()
		<-inj.Done()
	}
	rep := faultReport{Fault: f, DryRun: o.dryRun, Targets: inj.Targets(), InjectedAt: inj.At(), Events: tl.all()}
	if !o.dryRun {
		rep.RevertedAt = time.Now()
		rep.Seconds = rep.RevertedAt.Sub(rep.InjectedAt).Seconds()
	}
	revertErr := inj.Err()
	if revertErr != nil {
		rep.Error = revertErr.Error()
	}
	if o.output == "json" {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		names := make([]string, 0, len(rep.Targets))
		for _, t := range rep.Targets {
			names = append(names, t.Name)
		}
		switch {
		case o.dryRun:
			fmt.Fprintf(stdout, "dry run: nothing changed (targets: %s)\n", strings.Join(names, ", "))
		case revertErr != nil:
			fmt.Fprintf(stdout, "%s on %s: REVERT FAILED after %.1fs: %v\n", f.Kind, strings.Join(names, ", "), rep.Seconds, revertErr)
		default:
			fmt.Fprintf(stdout, "%s on %s: over after %.1fs, nothing left behind\n", f.Kind, strings.Join(names, ", "), rep.Seconds)
		}
	}
	switch {
	case revertErr != nil:
		return revertErr
	case interrupted:
		return &exitError{code: 130, err: errors.New("interrupted: every fault reverted")}
	}
	return nil
}

// loadOpts are the flags of load and surge.
type loadOpts struct {
	surge    bool
	target   string
	rate     int
	dur      time.Duration
	paths    []string
	timeout  time.Duration
	factor   float64
	after    time.Duration
	surgeFor time.Duration
	output   string
}

// defaultLoadTarget is the shop gateway as docker-compose.yml publishes it.
const defaultLoadTarget = "http://127.0.0.1:8000"

func newChaosLoadCmd(surge bool) *cobra.Command {
	o := loadOpts{surge: surge}
	cmd := &cobra.Command{
		Use:   "load --rate R --duration D",
		Short: "Send bounded HTTP load to a loopback target and report throughput, latency and errors",
		Long: `load sends GET requests at --rate per second for --duration to --target (the shop gateway
by default), round-robin over --path, and prints a line per second (elapsed, rate, requests,
failed, p99) and a final report: requests, availability, throughput, latency percentiles,
errors by status code or cause, and a per-second timeline. A request fails when it gets no
answer or a 5xx. The rate is capped at 2000 req/s, the duration at 30 min, and the target
must be a loopback address (a container's port published on 127.0.0.1). Ctrl-C stops it and
prints the report so far.`,
		Example: `  # 100 req/s for 30 s on the shop gateway
  ares chaos load --rate 100 --duration 30s

  # two paths of a test server, JSON report
  ares chaos load --target http://127.0.0.1:18080 --path /health --path /slow --rate 20 --duration 10s -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	if surge {
		cmd.Use = "surge --rate R --factor K --duration D"
		cmd.Short = "Send bounded HTTP load that steps from --rate to --factor times it, then back"
		cmd.Long = `surge is load with a step: --rate req/s, then --factor × --rate from --after for --for
(defaults: the middle third of --duration), then --rate again. It shows how a service and
ARES cope with a traffic surge (scale_out, then scale_in). Same bounds and report as load.`
		cmd.Example = `  # 50 req/s, 200 req/s from 20 s to 40 s, 50 req/s until 1 min
  ares chaos surge --rate 50 --factor 4 --duration 1m

  # the surge from 10 s to the end
  ares chaos surge --rate 20 --factor 5 --duration 30s --after 10s --for 0s`
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", defaultLoadTarget, "base URL; loopback addresses only")
	f.IntVar(&o.rate, "rate", 0, "requests per second (1..2000)")
	f.DurationVar(&o.dur, "duration", 0, "how long to send (up to 30m)")
	f.StringArrayVar(&o.paths, "path", nil, "path to request, repeatable, round-robin (default /)")
	f.DurationVar(&o.timeout, "timeout", load.DefaultTimeout, "per request")
	f.StringVarP(&o.output, "output", "o", "text", "final report format: text or json")
	_ = cmd.MarkFlagRequired("rate")
	_ = cmd.MarkFlagRequired("duration")
	if surge {
		f.Float64Var(&o.factor, "factor", 0, "rate multiplier during the surge (rate × factor ≤ 2000)")
		f.DurationVar(&o.after, "after", -1, "when the surge starts (default: a third of --duration)")
		f.DurationVar(&o.surgeFor, "for", -1, "how long it lasts, 0 until the end (default: a third of --duration)")
		_ = cmd.MarkFlagRequired("factor")
	}
	return cmd
}

// loadReport is load.Report with its availability, for -o json.
type loadReport struct {
	load.Report
	Availability float64 `json:"availability"`
}

func runLoad(ctx context.Context, o loadOpts, stdout, stderr io.Writer) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	lo := load.Options{Target: o.target, Rate: o.rate, Duration: o.dur, Paths: o.paths, Timeout: o.timeout}
	if o.surge {
		s := &load.Surge{Factor: o.factor, After: o.after, For: o.surgeFor}
		if s.After < 0 {
			s.After = o.dur / 3
		}
		if s.For < 0 {
			s.For = o.dur / 3
		}
		lo.Surge = s
	}
	if err := lo.Validate(); err != nil {
		return loadFlagError(err)
	}
	progress := stdout
	if o.output == "json" {
		progress = stderr
	}
	if o.surge {
		fmt.Fprintf(progress, "surge on %s: %d req/s, %.0f req/s from %s for %s, for %s in all\n",
			lo.Target, lo.Rate, float64(lo.Rate)*lo.Surge.Factor, lo.Surge.After, forText(lo.Surge.For), lo.Duration)
	} else {
		fmt.Fprintf(progress, "load on %s: %d req/s for %s\n", lo.Target, lo.Rate, lo.Duration)
	}
	rep, err := load.Run(ctx, lo, func(s load.Snapshot) {
		fmt.Fprintf(progress, "%6.1fs  rate %7.1f/s  requests %7d  failed %6d  p99 %s\n",
			s.Elapsed.Seconds(), s.Rate, s.Requests, s.Failed, s.P99.Round(100*time.Microsecond))
	})
	interrupted := err != nil && ctx.Err() != nil
	if err != nil && !interrupted {
		return err
	}
	if o.output == "json" {
		if err := writeJSON(stdout, loadReport{Report: rep, Availability: rep.Availability()}); err != nil {
			return err
		}
	} else {
		writeLoadReport(stdout, rep)
	}
	if interrupted {
		return &exitError{code: 130, err: errors.New("interrupted: load stopped")}
	}
	return nil
}

func forText(d time.Duration) string {
	if d == 0 {
		return "the rest"
	}
	return d.String()
}

// loadFlagError rewrites a load validation error ("rate: ...") to name the flag.
func loadFlagError(err error) error {
	msg := err.Error()
	for field, flag := range map[string]string{"target: ": "--target: ", "rate: ": "--rate: ", "duration: ": "--duration: ",
		"timeout: ": "--timeout: ", "paths: ": "--path: ", "surge.factor: ": "--factor: ", "surge.after: ": "--after: ", "surge.for: ": "--for: "} {
		if strings.HasPrefix(msg, field) {
			return errors.New(flag + strings.TrimPrefix(msg, field))
		}
	}
	return err
}

func writeLoadReport(w io.Writer, r load.Report) {
	secs := r.End.Sub(r.Start).Seconds()
	fmt.Fprintf(w, "\nrequests %d in %.1fs: %d served, %d failed, availability %.2f%%, throughput %.1f req/s\n",
		r.Requests, secs, r.Succeeded, r.Failed, 100*r.Availability(), r.Throughput)
	fmt.Fprintf(w, "latency p50 %s  p90 %s  p99 %s  max %s\n", rnd(r.Latency.P50), rnd(r.Latency.P90), rnd(r.Latency.P99), rnd(r.Latency.Max))
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintln(w, "errors:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %6d  %s\n", r.Errors[k], k)
		}
	}
	fmt.Fprintln(w, "timeline (by second sent: requests/failed p99):")
	for _, s := range r.Seconds {
		fmt.Fprintf(w, "  %4ds  %5d/%-5d %s\n", s.Second, s.Requests, s.Failed, rnd(s.P99))
	}
}

func rnd(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
