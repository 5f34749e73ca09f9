package journal

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// writer puts a bounded queue in front of a backend so that the tick never waits for the
// database. One goroutine flushes the queue in order, in batches of one transaction each,
// and retries with back-off while the database is slow or down; an op leaves the queue only
// once its batch committed, so nothing is lost across an outage shorter than the buffer.
//
// Overflow: when the queue holds cap ops, the oldest tick record is dropped (counted as
// ares_journal_dropped_total{kind="tick"}) to make room. Intents, outcomes, incidents and
// policy revisions are never dropped: outcomes, incidents and revisions are accepted beyond
// the cap (they are few: at most one outcome per intent), and an intent that finds the queue
// full of them is refused (kind="intent"), so that the engine does not carry out an action
// it could not account for after a crash.
type writer struct {
	be  backend
	log *slog.Logger
	cap int

	dropped *prometheus.CounterVec
	depth   prometheus.Gauge
	fails   prometheus.Counter

	mu      sync.Mutex
	q       []op
	seq     uint64
	failing bool // last flush failed: sync writes go straight to the queue

	kick   chan struct{} // 1-slot: wake the flusher
	sem    chan struct{} // 1-slot: one transaction at a time (flusher or a synchronous intent)
	cancel context.CancelFunc
	done   chan struct{}
}

func newWriter(be backend, capacity int, reg prometheus.Registerer, log *slog.Logger) *writer {
	f := promauto.With(reg)
	w := &writer{
		be: be, log: log, cap: capacity,
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "ares_journal_dropped_total",
			Help: "Journal records dropped or refused because the buffer was full, by kind (tick: oldest tick records dropped; intent: actions refused)."}, []string{"kind"}),
		depth: f.NewGauge(prometheus.GaugeOpts{Name: "ares_journal_queue_depth",
			Help: "Journal records waiting to be written to the database."}),
		fails: f.NewCounter(prometheus.CounterOpts{Name: "ares_journal_flush_failures_total",
			Help: "Journal flushes that failed and will be retried."}),
		kick: make(chan struct{}, 1), sem: make(chan struct{}, 1), done: make(chan struct{}),
	}
	w.dropped.WithLabelValues(kindTick)
	w.dropped.WithLabelValues(kindIntent)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
	return w
}

// enqueue queues ops in order; they are all accepted or, when they carry an intent that finds
// no room, none is (ErrBufferFull).
func (w *writer) enqueue(ops ...op) error {
	w.mu.Lock()
	for len(w.q)+len(ops) > w.cap {
		if !w.dropOldestTick() {
			break
		}
	}
	if len(w.q)+len(ops) > w.cap {
		kind := ops[0].kind
		for _, o := range ops {
			if o.kind == kindIntent {
				kind = kindIntent
			}
		}
		switch kind {
		case kindTick:
			w.dropped.WithLabelValues(kindTick).Inc()
			w.mu.Unlock()
			return nil
		case kindIntent:
			w.dropped.WithLabelValues(kindIntent).Inc()
			w.mu.Unlock()
			return ErrBufferFull
		}
	}
	for i := range ops {
		w.seq++
		ops[i].seq = w.seq
		w.q = append(w.q, ops[i])
	}
	w.depth.Set(float64(len(w.q)))
	w.mu.Unlock()
	w.wake()
	return nil
}

// dropOldestTick removes the oldest queued tick record; w.mu is held.
func (w *writer) dropOldestTick() bool {
	for i := range w.q {
		if w.q[i].kind == kindTick {
			w.q = append(w.q[:i], w.q[i+1:]...)
			w.dropped.WithLabelValues(kindTick).Inc()
			return true
		}
	}
	return false
}

func (w *writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// writeNow applies ops in their own transaction at once, within timeout, when nothing is
// queued ahead of them (so that order is kept) and the database did not just fail; else, or
// when the write fails, it queues them. It reports whether they were written.
func (w *writer) writeNow(ctx context.Context, timeout time.Duration, ops ...op) (bool, error) {
	w.mu.Lock()
	direct := len(w.q) == 0 && !w.failing
	w.mu.Unlock()
	if direct {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		err := w.applyLocked(ctx, ops)
		cancel()
		if err == nil {
			return true, nil
		}
		w.log.Warn("intent not written synchronously; queued: it is durable once the database answers", "err", err)
	}
	return false, w.enqueue(ops...)
}

// applyLocked applies ops under the transaction semaphore, giving up when ctx ends first.
func (w *writer) applyLocked(ctx context.Context, ops []op) error {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.sem }()
	return w.be.apply(ctx, ops)
}

// applyQueued applies what of a queued batch is still queued once the semaphore is held.
func (w *writer) applyQueued(ctx context.Context, b []op) error {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.sem }()
	if b = w.stillQueued(b); len(b) == 0 {
		return nil
	}
	return w.be.apply(ctx, b)
}

// stillQueued keeps the ops of a batch that are still in the queue: a tick record dropped for
// room while the batch waited (the database was down) is not written after all.
func (w *writer) stillQueued(ops []op) []op {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(ops) == 0 || len(w.q) == 0 {
		return nil
	}
	queued := make(map[uint64]struct{}, len(ops))
	for i := range w.q {
		if w.q[i].seq > ops[len(ops)-1].seq {
			break
		}
		queued[w.q[i].seq] = struct{}{}
	}
	out := ops[:0:0]
	for _, o := range ops {
		if _, ok := queued[o.seq]; ok {
			out = append(out, o)
		}
	}
	return out
}

const maxBatch = 256

func (w *writer) batch() []op {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.q), maxBatch)
	return append([]op(nil), w.q[:n]...)
}

// commit removes the ops of a written batch (those dropped meanwhile are already gone).
func (w *writer) commit(last uint64) {
	w.mu.Lock()
	i := 0
	for i < len(w.q) && w.q[i].seq <= last {
		i++
	}
	w.q = append(w.q[:0], w.q[i:]...)
	w.depth.Set(float64(len(w.q)))
	w.mu.Unlock()
}

func (w *writer) setFailing(err error, retry time.Duration) {
	w.mu.Lock()
	was := w.failing
	w.failing = err != nil
	n := len(w.q)
	w.mu.Unlock()
	switch {
	case err != nil && !was:
		w.log.Error("journal database unavailable; buffering", "queued", n, "retry", retry, "err", err)
	case err == nil && was:
		w.log.Info("journal database back; buffered records written", "queued", n)
	}
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		for {
			b := w.batch()
			if len(b) == 0 {
				break
			}
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := w.applyQueued(actx, b)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				w.fails.Inc()
				w.setFailing(err, backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			w.commit(b[len(b)-1].seq)
			w.setFailing(nil, 0)
		}
	}
}

func (w *writer) depthNow() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.q)
}

// flush waits until the queue is empty or ctx ends.
func (w *writer) flush(ctx context.Context) error {
	for {
		if w.depthNow() == 0 {
			return nil
		}
		w.wake()
		select {
		case <-ctx.Done():
			return fmt.Errorf("journal: flush: %d records still queued: %w", w.depthNow(), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// close stops the flusher after one last attempt (bounded by timeout) to write the queue.
func (w *writer) close(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := w.flush(ctx)
	w.cancel()
	<-w.done
	if err != nil {
		return fmt.Errorf("journal: closing with %d records unwritten (lost): %w", w.depthNow(), err)
	}
	return nil
}
