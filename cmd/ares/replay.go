package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/engine/policy"
)

type replayOpts struct {
	cf       configFlags
	since    time.Duration
	policies string
	query    string
	output   string
}

func newReplayCmd() *cobra.Command {
	o := replayOpts{}
	cmd := &cobra.Command{
		Use:   "replay --policies DIR",
		Short: "Backtest a policy change: re-decide recorded ticks and show what would differ",
		Long: `replay reads the ticks recorded in the journal (journal.* in ares.yaml) over the last
--since, evaluates each tick's facts, exactly as recorded, with the policies in --policies,
and prints every tick where the new policies decide differently from what was decided then:
+ for a decision the new policies add, - for one they no longer make. Decisions are compared
by action and target; a changed reason alone is not a difference. A summary line ends the
output. Nothing is acted on.

Exit status: 0 whether or not decisions differ; 1 when the journal or the policies cannot be
read.`,
		Example: `  # what would the edited pack have done over the last day?
  ares replay --policies ./policies-next

  # the last week, for a CI check
  ares replay --since 168h --policies ./policies-next -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReplay(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	o.cf.register(cmd)
	cmd.Flags().DurationVar(&o.since, "since", 24*time.Hour, "how far back")
	cmd.Flags().StringVar(&o.policies, "policies", "", "directory of the policies to replay with (required)")
	cmd.Flags().StringVar(&o.query, "query", "", "Rego query of the decision set (default policy.query)")
	cmd.Flags().Bool("insecure-policy-dir", false, "load policies even from a directory others can write (policy.insecure_dir; development only)")
	o.cf.bind(cmd, "insecure-policy-dir", "policy.insecure_dir")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	_ = cmd.MarkFlagRequired("policies")
	return cmd
}

// replayTick is one tick whose decisions differ.
type replayTick struct {
	RunID       string            `json:"run_id"`
	Tick        uint64            `json:"tick"`
	Time        time.Time         `json:"time"`
	RecordedRev string            `json:"recorded_policy_rev"`
	Added       []engine.Decision `json:"added"`
	Removed     []engine.Decision `json:"removed"`
}

// replayResult is the -o json output of ares replay.
type replayResult struct {
	PolicyRev      string       `json:"policy_rev"`
	Since          time.Time    `json:"since"`
	Ticks          int          `json:"ticks"`
	DifferentTicks int          `json:"different_ticks"`
	Added          int          `json:"added"`
	Removed        int          `json:"removed"`
	Diffs          []replayTick `json:"diffs"`
}

func runReplay(ctx context.Context, o replayOpts, w io.Writer) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	cfg, _, err := o.cf.load()
	if err != nil {
		return err
	}
	query := o.query
	if query == "" {
		query = cfg.Policy.Query
	}
	set, err := policy.Load(o.policies, policy.Options{Query: query, InsecureDir: cfg.Policy.InsecureDir})
	if err != nil {
		return err
	}
	j, err := openJournal(ctx, o.cf)
	if err != nil {
		return err
	}
	defer j.Close()
	res := replayResult{PolicyRev: set.Revision(), Since: time.Now().Add(-o.since).UTC(), Diffs: []replayTick{}}
	err = j.Ticks(ctx, res.Since, func(t journal.RecordedTick) error {
		if t.Facts == nil {
			return nil
		}
		res.Ticks++
		ds, _, err := set.Evaluate(ctx, t.Facts)
		if err != nil {
			return fmt.Errorf("replay: tick %d at %s: %w", t.Tick, stamp(t.At), err)
		}
		added, removed := diffDecisions(t.Decisions, ds)
		if len(added) == 0 && len(removed) == 0 {
			return nil
		}
		d := replayTick{RunID: t.RunID, Tick: t.Tick, Time: t.At, RecordedRev: t.PolicyRev, Added: added, Removed: removed}
		res.DifferentTicks++
		res.Added += len(added)
		res.Removed += len(removed)
		if o.output == "json" {
			res.Diffs = append(res.Diffs, d)
			return nil
		}
		for _, x := range added {
			fmt.Fprintf(w, "%s  tick %d  + %-9s  %s  %s\n", stamp(t.At), t.Tick, x.Action, x.Target(), x.Reason)
		}
		for _, x := range removed {
			fmt.Fprintf(w, "%s  tick %d  - %-9s  %s  %s\n", stamp(t.At), t.Tick, x.Action, x.Target(), x.Reason)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if o.output == "json" {
		return writeJSON(w, res)
	}
	fmt.Fprintf(w, "replayed %d ticks since %s with policy %s: %d differ (%d decisions added, %d removed)\n",
		res.Ticks, stamp(res.Since), res.PolicyRev, res.DifferentTicks, res.Added, res.Removed)
	return nil
}

// diffDecisions compares decision sets by action and target.
func diffDecisions(recorded, now []engine.Decision) (added, removed []engine.Decision) {
	key := func(d engine.Decision) string { return d.Action + " " + d.Target() }
	was := map[string]bool{}
	for _, d := range recorded {
		was[key(d)] = true
	}
	is := map[string]bool{}
	for _, d := range now {
		is[key(d)] = true
		if !was[key(d)] {
			added = append(added, d)
		}
	}
	for _, d := range recorded {
		if !is[key(d)] {
			removed = append(removed, d)
		}
	}
	sort.Slice(added, func(i, j int) bool { return key(added[i]) < key(added[j]) })
	sort.Slice(removed, func(i, j int) bool { return key(removed[i]) < key(removed[j]) })
	return added, removed
}
