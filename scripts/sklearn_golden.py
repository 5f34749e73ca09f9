#!/usr/bin/python3
"""sklearn_golden.py: reference scores for sensors/anomaly/iforest's scikit-learn equivalence test.

Fits scikit-learn's IsolationForest (Debian python3-sklearn, 1.2) on synthetic data built from
integer arithmetic (so that Go rebuilds it bit for bit, see golden_test.go) and writes the
scores of -score_samples for each case to sensors/anomaly/iforest/testdata/sklearn.json. The
cases cover each way scikit-learn draws a subsample (permutation, tracking selection,
reservoir, all rows) and constant and nearly constant attributes.

    /usr/bin/python3 scripts/sklearn_golden.py
"""
import json, os, sys
import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

# name, rows, cols, seed, trees, max_samples, rows scored, constant columns, near-constant columns
CASES = [
    ("permutation", 600, 4, 3, 100, 256, 600, [], []),
    ("tracking-selection", 30000, 3, 5, 30, 256, 400, [], []),
    ("reservoir", 258, 2, 7, 100, 256, 258, [], []),
    ("all-rows", 100, 5, 0, 100, 256, 100, [], []),
    ("constant-columns", 400, 5, 11, 100, 64, 400, [2], [4]),
    ("small-sample", 1000, 3, 4294967295, 50, 16, 1000, [], []),
]


def value(i, j, constant, near):
    """The data: integers mixed into 0..1008, divided by 7; row i % 97 == 0 is far out on column 0."""
    if j in constant:
        return 5.0
    if j in near:
        return (i % 2) * 5e-8
    v = ((i * (j + 3) * 7919 + j * 104729 + (i * i) % 101) % 1009) / 7.0
    if i % 97 == 0 and j == 0:
        v += 300.0
    return v


def main():
    out = {"sklearn": sklearn.__version__, "cases": []}
    for name, rows, cols, seed, trees, sample, scored, constant, near in CASES:
        X = np.array([[value(i, j, constant, near) for j in range(cols)] for i in range(rows)])
        f = IsolationForest(n_estimators=trees, max_samples=sample, random_state=seed).fit(X)
        scores = -f.score_samples(X[:scored])
        out["cases"].append({"name": name, "rows": rows, "cols": cols, "seed": seed, "trees": trees,
                             "sample": sample, "constant": constant, "near_constant": near,
                             "scores": [float(s) for s in scores]})
    path = os.path.join(os.path.dirname(__file__), "..", "sensors", "anomaly", "iforest", "testdata", "sklearn.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=None, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {os.path.normpath(path)} (scikit-learn {sklearn.__version__}, {len(CASES)} cases)", file=sys.stderr)


if __name__ == "__main__":
    main()
