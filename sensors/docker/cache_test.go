package docker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// inspected is a fake inspect result for an exited container (no cgroup probing).
func inspected(id, name string, labels map[string]string) *container.InspectResponse {
	return &container.InspectResponse{
		ID: id, Name: "/" + name,
		State:      &container.State{Status: container.StateExited, ExitCode: 137, Health: &container.Health{Status: container.Unhealthy}},
		Config:     &container.Config{Labels: labels},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20}},
	}
}

func TestDesiredReplicas(t *testing.T) {
	type rep struct {
		name   string
		labels map[string]string
	}
	for _, tc := range []struct {
		name string
		reps []rep
		want int
	}{
		{"counts replicas", []rep{{"a", nil}, {"b", nil}}, 2},
		{"scaled replicas do not count", []rep{{"a", nil}, {"b", map[string]string{LabelScaled: "true"}}}, 1},
		{"at least one", []rep{{"a", map[string]string{LabelScaled: "true"}}}, 1},
		{"label on any replica", []rep{{"a", nil}, {"b", map[string]string{LabelDesired: "3"}}}, 3},
		{"label wins over count", []rep{{"a", map[string]string{LabelDesired: "1"}}, {"b", nil}, {"c", nil}}, 1},
		{"bad label ignored", []rep{{"a", map[string]string{LabelDesired: "three"}}, {"b", nil}}, 2},
		{"zero ignored", []rep{{"a", map[string]string{LabelDesired: "0"}}}, 1},
		{"negative ignored", []rep{{"a", map[string]string{LabelDesired: "-2"}}, {"b", nil}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil, Options{CgroupRoot: t.TempDir()}, nil)
			for i, r := range tc.reps {
				labels := map[string]string{LabelService: "web"}
				for k, v := range r.labels {
					labels[k] = v
				}
				s.upsert(inspected(strings.Repeat(string(rune('a'+i)), 64), r.name, labels), time.Now())
			}
			f := engine.NewFacts(1, time.Now())
			fill(f, s.snapshot())
			if got := f.Services["web"].DesiredReplicas; got != tc.want {
				t.Errorf("desired_replicas = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestUpsertFields(t *testing.T) {
	var logs syncBuffer
	s := New(nil, Options{CgroupRoot: t.TempDir()}, slog.New(slog.NewTextHandler(&logs, nil)))
	id := strings.Repeat("c", 64)
	labels := map[string]string{labelCompose: "api", LabelDesired: "lots", LabelScaled: "true"}
	for range 3 { // re-inspects (resync) must not log the bad label again
		s.upsert(inspected(id, "api-1", labels), time.Now())
	}
	s.upsert(inspected(strings.Repeat("d", 64), "solo", nil), time.Now())
	if n := strings.Count(logs.String(), "ignoring bad label"); n != 1 {
		t.Errorf("bad label logged %d times, want once:\n%s", n, logs.String())
	}

	f := engine.NewFacts(1, time.Now())
	fill(f, s.snapshot())
	api := f.Services["api"]
	if api == nil || len(api.Replicas) != 1 {
		t.Fatalf("service api = %+v", api)
	}
	want := engine.Replica{ID: id, Name: "api-1", State: "exited", Health: "unhealthy", ExitCode: 137,
		MemLimitBytes: 64 << 20, Scaled: true}
	if got := api.Replicas[0]; got != want {
		t.Errorf("replica = %+v\nwant      %+v", got, want)
	}
	if f.Services["solo"] == nil {
		t.Errorf("container without service labels not reported under its name: %v", f.Services)
	}

	// An older answer must not overwrite a newer one; a destroyed container must not come back.
	older := inspected(id, "api-1", labels)
	older.State.Status = container.StateRunning
	s.upsert(older, time.Now().Add(-time.Hour))
	if e := s.byID[id]; e.state != "exited" {
		t.Errorf("stale inspect applied: state %s", e.state)
	}
	removedAt := time.Now()
	s.remove(id, removedAt)
	s.upsert(inspected(id, "api-1", labels), removedAt.Add(-time.Millisecond))
	if _, ok := s.byID[id]; ok {
		t.Error("inspect sent before the destroy revived the container")
	}
}

func TestListHealthAndState(t *testing.T) {
	for status, want := range map[string]string{
		"Up 3 seconds (healthy)":          "healthy",
		"Up 3 seconds (unhealthy)":        "unhealthy",
		"Up 1 second (health: starting)":  "starting",
		"Up 2 minutes":                    "none",
		"Exited (137) 2 seconds ago":      "none",
		"Restarting (1) 1 second ago":     "none",
		"Up 1 second (Paused) (healthy)x": "none",
	} {
		if got := listHealth(&container.Summary{Status: status}); got != want {
			t.Errorf("listHealth(%q) = %s, want %s", status, got, want)
		}
	}
	if got := listHealth(&container.Summary{Status: "Up", Health: &container.HealthSummary{Status: container.Healthy}}); got != "healthy" {
		t.Errorf("listHealth with Health field = %s", got)
	}
	for in, want := range map[container.ContainerState]string{
		container.StateRunning: "running", container.StateRemoving: "exited", container.StateCreated: "created",
		container.StateDead: "dead", "bogus": "dead",
	} {
		if got := replicaState(in); got != want {
			t.Errorf("replicaState(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestStreamSample(t *testing.T) {
	v := &container.StatsResponse{
		CPUStats: container.CPUStats{
			CPUUsage:    container.CPUUsage{TotalUsage: 3_000_000_000},
			SystemUsage: 20_000_000_000, OnlineCPUs: 2,
		},
		PreCPUStats: container.CPUStats{
			CPUUsage:    container.CPUUsage{TotalUsage: 1_500_000_000},
			SystemUsage: 18_000_000_000, OnlineCPUs: 2,
		},
		MemoryStats: container.MemoryStats{Usage: 50 << 20, Stats: map[string]uint64{"total_inactive_file": 10 << 20}},
	}
	// 1.5 s of CPU over 2 s of host time (2 CPUs, so 1 s of wall time) = 1.5 cores.
	got := streamSampleOf(v)
	if got.cpu != 150 || got.memBytes != 40<<20 || !got.ok {
		t.Errorf("v1 sample = %+v, want cpu 150, mem %d", got, 40<<20)
	}
	v.PreCPUStats = container.CPUStats{} // first sample
	v.MemoryStats.Stats = map[string]uint64{"inactive_file": 20 << 20}
	if got := streamSampleOf(v); got.cpu != 0 || got.memBytes != 30<<20 {
		t.Errorf("v2 first sample = %+v, want cpu 0, mem %d", got, 30<<20)
	}
}

func TestDaemonDown(t *testing.T) {
	cli, err := client.New(client.WithHost("unix://" + t.TempDir() + "/no-docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s := New(cli, Options{Timeout: 200 * time.Millisecond}, slog.New(slog.NewTextHandler(&logs, nil)))

	f := engine.NewFacts(1, time.Now())
	if err := s.Collect(context.Background(), f); err == nil || !strings.HasPrefix(err.Error(), "docker: list:") {
		t.Errorf("collect without a daemon: err = %v, want docker: list: ...", err)
	}

	// Watch keeps retrying with back-off and returns only when ctx is done.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func(string) { t.Error("woken without a daemon") }) }()
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("watch returned before ctx was done: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("watch = %v, want nil after cancel", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("watch did not return after cancel")
	}
	if n := strings.Count(logs.String(), "docker events interrupted"); n < 2 || n > 5 {
		t.Errorf("%d reconnect attempts logged in 1s, want 2..5 with back-off", n)
	}
}
