"""Sampler cost: the time of one ask+tell once a study holds many finished trials.

Each case fills an in-memory study with TRIALS finished trials over PARAMS
floats in [-5, 5] (the sphere, at random points), then times ASKS cycles of
ask, suggest every parameter, tell, with the sampler under test. gradus runs
through `target/release/examples/bench_samplers cost`; Optuna 5's trials are
added with `study.add_trials` (no sampling). Both run single-threaded
(torch, OpenMP and BLAS held to one thread). The table gives the median
milliseconds per cycle on each side and the ratio Optuna / gradus.

The cases are those of the search-quality issue's cost targets:
  tpe  at 1,000 trials, 10 params   (gradus ≤ 1/50 of Optuna TPESampler's)
  gp   at   200 trials, 10 params   (gradus ≤ 1/10 of Optuna GPSampler's)
  tpe  at 10,000 trials, 10 params  (gradus ≤ 5 ms; Optuna shown for scale)

Usage:
  bash bench/setup.sh          # once: optuna (with torch, scipy) into bench/.venv
  cargo build --release --examples -p gradus
  bench/.venv/bin/python bench/sampler_cost.py [--asks 20] [--optuna-asks 10]
"""
import argparse, json, os, random, statistics, subprocess, sys, time, warnings

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_samplers")
CASES = [("tpe", 1000, 10), ("gp", 200, 10), ("tpe", 10000, 10)]


def gradus_ms(sampler, trials, params, asks):
    out = subprocess.run([BIN, "cost", sampler, str(trials), str(params), str(asks)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_ms"]


def optuna_ms(sampler, trials, params, asks):
    import optuna
    from optuna.distributions import FloatDistribution
    names = [f"x{i}" for i in range(params)]
    dist = FloatDistribution(-5.0, 5.0)
    rng = random.Random(0)
    history = []
    for _ in range(trials):
        x = {n: rng.uniform(-5.0, 5.0) for n in names}
        history.append(optuna.trial.create_trial(params=x, distributions={n: dist for n in names},
                                                 value=sum(v * v for v in x.values())))
    s = optuna.samplers.TPESampler(seed=0) if sampler == "tpe" else optuna.samplers.GPSampler(seed=0)
    study = optuna.create_study(direction="minimize", sampler=s)
    study.add_trials(history)
    times = []
    for _ in range(asks):
        start = time.perf_counter()
        trial = study.ask()
        value = sum(trial.suggest_float(n, -5.0, 5.0) ** 2 for n in names)
        study.tell(trial, value)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--asks", type=int, default=20, help="gradus cycles timed per case (median)")
    ap.add_argument("--optuna-asks", type=int, default=10, help="Optuna cycles timed per case (median)")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release --examples -p gradus` first")
    import optuna, torch
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    torch.set_num_threads(1)
    print(f"optuna {optuna.__version__}; median ms per ask+tell (ask, suggest every parameter, tell)")
    print("| sampler | finished trials | params | gradus ms | Optuna ms | Optuna / gradus |")
    print("|---|---|---|---|---|---|")
    for sampler, trials, params in CASES:
        g = gradus_ms(sampler, trials, params, args.asks)
        o = optuna_ms(sampler, trials, params, args.optuna_asks)
        print(f"| {sampler} | {trials} | {params} | {g:.3f} | {o:.1f} | {o / g:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
