package tests

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ares-sre/ares/internal/dockertest"
)

// reasons returns the reasons of every decision printed so far, in order.
func (p *aresProc) reasons(t *testing.T) []string {
	var out []string
	for _, tk := range p.ticks(t) {
		for _, d := range tk.Decisions {
			out = append(out, d.Reason)
		}
	}
	return out
}

// SIGHUP (systemctl reload ares) reloads the policies even where file events do not reach
// ARES. Here the watcher's debounce is an hour, so only the signal can make the edit live.
func TestSIGHUPReloadsPolicies(t *testing.T) {
	label, labels := scope(t)
	labels["ares.service"] = "web"
	dockertest.Run(t, dockertest.Spec{Name: "e2e-hup-" + labels["ares.test.scope"], Labels: labels})
	dir := t.TempDir()
	writePolicy(t, dir, "notify.rego", notifyPolicy)
	writePolicy(t, dir, "data.json", `{"ares": {"msg": "v1"}}`)
	t.Setenv("ARES_POLICY_DEBOUNCE", "1h")
	p := startAres(t, dir, label, "--dry-run")
	dockertest.Eventually(t, 15*time.Second, "v1 decisions", func() bool { return contains(p.reasons(t), "v1") })

	writePolicy(t, dir, "data.json", `{"ares": {"msg": "v2"}}`)
	n := len(p.ticks(t))
	dockertest.Eventually(t, 15*time.Second, "three more ticks", func() bool { return len(p.ticks(t)) >= n+3 })
	if contains(p.reasons(t), "v2") {
		t.Fatal("the watcher reloaded within its hour of debounce: this test proves nothing")
	}

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 15*time.Second, "v2 decisions after SIGHUP", func() bool { return contains(p.reasons(t), "v2") })
	if !strings.Contains(p.stderr.String(), "SIGHUP: policies reloaded") {
		t.Errorf("no reload logged:\n%s", tail(p.stderr.String(), 20))
	}
	revs := map[string]bool{}
	for _, tk := range p.ticks(t) {
		revs[tk.PolicyRev] = true
	}
	if len(revs) != 2 {
		t.Errorf("policy revisions seen: %v, want 2", revs)
	}

	// Nothing changed: said so. A broken file: refused, the live policy keeps acting.
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 15*time.Second, "unchanged logged", func() bool {
		return strings.Contains(p.stderr.String(), "SIGHUP: policies unchanged")
	})
	writePolicy(t, dir, "broken.rego", "package ares\n\ndecisions contains x if {\n  x := \n}\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 15*time.Second, "refusal logged with the file", func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "SIGHUP: policy reload refused") && strings.Contains(s, "broken.rego:")
	})
	n = len(p.ticks(t))
	dockertest.Eventually(t, 15*time.Second, "ticks go on", func() bool { return len(p.ticks(t)) >= n+2 })
	ticks := p.ticks(t)
	if last := ticks[len(ticks)-1]; len(last.Decisions) != 1 || last.Decisions[0].Reason != "v2" {
		t.Errorf("after a refused reload the live policy must keep acting: %+v", last.Decisions)
	}
	if p.cmd.ProcessState != nil {
		t.Error("ares exited on SIGHUP")
	}
}

// notifyListener is systemd's end of the notify protocol: a unixgram socket collecting
// datagrams.
type notifyListener struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // short: a socket path holds at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &notifyListener{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: l.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, string(buf[:n]))
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return l
}

func (l *notifyListener) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// first returns the index of the first message at or after from that has the line, or -1.
func (l *notifyListener) first(line string, from int) int {
	for i, m := range l.messages() {
		if i >= from && contains(strings.Split(m, "\n"), line) {
			return i
		}
	}
	return -1
}

// Started as systemd starts a Type=notify service with WatchdogSec (deploy/ec2/ares.service),
// ares run says READY=1, feeds the watchdog while it ticks, brackets a SIGHUP reload with
// RELOADING=1 and READY=1, and says STOPPING=1 on SIGTERM.
func TestSystemdNotifyProtocol(t *testing.T) {
	label, _ := scope(t)
	dir := t.TempDir()
	writePolicy(t, dir, "notify.rego", notifyPolicy)
	writePolicy(t, dir, "data.json", `{"ares": {"msg": "v1"}}`)
	sd := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", sd.path)
	t.Setenv("WATCHDOG_USEC", "400000") // a ping every 200ms
	p := startAres(t, dir, label, "--dry-run")

	dockertest.Eventually(t, 15*time.Second, "READY=1", func() bool { return sd.first("READY=1", 0) >= 0 })
	if m := sd.messages()[0]; !strings.HasPrefix(m, "READY=1\nSTATUS=ticking every 500ms; policy_rev ") {
		t.Errorf("first message %q, want READY=1 with a status", m)
	}
	ready := sd.first("READY=1", 0)
	dockertest.Eventually(t, 15*time.Second, "watchdog pings", func() bool {
		n := 0
		for _, m := range sd.messages() {
			if m == "WATCHDOG=1" {
				n++
			}
		}
		return n >= 3
	})
	if w := sd.first("WATCHDOG=1", 0); w < ready {
		t.Errorf("WATCHDOG=1 (message %d) before READY=1 (message %d)", w, ready)
	}

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	dockertest.Eventually(t, 15*time.Second, "RELOADING=1 then READY=1", func() bool {
		r := sd.first("RELOADING=1", 0)
		return r >= 0 && sd.first("READY=1", r+1) > r
	})

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("ares run exited with %v after SIGTERM", err)
	}
	dockertest.Eventually(t, 10*time.Second, "STOPPING=1 received", func() bool { return sd.first("STOPPING=1", 0) >= 0 })
	msgs := sd.messages()
	if last := msgs[len(msgs)-1]; !strings.HasPrefix(last, "STOPPING=1") {
		t.Errorf("last message %q, want STOPPING=1", last)
	}
	if !strings.Contains(p.stderr.String(), "systemd notified") {
		t.Errorf("no systemd log line:\n%s", tail(p.stderr.String(), 20))
	}
}
