// Package journal records what every tick saw, decided and did. This version offers an
// append-only JSON-lines file (one TickRecord per line, synced to disk before Record returns,
// so a crash loses at most the tick in flight) and a Printer that shows decisions and
// actions to a person or a pipe as they happen.
package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ares-sre/ares/engine"
)

// File appends tick records to a file as JSON lines.
type File struct {
	mu sync.Mutex
	f  *os.File
}

var _ engine.Journal = (*File)(nil)

// OpenFile opens (creating if needed) path for appending.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &File{f: f}, nil
}

// Record appends rec as one line and syncs it.
func (j *File) Record(_ context.Context, rec engine.TickRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("journal: encode tick %d: %w", rec.Tick, err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal: write %s: %w", j.f.Name(), err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: sync %s: %w", j.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (j *File) Close() error { return j.f.Close() }

// Printer writes each tick's decisions to w: text lines for people, or one JSON object per
// tick for machines.
type Printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

var _ engine.Journal = (*Printer)(nil)

// NewPrinter returns a printer in format "text" or "json".
func NewPrinter(w io.Writer, format string) (*Printer, error) {
	switch format {
	case "text", "":
		return &Printer{w: w}, nil
	case "json":
		return &Printer{w: w, json: true}, nil
	}
	return nil, fmt.Errorf("output format %q: want text or json", format)
}

// PrintedTick is the JSON shape of one tick in -o json output.
type PrintedTick struct {
	Tick      uint64                    `json:"tick"`
	Time      string                    `json:"time"`
	Trigger   string                    `json:"trigger"`
	DryRun    bool                      `json:"dry_run"`
	PolicyRev string                    `json:"policy_rev"`
	Decisions []engine.Decision         `json:"decisions"`
	Actions   []engine.Action           `json:"actions"`
	Rejected  []engine.RejectedDecision `json:"rejected,omitempty"`
	Error     string                    `json:"error,omitempty"`
}

// Record prints rec. Text mode prints nothing for a quiet tick.
func (p *Printer) Record(_ context.Context, rec engine.TickRecord) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(PrintedTick{Tick: rec.Tick, Time: rec.At.Format("2006-01-02T15:04:05.000Z07:00"), Trigger: rec.Trigger,
			DryRun: rec.DryRun, PolicyRev: rec.PolicyRev, Decisions: rec.Decisions, Actions: rec.Actions,
			Rejected: rec.Rejected, Error: rec.Err})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	var sb strings.Builder
	for _, a := range rec.Actions {
		fmt.Fprintf(&sb, "tick %d  %s  %s  %s%s\n", rec.Tick, a.Action, a.Target(), a.Reason, verdictNote(a))
	}
	for _, r := range rec.Rejected {
		fmt.Fprintf(&sb, "tick %d  REJECTED  %s  %s\n", rec.Tick, r.Raw, r.Error)
	}
	if rec.Err != "" {
		fmt.Fprintf(&sb, "tick %d  ERROR  %s\n", rec.Tick, rec.Err)
	}
	_, err := io.WriteString(p.w, sb.String())
	return err
}

func verdictNote(a engine.Action) string {
	switch {
	case a.Verdict == engine.VerdictSuppress:
		return "  [suppressed: " + a.Why + "]"
	case a.Outcome == nil:
		return ""
	case a.Outcome.Result == engine.ResultOK:
		note := fmt.Sprintf("  [done in %s", a.Outcome.Duration.Round(100_000))
		if a.Outcome.Detail != "" {
			note += ": " + a.Outcome.Detail
		}
		return note + "]"
	default:
		return "  [failed: " + a.Outcome.Error + "]"
	}
}

// Multi records to every journal in order and joins their errors; one failing journal does not
// stop the others.
type Multi []engine.Journal

// Record records rec everywhere.
func (m Multi) Record(ctx context.Context, rec engine.TickRecord) error {
	var errs []error
	for _, j := range m {
		if err := j.Record(ctx, rec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
