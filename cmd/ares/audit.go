package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine/journal"
)

type auditOpts struct {
	cf      configFlags
	since   time.Duration
	service string
	output  string
}

func newAuditCmd() *cobra.Command {
	o := auditOpts{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List the audit trail: who paused, resumed, acted or approved through the API, and why",
		Long: `audit reads the journal (journal.* in ares.yaml; SQLite or PostgreSQL) and prints every
mutating call of the API and the dashboard in the last --since, newest first: when, who (the
API token's id, never the token), from which address, through what (api or ui), the
operation and its target, why, and the result. The same trail is on the dashboard's activity
page and at GET /api/v1/audit (docs/api.md).`,
		Example: `  ares audit
  ares audit --since 720h --service cart -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	o.cf.register(cmd)
	cmd.Flags().DurationVar(&o.since, "since", 7*24*time.Hour, "how far back")
	cmd.Flags().StringVar(&o.service, "service", "", "only calls on this service (and those on every service)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runAudit(ctx context.Context, o auditOpts, w io.Writer) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	j, err := openJournal(ctx, o.cf)
	if err != nil {
		return err
	}
	defer j.Close()
	list, err := j.AuditLog(ctx, journal.Query{Since: time.Now().Add(-o.since), Service: o.service})
	if err != nil {
		return err
	}
	if o.output == "json" {
		return writeJSON(w, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(w, "no control requests in the last %s\n", o.since)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tWHO\tFROM\tVIA\tOP\tTARGET\tRESULT\tWHY")
	for _, r := range list {
		op := r.Op
		if r.Detail != "" {
			op += " " + r.Detail
		}
		from := r.Remote
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(r.At), r.Who, from, r.Via, op, r.Target, r.Result, clip(r.Why, 80))
	}
	return tw.Flush()
}
