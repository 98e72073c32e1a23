"""Training speed: gradus against PyTorch (CPU) and scikit-learn, side by side,
single-threaded on both sides, printing ratios (peer time / gradus time).

Workloads (issue 3):
  digits    MLP 64-128-10 ReLU, Adam lr 1e-3, batch 32, standardised, 80% of rows
  mnist_5k  MLP 784-256-128-10 ReLU, Adam lr 1e-3, batch 128, min-max scaled, 80% of rows
  digits    MLP 64-256-256-10 tanh and GELU with dropout 0.2, batch 32: the
            element-wise work (activations, their derivatives, dropout masks)
            that a tuner's wide, small-batch trials spend much of their time on
  logreg    200,000 x 100 seeded synthetic logistic regression, L2 (C = 1):
            scikit-learn LogisticRegression(lbfgs) to its default tolerance, then
            gradus L-BFGS until it reaches sklearn's final objective + 1e-4.

Usage:  bash bench/setup.sh   # once: torch, scikit-learn, numpy into bench/.venv
        bench/.venv/bin/python bench/train_speed.py [--epochs 10] [--repeats 3]
Without torch or scikit-learn installed, their columns are skipped.
"""
import argparse, gzip, json, os, statistics, subprocess, sys, tempfile, time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.join(ROOT, "crates", "gradus-data", "data")
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_train")

try:
    import torch
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
except ImportError:
    torch = None
try:
    import sklearn
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
except ImportError:
    sklearn = None


def gradus(*args):
    out = subprocess.run([BIN, *map(str, args)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def load(name, scaling):
    """The dataset's rows: a seeded 80% sample, scaled like gradus scales them."""
    with gzip.open(os.path.join(DATA, f"{name}.csv.gz"), "rt") as f:
        rows = [line.rstrip("\n").split(",") for line in f][1:]
    X = np.array([[float(v) for v in r[:-1]] for r in rows], dtype=np.float32)
    labels = sorted(set(r[-1] for r in rows), key=lambda v: float(v))
    y = np.array([labels.index(r[-1]) for r in rows], dtype=np.int64)
    idx = np.random.default_rng(0).permutation(len(y))[: round(0.8 * len(y))]
    X, y = X[idx], y[idx]
    if scaling == "minmax":
        lo, hi = X.min(0), X.max(0)
        X = (X - lo) / np.where(hi > lo, hi - lo, 1)
    else:
        sd = X.std(0)
        X = (X - X.mean(0)) / np.where(sd > 1e-12, sd, 1)
    return X.astype(np.float32), y, len(labels)


def torch_epochs(X, y, dims, batch, epochs, activation="relu", dropout=0.0):
    torch.manual_seed(0)
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}[activation]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act())
            if dropout > 0:
                layers.append(torch.nn.Dropout(dropout))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    times = []
    for epoch in range(epochs + 1):  # the first epoch warms up
        start = time.perf_counter()
        perm = torch.randperm(len(y), generator=g)
        for s in range(0, len(y), batch):
            idx = perm[s : s + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
        if epoch:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def sklearn_epochs(X, y, hidden, batch, epochs, activation="relu"):
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(hidden_layer_sizes=hidden, activation=activation, solver="adam", learning_rate_init=1e-3,
                          batch_size=batch, random_state=0)
    classes = np.unique(y)
    times = []
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        model.partial_fit(X, y, classes=classes)
        if epoch:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def mlp_rows(args):
    rows = []
    workloads = [
        ("digits", [128], 32, "standard", "relu", 0.0),
        ("mnist_5k", [256, 128], 128, "minmax", "relu", 0.0),
        # Standardised pixels have no all-zero columns: every GEMM runs dense.
        ("mnist_5k", [256, 128], 128, "standard", "relu", 0.0),
        ("digits", [256, 256], 32, "standard", "tanh", 0.2),
        ("digits", [256, 256], 32, "standard", "gelu", 0.2),
    ]
    for name, hidden, batch, scaling, act, dropout in workloads:
        X, y, k = load(name, scaling)
        dims = [X.shape[1], *hidden, k]
        extra = [act, dropout] if (act, dropout) != ("relu", 0.0) else []
        g_runs = [gradus("mlp", name, ",".join(map(str, hidden)), batch, args.epochs, scaling, *extra)
                  for _ in range(args.repeats)]
        g = statistics.median(r["median_epoch_seconds"] for r in g_runs)
        peak = gradus("gemm", name, ",".join(map(str, hidden)), batch)["gemm_gflops"]
        achieved = g_runs[0]["gflops_per_epoch"] / g
        t = statistics.median(torch_epochs(X, y, dims, batch, args.epochs, act, dropout)
                              for _ in range(args.repeats)) if torch else None
        # scikit-learn has tanh but no GELU, and no dropout.
        s = statistics.median(sklearn_epochs(X, y, tuple(hidden), batch, args.epochs, act)
                              for _ in range(args.repeats)) if sklearn and not extra else None
        label = f"{name} ({scaling})" + (f", {act}, dropout {dropout}" if extra else "")
        rows.append((label, "-".join(map(str, dims)), batch, g, t, s, achieved, peak))
    return rows


def logreg_row(args):
    if sklearn is None:
        return None
    from sklearn.linear_model import LogisticRegression
    n, d, C = 200_000, 100, 1.0
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d) / np.sqrt(d) * 3
    p = 1 / (1 + np.exp(-(X.astype(np.float64) @ w + 0.5)))
    y = (rng.random(n) < p).astype(np.uint8)
    times, model = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=1000).fit(X, y)
        times.append(time.perf_counter() - start)
    z = X.astype(np.float64) @ model.coef_[0] + model.intercept_[0]
    log_loss = np.mean(np.logaddexp(0, z) - y * z)
    objective = log_loss + 0.5 / (C * n) * np.sum(model.coef_ ** 2)
    with tempfile.TemporaryDirectory() as tmp:
        X.tofile(os.path.join(tmp, "x.f32"))
        y.tofile(os.path.join(tmp, "y.u8"))
        runs = [gradus("logreg", os.path.join(tmp, "x.f32"), os.path.join(tmp, "y.u8"), n, d, 1.0 / (C * n), objective + 1e-4) for _ in range(args.repeats)]
    g = statistics.median(r["seconds_to_target"] for r in runs)
    return statistics.median(times), int(model.n_iter_[0]), objective, g, runs[0]


def fmt(v, digits=4):
    return "-" if v is None else f"{v:.{digits}f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "gradus", "--example", "bench_train"], cwd=ROOT, check=True)
    versions = [f"torch {torch.__version__}" if torch else "torch not installed", f"scikit-learn {sklearn.__version__}" if sklearn else "scikit-learn not installed"]
    print(f"single-threaded; median of {args.repeats} runs of the median epoch over {args.epochs} epochs; {', '.join(versions)}\n")
    print("| workload | batch | gradus s/epoch | PyTorch s/epoch | scikit-learn s/epoch | PyTorch / gradus | scikit-learn / gradus | gradus dense-equivalent GFLOP/s (GEMM peak) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, dims, batch, g, t, s, achieved, peak in mlp_rows(args):
        ratio = lambda v: "-" if v is None else f"{v / g:.1f}x"
        print(f"| {name}, MLP {dims} | {batch} | {fmt(g)} | {fmt(t)} | {fmt(s)} | {ratio(t)} | {ratio(s)} | {achieved:.0f} ({peak:.0f}) |")
    row = logreg_row(args)
    if row:
        sk_time, sk_iter, objective, g, run = row
        print(f"\nlogistic regression 200,000 x 100, C=1: scikit-learn lbfgs {sk_time:.3f} s ({sk_iter} iterations, objective {objective:.6f}); "
              f"gradus L-BFGS reaches objective + 1e-4 in {g:.3f} s ({run['iterations']} iterations): scikit-learn / gradus = {sk_time / g:.1f}x")


if __name__ == "__main__":
    main()
