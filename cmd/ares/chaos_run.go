package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/chaos/scenario"
)

// defaultAresAPI is where `ares chaos run` reads ARES's decisions: dashboard.listen's default.
const defaultAresAPI = "http://127.0.0.1:8080"

type chaosRunOpts struct {
	cf     configFlags
	ares   string
	target string
	labels []string
	dryRun bool
	short  bool
	output string
}

func newChaosRunCmd() *cobra.Command {
	o := chaosRunOpts{}
	cmd := &cobra.Command{
		Use:   "run FILE...",
		Short: "Run chaos scenarios (YAML) against the live stack and judge how ARES healed it",
		Long: `run executes scenario files (docs/chaos.md; the seed's scenarios are in tests/scenarios/):
their steps (start load, inject a fault, wait, revert) in order, with a live timeline, then
prints a report per scenario: time to detect (injection to ARES's first decision on the
service), time to recover (injection to every replica of the service running and healthy
again), the actions ARES took, the requests served and failed, and pass or fail for every
expectation. Every fault is reverted at the end, and on Ctrl-C.

What ARES decided and did is read from its JSON API (GET /api/v1/actions on --ares, its
dashboard.listen; the bearer token from ARES_API_TOKEN when set); the replicas' states from
Docker (containers labelled ares.enable=true plus docker.labels and --label). The exit status
is 1 when an expectation fails, 2 when a file is invalid, 130 when interrupted.`,
		Example: `  # scenario 1: kill a product replica under load, expect a restart and no lost request
  ares chaos run tests/scenarios/01-kill-backend.yaml

  # every scenario, short versions, a JSON report for machines
  ares chaos run --short -o json tests/scenarios/*.yaml

  # what would be injected and into which containers; nothing changes
  ares chaos run --dry-run tests/scenarios/03-leak.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return runChaosRun(cmd.Context(), o, files, os.Getenv("ARES_API_TOKEN"), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.cf.register(cmd)
	cmd.Flags().StringVar(&o.ares, "ares", defaultAresAPI, "base URL of ARES's API (its dashboard.listen)")
	cmd.Flags().StringVar(&o.target, "target", "", "load target base URL, replacing the scenarios' target (e.g. http://127.0.0.1:18080)")
	cmd.Flags().StringArrayVar(&o.labels, "label", nil, "extra key=value label the containers must carry (repeatable), on top of the scenario's stack labels")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the plan and the containers each fault would hit; change nothing")
	cmd.Flags().BoolVar(&o.short, "short", false, "run the short versions (step durations scaled by each file's short factor)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "report format: text or json")
	return cmd
}

func runChaosRun(ctx context.Context, o chaosRunOpts, files []string, token string, stdout, stderr io.Writer) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	// Every file is read before anything runs: a typo in the third stops the first too.
	var scs []*scenario.Scenario
	var errs []error
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		scs = append(scs, s)
	}
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: 2, err: err}
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
	live := stdout
	if o.output == "json" {
		live = stderr
	}
	var reps []*scenario.Report
	failed := 0
	for _, s := range scs {
		labels := append(append(slices.Clone(cfg.Docker.Labels), s.Stack.Labels...), o.labels...)
		agent := chaos.New(cli, chaos.Options{Labels: labels, DryRun: o.dryRun})
		r := &scenario.Runner{
			Injector: scenario.AgentInjector{Agent: agent},
			Observer: scenario.DockerObserver{Client: cli, Labels: labels, Traffic: s.NeedsTraffic()},
			Out:      live,
			Short:    o.short,
			DryRun:   o.dryRun,
			Target:   o.target,
		}
		if o.ares != "" {
			r.Ares = scenario.AresClient{URL: o.ares, Token: token}
		}
		fmt.Fprintf(live, "scenario %s (%s)\n", s.Name, s.File)
		if s.Description != "" {
			fmt.Fprintf(live, "  %s\n", strings.TrimSpace(s.Description))
		}
		rep, err := r.Run(ctx, s)
		reps = append(reps, rep)
		if o.output == "text" {
			rep.WriteText(stdout)
		}
		if !rep.Pass {
			failed++
		}
		if err != nil && ctx.Err() != nil {
			break // interrupted: the faults are reverted, the rest is not started
		}
	}
	if o.output == "json" {
		if err := scenario.WriteJSON(stdout, reps); err != nil {
			return err
		}
	} else if len(reps) > 1 {
		verb := "passed"
		if o.dryRun {
			verb = "planned"
		}
		fmt.Fprintf(stdout, "\n%d of %d scenarios %s\n", len(reps)-failed, len(reps), verb)
	}
	switch {
	case ctx.Err() != nil:
		return &exitError{code: 130, err: errors.New("interrupted: every fault reverted")}
	case failed > 0:
		return &exitError{code: 1, err: fmt.Errorf("%d of %d scenarios failed", failed, len(reps))}
	}
	return nil
}
