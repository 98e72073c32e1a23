"""Storage overhead per trial and ask latency on PostgreSQL: gradus against
Optuna's RDB storage, on the same server, in the same run.

Each case makes a fresh database and a study, then starts W worker
processes at once; each runs trials of a no-op objective (the random sampler
suggests one float, which is the value) until the study's trials are done:
gradus workers share the study-wide budget (`Study::with_budget`, claimed in
the database), Optuna workers run an equal share each (Optuna has no shared
budget; its share is the cheaper arrangement). Timed inside each worker,
after imports and opening the study:
  - overhead per trial: the trial phase's wall time (first ask of any worker
    to the last tell of any) divided by the trials, i.e. 1 / throughput;
  - ask latency: the median and 95th percentile of `ask` (claiming a trial
    and reading what changed).
The "10,000 trials" case times one worker running trials on a study that
already holds 10,000 finished ones. Each case runs --repeat times (gradus and
Optuna alternating); the table shows the median of each figure.

Usage:  bash bench/setup.sh storage   # once: optuna and psycopg2 into bench/.venv
        bench/.venv/bin/python bench/storage_overhead.py [--trials 2000] [--optuna-trials 400]
            [--workers 1,8,32] [--prefill 10000] [--repeat 3] [--server postgres://postgres@127.0.0.1:5432]
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_storage")

OPTUNA_WORKER = r"""
import json, sys, time, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
study = optuna.load_study(study_name=name, storage=url, sampler=optuna.samplers.RandomSampler())
asks, trials = [], []
began = time.time()
for _ in range(n):
    t0 = time.perf_counter()
    trial = study.ask()
    asks.append((time.perf_counter() - t0) * 1e3)
    study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
    trials.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"trials": len(trials), "ask_ms": asks, "trial_ms": trials, "start": began, "end": time.time()}))
"""


def admin(server, sql):
    import psycopg2
    conn = psycopg2.connect(server + "/postgres")
    conn.autocommit = True
    conn.cursor().execute(sql)
    conn.close()


def fresh_db(server, name):
    admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(server, f"CREATE DATABASE {name}")
    return f"{server}/{name}"


def run_workers(commands):
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in commands]
    outs = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            sys.exit(f"a worker failed: {' '.join(p.args)}")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


def summary(outs):
    trials = sum(o["trials"] for o in outs)
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    asks = sorted(a for o in outs for a in o["ask_ms"])
    return {
        "trials": trials,
        "ms_per_trial": wall * 1e3 / trials,
        "ask_median": statistics.median(asks),
        "ask_p95": asks[int(0.95 * (len(asks) - 1))],
    }


def gradus_case(server, workers, trials, prefill=0):
    url = fresh_db(server, "bench_gradus")
    subprocess.run([BIN, url, "s", "0", "create"], check=True)
    if prefill:
        run_workers([[BIN, url, "s", str(prefill)]])
    return summary(run_workers([[BIN, url, "s", str(prefill + trials)] for _ in range(workers)]))


def optuna_case(server, workers, trials, prefill=0):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = fresh_db(server, "bench_optuna").replace("postgres://", "postgresql+psycopg2://")
    study = optuna.create_study(study_name="s", storage=url)
    if prefill:
        dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
        study.add_trials([
            optuna.trial.create_trial(params={"x": i / prefill}, distributions=dist, value=i / prefill)
            for i in range(prefill)
        ])
    del study
    share = trials // workers
    cmd = [sys.executable, "-c", OPTUNA_WORKER, url, "s", str(share)]
    return summary(run_workers([cmd for _ in range(workers)]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=2000, help="gradus trials per case")
    parser.add_argument("--optuna-trials", type=int, default=400, help="Optuna trials per case")
    parser.add_argument("--workers", default="1,8,32")
    parser.add_argument("--prefill", type=int, default=10_000)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case; the table shows medians")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "gradus", "--features", "postgres",
                    "--example", "bench_storage"], cwd=ROOT, check=True)
    import optuna
    cases = [(f"{w} worker{'s' if w > 1 else ''}", w, 0) for w in map(int, args.workers.split(","))]
    if args.prefill:
        cases.append((f"1 worker, {args.prefill:,} trials stored", 1, args.prefill))
    print(f"| case | gradus ms/trial | Optuna {optuna.__version__} ms/trial | Optuna / gradus "
          "| gradus ask ms (median, p95) | Optuna ask ms (median, p95) | Optuna / gradus (median ask) |")
    print("|---|---|---|---|---|---|---|")
    med = lambda runs: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    for label, workers, prefill in cases:
        # The two alternate, so that a slow spell of the machine hits both.
        runs = [(gradus_case(args.server, workers, args.trials, prefill),
                 optuna_case(args.server, workers, max(args.optuna_trials, workers), prefill))
                for _ in range(args.repeat)]
        g, o = med([r[0] for r in runs]), med([r[1] for r in runs])
        print(f"| {label} | {g['ms_per_trial']:.3f} | {o['ms_per_trial']:.2f} | {o['ms_per_trial'] / g['ms_per_trial']:.0f}x "
              f"| {g['ask_median']:.2f}, {g['ask_p95']:.2f} | {o['ask_median']:.1f}, {o['ask_p95']:.1f} "
              f"| {o['ask_median'] / g['ask_median']:.0f}x |", flush=True)
    admin(args.server, "DROP DATABASE IF EXISTS bench_gradus WITH (FORCE)")
    admin(args.server, "DROP DATABASE IF EXISTS bench_optuna WITH (FORCE)")


if __name__ == "__main__":
    main()
