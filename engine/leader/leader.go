// Package leader elects one acting ARES among several that watch the same fleet (ha.enabled).
//
// Leadership is a PostgreSQL session-level advisory lock, pg_try_advisory_lock on a key derived
// from the lock name, held on a dedicated connection of its own (not the journal's pool, whose
// connections come and go). Every instance gathers and evaluates every tick; only the leader's
// governor admits actions (Gate), the others show them held back: "standby: instance X leads".
//
// No two leaders act at once. A leader acts only while its lease holds: the time since it sent
// the last ping that succeeded is under Lease. A ping succeeds only while the session, and so
// the lock, is alive, so the lock was released after that ping was sent: the old leader has
// stopped acting at most Lease after the release, however the release came about (a network
// cut the server noticed, pg_terminate_backend, a crash). An instance that acquires the lock
// waits Lease before it acts, so it starts after the old leader stopped. This rests on no
// clock but each instance's own monotonic one; only their rates must agree over one lease.
//
// The session's TCP keep-alives, TCP user timeout and idle_session_timeout are set to about
// one lease, so that a server cut off from its leader notices within about a lease and
// releases the lock: a failover takes at most CheckInterval (the next attempt of a standby)
// plus Lease (its wait), plus the time until the next tick; without them a silent network
// cut could hold the lock for the kernel's default keep-alive time (two hours). The settings
// bound how long a failover takes, not its safety: that comes from the wait.
package leader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Options configure an Elector. DSN is required; the rest have defaults.
type Options struct {
	DSN string
	// LockName names the lock; instances with the same name on the same database elect one
	// leader among them. Default "ares".
	LockName string
	// Instance identifies this instance (shown to the others and on /metrics); default
	// DefaultInstance().
	Instance string
	// CheckInterval is how often the leader pings its connection and a standby tries the
	// lock; default 2s.
	CheckInterval time.Duration
	// Lease is how long after its last successful ping a leader still acts, and how long a
	// new leader waits before it does; at least 2×CheckInterval; default 10s.
	Lease time.Duration
	// OnLead runs once each time this instance becomes leader, after the wait and before it
	// acts (the governor rebuilds its state from the journal); ctx ends with the term. An
	// error gives the lock back and leaves the instance a standby until its next attempt.
	OnLead func(ctx context.Context) error
	// Registerer gets the ares_leader gauge; nil: not registered.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// DefaultInstance is hostname-pid.
func DefaultInstance() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "ares"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

func (o Options) withDefaults() Options {
	if o.LockName == "" {
		o.LockName = "ares"
	}
	if o.Instance == "" {
		o.Instance = DefaultInstance()
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 2 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Key is the advisory lock key of a lock name: two int4 halves of its FNV-1a hash, for
// pg_try_advisory_lock(int4, int4) (pg_locks shows them as classid and objid, objsubid 2).
func Key(name string) (int32, int32) {
	h := fnv.New64a()
	_, _ = h.Write([]byte("ares-leader:" + name))
	v := h.Sum64()
	return int32(uint32(v >> 32)), int32(uint32(v))
}

// appPrefix marks the leader's connection in pg_stat_activity, so that standbys can name it.
const appPrefix = "ares-leader:"

// Elector takes part in the election. Its methods are safe for concurrent use.
type Elector struct {
	opt    Options
	k1, k2 int32
	gauge  prometheus.Gauge
	now    func() time.Time

	mu       sync.Mutex
	held     bool      // the lock is ours
	acquired time.Time // when the lock was taken (the attempt was sent)
	lastOK   time.Time // when the last successful ping (or the acquiring attempt) was sent
	term     context.Context
	endTerm  context.CancelFunc
	leader   string // the leading instance as last seen; "" when unknown
	leaseEnd *time.Timer
}

// New returns an elector; Run takes part.
func New(opt Options) (*Elector, error) {
	opt = opt.withDefaults()
	if opt.DSN == "" {
		return nil, errors.New("leader: no dsn")
	}
	if opt.Lease < 2*opt.CheckInterval {
		return nil, fmt.Errorf("leader: lease %s must be at least twice the check interval %s", opt.Lease, opt.CheckInterval)
	}
	if _, err := pgx.ParseConfig(opt.DSN); err != nil {
		return nil, fmt.Errorf("leader: dsn: %w", err)
	}
	e := &Elector{opt: opt, now: time.Now}
	e.k1, e.k2 = Key(opt.LockName)
	if opt.Registerer != nil {
		g := promauto.With(opt.Registerer).NewGaugeVec(prometheus.GaugeOpts{
			Name: "ares_leader", Help: "1 while this instance leads (ha.enabled) and acts, else 0.",
		}, []string{"instance"})
		e.gauge = g.WithLabelValues(opt.Instance)
		e.gauge.Set(0)
	}
	return e, nil
}

// Instance is this instance's id.
func (e *Elector) Instance() string { return e.opt.Instance }

// Leading reports whether this instance may act now: it holds the lock, waited out the
// previous leader's lease, and its own lease holds.
func (e *Elector) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leadingLocked()
}

func (e *Elector) leadingLocked() bool {
	return e.term != nil && e.term.Err() == nil && e.now().Sub(e.lastOK) < e.opt.Lease
}

// Leader is the id of the leading instance as last seen: this one while it leads, else the
// holder of the lock (read from pg_stat_activity at each check), "" when none is known.
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leadingLocked() {
		return e.opt.Instance
	}
	if e.leader == e.opt.Instance { // ours, but not acting (yet, or any more)
		return ""
	}
	return e.leader
}

// Term returns a context that lives while this instance's current term of leadership lasts,
// and false when it does not lead now. Actions run under it, so that a leader that loses
// its lease stops them.
func (e *Elector) Term() (context.Context, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leadingLocked() {
		return nil, false
	}
	return e.term, true
}

// Run takes part in the election until ctx ends, then gives the lock back.
func (e *Elector) Run(ctx context.Context) error {
	log := e.opt.Log.With("instance", e.opt.Instance, "lock", e.opt.LockName)
	for ctx.Err() == nil {
		conn, err := e.connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("leader election: cannot reach PostgreSQL; standing by", "err", err)
			}
			if !sleep(ctx, e.opt.CheckInterval) {
				break
			}
			continue
		}
		err = e.session(ctx, conn, log)
		e.stepDown(log, "connection lost")
		cctx, cancel := context.WithTimeout(context.Background(), e.opt.CheckInterval)
		if ctx.Err() != nil && err == nil {
			// Give the lock back at once instead of letting the server find out.
			_, _ = conn.Exec(cctx, `SELECT pg_advisory_unlock($1, $2)`, e.k1, e.k2)
		}
		_ = conn.Close(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("leader election: connection failed; reconnecting", "err", err)
			if !sleep(ctx, e.opt.CheckInterval) {
				break
			}
		}
	}
	e.stepDown(log, "stopping")
	return nil
}

// connect opens the dedicated connection and tunes the server's side of it to the lease.
func (e *Elector) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.opt.DSN)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = appPrefix + e.opt.Instance
	cfg.ConnectTimeout = e.opt.Lease
	cctx, cancel := context.WithTimeout(ctx, e.opt.Lease)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	lease := e.opt.Lease
	secs := max(1, int(math.Ceil(lease.Seconds()/2)))
	for _, set := range []string{
		// A dead client is noticed after idle + interval·count ≈ one lease of silence.
		fmt.Sprintf("SET tcp_keepalives_idle = %d", secs),
		"SET tcp_keepalives_interval = 1",
		fmt.Sprintf("SET tcp_keepalives_count = %d", secs),
		// Unacknowledged data (a reply to a vanished client) gives up after one lease.
		fmt.Sprintf("SET tcp_user_timeout = %d", lease.Milliseconds()),
		// A client that stops pinging is disconnected one lease after its last ping.
		fmt.Sprintf("SET idle_session_timeout = %d", lease.Milliseconds()),
	} {
		if _, err := conn.Exec(cctx, set); err != nil {
			// Old servers lack some settings: only the failover time suffers (see the package doc).
			e.opt.Log.Debug("leader election: session setting refused", "setting", set, "err", err)
		}
	}
	return conn, nil
}

// session attempts and holds the lock on conn until the connection fails or ctx ends.
func (e *Elector) session(ctx context.Context, conn *pgx.Conn, log *slog.Logger) error {
	for {
		sent := e.now()
		qctx, cancel := context.WithTimeout(ctx, e.opt.CheckInterval)
		var err error
		if e.holds() {
			_, err = conn.Exec(qctx, `SELECT 1`)
			if err == nil {
				e.pinged(sent)
			}
		} else {
			var got bool
			err = conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1, $2)`, e.k1, e.k2).Scan(&got)
			if err == nil && got {
				e.took(sent, log)
			}
		}
		if err == nil {
			e.seeLeader(qctx, conn)
		}
		cancel()
		if err != nil {
			return err
		}
		wait := e.opt.CheckInterval
		if e.holds() && !e.Leading() {
			if left := e.acquiredAt().Add(e.opt.Lease).Sub(e.now()); left > 0 {
				wait = min(wait, left) // wake when the previous leader's lease is over
			} else if err := e.lead(ctx, conn, log); err != nil {
				return err
			}
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

func (e *Elector) holds() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.held
}

func (e *Elector) acquiredAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.acquired
}

// took records the lock as ours, not yet acting: the previous leader may still be in its lease.
func (e *Elector) took(sent time.Time, log *slog.Logger) {
	e.mu.Lock()
	e.held, e.acquired, e.lastOK, e.leader = true, sent, sent, e.opt.Instance
	e.mu.Unlock()
	log.Info("leader election: lock acquired; acting once the previous leader's lease is over", "lease", e.opt.Lease)
}

// pinged extends the lease from the time the successful ping was sent.
func (e *Elector) pinged(sent time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Even when the lease ran out meanwhile: the ping went through the session that holds the
	// lock, so nobody else could have taken it in between.
	e.lastOK = sent
	if e.leaseEnd != nil {
		e.leaseEnd.Reset(sent.Add(e.opt.Lease).Sub(e.now()))
	}
}

// lead waits out nothing more (the caller checked the wait), runs OnLead and starts the term.
func (e *Elector) lead(ctx context.Context, conn *pgx.Conn, log *slog.Logger) error {
	term, end := context.WithCancel(ctx)
	if e.opt.OnLead != nil {
		if err := e.opt.OnLead(term); err != nil {
			end()
			log.Error("leader election: taking over failed; giving the lock back", "err", err)
			e.mu.Lock()
			e.held = false
			e.mu.Unlock()
			qctx, cancel := context.WithTimeout(ctx, e.opt.CheckInterval)
			defer cancel()
			_, err := conn.Exec(qctx, `SELECT pg_advisory_unlock($1, $2)`, e.k1, e.k2)
			return err // nil: keep the connection, try again at the next check
		}
	}
	// Ping once more: OnLead may have taken a while, and the lease counts from a ping.
	sent := e.now()
	qctx, cancel := context.WithTimeout(ctx, e.opt.CheckInterval)
	_, err := conn.Exec(qctx, `SELECT 1`)
	cancel()
	if err != nil {
		end()
		return err
	}
	e.mu.Lock()
	e.lastOK, e.term, e.endTerm = sent, term, end
	e.leaseEnd = time.AfterFunc(sent.Add(e.opt.Lease).Sub(e.now()), func() { e.expire(log) })
	e.mu.Unlock()
	if e.gauge != nil {
		e.gauge.Set(1)
	}
	log.Info("leader election: leading")
	return nil
}

// expire ends the term when the lease ran out without a successful ping, before the
// connection's failure is known: no action may start or go on after it.
func (e *Elector) expire(log *slog.Logger) {
	e.mu.Lock()
	if e.term == nil || e.now().Sub(e.lastOK) < e.opt.Lease {
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.stepDown(log, "lease ran out without a successful ping")
}

// stepDown ends the term (if any) and forgets the lock: the connection it was held on is
// about to be closed, or the lease is over and the connection will be found broken.
func (e *Elector) stepDown(log *slog.Logger, why string) {
	e.mu.Lock()
	leading := e.term != nil
	if e.endTerm != nil {
		e.endTerm()
	}
	if e.leaseEnd != nil {
		e.leaseEnd.Stop()
	}
	e.term, e.endTerm, e.leaseEnd = nil, nil, nil
	if why != "lease ran out without a successful ping" {
		e.held = false
	}
	if e.leader == e.opt.Instance {
		e.leader = ""
	}
	e.mu.Unlock()
	if e.gauge != nil {
		e.gauge.Set(0)
	}
	if leading {
		log.Warn("leader election: stepped down; actions stop", "why", why)
	}
}

// seeLeader reads which instance holds the lock, from its connection's application_name.
func (e *Elector) seeLeader(ctx context.Context, conn *pgx.Conn) {
	var app string
	err := conn.QueryRow(ctx, `SELECT coalesce(a.application_name, '')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid::bigint = $1 AND l.objid::bigint = $2
		LIMIT 1`, int64(uint32(e.k1)), int64(uint32(e.k2))).Scan(&app)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		e.leader = ""
	case err == nil:
		e.leader = strings.TrimPrefix(app, appPrefix)
		if app == "" {
			e.leader = "(unknown)"
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
