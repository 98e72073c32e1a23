# Compression (issue 23): a model against its compressed self, on held-out
# rows, seed by seed.
#
# For each dataset and seed: the built-in CSV is split 80/20 (seeded);
# the model is made on the 80% — for --how distill and int8, the ensemble
# `gradus tune` makes (seeded, defaults); for --how prune, one MLP of
# `gradus train` (256-256 ReLU, Adam lr 1e-3, 40 epochs); `gradus compress`
# makes the small model from it on the same rows (--prune 0.9), and both are
# scored on the 20% — size on disk, prediction time per 1,000 rows (in
# process, the median of seven passes) and test accuracy. The accuracy
# change is paired (same test rows); its mean over seeds comes with a 95%
# t interval.
#
# Dataset `mnist` (with --how int8) is the full MNIST of data/mnist/: the
# default CNN trained on the 60,000 training images (`train --model cnn
# --epochs 4`, as in BENCHMARKS.md), quantised on them, both scored on the
# 10,000 t10k images; about four minutes a seed.
#
# Run (after `cargo build --release -p gradus-cli`):
#   python3 bench/compress.py [--seeds 5] [--datasets digits,mnist_5k,mnist] [--how distill|distill-int8|prune|int8] [--speedup X]
#
# --how distill-int8 is `compress --distill --int8`: the student quantised,
# and timed in int8 when chosen.
import argparse, gzip, json, math, os, random, statistics, subprocess, tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GRADUS = os.path.join(ROOT, "target", "release", "gradus")
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def run(args, cwd):
    out = subprocess.run([GRADUS, *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"gradus {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def split(name, seed, tmp):
    lines = gzip.open(os.path.join(ROOT, f"crates/gradus-data/data/{name}.csv.gz"), "rt").read().splitlines()
    head, body = lines[0], lines[1:]
    random.Random(seed).shuffle(body)
    cut = int(len(body) * 0.8)
    for part, rows in [("train", body[:cut]), ("test", body[cut:])]:
        with open(os.path.join(tmp, f"{part}.csv"), "w") as f:
            f.write("\n".join([head] + rows) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--datasets", default="digits,mnist_5k")
    p.add_argument("--how", default="distill", choices=["distill", "distill-int8", "prune", "int8"])
    p.add_argument("--speedup", type=float, default=None, help="--distill's --speedup (compress's default: 8)")
    a = p.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU: {cpu}; compression: --{a.how}; {a.seeds} seeds")
    for name in a.datasets.split(","):
        rows = []
        for seed in range(a.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                if name == "mnist":
                    mnist = os.path.join(ROOT, "data", "mnist")
                    train, test = (os.path.join(mnist, f"{part}-images-idx3-ubyte.gz") for part in ("train", "t10k"))
                    run(["train", "--model", "cnn", "--data", train, "--epochs", "4", "--lr", "0.001", "--batch-size", "64",
                         "--dropout", "0.25", "--valid-fraction", "0.05", "--seed", str(seed), "--out", "big.gradus",
                         "--quiet"], tmp)
                    how = [f"--{a.how}"]
                elif a.how in ("distill", "distill-int8", "int8"):
                    split(name, seed, tmp)
                    train, test = "train.csv", "test.csv"
                    run(["tune", "--data", train, "--seed", str(seed), "--out", "big.gradus", "--quiet"], tmp)
                    how = ["--" + h for h in a.how.split("-")]
                else:
                    split(name, seed, tmp)
                    train, test = "train.csv", "test.csv"
                    run(["train", "--data", train, "--model", "mlp", "--hidden", "256,256", "--lr", "0.001",
                         "--epochs", "40", "--seed", str(seed), "--out", "big.gradus", "--quiet"], tmp)
                    how = ["--prune", "0.9"]
                if a.how.startswith("distill") and a.speedup:
                    how += ["--speedup", str(a.speedup)]
                found = json.loads(run(["compress", "--model", "big.gradus", "--data", train, "--test", test,
                                        *how, "--seed", str(seed), "--out", "small.gradus", "--json"], tmp))
                b, s = found["before"], found["after"]
                rows.append({
                    "seed": seed, "student": found["compressed"],
                    "acc_before": b["metrics"]["accuracy"], "acc_after": s["metrics"]["accuracy"],
                    "speedup": b["ms_per_1000_rows"] / s["ms_per_1000_rows"], "smaller": b["bytes"] / s["bytes"],
                    "ms_before": b["ms_per_1000_rows"], "ms_after": s["ms_per_1000_rows"],
                })
                r = rows[-1]
                print(f"{name} seed {seed}: model {100 * r['acc_before']:.2f}%  {a.how} {100 * r['acc_after']:.2f}% "
                      f"({100 * (r['acc_after'] - r['acc_before']):+.2f} points)  {r['speedup']:.1f}x faster "
                      f"({r['ms_before']:.2f} -> {r['ms_after']:.2f} ms/1000 rows)  {r['smaller']:.1f}x smaller  "
                      f"[{r['student']}]", flush=True)
        diffs = [100 * (r["acc_after"] - r["acc_before"]) for r in rows]
        mean = statistics.mean(diffs)
        half = T975.get(len(diffs) - 1, 1.96) * statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        print(f"{name}: accuracy change {mean:+.2f} points (95% interval {mean - half:+.2f} to {mean + half:+.2f}), "
              f"median speed-up {statistics.median(r['speedup'] for r in rows):.1f}x "
              f"(least {min(r['speedup'] for r in rows):.1f}x), median {statistics.median(r['smaller'] for r in rows):.1f}x smaller",
              flush=True)


if __name__ == "__main__":
    main()
