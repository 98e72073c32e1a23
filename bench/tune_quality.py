"""`gradus tune` with its defaults on the built-in datasets: held-out test score and wall time.

Runs `target/release/gradus tune --data builtin:NAME --trials 60 --json` (every
other flag at its default, a fresh SQLite file per run) for each dataset and
seed, and prints the test metric (accuracy, or R² for diabetes), the trial
counts, the epochs trained and the wall time, against the issue's targets.

Usage:
  cargo build --release -p gradus-cli
  python3 bench/tune_quality.py [--seeds 1] [--trials 60] [--datasets digits,breast_cancer,wine,diabetes,mnist_5k]
      [-- extra flags for gradus tune, e.g. --pruner none]
"""
import argparse, json, os, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")
TARGETS = {"digits": ("accuracy", 0.98), "breast_cancer": ("accuracy", 0.97), "wine": ("accuracy", 0.97),
           "diabetes": ("r2", 0.45), "mnist_5k": ("accuracy", 0.95)}


def run(dataset, seed, trials, extra):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [BIN, "tune", "--data", f"builtin:{dataset}", "--trials", str(trials), "--seed", str(seed),
               "--storage", f"sqlite:{tmp}/tune.db", "--json", *extra]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        return summary, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--datasets", default=",".join(TARGETS))
    ap.add_argument("extra", nargs="*", help="flags passed to gradus tune (after --)")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release -p gradus-cli` first")
    print(f"gradus tune, {args.trials} trials, defaults{' + ' + ' '.join(args.extra) if args.extra else ''}")
    print("| dataset | seed | test metric | target | complete / pruned / failed | epochs trained | wall s |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        metric, target = TARGETS[dataset]
        for seed in range(args.seeds):
            s, wall = run(dataset, seed, args.trials, args.extra)
            value = s["test_metrics"][metric]
            t = s["trials"]
            verdict = "met" if value >= target and wall < 180 else "not met"
            print(f"| {dataset} | {seed} | {metric} {value:.4f} | ≥ {target} in < 180 s: {verdict} | "
                  f"{t['complete']} / {t['pruned']} / {t['failed']} | {s['epochs_trained']} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
