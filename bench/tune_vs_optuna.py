"""`gradus tune` against Optuna (TPE) + PyTorch: the same search, the same rows, test accuracy and wall time.

Both sides tune the same space (gradus's default for a classification target,
`crates/gradus/src/autotune.rs`: model softmax|mlp, scaling standard|minmax,
optimizer sgd|momentum|adam|adamw, lr 1e-4..0.3 log, batch_size 16..256 log,
weight_decay 1e-6..0.1 log, schedule constant|cosine, and for the MLP n_layers
1..3, width 16..512 log, activation relu|tanh|gelu, dropout 0..0.5), start from
the same enqueued defaults, and run the same number of trials on exactly the
same rows: the test rows held out of the search, and each trial's training and
validation rows (taken from gradus's own split by the `bench_splits` example).
Each trial trains for up to 100 epochs with early stopping (patience 10,
best weights restored) and reports its validation loss every epoch to the
pruner: Optuna's SuccessiveHalvingPruner with gradus's rungs (10, 30, 90
epochs, keep a third), against gradus's default ASHA. The best trial is then
retrained on the training and validation rows for its best epoch count and
scored once on the test rows — on the Optuna side, as an Optuna user would;
gradus by default averages its 10 best trials so retrained (`--ensemble 10`),
which is part of what is compared.

Each side uses the machine the way it does by default on 2 cores: gradus
runs 2 trials at once on threads, each single-threaded, in its reproducible
ordered schedule; Optuna runs one trial at a time and PyTorch uses its
default intra-op threads. The gradus figures with `--schedule greedy` (no
thread waits, the study varies from run to run) and with `--jobs 1` are
printed too.

Usage:
  bash bench/setup.sh                                  # once: optuna, torch into bench/.venv
  cargo build --release -p gradus-cli && cargo build --release -p gradus --example bench_splits
  bench/.venv/bin/python bench/tune_vs_optuna.py [--dataset digits] [--trials 60] [--seeds 0,1,2] [--repeats 3]
"""
import argparse, json, math, os, statistics, subprocess, sys, tempfile, time, gzip

import numpy as np
import optuna
import torch
import torch.nn as nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")
SPLITS = os.path.join(ROOT, "target", "release", "examples", "bench_splits")
MAX_EPOCHS, PATIENCE, WARMUP = 100, 10, 10


def load(dataset):
    with gzip.open(os.path.join(ROOT, "crates", "gradus-data", "data", f"{dataset}.csv.gz"), "rt") as f:
        f.readline()  # the header
        rows = np.loadtxt(f, delimiter=",", dtype=np.float64)
    x, labels = rows[:, :-1], rows[:, -1]
    classes = np.unique(labels)
    return x.astype(np.float32), np.searchsorted(classes, labels).astype(np.int64), len(classes)


def splits(dataset, seed):
    out = subprocess.run([SPLITS, f"builtin:{dataset}", "0.2", "0.2", str(seed)], capture_output=True, text=True, check=True)
    s = json.loads(out.stdout)
    return np.array(s["train"]), np.array(s["valid"]), np.array(s["test"])


def scale(kind, fit_rows, *others):
    if kind == "minmax":
        lo, hi = fit_rows.min(0), fit_rows.max(0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        f = lambda a: (a - lo) / span
    else:
        mean, std = fit_rows.mean(0), fit_rows.std(0)
        std = np.where(std > 0, std, 1.0)
        f = lambda a: (a - mean) / std
    return [torch.from_numpy(f(a).astype(np.float32)) for a in (fit_rows, *others)]


def build(params, n_in, n_out):
    if params["model"] == "softmax":
        return nn.Linear(n_in, n_out)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[params["activation"]]
    layers, width = [], params["width"]
    for i in range(params["n_layers"]):
        layers += [nn.Linear(n_in if i == 0 else width, width), act()]
        if params["dropout"] > 0:
            layers.append(nn.Dropout(params["dropout"]))
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def optimizer(params, model):
    lr, wd = params["lr"], params["weight_decay"]
    return {
        "sgd": lambda: torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd),
        "momentum": lambda: torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd),
        "adam": lambda: torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd),
        "adamw": lambda: torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd),
    }[params["optimizer"]]()


def train(params, xtr, ytr, xva, yva, n_out, seed, epochs, report=None):
    """Trains; with validation rows, early stopping restores the best epoch's
    weights. `report(epoch, loss)` may raise optuna.TrialPruned."""
    torch.manual_seed(seed)
    model = build(params, xtr.shape[1], n_out)
    opt = optimizer(params, model)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, MAX_EPOCHS) if params["schedule"] == "cosine" else None
    return fit(model, opt, sched, params["batch_size"], xtr, ytr, xva, yva, seed, epochs, PATIENCE, report)


def fit(model, opt, sched, batch_size, xtr, ytr, xva, yva, seed, epochs, patience, report=None, augment=None):
    """The training loop (also bench/tune_cnn_vs_optuna.py's): shuffled batches drawn from a
    generator seeded with `seed`, cross-entropy, the schedule stepped each epoch; with validation
    rows, the loss reported each epoch (`report(epoch, loss)` may raise optuna.TrialPruned) and
    early stopping after `patience` epochs without improvement, restoring the best epoch's
    weights. `augment(batch, generator)`, if given, perturbs each training batch.
    Returns the model, the best validation loss and its epoch."""
    gen = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, waited = math.inf, 0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in torch.randperm(len(xtr), generator=gen).split(batch_size):
            opt.zero_grad(set_to_none=True)
            inputs = augment(xtr[idx], gen) if augment else xtr[idx]
            nn.functional.cross_entropy(model(inputs), ytr[idx]).backward()
            opt.step()
        if sched:
            sched.step()
        if xva is None:
            continue
        model.eval()
        with torch.no_grad():
            v = nn.functional.cross_entropy(model(xva), yva).item()
        if not math.isfinite(v):
            raise optuna.TrialPruned() if report else RuntimeError("diverged")
        if report:
            report(epoch, v)
        if v < best:
            best, best_epoch, waited = v, epoch, 0
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best, best_epoch


def starting_points():
    base = {"optimizer": "adam", "weight_decay": 1e-4, "schedule": "constant"}
    points = []
    for model in ["softmax", "mlp"]:
        for scaling in ["standard", "minmax"]:
            p = {"model": model, "scaling": scaling, **base}
            if model == "mlp":
                p.update(lr=1e-3, batch_size=64, n_layers=2, width=256, activation="relu", dropout=0.1)
            else:
                p.update(lr=1e-2, batch_size=32)
            points.append(p)
    return points


def optuna_side(dataset, seed, trials):
    x, y, n_out = load(dataset)
    tr, va, te = splits(dataset, seed)
    start = time.perf_counter()

    def suggest(trial):
        p = {"model": trial.suggest_categorical("model", ["softmax", "mlp"]),
             "scaling": trial.suggest_categorical("scaling", ["standard", "minmax"]),
             "optimizer": trial.suggest_categorical("optimizer", ["sgd", "momentum", "adam", "adamw"]),
             "lr": trial.suggest_float("lr", 1e-4, 0.3, log=True),
             "batch_size": trial.suggest_int("batch_size", 16, 256, log=True),
             "weight_decay": trial.suggest_float("weight_decay", 1e-6, 0.1, log=True),
             "schedule": trial.suggest_categorical("schedule", ["constant", "cosine"])}
        if p["model"] == "mlp":
            p.update(n_layers=trial.suggest_int("n_layers", 1, 3),
                     width=trial.suggest_int("width", 16, 512, log=True),
                     activation=trial.suggest_categorical("activation", ["relu", "tanh", "gelu"]),
                     dropout=trial.suggest_float("dropout", 0.0, 0.5))
        return p

    def objective(trial):
        p = suggest(trial)
        xtr, xva = scale(p["scaling"], x[tr], x[va])

        def report(epoch, v):
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        _, best, best_epoch = train(p, xtr, torch.from_numpy(y[tr]), xva, torch.from_numpy(y[va]), n_out, seed,
                                    MAX_EPOCHS, report)
        trial.set_user_attr("best_epoch", best_epoch)
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=WARMUP, reduction_factor=3))
    for p in starting_points():
        study.enqueue_trial(p)
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    p = suggest(optuna.trial.FixedTrial(best.params))
    fit = np.concatenate([tr, va])
    xfit, xte = scale(p["scaling"], x[fit], x[te])
    model, _, _ = train(p, xfit, torch.from_numpy(y[fit]), None, None, n_out, seed, best.user_attrs["best_epoch"])
    model.eval()
    with torch.no_grad():
        accuracy = (model(xte).argmax(1).numpy() == y[te]).mean()
    wall = time.perf_counter() - start
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {"accuracy": float(accuracy), "wall": wall, "best_valid_loss": best.value, "pruned": pruned}


def gradus_side(dataset, seed, trials, extra):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [BIN, "tune", "--data", f"builtin:{dataset}", "--trials", str(trials), "--seed", str(seed),
               "--storage", f"sqlite:{tmp}/tune.db", "--json", "-q", *extra]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
    s = json.loads(out.stdout.strip().splitlines()[-1])
    return {"accuracy": s["test_metrics"]["accuracy"], "wall": wall, "best_valid_loss": s["best_value"],
            "pruned": s["trials"]["pruned"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of gradus per seed, with its defaults and with --schedule greedy (whose result "
                         "varies run to run); the totals take each seed's median time and mean accuracy")
    args = ap.parse_args()
    for path in (BIN, SPLITS):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `cargo build --release -p gradus-cli && cargo build --release -p gradus --example bench_splits`")
    print(f"{args.dataset}, {args.trials} trials; torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"optuna {optuna.__version__}")
    print("| seed | side | test accuracy | best valid loss | pruned | wall s | Optuna / side |")
    print("|---|---|---|---|---|---|---|")
    gradus_sides = {"gradus": ([], max(1, args.repeats)),
                    "gradus --schedule greedy": (["--schedule", "greedy"], max(1, args.repeats)),
                    "gradus --jobs 1": (["--jobs", "1"], 1)}
    walls = {**{side: [] for side in gradus_sides}, "optuna+torch": []}
    accs = {k: [] for k in walls}
    for seed in map(int, args.seeds.split(",")):
        results = {side: [gradus_side(args.dataset, seed, args.trials, extra) for _ in range(n)]
                   for side, (extra, n) in gradus_sides.items()}
        results["optuna+torch"] = [optuna_side(args.dataset, seed, args.trials)]
        optuna_wall = results["optuna+torch"][0]["wall"]
        for side, rs in results.items():
            walls[side].append(statistics.median(r["wall"] for r in rs))
            accs[side].append(statistics.mean(r["accuracy"] for r in rs))
            for r in rs:
                print(f"| {seed} | {side} | {r['accuracy']:.4f} | {r['best_valid_loss']:.4f} | {r['pruned']} | "
                      f"{r['wall']:.1f} | {optuna_wall / r['wall']:.1f}x |", flush=True)
    print()
    print("| side | mean test accuracy | total wall s | Optuna / side (totals) |")
    print("|---|---|---|---|")
    opt = sum(walls["optuna+torch"])
    for side in walls:
        w = sum(walls[side])
        print(f"| {side} | {statistics.mean(accs[side]):.4f} | {w:.1f} | {opt / w:.1f}x |")


if __name__ == "__main__":
    main()
