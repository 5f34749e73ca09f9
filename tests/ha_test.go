package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// haJournal returns the DSN of a schema of its own on the test PostgreSQL (ARES_TEST_PG_DSN,
// default scripts/services.sh's), dropped when the test ends, and a connection to it.
func haJournal(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	base := os.Getenv("ARES_TEST_PG_DSN")
	if base == "" {
		base = "postgres://shop:shop@127.0.0.1:5432/shop?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		dockertest.Unavailable(t, "PostgreSQL (scripts/services.sh postgres, or ARES_TEST_PG_DSN)", err)
		return "", nil
	}
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	schema := "ares_ha_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close(ctx)
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, admin
}

// Two `ares run` against one fleet and one PostgreSQL journal with ha.enabled: only the
// leader acts on a crash (the standby prints the same decision held back, and the journal
// holds one action); SIGKILL of the leader hands the lead over, the new leader rebuilds the
// governor from the journal (the old leader's restart still cools its service) and acts on
// the next crash within check_interval + lease + two ticks.
func TestHALeaderActsStandbyHoldsBack(t *testing.T) {
	dsn, _ := haJournal(t)
	label, labels := scope(t)
	sc := labels["ares.test.scope"]
	web1, web2 := "e2e-ha1-"+sc, "e2e-ha2-"+sc
	l1 := map[string]string{"ares.test.scope": sc, "ares.enable": "true", "ares.service": "ha1"}
	l2 := map[string]string{"ares.test.scope": sc, "ares.enable": "true", "ares.service": "ha2"}
	id1 := dockertest.Run(t, dockertest.Spec{Name: web1, Labels: l1})
	id2 := dockertest.Run(t, dockertest.Spec{Name: web2, Labels: l2})
	waitHealthy(t, id1)
	waitHealthy(t, id2)

	const check, lease, interval = 300 * time.Millisecond, 1500 * time.Millisecond, 500 * time.Millisecond
	t.Setenv("ARES_JOURNAL_BACKEND", "postgres")
	t.Setenv("ARES_JOURNAL_DSN", dsn)
	t.Setenv("ARES_HA_ENABLED", "true")
	t.Setenv("ARES_HA_CHECK_INTERVAL", check.String())
	t.Setenv("ARES_HA_LEASE", lease.String())
	t.Setenv("ARES_HA_LOCK_NAME", sc) // other tests' instances elect among themselves
	policies := filepath.Join(dockertest.ModuleRoot(t), "policies")

	t.Setenv("ARES_HA_INSTANCE", "a")
	a := startAres(t, policies, label)
	dockertest.Eventually(t, 30*time.Second, "a leads", func() bool { return strings.Contains(a.stderr.String(), "leader election: leading") })
	t.Setenv("ARES_HA_INSTANCE", "b")
	b := startAres(t, policies, label)
	dockertest.Eventually(t, 10*time.Second, "b ticks", func() bool { return len(b.ticks(t)) > 2 })

	kill(t, id1)
	dockertest.Eventually(t, 20*time.Second, "a restarts ha1", func() bool {
		return contains(a.actions(t, engine.VerdictAdmit), "restart ha1/"+web1)
	})
	dockertest.Eventually(t, 10*time.Second, "b shows the restart held back", func() bool {
		return b.heldBack(t, web1, "standby: instance a leads")
	})
	if got := b.actions(t, engine.VerdictAdmit); len(got) > 0 {
		t.Errorf("the standby admitted %v", got)
	}
	waitHealthy(t, id1)
	if n := journalIntents(t, dsn, web1); n != 1 {
		t.Errorf("journal holds %d intents for %s, want 1 (the leader's)", n, web1)
	}
	if strings.Contains(b.stderr.String(), "leader election: leading") {
		t.Fatal("b led while a was alive")
	}

	if err := a.cmd.Process.Kill(); err != nil { // SIGKILL: no unlock, no goodbye
		t.Fatal(err)
	}
	killed := time.Now()
	kill(t, id2)
	dockertest.Eventually(t, check+lease+2*interval+20*time.Second, "b restarts ha2", func() bool {
		return contains(b.actions(t, engine.VerdictAdmit), "restart ha2/"+web2)
	})
	took := time.Since(killed)
	t.Logf("leader SIGKILLed → the standby restarted the next crash in %s (bound: check %s + lease %s + 2 ticks of %s)",
		took.Round(time.Millisecond), check, lease, interval)
	if !strings.Contains(b.stderr.String(), "governor restored from the journal on taking the lead") {
		t.Errorf("b did not rebuild the governor on taking the lead")
	}
	waitHealthy(t, id2)

	// The old leader's restart of ha1 is in b's governor now: a crash within the cooldown is
	// held back by b as it would have been by a.
	kill(t, id1)
	n := len(b.ticks(t))
	dockertest.Eventually(t, 20*time.Second, "ticks after the second crash", func() bool { return len(b.ticks(t)) >= n+6 })
	if contains(b.actions(t, engine.VerdictAdmit), "restart ha1/"+web1) {
		t.Errorf("b restarted ha1 within the cooldown of a's restart: the governor did not carry over")
	}
	if st, _ := dockertest.State(t, id1); st != "exited" {
		t.Errorf("ha1 is %s: the cooldown of a's restart did not carry over", st)
	}
	if n := journalIntents(t, dsn, web2); n != 1 {
		t.Errorf("journal holds %d intents for %s, want 1", n, web2)
	}
}

// journalIntents counts the actions recorded on replica in the journal.
func journalIntents(t *testing.T, dsn, replica string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	// The journal writes in the background: give it a moment to flush the intent.
	for i := 0; i < 20; i++ {
		if err := c.QueryRow(ctx, `SELECT count(*) FROM intents WHERE replica = $1`, replica).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}
