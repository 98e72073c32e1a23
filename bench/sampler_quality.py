"""Sampler quality: gradus's samplers against Optuna's on standard test functions.

Every sampler runs a study on each function of `gradus::tune::testfns`'s suite
(Branin, Hartmann-3/6, Rosenbrock-5/20, Ackley-10, Levy-10, Rastrigin-8,
Styblinski-Tang-10, Griewank-10 and a mixed integer/log/categorical function)
with the same bounds, parameter kinds and seeds, for each budget, and in the
batch setting (ROUNDS rounds of SIZE asks whose parameters are all suggested
before any is told, so the later asks of a round see the earlier ones pending).
The score of a study is log10 of its regret, best value minus the known
minimum (floored at 1e-12). The tables give, per (function, setting) and
overall, the mean log10 regret of each sampler and its average rank (ranked
among the samplers run on the same function, setting and seed; ties share the
average rank).

gradus runs through `target/release/examples/bench_samplers`; Optuna's
objective evaluates the very same Rust functions, through one long-lived
`bench_samplers serve` process per worker (a pipe round trip per trial, tens
of microseconds). The function definitions (bounds, kinds, minima) come from
`bench_samplers list`, so there is one source of truth.

Samplers are named SIDE:NAME: gradus:NAME for any NAME that `build_sampler`
in examples/bench_samplers.rs knows (random, sobol, tpe, tpe-indep, cmaes;
gradus:cmaes also runs on `mixed`, drawing the categorical at random), and
optuna:random,
optuna:tpe (TPESampler(seed): in Optuna 5 that is the multivariate TPE with
constant liar for single-objective studies), optuna:tpe-indep
(TPESampler(seed, multivariate=False): the independent TPE, Optuna 4's
default), optuna:tpe-mv (TPESampler(seed, multivariate=True): the same as
optuna:tpe in Optuna 5, so not run by default), optuna:gp (GPSampler(seed)),
optuna:cmaes (CmaEsSampler(seed), which needs the `cmaes` package; only on
all-real functions, so skipped on `mixed`). Optuna's samplers run with their
defaults otherwise. OMP/OpenBLAS/MKL threads and torch's are held to
--torch-threads (1 by default, as GPSampler's documentation advises; --jobs 2
then uses the 2 cores without oversubscribing).

Usage:
  bash bench/setup.sh      # once: optuna (with torch, scipy, cmaes) into bench/.venv
  bench/.venv/bin/python bench/sampler_quality.py                       # quick: budget 50, 3 seeds
  bench/.venv/bin/python bench/sampler_quality.py --budgets 50,200 --seeds 10 --jobs 2 \\
      --out bench/results/sampler_quality.jsonl --resume                # the full comparison
  bench/.venv/bin/python bench/sampler_quality.py --report bench/results/sampler_quality.jsonl
"""
import argparse, atexit, json, math, multiprocessing, os, subprocess, sys, time, warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_samplers")
OPTUNA_SAMPLERS = ["random", "tpe", "tpe-indep", "tpe-mv", "gp", "cmaes"]
DEFAULT_SAMPLERS = ("gradus:random,gradus:sobol,gradus:tpe,gradus:tpe-indep,gradus:cmaes,"
                    "optuna:random,optuna:tpe,optuna:tpe-indep,optuna:gp,optuna:cmaes")
FLOOR = 1e-12


def log10_regret(regret):
    return math.log10(max(regret, FLOOR))


# --- the functions, from the Rust side ---------------------------------------

def load_specs():
    out = subprocess.run([BIN, "list"], check=True, capture_output=True, text=True).stdout
    return {s["name"]: s for s in map(json.loads, out.splitlines())}


class Evaluator:
    """A `bench_samplers serve` process: f(x) for any suite function."""

    def __init__(self):
        self.proc = subprocess.Popen([BIN, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        atexit.register(self.close)

    def __call__(self, name, x):
        self.proc.stdin.write(name + " " + " ".join(repr(float(v)) for v in x) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        if not reply or reply.startswith("error"):
            raise RuntimeError(f"bench_samplers serve: {reply or 'no reply'} for {name} {x}")
        return float(reply)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


_EVALUATOR = None


def evaluator():
    global _EVALUATOR
    if _EVALUATOR is None:
        _EVALUATOR = Evaluator()
    return _EVALUATOR


# --- one study ----------------------------------------------------------------

def setting_label(budget, batch):
    return str(budget) if batch == 1 else f"{budget // batch}x{batch}"


def run_gradus(name, spec, budget, batch, seed):
    cmd = [BIN, name, spec["name"], str(budget), str(seed)] + (["--batch", str(batch)] if batch > 1 else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
    r = json.loads(out.stdout)
    return r["best"], r["seconds"], r["trials"]


def optuna_sampler(name, seed):
    import optuna
    s = optuna.samplers
    if name == "random":
        return s.RandomSampler(seed=seed)
    if name == "tpe":
        return s.TPESampler(seed=seed)
    if name == "tpe-indep":
        return s.TPESampler(seed=seed, multivariate=False)
    if name == "tpe-mv":
        return s.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return s.GPSampler(seed=seed)
    if name == "cmaes":
        return s.CmaEsSampler(seed=seed)
    raise ValueError(f"unknown Optuna sampler '{name}' (known: {', '.join(OPTUNA_SAMPLERS)})")


def suggest(trial, spec):
    """The point as the function takes it, each parameter suggested by its kind."""
    x = []
    for p in spec["params"]:
        kind, name = p["kind"], p["name"]
        if kind == "float":
            x.append(trial.suggest_float(name, p["low"], p["high"]))
        elif kind == "log_float":
            x.append(trial.suggest_float(name, p["low"], p["high"], log=True))
        elif kind == "int":
            x.append(float(trial.suggest_int(name, int(p["low"]), int(p["high"]))))
        elif kind == "categorical":
            x.append(float(p["choices"].index(trial.suggest_categorical(name, p["choices"]))))
        else:
            raise ValueError(f"unknown parameter kind {kind}")
    return x


def run_optuna(name, spec, budget, batch, seed):
    import optuna
    f = evaluator()
    study = optuna.create_study(direction="minimize", sampler=optuna_sampler(name, seed))
    start = time.perf_counter()
    if batch == 1:
        study.optimize(lambda t: f(spec["name"], suggest(t, spec)), n_trials=budget)
    else:
        for _ in range(budget // batch):
            pending = []
            for _ in range(batch):
                trial = study.ask()
                pending.append((trial, suggest(trial, spec)))
            for trial, x in pending:
                study.tell(trial, f(spec["name"], x))
    seconds = time.perf_counter() - start
    return study.best_value, seconds, len(study.trials)


def init_worker(torch_threads):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*CmaEsSampler.*")
    try:
        import torch
        torch.set_num_threads(torch_threads)
    except ImportError:
        pass


def run_task(task, spec):
    side, name = task["sampler"].split(":", 1)
    run = run_gradus if side == "gradus" else run_optuna
    best, seconds, trials = run(name, spec, task["budget"], task["batch"], task["seed"])
    regret = best - spec["min_value"]
    return dict(task, best=best, regret=regret, log10_regret=log10_regret(regret), seconds=seconds, trials=trials)


def task_key(t):
    return (t["sampler"], t["function"], t["budget"], t["batch"], t["seed"])


# --- the tables -------------------------------------------------------------

def average_ranks(scores):
    """Ranks of {sampler: score}, 1 = lowest, ties sharing their average rank."""
    order = sorted(scores, key=scores.get)
    ranks, i = {}, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def report(results, samplers, functions, settings):
    present = [s for s in samplers if any(r["sampler"] == s for r in results)]
    by = defaultdict(dict)  # (function, setting, seed) -> sampler -> log10 regret
    seconds = defaultdict(list)  # (sampler, setting) -> seconds
    for r in results:
        setting = setting_label(r["budget"], r["batch"])
        by[(r["function"], setting, r["seed"])][r["sampler"]] = r["log10_regret"]
        seconds[(r["sampler"], setting)].append(r["seconds"])
    regret = defaultdict(list)  # (function, setting, sampler) -> [log10 regret]
    rank = defaultdict(list)
    for (function, setting, _), scores in by.items():
        for s, v in average_ranks(scores).items():
            rank[(function, setting, s)].append(v)
            regret[(function, setting, s)].append(scores[s])

    def rows(table, lower_better=True):
        lines = ["| function | setting | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
        groups = [(f, st, [(f, st)]) for f in functions for st in settings]
        groups += [("**all**", st, [(f, st) for f in functions]) for st in settings]
        if len(settings) > 1:
            groups.append(("**all**", "all", [(f, st) for f in functions for st in settings]))
        for label, st, cells in groups:
            values = {s: [v for (f, c) in cells for v in table[(f, c, s)]] for s in present}
            means = {s: mean(v) for s, v in values.items() if v}
            if not means:
                continue
            best = min(means.values()) if lower_better else max(means.values())
            text = []
            for s in present:
                if s not in means:
                    text.append("—")
                else:
                    cell = f"{means[s]:.2f}"
                    text.append(f"**{cell}**" if f"{means[s]:.2f}" == f"{best:.2f}" else cell)
            lines.append(f"| {label} | {st} | " + " | ".join(text) + " |")
        return "\n".join(lines)

    n_seeds = len({r["seed"] for r in results})
    ran = {s: {r["function"] for r in results if r["sampler"] == s} for s in present}
    partial = [s for s in present if ran[s] != set(functions)]
    if partial:
        print(f"\n— : not run. {', '.join(partial)} ran on fewer functions; the **all** rows average over "
              "the functions each sampler ran, so compare those columns on the per-function rows.")
    print(f"\n### Mean log10 regret (lower is better; floor {math.log10(FLOOR):.0f}), {n_seeds} seeds\n")
    print(rows(regret))
    print("\n### Average rank (1 = best; ranked per function, setting and seed among the samplers run there)\n")
    print(rows(rank))
    print("\n### Seconds per study (mean over functions and seeds; total in brackets)\n")
    print("| setting | " + " | ".join(present) + " |")
    print("|---|" + "---|" * len(present))
    for st in settings:
        cells = []
        for s in present:
            v = seconds.get((s, st), [])
            cells.append(f"{mean(v):.3f} ({sum(v):.0f})" if v else "—")
        print(f"| {st} | " + " | ".join(cells) + " |")
    total = {s: sum(v for (s2, _), vs in seconds.items() if s2 == s for v in vs) for s in present}
    print("| **total** | " + " | ".join(f"{total[s]:.0f} s" for s in present) + " |")


# --- main -------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--functions", default="all", help="comma-separated suite names, or 'all'")
    p.add_argument("--budgets", default="50", help="comma-separated sequential budgets (the full run: 50,200)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (the full run: 10)")
    p.add_argument("--batch-rounds", type=int, default=16, help="rounds of the batch setting; 0 leaves it out")
    p.add_argument("--batch-size", type=int, default=8, help="asks per round in the batch setting")
    p.add_argument("--samplers", default=DEFAULT_SAMPLERS, help="comma-separated SIDE:NAME")
    p.add_argument("--jobs", type=int, default=1, help="studies run at once (processes)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads per process (GPSampler)")
    p.add_argument("--out", help="append every study's result to this JSON-lines file")
    p.add_argument("--resume", action="store_true", help="skip the studies already in --out")
    p.add_argument("--report", help="only print the tables for this JSON-lines file")
    p.add_argument("--no-build", action="store_true", help="use the bench_samplers binary as it is")
    args = p.parse_args()
    # Before anything imports torch or numpy: torch reads these once, at import.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.torch_threads)

    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if args.report:
        with open(args.report) as fh:
            results = [json.loads(line) for line in fh if line.strip()]
        seen = list(dict.fromkeys(r["sampler"] for r in results))
        samplers = [s for s in samplers if s in seen] + [s for s in seen if s not in samplers]
        functions = list(dict.fromkeys(r["function"] for r in results))
        settings = sorted({(r["batch"], r["budget"]) for r in results})
        report(results, samplers, functions, [setting_label(b, k) for k, b in settings])
        return

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "gradus", "--example", "bench_samplers"],
                       cwd=ROOT, check=True)
    specs = load_specs()
    for s in samplers:
        side, _, name = s.partition(":")
        if side not in ("gradus", "optuna") or not name or (side == "optuna" and name not in OPTUNA_SAMPLERS):
            p.error(f"unknown sampler '{s}': use gradus:NAME or optuna:{{{','.join(OPTUNA_SAMPLERS)}}}")

    # Unknown samplers and missing optional packages: fail now rather than an hour in.
    for s in samplers:
        if s.startswith("gradus:"):
            check = subprocess.run([BIN, s.split(":", 1)[1], "branin", "1", "0"], capture_output=True, text=True)
            if check.returncode != 0:
                p.error(check.stderr.strip())
    needs = {"optuna:cmaes": "cmaes", "optuna:gp": "scipy"}
    for s in samplers:
        if s.startswith("optuna:"):
            for module in ["optuna"] + ([needs[s]] if s in needs else []) + (["torch"] if s == "optuna:gp" else []):
                try:
                    __import__(module)
                except ImportError:
                    p.error(f"{s} needs the Python package '{module}' (bash bench/setup.sh installs it)")
    if "optuna:gp" in samplers:
        try:
            import greenlet  # noqa: F401
        except ImportError:
            print("warning: without the 'greenlet' package Optuna's GPSampler optimises its acquisition "
                  "sequentially and runs slower (bash bench/setup.sh installs it)", file=sys.stderr)

    functions = list(specs) if args.functions == "all" else [f.strip() for f in args.functions.split(",")]
    for f in functions:
        if f not in specs:
            p.error(f"unknown function '{f}' (the suite: {', '.join(specs)})")
    settings = [(int(b), 1) for b in args.budgets.split(",") if b.strip()]
    if args.batch_rounds > 0:
        settings.append((args.batch_rounds * args.batch_size, args.batch_size))

    # The Optuna side evaluates through `serve`: check it agrees with the known minima.
    for f in functions:
        value = evaluator()(f, specs[f]["minimiser"])
        assert abs(value - specs[f]["min_value"]) < 1e-6, f"{f}: f(minimiser) = {value}, not {specs[f]['min_value']}"

    tasks = []
    for f in functions:
        for budget, batch in settings:
            for seed in range(args.seeds):
                for s in samplers:
                    if s == "optuna:cmaes" and not specs[f]["continuous"]:
                        continue
                    tasks.append(dict(sampler=s, function=f, budget=budget, batch=batch, seed=seed))

    results = []
    if args.out and args.resume and os.path.exists(args.out):
        with open(args.out) as fh:
            done = {task_key(r): r for r in map(json.loads, filter(str.strip, fh))}
        results = [done[task_key(t)] for t in tasks if task_key(t) in done]
        tasks = [t for t in tasks if task_key(t) not in done]
        print(f"resuming: {len(results)} studies done, {len(tasks)} to run", file=sys.stderr)
    # The slow samplers first, so parallel workers finish together.
    cost = {"optuna:gp": 0, "optuna:tpe-mv": 1, "optuna:tpe": 1, "optuna:tpe-indep": 2, "optuna:cmaes": 3}
    tasks.sort(key=lambda t: (cost.get(t["sampler"], 9), -t["budget"]))

    out = open(args.out, "a") if args.out else None
    started = time.perf_counter()

    def record(i, r):
        results.append(r)
        if out:
            out.write(json.dumps(r) + "\n")
            out.flush()
        print(f"[{i}/{len(tasks)}] {r['sampler']} {r['function']} {setting_label(r['budget'], r['batch'])} "
              f"seed {r['seed']}: log10 regret {r['log10_regret']:.2f} ({r['seconds']:.2f} s; "
              f"{time.perf_counter() - started:.0f} s elapsed)", file=sys.stderr)

    if args.jobs <= 1:
        init_worker(args.torch_threads)
        for i, t in enumerate(tasks, 1):
            record(i, run_task(t, specs[t["function"]]))
    else:
        context = multiprocessing.get_context("spawn")  # fresh workers: no forked torch or pipes
        with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=init_worker,
                                 initargs=(args.torch_threads,)) as pool:
            futures = [pool.submit(run_task, t, specs[t["function"]]) for t in tasks]
            for i, fut in enumerate(as_completed(futures), 1):
                record(i, fut.result())
    if out:
        out.close()
    import optuna
    print(f"\nOptuna {optuna.__version__}; functions: {', '.join(functions)}; "
          f"wall time {time.perf_counter() - started:.0f} s with {args.jobs} job(s)")
    report(results, samplers, functions, [setting_label(b, k) for b, k in settings])


if __name__ == "__main__":
    main()
