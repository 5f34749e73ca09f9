// Package engine owns the core types of ARES (facts, decisions, actions, outcomes, tick records)
// and the tick loop that turns sensor readings into healing actions. It imports no Docker, OPA,
// database or HTTP client code: integrations live in sensors/, actuators/ and engine's sub-packages.
package engine

import "time"

// FactsVersion is the version of the facts document shape. The shape is extended, never renamed.
const FactsVersion = 1

// Facts is the document every tick gathers and every policy evaluates (docs/facts.md).
// Sections a sensor did not provide are nil and absent from the JSON, never null-filled.
type Facts struct {
	Version  int                     `json:"version"`
	Tick     uint64                  `json:"tick"`
	Time     time.Time               `json:"time"`
	Services map[string]*Service     `json:"services"`
	Alerts   []Alert                 `json:"alerts"`
	Sensors  map[string]SensorStatus `json:"sensors"`
	// Nodes are the swarm's nodes by node id (runtime: swarm); absent on one Docker host.
	Nodes map[string]Node `json:"nodes,omitempty"`
}

// Node is one swarm node as the swarm sensor saw it, with what the tasks of the watched
// services do on it, so that a policy can decide on the node (drain).
type Node struct {
	Hostname     string `json:"hostname"`
	Status       string `json:"status"`       // ready|down|disconnected|unknown
	Availability string `json:"availability"` // active|pause|drain
	Manager      bool   `json:"manager"`
	Leader       bool   `json:"leader"`
	// TasksRunning counts the watched services' tasks running on the node now;
	// TasksFailed10m those that failed or were rejected on it in the last 10 minutes.
	TasksRunning   int `json:"tasks_running"`
	TasksFailed10m int `json:"tasks_failed_10m"`
}

// NewFacts returns an empty document for one tick.
func NewFacts(tick uint64, now time.Time) *Facts {
	return &Facts{
		Version:  FactsVersion,
		Tick:     tick,
		Time:     now.UTC(),
		Services: map[string]*Service{},
		Alerts:   []Alert{},
		Sensors:  map[string]SensorStatus{},
	}
}

// Service returns the named service, creating it when absent. Sensors call it to fill their
// own sections.
func (f *Facts) Service(name string) *Service {
	s, ok := f.Services[name]
	if !ok {
		s = &Service{Replicas: []Replica{}}
		f.Services[name] = s
	}
	return s
}

// Replica returns the named replica of the named service, or nil.
func (f *Facts) Replica(service, name string) *Replica {
	s := f.Services[service]
	if s == nil {
		return nil
	}
	for i := range s.Replicas {
		if s.Replicas[i].Name == name {
			return &s.Replicas[i]
		}
	}
	return nil
}

// Service is one logical service: its replicas and the sections each sensor fills.
type Service struct {
	Replicas        []Replica `json:"replicas"`
	DesiredReplicas int       `json:"desired_replicas"`
	// Runtime is "swarm" for a Docker Swarm service (runtime: swarm), "kubernetes" for the
	// pods of a Kubernetes workload (runtime: kubernetes); absent for the containers of one
	// Docker host.
	Runtime string `json:"runtime,omitempty"`
	// Summary holds numbers derived in Go from the replicas, so that policies only compare.
	Summary *Summary `json:"summary,omitempty"`
	Metrics *Metrics `json:"metrics,omitempty"`
	Probe   *Probe   `json:"probe,omitempty"`
	Anomaly *Anomaly `json:"anomaly,omitempty"`
	History *History `json:"history,omitempty"`
	Logs    *Logs    `json:"logs,omitempty"`
}

// Replica is one container of a service.
type Replica struct {
	ID            string  `json:"id"`
	Name          string  `json:"name"`
	State         string  `json:"state"`  // running|exited|restarting|paused|dead|created
	Health        string  `json:"health"` // healthy|unhealthy|starting|none
	ExitCode      int     `json:"exit_code"`
	OOMKilled     bool    `json:"oom_killed"`
	RestartCount  int     `json:"restart_count"`
	CPUPercent    float64 `json:"cpu_percent"`
	MemBytes      int64   `json:"mem_bytes"`
	MemLimitBytes int64   `json:"mem_limit_bytes"`
	MemPercent    float64 `json:"mem_percent"`
	Trend         *Trend  `json:"trend,omitempty"`
	// Metrics are the replica's own request metrics (metrics sensor); absent when it exports
	// none or was first seen this tick.
	Metrics *Metrics `json:"metrics,omitempty"`
	// Scaled marks a replica that ARES added with scale_out (label ares.scaled=true); scale_in
	// removes these first.
	Scaled bool `json:"scaled,omitempty"`
	// Paused marks a replica a person labelled ares.paused=true: ARES leaves it alone (the
	// governor holds back every action on it) until the label is gone.
	Paused bool `json:"paused,omitempty"`
	// StoppedByOperator marks a replica a person stopped or killed through the Docker API
	// (not ARES, not a crash): ARES leaves it alone until it is started again.
	StoppedByOperator bool `json:"stopped_by_operator,omitempty"`
	// Swarm only (absent on one Docker host): the node the replica's task runs on, that
	// node's status (ready|down|disconnected|unknown) and availability (active|pause|drain),
	// and the task's error message, e.g. "task: non-zero exit (137)".
	Node             string `json:"node,omitempty"`
	NodeStatus       string `json:"node_status,omitempty"`
	NodeAvailability string `json:"node_availability,omitempty"`
	Error            string `json:"error,omitempty"`
}

// Trend is a replica's predictive memory trend.
type Trend struct {
	MemSlopeBytesPerS float64  `json:"mem_slope_bytes_per_s"`
	SecondsToMemLimit *float64 `json:"seconds_to_mem_limit"` // null when not growing or no limit
}

// Summary is derived from a service's replicas by the engine after gathering.
type Summary struct {
	Replicas        int     `json:"replicas"`
	Running         int     `json:"running"`
	MeanCPUPercent  float64 `json:"mean_cpu_percent"` // over running replicas, 0 when none
	MaxMemPercent   float64 `json:"max_mem_percent"`
	ScaledReplicas  int     `json:"scaled_replicas"` // replicas ARES added with scale_out
	UnhealthyOrDown int     `json:"unhealthy_or_down"`
}

// Metrics are a service's (or one replica's) request metrics.
type Metrics struct {
	RPS          float64 `json:"rps"`
	ErrorRate    float64 `json:"error_rate"` // 0..1
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
}

// Probe is the result of a service's HTTP health probe.
type Probe struct {
	OK                  bool    `json:"ok"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	LatencyMs           float64 `json:"latency_ms"`
}

// Logs is what a service's replicas logged recently (log sensor).
type Logs struct {
	ErrorsPerMin float64 `json:"errors_per_min"` // error lines per minute over the sensor's window
	LastError    string  `json:"last_error"`     // message of the last error line, "" when none yet
	// LastErrorAt is when the sensor read the last error line; absent when none yet.
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// Anomaly is the anomaly engine's verdict on a service.
type Anomaly struct {
	Score     float64 `json:"score"` // 0..1
	IsAnomaly bool    `json:"is_anomaly"`
	Risk      string  `json:"risk"` // low|medium|high
	// Features maps each feature the analyzer saw this tick to its robust z-score against the
	// service's window (median and MAD); absent while warming up.
	Features map[string]float64 `json:"features,omitempty"`
	// Drivers names the features that drove the verdict, strongest first; absent when none.
	Drivers       []string `json:"drivers,omitempty"`
	ModelAgeTicks int      `json:"model_age_ticks,omitempty"` // ticks since the model in use was fitted; absent when 0
	WarmingUp     bool     `json:"warming_up,omitempty"`      // no verdict yet (score 0, risk low); absent when false
}

// History is what ARES itself did to a service recently.
type History struct {
	Actions10m             int     `json:"actions_10m"`
	SecondsSinceLastAction float64 `json:"seconds_since_last_action"`
	// LastActionAt is when the governor last admitted an action on the service, if ever
	// within HistoryCap. Policies compare it with an alert's starts_at.
	LastActionAt *time.Time `json:"last_action_at,omitempty"`
	// BackoffUntil is set while a replica of the service is in crash-loop back-off: the
	// governor admits no restart or recycle of it before then.
	BackoffUntil *time.Time `json:"backoff_until,omitempty"`
	// Paused is true while automation is paused for the service (or globally).
	Paused bool `json:"paused,omitempty"`
	// LadderStep is the service's position on the escalation ladder: how many fixes in a row
	// did not cure it (0: none failed, the policy's decision stands); the governor turns the
	// next fix into ladder[ladder_step]. Absent when 0.
	LadderStep int `json:"ladder_step,omitempty"`
	// LastActionVerified is whether the last action on the service cured it: true once its
	// target was healthy again, false when the verification timeout passed first; absent
	// while verifying or before any action.
	LastActionVerified *bool `json:"last_action_verified,omitempty"`
	// Verifying is true while the governor watches the target of the last action.
	Verifying bool `json:"verifying,omitempty"`
	// PendingApprovals counts the service's actions waiting for a person's approval.
	PendingApprovals int `json:"pending_approvals,omitempty"`
}

// Alert is a firing alert (Alertmanager receiver).
type Alert struct {
	Name        string            `json:"name"`
	Service     string            `json:"service"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"starts_at"`
}

// SensorStatus reports whether a sensor's sections are fresh. Policies must not act on a
// section whose sensor reports ok=false.
type SensorStatus struct {
	OK    bool    `json:"ok"`
	AgeS  float64 `json:"age_s"`
	Error string  `json:"error"`
}

// Summarize fills every service's Summary from its replicas. The engine calls it after
// gathering so that policies compare pre-computed numbers instead of doing arithmetic.
func (f *Facts) Summarize() {
	for _, s := range f.Services {
		sum := &Summary{Replicas: len(s.Replicas)}
		var cpu float64
		for i := range s.Replicas {
			r := &s.Replicas[i]
			if r.State == "running" {
				sum.Running++
				cpu += r.CPUPercent
			}
			if r.State != "running" || r.Health == "unhealthy" {
				sum.UnhealthyOrDown++
			}
			if r.Scaled {
				sum.ScaledReplicas++
			}
			if r.MemPercent > sum.MaxMemPercent {
				sum.MaxMemPercent = r.MemPercent
			}
		}
		if sum.Running > 0 {
			sum.MeanCPUPercent = cpu / float64(sum.Running)
		}
		s.Summary = sum
	}
}
