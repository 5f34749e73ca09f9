#!/usr/bin/env bash
# bench_anomaly.sh: the anomaly engine against scikit-learn (Debian python3-sklearn), same data
# and core counts, printed as ratios; and detection quality (mean ROC AUC over seeds 0–4) on
# ../shared/data/anomaly beside the README's scikit-learn reference. scikit-learn is skipped
# with a message when /usr/bin/python3 cannot import it (apt-get install -y python3-sklearn).
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
cores=$(nproc)

echo "== anomaly: ROC AUC, mean over seeds 0-4 (target >= sklearn - 0.01)"
go test -run '^$' -bench 'AUC' -benchtime 1x ./sensors/anomaly/iforest/ | grep '^auc '
echo

echo "== anomaly: fit + score 100000 x 10, default forest (target >= 10x sklearn)"
go_out=$(go test -run '^$' -bench 'FitScore' -benchtime 5x ./sensors/anomaly/iforest/)
go_ms() { echo "$go_out" | awk -v c="cores=$1-" 'index($1, c) { for (i = 1; i < NF; i++) if ($(i+1) == "ms/op") print $i }'; }
declare -A ours=([1]="$(go_ms 1)" [$cores]="$(go_ms "$cores")")
for c in 1 "$cores"; do
	printf 'ares   cores=%s  %8.1f ms\n' "$c" "${ours[$c]}"
done
if $py -c 'import sklearn' 2>/dev/null; then
	for c in 1 "$cores"; do
		sk=$($py - "$c" <<'PY'
import sys, time, numpy as np
from sklearn.ensemble import IsolationForest
jobs = int(sys.argv[1])
X = np.random.default_rng(1).standard_normal((100000, 10))
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    IsolationForest(n_estimators=100, max_samples=256, random_state=1, n_jobs=jobs).fit(X).score_samples(X)
    best = min(best, time.perf_counter() - t)
print(f"{best * 1000:.1f}")
PY
)
		awk -v c="$c" -v sk="$sk" -v go="${ours[$c]}" 'BEGIN { printf "sklearn cores=%s %8.1f ms   ratio %.1fx\n", c, sk, sk / go }'
	done
else
	echo "sklearn: SKIPPED, $py cannot import sklearn (apt-get install -y python3-sklearn)"
fi
echo

echo "== anomaly: live analyzer, one tick of 100 services (target < 1 ms)"
go test -run '^$' -bench 'AnalyzeTick' -benchtime 200x ./sensors/anomaly/ | grep -E '^Benchmark'
echo

echo "== anomaly: live, the shop under steady load for 10 minutes (1200 ticks of 0.5 s): no high tick;"
echo "   then latency, CPU and leak faults: high within 10 ticks each (tests TestAnomalyRisesOnFaults)"
mkdir -p dist/bench
if ANOMALY_BENCH_STEADY=10m go test -count=1 -timeout 25m -run 'TestAnomalyRisesOnFaults' -v ./tests/ >dist/bench/anomaly-live.log 2>&1; then
	grep -E 'steady ticks seen|ticks after the injection' dist/bench/anomaly-live.log | sed 's/^ *anomaly_test.go:[0-9]*: /  /'
	echo "  PASS"
else
	grep -E 'steady ticks seen|ticks after the injection|high risk at steady|anomaly_test.go' dist/bench/anomaly-live.log | sed 's/^ *//' | head -20
	echo "  FAIL (dist/bench/anomaly-live.log)"
fi
