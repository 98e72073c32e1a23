"""Per-trial overhead of a study on SQLite: gradus against Optuna, side by side.

Both run the random sampler and a no-op objective that suggests one float,
sequentially, with the study in a fresh SQLite file; the figure is wall time
per trial. Optuna uses its RDB storage (SQLAlchemy) through `sqlite:///`.

Usage:  bash bench/setup.sh   # once: optuna (and the training peers) into bench/.venv
        bench/.venv/bin/python bench/tune_overhead.py [--gradus-trials 10000] [--optuna-trials 1000]
"""
import argparse, json, os, subprocess, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_tune")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gradus-trials", type=int, default=10_000)
    parser.add_argument("--optuna-trials", type=int, default=1_000)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "gradus", "--example", "bench_tune"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([BIN, str(args.gradus_trials), os.path.join(tmp, "gradus.db")], check=True, capture_output=True, text=True)
        g = json.loads(out.stdout)
        try:
            import optuna
        except ImportError:
            print(f"gradus: {g['ms_per_trial']:.3f} ms per trial over {g['trials']} trials (optuna not installed)")
            return
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(storage=f"sqlite:///{os.path.join(tmp, 'optuna.db')}", sampler=optuna.samplers.RandomSampler(seed=0))
        start = time.perf_counter()
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=args.optuna_trials)
        o = (time.perf_counter() - start) * 1e3 / args.optuna_trials
    print(f"| storage | gradus ms/trial ({g['trials']} trials) | Optuna {optuna.__version__} ms/trial ({args.optuna_trials} trials) | Optuna / gradus |")
    print("|---|---|---|---|")
    print(f"| SQLite file | {g['ms_per_trial']:.3f} | {o:.2f} | {o / g['ms_per_trial']:.0f}x |")


if __name__ == "__main__":
    main()
