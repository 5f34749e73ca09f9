package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/engine/journal"
)

type actionsOpts = listOpts

func newActionsCmd() *cobra.Command {
	o := actionsOpts{}
	cmd := &cobra.Command{
		Use:   "actions",
		Short: "List what ARES decided and did, from the journal",
		Long: `actions reads the journal (journal.* in ares.yaml) and prints every decision of the
policies with the governor's verdict (admit, dry_run, suppress) and, for the actions carried
out, their result and duration; oldest first.

An action whose ARES was killed before it finished shows the outcome reconciled at the next
start. -o json prints OPA decision-log records (decision_id, path, input, result, timestamp,
revision) extended with verdict, why and outcome.`,
		Example: `  # the last day
  ares actions

  # one service, the last hour, for a script
  ares actions --service cart --since 1h -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runActions(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	o.register(cmd, 24*time.Hour, "only this service")
	return cmd
}

func runActions(ctx context.Context, o actionsOpts, w io.Writer) error {
	return journalList[journal.DecisionRecord]{
		name: "actions", what: "decisions",
		header: "TIME\tSERVICE\tTARGET\tACTION\tVERDICT\tRESULT\tDURATION\tREASON",
		fetch: func(ctx context.Context, j journal.Store, q journal.Query) ([]journal.DecisionRecord, error) {
			return j.Actions(ctx, q)
		},
		row: func(r journal.DecisionRecord) []string {
			result, dur := "-", "-"
			if r.Outcome != nil {
				result = r.Outcome.Result
				if r.Outcome.Error != "" {
					result += ": " + clip(r.Outcome.Error, 60)
				}
				dur = r.Outcome.Duration.Round(time.Millisecond).String()
			} else if r.Verdict == engine.VerdictAdmit {
				result = "unfinished"
			}
			reason := r.Result.Reason
			if r.Why != "" {
				reason += " [" + r.Why + "]"
			}
			svc := r.Result.Service
			if svc == "" {
				svc = "-" // a node-level action (drain): the target names the node
			}
			return []string{stamp(r.Timestamp), svc, r.Result.Target(), r.Result.Action, string(r.Verdict), result, dur, reason}
		},
	}.print(ctx, o, w)
}

// journalConfig is the journal's own configuration from ares.yaml; run.go opens the same.
func journalConfig(cfg config.Config) journal.Config {
	return journal.Config{Backend: cfg.Journal.Backend, Path: cfg.Journal.Path, DSN: cfg.Journal.DSN,
		Buffer: cfg.Journal.Buffer, SyncIntents: cfg.Journal.SyncIntents, SyncTimeout: cfg.Journal.SyncTimeout,
		Query: cfg.Policy.Query}
}

// openJournal opens the configured journal for reading; a journal that does not exist yet is
// an error rather than a new, empty one.
func openJournal(ctx context.Context, cf configFlags) (journal.Store, error) {
	cfg, _, err := cf.load()
	if err != nil {
		return nil, err
	}
	jc := journalConfig(cfg)
	jc.SyncIntents = false
	if jc.Backend != journal.BackendPostgres {
		if jc.Path == "" {
			return nil, errors.New("journal.path is empty: ARES keeps no journal")
		}
		if _, err := os.Stat(jc.Path); err != nil {
			return nil, fmt.Errorf("no %s journal at %s (journal.backend, journal.path): %w", jc.Backend, jc.Path, err)
		}
	}
	return journal.Open(ctx, jc, nil, nil)
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("--output %q: want text or json", o)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
