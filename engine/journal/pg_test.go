package journal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ares-sre/ares/engine"
)

// PostgreSQL for the tests: the server in ARES_TEST_PG_DSN (default: scripts/services.sh's,
// reached as role shop) when that role may create databases, else a throwaway cluster of our
// own (initdb in a temporary directory, a free port, stopped by its PID at the end). Each
// test gets a database of its own, dropped afterwards.
const defaultTestDSN = "postgres://shop:shop@127.0.0.1:5432/postgres?sslmode=disable"

var (
	sharedOnce    sync.Once
	sharedAdmin   string // DSN of a database on a server where we may CREATE DATABASE
	sharedCluster *pgCluster
	sharedErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCluster != nil {
		sharedCluster.stop()
		_ = os.RemoveAll(sharedCluster.root)
	}
	os.Exit(code)
}

// needPG skips (on a laptop) or fails (under CI=true) when PostgreSQL cannot be had.
func needPG(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL needed under CI: %v", err)
	}
	t.Skipf("no PostgreSQL (run scripts/services.sh postgres, or install postgresql for initdb): %v", err)
}

func pgAdmin(t *testing.T) string {
	t.Helper()
	sharedOnce.Do(func() {
		dsn := os.Getenv("ARES_TEST_PG_DSN")
		if dsn == "" {
			dsn = defaultTestDSN
		}
		if err := canCreateDB(dsn); err == nil {
			sharedAdmin = dsn
			return
		} else {
			sharedErr = fmt.Errorf("%s: %w", redact(dsn), err)
		}
		root, err := os.MkdirTemp("", "ares-journal-pg-")
		if err != nil {
			sharedErr = errors.Join(sharedErr, err)
			return
		}
		c, err := startCluster(root)
		if err != nil {
			_ = os.RemoveAll(root)
			sharedErr = errors.Join(sharedErr, err)
			return
		}
		sharedCluster, sharedAdmin, sharedErr = c, c.dsn("postgres"), nil
	})
	needPG(t, sharedErr)
	return sharedAdmin
}

func redact(dsn string) string {
	if i, j := strings.Index(dsn, "://"), strings.LastIndex(dsn, "@"); i >= 0 && j > i {
		return dsn[:i+3] + "***" + dsn[j:]
	}
	return dsn
}

func canCreateDB(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var ok bool
	if err := c.QueryRow(ctx, `SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return errors.New("role may not create databases")
	}
	return nil
}

// testDB creates a database ares_journal_test_<random> on the server of admin and returns its
// DSN; it is dropped when the test ends.
func testDB(t *testing.T, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "ares_journal_test_" + hex.EncodeToString(b)
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return // the server is gone (a stopped throwaway cluster): nothing to drop
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return strings.Replace(admin, "/postgres?", "/"+name+"?", 1)
}

func TestPostgres(t *testing.T) {
	admin := pgAdmin(t)
	testStore(t, func(t *testing.T) Store {
		return reopenable(t, Config{Backend: BackendPostgres, DSN: testDB(t, admin), SyncIntents: true})
	})
}

func TestPostgresMigrationsIdempotent(t *testing.T) {
	dsn := testDB(t, pgAdmin(t))
	for i := 0; i < 2; i++ {
		s, err := Open(context.Background(), Config{Backend: BackendPostgres, DSN: dsn}, nil, nil)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		_ = s.Close()
	}
}

// PostgreSQL stopped during a run loses no record once it is back, and meanwhile the engine's
// calls return at once (an intent within the sync timeout).
func TestPostgresOutageLosesNothing(t *testing.T) {
	root := t.TempDir()
	c, err := startCluster(root)
	needPG(t, err)
	t.Cleanup(c.stop)
	reg := prometheus.NewRegistry()
	s, err := Open(context.Background(), Config{Backend: BackendPostgres, DSN: c.dsn("postgres"), SyncIntents: true,
		SyncTimeout: 300 * time.Millisecond, CloseTimeout: 20 * time.Second}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	at := time.Now().UTC()
	for i := uint64(1); i <= 3; i++ {
		tick(t, s, i, at, factsWith(i, at, "running"))
	}
	flush(t, s)

	c.stop()
	start := time.Now()
	for i := uint64(4); i <= 23; i++ {
		ts := at.Add(time.Duration(i) * time.Second)
		tick(t, s, i, ts, factsWith(i, ts, "exited"), restart)
	}
	// One more intent left without an outcome: it must survive the outage too.
	pending, err := s.Intent(ctx, 24, engine.Action{Decision: restart, Verdict: engine.VerdictAdmit})
	if err != nil {
		t.Fatal(err)
	}
	// 21 intents: the first waits at most the sync timeout, the rest are queued at once.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("20 ticks took %s while PostgreSQL was down: the journal blocked healing", d)
	}
	if n := metricValue(s.(*dbStore).w.depth); n == 0 {
		t.Error("queue depth gauge is 0 while the database is down")
	}

	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ticks != 23 || st.Intents != 21 || st.Decisions != 20 || st.Unfinished != 1 || st.FactsBlobs != 2 {
		t.Errorf("after the outage: %+v, want 23 ticks, 21 intents, 20 decisions, 1 unfinished, 2 facts blobs", st)
	}
	un, _ := s.Unfinished(ctx)
	if len(un) != 1 || un[0].ID != pending {
		t.Errorf("unfinished = %+v, want %s", un, pending)
	}
	if n := metricValue(s.(*dbStore).w.dropped.WithLabelValues(kindTick)); n != 0 {
		t.Errorf("dropped %v tick records", n)
	}
}

// pgCluster is a throwaway PostgreSQL cluster in root, owned by the postgres OS user when the
// tests run as root (initdb refuses root).
type pgCluster struct {
	root, data, bin string
	port            int
	asUser          string // "" or "postgres"
	pid             int
}

func pgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("initdb not found")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startCluster(root string) (*pgCluster, error) {
	bin, err := pgBin()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &pgCluster{root: root, data: filepath.Join(root, "data"), bin: bin, port: port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres user for initdb: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.asUser = "postgres"
		// The postgres user must reach root: open the directories on the way (ours, temporary).
		for d := root; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
			_ = os.Chmod(d, 0o755)
		}
		if err := os.Mkdir(c.data, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chown(c.data, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *pgCluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", filepath.Join(c.bin, name)}, args...)...)
	}
	cmd.Dir = c.root
	return cmd.CombinedOutput()
}

func (c *pgCluster) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

func (c *pgCluster) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40", c.port, c.data)
	if out, err := c.run("pg_ctl", "-D", c.data, "-o", opts, "-l", filepath.Join(c.data, "log"), "-w", "-t", "30", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	c.pid = pid
	return nil
}

// stop shuts the cluster down by its postmaster's PID (fast shutdown) and waits for it.
func (c *pgCluster) stop() {
	if c.pid == 0 {
		return
	}
	_ = syscall.Kill(c.pid, syscall.SIGINT)
	for i := 0; i < 300 && syscall.Kill(c.pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	c.pid = 0
}

func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	switch {
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Counter != nil:
		return d.Counter.GetValue()
	}
	return -1
}
