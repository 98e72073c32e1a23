"""`gradus tune --model cnn` against Optuna (TPE + median pruner) + PyTorch on mnist_5k: the same
CNN search, the same rows, test accuracy and wall time, side by side in one run.

Both sides search gradus's CNN space (`crates/gradus/src/autotune/space.rs`): conv_layers 1..3
stages of a 3x3 convolution (padding 1), [BatchNorm2d], ReLU and 2x2 pooling, channels 8..64 (log,
the first stage's, doubling at each stage), pooling max|avg, normalization none|batch, one hidden
Dense layer of width 16..512 (log) with ReLU and dropout 0..0.5, random shifts of up to `shift`
pixels (0..2, bilinear, zero fill) of each training image, optimizer sgd|momentum|adam|adamw, lr
1e-4..0.3 (log), batch_size 16..256 (log), weight_decay 1e-6..0.1 (log), schedule
constant|cosine; both start from gradus's enqueued default network (2 stages of 32 channels, max
pooling, width 128, dropout 0.25, Adam 1e-3, batches of 64, every pixel scaled alike). The
pixels' scaling is searched as gradus searches it on images: standard|minmax, each pixel by its own
training rows (a pixel constant there is left as it is, less its mean), or global, every pixel by
the training rows' one minimum and maximum. The rows are exactly
gradus's: the test rows held out of the search, and each trial's training and validation rows
(from gradus's own split, the `bench_splits` example).

Each trial trains for up to --epochs epochs with early stopping (--patience, best weights
restored) and reports its validation loss every epoch to its pruner: Optuna's MedianPruner (its
defaults: 5 startup trials), gradus's default ASHA. Optuna's best trial is then retrained on the
training and validation rows for its best epoch count and scored once on the test rows, as an
Optuna user would; gradus averages its best trials so retrained (its default), which is part of
what is compared. Each side uses the machine as it does by default on 2 cores: gradus two trials
at once, each on one thread; Optuna one trial at a time, PyTorch with its default threads.

Usage:
  bash bench/setup.sh                                  # once: optuna, torch into bench/.venv
  cargo build --release -p gradus-cli && cargo build --release -p gradus --example bench_splits
  bench/.venv/bin/python bench/tune_cnn_vs_optuna.py [--trials 30] [--epochs 30] [--patience 5] [--seed 0]
  bench/.venv/bin/python bench/tune_cnn_vs_optuna.py --equal-time --seed 1   # gradus given Optuna's time, and a fifth
"""
import argparse, gzip, json, os, subprocess, sys, tempfile, time

import numpy as np
import optuna
import torch
import torch.nn as nn
import torch.nn.functional as F

from tune_vs_optuna import fit, optimizer  # the same training loop and four optimizers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")
SPLITS = os.path.join(ROOT, "target", "release", "examples", "bench_splits")
DATASET = "mnist_5k"


def load():
    with gzip.open(os.path.join(ROOT, "crates", "gradus-data", "data", f"{DATASET}.csv.gz"), "rt") as f:
        f.readline()  # the header
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return rows[:, :-1], rows[:, -1].astype(np.int64)


def splits(seed):
    out = subprocess.run([SPLITS, f"builtin:{DATASET}", "0.2", "0.2", str(seed)], capture_output=True, text=True,
                         check=True)
    s = json.loads(out.stdout)
    return np.array(s["train"]), np.array(s["valid"]), np.array(s["test"])


def scaled(kind, fit_rows, *others):
    """Each pixel scaled by the fit rows' statistics of that pixel, as gradus's `standard` and
    `minmax` scalings do, or all by the fit rows' one range (`global`); as images of 1x28x28."""
    if kind == "global":
        lo, hi = fit_rows.min(), fit_rows.max()
        span = hi - lo if hi > lo else 1.0
        f = lambda a: (a - lo) / span
    elif kind == "minmax":
        lo, hi = fit_rows.min(0), fit_rows.max(0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        f = lambda a: (a - lo) / span
    else:
        mean, std = fit_rows.mean(0), fit_rows.std(0)
        std = np.where(std > 0, std, 1.0)
        f = lambda a: (a - mean) / std
    return [torch.from_numpy(f(a).astype(np.float32)).reshape(-1, 1, 28, 28) for a in (fit_rows, *others)]


def build(p):
    layers, c_in, side = [], 1, 28
    for i in range(p["conv_layers"]):
        c_out = p["channels"] << i
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
        if p["normalization"] == "batch":
            layers.append(nn.BatchNorm2d(c_out))
        layers += [nn.ReLU(), nn.MaxPool2d(2) if p["pooling"] == "max" else nn.AvgPool2d(2)]
        c_in, side = c_out, side // 2
    layers += [nn.Flatten(), nn.Linear(c_in * side * side, p["width"]), nn.ReLU()]
    if p["dropout"] > 0:
        layers.append(nn.Dropout(p["dropout"]))
    layers.append(nn.Linear(p["width"], 10))
    return nn.Sequential(*layers)


def shifted(x, shift, gen):
    """Each image moved by a uniform random shift in [-shift, shift] pixels each way (bilinear, zero fill)."""
    if shift <= 0:
        return x
    n = x.shape[0]
    d = (torch.rand(n, 2, generator=gen) * 2 - 1) * shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = d * 2.0 / 28.0  # pixels to the grid's [-1, 1] coordinates
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def train(p, xtr, ytr, xva, yva, seed, epochs, max_epochs, patience, report=None):
    """Trains; with validation rows, early stopping restores the best epoch's weights.
    `report(epoch, loss)` may raise optuna.TrialPruned."""
    torch.manual_seed(seed)
    model = build(p)
    opt = optimizer(p, model)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max_epochs) if p["schedule"] == "cosine" else None
    return fit(model, opt, sched, p["batch_size"], xtr, ytr, xva, yva, seed, epochs, patience, report,
               augment=lambda x, gen: shifted(x, p["shift"], gen))


SCALINGS = ["standard", "minmax", "global"]  # gradus's default scaling choices on images

DEFAULT = {"optimizer": "adam", "weight_decay": 1e-4, "schedule": "constant", "lr": 1e-3, "batch_size": 64,
           "conv_layers": 2, "channels": 32, "pooling": "max", "normalization": "none", "width": 128,
           "dropout": 0.25, "shift": 0.0}


def optuna_side(seed, trials, epochs, patience):
    x, y = load()
    tr, va, te = splits(seed)
    start = time.perf_counter()

    def suggest(trial):
        return {"scaling": trial.suggest_categorical("scaling", SCALINGS),
                "optimizer": trial.suggest_categorical("optimizer", ["sgd", "momentum", "adam", "adamw"]),
                "lr": trial.suggest_float("lr", 1e-4, 0.3, log=True),
                "batch_size": trial.suggest_int("batch_size", 16, 256, log=True),
                "weight_decay": trial.suggest_float("weight_decay", 1e-6, 0.1, log=True),
                "schedule": trial.suggest_categorical("schedule", ["constant", "cosine"]),
                "conv_layers": trial.suggest_int("conv_layers", 1, 3),
                "channels": trial.suggest_int("channels", 8, 64, log=True),
                "pooling": trial.suggest_categorical("pooling", ["max", "avg"]),
                "normalization": trial.suggest_categorical("normalization", ["none", "batch"]),
                "width": trial.suggest_int("width", 16, 512, log=True),
                "dropout": trial.suggest_float("dropout", 0.0, 0.5),
                "shift": trial.suggest_float("shift", 0.0, 2.0)}

    data = {kind: scaled(kind, x[tr], x[va]) for kind in SCALINGS}
    ytr, yva = torch.from_numpy(y[tr]), torch.from_numpy(y[va])

    def objective(trial):
        p = suggest(trial)
        xtr, xva = data[p["scaling"]]

        def report(epoch, v):
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        _, best, best_epoch = train(p, xtr, ytr, xva, yva, seed, epochs, epochs, patience, report)
        trial.set_user_attr("best_epoch", best_epoch)
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner())
    study.enqueue_trial({**DEFAULT, "scaling": "global"})
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    p = suggest(optuna.trial.FixedTrial(best.params))
    fit = np.concatenate([tr, va])
    xfit, xte = scaled(p["scaling"], x[fit], x[te])
    model, _, _ = train(p, xfit, torch.from_numpy(y[fit]), None, None, seed, best.user_attrs["best_epoch"], epochs,
                        patience)
    model.eval()
    with torch.no_grad():
        accuracy = (model(xte).argmax(1).numpy() == y[te]).mean()
    wall = time.perf_counter() - start
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {"accuracy": float(accuracy), "wall": wall, "best_valid_loss": best.value, "pruned": pruned}


def gradus_side(seed, trials, epochs, patience, extra):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [BIN, "tune", "--data", f"builtin:{DATASET}", "--model", "cnn", "--trials", str(trials),
               "--epochs", str(epochs), "--patience", str(patience), "--seed", str(seed),
               "--storage", f"sqlite:{tmp}/tune.db", "--json", "-q", *extra]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
    s = json.loads(out.stdout.strip().splitlines()[-1])
    return {"accuracy": s["test_metrics"]["accuracy"], "wall": wall, "best_valid_loss": s["best_value"],
            "pruned": s["trials"]["pruned"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-optuna", action="store_true")
    ap.add_argument("--equal-time", action="store_true",
                    help="run Optuna first, then gradus with Optuna's wall time as its --timeout "
                         "(and also at a fifth of it), instead of gradus's 30 trials")
    ap.add_argument("extra", nargs="*", help="flags passed to gradus tune (after --)")
    args = ap.parse_args()
    for path in (BIN, SPLITS):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `cargo build --release -p gradus-cli && "
                     f"cargo build --release -p gradus --example bench_splits`")
    print(f"{DATASET}, {args.trials} trials of at most {args.epochs} epochs (patience {args.patience}), seed "
          f"{args.seed}; torch {torch.__version__} ({torch.get_num_threads()} threads), optuna {optuna.__version__}")
    print("| side | test accuracy | best valid loss | pruned | wall s | Optuna / side |")
    print("|---|---|---|---|---|---|")
    sides = {}
    if args.equal_time:
        # gradus's budget is the time Optuna took: --trials only bounds it.
        sides["optuna+torch"] = optuna_side(args.seed, args.trials, args.epochs, args.patience)
        wall = sides["optuna+torch"]["wall"]
        for share, name in ((1.0, "Optuna's time"), (0.2, "a fifth of it")):
            timeout = ["--timeout", f"{wall * share:.0f}s"]
            sides[f"gradus --timeout {wall * share:.0f}s ({name})"] = gradus_side(
                args.seed, 10_000, args.epochs, args.patience, timeout + args.extra)
    else:
        sides["gradus" + (" " + " ".join(args.extra) if args.extra else "")] = gradus_side(
            args.seed, args.trials, args.epochs, args.patience, args.extra)
        if not args.skip_optuna:
            sides["optuna+torch"] = optuna_side(args.seed, args.trials, args.epochs, args.patience)
    optuna_wall = sides.get("optuna+torch", {}).get("wall", float("nan"))
    for side, r in sides.items():
        print(f"| {side} | {r['accuracy']:.4f} | {r['best_valid_loss']:.4f} | {r['pruned']} | {r['wall']:.1f} | "
              f"{optuna_wall / r['wall']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
