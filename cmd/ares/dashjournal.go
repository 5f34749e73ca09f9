package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ares-sre/ares/dashboard"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/journal"
)

// The dashboard reads incidents and keeps its audit trail in the journal store, so that both
// survive a restart of ARES. These adapters translate between the two packages' types; a file
// journal has neither, and the dashboard then keeps its own in memory.

// dashIncidents returns the journal as the dashboard's durable incident source, or nil.
func dashIncidents(store journal.Store, backend string) dashboard.IncidentSource {
	if store == nil || backend == journal.BackendFile {
		return nil
	}
	return journalIncidents{store}
}

type journalIncidents struct{ s journal.Store }

func (j journalIncidents) Incidents(ctx context.Context, since time.Time, service string) ([]dashboard.Incident, error) {
	ins, err := j.s.Incidents(ctx, journal.Query{Since: since, Service: service})
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.Incident, 0, len(ins))
	for _, in := range ins {
		out = append(out, incidentFromJournal(in))
	}
	return out, nil
}

// incidentFromJournal shows a journaled incident on the dashboard. The journal keeps its
// times and counts, not each step, so the timeline is rebuilt from them.
func incidentFromJournal(in journal.Incident) dashboard.Incident {
	d := dashboard.Incident{ID: in.ID, Service: in.Service, Cause: in.Reason, OpenedAt: in.OpenedAt,
		TimeToDetect: in.TimeToDetect, TimeToRecover: in.TimeToRecover, Actions: []engine.Action{}, Timeline: []dashboard.TimelineEvent{},
		NeedsHuman: in.NeedsHuman}
	if !in.FirstBad.IsZero() {
		d.DetectedAt = ptr(in.FirstBad)
		d.Timeline = append(d.Timeline, dashboard.TimelineEvent{At: in.FirstBad, Stage: dashboard.StageDetected,
			Message: "first unhealthy tick (from the journal, recorded before ARES restarted)"})
	}
	if !in.FirstDecision.IsZero() {
		d.DecidedAt = ptr(in.FirstDecision)
		d.Timeline = append(d.Timeline, dashboard.TimelineEvent{At: in.FirstDecision, Stage: dashboard.StageDecided,
			Message: fmt.Sprintf("%s (%d action(s), last: %s)", in.Reason, in.Actions, in.LastAction)})
	}
	if in.Status == journal.IncidentResolved && !in.ResolvedAt.IsZero() {
		d.ResolvedAt = ptr(in.ResolvedAt)
		d.Timeline = append(d.Timeline, dashboard.TimelineEvent{At: in.ResolvedAt, Stage: dashboard.StageResolved,
			Message: fmt.Sprintf("healthy again (time to recover %s)", in.TimeToRecover.Round(time.Millisecond))})
	}
	return d
}

// dashAudit returns the journal as the dashboard's durable audit trail, or nil.
func dashAudit(store journal.Store, backend string) dashboard.AuditStore {
	if store == nil || backend == journal.BackendFile {
		return nil
	}
	return journalAudit{store}
}

type journalAudit struct{ s journal.Store }

func (j journalAudit) RecordAudit(ctx context.Context, e dashboard.AuditEntry) error {
	return j.s.Audit(ctx, journal.AuditRecord{At: e.At, Who: e.Who, Remote: e.Remote, Via: e.Via, Op: e.Op,
		Target: e.Target, Detail: e.Detail, Why: e.Why, Result: e.Result})
}

func (j journalAudit) AuditLog(ctx context.Context, since time.Time, service string) ([]dashboard.AuditEntry, error) {
	rs, err := j.s.AuditLog(ctx, journal.Query{Since: since, Service: service})
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.AuditEntry, 0, len(rs))
	for _, r := range rs {
		out = append(out, dashboard.AuditEntry{At: r.At, Who: r.Who, Remote: r.Remote, Via: r.Via, Op: r.Op,
			Target: r.Target, Detail: r.Detail, Why: r.Why, Result: r.Result})
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
