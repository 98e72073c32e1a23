"""`gradus tune` on a raw mixed-type table beside scikit-learn and FLAML, on the same split, in one run.

UCI Adult as it ships (data/adult/: string categories with a leading space,
`?` for missing values, the official train and test files). gradus gets the
raw training CSV with no preparation:

  gradus tune --data data/adult/adult_train.csv.gz --target income --out M
  gradus evaluate --model M --data data/adult/adult_test.csv.gz

Its peers get the same rows through the usual scikit-learn preprocessing
(numeric: median imputation and standard scaling; categorical: the most
frequent level imputed, then one-hot with unknown levels ignored):
LogisticRegression, MLPClassifier(128, 64) and HistGradientBoostingClassifier
with their defaults, and FLAML's AutoML on the raw frame with gradus's wall
time as its budget. Every model is scored once on the official test file:
accuracy, ROC AUC, and the wall time of fitting (gradus: the whole tune,
trials, refit and its own test split included).

Usage:
  cargo build --release -p gradus-cli
  bash bench/setup.sh tabular
  bench/.venv/bin/python bench/tabular.py [--seed 0] [--jobs 2] [-- extra flags for gradus tune]
"""
import argparse, json, os, subprocess, sys, tempfile, time, warnings

# FLAML trains in worker processes, whose scikit-learn warnings would flood the table.
os.environ.setdefault("PYTHONWARNINGS", "ignore")

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")
TRAIN = os.path.join(ROOT, "data", "adult", "adult_train.csv.gz")
TEST = os.path.join(ROOT, "data", "adult", "adult_test.csv.gz")
TARGET, POSITIVE = "income", ">50K"


def run_gradus(seed, jobs, extra, tmp):
    model = os.path.join(tmp, "adult.gradus")
    cmd = [BIN, "tune", "--data", TRAIN, "--target", TARGET, "--out", model, "--seed", str(seed),
           "--jobs", str(jobs), "--storage", f"sqlite:{tmp}/tune.db", "--json", *extra]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: {out.stderr.strip()}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    ev = subprocess.run([BIN, "evaluate", "--model", model, "--data", TEST, "--json"], capture_output=True, text=True)
    if ev.returncode != 0:
        sys.exit(ev.stderr.strip())
    metrics = json.loads(ev.stdout)["metrics"]
    return metrics["accuracy"], metrics["roc_auc"], wall, summary


def frames():
    read = lambda path: pd.read_csv(path, skipinitialspace=True, na_values=["?"])
    train, test = read(TRAIN), read(TEST)
    y_train = (train.pop(TARGET) == POSITIVE).astype(int).to_numpy()
    y_test = (test.pop(TARGET) == POSITIVE).astype(int).to_numpy()
    return train, y_train, test, y_test


def preprocess(frame):
    numeric = frame.select_dtypes("number").columns.tolist()
    categorical = [c for c in frame.columns if c not in numeric]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
         categorical),
    ])


def score(model, x, y):
    p = model.predict_proba(x)[:, 1]
    return accuracy_score(y, (p >= 0.5).astype(int)), roc_auc_score(y, p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--no-flaml", action="store_true")
    ap.add_argument("extra", nargs="*", help="flags passed to gradus tune (after --)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release -p gradus-cli` first")
    print(f"UCI Adult, the official split; gradus seed {args.seed}, {args.jobs} jobs"
          f"{' + ' + ' '.join(args.extra) if args.extra else ''}")
    print("| model | test accuracy | test ROC AUC | fit s | gradus accuracy − this |")
    print("|---|---|---|---|---|", flush=True)
    rows = []

    def report(row):
        rows.append(row)
        name, acc, auc, wall = row
        print(f"| {name} | {acc:.4f} | {auc:.4f} | {wall:.1f} | {rows[0][1] - acc:+.4f} |", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        acc, auc, wall, summary = run_gradus(args.seed, args.jobs, args.extra, tmp)
    t = summary["trials"]
    report((f"gradus tune ({t['complete']} complete, {t['pruned']} pruned, {t['failed']} failed)", acc, auc, wall))
    x_train, y_train, x_test, y_test = frames()
    peers = [
        ("scikit-learn LogisticRegression", LogisticRegression(max_iter=1000)),
        ("scikit-learn MLPClassifier(128, 64)", MLPClassifier(hidden_layer_sizes=(128, 64), random_state=args.seed)),
        ("scikit-learn HistGradientBoosting", HistGradientBoostingClassifier(random_state=args.seed)),
    ]
    for name, estimator in peers:
        model = make_pipeline(preprocess(x_train), estimator)
        start = time.perf_counter()
        model.fit(x_train, y_train)
        report((name, *score(model, x_test, y_test), time.perf_counter() - start))
    if not args.no_flaml:
        from flaml import AutoML
        automl = AutoML()
        start = time.perf_counter()
        automl.fit(x_train, y_train, task="classification", time_budget=wall, seed=args.seed, verbose=0,
                   n_jobs=args.jobs)
        report((f"FLAML AutoML ({wall:.0f} s budget; best: {automl.best_estimator})",
                *score(automl, x_test, y_test), time.perf_counter() - start))


if __name__ == "__main__":
    main()
