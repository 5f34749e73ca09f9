package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	dockeract "github.com/ares-sre/ares/actuators/docker"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/internal/dockertest"
	dockersensor "github.com/ares-sre/ares/sensors/docker"
)

// startRecorder is an http.RoundTripper that notes when each POST /containers/{id}/start
// request leaves ARES, so that the benchmark measures up to the ContainerStart call itself.
type startRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	sent map[string]time.Time // container id → first start request
	took map[string]time.Duration
}

func (r *startRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	at := time.Now()
	resp, err := r.base.RoundTrip(req)
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/start") {
		parts := strings.Split(req.URL.Path, "/")
		id := parts[len(parts)-2]
		r.mu.Lock()
		if _, ok := r.sent[id]; !ok {
			r.sent[id] = at
			r.took[id] = time.Since(at)
		}
		r.mu.Unlock()
	}
	return resp, err
}

func (r *startRecorder) get(id string) (time.Time, time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range r.sent {
		if strings.HasPrefix(id, k) || strings.HasPrefix(k, id) {
			return v, r.took[k], true
		}
	}
	return time.Time{}, 0, false
}

// BenchmarkEventToAction measures, with 50 labelled services running and the default policy
// pack live, the time from a container's Docker die event (the daemon's own timestamp) to ARES
// sending the ContainerStart request for it. Target: ≤ 20 ms. Each iteration kills a
// different service (the pack's cooldown would otherwise hold the second restart back).
// Run with -benchtime=Nx, N ≤ 50.
func BenchmarkEventToAction(b *testing.B) {
	const services = 50
	image := dockertest.BuildGoImage(b, "ares-testserver-nohc:test", "./tests/testserver", "")
	scopeVal := fmt.Sprintf("bench-%d", time.Now().UnixNano()%1e6)
	ids := make([]string, services)
	for i := range ids {
		ids[i] = dockertest.Run(b, dockertest.Spec{Name: fmt.Sprintf("ares-bench-%s-%02d", scopeVal, i), Image: image,
			Labels: map[string]string{"ares.enable": "true", "ares.service": fmt.Sprintf("svc%02d", i), "ares.test.scope": scopeVal}})
	}
	rec := &startRecorder{sent: map[string]time.Time{}, took: map[string]time.Duration{},
		base: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", "/var/run/docker.sock")
		}}}
	cli, err := client.New(client.WithHost("unix:///var/run/docker.sock"), client.WithHTTPClient(&http.Client{Transport: rec}))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	labels := []string{"ares.test.scope=" + scopeVal}
	pol, err := policy.NewWatcher(filepath.Join(dockertest.ModuleRoot(b), "policies"), policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	tl := &timeline{acts: map[string]time.Time{}}
	act := timedActuator{dockeract.New(cli, dockeract.Options{Labels: labels}, log), tl}
	sensor := timedSensor{dockersensor.New(cli, dockersensor.Options{Labels: labels}, log), tl}
	eng, err := engine.New(engine.Options{Interval: 5 * time.Second, Sensors: []engine.Sensor{sensor},
		Policy: pol, Governor: governor.New(governor.Options{}), Journal: journalFunc(func(engine.TickRecord) {}),
		Actuators: map[string]engine.Actuator{engine.ActRestart: act, engine.ActRecycle: act}, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = eng.Run(ctx) }()

	// The benchmark's own view of die events, with the daemon's timestamps.
	dies := map[string]time.Time{}
	var mu sync.Mutex
	ev := dockertest.Client(b).Events(ctx, client.EventsListOptions{Filters: client.Filters{}.Add("type", "container").Add("event", "die").Add("label", "ares.test.scope="+scopeVal)})
	go func() {
		for m := range ev.Messages {
			mu.Lock()
			dies[m.Actor.ID] = time.Unix(0, m.TimeNano)
			mu.Unlock()
		}
	}()
	time.Sleep(2 * time.Second) // the first ticks have run and the caches are warm

	var lat, startTook, toWake, wakeToAct, actToStart []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N && i < services; i++ {
		id := ids[i]
		dockertest.Crash(b, id) // a crash: a Docker API kill would be an operator's stop
		deadline := time.Now().Add(10 * time.Second)
		for {
			sent, took, ok := rec.get(id)
			mu.Lock()
			die, dok := dies[id]
			mu.Unlock()
			if ok && dok {
				lat = append(lat, sent.Sub(die))
				startTook = append(startTook, took)
				name := fmt.Sprintf("ares-bench-%s-%02d", scopeVal, i)
				w, _ := tl.firstWakeAfter(die)
				tl.mu.Lock()
				a := tl.acts[name]
				tl.mu.Unlock()
				toWake = append(toWake, w.Sub(die))
				wakeToAct = append(wakeToAct, a.Sub(w))
				actToStart = append(actToStart, sent.Sub(a))
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no ContainerStart for %s within 10s", id[:12])
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	for _, l := range [][]time.Duration{lat, startTook, toWake, wakeToAct, actToStart} {
		slices.Sort(l)
	}
	p50, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(p50), "ms-event-to-start-p50")
	b.ReportMetric(ms(p90), "ms-event-to-start-p90")
	b.ReportMetric(ms(startTook[len(startTook)/2]), "ms-start-call-p50")
	b.ReportMetric(ms(p50)/20, "ratio-to-20ms-target")
	b.ReportMetric(ms(toWake[len(toWake)/2]), "ms-die-to-wake-p50")
	b.ReportMetric(ms(wakeToAct[len(wakeToAct)/2]), "ms-wake-to-act-p50")
	b.ReportMetric(ms(actToStart[len(actToStart)/2]), "ms-act-to-start-p50")
	slices.Sort(tl.collects)
	b.ReportMetric(ms(tl.collects[len(tl.collects)/2]), "ms-collect-p50")
}

// timeline notes when each stage of the event → action path happened, to show where the
// time goes.
type timeline struct {
	mu       sync.Mutex
	wakes    []time.Time // sensor called wake
	acts     map[string]time.Time
	collects []time.Duration
}

func (t *timeline) firstWakeAfter(at time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.wakes {
		if w.After(at) {
			return w, true
		}
	}
	return time.Time{}, false
}

type timedSensor struct {
	*dockersensor.Sensor
	tl *timeline
}

func (s timedSensor) Watch(ctx context.Context, wake func(string)) error {
	return s.Sensor.Watch(ctx, func(r string) {
		s.tl.mu.Lock()
		s.tl.wakes = append(s.tl.wakes, time.Now())
		s.tl.mu.Unlock()
		wake(r)
	})
}

func (s timedSensor) Collect(ctx context.Context, f *engine.Facts) error {
	start := time.Now()
	err := s.Sensor.Collect(ctx, f)
	s.tl.mu.Lock()
	s.tl.collects = append(s.tl.collects, time.Since(start))
	s.tl.mu.Unlock()
	return err
}

type timedActuator struct {
	engine.Actuator
	tl *timeline
}

func (a timedActuator) Act(ctx context.Context, x engine.Action) (engine.Outcome, error) {
	a.tl.mu.Lock()
	a.tl.acts[x.Replica] = time.Now()
	a.tl.mu.Unlock()
	return a.Actuator.Act(ctx, x)
}

type journalFunc func(engine.TickRecord)

func (f journalFunc) Record(_ context.Context, r engine.TickRecord) error { f(r); return nil }
