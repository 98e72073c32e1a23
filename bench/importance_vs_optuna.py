"""fANOVA importances: gradus against Optuna's FanovaImportanceEvaluator on
the same trials (issue 22).

For each dataset, `gradus tune` fills a study; its complete trials are read
from the SQLite file (the `params` table keeps each value with its
distribution) into an Optuna study with `create_trial`, and both compute
fANOVA importances over five seeds: `gradus importance --json` and
`optuna.importance.get_param_importances(study,
evaluator=FanovaImportanceEvaluator(seed=s))` for s = 0..4. Printed: each
parameter's mean ± standard deviation by both, whether the top-3 sets agree,
and for every parameter above 5% (by either) whether the two agree within
their seed spread: |mean_gradus - mean_optuna| <= 2 (sd_gradus + sd_optuna),
that is, the two mean ± 2 sd intervals overlap.

  cargo build --release -p gradus-cli
  bash bench/setup.sh
  bench/.venv/bin/python bench/importance_vs_optuna.py [--datasets digits mnist_5k] [--timeout 120]
"""
import argparse, json, os, sqlite3, subprocess, sys, tempfile

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRADUS = os.path.join(ROOT, "target", "release", "gradus")
SEEDS = range(5)


def gradus(*args):
    out = subprocess.run([GRADUS, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"gradus {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def distribution(d):
    if d["type"] == "float":
        return FloatDistribution(d["low"], d["high"], log=d.get("log", False), step=d.get("step"))
    if d["type"] == "int":
        return IntDistribution(d["low"], d["high"], log=d.get("log", False), step=d.get("step", 1))
    return CategoricalDistribution(d["choices"])


def optuna_study(db, name):
    """The complete trials of study `name` in the gradus SQLite file, as an Optuna study."""
    con = sqlite3.connect(db)
    (study_id, direction), = con.execute("select id, direction from studies where name = ?", (name,)).fetchall()
    study = optuna.create_study(direction="minimize" if "min" in direction.lower() else "maximize")
    rows = con.execute(
        "select t.id, t.value from trials t where t.study_id = ? and t.state = 'complete' order by t.number",
        (study_id,)).fetchall()
    for trial_id, value in rows:
        params, dists = {}, {}
        for pname, dist, val in con.execute("select name, distribution, value from params where trial_id = ?", (trial_id,)):
            dists[pname] = distribution(json.loads(dist))
            params[pname] = json.loads(val)
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    return study


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist_5k"])
    p.add_argument("--timeout", type=int, default=120)
    a = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in a.datasets:
            db = os.path.join(tmp, f"{dataset}.db")
            gradus("tune", "--data", f"builtin:{dataset}", "--timeout", f"{a.timeout}s", "--seed", "0",
                   "--storage", f"sqlite:{db}", "--study", dataset, "-q", "--out", os.path.join(tmp, "m.gradus"))
            ours = {}
            for line in gradus("importance", "--storage", f"sqlite:{db}", "--study", dataset, "--json").splitlines():
                r = json.loads(line)
                ours[r["param"]] = (r["fanova"], r["fanova_sd"])
            study = optuna_study(db, dataset)
            runs = [optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=s)) for s in SEEDS]
            theirs = {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))) for k in runs[0]}
            n = len(study.trials)
            print(f"\n{dataset}: {n} complete trials; fANOVA importance, mean ± sd over 5 seeds")
            print("| parameter | gradus | Optuna | within spread |")
            print("|---|---|---|---|")
            agree = True
            for k in sorted(theirs, key=lambda k: -theirs[k][0]):
                (g, gs), (o, os_) = ours.get(k, (float("nan"), 0.0)), theirs[k]
                big = max(g, o) > 0.05
                within = abs(g - o) <= 2 * (gs + os_)
                agree &= within or not big
                mark = ("yes" if within else "**no**") if big else "(below 5%)"
                print(f"| {k} | {g:.3f} ± {gs:.3f} | {o:.3f} ± {os_:.3f} | {mark} |")
            top = lambda d: set(sorted(d, key=lambda k: -d[k][0])[:3])
            print(f"top 3: gradus {sorted(top(ours))}, Optuna {sorted(top(theirs))}: "
                  f"{'the same' if top(ours) == top(theirs) else 'DIFFERENT'}; "
                  f"every parameter above 5% within the spread: {'yes' if agree else 'NO'}")


if __name__ == "__main__":
    main()
