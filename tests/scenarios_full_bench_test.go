package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/chaos"
	chaosload "github.com/ares-sre/ares/chaos/load"
	"github.com/ares-sre/ares/chaos/scenario"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/internal/dockertest"
)

// The full versions of scenarios 2 to 5 (tests/scenarios/*.yaml as written, no --short), each
// run at least five times (SCENARIO_BENCH_RUNS, default 5) against the shop in FROM-scratch
// containers with `ares run` live: the binary with ares.yaml's defaults (5 s tick, 60 s
// cooldowns, the default pack, its own SQLite journal), a fresh stack and a fresh ARES per run.
// The scenario runner is the one `ares chaos run` uses, in process. Reported per scenario:
// median and p90 time to detect (injection to ARES's first decision on the service) and to
// recover (injection to every replica healthy again), what the load through the gateway saw
// from the injection to its end (share of requests served, requests failed, seconds with a
// failure or a p99 above 1 s), and what each scenario adds (scale-out and scale-in times;
// restarts and escalation of a crash loop).
//
// The baseline is the 5-second polling healer of BenchmarkScenario1 (docker-autoheal's
// behaviour: every 5 s, start exited containers and restart unhealthy ones), run the same
// number of times on a fresh stack of the same shape, with the same file: its waits on ARES's
// actions become waits until the service recovered, and expectations about ARES are dropped.
// It can handle the leak (after the kernel's OOM kill), the latency (once the health check
// fails) and, in its way, the crash loop (it restarts forever); it cannot scale, so scenario
// 2 has no baseline. scripts/bench.sh prints the ratios.

// fullScenario describes one scenario's full-length benchmark.
type fullScenario struct {
	file    string
	service string    // the service the fault hits
	svcs    []shopSvc // the stack
	poller  bool      // the polling healer can handle it
}

// scenarioBenchRuns is SCENARIO_BENCH_RUNS, default 5 (fewer only for a quick look: the
// figures want five or more).
func scenarioBenchRuns() int {
	if v, err := strconv.Atoi(os.Getenv("SCENARIO_BENCH_RUNS")); err == nil && v >= 1 {
		return v
	}
	return 5
}

// fullRun is what one run of a scenario measured.
type fullRun struct {
	rep       *scenario.Report
	err       error
	detect    time.Duration // -1: not detected
	recover   time.Duration // -1: not recovered
	avail     float64       // percent served from the injection to the end of the load, -1 without load
	failed    int           // requests failed in that span
	degraded  int           // seconds of that span with a failure or a p99 above degradedP99
	restarts  int           // starts and restarts of the service's replicas (ARES: carried out, escalations aside)
	escalate  time.Duration // -1: none
	scaleOut  time.Duration // -1: none
	scaleIn   time.Duration // -1: none
	beforeOOM bool          // the leak's replica was recycled before the kernel killed it
}

func newFullRun() fullRun {
	return fullRun{detect: -1, recover: -1, avail: -1, escalate: -1, scaleOut: -1, scaleIn: -1}
}

// reportFull reports the runs' medians and 90th percentiles, and how many passed.
func reportFull(b *testing.B, runs []fullRun) {
	if len(runs) == 0 {
		b.Fatal("no run completed")
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	quant := func(name string, get func(r fullRun) time.Duration) {
		var l []time.Duration
		for _, r := range runs {
			if d := get(r); d >= 0 {
				l = append(l, d)
			}
		}
		if len(l) == 0 {
			return
		}
		slices.Sort(l)
		b.ReportMetric(ms(l[(len(l)-1)/2]), "ms-"+name+"-p50")
		b.ReportMetric(ms(l[min(len(l)-1, len(l)*9/10)]), "ms-"+name+"-p90")
	}
	quant("detect", func(r fullRun) time.Duration { return r.detect })
	quant("recover", func(r fullRun) time.Duration { return r.recover })
	quant("scale-out", func(r fullRun) time.Duration { return r.scaleOut })
	quant("scale-in", func(r fullRun) time.Duration { return r.scaleIn })
	quant("escalate", func(r fullRun) time.Duration { return r.escalate })
	var avail, failed, degraded []float64
	passed, restarts, beforeOOM := 0, 0, 0
	for _, r := range runs {
		if r.avail >= 0 {
			avail = append(avail, r.avail)
			failed = append(failed, float64(r.failed))
			degraded = append(degraded, float64(r.degraded))
		}
		if r.rep != nil && r.rep.Pass && r.err == nil {
			passed++
		}
		restarts += r.restarts
		if r.beforeOOM {
			beforeOOM++
		}
	}
	if len(avail) > 0 {
		slices.Sort(avail)
		b.ReportMetric(avail[(len(avail)-1)/2], "pct-available-p50")
		b.ReportMetric(avail[0], "pct-available-min")
		slices.Sort(failed)
		b.ReportMetric(failed[(len(failed)-1)/2], "failed-p50")
		slices.Sort(degraded)
		b.ReportMetric(degraded[(len(degraded)-1)/2], "s-degraded-p50")
	}
	b.ReportMetric(float64(restarts)/float64(len(runs)), "restarts-per-run")
	b.ReportMetric(float64(beforeOOM), "runs-recycled-before-oom")
	b.ReportMetric(float64(passed), "runs-passed")
	b.ReportMetric(float64(len(runs)), "runs")
}

// degradedP99 is the per-second p99 above which a second of load counts as degraded.
const degradedP99 = time.Second

// afterInjection reads the load's seconds from the injection to the end of the load (the
// same span for every healer: the files fix the load's length): the share of requests
// served (percent, -1 without load), the requests that failed, and the seconds in which a
// request failed or the p99 was above degradedP99.
func afterInjection(l *chaosload.Report, from time.Time) (avail float64, failed, degraded int) {
	if l == nil || len(l.Seconds) == 0 {
		return -1, 0, 0
	}
	req := 0
	for _, s := range l.Seconds {
		start := l.Start.Add(time.Duration(s.Second) * time.Second)
		if !start.Add(time.Second).After(from) {
			continue
		}
		req += s.Requests
		failed += s.Failed
		if s.Failed > 0 || s.P99 > degradedP99 {
			degraded++
		}
	}
	if req == 0 {
		return -1, 0, 0
	}
	return 100 * float64(req-failed) / float64(req), failed, degraded
}

// measure fills a run's figures from its report; detect is ARES's (the poller's is set by
// the caller).
func measure(rep *scenario.Report, service string) fullRun {
	r := newFullRun()
	r.rep = rep
	if rep == nil || len(rep.Faults) == 0 {
		return r
	}
	f := rep.Faults[0]
	if f.TimeToDetect != nil {
		r.detect = *f.TimeToDetect
	}
	if f.TimeToRecover != nil {
		r.recover = *f.TimeToRecover
	}
	r.avail, r.failed, r.degraded = afterInjection(rep.Load, f.At)
	for _, a := range rep.Actions {
		if a.Service != service || a.At.Before(f.At) {
			continue
		}
		since := a.At.Sub(f.At)
		acted := a.Verdict == engine.VerdictAdmit && (a.Outcome == nil || a.Outcome.Result != engine.ResultError)
		switch {
		case a.Escalation || (a.Action == engine.ActNotify && strings.HasPrefix(a.Reason, "escalation")):
			if r.escalate < 0 {
				r.escalate = since
			}
		case !acted:
		case a.Action == engine.ActScaleOut && r.scaleOut < 0:
			r.scaleOut = since
		case a.Action == engine.ActScaleIn && r.scaleIn < 0:
			r.scaleIn = since
		case a.Action == engine.ActRestart || a.Action == engine.ActRecycle:
			r.restarts++
			if a.Action == engine.ActRecycle && r.restarts == 1 && !strings.Contains(strings.ToLower(a.Reason), "oom") {
				r.beforeOOM = true
			}
		}
	}
	return r
}

// Rewriting a scenario for the polling healer: waits on ARES become waits until the service
// recovered; expectations about ARES go.
var (
	reWaitOnAres   = regexp.MustCompile(`until: (?:(?:action|decision) \S+ on|escalation on) ([A-Za-z0-9_.-]+)`)
	reExpectOnAres = regexp.MustCompile(`(?m)^\s*- (?:action|decision|no action|at most|escalation|new replicas|replicas of|memory of) .*\n`)
)

func forPoller(doc string) string {
	doc = reWaitOnAres.ReplaceAllString(doc, "until: service $1 recovered")
	return reExpectOnAres.ReplaceAllString(doc, "")
}

// loadScenario reads tests/scenarios/file, rewritten by edit (nil: as is).
func loadScenario(b *testing.B, file string, edit func(string) string) *scenario.Scenario {
	b.Helper()
	path := filepath.Join(dockertest.ModuleRoot(b), "tests", "scenarios", file)
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	doc := string(raw)
	if edit != nil {
		doc = edit(doc)
	}
	s, err := scenario.Parse([]byte(doc))
	if err != nil {
		b.Fatalf("%s: %v\n%s", file, err, doc)
	}
	s.File = path
	return s
}

// runFull runs sc once on shop (full length) and returns its report; the live timeline goes
// to out.
func runFull(ctx context.Context, b *testing.B, sc *scenario.Scenario, label, aresURL string, shop *scenarioShop, out *syncBuffer) (*scenario.Report, error) {
	cli := dockertest.Client(b)
	labels := append(slices.Clone(sc.Stack.Labels), label)
	r := &scenario.Runner{
		Injector: scenario.AgentInjector{Agent: chaos.New(cli, chaos.Options{Labels: labels})},
		Observer: scenario.DockerObserver{Client: cli, Labels: labels, Traffic: sc.NeedsTraffic()},
		Out:      out,
	}
	if shop != nil && shop.gateway != "" {
		r.Target = "http://" + shop.gateway
	}
	if aresURL != "" {
		r.Ares = scenario.AresClient{URL: aresURL}
	}
	return r.Run(ctx, sc)
}

func logRun(b *testing.B, healer string, i int, fr fullRun, out *syncBuffer) {
	b.Helper()
	var text strings.Builder
	if fr.rep != nil {
		fr.rep.WriteText(&text)
	}
	pass := fr.err == nil && fr.rep != nil && fr.rep.Pass
	b.Logf("%s run %d: pass %v, detect %v, recover %v, available %.2f%% (%d failed, %d s degraded), restarts %d, escalation %v, scale out %v, in %v",
		healer, i+1, pass, fr.detect, fr.recover, fr.avail, fr.failed, fr.degraded, fr.restarts, fr.escalate, fr.scaleOut, fr.scaleIn)
	if !pass {
		b.Logf("error %v; report:%s\ntimeline:\n%s", fr.err, text.String(), tail(out.String(), 60))
	}
}

// benchFull runs fs with ARES, then with the polling healer when it can handle it.
func benchFull(b *testing.B, fs fullScenario) {
	if testing.Short() {
		b.Skip("full-length scenarios take minutes")
	}
	b.Setenv("ARES_ENGINE_INTERVAL", "5s") // ares.yaml's engine.interval, not the tests' 500ms
	healerRuns(b, "ares", fs, func(b *testing.B, label string, shop *scenarioShop, out *syncBuffer) fullRun {
		_, api := startScenarioAres(b, filepath.Join(dockertest.ModuleRoot(b), "policies"), label)
		rep, err := runFull(context.Background(), b, loadScenario(b, fs.file, nil), label, api, shop, out)
		fr := measure(rep, fs.service)
		fr.err = err
		return fr
	})
	if !fs.poller {
		return
	}
	healerRuns(b, "poller-5s", fs, func(b *testing.B, label string, shop *scenarioShop, out *syncBuffer) fullRun {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := startPoller(ctx, dockertest.Client(b), label)
		defer p.stop()
		rep, err := runFull(ctx, b, loadScenario(b, fs.file, forPoller), label, "", shop, out)
		fr := pollerRun(rep, fs.service, p, nil)
		fr.err = err
		return fr
	})
}

// healerRuns is the sub-benchmark healer: scenarioBenchRuns runs of one, each on a fresh stack
// in a scope of its own (run=N), then their figures (all).
func healerRuns(b *testing.B, healer string, fs fullScenario, one func(b *testing.B, label string, shop *scenarioShop, out *syncBuffer) fullRun) {
	b.Run(healer, func(b *testing.B) {
		var runs []fullRun
		for i := range scenarioBenchRuns() {
			b.Run(fmt.Sprintf("run=%d", i+1), func(b *testing.B) {
				label, labels := scope(b)
				shop := startScenarioShop(b, labels, fs.svcs...)
				out := &syncBuffer{}
				fr := one(b, label, shop, out)
				logRun(b, healer, i, fr, out)
				runs = append(runs, fr)
			})
		}
		b.Run("all", func(b *testing.B) { reportFull(b, runs) })
	})
}

// pollerRun measures a polling healer's run: detection is its first start or restart of the
// containers in ids (nil: any) after the injection; restarts are all of them up to the
// run's end.
func pollerRun(rep *scenario.Report, service string, p *poller, ids map[string]bool) fullRun {
	fr := measure(rep, service)
	fr.detect = -1
	if rep == nil || len(rep.Faults) == 0 {
		return fr
	}
	at := rep.Faults[0].At
	end := at.Add(time.Duration(rep.Seconds * float64(time.Second)))
	acts := p.actsBetween(ids, at, end)
	if len(acts) > 0 {
		fr.detect = acts[0].at.Sub(at)
	}
	fr.restarts = len(acts)
	return fr
}

// Scenario 2: a surge ×4 plus a two-core burn on product → scale_out, the new replica serves,
// scale_in after the surge. ARES only: a polling healer does not scale.
func BenchmarkScenario2Surge(b *testing.B) {
	benchFull(b, fullScenario{file: "02-surge-scale.yaml", service: "product",
		svcs: []shopSvc{{name: "product", metrics: true}, {name: "gateway"}}})
}

// Scenario 3: product leaks 5 MB/s under a 256 MiB limit → ARES recycles it before the OOM
// kill when the trend sees it coming; the poller starts it again after the kernel killed it.
func BenchmarkScenario3Leak(b *testing.B) {
	benchFull(b, fullScenario{file: "03-leak-recycle.yaml", service: "product", poller: true,
		svcs: []shopSvc{{name: "product", metrics: true}, {name: "gateway"}}})
}

// Scenario 4: 3 s of latency on product → its health check fails → restart.
func BenchmarkScenario4Latency(b *testing.B) {
	benchFull(b, fullScenario{file: "04-latency-restart.yaml", service: "product", poller: true,
		svcs: []shopSvc{{name: "product", metrics: true}, {name: "gateway"}}})
}

// BenchmarkScenario5CrashLoop runs the crash loop's runs side by side: one stack of
// SCENARIO_BENCH_RUNS cart services (cart-1, cart-2, ...; the governor's cooldowns, budgets,
// back-offs and escalations are per service, so the runs do not interact), one ARES, and one
// runner per service, each with the file's service renamed. Reported: restarts carried out
// per run and the time to escalation. The poller's runs then last as long as ARES's median
// run, on a fresh stack of the same shape, and count its restarts in that time.
func BenchmarkScenario5CrashLoop(b *testing.B) {
	if testing.Short() {
		b.Skip("full-length scenarios take minutes")
	}
	b.Setenv("ARES_ENGINE_INTERVAL", "5s")
	n := scenarioBenchRuns()
	var svcs []shopSvc
	for i := range n {
		svcs = append(svcs, shopSvc{name: "cart", as: fmt.Sprintf("cart-%d", i+1)})
	}
	reCart := regexp.MustCompile(`\bcart\b`)
	side := func(b *testing.B, healer string, label string, shop *scenarioShop, api string, edit func(i int, doc string) string, p *poller) []fullRun {
		runs := make([]fullRun, n)
		outs := make([]*syncBuffer, n)
		ids := make([]map[string]bool, n) // each service's containers, for the poller's count
		for i := range n {
			ids[i] = serviceIDs(b, label, svcs[i].as)
		}
		var wg sync.WaitGroup
		for i := range n {
			sc := loadScenario(b, "05-crash-loop.yaml", func(doc string) string { return edit(i, doc) })
			outs[i] = &syncBuffer{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep, err := runFull(context.Background(), b, sc, label, api, shop, outs[i])
				if p != nil {
					runs[i] = pollerRun(rep, svcs[i].as, p, ids[i])
				} else {
					runs[i] = measure(rep, svcs[i].as)
				}
				runs[i].err = err
			}()
		}
		wg.Wait()
		for i := range runs {
			logRun(b, healer, i, runs[i], outs[i])
		}
		return runs
	}
	var window time.Duration
	b.Run("ares", func(b *testing.B) {
		label, labels := scope(b)
		shop := startScenarioShop(b, labels, svcs...)
		_, api := startScenarioAres(b, filepath.Join(dockertest.ModuleRoot(b), "policies"), label)
		runs := side(b, "ares", label, shop, api, func(i int, doc string) string {
			return reCart.ReplaceAllString(doc, svcs[i].as)
		}, nil)
		var secs []float64
		for _, r := range runs {
			if r.rep != nil {
				secs = append(secs, r.rep.Seconds)
			}
		}
		if len(secs) > 0 {
			slices.Sort(secs)
			window = time.Duration(secs[(len(secs)-1)/2] * float64(time.Second))
		}
		b.Run("all", func(b *testing.B) { reportFull(b, runs) })
	})
	if window <= 0 {
		b.Fatal("no ARES run to size the poller's window by")
	}
	b.Run("poller-5s", func(b *testing.B) {
		label, labels := scope(b)
		shop := startScenarioShop(b, labels, svcs...)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := startPoller(ctx, dockertest.Client(b), label)
		defer p.stop()
		wait := regexp.MustCompile(`- wait: \{until: escalation on cart[^}]*\}`)
		runs := side(b, "poller", label, shop, "", func(i int, doc string) string {
			doc = wait.ReplaceAllString(doc, fmt.Sprintf("- wait: {for: %dms}", window.Milliseconds()))
			return reCart.ReplaceAllString(forPoller(doc), svcs[i].as)
		}, p)
		b.Run("all", func(b *testing.B) { reportFull(b, runs) })
	})
}

// serviceIDs lists the ids of the containers of service in the scope label.
func serviceIDs(b *testing.B, label, service string) map[string]bool {
	b.Helper()
	f := client.Filters{}.Add("label", label).Add("label", "ares.service="+service)
	res, err := dockertest.Client(b).ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		b.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range res.Items {
		ids[c.ID] = true
	}
	return ids
}

// The polling healer's versions of the shipped scenarios wait for the service to recover
// instead of for ARES, and expect nothing of ARES; they still parse.
func TestForPollerRewritesScenarios(t *testing.T) {
	for _, file := range []string{"03-leak-recycle.yaml", "04-latency-restart.yaml", "05-crash-loop.yaml"} {
		raw, err := os.ReadFile(filepath.Join(dockertest.ModuleRoot(t), "tests", "scenarios", file))
		if err != nil {
			t.Fatal(err)
		}
		doc := forPoller(string(raw))
		if _, err := scenario.Parse([]byte(doc)); err != nil {
			t.Errorf("%s rewritten: %v\n%s", file, err, doc)
		}
		for _, line := range strings.Split(doc, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, ares := range []string{"until: action", "until: escalation", "- action ", "- no action", "- at most", "- escalation", "- memory of"} {
				if strings.Contains(line, ares) {
					t.Errorf("%s rewritten still has %q: %s", file, ares, line)
				}
			}
		}
		if !strings.Contains(doc, "recovered, timeout:") {
			t.Errorf("%s rewritten waits for no recovery:\n%s", file, doc)
		}
	}
}
