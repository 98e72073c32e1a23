"""How long `gradus tune` takes on a large regression table, beside scikit-learn, in one run.

The table is synthetic and seeded, shaped like the 54,000-row, 27-input
regression table of issue 18 (diamonds-like): 53,940 rows of six numeric
columns (one with 2% missing cells) and three categorical ones with 5, 7
and 8 levels, and a price that grows with size and quality, multiplied by
noise. It is written as a raw CSV; gradus gets it with no preparation and
its defaults:

  gradus tune --data large.csv --target price --out M

HistGradientBoostingRegressor and LinearRegression get the same rows with
the usual preprocessing (median imputation, one-hot). Printed per model:
test R², RMSE, fit seconds, and gradus's time against the 3-minute target.

Usage:
  cargo build --release -p gradus-cli
  bash bench/setup.sh tabular
  bench/.venv/bin/python bench/large_table.py [--rows 53940] [-- extra flags for gradus tune]
"""
import argparse, json, os, subprocess, sys, tempfile, time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")


def table(rows, seed=0):
    rng = np.random.default_rng(seed)
    carat = rng.gamma(2.0, 0.4, rows)
    cut = rng.choice(["Fair", "Good", "Very Good", "Premium", "Ideal"], rows, p=[.05, .1, .2, .3, .35])
    color = rng.choice(list("DEFGHIJ"), rows)
    clarity = rng.choice(["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"], rows)
    depth = rng.normal(61.7, 1.4, rows)
    table_ = rng.normal(57.4, 2.2, rows)
    x = 6.5 * carat ** (1 / 3) + rng.normal(0, 0.05, rows)
    y = x + rng.normal(0, 0.05, rows)
    z = 0.62 * x + rng.normal(0, 0.05, rows)
    quality = (pd.Series(cut).map({"Fair": 0, "Good": 1, "Very Good": 2, "Premium": 3, "Ideal": 4}).to_numpy() * 0.05
               + (6 - pd.Series(color).map({c: i for i, c in enumerate("DEFGHIJ")}).to_numpy()) * 0.04
               + pd.Series(clarity).map({c: i for i, c in enumerate(["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"])}).to_numpy() * 0.06)
    price = np.exp(7.8 + 1.7 * np.log(carat + 0.05) + quality - 0.02 * np.abs(depth - 61.7) + rng.normal(0, 0.12, rows))
    frame = pd.DataFrame({"carat": carat.round(2), "cut": cut, "color": color, "clarity": clarity,
                          "depth": depth.round(1), "table": table_.round(1), "x": x.round(2), "y": y.round(2),
                          "z": z.round(2), "price": price.round(0)})
    frame.loc[rng.random(rows) < 0.02, "depth"] = np.nan
    return frame


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=53940)
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    frame = table(args.rows)
    print(f"table: {len(frame)} rows, {frame.shape[1] - 1} columns ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "large.csv")
        frame.to_csv(path, index=False)
        model = os.path.join(tmp, "m.gradus")
        cmd = [BIN, "tune", "--data", path, "--target", "price", "--out", model, "--json",
               "--storage", f"sqlite:{tmp}/t.db", *args.extra]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            sys.exit(out.stderr)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
    test = summary["test_metrics"]
    print("| model | test R² | test RMSE | seconds |")
    print("|---|---|---|---|")
    print(f"| gradus tune (defaults{', ' + ' '.join(args.extra) if args.extra else ''}) | {test['r2']:.4f} | "
          f"{test['rmse']:.1f} | {wall:.1f} |")
    # The peers on gradus's split proportions: 20% held out for the test.
    x, y = frame.drop(columns="price"), frame["price"]
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0)
    numeric = ["carat", "depth", "table", "x", "y", "z"]
    categorical = ["cut", "color", "clarity"]
    prep = ColumnTransformer([("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    for name, model in [("HistGradientBoostingRegressor", HistGradientBoostingRegressor(random_state=0)),
                        ("LinearRegression", LinearRegression())]:
        pipe = make_pipeline(prep, model)
        start = time.perf_counter()
        pipe.fit(xtr, ytr)
        seconds = time.perf_counter() - start
        p = pipe.predict(xte)
        print(f"| {name} | {r2_score(yte, p):.4f} | {mean_squared_error(yte, p) ** 0.5:.1f} | {seconds:.1f} |")
    print(f"gradus: {wall:.0f} s against the 180 s target; {summary['trials']} trials, "
          f"{summary['epochs_trained']} epochs")


if __name__ == "__main__":
    main()
