package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/sensors/alertmanager"
)

type doctorOpts struct {
	cf     configFlags
	output string
}

func newDoctorCmd() *cobra.Command {
	o := doctorOpts{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check everything a first run depends on, and say how to fix what fails",
		Long: `doctor checks, without changing anything, what ares run needs: the config parses, Docker
answers (and which API version was negotiated), containers labelled ares.enable=true exist
within the configured label scope, the policy directory compiles and only its owner can write
it, its *_test.rego tests pass, the journal can be written (SQLite or file: its directory;
PostgreSQL: a connection), the metrics and dashboard addresses can be bound, and, when
configured, Prometheus answers, the Alertmanager receiver is served and the notify webhook URL
is well formed.

One line per check: ok, warn or FAIL, the check, what was found and, for warn and FAIL, how to
fix it. The exit status is 1 when any check FAILs; warnings alone exit 0. Run it where ARES
will run, as the user it will run as (on EC2: sudo -u ares ares doctor -c /etc/ares/ares.yaml).`,
		Example: `  # before the first ares run
  ares doctor

  # the config the systemd unit uses, as the user it runs as
  sudo -u ares ares doctor --config /etc/ares/ares.yaml

  # machine-readable, e.g. for a deployment pipeline
  ares doctor -o json | jq -r '.checks[] | select(.status != "ok") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	o.cf.register(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Check statuses.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
)

// doctorCheck is one line of the report.
type doctorCheck struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// doctorReport is the JSON output.
type doctorReport struct {
	OK     bool          `json:"ok"` // no check failed
	Config string        `json:"config"`
	Checks []doctorCheck `json:"checks"`
}

// doctorTimeout bounds each check that talks to something.
const doctorTimeout = 5 * time.Second

func runDoctor(ctx context.Context, o doctorOpts, w io.Writer) error {
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output: must be text or json (got %q)", o.output)
	}
	rep := doctorReport{Config: "defaults"}
	cfg, source, err := o.cf.load()
	if err != nil {
		rep.Checks = append(rep.Checks, configCheck(err, o.cf.path))
	} else {
		rep.Config = source
		rep.Checks = append(rep.Checks, doctorCheck{Name: "config", Status: checkOK, Detail: source + " parses and validates"})
		rep.Checks = append(rep.Checks, doctorChecks(ctx, cfg)...)
	}
	failed := 0
	for _, c := range rep.Checks {
		if c.Status == checkFail {
			failed++
		}
	}
	rep.OK = failed == 0
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printChecks(w, rep.Checks)
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("doctor: %d of %d checks failed", failed, len(rep.Checks))}
	}
	return nil
}

// printChecks writes `ok|warn|FAIL  name  detail  (fix: ...)`, the names aligned.
func printChecks(w io.Writer, checks []doctorCheck) {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	for _, c := range checks {
		status := c.Status
		if status == checkFail {
			status = "FAIL"
		}
		line := fmt.Sprintf("%-4s  %-*s  %s", status, width, c.Name, oneLine(c.Detail))
		if c.Fix != "" && c.Status != checkOK {
			line += "  (fix: " + c.Fix + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// oneLine joins a multi-line detail (OPA's test failures, pgx's errors) with "; ".
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, strings.TrimSuffix(l, ":"))
		}
	}
	return strings.Join(parts, "; ")
}

func configCheck(err error, path string) doctorCheck {
	c := doctorCheck{Name: "config", Status: checkFail, Detail: err.Error()}
	var fe *config.FieldError
	switch {
	case errors.As(err, &fe) && fe.Source == "environment":
		c.Fix = fmt.Sprintf("unset or correct %s", fe.Field)
	case errors.As(err, &fe):
		c.Fix = fmt.Sprintf("correct %s in %s (ares.yaml in the repository documents every key)", fe.Field, fe.Source)
	case errors.Is(err, fs.ErrNotExist):
		c.Fix = fmt.Sprintf("give an existing file with --config (not %q), or none for the built-in defaults", path)
	default:
		c.Fix = "correct the file; the other checks run once the config loads"
	}
	return c
}

// doctorChecks runs every check after the config's.
func doctorChecks(ctx context.Context, cfg config.Config) []doctorCheck {
	var out []doctorCheck
	dockerCheck, cli := checkDocker(ctx, cfg.Docker)
	out = append(out, dockerCheck)
	if cli != nil {
		out = append(out, checkContainers(ctx, cli, cfg.Docker.Labels))
		cli.Close()
	} else {
		out = append(out, doctorCheck{Name: "containers", Status: checkWarn, Detail: "not checked: Docker does not answer",
			Fix: "fix the docker check first"})
	}
	out = append(out, checkPolicyPermissions(cfg.Policy))
	out = append(out, checkPolicies(ctx, cfg.Policy)...)
	out = append(out, checkJournal(ctx, cfg.Journal))
	out = append(out, checkListen("metrics", "metrics.listen", cfg.Metrics.Listen))
	out = append(out, checkListen("dashboard", "dashboard.listen", cfg.Dashboard.Listen))
	out = append(out, checkPrometheus(ctx, cfg.Sensors.Metrics))
	out = append(out, checkReceiver(cfg))
	out = append(out, checkWebhook(cfg.Notify.WebhookURL))
	return out
}

func checkDocker(ctx context.Context, cfg config.Docker) (doctorCheck, *client.Client) {
	c := doctorCheck{Name: "docker"}
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		c.Status, c.Detail = checkFail, err.Error()
		c.Fix = "docker.host (or DOCKER_HOST) must be an address like unix:///var/run/docker.sock or tcp://host:2375"
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, min(cfg.APITimeout, doctorTimeout))
	defer cancel()
	ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		cli.Close()
		c.Status, c.Detail = checkFail, fmt.Sprintf("cannot reach the engine at %s: %v", cli.DaemonHost(), err)
		switch {
		case errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "permission denied"):
			c.Fix = "add the user ARES runs as to the docker group (sudo usermod -aG docker $USER; log in again)"
		default:
			c.Fix = "start Docker (sudo systemctl start docker), or point docker.host / DOCKER_HOST at the engine"
		}
		return c, nil
	}
	ver, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		cli.Close()
		c.Status, c.Detail = checkFail, fmt.Sprintf("%s answers ping (API %s) but not /version: %v", cli.DaemonHost(), ping.APIVersion, err)
		c.Fix = "check the engine's logs (journalctl -u docker)"
		return c, nil
	}
	c.Status = checkOK
	c.Detail = fmt.Sprintf("%s: Docker Engine %s (%s/%s), API %s negotiated (engine supports %s to %s)",
		cli.DaemonHost(), ver.Version, ver.Os, ver.Arch, cli.ClientVersion(), ver.MinAPIVersion, ver.APIVersion)
	return c, cli
}

func checkContainers(ctx context.Context, cli *client.Client, labels []string) doctorCheck {
	c := doctorCheck{Name: "containers"}
	scope := append([]string{"ares.enable=true"}, labels...)
	f := client.Filters{}
	for _, l := range scope {
		f = f.Add("label", l)
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		c.Status, c.Detail, c.Fix = checkFail, "list containers: "+err.Error(), "check the engine's logs (journalctl -u docker)"
		return c
	}
	if len(res.Items) == 0 {
		c.Status = checkWarn
		c.Detail = "no container labelled " + strings.Join(scope, ", ") + ": ARES has nothing to heal"
		c.Fix = "label the services ARES may heal (compose: labels: [\"ares.enable=true\"]) and start them"
		if len(labels) > 0 {
			c.Fix += ", or check docker.labels"
		}
		return c
	}
	running := 0
	services := map[string]bool{}
	for _, it := range res.Items {
		if it.State == "running" {
			running++
		}
		svc := it.Labels["ares.service"]
		if svc == "" {
			svc = it.Labels["com.docker.compose.service"]
		}
		if svc == "" && len(it.Names) > 0 {
			svc = strings.TrimPrefix(it.Names[0], "/")
		}
		services[svc] = true
	}
	names := make([]string, 0, len(services))
	for s := range services {
		names = append(names, s)
	}
	sort.Strings(names)
	if len(names) > 8 {
		names = append(names[:8], "…")
	}
	c.Status = checkOK
	c.Detail = fmt.Sprintf("%d labelled %s (%d running), services: %s", len(res.Items), plural(len(res.Items), "container", "containers"),
		running, strings.Join(names, ", "))
	return c
}

func checkPolicyPermissions(p config.Policy) doctorCheck {
	c := doctorCheck{Name: "policy permissions"}
	if _, err := os.Stat(p.Dir); err != nil {
		c.Status, c.Detail, c.Fix = checkWarn, "not checked: "+err.Error(), "see the policies check"
		return c
	}
	err := policy.CheckPermissions(p.Dir)
	var pe *policy.PermissionError
	switch {
	case err == nil:
		c.Status, c.Detail = checkOK, p.Dir+": only its owner can change what ARES loads"
	case errors.As(err, &pe) && p.InsecureDir:
		c.Status, c.Detail = checkWarn, fmt.Sprintf("%s %s; loaded anyway (policy.insecure_dir: true)", pe.Path, pe.Reason)
		c.Fix = pe.Fix + ", then set policy.insecure_dir: false"
	case errors.As(err, &pe):
		c.Status, c.Detail, c.Fix = checkFail, fmt.Sprintf("%s %s: ARES refuses to load it", pe.Path, pe.Reason), pe.Fix
	default:
		c.Status, c.Detail, c.Fix = checkFail, err.Error(), "make "+p.Dir+" readable by the user ARES runs as"
	}
	return c
}

// checkPolicies compiles the policy directory and runs its tests, as ares run with
// policy.require_tests would.
func checkPolicies(ctx context.Context, p config.Policy) []doctorCheck {
	c := doctorCheck{Name: "policies"}
	opt := policy.Options{Query: p.Query, Partition: p.Partition, InsecureDir: true} // permissions: their own check
	set, err := policy.Load(p.Dir, opt)
	if err != nil {
		c.Status, c.Detail = checkFail, err.Error()
		c.Fix = "correct the file and line named; `ares eval --facts FILE --policies " + p.Dir + "` shows the result"
		if errors.Is(err, fs.ErrNotExist) {
			abs, _ := filepath.Abs(p.Dir)
			c.Fix = "create " + abs + " with the policy pack (policies/ in the repository), or set policy.dir"
		}
		return []doctorCheck{c, {Name: "policy tests", Status: checkWarn, Detail: "not run: the policies do not compile",
			Fix: "fix the policies check first"}}
	}
	var tests []string
	for _, f := range set.Files() {
		if strings.HasSuffix(f, "_test.rego") {
			tests = append(tests, f)
		}
	}
	c.Status = checkOK
	c.Detail = fmt.Sprintf("%s compiles: %d files, revision %s", p.Dir, len(set.Files()), set.Revision())
	t := doctorCheck{Name: "policy tests"}
	if len(tests) == 0 {
		t.Status, t.Detail = checkWarn, "no *_test.rego files in "+p.Dir
		t.Fix = "write opa tests beside the policies and run them in CI (go tool opa test " + p.Dir + ")"
		if p.RequireTests {
			t.Status = checkFail
			t.Fix += "; policy.require_tests is true"
		}
		return []doctorCheck{c, t}
	}
	opt.RequireTests = true
	if _, err := policy.Load(p.Dir, opt); err != nil {
		t.Status, t.Detail = checkFail, err.Error()
		t.Fix = "make the failing tests pass (go tool opa test -v " + p.Dir + ")"
		if !p.RequireTests {
			t.Status = checkWarn
			t.Fix += "; ARES loads the policies anyway unless policy.require_tests is true"
		}
		return []doctorCheck{c, t}
	}
	t.Status, t.Detail = checkOK, fmt.Sprintf("%d test %s pass", len(tests), plural(len(tests), "file", "files"))
	return []doctorCheck{c, t}
}

func checkJournal(ctx context.Context, j config.Journal) doctorCheck {
	c := doctorCheck{Name: "journal"}
	if j.Backend == journal.BackendPostgres {
		pc, err := pgx.ParseConfig(j.DSN)
		if err != nil {
			c.Status, c.Detail = checkFail, "journal.dsn does not parse: "+err.Error() // pgx does not echo the password
			c.Fix = "journal.dsn (or ARES_JOURNAL_DSN) must be postgres://user:password@host:5432/db"
			return c
		}
		where := fmt.Sprintf("postgres %s:%d/%s as %s", pc.Host, pc.Port, pc.Database, pc.User)
		pc.ConnectTimeout = doctorTimeout
		ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, pc)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.WithoutCancel(ctx))
		}
		if err != nil {
			c.Status, c.Detail = checkFail, fmt.Sprintf("%s: %v", where, err)
			c.Fix = "start PostgreSQL there, or correct journal.dsn (or ARES_JOURNAL_DSN): host, port, role and password"
			return c
		}
		c.Status, c.Detail = checkOK, where+": connected"
		return c
	}
	if j.Path == "" {
		c.Status, c.Detail = checkOK, "off (journal.path is empty): no history, no crash recovery of actions"
		return c
	}
	dir := filepath.Dir(j.Path)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		c.Status, c.Detail = checkFail, fmt.Sprintf("%s journal %s: directory %s does not exist", j.Backend, j.Path, dir)
		c.Fix = fmt.Sprintf("mkdir -p %s, owned by the user ARES runs as, or set journal.path", dir)
		return c
	}
	probe, err := os.CreateTemp(dir, ".ares-doctor-*")
	if err != nil {
		c.Status, c.Detail = checkFail, fmt.Sprintf("%s journal %s: directory %s is not writable: %v", j.Backend, j.Path, dir, err)
		c.Fix = fmt.Sprintf("chown the directory to the user ARES runs as (sudo chown ares %s), or set journal.path", dir)
		return c
	}
	probe.Close()
	os.Remove(probe.Name())
	state := "will be created"
	if st, err := os.Stat(j.Path); err == nil {
		f, err := os.OpenFile(j.Path, os.O_RDWR, 0)
		if err != nil {
			c.Status, c.Detail = checkFail, fmt.Sprintf("%s journal %s exists but cannot be written: %v", j.Backend, j.Path, err)
			c.Fix = fmt.Sprintf("sudo chown ares %s (the user ARES runs as)", j.Path)
			return c
		}
		f.Close()
		state = fmt.Sprintf("exists, %.1f MB", float64(st.Size())/1e6)
	}
	c.Status, c.Detail = checkOK, fmt.Sprintf("%s journal %s: writable (%s)", j.Backend, j.Path, state)
	return c
}

// checkListen binds addr and lets it go again.
func checkListen(name, key, addr string) doctorCheck {
	c := doctorCheck{Name: name}
	if addr == "" {
		c.Status, c.Detail = checkOK, "off ("+key+" is empty)"
		return c
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.Status, c.Detail = checkFail, fmt.Sprintf("%s %s cannot be bound: %v", key, addr, err)
		c.Fix = "set " + key + " to a free address, or stop what holds it"
		if errors.Is(err, syscall.EADDRINUSE) {
			_, port, _ := net.SplitHostPort(addr)
			c.Fix = fmt.Sprintf("another process holds it (an ARES already running? ss -ltnp 'sport = :%s'); stop it or set %s", port, key)
		}
		return c
	}
	ln.Close()
	c.Status, c.Detail = checkOK, fmt.Sprintf("%s %s can be bound", key, addr)
	return c
}

func checkPrometheus(ctx context.Context, m config.MetricsSensor) doctorCheck {
	c := doctorCheck{Name: "prometheus"}
	if !m.Enabled || m.PrometheusURL == "" {
		c.Status, c.Detail = checkOK, "not configured (sensors.metrics.prometheus_url): the metrics sensor scrapes the containers itself"
		if !m.Enabled {
			c.Detail = "not configured (sensors.metrics.enabled: false)"
		}
		return c
	}
	u, err := url.Parse(m.PrometheusURL)
	if err != nil || u.Host == "" {
		c.Status, c.Detail, c.Fix = checkFail, "sensors.metrics.prometheus_url is not a URL with a host", "set it to e.g. http://prometheus:9090"
		return c
	}
	shown := u.Redacted()
	ready := strings.TrimSuffix(u.String(), "/") + "/-/ready"
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ready, nil)
	if err != nil {
		c.Status, c.Detail, c.Fix = checkFail, shown+": "+err.Error(), "correct sensors.metrics.prometheus_url"
		return c
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.Status, c.Detail = checkFail, fmt.Sprintf("%s does not answer: %v", shown, errors.Unwrap(err))
		c.Fix = "start Prometheus there, or correct sensors.metrics.prometheus_url"
		return c
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Status, c.Detail = checkFail, fmt.Sprintf("%s/-/ready answers %s", shown, resp.Status)
		c.Fix = "wait for Prometheus to finish starting, or check that the URL is Prometheus's"
		return c
	}
	c.Status, c.Detail = checkOK, shown+" is ready"
	return c
}

func checkReceiver(cfg config.Config) doctorCheck {
	c := doctorCheck{Name: "alertmanager receiver"}
	switch {
	case !cfg.Sensors.Alertmanager.Enabled:
		c.Status, c.Detail = checkOK, "off (sensors.alertmanager.enabled: false)"
	case cfg.Metrics.Listen == "":
		c.Status, c.Detail = checkWarn, "enabled, but alerts cannot arrive: the receiver is served on metrics.listen, which is empty"
		c.Fix = "set metrics.listen, or sensors.alertmanager.enabled: false"
	default:
		c.Status = checkOK
		c.Detail = fmt.Sprintf("served at http://%s%s: Alertmanager's webhook_configs url (deploy/alertmanager)", cfg.Metrics.Listen, alertmanager.PathV2)
	}
	return c
}

func checkWebhook(raw string) doctorCheck {
	c := doctorCheck{Name: "notify webhook"}
	if raw == "" {
		c.Status, c.Detail = checkOK, "off (notify.webhook_url is empty): notify decisions are only logged"
		return c
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		// url's errors quote the whole URL, and a webhook URL is a secret.
		c.Status, c.Detail = checkFail, "notify.webhook_url does not parse as a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		c.Status, c.Detail = checkFail, fmt.Sprintf("notify.webhook_url: scheme %q, want http or https", u.Scheme)
	case u.Host == "":
		c.Status, c.Detail = checkFail, "notify.webhook_url has no host"
	default:
		// The path and query often hold the webhook's token: only the scheme and host show.
		c.Status, c.Detail = checkOK, fmt.Sprintf("%s://%s/… (path hidden) is well formed", u.Scheme, u.Host)
		return c
	}
	c.Fix = "set notify.webhook_url (or ARES_NOTIFY_WEBHOOK_URL) to e.g. https://hooks.example.com/T000/B000"
	return c
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
