package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ares-sre/ares/engine"
)

// dbStore turns the engine's calls into ops for the buffered writer and follows incidents in
// memory (the open ones are loaded at Open), so that the tick never reads the database.
type dbStore struct {
	be    backend
	w     *writer
	cfg   Config
	log   *slog.Logger
	runID string

	mu        sync.Mutex // serializes the engine's calls: ops are queued in the order they happen
	svcs      map[string]*svcTrack
	intents   map[intentKey]string      // intent ids by tick and target, until the tick is recorded
	early     map[string]engine.Outcome // outcomes that came before their tick was recorded, by intent id
	lastHash  string
	lastGz    []byte
	lastSize  int
	closeOnce sync.Once
}

type intentKey struct {
	tick           uint64
	action, target string
}

// svcTrack follows one service between healthy ticks.
type svcTrack struct {
	firstBad      time.Time // first tick it was not healthy since it last was; zero while healthy
	firstDecision time.Time // first tick with a decision for it since firstBad
	open          *Incident
	pending       bool // open was opened before this tick's facts were seen: fix its times at Record
}

var _ Store = (*dbStore)(nil)

func newDBStore(ctx context.Context, be backend, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*dbStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &dbStore{be: be, cfg: cfg, log: log, runID: newID(time.Now())[:16], svcs: map[string]*svcTrack{}, intents: map[intentKey]string{},
		early: map[string]engine.Outcome{}}
	open, err := be.openIncidents(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: open incidents: %w", err)
	}
	for i := range open {
		in := open[i]
		s.svcs[in.Service] = &svcTrack{firstBad: in.FirstBad, firstDecision: in.FirstDecision, open: &in}
	}
	s.w = newWriter(be, cfg.Buffer, reg, log)
	return s, nil
}

func (s *dbStore) track(service string) *svcTrack {
	t := s.svcs[service]
	if t == nil {
		t = &svcTrack{}
		s.svcs[service] = t
	}
	return t
}

// countAction opens the service's incident when none is open and counts a into it; s.mu held.
func (s *dbStore) countAction(a engine.Action, at time.Time) op {
	t := s.track(a.Scope()) // a node-level action (drain) files its incident under "node/<node>"
	if t.open == nil {
		in := &Incident{ID: newID(at), Service: a.Scope(), Status: IncidentOpen, OpenedAt: at, FirstBad: t.firstBad,
			FirstDecision: t.firstDecision, Reason: a.Reason}
		if in.FirstBad.IsZero() {
			in.FirstBad = at
		}
		if in.FirstDecision.IsZero() {
			in.FirstDecision = in.FirstBad
		}
		t.open, t.pending = in, true
	}
	t.open.Actions++
	t.open.LastAction = a.Action + " " + a.Target()
	if a.Escalation {
		t.open.NeedsHuman = true // until resolved
	}
	in := *t.open
	return op{kind: kindIncident, incident: &in}
}

// Intent records a before its actuator runs. With Config.SyncIntents it is written before
// Intent returns, unless the database does not answer within Config.SyncTimeout; then, as
// without SyncIntents, it is queued and durable only once flushed.
func (s *dbStore) Intent(ctx context.Context, tick uint64, a engine.Action) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	in := Intent{ID: newID(now), RunID: s.runID, Tick: tick, At: now, Action: a}
	in.Action.Outcome = nil
	// The incident first: a durable intent implies a durable incident (batches commit in order).
	ops := []op{s.countAction(a, now), {kind: kindIntent, intent: &in}}
	var err error
	if s.cfg.SyncIntents {
		_, err = s.w.writeNow(ctx, s.cfg.SyncTimeout, ops...)
	} else {
		err = s.w.enqueue(ops...)
	}
	if err != nil {
		return "", err
	}
	d := a.Decided()
	s.intents[intentKey{tick, d.Action, d.Target()}] = in.ID
	return in.ID, nil
}

// Outcome records what the actuator did for the intent id. The engine runs actions
// asynchronously, so an outcome may come before or after its tick is recorded: before, the
// tick's decision row takes it; after, the outcome also updates the decision row.
func (s *dbStore) Outcome(_ context.Context, id string, a engine.Action) error {
	if id == "" || a.Outcome == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	decided := true
	for _, pending := range s.intents {
		if pending == id {
			decided = false
			s.early[id] = *a.Outcome
			break
		}
	}
	return s.w.enqueue(op{kind: kindOutcome, outcome: &outcomeRow{id: id, doneAt: time.Now().UTC(), out: *a.Outcome, decided: decided}})
}

// Record queues the tick with its decisions and facts and follows the incidents.
func (s *dbStore) Record(_ context.Context, rec engine.TickRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &tickRow{runID: s.runID, rec: rec}
	t.rec.Facts = nil
	if rec.Facts != nil {
		hash, raw, err := encodeFacts(rec.Facts)
		if err != nil {
			return fmt.Errorf("journal: encode facts of tick %d: %w", rec.Tick, err)
		}
		if hash != s.lastHash { // unchanged documents share one compressed copy in the queue
			s.lastHash, s.lastGz, s.lastSize = hash, gzipBytes(raw), len(raw)
		}
		t.factsHash, t.factsGz, t.factsSize = s.lastHash, s.lastGz, s.lastSize
	}
	byKey := map[intentKey]*engine.Action{}
	for i := range rec.Actions {
		a := &rec.Actions[i]
		d := a.Decided() // filed under the policy's decision, even when the governor moved it up the ladder
		byKey[intentKey{rec.Tick, d.Action, d.Target()}] = a
	}
	decided := map[string]bool{}
	for _, d := range rec.Decisions {
		decided[d.Service] = true
		k := intentKey{rec.Tick, d.Action, d.Target()}
		dr := DecisionRecord{DecisionID: newID(rec.At), Path: s.cfg.Query, Input: t.factsHash, Result: d, Timestamp: rec.At,
			Revision: rec.PolicyRev, RunID: s.runID, Tick: rec.Tick, IntentID: s.intents[k]}
		if a := byKey[k]; a != nil {
			dr.Verdict, dr.Why, dr.Outcome = a.Verdict, a.Why, a.Outcome
		}
		if out, ok := s.early[dr.IntentID]; ok && dr.Outcome == nil {
			dr.Outcome = &out
		}
		delete(s.early, dr.IntentID)
		delete(s.intents, k)
		t.decisions = append(t.decisions, dr)
	}
	for k, id := range s.intents {
		if k.tick == rec.Tick { // intents of this tick without a decision (an escalation's notify)
			delete(s.intents, k)
			delete(s.early, id)
		}
	}
	ops := []op{{kind: kindTick, tick: t}}
	if rec.Facts != nil {
		ops = append(ops, s.followIncidents(rec, decided)...)
	}
	for _, o := range ops {
		if err := s.w.enqueue(o); err != nil {
			return err
		}
	}
	return nil
}

// followIncidents updates each service's track from this tick's facts and returns the
// incident changes: the first bad tick of an incident opened during this tick, and
// resolutions. A service is healthy when it has replicas, all running and not unhealthy,
// and the policies decided nothing about it.
func (s *dbStore) followIncidents(rec engine.TickRecord, decided map[string]bool) []op {
	var ops []op
	for name, svc := range rec.Facts.Services {
		t := s.track(name)
		if serviceHealthy(svc) && !decided[name] {
			if t.open != nil {
				in := t.open
				in.Status, in.ResolvedAt, in.NeedsHuman = IncidentResolved, rec.At, false
				in.TimeToDetect, in.TimeToRecover = in.FirstDecision.Sub(in.FirstBad), rec.At.Sub(in.FirstBad)
				c := *in
				ops = append(ops, op{kind: kindIncident, incident: &c})
			}
			delete(s.svcs, name)
			continue
		}
		if t.firstBad.IsZero() {
			t.firstBad = rec.At
		}
		if decided[name] && t.firstDecision.IsZero() {
			t.firstDecision = rec.At
		}
		if t.open != nil && t.pending {
			t.pending = false
			t.open.FirstBad = t.firstBad
			if !t.firstDecision.IsZero() {
				t.open.FirstDecision = t.firstDecision
			}
			if t.open.FirstDecision.Before(t.open.FirstBad) {
				t.open.FirstDecision = t.open.FirstBad
			}
			t.open.TimeToDetect = t.open.FirstDecision.Sub(t.open.FirstBad)
			c := *t.open
			ops = append(ops, op{kind: kindIncident, incident: &c})
		}
	}
	return append(ops, s.followNodes(rec)...)
}

// followNodes resolves the incidents of node-level actions ("node/<node>") once the node is
// out of scheduling (drained) or gone from the swarm: what a drain was for.
func (s *dbStore) followNodes(rec engine.TickRecord) []op {
	var ops []op
	for key, t := range s.svcs {
		name, ok := strings.CutPrefix(key, "node/")
		if !ok || t.open == nil || rec.Facts.Nodes == nil {
			continue
		}
		if _, n, found := rec.Facts.Node(name); found && n.Availability == "active" {
			continue
		}
		in := t.open
		in.Status, in.ResolvedAt, in.NeedsHuman = IncidentResolved, rec.At, false
		in.TimeToDetect, in.TimeToRecover = in.FirstDecision.Sub(in.FirstBad), rec.At.Sub(in.FirstBad)
		c := *in
		ops = append(ops, op{kind: kindIncident, incident: &c})
		delete(s.svcs, key)
	}
	return ops
}

func serviceHealthy(svc *engine.Service) bool {
	if svc == nil || len(svc.Replicas) == 0 {
		return false
	}
	for _, r := range svc.Replicas {
		if r.State != "running" || r.Health == "unhealthy" {
			return false
		}
	}
	return true
}

// Revision records a policy load or a failed reload.
func (s *dbStore) Revision(_ context.Context, rev string, files []string, err error) error {
	now := time.Now().UTC()
	r := &revisionRow{id: newID(now), at: now, rev: rev, files: append([]string{}, files...)}
	if err != nil {
		r.err = err.Error()
	}
	return s.w.enqueue(op{kind: kindRevision, revision: r})
}

func (s *dbStore) Unfinished(ctx context.Context) ([]Intent, error) {
	in, err := s.be.unfinished(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: unfinished intents: %w", err)
	}
	return in, nil
}

// Reconcile writes, synchronously, an outcome for each unfinished intent. Its incident stays
// open (the next ticks resolve it once the service is healthy); an intent whose incident is
// missing or was resolved meanwhile opens one, so that no action is without an incident.
func (s *dbStore) Reconcile(ctx context.Context, check func(Intent) engine.Outcome) (int, error) {
	list, err := s.Unfinished(ctx)
	if err != nil {
		return 0, err
	}
	if len(list) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.flush(ctx); err != nil {
		return 0, err
	}
	open, err := s.be.openIncidents(ctx)
	if err != nil {
		return 0, fmt.Errorf("journal: reconcile: %w", err)
	}
	has := map[string]bool{}
	for _, in := range open {
		has[in.Service] = true
	}
	var ops []op
	for _, in := range list {
		out := check(in)
		if out.Result == "" {
			out.Result = engine.ResultError
		}
		if out.Detail == "" {
			out.Detail = "reconciled at start: ARES stopped before the outcome was recorded"
		}
		ops = append(ops, op{kind: kindOutcome, outcome: &outcomeRow{id: in.ID, doneAt: time.Now().UTC(), out: out, reconciled: true}})
		if !has[in.Action.Service] {
			has[in.Action.Service] = true
			t := s.track(in.Action.Service)
			t.firstBad, t.firstDecision, t.open, t.pending = in.At, in.At, nil, false
			ops = append(ops, s.countAction(in.Action, in.At))
		}
	}
	if err := s.w.applyLocked(ctx, ops); err != nil {
		return 0, fmt.Errorf("journal: reconcile: %w", err)
	}
	return len(list), nil
}

func (s *dbStore) RecentActions(ctx context.Context, since time.Time) ([]DoneAction, error) {
	return s.be.recentActions(ctx, since)
}

func (s *dbStore) Incidents(ctx context.Context, q Query) ([]Incident, error) {
	return s.be.incidents(ctx, q)
}

func (s *dbStore) Actions(ctx context.Context, q Query) ([]DecisionRecord, error) {
	return s.be.actions(ctx, q)
}

func (s *dbStore) Ticks(ctx context.Context, since time.Time, each func(RecordedTick) error) error {
	return s.be.ticks(ctx, since, each)
}

func (s *dbStore) Stats(ctx context.Context) (Stats, error) { return s.be.stats(ctx) }

func (s *dbStore) Flush(ctx context.Context) error { return s.w.flush(ctx) }

func (s *dbStore) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.w.close(s.cfg.CloseTimeout)
		s.be.close()
	})
	return err
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
