#!/usr/bin/env bash
# Peak memory (max RSS) of gradus on a narrow table: 8.4M rows x 3 integer
# columns (about 74 MB of CSV; the parsed numbers take 100 MB as f32), the
# shape of issue 19's defect 15. Prints one line per command.
# Usage: bash bench/memory.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-8400000}"
cargo build --release --quiet
bin="$PWD/target/release/gradus"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/narrow.csv" "$rows" <<'PY'
import random, sys
random.seed(0)
with open(sys.argv[1], "w") as f:
    f.write("a,b,y\n")
    for i in range(int(sys.argv[2])):
        f.write(f"{random.randint(0, 999)},{random.randint(0, 99)},{i % 2}\n")
PY
cd "$dir"
echo "file: $(du -m narrow.csv | cut -f1) MB, $rows rows"
peak() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
train=$(peak "$bin" train --data narrow.csv --model logistic --epochs 1 --out m.gradus --quiet)
echo "train --model logistic --epochs 1: $((train / 1024)) MB"
predict=$(peak "$bin" predict --model m.gradus --data narrow.csv --out p.csv)
echo "predict: $((predict / 1024)) MB"
evaluate=$(peak "$bin" evaluate --model m.gradus --data narrow.csv)
echo "evaluate: $((evaluate / 1024)) MB"
tune=$(GRADUS_MAX_MEMORY=100G peak "$bin" tune --data narrow.csv --trials 1 --epochs 1 --jobs 1 --ensemble 1 --quiet)
echo "tune --trials 1 --epochs 1 --jobs 1: $((tune / 1024)) MB"
