package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	dockeract "github.com/ares-sre/ares/actuators/docker"
	"github.com/ares-sre/ares/actuators/notify"
	"github.com/ares-sre/ares/dashboard"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/config"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/journal"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/sensors/alertmanager"
	"github.com/ares-sre/ares/sensors/anomaly"
	dockersensor "github.com/ares-sre/ares/sensors/docker"
	"github.com/ares-sre/ares/sensors/logs"
	"github.com/ares-sre/ares/sensors/metrics"
	"github.com/ares-sre/ares/sensors/probe"
	"github.com/ares-sre/ares/sensors/trend"
)

type runOpts struct {
	cf     configFlags
	once   bool
	output string
}

func newRunCmd() *cobra.Command {
	o := runOpts{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the healing loop: gather facts, evaluate policies, act",
		Long: `run starts the tick loop. Every engine.interval (and at once on a Docker die, oom or
health_status event) ARES gathers the facts of every container labelled ares.enable=true,
evaluates the policies in policy.dir and carries out the admitted decisions through the
Docker Engine API. Decisions and actions are printed to standard output as they happen
(one line each, or one JSON object per tick with -o json); logs go to standard error.

Policy files are watched: save a .rego or data.json and the next tick uses it. A policy set
that does not compile is refused and the last good one keeps running. So is a policy directory
that users other than its owner can write (fix: chmod go-w; --insecure-policy-dir for
development). Secrets: ARES_API_TOKEN or ARES_API_TOKEN_FILE, ARES_JOURNAL_DSN_FILE,
ARES_NOTIFY_WEBHOOK_URL_FILE (docs/security.md).

Under runtime: kubernetes ARES heals the pods labelled ares.enable=true of a Kubernetes cluster
instead (evictions, rollout restarts, the scale subresource; docs/kubernetes.md).

With --dry-run nothing is ever changed: every tick prints what ARES would do.
Prometheus metrics are served on metrics.listen (default 127.0.0.1:9464/metrics).`,
		Example: `  # see what ARES would do, without doing it
  ares run --dry-run

  # one tick, as JSON, then exit (e.g. from a cron job or a test)
  ares run --dry-run --once -o json

  # heal for real, with your own config and policies
  ares run --config /etc/ares/ares.yaml --policies /etc/ares/policies`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.cf.register(cmd)
	cmd.Flags().Bool("dry-run", false, "evaluate and print decisions, never act (engine.dry_run)")
	cmd.Flags().String("policies", "", "policy directory (policy.dir)")
	cmd.Flags().Duration("interval", 0, "time between ticks (engine.interval)")
	cmd.Flags().BoolVar(&o.once, "once", false, "run one tick and exit")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "decision output: text or json")
	o.cf.bind(cmd, "dry-run", "engine.dry_run")
	o.cf.bind(cmd, "policies", "policy.dir")
	cmd.Flags().Bool("insecure-policy-dir", false, "load policies even from a directory others can write (policy.insecure_dir; development only)")
	o.cf.bind(cmd, "insecure-policy-dir", "policy.insecure_dir")
	o.cf.bind(cmd, "interval", "engine.interval")
	return cmd
}

func runRun(ctx context.Context, o runOpts, w, errw io.Writer) error {
	printer, err := journal.NewPrinter(w, o.output)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	cfg, source, err := o.cf.load()
	if err != nil {
		return err
	}
	log, level := newLevelLogger(cfg.Log, errw)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pol, err := policy.NewWatcher(cfg.Policy.Dir, policy.Options{
		Query: cfg.Policy.Query, RequireTests: cfg.Policy.RequireTests, Debounce: cfg.Policy.Debounce,
		Partition: cfg.Policy.Partition, InsecureDir: cfg.Policy.InsecureDir, Log: log.With("component", "policy"),
	}, reg)
	if err != nil {
		return err
	}
	var cli *client.Client // none under runtime kubernetes
	if cfg.Runtime != runtimeKubernetes {
		if cli, err = dockerClient(ctx, cfg.Docker); err != nil {
			return err
		}
		defer cli.Close()
	}

	var own *engine.OwnActions // operators win: tells ARES's own stops from a person's
	if cfg.Governor.RespectOperatorStop {
		own = engine.NewOwnActions(0)
	}
	var sensor engine.Sensor = dockersensor.New(cli, dockersensor.Options{
		CgroupRoot: cfg.Docker.CgroupRoot, Stats: cfg.Docker.Stats, ResyncEvery: cfg.Docker.ResyncEvery, Timeout: cfg.Docker.APITimeout, Labels: cfg.Docker.Labels,
		Own: own,
	}, log)
	if !cfg.Docker.Events {
		sensor = noWatch{sensor}
	}
	if cfg.Runtime == runtimeSwarm { // the same facts section, from the swarm's services and tasks
		if sensor, err = swarmSensor(ctx, cli, cfg, log); err != nil {
			return err
		}
	}
	var kube *kubeRuntime
	if cfg.Runtime == runtimeKubernetes { // the same facts section, from the cluster's pods
		if kube, err = newKubeRuntime(ctx, cfg, log); err != nil {
			return err
		}
		sensor = kube.engineSensor()
		log.Info("runtime kubernetes: the Docker-based sensors (metrics scrapes, probe, logs) are off; CPU and memory come from metrics.k8s.io")
	}
	sensors := []engine.Sensor{sensor}
	var analyzers []engine.Analyzer
	if c := cfg.Sensors.Metrics; c.Enabled && cli != nil {
		m, err := metrics.New(cli, metrics.Options{Labels: cfg.Docker.Labels, Networks: c.Networks, Timeout: c.Timeout, Interval: c.Interval,
			PrometheusURL: c.PrometheusURL}, log.With("sensor", "metrics"))
		if err != nil {
			return fmt.Errorf("sensors.metrics: %w", err)
		}
		sensors = append(sensors, m)
		analyzers = append(analyzers, m.Replicas()) // per-replica numbers onto the docker sensor's replicas
	}
	if c := cfg.Sensors.Trend; c.Enabled {
		analyzers = append(analyzers, trend.New(trend.Options{Window: c.Window}))
	}
	if c := cfg.Sensors.Probe; c.Enabled && cli != nil {
		p := probe.New(cli, probe.Options{Targets: c.Targets, Timeout: c.Timeout, Labels: cfg.Docker.Labels,
			DockerTimeout: cfg.Docker.APITimeout}, log.With("sensor", "probe"))
		defer p.Close()
		sensors = append(sensors, p)
	}
	if c := cfg.Sensors.Logs; c.Enabled && cli != nil {
		sensors = append(sensors, logs.New(cli, logs.Options{Window: c.Window, Labels: cfg.Docker.Labels,
			Timeout: cfg.Docker.APITimeout}, log.With("sensor", "logs")))
	}
	var receiver *alertmanager.Receiver
	if c := cfg.Sensors.Alertmanager; c.Enabled {
		receiver = alertmanager.New(alertmanager.Options{ServiceLabel: c.ServiceLabel, TTL: c.TTL}, log.With("sensor", "alertmanager"))
		sensors = append(sensors, receiver)
	}
	docker := dockeract.New(cli, dockeract.Options{
		MaxReplicas: cfg.Docker.MaxReplicas, StopTimeout: cfg.Docker.StopTimeout, Timeout: cfg.Engine.ActionTimeout, Labels: cfg.Docker.Labels,
		Own: own,
	}, log.With("actuator", "docker"))
	var fleet engine.Actuator = docker
	if cfg.Runtime == runtimeSwarm {
		fleet = swarmActuator(cli, cfg, log)
	}
	if kube != nil {
		fleet = kube.act
	}
	notifier := notify.New(cfg.Notify.WebhookURL, cfg.Notify.Timeout, log.With("actuator", "notify"))

	if cfg.Anomaly.Enabled {
		an := anomaly.NewAnalyzer(anomaly.Options{Window: cfg.Anomaly.Window, RefitEvery: cfg.Anomaly.RefitEvery,
			WarmUp: cfg.Anomaly.WarmUp, Confirm: cfg.Anomaly.ConfirmTicks}, log.With("analyzer", "anomaly"))
		if p := cfg.Anomaly.StateFile; p != "" {
			if ok, err := an.Load(p); err != nil {
				log.Warn("anomaly models not restored; warming up afresh", "file", p, "err", err)
			} else if ok {
				log.Info("anomaly models restored", "file", p)
			}
			defer func() {
				an.Wait()
				if err := an.Save(p); err != nil {
					log.Error("anomaly models not saved", "file", p, "err", err)
				}
			}()
		}
		analyzers = append(analyzers, an)
	}

	gov := governor.New(governor.Options{
		Cooldown: cfg.Governor.Cooldown, Budget: cfg.Governor.Budget, BudgetWindow: cfg.Governor.BudgetWindow,
		BackoffInitial: cfg.Governor.BackoffInitial, BackoffMax: cfg.Governor.BackoffMax, BackoffReset: cfg.Governor.BackoffReset,
		MaxUnavailable: cfg.Governor.MaxUnavailable, EscalationPause: cfg.Governor.EscalationPause,
		VerifyTimeout: cfg.Governor.VerifyTimeout, ApprovalTTL: cfg.Governor.ApprovalTTL,
		IgnoreOperatorStop: !cfg.Governor.RespectOperatorStop,
	})
	journals := journal.Multi{printer}
	var store journal.Store // nil without a journal
	ha, err := newHA(cfg, gov, &store, func(ctx context.Context, in journal.Intent) engine.Outcome {
		return reconcileFleet(ctx, cli, kube, cfg.Docker.Labels, in)
	}, reg, log.With("component", "ha"))
	if err != nil {
		return err
	}
	if kh := kube.ha(gov, log.With("component", "ha")); kh != nil {
		ha = kh
	}
	if cfg.Journal.Path != "" || cfg.Journal.Backend == journal.BackendPostgres {
		store, err = openRunJournal(ctx, cfg, cli, kube, pol, gov, reg, log.With("component", "journal"))
		if err != nil {
			return err
		}
		defer func() {
			if err := store.Close(); err != nil {
				log.Error("journal records lost at exit", "err", err)
			}
		}()
		journals = append(journals, ha.journal(store))
	}
	var eng *engine.Engine
	var dash *dashboard.Server
	if cfg.Dashboard.Listen != "" && !o.once {
		token, err := apiToken()
		if err != nil {
			return err
		}
		dash, err = dashboard.New(dashboard.Options{Listen: cfg.Dashboard.Listen, Token: token,
			AuthRead: cfg.Dashboard.Auth == "read", TLSCert: cfg.Dashboard.TLSCert, TLSKey: cfg.Dashboard.TLSKey,
			History: cfg.Dashboard.History, PolicyDir: cfg.Policy.Dir},
			dashboard.Deps{Controller: gov, Approver: gov, Policies: pol, Registerer: reg, Incidents: dashIncidents(store, cfg.Journal.Backend), Audit: dashAudit(store, cfg.Journal.Backend), Leader: ha.leaderSource(),
				Submitter: dashboard.SubmitterFunc(func(d engine.Decision) error { return eng.Submit(d) })},
			log.With("component", "dashboard"))
		if err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		pol.OnReload(dash.PolicyReloaded)
		journals = append(journals, dash)
	}
	live := newRunLiveness(cfg.Engine.Interval, cfg.Engine.TickTimeout) // feeds systemd's watchdog
	journals = append(journals, live)
	eng, err = engine.New(engine.Options{
		Interval: cfg.Engine.Interval, TickTimeout: cfg.Engine.TickTimeout, SensorTimeout: cfg.Engine.SensorTimeout,
		ActionTimeout: cfg.Engine.ActionTimeout, DryRun: cfg.Engine.DryRun, MaxConcurrentActions: cfg.Governor.MaxConcurrentActions,
		Sensors: sensors, Analyzers: analyzers, Policy: pol, Governor: ha.governor(gov),
		Actuators: ha.actuators(map[string]engine.Actuator{
			engine.ActRestart: fleet, engine.ActRecycle: fleet, engine.ActScaleOut: fleet, engine.ActScaleIn: fleet,
			engine.ActDrain:  fleet, // admitted only with nodes in the facts: runtime swarm
			engine.ActNotify: notifier,
		}),
		Journal: journals, Metrics: engine.NewInstruments(reg), Log: log,
	})
	if err != nil {
		return err
	}
	log.Info("ares starting", "config", source, "policy_rev", pol.Current().Revision(), "policy_dir", cfg.Policy.Dir,
		"dry_run", cfg.Engine.DryRun, "interval", cfg.Engine.Interval, "fleet", fleetHost(cli, kube))

	if o.once {
		return eng.Tick(ctx, time.Now(), "once")
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	ha.run(ctx, &wg)
	if cfg.Metrics.Listen != "" {
		srv, err := serveMetrics(cfg.Metrics.Listen, reg, receiver, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	if dash != nil {
		// Bind now, so that a taken port is an error at start, not a silent gap later; once
		// serving, a failing dashboard is logged and the healing goes on.
		ln, err := net.Listen("tcp", cfg.Dashboard.Listen)
		if err != nil {
			return fmt.Errorf("dashboard.listen %s: %w (set dashboard.listen, or empty to disable)", cfg.Dashboard.Listen, err)
		}
		wg.Go(func() {
			if err := dash.Serve(ctx, ln); err != nil && ctx.Err() == nil {
				log.Error("dashboard stopped; healing goes on", "err", err)
			}
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := pol.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("policy watcher stopped; policies will not hot-reload", "err", err)
		}
	}()
	sd, err := newSDNotifier(os.Getenv)
	if err != nil {
		log.Warn("not notifying systemd", "err", err)
	}
	supervise(ctx, &wg, &hangupReloader{pol: pol, cf: o.cf, cfg: cfg, level: level, sd: sd, log: log}, live)
	err = eng.Run(ctx)
	cancel()
	log.Info("ares stopped")
	return err
}

// serveMetrics serves /metrics and, when the receiver is on, Alertmanager's webhook.
func serveMetrics(addr string, reg *prometheus.Registry, receiver *alertmanager.Receiver, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if receiver != nil {
		mux.Handle(alertmanager.PathV1, receiver.Handler())
		mux.Handle(alertmanager.PathV2, receiver.Handler())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics served", "addr", "http://"+ln.Addr().String()+"/metrics")
	return srv, nil
}

// openRunJournal opens the journal store, reconciles the actions a crash interrupted (the
// target's state now decides their outcome), restores the governor's brakes from the recent
// actions, and records policy revisions as they are activated.
func openRunJournal(ctx context.Context, cfg config.Config, cli *client.Client, kube *kubeRuntime, pol *policy.Watcher, gov *governor.Governor,
	reg prometheus.Registerer, log *slog.Logger) (journal.Store, error) {
	store, err := journal.Open(ctx, journalConfig(cfg), reg, log)
	if err != nil {
		return nil, err
	}
	if cfg.HA.Enabled { // the instance that takes the lead reconciles and restores (ha.go)
		return store, watchRevisions(ctx, store, pol)
	}
	n, err := store.Reconcile(ctx, func(in journal.Intent) engine.Outcome {
		return reconcileFleet(ctx, cli, kube, cfg.Docker.Labels, in)
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("journal: reconcile interrupted actions: %w", err)
	}
	if n > 0 {
		log.Warn("reconciled actions a crash interrupted", "n", n)
	}
	since := time.Now().Add(-max(cfg.Governor.BudgetWindow, governor.Window, cfg.Governor.BackoffReset+cfg.Governor.BackoffMax))
	recent, err := store.RecentActions(ctx, since)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("journal: restore the governor: %w", err)
	}
	for _, d := range recent {
		gov.Done(d.Action, d.At)
	}
	if len(recent) > 0 {
		log.Info("governor restored from the journal", "actions", len(recent))
	}
	return store, watchRevisions(ctx, store, pol)
}

// watchRevisions records the live policy revision and every reload in the journal.
func watchRevisions(ctx context.Context, store journal.Store, pol *policy.Watcher) error {
	if set := pol.Set(); set != nil {
		_ = store.Revision(ctx, set.Revision(), set.Files(), nil)
	}
	pol.OnReload(func(rev string, err error) {
		var files []string
		if set := pol.Set(); set != nil {
			files = set.Files()
		}
		_ = store.Revision(context.Background(), rev, files, err)
	})
	return nil
}

// reconcileOutcome decides an interrupted action's outcome from its target's state now: ok when
// the replica (or every replica of the service) runs and is not unhealthy.
func reconcileOutcome(ctx context.Context, cli *client.Client, labels []string, in journal.Intent) engine.Outcome {
	if cli == nil { // runtime kubernetes: the pod may be gone and replaced; the next tick tells
		return engine.Outcome{Result: engine.ResultError, Error: "interrupted by a restart of ARES; state unknown (runtime kubernetes)"}
	}
	if engine.NodeLevel(in.Action.Action) { // a drain: its node is not in the intent; docker node ls tells
		return engine.Outcome{Result: engine.ResultError, Error: "interrupted by a restart of ARES; state unknown: see the node's availability (docker node ls)"}
	}
	f := client.Filters{}.Add("label", "ares.enable=true")
	for _, l := range labels {
		f = f.Add("label", l)
	}
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return engine.Outcome{Result: engine.ResultError, Error: "interrupted by a restart of ARES; state unknown: " + err.Error()}
	}
	seen := 0
	for _, c := range res.Items {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		svc := c.Labels["ares.service"]
		if svc == "" {
			svc = c.Labels["com.docker.compose.service"]
		}
		if svc == "" {
			svc = name
		}
		if svc != in.Action.Service || (in.Action.Replica != "" && name != in.Action.Replica) {
			continue
		}
		seen++
		if c.State != "running" || strings.Contains(c.Status, "(unhealthy)") {
			return engine.Outcome{Result: engine.ResultError, Error: fmt.Sprintf("interrupted by a restart of ARES; %s is %s now", name, c.Status)}
		}
	}
	if seen == 0 {
		return engine.Outcome{Result: engine.ResultError, Error: "interrupted by a restart of ARES; target not found now"}
	}
	return engine.Outcome{Result: engine.ResultOK, Detail: "interrupted by a restart of ARES; target running now"}
}

// noWatch hides a sensor's Watch method (docker.events: false).
type noWatch struct{ engine.Sensor }
