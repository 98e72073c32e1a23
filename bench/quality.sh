#!/usr/bin/env bash
# Held-out quality of `gradus train` with default hyperparameters on the
# built-in datasets (20% stratified validation split, seed 0). Prints a
# Markdown table for BENCHMARKS.md.
# Usage: bash bench/quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
echo "| dataset | model | valid metric | train metric | epochs | seconds |"
echo "|---|---|---|---|---|---|"
for spec in "iris softmax" "wine softmax" "breast_cancer logistic" "digits softmax" "mnist_5k softmax" "diabetes linear"; do
  set -- $spec
  ./target/release/gradus train --data "builtin:$1" --model "$2" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
def fmt(m):
    return "accuracy %.4f" % m["accuracy"] if "accuracy" in m else "R² %.4f (MSE %.1f)" % (m["r2"], m["mse"])
print("| %s | %s | %s | %s | %d | %.3f |" % (sys.argv[1], sys.argv[2], fmt(d["valid"]), fmt(d["train"]), d["epochs"], d["seconds"]))
' "$1" "$2"
done
