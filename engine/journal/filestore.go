package journal

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ares-sre/ares/engine"
)

// fileStore is the JSON-lines File behind the Store interface: Record appends and syncs as
// File always did; intents, outcomes and revisions are not recorded (an action is in the
// tick's line with its outcome once the tick ends), so nothing is ever unfinished and there
// are no incidents. Queries scan the file.
type fileStore struct {
	*File
	path string
}

func openFileStore(path string) (Store, error) {
	f, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	return &fileStore{File: f, path: path}, nil
}

func (*fileStore) Intent(context.Context, uint64, engine.Action) (string, error) { return "", nil }
func (*fileStore) Outcome(context.Context, string, engine.Action) error          { return nil }
func (*fileStore) Revision(context.Context, string, []string, error) error       { return nil }
func (*fileStore) Unfinished(context.Context) ([]Intent, error)                  { return nil, nil }
func (*fileStore) Flush(context.Context) error                                   { return nil }
func (*fileStore) Reconcile(context.Context, func(Intent) engine.Outcome) (int, error) {
	return 0, nil
}
func (*fileStore) Incidents(context.Context, Query) ([]Incident, error) {
	return nil, fmt.Errorf("incidents: %w (use journal.backend sqlite or postgres)", ErrUnsupported)
}

// scan calls each for every tick record at or after since.
func (s *fileStore) scan(ctx context.Context, since time.Time, each func(engine.TickRecord) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var rec engine.TickRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			continue // a line torn by a crash
		}
		if rec.At.Before(since) {
			continue
		}
		if err := each(rec); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (s *fileStore) RecentActions(ctx context.Context, since time.Time) ([]DoneAction, error) {
	var out []DoneAction
	err := s.scan(ctx, since, func(rec engine.TickRecord) error {
		for _, a := range rec.Actions {
			if a.Admitted() {
				out = append(out, DoneAction{At: rec.At.Add(rec.Duration), Action: a})
			}
		}
		return nil
	})
	return out, err
}

func (s *fileStore) Actions(ctx context.Context, q Query) ([]DecisionRecord, error) {
	var out []DecisionRecord
	err := s.scan(ctx, q.Since, func(rec engine.TickRecord) error {
		for _, a := range rec.Actions {
			if q.Service != "" && a.Service != q.Service {
				continue
			}
			out = append(out, DecisionRecord{Result: a.Decision, Timestamp: rec.At, Revision: rec.PolicyRev, Tick: rec.Tick,
				Verdict: a.Verdict, Why: a.Why, Outcome: a.Outcome})
		}
		return nil
	})
	return out, err
}

func (s *fileStore) Ticks(ctx context.Context, since time.Time, each func(RecordedTick) error) error {
	return s.scan(ctx, since, func(rec engine.TickRecord) error {
		t := RecordedTick{Tick: rec.Tick, At: rec.At, PolicyRev: rec.PolicyRev, DryRun: rec.DryRun, Facts: rec.Facts, Decisions: rec.Decisions}
		if t.Decisions == nil {
			t.Decisions = []engine.Decision{}
		}
		return each(t)
	})
}

func (s *fileStore) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.scan(ctx, time.Time{}, func(rec engine.TickRecord) error {
		st.Ticks++
		st.Decisions += len(rec.Decisions)
		return nil
	})
	return st, err
}
