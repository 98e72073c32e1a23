"""Where a pruned study's trials part from the same seed's unpruned study, and which pruned trial did it.

Reads the studies `bench/tune_pruning.py --keep DIR` kept (DIR/DATASET-none-SEED.db
beside DIR/DATASET-PRUNER-SEED.db; one DIR per sampler, as the names do not
say it) and, for each pair, finds the first trial whose parameters differ.
Before it the two studies are the same trials; the pruned ones among them
are the same configurations stopped early, so the unpruned study shows what
each would have scored.

TPE splits the trials an ask sees, complete and pruned, into a best group
(⌈10%⌉ of them, at most 25: the best complete trials by value, ties to the
earlier) and the rest, pruned ones with the rest. So a pruned trial changes
a later proposal only if, had it run, it would have been in the best group
of a later ask: a miss. Under gradus's ordered schedule with K threads an
ask sees as finished the trials at least 2K − 1 asks back (the ones in
between as running). The table lists, for each pair, the misses before the
first trial that differs and each study's best validation loss. (With TPE,
pruned values also count when too few trials are complete to fill the best
group, and in a conditional space the joint parameters are those every
complete trial has; a study can then part without a miss.) The GP models
values, so under it a study parts at its first modelled ask after any
pruned trial, and the misses column does not apply.

Usage:
  python3 bench/tune_pruning.py --datasets digits,mnist_5k --pruners none,asha --keep DIR -- --sampler tpe
  python3 bench/pruning_paths.py DIR [--pruner asha] [--jobs K (default: this machine's cores, as gradus tune)]
"""
import argparse, glob, json, math, os, re, sqlite3


def load(path):
    """The study's sampler and its trials in number order."""
    db = sqlite3.connect(path)
    settings = json.loads(db.execute("SELECT settings FROM studies").fetchone()[0])
    params, last_step = {}, {}
    for tid, name, value in db.execute("SELECT trial_id, name, value FROM params ORDER BY trial_id, name"):
        params.setdefault(tid, []).append((name, value))
    for tid, step in db.execute("SELECT trial_id, MAX(step) FROM intermediate GROUP BY trial_id"):
        last_step[tid] = step
    trials = [{"number": number, "state": state, "value": value, "params": params.get(tid, []),
               "last_step": last_step.get(tid)}
              for tid, number, state, value in db.execute("SELECT id, number, state, value FROM trials ORDER BY number")]
    db.close()
    return settings.get("sampler", {}).get("name", "?"), trials


def best(trials):
    return min(t["value"] for t in trials if t["value"] is not None)


def misses(full, pruned, upto, lag):
    """Trials pruned before trial `upto` that the unpruned study puts in TPE's best group for an ask up to `upto`."""
    out = []
    for a, b in zip(full[:upto], pruned[:upto]):
        if b["state"] != "pruned" or a["value"] is None:
            continue
        for ask in range(a["number"] + lag, min(upto + 1, len(full))):
            seen = full[: ask - lag + 1]
            finished = sum(t["state"] in ("complete", "pruned") for t in seen)
            k = min(25, math.ceil(0.1 * finished))
            ahead = sum(t["value"] is not None and (t["value"], t["number"]) < (a["value"], a["number"]) for t in seen)
            if ahead < k:
                out.append(f"#{a['number']} at epoch {b['last_step']} (would end {a['value']:.4f}, best {k} for #{ask})")
                break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--pruner", default="asha")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                    help="the threads the studies ran on (gradus tune's --jobs; default: this machine's cores, as there)")
    args = ap.parse_args()
    lag = 2 * args.jobs - 1
    pairs = []
    for path in sorted(glob.glob(os.path.join(args.dir, f"*-{args.pruner}-*.db"))):
        m = re.fullmatch(rf"(.+)-{re.escape(args.pruner)}-(\d+)\.db", os.path.basename(path))
        full = m and os.path.join(args.dir, f"{m[1]}-none-{m[2]}.db")
        if full and os.path.exists(full):
            pairs.append((m[1], int(m[2]), full, path))
    if not pairs:
        raise SystemExit(f"no pairs of {args.dir}/DATASET-none-SEED.db and DATASET-{args.pruner}-SEED.db")
    print(f"| dataset | seed | sampler | first trial that differs | misses before it (TPE) "
          f"| best valid loss, none / {args.pruner} |")
    print("|---|---|---|---|---|---|")
    for dataset, seed, full_path, pruned_path in sorted(pairs):
        (sampler, full), (pruned_sampler, pruned) = load(full_path), load(pruned_path)
        if sampler != pruned_sampler:
            raise SystemExit(f"{full_path} ran {sampler}, {pruned_path} {pruned_sampler}: not a pair")
        n = min(len(full), len(pruned))
        first = next((i for i in range(n) if full[i]["params"] != pruned[i]["params"]), None)
        missed = misses(full, pruned, n if first is None else first, lag)
        print(f"| {dataset} | {seed} | {sampler} | {'none: the same study' if first is None else f'#{first}'} "
              f"| {'; '.join(missed) or '—'} | {best(full):.4f} / {best(pruned):.4f} |")


if __name__ == "__main__":
    main()
