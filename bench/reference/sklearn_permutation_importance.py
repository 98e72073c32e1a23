# Reference for `gradus explain` (crates/gradus-cli/tests/explain.rs) and
# issue 23: scikit-learn's permutation_importance on the same model's
# predictions, side by side with gradus's, column by column.
#
# The model is a gradus model file; scikit-learn sees it as an estimator
# whose predict() writes the (shuffled) rows to a CSV and runs
# `gradus predict` on them, so both tools score exactly the same model.
# Each column's 95% interval is mean ± t(0.975, R−1)·sd/√R (sd with n − 1)
# for both; two estimates agree when they differ by at most the sum of
# their half-widths (the intervals overlap).
#
# Run (after `cargo build --release -p gradus-cli` and `bash bench/setup.sh`):
#   bench/.venv/bin/python bench/reference/sklearn_permutation_importance.py
# Cases: breast_cancer (30 numeric columns; a logistic regression trained
# on its first 400 rows, explained on the other 169 — the test pastes these
# numbers) and UCI Adult (mixed types with missing cells; a tuned model,
# 2,000 held-out rows: categorical columns shuffled whole by both).
import csv, gzip, io, json, os, subprocess, sys, tempfile

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.inspection import permutation_importance

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GRADUS = os.path.join(ROOT, "target", "release", "gradus")
REPEATS = 30


class GradusModel(ClassifierMixin, BaseEstimator):
    """A saved gradus classifier; predict() runs `gradus predict`."""

    def __init__(self, model=None, workdir=None, columns=None):
        self.model = model
        self.workdir = workdir
        self.columns = columns

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        path = os.path.join(self.workdir, "rows.csv")
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(self.columns)
            out.writerows(X.tolist())
        out = subprocess.run([GRADUS, "predict", "--model", self.model, "--data", path],
                             check=True, capture_output=True, text=True).stdout
        return np.array([r["prediction"] for r in csv.DictReader(io.StringIO(out))], dtype=object)


def half_width(samples):
    samples = np.asarray(samples, dtype=float)
    return stats.t.ppf(0.975, len(samples) - 1) * samples.std(ddof=1) / np.sqrt(len(samples))


def compare(name, model, test_csv, target, workdir):
    with open(test_csv, newline="") as f:
        table = list(csv.reader(f))
    header, body = table[0], table[1:]
    t = header.index(target)
    columns = [c for c in header if c != target]
    X = np.array([[v for i, v in enumerate(r) if i != t] for r in body], dtype=object)
    y = np.array([r[t].strip() for r in body], dtype=object)
    est = GradusModel(model=model, workdir=workdir, columns=columns).fit(X, y)
    ours = json.loads(subprocess.run(
        [GRADUS, "explain", "--model", model, "--data", test_csv, "--metric", "accuracy",
         "--repeats", str(REPEATS), "--rows", str(len(body)), "--top", "0", "--json"],
        check=True, capture_output=True, text=True).stdout)
    theirs = permutation_importance(est, X, y, scoring="accuracy", n_repeats=REPEATS, random_state=0)
    print(f"\n{name}: {len(body)} held-out rows, {REPEATS} shuffles each, accuracy "
          f"{ours['permutation_importance']['baseline']:.4f}")
    print(f"{'column':<28} {'gradus':>18} {'scikit-learn':>18} {'|diff|':>8} {'allowed':>8}  agree")
    agree = 0
    rows = []
    for c in ours["permutation_importance"]["columns"]:
        j = columns.index(c["column"])
        s = theirs.importances[j]
        g_half = (c["ci"][1] - c["ci"][0]) / 2
        s_half = half_width(s)
        diff = abs(c["mean"] - s.mean())
        ok = diff <= g_half + s_half + 1e-12
        agree += ok
        rows.append((c["column"], s.mean(), s.std(ddof=1)))
        print(f"{c['column']:<28} {c['mean']:>9.4f} ±{g_half:>7.4f} {s.mean():>9.4f} ±{s_half:>7.4f} "
              f"{diff:>8.4f} {g_half + s_half:>8.4f}  {'yes' if ok else 'NO'}")
    print(f"{name}: {agree} of {len(rows)} columns agree within the intervals")
    return agree == len(rows), rows


def main():
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        # breast_cancer: the first 400 rows train, the other 169 explain.
        lines = gzip.open(os.path.join(ROOT, "crates/gradus-data/data/breast_cancer.csv.gz"), "rt").read().splitlines()
        with open(os.path.join(tmp, "train.csv"), "w") as f:
            f.write("\n".join(lines[:401]) + "\n")
        with open(os.path.join(tmp, "test.csv"), "w") as f:
            f.write("\n".join([lines[0]] + lines[401:]) + "\n")
        model = os.path.join(tmp, "bc.gradus")
        subprocess.run([GRADUS, "train", "--data", "train.csv", "--model", "logistic", "--seed", "1",
                        "--out", model, "--quiet"], check=True, cwd=tmp)
        good, rows = compare("breast_cancer", model, os.path.join(tmp, "test.csv"), "diagnosis", tmp)
        ok &= good
        print("\nscikit-learn's means and standard deviations (n − 1), for the test:")
        for name, mean, sd in rows:
            print(f'    ("{name}", {mean:.6f}, {sd:.6f}),')

        # UCI Adult: a tuned model on 6,000 training rows, 2,000 held out.
        train = gzip.open(os.path.join(ROOT, "data/adult/adult_train.csv.gz"), "rt").read().splitlines()
        test = gzip.open(os.path.join(ROOT, "data/adult/adult_test.csv.gz"), "rt").read().splitlines()
        with open(os.path.join(tmp, "adult_train.csv"), "w") as f:
            f.write("\n".join(train[:6001]) + "\n")
        with open(os.path.join(tmp, "adult_test.csv"), "w") as f:
            f.write("\n".join(test[:2001]) + "\n")
        target = next(csv.reader([train[0]]))[-1]
        model = os.path.join(tmp, "adult.gradus")
        subprocess.run([GRADUS, "tune", "--data", "adult_train.csv", "--trials", "6", "--out", model, "--quiet"],
                       check=True, cwd=tmp)
        good, _ = compare("adult", model, os.path.join(tmp, "adult_test.csv"), target, tmp)
        ok &= good
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
