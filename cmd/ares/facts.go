package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine"
	dockersensor "github.com/ares-sre/ares/sensors/docker"
)

type factsOpts struct {
	cf     configFlags
	output string
}

func newFactsCmd() *cobra.Command {
	o := factsOpts{}
	cmd := &cobra.Command{
		Use:   "facts",
		Short: "Gather facts once from the live sensors and print them",
		Long: `facts runs every sensor once, exactly as a tick of 'ares run' would, and prints the facts
document: a table for people, or the JSON document (docs/facts.md) with -o json. Save real
situations as policy test fixtures and replay them with 'ares eval'. CPU % is measured
over half a second.`,
		Example: `  # what does ARES see right now?
  ares facts

  # capture a fixture for a policy test
  ares facts -o json > policies/testdata/cart-down.json
  ares eval --facts policies/testdata/cart-down.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFacts(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	o.cf.register(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runFacts(ctx context.Context, o factsOpts, w io.Writer) error {
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.output)
	}
	cfg, _, err := o.cf.load()
	if err != nil {
		return err
	}
	if cfg.Runtime == runtimeKubernetes { // the pods as the informers list them; CPU from metrics.k8s.io
		kctx, stop := context.WithCancel(ctx)
		defer stop()
		kube, err := newKubeRuntime(kctx, cfg, newLogger(cfg.Log, io.Discard))
		if err != nil {
			return err
		}
		eng, err := engine.New(engine.Options{SensorTimeout: cfg.Engine.SensorTimeout, Sensors: []engine.Sensor{noWatch{kube.sensor}}, Policy: noPolicy{}, Journal: discard{}})
		if err != nil {
			return err
		}
		return writeFacts(w, o.output, eng.Gather(ctx, 1, time.Now()))
	}
	cli, err := dockerClient(ctx, cfg.Docker)
	if err != nil {
		return err
	}
	defer cli.Close()
	if cfg.Runtime == runtimeSwarm { // no CPU window: the swarm sensor reports none
		s, err := swarmSensor(ctx, cli, cfg, newLogger(cfg.Log, io.Discard))
		if err != nil {
			return err
		}
		eng, err := engine.New(engine.Options{SensorTimeout: cfg.Engine.SensorTimeout, Sensors: []engine.Sensor{s}, Policy: noPolicy{}, Journal: discard{}})
		if err != nil {
			return err
		}
		return writeFacts(w, o.output, eng.Gather(ctx, 1, time.Now()))
	}
	sensor := dockersensor.New(cli, dockersensor.Options{
		CgroupRoot: cfg.Docker.CgroupRoot, Stats: cfg.Docker.Stats, ResyncEvery: cfg.Docker.ResyncEvery, Timeout: cfg.Docker.APITimeout, Labels: cfg.Docker.Labels,
	}, newLogger(cfg.Log, io.Discard))
	eng, err := engine.New(engine.Options{SensorTimeout: cfg.Engine.SensorTimeout, Sensors: []engine.Sensor{sensor},
		Policy: noPolicy{}, Journal: discard{}})
	if err != nil {
		return err
	}
	// Where cgroup files are not readable, CPU and memory come from Docker's streaming stats,
	// which the sensor's Watch runs: keep it running while gathering.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = sensor.Watch(wctx, func(string) {}) }()
	// CPU % comes from the difference between two readings: take a first one, then the facts.
	eng.Gather(ctx, 0, time.Now())
	var f *engine.Facts
	for deadline := time.Now().Add(streamWait); ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cpuWindow):
		}
		f = eng.Gather(ctx, 1, time.Now())
		if measured(f) || time.Now().After(deadline) {
			break
		}
	}
	return writeFacts(w, o.output, f)
}

func writeFacts(w io.Writer, output string, f *engine.Facts) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	}
	return printFactsTable(w, f)
}

func printFactsTable(w io.Writer, f *engine.Facts) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREPLICA\tSTATE\tHEALTH\tEXIT\tRESTARTS\tCPU%\tMEM\tMEM%")
	names := make([]string, 0, len(f.Services))
	for n := range f.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := f.Services[n]
		for _, r := range s.Replicas {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.1f\t%s\t%.1f\n", n, r.Name, r.State, r.Health, r.ExitCode, r.RestartCount,
				r.CPUPercent, mib(r.MemBytes), r.MemPercent)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var bad []string
	for name, st := range f.Sensors {
		if !st.OK {
			bad = append(bad, fmt.Sprintf("sensor %s: %s", name, st.Error))
		}
	}
	sort.Strings(bad)
	if len(names) == 0 {
		fmt.Fprintln(w, "no containers labelled ares.enable=true")
	}
	if len(bad) > 0 {
		fmt.Fprintln(w, strings.Join(bad, "\n"))
	}
	return nil
}

// cpuWindow is the span over which ares facts measures CPU %; streamWait bounds the wait for
// the first streamed stats (the daemon samples once a second).
const (
	cpuWindow  = 500 * time.Millisecond
	streamWait = 3 * time.Second
)

// measured reports whether every running replica has a memory reading.
func measured(f *engine.Facts) bool {
	for _, s := range f.Services {
		for _, r := range s.Replicas {
			if r.State == "running" && r.MemBytes == 0 {
				return false
			}
		}
	}
	return true
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

type noPolicy struct{}

func (noPolicy) Current() engine.Evaluator { return nil }

type discard struct{}

func (discard) Record(context.Context, engine.TickRecord) error { return nil }
