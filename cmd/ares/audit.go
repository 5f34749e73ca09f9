package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine/journal"
)

type auditOpts = listOpts

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
	o.register(cmd, 7*24*time.Hour, "only calls on this service (and those on every service)")
	return cmd
}

func runAudit(ctx context.Context, o auditOpts, w io.Writer) error {
	return journalList[journal.AuditRecord]{
		name: "audit", what: "control requests",
		header: "AT\tWHO\tFROM\tVIA\tOP\tTARGET\tRESULT\tWHY",
		fetch: func(ctx context.Context, j journal.Store, q journal.Query) ([]journal.AuditRecord, error) {
			return j.AuditLog(ctx, q)
		},
		row: func(r journal.AuditRecord) []string {
			op := r.Op
			if r.Detail != "" {
				op += " " + r.Detail
			}
			from := r.Remote
			if from == "" {
				from = "-"
			}
			return []string{stamp(r.At), r.Who, from, r.Via, op, r.Target, r.Result, clip(r.Why, 80)}
		},
	}.print(ctx, o, w)
}
