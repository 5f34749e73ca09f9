package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/internal/dockertest"
	swarmsensor "github.com/ares-sre/ares/sensors/swarm"
)

// The cost of one tick for a large fleet, on synthetic swarm services and tasks (docs/scaling.md):
//
//	go test -run '^$' -bench ScaleTick -benchtime 5x ./tests/
//
// Stages: gather (the swarm sensor's work once its three list calls answered: tasks to
// replicas, nodes, counts; then the engine's summaries), evaluate (the default policy pack;
// 1 % of the services change between ticks, or all of them), govern (the governor's history
// and verdicts), record (the facts document as the journal stores it: JSON, SHA-256, gzip).
// tick is all four with 1 % changed. The API calls themselves are not in it: they are three
// requests whatever the fleet's size, and their time is the swarm manager's.

type synthSwarm struct {
	svcs  []swarm.Service
	tasks map[string][]swarm.Task
	nodes map[string]swarm.Node
}

// newSynthSwarm builds services of per replicas each on 20 nodes: every slot has a running
// task; one slot in 20 has an older failed task (a replacement), one in 50 is failed now.
func newSynthSwarm(rng *rand.Rand, services, per int) *synthSwarm {
	s := &synthSwarm{tasks: map[string][]swarm.Task{}, nodes: map[string]swarm.Node{}}
	for i := range 20 {
		var n swarm.Node
		n.ID = fmt.Sprintf("node%02d", i)
		n.Description.Hostname, n.Status.State, n.Spec.Availability = "host-"+n.ID, swarm.NodeStateReady, swarm.NodeAvailabilityActive
		s.nodes[n.ID] = n
	}
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := range services {
		var svc swarm.Service
		svc.ID = fmt.Sprintf("svcid%05d", i)
		svc.Spec.Name = fmt.Sprintf("svc-%05d", i)
		svc.Spec.Labels = map[string]string{"ares.enable": "true"}
		n := uint64(per)
		svc.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
		s.svcs = append(s.svcs, svc)
		for slot := 1; slot <= per; slot++ {
			node := fmt.Sprintf("node%02d", rng.IntN(20))
			task := func(id string, age time.Duration, st swarm.TaskState, exit int) swarm.Task {
				t := swarm.Task{ID: id, ServiceID: svc.ID, Slot: slot, NodeID: node, DesiredState: swarm.TaskStateRunning,
					Status: swarm.TaskStatus{State: st, ContainerStatus: &swarm.ContainerStatus{ContainerID: "c" + id, ExitCode: exit}}}
				t.Meta.CreatedAt = t0.Add(-age)
				if st == swarm.TaskStateFailed {
					t.Status.Err = fmt.Sprintf("task: non-zero exit (%d)", exit)
				}
				return t
			}
			id := fmt.Sprintf("%s-%d", svc.ID, slot)
			st, exit := swarm.TaskStateRunning, 0
			if rng.IntN(50) == 0 {
				st, exit = swarm.TaskStateFailed, 137
			}
			s.tasks[svc.ID] = append(s.tasks[svc.ID], task(id, time.Minute, st, exit))
			if rng.IntN(20) == 0 {
				s.tasks[svc.ID] = append(s.tasks[svc.ID], task(id+"-old", time.Hour, swarm.TaskStateFailed, 1))
			}
		}
	}
	return s
}

// gather fills a facts document the way the swarm sensor and the engine do.
func (s *synthSwarm) gather(tick uint64, now time.Time) *engine.Facts {
	f := engine.NewFacts(tick, now)
	for _, svc := range s.svcs {
		swarmsensor.Fill(f.Service(swarmsensor.ServiceName(svc)), svc, s.tasks[svc.ID], s.nodes, nil)
	}
	f.Sensors["docker"] = engine.SensorStatus{OK: true}
	f.Summarize()
	return f
}

// churn flips the state of one task in frac of the services.
func (s *synthSwarm) churn(rng *rand.Rand, frac float64) {
	k := max(1, int(float64(len(s.svcs))*frac))
	for _, i := range rng.Perm(len(s.svcs))[:k] {
		ts := s.tasks[s.svcs[i].ID]
		t := &ts[rng.IntN(len(ts))]
		if t.Status.State == swarm.TaskStateRunning {
			t.Status.State, t.Status.ContainerStatus.ExitCode = swarm.TaskStateFailed, 137
		} else {
			t.Status.State, t.Status.ContainerStatus.ExitCode = swarm.TaskStateRunning, 0
		}
	}
}

func record(b *testing.B, f *engine.Facts) (raw, gz int) {
	j, err := json.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	_ = sha256.Sum256(j)
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(j)
	_ = w.Close()
	return len(j), buf.Len()
}

func BenchmarkScaleTick(b *testing.B) {
	engine.TuneGC() // as `ares run` does
	pol, err := policy.Load(filepath.Join(dockertest.ModuleRoot(b), "policies"), policy.Options{InsecureDir: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, shape := range []struct{ services, per int }{{100, 10}, {1000, 10}, {5000, 2}} {
		name := fmt.Sprintf("containers=%d,services=%d", shape.services*shape.per, shape.services)
		rng := rand.New(rand.NewPCG(1, uint64(shape.services)))
		fresh := func() *synthSwarm {
			return newSynthSwarm(rand.New(rand.NewPCG(2, uint64(shape.services))), shape.services, shape.per)
		}
		sw := fresh()
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		per := func(b *testing.B, d time.Duration) {
			b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "ms/tick")
		}
		b.Run(name+"/stage=gather", func(b *testing.B) {
			var d time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				sw.gather(uint64(i), now)
				d += time.Since(start)
			}
			per(b, d)
		})
		for _, c := range []struct {
			name string
			frac float64
		}{{"1pct", 0.01}, {"all", 1}} {
			b.Run(name+"/stage=evaluate,changed="+c.name, func(b *testing.B) {
				sw := fresh()
				if _, _, err := pol.Evaluate(ctx, sw.gather(0, now)); err != nil { // warm the cache
					b.Fatal(err)
				}
				var d time.Duration
				for i := 0; i < b.N; i++ {
					sw.churn(rng, c.frac)
					f := sw.gather(uint64(i+1), now)
					start := time.Now()
					if _, _, err := pol.Evaluate(ctx, f); err != nil {
						b.Fatal(err)
					}
					d += time.Since(start)
				}
				per(b, d)
			})
		}
		b.Run(name+"/stage=govern", func(b *testing.B) {
			gov := governor.New(governor.Options{})
			f := fresh().gather(1, now)
			ds, _, _ := pol.Evaluate(ctx, f)
			var d time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				gov.Annotate(f, now)
				gov.Admit(ds, f, now, true)
				d += time.Since(start)
			}
			per(b, d)
			b.ReportMetric(float64(len(ds)), "decisions")
		})
		b.Run(name+"/stage=record", func(b *testing.B) {
			f := sw.gather(1, now)
			var d time.Duration
			var raw, gz int
			for i := 0; i < b.N; i++ {
				start := time.Now()
				raw, gz = record(b, f)
				d += time.Since(start)
			}
			per(b, d)
			b.ReportMetric(float64(raw), "facts-bytes")
			b.ReportMetric(float64(gz), "facts-gz-bytes")
		})
		b.Run(name+"/stage=tick,changed=1pct", func(b *testing.B) {
			sw := fresh()
			gov := governor.New(governor.Options{})
			var d time.Duration
			for i := 0; i < b.N; i++ {
				sw.churn(rng, 0.01)
				start := time.Now()
				f := sw.gather(uint64(i+1), now)
				gov.Annotate(f, now)
				ds, _, err := pol.Evaluate(ctx, f)
				if err != nil {
					b.Fatal(err)
				}
				gov.Admit(ds, f, now, true)
				record(b, f)
				d += time.Since(start)
			}
			per(b, d)
		})
	}
}
