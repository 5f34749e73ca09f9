package journal

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ares-sre/ares/engine"
)

//go:embed migrations
var migrations embed.FS

// execer is what the SQL backends share: statements use ? placeholders (rewritten to $n for
// PostgreSQL) and only portable SQL (INSERT ... ON CONFLICT works in SQLite ≥ 3.24 and
// PostgreSQL ≥ 9.5).
type execer interface {
	exec(ctx context.Context, q string, args ...any) error
	query(ctx context.Context, q string, args []any, each func(scan func(dest ...any) error) error) error
}

// sqlDB is one SQL database: SQLite through database/sql, PostgreSQL through pgxpool.
type sqlDB interface {
	execer
	tx(ctx context.Context, fn func(execer) error) error
	close()
}

// op is one unit of work queued for the database. Every op is idempotent (inserts ignore
// conflicts, updates set absolute values), so a batch whose commit was lost can be retried.
type op struct {
	seq      uint64
	kind     string // metric label: tick|intent|outcome|incident|revision
	tick     *tickRow
	intent   *Intent
	outcome  *outcomeRow
	incident *Incident
	revision *revisionRow
	audit    *AuditRecord
}

const (
	kindTick     = "tick"
	kindIntent   = "intent"
	kindOutcome  = "outcome"
	kindIncident = "incident"
	kindRevision = "revision"
)

type tickRow struct {
	runID     string
	rec       engine.TickRecord // Facts not used: see factsHash, factsGz
	factsHash string
	factsGz   []byte
	factsSize int
	decisions []DecisionRecord
}

type outcomeRow struct {
	id         string
	doneAt     time.Time
	out        engine.Outcome
	reconciled bool
	// decided: the tick's decision rows were queued before this outcome, which updates them too.
	decided bool
}

type revisionRow struct {
	id    string
	at    time.Time
	rev   string
	files []string
	err   string
}

// backend is a database behind the buffered writer.
type backend interface {
	apply(ctx context.Context, ops []op) error
	unfinished(ctx context.Context) ([]Intent, error)
	openIncidents(ctx context.Context) ([]Incident, error)
	incidents(ctx context.Context, q Query) ([]Incident, error)
	actions(ctx context.Context, q Query) ([]DecisionRecord, error)
	recentActions(ctx context.Context, since time.Time) ([]DoneAction, error)
	ticks(ctx context.Context, since time.Time, each func(RecordedTick) error) error
	stats(ctx context.Context) (Stats, error)
	auditLog(ctx context.Context, q Query) ([]AuditRecord, error)
	close()
}

// sqlBackend implements backend over either SQL database.
type sqlBackend struct {
	db sqlDB

	mu    sync.Mutex
	known map[string]bool // facts hashes known to be stored: their blobs are not sent again
}

func newSQLBackend(ctx context.Context, db sqlDB, dialect, lock string) (*sqlBackend, error) {
	if err := migrate(ctx, db, dialect, lock); err != nil {
		return nil, err
	}
	return &sqlBackend{db: db, known: map[string]bool{}}, nil
}

// migrate applies the embedded migrations/<dialect>/NNNN_*.sql not yet recorded in
// schema_migrations, in order, in one transaction (under lock, when given, so that two ARES
// starting at once do not race).
func migrate(ctx context.Context, db sqlDB, dialect, lock string) error {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("journal: migrations: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	err = db.tx(ctx, func(x execer) error {
		if lock != "" {
			if err := x.exec(ctx, lock); err != nil {
				return err
			}
		}
		if err := x.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ns BIGINT NOT NULL)`); err != nil {
			return err
		}
		applied := map[int64]bool{}
		if err := x.query(ctx, `SELECT version FROM schema_migrations`, nil, func(scan func(...any) error) error {
			var v int64
			if err := scan(&v); err != nil {
				return err
			}
			applied[v] = true
			return nil
		}); err != nil {
			return err
		}
		for _, e := range entries {
			num, _, ok := strings.Cut(e.Name(), "_")
			v, err := strconv.ParseInt(num, 10, 64)
			if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
				return fmt.Errorf("migration %s: name must be NNNN_what.sql", e.Name())
			}
			if applied[v] {
				continue
			}
			body, err := migrations.ReadFile(dir + "/" + e.Name())
			if err != nil {
				return err
			}
			if err := x.exec(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", e.Name(), err)
			}
			if err := x.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)`, v, e.Name(), time.Now().UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: migrate %s: %w", dialect, err)
	}
	return nil
}

func (b *sqlBackend) close() { b.db.close() }

func (b *sqlBackend) apply(ctx context.Context, ops []op) error {
	var stored []string
	b.mu.Lock()
	known := make(map[string]bool, len(b.known))
	for h := range b.known {
		known[h] = true
	}
	b.mu.Unlock()
	err := b.db.tx(ctx, func(x execer) error {
		for _, o := range ops {
			var err error
			switch o.kind {
			case kindTick:
				if h := o.tick.factsHash; h != "" && !known[h] {
					known[h] = true
					stored = append(stored, h)
					err = x.exec(ctx, `INSERT INTO facts (hash, gz, size) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
						h, o.tick.factsGz, int64(o.tick.factsSize))
				}
				if err == nil {
					err = insertTick(ctx, x, o.tick)
				}
			case kindIntent:
				i := o.intent
				a := i.Action
				var sid, sstate string
				if a.Sensed != nil {
					sid, sstate = a.Sensed.ID, a.Sensed.State
				}
				err = x.exec(ctx, `INSERT INTO intents (id, run_id, tick, at_ns, service, replica, action, reason, verdict, sensed_id, sensed_state,
					done_ns, outcome_result, outcome_error, outcome_detail, outcome_duration_ns, reconciled)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', '', 0, ?) ON CONFLICT (id) DO NOTHING`,
					i.ID, i.RunID, int64(i.Tick), ns(i.At), a.Service, a.Replica, a.Action, a.Reason, a.Verdict, sid, sstate, false)
			case kindOutcome:
				r := o.outcome
				err = x.exec(ctx, `UPDATE intents SET done_ns = ?, outcome_result = ?, outcome_error = ?, outcome_detail = ?, outcome_duration_ns = ?, reconciled = ? WHERE id = ?`,
					ns(r.doneAt), r.out.Result, r.out.Error, r.out.Detail, int64(r.out.Duration), r.reconciled, r.id)
				if err == nil && r.decided {
					// An action that ran past its tick's record: its decision row is written
					// already and gets the outcome too.
					err = x.exec(ctx, `UPDATE decisions SET outcome_result = ?, outcome_error = ?, outcome_detail = ?, outcome_duration_ns = ? WHERE intent_id = ?`,
						r.out.Result, r.out.Error, r.out.Detail, int64(r.out.Duration), r.id)
				}
			case kindIncident:
				in := o.incident
				err = x.exec(ctx, `INSERT INTO incidents (id, service, status, opened_ns, first_bad_ns, first_decision_ns, resolved_ns, actions, last_action, reason, needs_human)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (id) DO UPDATE SET status = excluded.status, first_bad_ns = excluded.first_bad_ns,
						first_decision_ns = excluded.first_decision_ns, resolved_ns = excluded.resolved_ns,
						actions = excluded.actions, last_action = excluded.last_action, needs_human = excluded.needs_human`,
					in.ID, in.Service, in.Status, ns(in.OpenedAt), ns(in.FirstBad), ns(in.FirstDecision), ns(in.ResolvedAt),
					int64(in.Actions), in.LastAction, in.Reason, in.NeedsHuman)
			case kindRevision:
				r := o.revision
				files, _ := json.Marshal(r.files)
				err = x.exec(ctx, `INSERT INTO policy_revisions (id, at_ns, revision, files, error) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
					r.id, ns(r.at), r.rev, string(files), r.err)
			case kindAudit:
				err = insertAudit(ctx, x, o.audit)
			default:
				err = fmt.Errorf("unknown op %q", o.kind)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", o.kind, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	if len(b.known) > 4096 {
		b.known = map[string]bool{}
	}
	for _, h := range stored {
		b.known[h] = true
	}
	b.mu.Unlock()
	return nil
}

func insertTick(ctx context.Context, x execer, t *tickRow) error {
	r := t.rec
	rejected, _ := json.Marshal(r.Rejected)
	if r.Rejected == nil {
		rejected = []byte("[]")
	}
	if err := x.exec(ctx, `INSERT INTO ticks (run_id, tick, at_ns, triggered_by, dry_run, policy_rev, facts_hash, rejected, error, duration_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, tick) DO NOTHING`,
		t.runID, int64(r.Tick), ns(r.At), r.Trigger, r.DryRun, r.PolicyRev, t.factsHash, string(rejected), r.Err, int64(r.Duration)); err != nil {
		return err
	}
	for _, d := range t.decisions {
		result, _ := json.Marshal(d.Result)
		var o engine.Outcome
		if d.Outcome != nil {
			o = *d.Outcome
		}
		if err := x.exec(ctx, `INSERT INTO decisions (decision_id, run_id, tick, ts_ns, path, revision, input, result, service, replica, action, reason,
			verdict, why, intent_id, outcome_result, outcome_error, outcome_detail, outcome_duration_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (decision_id) DO NOTHING`,
			d.DecisionID, d.RunID, int64(d.Tick), ns(d.Timestamp), d.Path, d.Revision, d.Input, string(result),
			d.Result.Service, d.Result.Replica, d.Result.Action, d.Result.Reason, d.Verdict, d.Why, d.IntentID,
			o.Result, o.Error, o.Detail, int64(o.Duration)); err != nil {
			return err
		}
	}
	return nil
}

const intentCols = `id, run_id, tick, at_ns, service, replica, action, reason, verdict, sensed_id, sensed_state,
	done_ns, outcome_result, outcome_error, outcome_detail, outcome_duration_ns`

type intentScan struct {
	in                             Intent
	tick, at, done, dur            int64
	sid, sstate, res, errs, detail string
}

func (s *intentScan) dest() []any {
	a := &s.in.Action
	return []any{&s.in.ID, &s.in.RunID, &s.tick, &s.at, &a.Service, &a.Replica, &a.Action, &a.Reason, &a.Verdict,
		&s.sid, &s.sstate, &s.done, &s.res, &s.errs, &s.detail, &s.dur}
}

func (s *intentScan) finish() Intent {
	in := s.in
	in.Tick, in.At = uint64(s.tick), fromNS(s.at)
	if s.sid != "" || s.sstate != "" {
		in.Action.Sensed = &engine.SensedReplica{ID: s.sid, State: s.sstate}
	}
	if s.done != 0 {
		in.Action.Outcome = &engine.Outcome{Result: s.res, Error: s.errs, Detail: s.detail, Duration: time.Duration(s.dur)}
	}
	return in
}

func (b *sqlBackend) queryIntents(ctx context.Context, where string, args ...any) ([]Intent, []int64, error) {
	var out []Intent
	var done []int64
	err := b.db.query(ctx, `SELECT `+intentCols+` FROM intents WHERE `+where+` ORDER BY at_ns, id`, args, func(scan func(...any) error) error {
		var s intentScan
		if err := scan(s.dest()...); err != nil {
			return err
		}
		out = append(out, s.finish())
		done = append(done, s.done)
		return nil
	})
	return out, done, err
}

func (b *sqlBackend) unfinished(ctx context.Context) ([]Intent, error) {
	in, _, err := b.queryIntents(ctx, `done_ns = 0`)
	return in, err
}

func (b *sqlBackend) recentActions(ctx context.Context, since time.Time) ([]DoneAction, error) {
	in, done, err := b.queryIntents(ctx, `at_ns >= ?`, ns(since))
	if err != nil {
		return nil, err
	}
	out := make([]DoneAction, len(in))
	for i := range in {
		out[i] = DoneAction{At: in[i].At, Action: in[i].Action}
		if done[i] != 0 {
			out[i].At = fromNS(done[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

const incidentCols = `id, service, status, opened_ns, first_bad_ns, first_decision_ns, resolved_ns, actions, last_action, reason, needs_human`

func (b *sqlBackend) queryIncidents(ctx context.Context, where string, args ...any) ([]Incident, error) {
	var out []Incident
	err := b.db.query(ctx, `SELECT `+incidentCols+` FROM incidents WHERE `+where+` ORDER BY opened_ns DESC, id DESC`, args, func(scan func(...any) error) error {
		var in Incident
		var opened, bad, dec, res, n int64
		if err := scan(&in.ID, &in.Service, &in.Status, &opened, &bad, &dec, &res, &n, &in.LastAction, &in.Reason, &in.NeedsHuman); err != nil {
			return err
		}
		in.OpenedAt, in.FirstBad, in.FirstDecision, in.ResolvedAt, in.Actions = fromNS(opened), fromNS(bad), fromNS(dec), fromNS(res), int(n)
		in.TimeToDetect = in.FirstDecision.Sub(in.FirstBad)
		if res != 0 {
			in.TimeToRecover = in.ResolvedAt.Sub(in.FirstBad)
		}
		out = append(out, in)
		return nil
	})
	return out, err
}

func (b *sqlBackend) openIncidents(ctx context.Context) ([]Incident, error) {
	return b.queryIncidents(ctx, `status = ?`, IncidentOpen)
}

func (b *sqlBackend) incidents(ctx context.Context, q Query) ([]Incident, error) {
	where, args := `(opened_ns >= ? OR resolved_ns >= ? OR status = ?)`, []any{ns(q.Since), ns(q.Since), IncidentOpen}
	if q.Service != "" {
		where += ` AND service = ?`
		args = append(args, q.Service)
	}
	return b.queryIncidents(ctx, where, args...)
}

func (b *sqlBackend) actions(ctx context.Context, q Query) ([]DecisionRecord, error) {
	where, args := `ts_ns >= ?`, []any{ns(q.Since)}
	if q.Service != "" {
		where += ` AND service = ?`
		args = append(args, q.Service)
	}
	var out []DecisionRecord
	err := b.db.query(ctx, `SELECT decision_id, run_id, tick, ts_ns, path, revision, input, result, service, replica, action, reason,
		verdict, why, intent_id, outcome_result, outcome_error, outcome_detail, outcome_duration_ns
		FROM decisions WHERE `+where+` ORDER BY ts_ns, run_id, tick, decision_id`, args, func(scan func(...any) error) error {
		var d DecisionRecord
		var tick, ts, dur int64
		var o engine.Outcome
		var result string
		if err := scan(&d.DecisionID, &d.RunID, &tick, &ts, &d.Path, &d.Revision, &d.Input, &result, &d.Result.Service, &d.Result.Replica,
			&d.Result.Action, &d.Result.Reason, &d.Verdict, &d.Why, &d.IntentID, &o.Result, &o.Error, &o.Detail, &dur); err != nil {
			return err
		}
		d.Result.Node = resultNode(d.Result.Action, result)
		d.Tick, d.Timestamp = uint64(tick), fromNS(ts)
		if o.Result != "" {
			o.Duration = time.Duration(dur)
			d.Outcome = &o
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Intents whose tick was never recorded (ARES died between intent and outcome).
	iw, iargs := `at_ns >= ? AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.intent_id = intents.id)`, []any{ns(q.Since)}
	if q.Service != "" {
		iw += ` AND service = ?`
		iargs = append(iargs, q.Service)
	}
	orphans, _, err := b.queryIntents(ctx, iw, iargs...)
	if err != nil {
		return nil, err
	}
	for _, in := range orphans {
		out = append(out, DecisionRecord{RunID: in.RunID, Tick: in.Tick, Timestamp: in.At, Result: in.Action.Decision,
			Verdict: in.Action.Verdict, Why: in.Action.Why, IntentID: in.ID, Outcome: in.Action.Outcome})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}

func (b *sqlBackend) ticks(ctx context.Context, since time.Time, each func(RecordedTick) error) error {
	var ticks []RecordedTick
	err := b.db.query(ctx, `SELECT run_id, tick, at_ns, policy_rev, dry_run, facts_hash FROM ticks WHERE at_ns >= ? ORDER BY at_ns, run_id, tick`,
		[]any{ns(since)}, func(scan func(...any) error) error {
			var t RecordedTick
			var tick, at int64
			if err := scan(&t.RunID, &tick, &at, &t.PolicyRev, &t.DryRun, &t.FactsHash); err != nil {
				return err
			}
			t.Tick, t.At = uint64(tick), fromNS(at)
			ticks = append(ticks, t)
			return nil
		})
	if err != nil {
		return err
	}
	type key struct {
		run  string
		tick uint64
	}
	decided := map[key][]engine.Decision{}
	err = b.db.query(ctx, `SELECT run_id, tick, action, service, replica, reason, result FROM decisions WHERE ts_ns >= ? ORDER BY decision_id`,
		[]any{ns(since)}, func(scan func(...any) error) error {
			var k key
			var tick int64
			var d engine.Decision
			var result string
			if err := scan(&k.run, &tick, &d.Action, &d.Service, &d.Replica, &d.Reason, &result); err != nil {
				return err
			}
			d.Node = resultNode(d.Action, result)
			k.tick = uint64(tick)
			decided[k] = append(decided[k], d)
			return nil
		})
	if err != nil {
		return err
	}
	var lastHash string
	var lastRaw []byte
	for _, t := range ticks {
		t.Decisions = decided[key{t.RunID, t.Tick}]
		if t.Decisions == nil {
			t.Decisions = []engine.Decision{}
		}
		if t.FactsHash != "" {
			if t.FactsHash != lastHash {
				var gz []byte
				if err := b.db.query(ctx, `SELECT gz FROM facts WHERE hash = ?`, []any{t.FactsHash}, func(scan func(...any) error) error {
					return scan(&gz)
				}); err != nil {
					return err
				}
				if gz == nil {
					return fmt.Errorf("journal: tick %s/%d: facts %s missing", t.RunID, t.Tick, t.FactsHash)
				}
				raw, err := gunzip(gz)
				if err != nil {
					return fmt.Errorf("journal: facts %s: %w", t.FactsHash, err)
				}
				lastHash, lastRaw = t.FactsHash, raw
			}
			f, err := decodeFacts(lastRaw, t.Tick, t.At)
			if err != nil {
				return fmt.Errorf("journal: facts %s: %w", t.FactsHash, err)
			}
			t.Facts = f
		}
		if err := each(t); err != nil {
			return err
		}
	}
	return nil
}

func (b *sqlBackend) stats(ctx context.Context) (Stats, error) {
	var s Stats
	for _, c := range []struct {
		q string
		n *int
	}{
		{`SELECT COUNT(*) FROM ticks`, &s.Ticks}, {`SELECT COUNT(*) FROM facts`, &s.FactsBlobs},
		{`SELECT COUNT(*) FROM decisions`, &s.Decisions}, {`SELECT COUNT(*) FROM intents`, &s.Intents},
		{`SELECT COUNT(*) FROM intents WHERE done_ns = 0`, &s.Unfinished}, {`SELECT COUNT(*) FROM incidents`, &s.Incidents},
		{`SELECT COUNT(*) FROM policy_revisions`, &s.Revisions},
	} {
		var n int64
		if err := b.db.query(ctx, c.q, nil, func(scan func(...any) error) error { return scan(&n) }); err != nil {
			return s, err
		}
		*c.n = int(n)
	}
	return s, nil
}

// encodeFacts returns the content hash, gzip and size of a facts document without its tick
// number and time (which change every tick and live in the tick row), so that an unchanged
// document hashes the same tick after tick.
func encodeFacts(f *engine.Facts) (hash string, raw []byte, err error) {
	c := *f
	c.Tick, c.Time = 0, time.Time{}
	raw, err = json.Marshal(&c)
	if err != nil {
		return "", nil, err
	}
	return "sha256:" + sha256Hex(raw), raw, nil
}

func decodeFacts(raw []byte, tick uint64, at time.Time) (*engine.Facts, error) {
	var f engine.Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	f.Tick, f.Time = tick, at
	if f.Services == nil {
		f.Services = map[string]*engine.Service{}
	}
	if f.Sensors == nil {
		f.Sensors = map[string]engine.SensorStatus{}
	}
	if f.Alerts == nil {
		f.Alerts = []engine.Alert{}
	}
	return &f, nil
}

func gzipBytes(raw []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return buf.Bytes()
}

func gunzip(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// resultNode is the node of a node-level decision (drain), which has no column of its own:
// it is read from the decision's JSON in the result column.
func resultNode(action, result string) string {
	if !engine.NodeLevel(action) || result == "" {
		return ""
	}
	var d engine.Decision
	if err := json.Unmarshal([]byte(result), &d); err != nil {
		return ""
	}
	return d.Node
}
