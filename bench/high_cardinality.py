"""What `gradus tune --high-cardinality` does to categorical columns of many levels, side by side in one run.

No public table of this kind is vendored, so the table is made here, seeded:
a binary target whose log-odds add a per-level effect of two high-cardinality
columns (`city`: 600 levels, Zipf-distributed, so a few are common and most
rare; `product`: 200 levels, even), a low-cardinality `channel` and two numbers
(`age`, `income`), and an interaction: each city's own slope in age. Training and test rows are drawn from the same
distribution (12,000 and 12,000 rows). For each way of encoding the two
columns — other (the 50 most frequent levels one-hot, the rest in one input),
hash (every level into 128 buckets), onehot (one-hot of up to 1000 levels)
and embed (the same, read by the MLPs through a learned 16-value embedding)
— it runs

  gradus tune --data train.csv --target y --high-cardinality HOW --seed S --out M
  gradus evaluate --model M --data test.csv

and prints test accuracy, ROC AUC, log-loss and the tune's wall time; the
Bayes-optimal scores (the true probabilities) bound them.

Usage:
  cargo build --release -p gradus-cli
  python3 bench/high_cardinality.py [--seeds 1] [--trials 60] [--ways other,hash,onehot,embed] [-- --model mlp]
"""
import argparse, json, math, os, random, subprocess, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")


def table(rng, n, effects):
    cities, slopes, products, channels = effects
    zipf = [1.0 / (k + 1) ** 1.1 for k in range(len(cities))]
    rows, probs = [], []
    for _ in range(n):
        city = rng.choices(range(len(cities)), weights=zipf)[0]
        product = rng.randrange(len(products))
        channel = rng.randrange(len(channels))
        age = rng.uniform(18, 80)
        income = math.exp(rng.gauss(10, 0.6))
        z = (cities[city] + products[product] + channels[channel] + 0.04 * (age - 45)
             + 0.8 * (math.log(income) - 10) - 0.3 + slopes[city] * (age - 45) / 20)
        p = 1 / (1 + math.exp(-z))
        y = 1 if rng.random() < p else 0
        rows.append(f"c{city},p{product},{['web', 'store', 'phone', 'mail'][channel]},{age:.0f},{income:.0f},{y}")
        probs.append((p, y))
    return "city,product,channel,age,income,y\n" + "\n".join(rows) + "\n", probs


def bayes(probs):
    acc = sum((p > 0.5) == (y == 1) for p, y in probs) / len(probs)
    loss = -sum(math.log(p if y else 1 - p) for p, y in probs) / len(probs)
    pos = sorted(p for p, y in probs if y)
    neg = sorted(p for p, y in probs if not y)
    # AUC by ranks.
    import bisect
    auc = sum(bisect.bisect_left(neg, p) + 0.5 * (bisect.bisect_right(neg, p) - bisect.bisect_left(neg, p))
              for p in pos) / (len(pos) * len(neg))
    return acc, auc, loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--ways", default="other,hash,onehot,embed")
    ap.add_argument("extra", nargs="*", help="flags passed to gradus tune (after --), e.g. --model mlp")
    args = ap.parse_args()
    rng = random.Random(20261207)
    effects = ([rng.gauss(0, 1.0) for _ in range(600)], [rng.gauss(0, 0.5) for _ in range(600)],
               [rng.gauss(0, 0.7) for _ in range(200)], [rng.gauss(0, 0.5) for _ in range(4)])
    train, _ = table(rng, 12000, effects)
    test, probs = table(rng, 12000, effects)
    acc, auc, loss = bayes(probs)
    print(f"| encoding | seed | test accuracy | ROC AUC | log-loss | tune s |")
    print(f"|---|---|---|---|---|---|")
    print(f"| (the true probabilities) | | {acc:.4f} | {auc:.4f} | {loss:.4f} | |", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        open(os.path.join(tmp, "train.csv"), "w").write(train)
        open(os.path.join(tmp, "test.csv"), "w").write(test)
        for seed in range(args.seeds):
            for how in args.ways.split(","):
                model = os.path.join(tmp, f"{how}{seed}.gradus")
                start = time.perf_counter()
                subprocess.run([BIN, "tune", "--data", "train.csv", "--target", "y", "--high-cardinality", how,
                                "--seed", str(seed), "--trials", str(args.trials), "--storage",
                                f"sqlite:{how}{seed}.db", "--out", model, "-q", *args.extra], cwd=tmp, check=True,
                               capture_output=True)
                wall = time.perf_counter() - start
                out = subprocess.run([BIN, "evaluate", "--model", model, "--data", "test.csv", "--json"], cwd=tmp,
                                     check=True, capture_output=True, text=True)
                m = json.loads(out.stdout)["metrics"]
                print(f"| {how} | {seed} | {m['accuracy']:.4f} | {m['roc_auc']:.4f} | {m['log_loss']:.4f} | "
                      f"{wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
