// Package logs is the Log Agent (facts name "logs"): it follows the logs of every running
// container labelled ares.enable=true (plus Options.Labels) through the Docker API and reports
// per service services.<name>.logs = {errors_per_min, last_error, last_error_at}.
//
// Watch owns the followers: every Options.Refresh it lists the running containers, starts one
// goroutine per new container (ContainerLogs with Follow, stdout and stderr demultiplexed with
// stdcopy; raw for a TTY) and stops the ones whose container is gone. A container already
// running when Watch starts is read from that moment on; one started later from its start, so
// the lines it wrote before the next list are counted too. A stream that ends (the container
// stopped) or fails is started again at the next list, after a back-off when it failed. Watch
// never wakes the engine.
//
// Each line is classified by parseLine (JSON with a level, or plain text). Memory is bounded
// whatever the volume: lines are cut at Options.MaxLine bytes (the rest up to the newline is
// skipped), messages at 512 bytes, and errors are counted in a ring of one-second buckets per
// service covering Options.Window. errors_per_min is the number of error lines read in the
// window, per minute of window.
//
// Collect fails while Watch is not running: without followers the sensor knows nothing, and
// zero errors would be a lie.
package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// Labels the sensor reads.
const (
	LabelEnable  = "ares.enable"  // "true": ARES watches the container
	LabelService = "ares.service" // service name; default the Compose service, then the name
	labelCompose = "com.docker.compose.service"
)

const maxRetry = time.Minute

// Options configure a Sensor. The zero value is usable.
type Options struct {
	Window  time.Duration // errors_per_min is computed over it; default 1m, rounded to seconds
	Refresh time.Duration // how often Watch lists the containers; default 10s (containers that start in between are read from their start, so no line is lost)
	MaxLine int           // bytes of a line parsed, the rest skipped; default 16 KiB
	Timeout time.Duration // per Docker list or inspect call; default 2s
	// Labels are extra "key=value" filters a container must match on top of ares.enable=true.
	Labels []string
}

// Sensor is the log sensor. Collect may run while Watch runs.
type Sensor struct {
	cli     *client.Client
	opt     Options
	log     *slog.Logger
	filters client.Filters
	slots   int64 // buckets in the window

	watching  atomic.Int32
	following atomic.Int64 // log streams open, for tests and debugging

	mu       sync.Mutex // guards services
	services map[string]*service
}

var (
	_ engine.Sensor = (*Sensor)(nil)
	_ engine.Waker  = (*Sensor)(nil)
)

// service is one service's counts; its followers share it.
type service struct {
	mu        sync.Mutex
	buckets   []bucket // ring indexed by unix second modulo len
	lastErr   string
	lastErrAt time.Time
	followers int       // streams open; guarded by Sensor.mu
	idleSince time.Time // when followers dropped to 0; guarded by Sensor.mu
}

type bucket struct {
	sec int64
	n   uint64
}

// New returns a log sensor reading from cli.
func New(cli *client.Client, opt Options, log *slog.Logger) *Sensor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Window < time.Second {
		opt.Window = time.Minute
	}
	opt.Window = opt.Window.Round(time.Second)
	if opt.Refresh <= 0 {
		opt.Refresh = 10 * time.Second
	}
	if opt.MaxLine <= 0 {
		opt.MaxLine = 16 << 10
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 2 * time.Second
	}
	f := client.Filters{}.Add("label", LabelEnable+"=true")
	for _, l := range opt.Labels {
		f = f.Add("label", l)
	}
	return &Sensor{
		cli: cli, opt: opt, log: log.With("sensor", "logs"), filters: f,
		slots:    int64(opt.Window / time.Second),
		services: map[string]*service{},
	}
}

// Name is the facts key.
func (s *Sensor) Name() string { return "logs" }

// Following is the number of log streams open.
func (s *Sensor) Following() int { return int(s.following.Load()) }

// Collect fills services.<name>.logs for every service with a followed container or an error
// in the window, and forgets the services idle for longer than the window.
func (s *Sensor) Collect(_ context.Context, f *engine.Facts) error {
	if s.watching.Load() == 0 {
		return errors.New("logs: not following any logs (Watch is not running)")
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, svc := range s.services {
		svc.mu.Lock()
		n := svc.count(now.Unix())
		l := &engine.Logs{ErrorsPerMin: float64(n) / s.opt.Window.Minutes(), LastError: svc.lastErr}
		if !svc.lastErrAt.IsZero() {
			at := svc.lastErrAt.UTC()
			l.LastErrorAt = &at
		}
		svc.mu.Unlock()
		if svc.followers == 0 && n == 0 && now.Sub(svc.idleSince) > s.opt.Window {
			delete(s.services, name)
			continue
		}
		f.Service(name).Logs = l
	}
	return nil
}

// count is the number of errors in the buckets of the window ending at second now.
func (svc *service) count(now int64) uint64 {
	var n uint64
	slots := int64(len(svc.buckets))
	for _, b := range svc.buckets {
		if b.n > 0 && b.sec <= now && now-b.sec < slots {
			n += b.n
		}
	}
	return n
}

// record counts one error line read at t.
func (svc *service) record(t time.Time, msg string) {
	sec := t.Unix()
	svc.mu.Lock()
	defer svc.mu.Unlock()
	b := &svc.buckets[sec%int64(len(svc.buckets))]
	if b.sec != sec {
		b.sec, b.n = sec, 0
	}
	b.n++
	svc.lastErr, svc.lastErrAt = msg, t
}

// attach registers a follower of the named service.
func (s *Sensor) attach(name string) *service {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[name]
	if svc == nil {
		svc = &service{buckets: make([]bucket, s.slots)}
		s.services[name] = svc
	}
	svc.followers++
	return svc
}

func (s *Sensor) detach(svc *service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc.followers--
	if svc.followers == 0 {
		svc.idleSince = time.Now()
	}
}

// follower is Watch's record of one container's log stream.
type follower struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error     // set before done is closed
	ended  time.Time // set before done is closed
}

// retry is when a container whose stream ended may be followed again, and from when.
type retry struct {
	at, since time.Time
	failures  int
}

// Watch follows the logs of the labelled running containers until ctx is done, and returns
// when every follower it started has ended. It never calls wake.
func (s *Sensor) Watch(ctx context.Context, _ func(reason string)) error {
	s.watching.Add(1)
	defer s.watching.Add(-1)
	began := time.Now()
	live := map[string]*follower{}
	retries := map[string]*retry{}
	defer func() {
		for _, fl := range live {
			fl.cancel()
		}
		for _, fl := range live {
			<-fl.done
		}
	}()
	t := time.NewTicker(s.opt.Refresh)
	defer t.Stop()
	for {
		if err := s.reconcile(ctx, began, live, retries); err != nil && ctx.Err() == nil {
			s.log.Warn("listing containers failed, retrying", "err", err, "retry_in", s.opt.Refresh)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconcile lists the running containers, reaps the followers that ended, stops those of
// containers no longer listed and starts followers for the others.
func (s *Sensor) reconcile(ctx context.Context, began time.Time, live map[string]*follower, retries map[string]*retry) error {
	for id, fl := range live {
		select {
		case <-fl.done:
			delete(live, id)
			r := &retry{since: fl.ended, at: fl.ended}
			if fl.err != nil && ctx.Err() == nil {
				if old := retries[id]; old != nil {
					r.failures = old.failures
				}
				r.failures++
				r.at = fl.ended.Add(min(s.opt.Refresh<<min(r.failures, 10), maxRetry))
				s.log.Warn("log stream failed", "replica", shortID(id), "err", fl.err, "retry_at", r.at)
			}
			retries[id] = r
		default:
		}
	}
	lctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	res, err := s.cli.ContainerList(lctx, client.ContainerListOptions{Filters: s.filters})
	cancel()
	if err != nil {
		return fmt.Errorf("docker: list: %w", err)
	}
	listed := make(map[string]struct{}, len(res.Items))
	now := time.Now()
	for _, c := range res.Items {
		listed[c.ID] = struct{}{}
		if _, ok := live[c.ID]; ok {
			continue
		}
		r := retries[c.ID]
		if r != nil && now.Before(r.at) {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		since := began
		if r != nil && r.since.After(since) {
			since = r.since
		}
		live[c.ID] = s.start(ctx, c.ID, serviceName(c.Labels, name), name, since)
	}
	for id, fl := range live {
		if _, ok := listed[id]; !ok {
			fl.cancel() // reaped at the next reconcile
		}
	}
	for id := range retries {
		if _, ok := listed[id]; !ok {
			delete(retries, id)
		}
	}
	return nil
}

// start follows one container's logs from since (or its start, if later) in a goroutine.
func (s *Sensor) start(ctx context.Context, id, svcName, replica string, since time.Time) *follower {
	fctx, cancel := context.WithCancel(ctx)
	fl := &follower{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		fl.err = s.follow(fctx, id, svcName, since)
		if fctx.Err() != nil {
			fl.err = nil // stopped on purpose
		}
		fl.ended = time.Now()
		s.log.Debug("log stream ended", "service", svcName, "replica", replica, "err", fl.err)
	}()
	return fl
}

func (s *Sensor) follow(ctx context.Context, id, svcName string, since time.Time) error {
	ictx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	info, err := s.cli.ContainerInspect(ictx, id, client.ContainerInspectOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("docker: inspect %s: %w", shortID(id), err)
	}
	tty := false
	if c := info.Container; c.Config != nil {
		tty = c.Config.Tty
		if c.State != nil {
			if st, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && st.After(since) {
				since = st
			}
		}
	}
	rc, err := s.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: true, Since: since.Format(time.RFC3339Nano),
	})
	if err != nil {
		return fmt.Errorf("docker: logs %s: %w", shortID(id), err)
	}
	defer rc.Close()
	svc := s.attach(svcName)
	defer s.detach(svc)
	s.following.Add(1)
	defer s.following.Add(-1)
	stdout := &lineWriter{max: s.opt.MaxLine, svc: svc}
	if tty {
		_, err = io.Copy(stdout, rc)
	} else {
		stderr := &lineWriter{max: s.opt.MaxLine, svc: svc}
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
		stderr.flush()
	}
	stdout.flush()
	if err != nil {
		return fmt.Errorf("docker: logs %s: %w", shortID(id), err)
	}
	return nil
}

// lineWriter splits a stream into lines, keeps at most max bytes of each and counts the error
// lines into svc.
type lineWriter struct {
	max  int
	svc  *service
	buf  []byte
	skip bool // the current line is over max: drop the rest of it
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.buf == nil {
		w.buf = make([]byte, 0, w.max) // never grows: at most max bytes are kept
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.skip {
			if room := w.max - len(w.buf); len(chunk) > room {
				chunk, w.skip = chunk[:room], true
			}
			w.buf = append(w.buf, chunk...)
		}
		if i < 0 {
			break
		}
		w.line()
		p = p[i+1:]
	}
	return n, nil
}

// flush handles a last line without a newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.line()
	}
}

func (w *lineWriter) line() {
	if isErr, msg := parseLine(w.buf); isErr {
		w.svc.record(time.Now(), msg)
	}
	w.buf, w.skip = w.buf[:0], false
}

// serviceName is ares.service, else the Compose service, else the container name (the docker
// sensor's rule, so that both name a service alike).
func serviceName(labels map[string]string, name string) string {
	if v := labels[LabelService]; v != "" {
		return v
	}
	if v := labels[labelCompose]; v != "" {
		return v
	}
	return name
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
