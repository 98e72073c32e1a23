"""Does pruning pay in `gradus tune`? Epochs trained and best validation loss, per pruner.

For each dataset, pruner and seed, runs `target/release/gradus tune --data
builtin:NAME --trials 60 --pruner P --seed S --json` (a fresh SQLite file each)
and records the total epochs every trial trained and the study's best
validation loss. The table gives the means over seeds and, for each pruner,
the epoch cut against `none` and whether its mean best validation loss is no
worse (the issue's target: a cut of at least 50% at no worse a loss, on digits
and mnist_5k, 5 seeds). The last column pairs each seed with the same seed
without a pruner: how many seeds the pruner did better / worse, and the
mean difference in best validation loss with its standard error — a gap
of less than two or three standard errors (t at 95% is 2.78 for 5 seeds)
is within the seed-to-seed spread. `none` runs first whatever the order
given, so every pruner is set beside it. `--keep DIR` keeps each study's
SQLite file as DIR/DATASET-PRUNER-SEED.db, for `bench/pruning_paths.py`.

Usage:
  cargo build --release -p gradus-cli
  python3 bench/tune_pruning.py [--datasets digits,mnist_5k] [--pruners none,median,asha] [--seeds 5]
      [--first-seed 0] [--keep DIR]
      [-- extra flags for gradus tune, e.g. --warmup-epochs 10]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")


def run(dataset, pruner, seed, trials, extra, keep):
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(keep, f"{dataset}-{pruner}-{seed}.db") if keep else f"{tmp}/tune.db"
        if keep:  # a kept study of an earlier run would be resumed, not run anew
            for stale in (db, db + "-wal", db + "-shm"):
                if os.path.exists(stale):
                    os.remove(stale)
        cmd = [BIN, "tune", "--data", f"builtin:{dataset}", "--trials", str(trials), "--pruner", pruner,
               "--seed", str(seed), "--storage", f"sqlite:{db}", "--json", *extra]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="digits,mnist_5k")
    ap.add_argument("--pruners", default="none,median,asha")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--keep", metavar="DIR", help="keep each study's SQLite file in DIR")
    ap.add_argument("extra", nargs="*", help="flags passed to gradus tune (after --)")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release -p gradus-cli` first")
    if args.seeds < 1:
        sys.exit("--seeds must be at least 1")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    # `none` first: the other rows are compared with it.
    pruners = sorted(args.pruners.split(","), key=lambda p: p != "none")
    extra = f", {' '.join(args.extra)}" if args.extra else ""
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"gradus tune, {args.trials} trials{extra}, seeds {seeds[0]}..{seeds[-1]}; means over seeds")
    print("| dataset | pruner | epochs trained | epoch cut vs none | best valid loss | no worse than none | seconds "
          "| best valid loss per seed | paired with none: better/worse, mean difference ± SE |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        none = None  # without a pruner (run first): mean epochs, and the best valid loss per seed
        for pruner in pruners:
            runs = [run(dataset, pruner, seed, args.trials, args.extra, args.keep) for seed in seeds]
            epochs = statistics.mean(r["epochs_trained"] for r in runs)
            losses = [r["best_value"] for r in runs]
            loss, seconds = statistics.mean(losses), statistics.mean(r["seconds"] for r in runs)
            if pruner == "none":
                none = (epochs, losses)
            compared = none is not None and pruner != "none"
            cut = f"{100 * (1 - epochs / none[0]):.0f}%" if compared else "—"
            no_worse = ("yes" if loss <= statistics.mean(none[1]) else "no") if compared else "—"
            paired = paired_with_none(losses, none[1]) if compared else "—"
            per_seed = " ".join(f"{v:.4f}" for v in losses)
            print(f"| {dataset} | {pruner} | {epochs:.0f} | {cut} | {loss:.4f} | {no_worse} | {seconds:.1f} "
                  f"| {per_seed} | {paired} |", flush=True)


def paired_with_none(losses, none):
    """Seeds better / worse than without a pruner, and the mean paired difference ± its standard error."""
    diffs = [a - b for a, b in zip(losses, none)]
    better, worse = sum(d < 0 for d in diffs), sum(d > 0 for d in diffs)
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    return f"{better}/{worse}, {statistics.mean(diffs):+.4f} ± {se:.4f}"


if __name__ == "__main__":
    main()
