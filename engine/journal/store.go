package journal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ares-sre/ares/engine"
)

// Store is a queryable journal: it records ticks, intents and outcomes, incidents and policy
// revisions, and answers the questions `ares run` asks at start (what was interrupted, what
// did ARES do lately) and the CLI asks afterwards. Open returns one; its Record, Intent,
// Outcome and Revision never wait for a slow or unavailable database (see Config.SyncIntents
// for the one exception).
type Store interface {
	engine.Journal
	engine.ActionJournal
	// Revision records a policy (re)load: the revision now live and its files, or, with err
	// set, a reload that failed (rev is then the revision that stayed live).
	Revision(ctx context.Context, rev string, files []string, err error) error

	// Unfinished lists the intents recorded without an outcome: actions a crash interrupted.
	Unfinished(ctx context.Context) ([]Intent, error)
	// Reconcile writes an outcome for every unfinished intent, as check decides from the
	// target's current state, and keeps the incidents consistent: every reconciled action
	// belongs to an incident. It returns how many intents it reconciled.
	Reconcile(ctx context.Context, check func(Intent) engine.Outcome) (int, error)
	// RecentActions lists the admitted actions since the given time, oldest first, for
	// replaying into the governor (governor.Done(a.Action, a.At)) at start.
	RecentActions(ctx context.Context, since time.Time) ([]DoneAction, error)

	// Incidents lists incidents opened or resolved since q.Since, and those still open,
	// newest first.
	Incidents(ctx context.Context, q Query) ([]Incident, error)
	// Actions lists the decision records since q.Since, oldest first.
	Actions(ctx context.Context, q Query) ([]DecisionRecord, error)
	// Ticks calls each for every recorded tick since the given time, oldest first, with its
	// facts and decisions.
	Ticks(ctx context.Context, since time.Time, each func(RecordedTick) error) error
	// Stats counts what the store holds.
	Stats(ctx context.Context) (Stats, error)

	// Audit records a mutating call of the API or the dashboard (who, what, why, result).
	Audit(ctx context.Context, r AuditRecord) error
	// AuditLog lists the audit records since q.Since, newest first.
	AuditLog(ctx context.Context, q Query) ([]AuditRecord, error)

	// Flush waits until everything queued so far is written, or ctx is done.
	Flush(ctx context.Context) error
	// Close writes what is queued (for at most Config.CloseTimeout) and closes the store. It
	// returns an error naming how many records were lost when the database did not come back.
	Close() error
}

// Config configures Open. The zero value of each field but Backend takes a default.
type Config struct {
	Backend string // BackendFile, BackendSQLite or BackendPostgres
	// Path is the SQLite database or the JSON-lines file.
	Path string
	// DSN is the PostgreSQL connection string (postgres://user:pass@host:5432/db?sslmode=...).
	DSN string
	// Buffer is how many records may wait for the database; default 10000.
	Buffer int
	// SyncIntents writes each intent before Intent returns (at most SyncTimeout), so that an
	// action is durable before it runs; when the database does not answer in time, the intent
	// is queued like everything else and the fallback is logged.
	SyncIntents bool
	// SyncTimeout bounds a synchronous intent write; default 500ms.
	SyncTimeout time.Duration
	// CloseTimeout bounds the final flush in Close; default 5s.
	CloseTimeout time.Duration
	// Query is the policy query, recorded as each decision's path; default data.ares.decisions.
	Query string
}

// Backends.
const (
	BackendFile     = "file"
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

func (c Config) withDefaults() Config {
	if c.Buffer <= 0 {
		c.Buffer = 10000
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = 500 * time.Millisecond
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 5 * time.Second
	}
	if c.Query == "" {
		c.Query = "data.ares.decisions"
	}
	return c
}

// Open opens (creating and migrating as needed) the configured store. A database store
// checks the connection and applies its migrations before returning, so Open fails when the
// database cannot be reached at start; after that an outage only delays writes. reg may be
// nil (no metrics), log may be nil (no logs).
func Open(ctx context.Context, cfg Config, reg prometheus.Registerer, log *slog.Logger) (Store, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "journal", "backend", cfg.Backend)
	var be backend
	var err error
	switch cfg.Backend {
	case BackendFile:
		if cfg.Path == "" {
			return nil, errors.New("journal: file backend: empty path")
		}
		return openFileStore(cfg.Path)
	case BackendSQLite:
		if cfg.Path == "" {
			return nil, errors.New("journal: sqlite backend: empty path")
		}
		be, err = openSQLite(ctx, cfg.Path)
	case BackendPostgres:
		if cfg.DSN == "" {
			return nil, errors.New("journal: postgres backend: empty dsn")
		}
		be, err = openPostgres(ctx, cfg.DSN)
	default:
		return nil, fmt.Errorf("journal: unknown backend %q (want %s, %s or %s)", cfg.Backend, BackendFile, BackendSQLite, BackendPostgres)
	}
	if err != nil {
		return nil, err
	}
	s, err := newDBStore(ctx, be, cfg, reg, log)
	if err != nil {
		be.close()
		return nil, err
	}
	return s, nil
}

// Query selects records for the CLI.
type Query struct {
	Since   time.Time // zero: everything
	Service string    // empty: every service
}

// Intent is an admitted action recorded before its actuator ran.
type Intent struct {
	ID     string        `json:"id"`
	RunID  string        `json:"run_id"`
	Tick   uint64        `json:"tick"`
	At     time.Time     `json:"at"`
	Action engine.Action `json:"action"`
}

// DoneAction is an admitted action and when it was done (or, for one a crash interrupted,
// when it was started), for governor.Done.
type DoneAction struct {
	At     time.Time
	Action engine.Action
}

// DecisionRecord is one decision of one tick in OPA's decision-log shape (decision_id, path,
// input, result, timestamp, revision), extended with the governor's verdict and the outcome.
// Input is a reference to the facts document ("sha256:<hex>"), stored once per content.
type DecisionRecord struct {
	DecisionID string          `json:"decision_id"`
	Path       string          `json:"path"`
	Input      string          `json:"input"`
	Result     engine.Decision `json:"result"`
	Timestamp  time.Time       `json:"timestamp"`
	Revision   string          `json:"revision"`
	RunID      string          `json:"run_id"`
	Tick       uint64          `json:"tick"`
	Verdict    string          `json:"verdict"`
	Why        string          `json:"why,omitempty"`
	IntentID   string          `json:"intent_id,omitempty"`
	Outcome    *engine.Outcome `json:"outcome,omitempty"`
}

// Incident statuses.
const (
	IncidentOpen     = "open"
	IncidentResolved = "resolved"
)

// Incident is a problem of one service from the first action ARES took on it until the
// service was healthy again: every replica running and not unhealthy, and no decision for it.
// TimeToDetect runs from the first bad facts to the first decision, TimeToRecover from the
// first bad facts to the first healthy ones.
type Incident struct {
	ID            string        `json:"id"`
	Service       string        `json:"service"`
	Status        string        `json:"status"`
	OpenedAt      time.Time     `json:"opened_at"`
	FirstBad      time.Time     `json:"first_bad"`
	FirstDecision time.Time     `json:"first_decision"`
	ResolvedAt    time.Time     `json:"resolved_at,omitzero"`
	TimeToDetect  time.Duration `json:"time_to_detect_ns"`
	TimeToRecover time.Duration `json:"time_to_recover_ns,omitempty"`
	Actions       int           `json:"actions"`
	LastAction    string        `json:"last_action"`
	Reason        string        `json:"reason"` // of the action that opened it
	// NeedsHuman is set while the incident is escalated to a person: the governor gave up on
	// the service (budget spent, back-off at its cap, or the last rung of the escalation
	// ladder) and paused its automation. Resolving the incident clears it.
	NeedsHuman bool `json:"needs_human,omitempty"`
}

// RecordedTick is one tick as the journal holds it: the facts its decisions were made from
// (Tick and Time restored) and those decisions.
type RecordedTick struct {
	RunID     string
	Tick      uint64
	At        time.Time
	PolicyRev string
	DryRun    bool
	FactsHash string
	Facts     *engine.Facts // nil when the tick had none
	Decisions []engine.Decision
}

// Stats counts the rows of a store.
type Stats struct {
	Ticks      int `json:"ticks"`
	FactsBlobs int `json:"facts_blobs"`
	Decisions  int `json:"decisions"`
	Intents    int `json:"intents"`
	Unfinished int `json:"unfinished"`
	Incidents  int `json:"incidents"`
	Revisions  int `json:"revisions"`
}

// ErrBufferFull is returned by Intent when the buffer holds nothing but intents and outcomes
// waiting for the database: the engine then does not carry the action out.
var ErrBufferFull = errors.New("journal: buffer full of unwritten intents and outcomes")

// ErrUnsupported is returned by queries a backend cannot answer (incidents in a file journal).
var ErrUnsupported = errors.New("journal: not supported by this backend")

// newID returns a 128-bit id, hex: 48 bits of Unix milliseconds then 80 random bits, so that
// ids sort by time like a ULID.
func newID(t time.Time) string {
	var b [16]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(b[:6], ms[2:])
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}
