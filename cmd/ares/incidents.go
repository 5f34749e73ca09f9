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

type incidentsOpts struct {
	cf      configFlags
	since   time.Duration
	service string
	output  string
}

func newIncidentsCmd() *cobra.Command {
	o := incidentsOpts{}
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "List incidents: problems ARES acted on, with time to detect and to recover",
		Long: `incidents reads the journal (journal.* in ares.yaml) and prints the incidents opened or
resolved in the last --since, and every incident still open, newest first.

An incident is opened by the first action ARES takes on a service and resolved when the
service is healthy again: every replica running and not unhealthy, and no decision about it.
DETECT is the time from the first bad facts to the first decision, RECOVER the time from the
first bad facts to healthy ones.`,
		Example: `  ares incidents
  ares incidents --since 168h --service cart -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIncidents(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	o.cf.register(cmd)
	cmd.Flags().DurationVar(&o.since, "since", 24*time.Hour, "how far back")
	cmd.Flags().StringVar(&o.service, "service", "", "only this service")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runIncidents(ctx context.Context, o incidentsOpts, w io.Writer) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	j, err := openJournal(ctx, o.cf)
	if err != nil {
		return err
	}
	defer j.Close()
	list, err := j.Incidents(ctx, journal.Query{Since: time.Now().Add(-o.since), Service: o.service})
	if err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	if o.output == "json" {
		if list == nil {
			list = []journal.Incident{}
		}
		return writeJSON(w, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(w, "no incidents in the last %s\n", o.since)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPENED\tSERVICE\tSTATUS\tACTIONS\tDETECT\tRECOVER\tRESOLVED\tLAST ACTION\tREASON")
	for _, in := range list {
		recover := "-"
		if in.Status == journal.IncidentResolved {
			recover = in.TimeToRecover.Round(time.Second).String()
		}
		status := in.Status
		if in.NeedsHuman {
			status += ", NEEDS HUMAN" // escalated: automation for the service is paused
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", stamp(in.OpenedAt), in.Service, status, in.Actions,
			in.TimeToDetect.Round(time.Second), recover, stamp(in.ResolvedAt), in.LastAction, clip(in.Reason, 80))
	}
	return tw.Flush()
}
