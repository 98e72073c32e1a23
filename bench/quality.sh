#!/usr/bin/env bash
# Held-out quality of `gradus train` with default hyperparameters (Adam, lr 0.01,
# batch 32, up to 100 epochs) on the built-in datasets: 20% stratified validation
# split, seed 0. Prints a Markdown table for BENCHMARKS.md.
# Usage: bash bench/quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
echo "| dataset | command flags | valid metric | train metric | epochs | seconds |"
echo "|---|---|---|---|---|---|"
while read -r dataset flags; do
  # shellcheck disable=SC2086
  ./target/release/gradus train --data "builtin:$dataset" $flags --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
def fmt(m):
    return "accuracy %.4f" % m["accuracy"] if "accuracy" in m else "R² %.4f (RMSE %.1f)" % (m["r2"], m["rmse"])
print("| %s | `%s` | %s | %s | %d | %.3f |" % (sys.argv[1], sys.argv[2], fmt(d["valid"]), fmt(d["train"]), d["epochs"], d["seconds"]))
' "$dataset" "$flags"
done <<'RUNS'
iris --model softmax
wine --model softmax
breast_cancer --model logistic
breast_cancer --model logistic --optimizer lbfgs --l2 0.002
digits --model softmax
mnist_5k --model softmax --scale minmax
diabetes --model linear
iris --model mlp --patience 10
wine --model mlp --patience 10
breast_cancer --model mlp --patience 10
digits --model mlp
mnist_5k --model mlp --hidden 256,128 --scale minmax --lr 0.001 --patience 10
diabetes --model mlp --hidden 32 --lr 0.001 --patience 10
RUNS
