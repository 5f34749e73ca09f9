package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// notifySocket is the systemd side of the protocol: a unixgram socket that collects datagrams.
type notifySocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // short: sun_path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify"), done: make(chan struct{})}
	s.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.conn.Close(); <-s.done })
	return s
}

func (s *notifySocket) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// count returns how many messages contain the line.
func (s *notifySocket) count(line string) int {
	n := 0
	for _, m := range s.messages() {
		for _, l := range strings.Split(m, "\n") {
			if l == line {
				n++
			}
		}
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSDNotifierOutsideSystemdIsSilent(t *testing.T) {
	n, err := newSDNotifier(envOf(nil))
	if err != nil || n.Enabled() || n.Watchdog() != 0 {
		t.Fatalf("without NOTIFY_SOCKET: enabled=%v watchdog=%v err=%v", n.Enabled(), n.Watchdog(), err)
	}
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
	n.RunWatchdog(context.Background(), func() bool { return true }, func(error) {}) // returns at once
}

func TestSDNotifierEnvironment(t *testing.T) {
	s := listenNotify(t)
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name     string
		env      map[string]string
		watchdog time.Duration
		err      string
	}{
		{"no watchdog", map[string]string{"NOTIFY_SOCKET": s.path}, 0, ""},
		{"watchdog", map[string]string{"NOTIFY_SOCKET": s.path, "WATCHDOG_USEC": "30000000"}, 30 * time.Second, ""},
		{"watchdog for us", map[string]string{"NOTIFY_SOCKET": s.path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}, 2 * time.Second, ""},
		{"watchdog for another process", map[string]string{"NOTIFY_SOCKET": s.path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, 0, ""},
		{"bad usec", map[string]string{"NOTIFY_SOCKET": s.path, "WATCHDOG_USEC": "soon"}, 0, "WATCHDOG_USEC"},
		{"relative socket", map[string]string{"NOTIFY_SOCKET": "notify"}, 0, "absolute path"},
		{"missing socket", map[string]string{"NOTIFY_SOCKET": s.path + ".gone"}, 0, "notify socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := newSDNotifier(envOf(tc.env))
			defer n.Close()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Watchdog(); got != tc.watchdog {
				t.Errorf("watchdog = %v, want %v", got, tc.watchdog)
			}
		})
	}
}

func TestSDNotifierMessages(t *testing.T) {
	s := listenNotify(t)
	n, err := newSDNotifier(envOf(map[string]string{"NOTIFY_SOCKET": s.path}))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, f := range []func() error{func() error { return n.Ready("ticking") }, n.Reloading, n.Stopping} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "three datagrams", func() bool { return len(s.messages()) == 3 })
	m := s.messages()
	if m[0] != "READY=1\nSTATUS=ticking" {
		t.Errorf("ready: %q", m[0])
	}
	if !strings.HasPrefix(m[1], "RELOADING=1\nMONOTONIC_USEC=") || strings.HasSuffix(m[1], "=0") {
		t.Errorf("reloading: %q", m[1])
	}
	if m[2] != "STOPPING=1\nSTATUS=stopping" {
		t.Errorf("stopping: %q", m[2])
	}
}

// wedgingPolicy wedges the tick loop once switched on: its evaluation never returns (it
// ignores ctx, as a bug would) until the test releases it.
type wedgingPolicy struct {
	on      atomic.Bool
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (p *wedgingPolicy) Current() engine.Evaluator { return p }
func (p *wedgingPolicy) Revision() string          { return "test" }
func (p *wedgingPolicy) Evaluate(context.Context, *engine.Facts) ([]engine.Decision, []engine.RejectedDecision, error) {
	if p.on.Load() {
		p.once.Do(func() { close(p.started) })
		<-p.release
	}
	return nil, nil, nil
}

// A real engine loop feeds the watchdog over a real notify socket while its ticks complete,
// and stops feeding it once the loop wedges.
func TestWatchdogFollowsTheTickLoop(t *testing.T) {
	s := listenNotify(t)
	n, err := newSDNotifier(envOf(map[string]string{"NOTIFY_SOCKET": s.path, "WATCHDOG_USEC": "40000"})) // ping every 20ms
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	live := newRunLiveness(20*time.Millisecond, 100*time.Millisecond) // stalled after 220ms
	var checks atomic.Int64
	alive := func() bool { checks.Add(1); return live.Alive() }
	var ticks atomic.Int64
	pol := &wedgingPolicy{started: make(chan struct{}), release: make(chan struct{})}
	eng, err := engine.New(engine.Options{
		Interval: 20 * time.Millisecond, TickTimeout: time.Second, SensorTimeout: 100 * time.Millisecond,
		ActionTimeout: time.Second, MaxConcurrentActions: 1, Policy: pol,
		Journal: multiJournal{live, journalFunc(func(engine.TickRecord) { ticks.Add(1) })},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = eng.Run(ctx) })
	var errs []error
	var errMu sync.Mutex
	wg.Go(func() {
		n.RunWatchdog(ctx, alive, func(err error) { errMu.Lock(); errs = append(errs, err); errMu.Unlock() })
	})

	eventually(t, "ticks and watchdog pings", func() bool { return ticks.Load() >= 5 && s.count("WATCHDOG=1") >= 5 })

	pol.on.Store(true) // the next tick wedges in evaluation
	<-pol.started
	eventually(t, "the watchdog to notice the stall", func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return len(errs) > 0
	})
	pings := s.count("WATCHDOG=1")
	c := checks.Load()
	eventually(t, "ten more watchdog checks", func() bool { return checks.Load() >= c+10 })
	if got := s.count("WATCHDOG=1"); got != pings {
		t.Errorf("the watchdog was fed %d times while the loop was wedged", got-pings)
	}
	if s.count("STATUS=tick loop stalled") != 1 {
		t.Errorf("stall status not sent once: %q", s.messages())
	}
	errMu.Lock()
	if !strings.Contains(errs[0].Error(), "stalled") {
		t.Errorf("stall error: %v", errs[0])
	}
	errMu.Unlock()

	cancel()
	close(pol.release)
	wg.Wait()
	eventually(t, "STOPPING=1 received", func() bool { return s.count("STOPPING=1") == 1 })
	msgs := s.messages()
	if last := msgs[len(msgs)-1]; !strings.HasPrefix(last, "STOPPING=1") {
		t.Errorf("last message %q, want STOPPING=1", last)
	}
}

func TestLivenessAlive(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &liveness{stallAfter: 10 * time.Second, now: func() time.Time { return now }}
	l.beat()
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {10 * time.Second, true}, {10*time.Second + 1, false}, {time.Hour, false}} {
		now = time.Unix(1000, 0).Add(tc.after)
		if got := l.Alive(); got != tc.want {
			t.Errorf("%v after the last beat: alive=%v, want %v", tc.after, got, tc.want)
		}
	}
	l.beat()
	if !l.Alive() {
		t.Error("a beat makes the loop alive again")
	}
}

type journalFunc func(engine.TickRecord)

func (f journalFunc) Record(_ context.Context, r engine.TickRecord) error { f(r); return nil }

type multiJournal []engine.Journal

func (m multiJournal) Record(ctx context.Context, r engine.TickRecord) error {
	for _, j := range m {
		_ = j.Record(ctx, r)
	}
	return nil
}
