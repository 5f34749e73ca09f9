#!/usr/bin/env bash
# bench.sh: ARES's benchmarks, each printed with its ratio against the baseline or target
# measured in the same run. Needs the Docker engine (scripts/services.sh starts it).
# Results also go to dist/bench/<date>.txt. Benchmarks are never timed assertions in make test.
#
#   scripts/bench.sh            # everything (~45 minutes; scenario alone ~40)
#   scripts/bench.sh policy     # one group: policy, event, sensor, actuator, anomaly, shop, dashboard,
#                               # scenario
set -euo pipefail
cd "$(dirname "$0")/.."
docker info >/dev/null 2>&1 || bash scripts/services.sh docker
mkdir -p dist/bench
out="dist/bench/$(date +%Y%m%d-%H%M%S).txt"
group=${1:-all}
report() { go run ./scripts/benchreport "$@"; }
run() { [ "$group" = all ] || [ "$group" = "$1" ]; }

{
	if run policy; then
		echo "== policy evaluation (engine/policy): ours vs plain rego.EvalInput, same run"
		go test -run '^$' -bench 'Evaluate|Baseline|HotReload' -benchtime 30x ./engine/policy/ | report \
			-ratio 'default pack, 1000 services, 10% changed (target <=10ms)|Evaluate/pack=default,services=1000,changed=10pct|BaselineEvalInput/pack=default,services=1000|ms/tick' \
			-ratio 'default pack, 1000 services, all changed (target <=30ms)|Evaluate/pack=default,services=1000,changed=all|BaselineEvalInput/pack=default,services=1000|ms/tick' \
			-ratio 'default pack, 5000 services, steady (target <=50ms)|Evaluate/pack=default,services=5000,changed=steady|BaselineEvalInput/pack=default,services=5000|ms/tick' \
			-ratio 'six-rule pack, 1000 services, 10% changed|Evaluate/pack=testdata,services=1000,changed=10pct|BaselineEvalInput/pack=testdata,services=1000|ms/tick' \
			-ratio 'six-rule pack, 1000 services, all changed|Evaluate/pack=testdata,services=1000,changed=all|BaselineEvalInput/pack=testdata,services=1000|ms/tick' \
			-ratio 'six-rule pack, 5000 services, steady|Evaluate/pack=testdata,services=5000,changed=steady|BaselineEvalInput/pack=testdata,services=5000|ms/tick' \
			-ratio 'default pack, 1000 services, all changed vs opa sidecar|Evaluate/pack=default,services=1000,changed=all|BaselineSidecar/pack=default,services=1000|ms/tick'
		echo
	fi
	if run scale; then
		echo "== one tick for 10 000 containers on synthetic swarm facts (docs/scaling.md): gather, evaluate (default pack), govern, record"
		go test -run '^$' -bench ScaleTick -benchtime 5x ./tests/ | report \
			-ratio 'tick 1 000 / 10 000 containers, 1000 services (0.1 = linear)|ScaleTick/containers=10000,services=1000/stage=tick,changed=1pct|ScaleTick/containers=1000,services=100/stage=tick,changed=1pct|ms/tick' \
			-ratio 'evaluate all changed / 1% changed, 10 000 containers (partition cache)|ScaleTick/containers=10000,services=1000/stage=evaluate,changed=1pct|ScaleTick/containers=10000,services=1000/stage=evaluate,changed=all|ms/tick' \
			-ratio 'tick 1000 / 5000 services of 10 000 containers|ScaleTick/containers=10000,services=5000/stage=tick,changed=1pct|ScaleTick/containers=10000,services=1000/stage=tick,changed=1pct|ms/tick'
		echo
	fi
	if run event; then
		echo "== event to action: Docker die event to the ContainerStart request, 50 services (target <=20ms)"
		go test -run '^$' -bench EventToAction -benchtime 20x ./tests/ | report
		echo
	fi
	if run sensor; then
		echo "== docker sensor: one Collect over 50 containers, cgroup files vs streaming stats API"
		go test -run '^$' -bench Collect50 -benchtime 50x ./sensors/docker/ | report \
			-ratio 'Collect, events live vs listing every tick|Collect50/cgroup|Collect50/cgroup-no-events|ns/op'
		echo
		echo "== CPU of ARES + dockerd/containerd/shims at a 1 s tick, 50 containers (target < 3 % of a core)"
		go test -run '^$' -bench ResourceUsage -benchtime 1x -timeout 10m ./tests/ | report
		echo
	fi
	if run scenario; then
		echo "== scenario 1: one of two replicas crashes (kill -9 of its PID), 7 runs each, same containers;"
		echo "   ARES live (binary, default config, journal, governor) vs bare start, event healer, --restart always, 5 s poller"
		go test -run '^$' -bench Scenario1 -benchtime 1x -timeout 15m ./tests/ | report \
			-ratio 'recover p50: bare start / ARES (target >= 0.77: <= 1.3x)|Scenario1/ares|Scenario1/bare-start|ms-recover-p50' \
			-ratio 'recover p50: event-driven healer / ARES|Scenario1/ares|Scenario1/event-healer|ms-recover-p50' \
			-ratio 'recover p50: bare start / event-driven healer (the best a healer through the API reaches)|Scenario1/event-healer|Scenario1/bare-start|ms-recover-p50' \
			-ratio 'recover p50: --restart always / ARES (target > 1)|Scenario1/ares|Scenario1/restart-always|ms-recover-p50' \
			-ratio 'recover p50: 5 s poller / ARES (target >= 20)|Scenario1/ares|Scenario1/poller-5s|ms-recover-p50' \
			-ratio 'recover p90: 5 s poller / ARES|Scenario1/ares|Scenario1/poller-5s|ms-recover-p90' \
			-ratio 'detect p50: 5 s poller / ARES|Scenario1/ares|Scenario1/poller-5s|ms-detect-p50'
		echo
		echo "== scenarios 2-5, full versions (tests/scenarios/*.yaml), ${SCENARIO_BENCH_RUNS:-5} runs each, ARES live with"
		echo "   ares.yaml's defaults vs the 5 s poller where it can heal at all (~35 minutes)"
		echo "-- scenario 2 (surge: scale out, serve, scale in; no baseline: a poller does not scale)"
		go test -run '^$' -bench 'Scenario2Surge' -benchtime 1x -timeout 60m ./tests/ | report
		# 3, 4 and 5 are light (20 and 10 req/s, a leak, a sleep, a killed process) and timed by
		# the governor's clocks: side by side, each in its own stack and scope.
		tmp=$(mktemp -d)
		pids=()
		for s in 3Leak 4Latency 5CrashLoop; do
			go test -run '^$' -bench "Scenario$s" -benchtime 1x -timeout 90m ./tests/ >"$tmp/$s" 2>&1 &
			pids+=($!)
		done
		status=0
		for p in "${pids[@]}"; do wait "$p" || status=1; done
		echo "-- scenario 3 (leak: recycle before the OOM kill)"
		report <"$tmp/3Leak" \
			-ratio 'scenario 3 recover p50: 5 s poller / ARES|Scenario3Leak/ares/all|Scenario3Leak/poller-5s/all|ms-recover-p50' \
			-ratio 'scenario 3 recover p90: 5 s poller / ARES|Scenario3Leak/ares/all|Scenario3Leak/poller-5s/all|ms-recover-p90' \
			-ratio 'scenario 3 detect p50: 5 s poller / ARES|Scenario3Leak/ares/all|Scenario3Leak/poller-5s/all|ms-detect-p50' \
			-ratio 'scenario 3 availability p50: ARES / 5 s poller|Scenario3Leak/poller-5s/all|Scenario3Leak/ares/all|pct-available-p50' \
			-ratio 'scenario 3 requests failed p50: 5 s poller / ARES|Scenario3Leak/ares/all|Scenario3Leak/poller-5s/all|failed-p50' \
			-ratio 'scenario 3 seconds degraded p50: 5 s poller / ARES|Scenario3Leak/ares/all|Scenario3Leak/poller-5s/all|s-degraded-p50'
		echo "-- scenario 4 (latency: restart once the health check fails)"
		report <"$tmp/4Latency" \
			-ratio 'scenario 4 recover p50: 5 s poller / ARES|Scenario4Latency/ares/all|Scenario4Latency/poller-5s/all|ms-recover-p50' \
			-ratio 'scenario 4 recover p90: 5 s poller / ARES|Scenario4Latency/ares/all|Scenario4Latency/poller-5s/all|ms-recover-p90' \
			-ratio 'scenario 4 detect p50: 5 s poller / ARES|Scenario4Latency/ares/all|Scenario4Latency/poller-5s/all|ms-detect-p50' \
			-ratio 'scenario 4 availability p50: ARES / 5 s poller|Scenario4Latency/poller-5s/all|Scenario4Latency/ares/all|pct-available-p50' \
			-ratio 'scenario 4 requests failed p50: 5 s poller / ARES|Scenario4Latency/ares/all|Scenario4Latency/poller-5s/all|failed-p50' \
			-ratio 'scenario 4 seconds degraded p50: 5 s poller / ARES|Scenario4Latency/ares/all|Scenario4Latency/poller-5s/all|s-degraded-p50'
		echo "-- scenario 5 (crash loop: back off and escalate, not a restart storm)"
		report <"$tmp/5CrashLoop" \
			-ratio 'scenario 5 restarts in the same time: 5 s poller / ARES|Scenario5CrashLoop/ares/all|Scenario5CrashLoop/poller-5s/all|restarts-per-run'
		rm -rf "$tmp"
		[ "$status" = 0 ] || echo "!! a scenario benchmark failed (see above)"
		echo
	fi
	if run actuator; then
		echo "== docker actuator: restart of an exited container"
		go test -run '^$' -bench RestartExited -benchtime 10x ./actuators/docker/ | report
		echo
	fi
	if run anomaly; then
		bash scripts/bench_anomaly.sh
		echo
	fi
	if run dashboard; then
		echo "== dashboard: page renders with 50 services and a day of history; SSE fan-out to 50 clients"
		go test -run '^$' -bench . -benchtime 20x ./dashboard/ | report
		echo
	fi
	if run shop; then
		echo "== shop: bounded constant load (200 req/s, 3 s each) on loopback; gateway vs product service directly"
		bash scripts/services.sh postgres >/dev/null
		bash scripts/services.sh redis >/dev/null
		go test -run '^$' -bench ShopLoad -benchtime 1x ./shop/internal/gateway/ | report
	fi
} 2>&1 | tee "$out"
echo "saved in $out"
