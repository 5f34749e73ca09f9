package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine/journal"
)

type incidentsOpts = listOpts

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
	o.register(cmd, 24*time.Hour, "only this service")
	return cmd
}

func runIncidents(ctx context.Context, o incidentsOpts, w io.Writer) error {
	return journalList[journal.Incident]{
		name: "incidents", what: "incidents",
		header: "OPENED\tSERVICE\tSTATUS\tACTIONS\tDETECT\tRECOVER\tRESOLVED\tLAST ACTION\tREASON",
		fetch: func(ctx context.Context, j journal.Store, q journal.Query) ([]journal.Incident, error) {
			return j.Incidents(ctx, q)
		},
		row: func(in journal.Incident) []string {
			recover := "-"
			if in.Status == journal.IncidentResolved {
				recover = in.TimeToRecover.Round(time.Second).String()
			}
			status := in.Status
			if in.NeedsHuman {
				status += ", NEEDS HUMAN" // escalated: automation for the service is paused
			}
			return []string{stamp(in.OpenedAt), in.Service, status, fmt.Sprint(in.Actions),
				in.TimeToDetect.Round(time.Second).String(), recover, stamp(in.ResolvedAt), in.LastAction, clip(in.Reason, 80)}
		},
	}.print(ctx, o, w)
}
