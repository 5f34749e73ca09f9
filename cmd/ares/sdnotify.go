package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ares-sre/ares/engine"
)

// sdNotifier speaks systemd's service notification protocol (sd_notify(3)): one datagram of
// newline-separated KEY=VALUE assignments per message, sent to the unix datagram socket named
// by $NOTIFY_SOCKET ("@name" is a socket in the abstract namespace). Started by systemd with
// Type=notify (deploy/ec2/ares.service), ARES says READY=1 when it ticks, RELOADING=1 and
// READY=1 around a SIGHUP reload, STOPPING=1 when it shuts down and, with WatchdogSec,
// WATCHDOG=1 while its tick loop makes progress. Outside systemd every method is a no-op.
type sdNotifier struct {
	conn     *net.UnixConn // nil: not started by systemd
	watchdog time.Duration // $WATCHDOG_USEC; 0: no watchdog
}

// newSDNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from getenv. It fails
// only when NOTIFY_SOCKET is set but unusable; the caller logs that and runs on.
func newSDNotifier(getenv func(string) string) (*sdNotifier, error) {
	n := &sdNotifier{}
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return n, nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return n, fmt.Errorf("systemd: NOTIFY_SOCKET=%q: want an absolute path or @abstract name", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return n, fmt.Errorf("systemd: notify socket: %w", err)
	}
	n.conn = conn
	if us := getenv("WATCHDOG_USEC"); us != "" {
		v, err := strconv.ParseUint(us, 10, 63)
		if err != nil || v == 0 {
			return n, fmt.Errorf("systemd: WATCHDOG_USEC=%q: want a positive number of microseconds", us)
		}
		// WATCHDOG_PID names the process the watchdog is for; another PID (a child that
		// inherited the environment) must not feed it.
		if pid := getenv("WATCHDOG_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(v) * time.Microsecond
		}
	}
	return n, nil
}

// Enabled reports whether ARES was started by systemd with a notify socket.
func (n *sdNotifier) Enabled() bool { return n != nil && n.conn != nil }

// Watchdog returns the watchdog timeout systemd set (WatchdogSec), 0 when there is none.
func (n *sdNotifier) Watchdog() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// Notify sends one message of state lines such as "READY=1".
func (n *sdNotifier) Notify(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	if _, err := n.conn.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("systemd: notify: %w", err)
	}
	return nil
}

// Ready says ARES is up; status is shown by systemctl status.
func (n *sdNotifier) Ready(status string) error { return n.Notify("READY=1", "STATUS="+status) }

// Reloading says a reload began; Ready says it ended. MONOTONIC_USEC is what systemd's
// Type=notify-reload requires with it.
func (n *sdNotifier) Reloading() error {
	return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping says ARES is shutting down.
func (n *sdNotifier) Stopping() error { return n.Notify("STOPPING=1", "STATUS=stopping") }

// Close closes the socket.
func (n *sdNotifier) Close() error {
	if !n.Enabled() {
		return nil
	}
	return n.conn.Close()
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1e3
}

// RunWatchdog feeds systemd's watchdog until ctx is done: every half of the watchdog timeout
// it sends WATCHDOG=1, but only while alive() says the tick loop makes progress. A wedged loop
// therefore stops the pings and systemd restarts ARES (Restart=always). When ctx is done it
// says STOPPING=1. Without a watchdog it only waits for ctx to say STOPPING=1.
func (n *sdNotifier) RunWatchdog(ctx context.Context, alive func() bool, onErr func(error)) {
	if !n.Enabled() {
		return
	}
	defer func() {
		if err := n.Stopping(); err != nil {
			onErr(err)
		}
	}()
	every := n.Watchdog() / 2
	if every <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	stalled := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !alive() {
			if !stalled {
				onErr(fmt.Errorf("systemd: tick loop stalled; watchdog no longer fed, systemd will restart ARES"))
				_ = n.Notify("STATUS=tick loop stalled")
			}
			stalled = true
			continue
		}
		stalled = false
		if err := n.Notify("WATCHDOG=1"); err != nil {
			onErr(err)
		}
	}
}

// liveness tracks the progress of the tick loop for the watchdog: the loop beats each time a
// tick is recorded (liveness is a member of the run's journal.Multi). Between two records the
// loop waits at most one interval, then gathers and evaluates within a tick timeout (actions
// run in the background), so no record for stallAfter (newRunLiveness: interval + 2 ×
// tick_timeout) means the loop is wedged.
type liveness struct {
	stallAfter time.Duration
	now        func() time.Time
	last       atomic.Int64 // unix nanoseconds of the last beat
}

func newLiveness(stallAfter time.Duration) *liveness {
	l := &liveness{stallAfter: stallAfter, now: time.Now}
	l.beat()
	return l
}

func (l *liveness) beat() { l.last.Store(l.now().UnixNano()) }

// Alive reports whether the loop made progress within stallAfter.
func (l *liveness) Alive() bool {
	return l.now().Sub(time.Unix(0, l.last.Load())) <= l.stallAfter
}

// Record beats: a tick was recorded.
func (l *liveness) Record(context.Context, engine.TickRecord) error {
	l.beat()
	return nil
}

var _ engine.Journal = (*liveness)(nil)

// newRunLiveness is the liveness of a loop ticking every interval with tickTimeout.
func newRunLiveness(interval, tickTimeout time.Duration) *liveness {
	return newLiveness(interval + 2*tickTimeout)
}
