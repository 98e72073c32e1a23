"""scikit-learn baselines on exactly the rows `gradus tune` tests on: how hard is each seed's test split?

For each dataset and seed, takes gradus's split (the `bench_splits` example:
the test rows held out of the search, the rest used for tuning), fits
scikit-learn's standard untuned models on the tuning rows (standardised) and
scores them once on the test rows: LogisticRegression(C=1) and
MLPClassifier(100) for classes, LinearRegression for a real target. On
36-row test sets (wine) one row is 2.8 points of accuracy, so these put
`bench/tune_quality.py`'s figures in context.

Usage:
  cargo build --release -p gradus --example bench_splits
  bench/.venv/bin/python bench/tune_reference.py [--datasets wine,breast_cancer,diabetes] [--seeds 5]
"""
import argparse, csv, gzip, json, os, subprocess, warnings

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SPLITS = os.path.join(ROOT, "target", "release", "examples", "bench_splits")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="wine,breast_cancer,diabetes")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print("| dataset | seed | test rows | model | test metric |")
    print("|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        with gzip.open(os.path.join(ROOT, "crates", "gradus-data", "data", f"{dataset}.csv.gz"), "rt") as f:
            rows = list(csv.reader(f))[1:]
        x = np.array([r[:-1] for r in rows], dtype=np.float64)
        y = np.array([r[-1] for r in rows])
        if dataset == "diabetes":
            y = y.astype(np.float64)
        for seed in range(args.seeds):
            out = subprocess.run([SPLITS, f"builtin:{dataset}", "0.2", "0.2", str(seed)], capture_output=True,
                                 text=True, check=True)
            s = json.loads(out.stdout)
            fit, test = np.array(s["train"] + s["valid"]), np.array(s["test"])
            scaler = StandardScaler().fit(x[fit])
            a, b = scaler.transform(x[fit]), scaler.transform(x[test])
            if dataset == "diabetes":
                models = {"LinearRegression": LinearRegression()}
                metric = "r2"
            else:
                models = {"LogisticRegression(C=1)": LogisticRegression(max_iter=5000),
                          "MLPClassifier(100)": MLPClassifier((100,), max_iter=2000, random_state=seed)}
                metric = "accuracy"
            for name, model in models.items():
                score = model.fit(a, y[fit]).score(b, y[test])
                print(f"| {dataset} | {seed} | {len(test)} | {name} | {metric} {score:.4f} |", flush=True)


if __name__ == "__main__":
    main()
