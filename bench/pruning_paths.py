"""Where a pruned study's trials part from the same seed's unpruned study, and which pruned trial did it.

Reads the studies `bench/tune_pruning.py --keep DIR` kept (DIR/DATASET-none-SEED.db
beside DIR/DATASET-PRUNER-SEED.db) and, for each pair, finds the first trial
whose parameters differ. Before it the two studies are the same trials; the
pruned ones among them are the same configurations stopped early, so the
unpruned study shows what each would have scored. TPE splits a study into
its best 10% of complete trials (at most 25) and the rest, pruned ones with
the rest, so a pruned trial changes a later proposal only if it would have
been among those best when a later trial was asked: with K threads an ask
sees the trials up to 2K − 1 asks back. The table lists those trials — the
pruner's misses — and each study's best validation loss. A GP reads values,
not ranks, so under it the studies part soon after the first pruned trial
whatever that trial would have scored.

Usage:
  python3 bench/tune_pruning.py --datasets digits,mnist_5k --pruners none,asha --keep DIR -- --sampler tpe
  python3 bench/pruning_paths.py DIR [--pruner asha] [--jobs 2]
"""
import argparse, glob, json, math, os, re, sqlite3


def load(path):
    db = sqlite3.connect(path)
    trials = []
    for tid, number, state, value in db.execute("SELECT id, number, state, value FROM trials ORDER BY number"):
        params = sorted(db.execute("SELECT name, value FROM params WHERE trial_id = ?", (tid,)).fetchall())
        last = db.execute("SELECT MAX(step) FROM intermediate WHERE trial_id = ?", (tid,)).fetchone()[0]
        trials.append({"number": number, "state": state, "value": value, "params": params, "last_step": last})
    db.close()
    return trials


def misses(full, pruned, upto, lag):
    """Trials pruned before trial `upto` that the unpruned study puts among TPE's best for a later ask."""
    out = []
    for a, b in zip(full[:upto], pruned[:upto]):
        if b["state"] != "pruned" or a["value"] is None:
            continue
        for ask in range(a["number"] + lag, len(full)):
            seen = [t["value"] for t in full[: ask - lag + 1] if t["value"] is not None]
            k = min(25, math.ceil(0.1 * (ask - lag + 1)))
            if sorted(seen).index(a["value"]) < k:
                out.append(f"#{a['number']} at epoch {b['last_step']} (would end {a['value']:.4f}, best {k} for #{ask})")
                break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--pruner", default="asha")
    ap.add_argument("--jobs", type=int, default=2, help="the threads the studies ran on (gradus tune's --jobs)")
    args = ap.parse_args()
    lag = 2 * args.jobs - 1
    pairs = []
    for path in sorted(glob.glob(os.path.join(args.dir, f"*-{args.pruner}-*.db"))):
        m = re.fullmatch(rf"(.+)-{re.escape(args.pruner)}-(\d+)\.db", os.path.basename(path))
        full = os.path.join(args.dir, f"{m[1]}-none-{m[2]}.db")
        if os.path.exists(full):
            pairs.append((m[1], int(m[2]), full, path))
    if not pairs:
        raise SystemExit(f"no pairs of {args.dir}/DATASET-none-SEED.db and DATASET-{args.pruner}-SEED.db")
    print(f"| dataset | seed | first trial that differs | pruned trials that would have been among TPE's best "
          f"before it | best valid loss, none / {args.pruner} |")
    print("|---|---|---|---|---|")
    for dataset, seed, full_path, pruned_path in sorted(pairs):
        full, pruned = load(full_path), load(pruned_path)
        n = min(len(full), len(pruned))
        first = next((i for i in range(n) if full[i]["params"] != pruned[i]["params"]), None)
        missed = misses(full, pruned, n if first is None else first, lag)
        best = lambda ts: min(t["value"] for t in ts if t["value"] is not None)
        print(f"| {dataset} | {seed} | {'none: the same study' if first is None else f'#{first}'} "
              f"| {'; '.join(missed) or '—'} | {best(full):.4f} / {best(pruned):.4f} |")


if __name__ == "__main__":
    main()
