package leader

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testDSN is the PostgreSQL of scripts/services.sh unless ARES_TEST_PG_DSN names another.
// Advisory locks need no schema: each test uses a lock name of its own.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("ARES_TEST_PG_DSN")
	if dsn == "" {
		dsn = "postgres://shop:shop@127.0.0.1:5432/shop?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL needed under CI: %v", err)
		}
		t.Skipf("no PostgreSQL (run scripts/services.sh postgres, or set ARES_TEST_PG_DSN): %v", err)
	}
	_ = c.Close(ctx)
	return dsn
}

func lockName(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return t.Name() + "-" + hex.EncodeToString(b)
}

// watch samples the electors every few milliseconds until stopped and fails the test if two
// of them ever lead at once.
type watch struct {
	stop chan struct{}
	done chan struct{}
	both atomic.Int64
}

func watchLeaders(t *testing.T, es ...*Elector) *watch {
	w := &watch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			n := 0
			for _, e := range es {
				if e.Leading() {
					n++
				}
			}
			if n > 1 {
				w.both.Add(1)
			}
		}
	}()
	t.Cleanup(func() {
		w.end()
		if n := w.both.Load(); n > 0 {
			t.Errorf("two instances led at once in %d samples", n)
		}
	})
	return w
}

func (w *watch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func start(t *testing.T, opt Options) (*Elector, context.CancelFunc) {
	t.Helper()
	e, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return e, stop
}

// eventually polls cond every 20ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func TestKeyIsStableAndNameDependent(t *testing.T) {
	a1, a2 := Key("ares")
	b1, b2 := Key("ares")
	c1, c2 := Key("ares-staging")
	if a1 != b1 || a2 != b2 {
		t.Fatal("Key is not deterministic")
	}
	if a1 == c1 && a2 == c2 {
		t.Fatal("two lock names share a key")
	}
}

func TestNewRejectsShortLease(t *testing.T) {
	_, err := New(Options{DSN: "postgres://x@127.0.0.1/db", CheckInterval: time.Second, Lease: 1500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "at least twice") {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("no dsn accepted")
	}
}

func TestExactlyOneLeads(t *testing.T) {
	dsn, name := testDSN(t), lockName(t)
	reg := prometheus.NewRegistry()
	opt := Options{DSN: dsn, LockName: name, CheckInterval: 100 * time.Millisecond, Lease: 500 * time.Millisecond}
	oa, ob := opt, opt
	oa.Instance, ob.Instance = "a", "b"
	oa.Registerer = reg
	a, _ := start(t, oa)
	b, _ := start(t, ob)
	watchLeaders(t, a, b)
	eventually(t, 10*time.Second, "a leader", func() bool { return a.Leading() || b.Leading() })
	time.Sleep(1500 * time.Millisecond) // several checks and leases: the lead must not flap
	if a.Leading() == b.Leading() {
		t.Fatalf("a leading %v, b leading %v: want exactly one", a.Leading(), b.Leading())
	}
	lead, stand := a, b
	if b.Leading() {
		lead, stand = b, a
	}
	if got := stand.Leader(); got != lead.Instance() {
		t.Errorf("the standby sees %q lead, want %q", got, lead.Instance())
	}
	if got := lead.Leader(); got != lead.Instance() {
		t.Errorf("the leader sees %q lead, want itself", got)
	}
	if _, ok := stand.Term(); ok {
		t.Error("the standby has a term")
	}
	want := 0.0
	if a.Leading() {
		want = 1
	}
	var m dto.Metric
	if err := a.gauge.Write(&m); err != nil || m.GetGauge().GetValue() != want {
		got := m.GetGauge().GetValue()
		t.Errorf("ares_leader{instance=a} = %v, want %v", got, want)
	}
}

// holderPID is the backend holding the lock, from another connection.
func holderPID(t *testing.T, dsn, name string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	k1, k2 := Key(name)
	var pid int
	err = c.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
		AND classid::bigint = $1 AND objid::bigint = $2`, int64(uint32(k1)), int64(uint32(k2))).Scan(&pid)
	if err != nil {
		t.Fatalf("holder of the lock: %v", err)
	}
	return pid
}

// A network cut seen from the server's side: the leader's backend is terminated. The leader
// stops acting within its lease, before the other instance acts, and the other takes over.
func TestTerminatedLeaderStepsDown(t *testing.T) {
	dsn, name := testDSN(t), lockName(t)
	check, lease := 250*time.Millisecond, 2*time.Second // a connection gets one lease to open: generous on a busy host
	a, _ := start(t, Options{DSN: dsn, LockName: name, Instance: "a", CheckInterval: check, Lease: lease})
	eventually(t, 10*time.Second, "a leads", a.Leading)
	b, _ := start(t, Options{DSN: dsn, LockName: name, Instance: "b", CheckInterval: check, Lease: lease})
	w := watchLeaders(t, a, b)
	time.Sleep(3 * check)
	if !a.Leading() || b.Leading() {
		t.Fatalf("before the cut: a %v, b %v", a.Leading(), b.Leading())
	}
	term, _ := a.Term()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	pid := holderPID(t, dsn, name)
	cut := time.Now()
	var ok bool
	if err := c.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	var aStopped, bLed time.Duration
	var mu sync.Mutex
	eventually(t, 30*time.Second, "b takes over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if aStopped == 0 && !a.Leading() {
			aStopped = time.Since(cut)
		}
		if bLed == 0 && b.Leading() {
			bLed = time.Since(cut)
		}
		return bLed > 0
	})
	w.end()
	t.Logf("a stopped acting %s after the cut, b acted %s after it (check %s, lease %s)", aStopped, bLed, check, lease)
	if aStopped == 0 || aStopped > bLed {
		t.Errorf("a stopped at %s, b started at %s: a must stop first", aStopped, bLed)
	}
	if term.Err() == nil {
		t.Error("a's term is still alive: its actions would go on")
	}
	if aStopped > lease+time.Second {
		t.Errorf("a stepped down %s after the cut, lease %s", aStopped, lease)
	}
}

// TestHelperElector is not a test: the kill test runs it in a process of its own.
func TestHelperElector(t *testing.T) {
	if os.Getenv("ARES_LEADER_HELPER") != "1" {
		t.Skip("helper process for TestKilledLeaderHandsOver")
	}
	lease, _ := time.ParseDuration(os.Getenv("ARES_LEADER_LEASE"))
	check, _ := time.ParseDuration(os.Getenv("ARES_LEADER_CHECK"))
	e, err := New(Options{DSN: os.Getenv("ARES_LEADER_DSN"), LockName: os.Getenv("ARES_LEADER_LOCK"), Instance: "helper",
		CheckInterval: check, Lease: lease})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	go func() { _ = e.Run(context.Background()) }()
	for !e.Leading() {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("leading")
	select {} // until SIGKILL
}

// SIGKILL of the leader's process: the server sees its connection close without an unlock;
// the standby leads within check_interval + lease (plus scheduling slack).
func TestKilledLeaderHandsOver(t *testing.T) {
	dsn, name := testDSN(t), lockName(t)
	check, lease := 200*time.Millisecond, time.Second
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperElector$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ARES_LEADER_HELPER=1", "ARES_LEADER_DSN="+dsn, "ARES_LEADER_LOCK="+name,
		"ARES_LEADER_LEASE="+lease.String(), "ARES_LEADER_CHECK="+check.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	leading := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "leading") || strings.HasPrefix(sc.Text(), "error") {
				leading <- sc.Text()
				return
			}
		}
		leading <- "helper ended: " + fmt.Sprint(sc.Err())
	}()
	select {
	case l := <-leading:
		if l != "leading" {
			t.Fatal(l)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the helper did not lead")
	}
	b, _ := start(t, Options{DSN: dsn, LockName: name, Instance: "b", CheckInterval: check, Lease: lease})
	time.Sleep(3 * check)
	if b.Leading() {
		t.Fatal("b leads while the helper holds the lock")
	}
	if got := b.Leader(); got != "helper" {
		t.Errorf("b sees %q lead, want helper", got)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no unlock, no goodbye
		t.Fatal(err)
	}
	took := eventually(t, check+lease+10*time.Second, "b takes over", b.Leading)
	t.Logf("b leads %s after the SIGKILL (check %s + lease %s = %s)", took, check, lease, check+lease)
	if took < lease {
		t.Errorf("b acted %s after the kill: before the killed leader's lease (%s) was over", took, lease)
	}
}

// cutProxy forwards TCP to target until cut, then silently stops forwarding in both
// directions, without closing anything: a network partition, not a reset.
type cutProxy struct {
	ln  net.Listener
	cut chan struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, cut: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			select {
			case <-p.cut:
				<-make(chan struct{}) // hold the bytes forever; the test's cleanup closes the sockets
			default:
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return p
}

// A network cut between the leader and PostgreSQL (packets dropped, nothing closed): the
// leader's pings time out and it stops acting; the server, hearing no ping for a lease
// (idle_session_timeout, keep-alives), ends the session and frees the lock; the standby
// takes over, after the leader stopped.
func TestNetworkCutHandsOver(t *testing.T) {
	dsn, name := testDSN(t), lockName(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("ARES_TEST_PG_DSN is not a URL with a host: %v", err)
	}
	proxy := newCutProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.ln.Addr().String()
	check, lease := 200*time.Millisecond, time.Second
	a, _ := start(t, Options{DSN: viaProxy.String(), LockName: name, Instance: "a", CheckInterval: check, Lease: lease})
	eventually(t, 10*time.Second, "a leads", a.Leading)
	b, _ := start(t, Options{DSN: dsn, LockName: name, Instance: "b", CheckInterval: check, Lease: lease})
	w := watchLeaders(t, a, b)
	time.Sleep(3 * check)
	if !a.Leading() || b.Leading() {
		t.Fatalf("before the cut: a %v, b %v", a.Leading(), b.Leading())
	}
	cut := time.Now()
	close(proxy.cut)
	var aStopped time.Duration
	took := eventually(t, 30*time.Second, "b takes over after the cut", func() bool {
		if aStopped == 0 && !a.Leading() {
			aStopped = time.Since(cut)
		}
		return b.Leading()
	})
	w.end()
	t.Logf("a stopped acting %s after the cut, b acted %s after it (check %s, lease %s)", aStopped, took, check, lease)
	if aStopped == 0 || aStopped > took {
		t.Errorf("a stopped at %s, b started at %s: a must stop first", aStopped, took)
	}
	if aStopped > lease+time.Second {
		t.Errorf("a still acted %s after the cut (lease %s)", aStopped, lease)
	}
}
