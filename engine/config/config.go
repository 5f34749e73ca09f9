// Package config loads ARES's configuration: ares.yaml, then ARES_* environment variables, then
// command-line flags, into one Config that is validated once. It is the only importer of viper.
// Every component receives its own sub-struct.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the whole of ARES's configuration. ares.yaml at the repository root documents
// every key.
type Config struct {
	Engine    Engine    `mapstructure:"engine"`
	Policy    Policy    `mapstructure:"policy"`
	Governor  Governor  `mapstructure:"governor"`
	Docker    Docker    `mapstructure:"docker"`
	Sensors   Sensors   `mapstructure:"sensors"`
	Anomaly   Anomaly   `mapstructure:"anomaly"`
	Notify    Notify    `mapstructure:"notify"`
	Metrics   Metrics   `mapstructure:"metrics"`
	Dashboard Dashboard `mapstructure:"dashboard"`
	Journal   Journal   `mapstructure:"journal"`
	Log       Log       `mapstructure:"log"`
	// Runtime is what runs the fleet: docker (one host, the default), swarm or kubernetes.
	Runtime    string     `mapstructure:"runtime"`
	HA         HA         `mapstructure:"ha"`
	Kubernetes Kubernetes `mapstructure:"kubernetes"`
}

// Kubernetes configures runtime: kubernetes (docs/kubernetes.md).
type Kubernetes struct {
	// Kubeconfig is a kubeconfig file; empty: the in-cluster service account, else
	// $KUBECONFIG, else ~/.kube/config.
	Kubeconfig string `mapstructure:"kubeconfig"`
	Context    string `mapstructure:"context"`
	// Namespace limits ARES to one namespace; empty: every namespace.
	Namespace string `mapstructure:"namespace"`
	// Labels are extra "key=value" labels a pod must carry, on top of ares.enable=true.
	Labels         []string                 `mapstructure:"labels"`
	MaxReplicas    int                      `mapstructure:"max_replicas"`
	APITimeout     time.Duration            `mapstructure:"api_timeout"`
	Metrics        string                   `mapstructure:"metrics"` // auto, on or off
	Events         bool                     `mapstructure:"events"`
	LeaderElection KubernetesLeaderElection `mapstructure:"leader_election"`
}

// KubernetesLeaderElection configures the Lease that elects the one acting ARES replica.
type KubernetesLeaderElection struct {
	Enabled       bool          `mapstructure:"enabled"`
	LeaseName     string        `mapstructure:"lease_name"`
	Namespace     string        `mapstructure:"namespace"` // empty: the pod's own namespace
	Identity      string        `mapstructure:"identity"`  // empty: the hostname (the pod's name)
	LeaseDuration time.Duration `mapstructure:"lease_duration"`
	RenewDeadline time.Duration `mapstructure:"renew_deadline"`
	RetryPeriod   time.Duration `mapstructure:"retry_period"`
}

// HA configures leader election among several ARES instances (engine/leader).
type HA struct {
	Enabled bool `mapstructure:"enabled"`
	// DSN is the PostgreSQL holding the lock; empty: journal.dsn.
	DSN           string        `mapstructure:"dsn"`
	LockName      string        `mapstructure:"lock_name"`
	Instance      string        `mapstructure:"instance"` // empty: hostname-pid
	CheckInterval time.Duration `mapstructure:"check_interval"`
	Lease         time.Duration `mapstructure:"lease"`
}

// LockDSN is the PostgreSQL of the election: ha.dsn, else the journal's when it is postgres.
func (c Config) LockDSN() string {
	if c.HA.DSN != "" {
		return c.HA.DSN
	}
	if c.Journal.Backend == "postgres" {
		return c.Journal.DSN
	}
	return ""
}

// Engine configures the tick loop.
type Engine struct {
	Interval      time.Duration `mapstructure:"interval"`
	TickTimeout   time.Duration `mapstructure:"tick_timeout"`
	SensorTimeout time.Duration `mapstructure:"sensor_timeout"`
	ActionTimeout time.Duration `mapstructure:"action_timeout"`
	DryRun        bool          `mapstructure:"dry_run"`
}

// Policy configures the policy runtime.
type Policy struct {
	Dir          string        `mapstructure:"dir"`
	Query        string        `mapstructure:"query"`
	RequireTests bool          `mapstructure:"require_tests"`
	Debounce     time.Duration `mapstructure:"debounce"`
	Partition    string        `mapstructure:"partition"`
	// InsecureDir loads policies even from a directory others can write (development only).
	InsecureDir bool `mapstructure:"insecure_dir"`
}

// Governor configures the brakes between decisions and actuators.
type Governor struct {
	Cooldown        time.Duration `mapstructure:"cooldown"`
	Budget          int           `mapstructure:"budget"`
	BudgetWindow    time.Duration `mapstructure:"budget_window"`
	BackoffInitial  time.Duration `mapstructure:"backoff_initial"`
	BackoffMax      time.Duration `mapstructure:"backoff_max"`
	BackoffReset    time.Duration `mapstructure:"backoff_reset"`
	MaxUnavailable  int           `mapstructure:"max_unavailable"`
	EscalationPause time.Duration `mapstructure:"escalation_pause"`
	// VerifyTimeout: how long after an action its target must be healthy before the fix
	// counts as failed and the service moves up the escalation ladder.
	VerifyTimeout time.Duration `mapstructure:"verify_timeout"`
	// ApprovalTTL: how long an action waits for approval (and, approved, to run).
	ApprovalTTL time.Duration `mapstructure:"approval_ttl"`
	// RespectOperatorStop: leave alone a container a person stopped until it is started again.
	RespectOperatorStop bool `mapstructure:"respect_operator_stop"`
	// MaxConcurrentActions bounds the actions running at once.
	MaxConcurrentActions int `mapstructure:"max_concurrent_actions"`
}

// Docker configures the Docker sensor and actuator.
type Docker struct {
	Host        string        `mapstructure:"host"`
	Stats       string        `mapstructure:"stats"`
	CgroupRoot  string        `mapstructure:"cgroup_root"`
	ResyncEvery int           `mapstructure:"resync_every"`
	MaxReplicas int           `mapstructure:"max_replicas"`
	StopTimeout time.Duration `mapstructure:"stop_timeout"`
	APITimeout  time.Duration `mapstructure:"api_timeout"`
	Events      bool          `mapstructure:"events"`
	// Labels are extra "key=value" labels a container must carry, on top of ares.enable=true,
	// for this ARES to see or touch it (several ARES instances on one host, tests).
	Labels []string `mapstructure:"labels"`
}

// Sensors configures the sensors beside Docker's.
type Sensors struct {
	Metrics      MetricsSensor `mapstructure:"metrics"`
	Trend        Trend         `mapstructure:"trend"`
	Probe        Probe         `mapstructure:"probe"`
	Logs         Logs          `mapstructure:"logs"`
	Alertmanager Alertmanager  `mapstructure:"alertmanager"`
}

// MetricsSensor configures the metrics sensor (scrapes, or PromQL against a Prometheus).
type MetricsSensor struct {
	Enabled       bool          `mapstructure:"enabled"`
	Interval      time.Duration `mapstructure:"interval"`
	Timeout       time.Duration `mapstructure:"timeout"`
	Networks      []string      `mapstructure:"networks"`
	PrometheusURL string        `mapstructure:"prometheus_url"`
}

// Trend configures the memory trend analyzer.
type Trend struct {
	Enabled bool `mapstructure:"enabled"`
	Window  int  `mapstructure:"window"`
}

// Probe configures the HTTP health probe.
type Probe struct {
	Enabled bool              `mapstructure:"enabled"`
	Timeout time.Duration     `mapstructure:"timeout"`
	Targets map[string]string `mapstructure:"targets"`
}

// Logs configures the log sensor.
type Logs struct {
	Enabled bool          `mapstructure:"enabled"`
	Window  time.Duration `mapstructure:"window"`
}

// Alertmanager configures the Alertmanager receiver.
type Alertmanager struct {
	Enabled      bool          `mapstructure:"enabled"`
	ServiceLabel string        `mapstructure:"service_label"`
	TTL          time.Duration `mapstructure:"ttl"`
}

// Anomaly configures the live anomaly engine.
type Anomaly struct {
	Enabled    bool   `mapstructure:"enabled"`
	StateFile  string `mapstructure:"state_file"`
	Window     int    `mapstructure:"window"`
	RefitEvery int    `mapstructure:"refit_every"`
	WarmUp     int    `mapstructure:"warm_up"`
	// ConfirmTicks is how many ticks in a row must reach high risk before a service is rated
	// high (fewer are medium): one slow scrape does not page anyone.
	ConfirmTicks int `mapstructure:"confirm_ticks"`
}

// Notify configures the webhook actuator.
type Notify struct {
	WebhookURL string        `mapstructure:"webhook_url"`
	Timeout    time.Duration `mapstructure:"timeout"`
}

// Metrics configures ARES's own Prometheus endpoint.
type Metrics struct {
	Listen string `mapstructure:"listen"`
}

// Dashboard configures the control center and its JSON API.
type Dashboard struct {
	Listen  string `mapstructure:"listen"`
	Auth    string `mapstructure:"auth"`
	TLSCert string `mapstructure:"tls_cert"`
	TLSKey  string `mapstructure:"tls_key"`
	History int    `mapstructure:"history"`
}

// Journal configures where tick records go (engine/journal, docs/journal.md).
type Journal struct {
	Backend     string        `mapstructure:"backend"` // file|sqlite|postgres
	Path        string        `mapstructure:"path"`    // SQLite database or JSON-lines file; empty: no journal
	DSN         string        `mapstructure:"dsn"`     // PostgreSQL; also ARES_JOURNAL_DSN
	Buffer      int           `mapstructure:"buffer"`
	SyncIntents bool          `mapstructure:"sync_intents"`
	SyncTimeout time.Duration `mapstructure:"sync_timeout"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Default returns the configuration ARES runs with when nothing is set: safe, local-only.
func Default() Config {
	return Config{
		Engine: Engine{Interval: 5 * time.Second, TickTimeout: 10 * time.Second, SensorTimeout: 2 * time.Second,
			ActionTimeout: 30 * time.Second},
		Policy: Policy{Dir: "policies", Query: "data.ares.decisions", Debounce: 100 * time.Millisecond, Partition: "auto"},
		Governor: Governor{Cooldown: 60 * time.Second, Budget: 5, BudgetWindow: 10 * time.Minute,
			BackoffInitial: 10 * time.Second, BackoffMax: 5 * time.Minute, BackoffReset: 10 * time.Minute, MaxUnavailable: 1, EscalationPause: 30 * time.Minute,
			VerifyTimeout: 60 * time.Second, ApprovalTTL: 15 * time.Minute, RespectOperatorStop: true, MaxConcurrentActions: 4},
		Docker: Docker{Stats: "auto", CgroupRoot: "/sys/fs/cgroup", ResyncEvery: 10, MaxReplicas: 4,
			StopTimeout: 5 * time.Second, APITimeout: 10 * time.Second, Events: true, Labels: []string{}},
		Sensors: Sensors{
			Metrics:      MetricsSensor{Enabled: true, Interval: 5 * time.Second, Timeout: time.Second, Networks: []string{}},
			Trend:        Trend{Enabled: true, Window: 30},
			Probe:        Probe{Enabled: true, Timeout: time.Second, Targets: map[string]string{}},
			Logs:         Logs{Enabled: true, Window: time.Minute},
			Alertmanager: Alertmanager{Enabled: true, ServiceLabel: "service", TTL: 5 * time.Hour},
		},
		Anomaly:   Anomaly{Enabled: true, Window: 360, RefitEvery: 30, WarmUp: 60, ConfirmTicks: 2},
		Notify:    Notify{Timeout: 5 * time.Second},
		Metrics:   Metrics{Listen: "127.0.0.1:9464"},
		Dashboard: Dashboard{Listen: "127.0.0.1:8080", Auth: "write", History: 720},
		Journal:   Journal{Backend: "sqlite", Path: "ares-journal.db", Buffer: 10000, SyncIntents: true, SyncTimeout: 500 * time.Millisecond},
		Log:       Log{Level: "info", Format: "text"},
		Runtime:   "docker",
		HA:        HA{LockName: "ares", CheckInterval: 2 * time.Second, Lease: 10 * time.Second},
		Kubernetes: Kubernetes{Labels: []string{}, MaxReplicas: 4, APITimeout: 10 * time.Second, Metrics: "auto", Events: true,
			LeaderElection: KubernetesLeaderElection{LeaseName: "ares", LeaseDuration: 15 * time.Second,
				RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}},
	}
}

// FieldError is a configuration error that names the key and the offending value.
type FieldError struct {
	Source string // file name, "environment" or "flags"
	Field  string
	Value  any
	Err    error
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %s: %v", e.Source, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v (got %v)", e.Source, e.Field, e.Err, e.Value)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Options say where to load from.
type Options struct {
	// Path is the config file. Empty means ./ares.yaml when it exists, else defaults only.
	Path string
	// Flags maps config keys (e.g. "engine.dry_run") to command-line flags; a flag overrides
	// the file and the environment only when it was set.
	Flags map[string]*pflag.Flag
	// Env is the environment to read ARES_* overrides from; nil means os.Environ().
	Env []string
}

// Load reads the file, the environment and the flags, in that order of precedence from low to
// high, and validates the result.
func Load(opt Options) (Config, string, error) {
	v := viper.New()
	def := Default()
	keys := leafKeys(reflect.TypeOf(def), "")
	defaults := flatten(def)
	for _, k := range keys {
		v.SetDefault(k, defaults[k])
	}
	source := "defaults"
	path := opt.Path
	explicit := path != ""
	if !explicit {
		if _, err := os.Stat("ares.yaml"); err == nil {
			path = "ares.yaml"
		}
	}
	if path != "" {
		source = path
		raw, err := os.ReadFile(path)
		if err != nil {
			return Config{}, "", fmt.Errorf("config: %w", err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(strings.NewReader(string(raw))); err != nil {
			return Config{}, "", fmt.Errorf("%s: malformed YAML: %w", path, unwrapAll(err))
		}
		if err := checkKeys(v, keys, path); err != nil {
			return Config{}, "", err
		}
	}
	env := opt.Env
	if env == nil {
		env = os.Environ()
	}
	if err := applyEnv(v, keys, env); err != nil {
		return Config{}, "", err
	}
	for key, f := range opt.Flags {
		if f != nil && f.Changed {
			v.Set(key, f.Value.String())
		}
	}
	var cfg Config
	hook := mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))
	if err := v.Unmarshal(&cfg, viper.DecodeHook(hook)); err != nil {
		return Config{}, "", decodeError(v, source, err)
	}
	if err := cfg.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Source == "" {
			fe.Source = source
		}
		return Config{}, "", err
	}
	return cfg, source, nil
}

// applyEnv maps ARES_ENGINE_DRY_RUN=true onto engine.dry_run. An ARES_ variable that matches
// no key is an error, so a typo never silently does nothing.
func applyEnv(v *viper.Viper, keys []string, env []string) error {
	byEnv := map[string]string{}
	for _, k := range keys {
		byEnv["ARES_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = k
	}
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "ARES_") {
			continue
		}
		key, known := byEnv[name]
		if fileKey, ok := secretFiles[name]; ok {
			// ARES_JOURNAL_DSN_FILE=/run/secrets/dsn: the value is the file's content, so the
			// secret is in neither the environment nor the config file.
			raw, err := os.ReadFile(val)
			if err != nil {
				return &FieldError{Source: "environment", Field: name, Err: fmt.Errorf("read secret file: %w", err)}
			}
			if _, set := lookupEnv(env, strings.TrimSuffix(name, "_FILE")); set {
				return &FieldError{Source: "environment", Field: name, Err: fmt.Errorf("set either %s or %s, not both", strings.TrimSuffix(name, "_FILE"), name)}
			}
			v.Set(fileKey, strings.TrimSpace(string(raw)))
			continue
		}
		if !known {
			if ignoredEnv[name] {
				continue
			}
			return &FieldError{Source: "environment", Field: name, Err: errors.New("unknown ARES_ variable (no such config key)")}
		}
		v.Set(key, val)
	}
	return nil
}

// ignoredEnv are ARES_ variables that are not config keys (secrets read elsewhere).
var ignoredEnv = map[string]bool{"ARES_API_TOKEN": true, "ARES_API_TOKEN_FILE": true}

// secretFiles are the variables that name a file holding a secret config value (docs/security.md).
var secretFiles = map[string]string{"ARES_JOURNAL_DSN_FILE": "journal.dsn", "ARES_NOTIFY_WEBHOOK_URL_FILE": "notify.webhook_url",
	"ARES_HA_DSN_FILE": "ha.dsn"}

func lookupEnv(env []string, name string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// RedactURL returns u fit for logs and error messages: the password of a DSN
// (postgres://user:***@host/db) and, for any other URL, everything after the host (a webhook's
// path or query often is its token). Key=value DSNs lose their password= value.
func RedactURL(u string) string {
	if u == "" {
		return ""
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		// key=value DSN ("host=db password=secret"): redact the password's value.
		var out []string
		for _, f := range strings.Fields(u) {
			if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
				f = k + "=***"
			}
			out = append(out, f)
		}
		return strings.Join(out, " ")
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	host, tail := rest, ""
	if hostEnd >= 0 {
		host, tail = rest[:hostEnd], rest[hostEnd:]
	}
	if at := strings.LastIndex(host, "@"); at >= 0 {
		user, _, _ := strings.Cut(host[:at], ":")
		host = user + ":***@" + host[at+1:]
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if path, _, hasQuery := strings.Cut(tail, "?"); hasQuery {
			tail = path + "?***" // the query may carry password= too
		}
	default:
		if tail != "" && tail != "/" {
			tail = "/***"
		}
	}
	return scheme + "://" + host + tail
}

func checkKeys(v *viper.Viper, keys []string, path string) error {
	known := map[string]bool{}
	sections := map[string]bool{}
	for _, k := range keys {
		known[k] = true
		sections[strings.SplitN(k, ".", 2)[0]] = true
	}
	var maps []string // keys whose value is a map: any key below them is the map's
	for _, k := range keys {
		if mapKey[k] {
			maps = append(maps, k+".")
		}
	}
	var unknown []string
	for _, k := range v.AllKeys() {
		if !known[k] && !slices.ContainsFunc(maps, func(p string) bool { return strings.HasPrefix(k, p) }) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	k := unknown[0]
	hint := ""
	if s := closest(k, keys); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	return &FieldError{Source: path, Field: k, Err: fmt.Errorf("unknown key%s", hint)}
}

// Validate checks every value and names the first bad key.
func (c Config) Validate() error {
	pos := func(field string, d time.Duration) error {
		if d <= 0 {
			return &FieldError{Field: field, Value: d, Err: errors.New("must be > 0")}
		}
		return nil
	}
	checks := []error{
		pos("engine.interval", c.Engine.Interval),
		pos("engine.tick_timeout", c.Engine.TickTimeout),
		pos("engine.sensor_timeout", c.Engine.SensorTimeout),
		pos("engine.action_timeout", c.Engine.ActionTimeout),
		pos("policy.debounce", c.Policy.Debounce),
		pos("docker.stop_timeout", c.Docker.StopTimeout),
		pos("governor.cooldown", c.Governor.Cooldown),
		pos("sensors.probe.timeout", c.Sensors.Probe.Timeout),
		pos("sensors.metrics.timeout", c.Sensors.Metrics.Timeout),
		pos("sensors.metrics.interval", c.Sensors.Metrics.Interval),
		pos("sensors.logs.window", c.Sensors.Logs.Window),
		pos("sensors.alertmanager.ttl", c.Sensors.Alertmanager.TTL),
		pos("governor.budget_window", c.Governor.BudgetWindow),
		pos("governor.backoff_initial", c.Governor.BackoffInitial),
		pos("governor.backoff_max", c.Governor.BackoffMax),
		pos("governor.backoff_reset", c.Governor.BackoffReset),
		pos("governor.escalation_pause", c.Governor.EscalationPause),
		pos("governor.verify_timeout", c.Governor.VerifyTimeout),
		pos("governor.approval_ttl", c.Governor.ApprovalTTL),
		pos("docker.api_timeout", c.Docker.APITimeout),
		pos("notify.timeout", c.Notify.Timeout),
		oneOf("policy.partition", c.Policy.Partition, "auto", "service", "whole"),
		oneOf("docker.stats", c.Docker.Stats, "auto", "cgroup", "stream"),
		oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error"),
		oneOf("log.format", c.Log.Format, "text", "json"),
		oneOf("dashboard.auth", c.Dashboard.Auth, "write", "read"),
		oneOf("journal.backend", c.Journal.Backend, "file", "sqlite", "postgres"),
		pos("journal.sync_timeout", c.Journal.SyncTimeout),
	}
	if c.Journal.Backend == "postgres" && c.Journal.DSN == "" {
		checks = append(checks, &FieldError{Field: "journal.dsn", Err: errors.New("must be set when journal.backend is postgres (or ARES_JOURNAL_DSN)")})
	}
	checks = append(checks, oneOf("runtime", c.Runtime, "docker", "swarm", "kubernetes"))
	if c.Runtime == "kubernetes" {
		checks = append(checks, c.Kubernetes.validate()...)
	}
	if c.HA.Enabled {
		checks = append(checks, pos("ha.check_interval", c.HA.CheckInterval))
		if c.LockDSN() == "" {
			checks = append(checks, &FieldError{Field: "ha.dsn", Err: errors.New("must be set when ha.enabled (or use journal.backend postgres, whose dsn it then shares)")})
		}
		if c.HA.LockName == "" {
			checks = append(checks, &FieldError{Field: "ha.lock_name", Err: errors.New("must not be empty")})
		}
		if c.HA.Lease < 2*c.HA.CheckInterval {
			checks = append(checks, &FieldError{Field: "ha.lease", Value: c.HA.Lease, Err: fmt.Errorf("must be at least twice ha.check_interval (%s)", c.HA.CheckInterval)})
		}
	}
	if c.Journal.Buffer < 1 {
		checks = append(checks, &FieldError{Field: "journal.buffer", Value: c.Journal.Buffer, Err: errors.New("must be >= 1")})
	}
	if c.Policy.Dir == "" {
		checks = append(checks, &FieldError{Field: "policy.dir", Err: errors.New("must not be empty")})
	}
	if !strings.HasPrefix(c.Policy.Query, "data.") {
		checks = append(checks, &FieldError{Field: "policy.query", Value: c.Policy.Query, Err: errors.New("must be a data reference like data.ares.decisions")})
	}
	for _, f := range []struct {
		field string
		v     int
	}{{"anomaly.window", c.Anomaly.Window}, {"anomaly.refit_every", c.Anomaly.RefitEvery}, {"anomaly.warm_up", c.Anomaly.WarmUp}, {"anomaly.confirm_ticks", c.Anomaly.ConfirmTicks}} {
		if f.v < 1 {
			checks = append(checks, &FieldError{Field: f.field, Value: f.v, Err: errors.New("must be >= 1")})
		}
	}
	if c.Anomaly.WarmUp > c.Anomaly.Window {
		checks = append(checks, &FieldError{Field: "anomaly.warm_up", Value: c.Anomaly.WarmUp, Err: fmt.Errorf("must be <= anomaly.window (%d)", c.Anomaly.Window)})
	}
	for svc, u := range c.Sensors.Probe.Targets {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			checks = append(checks, &FieldError{Field: "sensors.probe.targets." + svc, Value: fmt.Sprintf("%q", u), Err: errors.New("must be an http:// or https:// URL")})
		}
	}
	if u := c.Sensors.Metrics.PrometheusURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		checks = append(checks, &FieldError{Field: "sensors.metrics.prometheus_url", Value: u, Err: errors.New("must be an http:// or https:// URL")})
	}
	if c.Sensors.Trend.Window < 5 {
		checks = append(checks, &FieldError{Field: "sensors.trend.window", Value: c.Sensors.Trend.Window, Err: errors.New("must be >= 5 samples")})
	}
	if c.Sensors.Alertmanager.ServiceLabel == "" {
		checks = append(checks, &FieldError{Field: "sensors.alertmanager.service_label", Err: errors.New("must not be empty")})
	}
	if c.Governor.Budget < 1 {
		checks = append(checks, &FieldError{Field: "governor.budget", Value: c.Governor.Budget, Err: errors.New("must be >= 1")})
	}
	if c.Governor.MaxConcurrentActions < 1 {
		checks = append(checks, &FieldError{Field: "governor.max_concurrent_actions", Value: c.Governor.MaxConcurrentActions, Err: errors.New("must be >= 1")})
	}
	if c.Governor.MaxUnavailable < 1 {
		checks = append(checks, &FieldError{Field: "governor.max_unavailable", Value: c.Governor.MaxUnavailable, Err: errors.New("must be >= 1")})
	}
	if c.Governor.BackoffMax < c.Governor.BackoffInitial {
		checks = append(checks, &FieldError{Field: "governor.backoff_max", Value: c.Governor.BackoffMax, Err: fmt.Errorf("must be >= governor.backoff_initial (%s)", c.Governor.BackoffInitial)})
	}
	if c.Docker.MaxReplicas < 1 {
		checks = append(checks, &FieldError{Field: "docker.max_replicas", Value: c.Docker.MaxReplicas, Err: errors.New("must be >= 1")})
	}
	if c.Docker.ResyncEvery < 1 {
		checks = append(checks, &FieldError{Field: "docker.resync_every", Value: c.Docker.ResyncEvery, Err: errors.New("must be >= 1")})
	}
	if c.Engine.SensorTimeout >= c.Engine.TickTimeout && c.Engine.TickTimeout > 0 {
		checks = append(checks, &FieldError{Field: "engine.sensor_timeout", Value: c.Engine.SensorTimeout, Err: fmt.Errorf("must be shorter than engine.tick_timeout (%s)", c.Engine.TickTimeout)})
	}
	for i, l := range c.Docker.Labels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" {
			checks = append(checks, &FieldError{Field: fmt.Sprintf("docker.labels[%d]", i), Value: fmt.Sprintf("%q", l), Err: errors.New("must be key=value")})
		}
	}
	if c.Dashboard.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Dashboard.Listen); err != nil {
			checks = append(checks, &FieldError{Field: "dashboard.listen", Value: c.Dashboard.Listen, Err: errors.New("must be host:port, or empty to disable")})
		}
	}
	if (c.Dashboard.TLSCert == "") != (c.Dashboard.TLSKey == "") {
		checks = append(checks, &FieldError{Field: "dashboard.tls_cert", Err: errors.New("tls_cert and tls_key go together")})
	}
	if c.Dashboard.History < 1 {
		checks = append(checks, &FieldError{Field: "dashboard.history", Value: c.Dashboard.History, Err: errors.New("must be >= 1")})
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			checks = append(checks, &FieldError{Field: "metrics.listen", Value: c.Metrics.Listen, Err: errors.New("must be host:port, or empty to disable")})
		}
	}
	if u := c.Notify.WebhookURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		checks = append(checks, &FieldError{Field: "notify.webhook_url", Value: RedactURL(u), Err: errors.New("must be an http:// or https:// URL")})
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func oneOf(field, got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return &FieldError{Field: field, Value: fmt.Sprintf("%q", got), Err: fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))}
}

// leafKeys lists the dotted mapstructure keys of every leaf field of t.
func leafKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := prefix + f.Tag.Get("mapstructure")
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			out = append(out, leafKeys(f.Type, key+".")...)
			continue
		}
		out = append(out, key)
	}
	return out
}

// mapKey marks the keys whose value is a map of names chosen by the user.
var mapKey = map[string]bool{"sensors.probe.targets": true}

// Keys lists every configuration key, e.g. for documentation tests.
func Keys() []string { return leafKeys(reflect.TypeOf(Config{}), "") }

func flatten(c Config) map[string]any {
	out := map[string]any{}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			key := prefix + f.Tag.Get("mapstructure")
			if f.Type.Kind() == reflect.Struct {
				walk(v.Field(i), key+".")
				continue
			}
			out[key] = v.Field(i).Interface()
		}
	}
	walk(reflect.ValueOf(c), "")
	return out
}

// closest returns the known key nearest to k by edit distance, if it is near enough to be a typo.
func closest(k string, keys []string) string {
	best, bestD := "", 4
	for _, c := range keys {
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeError turns mapstructure's "'engine.interval' time: invalid duration" into a FieldError
// that also shows the value that was given.
func decodeError(v *viper.Viper, source string, err error) error {
	msg := unwrapAll(err).Error()
	if i := strings.Index(msg, "'"); i >= 0 {
		if j := strings.Index(msg[i+1:], "'"); j > 0 {
			key := msg[i+1 : i+1+j]
			why := strings.TrimSpace(msg[i+j+2:])
			if k := strings.LastIndex(why, ": "); k >= 0 && strings.HasPrefix(why, "cannot parse") {
				why = why[:k]
			}
			return &FieldError{Source: source, Field: key, Value: fmt.Sprintf("%q", v.GetString(key)), Err: errors.New(why)}
		}
	}
	return fmt.Errorf("%s: %w", source, unwrapAll(err))
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// validate checks the kubernetes section (runtime: kubernetes only).
func (k Kubernetes) validate() []error {
	checks := []error{
		oneOf("kubernetes.metrics", k.Metrics, "auto", "on", "off"),
	}
	if k.APITimeout <= 0 {
		checks = append(checks, &FieldError{Field: "kubernetes.api_timeout", Value: k.APITimeout, Err: errors.New("must be > 0")})
	}
	if k.MaxReplicas < 1 {
		checks = append(checks, &FieldError{Field: "kubernetes.max_replicas", Value: k.MaxReplicas, Err: errors.New("must be >= 1")})
	}
	for i, l := range k.Labels {
		if key, _, ok := strings.Cut(l, "="); !ok || key == "" {
			checks = append(checks, &FieldError{Field: fmt.Sprintf("kubernetes.labels[%d]", i), Value: fmt.Sprintf("%q", l), Err: errors.New("must be key=value")})
		}
	}
	if le := k.LeaderElection; le.Enabled {
		if le.LeaseName == "" {
			checks = append(checks, &FieldError{Field: "kubernetes.leader_election.lease_name", Err: errors.New("must not be empty")})
		}
		if le.RetryPeriod <= 0 {
			checks = append(checks, &FieldError{Field: "kubernetes.leader_election.retry_period", Value: le.RetryPeriod, Err: errors.New("must be > 0")})
		}
		if le.RenewDeadline <= le.RetryPeriod*12/10 {
			checks = append(checks, &FieldError{Field: "kubernetes.leader_election.renew_deadline", Value: le.RenewDeadline,
				Err: fmt.Errorf("must be longer than 1.2 × retry_period (%s)", le.RetryPeriod)})
		}
		if le.LeaseDuration <= le.RenewDeadline {
			checks = append(checks, &FieldError{Field: "kubernetes.leader_election.lease_duration", Value: le.LeaseDuration,
				Err: fmt.Errorf("must be longer than renew_deadline (%s)", le.RenewDeadline)})
		}
	}
	return checks
}
