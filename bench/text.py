"""Text classification: gradus beside fastText and scikit-learn's TF-IDF + logistic regression, in one run.

Each corpus of data/text/ is cut once into a fixed stratified 80/20 split
(scikit-learn's train_test_split, random_state 0). gradus reads the training
part as the corpus ships it (the tweets in Latin-1, read with --encoding
latin1); fastText and scikit-learn get the same rows decoded. Every model is
scored once on the test part: accuracy and macro-F1, and the wall time of
fitting, one thread each.

- fastText default: `train_supervised` with its defaults (lr 0.1, dim 100,
  5 epochs, word unigrams), thread 1; and with the n-grams gradus reads
  (wordNgrams 2 on the tweets; minn 1, maxn 3 on the Chinese reviews,
  whose "words", cut at spaces, are whole reviews).
- fastText autotune: `train_supervised` with autotuneValidationFile (a
  stratified fifth of the training part) and autotuneDuration equal to
  gradus tune's wall time, thread 1.
- scikit-learn: TfidfVectorizer (word 1-2-grams, or character 1-3-grams for
  Chinese; sublinear_tf) + LogisticRegression (C 1, max_iter 1000).
- gradus train: `gradus train --model M --valid-fraction 0` with the
  model's defaults (M: `text`, the fastText-style model, on a TF-IDF
  vocabulary and on the hashing trick; `softmax`, linear on the n-grams).
- gradus tune: `gradus tune --timeout T --jobs 1` (`--model auto`: the
  linear family and the text model).

Usage:
  cargo build --release -p gradus-cli
  bash bench/setup.sh text
  bench/.venv/bin/python bench/text.py [--corpus tweets|chinese|both] [--timeout 120] [--seed 0]
"""
import argparse, csv, gzip, io, json, os, subprocess, sys, tempfile, time

import fasttext
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "gradus")
CORPORA = {
    # name: (file, encoding, text column, target column, scikit-learn analyzer, n-grams,
    #        fastText's settings for gradus's n-grams)
    "tweets": ("tweets_sentiment.csv.gz", "latin-1", "text", "sentiment", "word", (1, 2), {"wordNgrams": 2}),
    "chinese": ("chinese_reviews.csv.gz", "utf-8", "text", "label", "char", (1, 3), {"minn": 1, "maxn": 3}),
}


def read(name):
    file, encoding, text_col, target = CORPORA[name][:4]
    # newline="" keeps CR and LF inside quoted fields as the CSV has them.
    with gzip.open(os.path.join(ROOT, "data", "text", file), "rt", encoding=encoding, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r[text_col] for r in rows], [r[target] for r in rows]


def write_csv(path, texts, labels, encoding):
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels))


def fasttext_lines(path, texts, labels):
    with open(path, "w", encoding="utf-8") as f:
        for t, l in zip(texts, labels):
            f.write(f"__label__{l} {' '.join(t.split())}\n")


def fasttext_predict(model, texts):
    labels, _ = model.predict([" ".join(t.split()) for t in texts])
    return [l[0][len("__label__"):] for l in labels]


def gradus(args, tmp):
    out = subprocess.run([BIN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"gradus {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def gradus_evaluate(model, test_csv, encoding):
    out = gradus(["evaluate", "--model", model, "--data", test_csv, "--encoding", encoding, "--json"], None)
    m = json.loads(out)["metrics"]
    return m["accuracy"], m["macro_f1"]


def score(y, pred):
    return accuracy_score(y, pred), f1_score(y, pred, average="macro")


def run(name, timeout, seed, tmp):
    _, encoding, _, _, analyzer, ngrams, same_ngrams = CORPORA[name]
    texts, labels = read(name)
    tr_x, te_x, tr_y, te_y = train_test_split(texts, labels, test_size=0.2, stratify=labels, random_state=0)
    enc = "latin1" if encoding == "latin-1" else "utf-8"
    train_csv, test_csv = os.path.join(tmp, f"{name}_train.csv"), os.path.join(tmp, f"{name}_test.csv")
    write_csv(train_csv, tr_x, tr_y, encoding)
    write_csv(test_csv, te_x, te_y, encoding)
    rows = []

    # gradus train, each default model, on the whole training part.
    for model, extra in [("text", []), ("text", ["--text-features", "hashing"]), ("softmax", [])]:
        path = os.path.join(tmp, f"{name}_{model}.gradus")
        start = time.perf_counter()
        gradus(["train", "--data", train_csv, "--target", "label", "--encoding", enc, "--model", model,
                "--valid-fraction", "0", "--seed", str(seed), "-q", "--out", path, *extra], tmp)
        wall = time.perf_counter() - start
        rows.append((" ".join(["gradus train --model", model, *extra]), *gradus_evaluate(path, test_csv, enc), wall))

    # fastText with its defaults.
    ft_train = os.path.join(tmp, f"{name}_train.ft")
    fasttext_lines(ft_train, tr_x, tr_y)
    start = time.perf_counter()
    ft = fasttext.train_supervised(input=ft_train, thread=1, seed=seed, verbose=0)
    wall = time.perf_counter() - start
    rows.append(("fastText default", *score(te_y, fasttext_predict(ft, te_x)), wall))
    # fastText on the n-grams gradus reads (its words have no spaces to cut in Chinese).
    start = time.perf_counter()
    ft = fasttext.train_supervised(input=ft_train, thread=1, seed=seed, verbose=0, **same_ngrams)
    wall = time.perf_counter() - start
    settings = ", ".join(f"{k} {v}" for k, v in same_ngrams.items())
    rows.append((f"fastText default, {settings}", *score(te_y, fasttext_predict(ft, te_x)), wall))

    # scikit-learn TF-IDF + logistic regression.
    start = time.perf_counter()
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True)
    lr = LogisticRegression(C=1.0, max_iter=1000)
    lr.fit(vec.fit_transform(tr_x), tr_y)
    wall = time.perf_counter() - start
    rows.append((f"scikit-learn TF-IDF ({analyzer} {ngrams[0]}-{ngrams[1]}) + LR",
                 *score(te_y, lr.predict(vec.transform(te_x))), wall))

    # gradus tune with a time budget, then fastText's autotune given the same time.
    path = os.path.join(tmp, f"{name}_tuned.gradus")
    start = time.perf_counter()
    summary = gradus(["tune", "--data", train_csv, "--target", "label", "--encoding", enc, "--timeout",
                      f"{timeout}s", "--jobs", "1", "--seed", str(seed), "--storage", f"sqlite:{tmp}/{name}.db",
                      "--json", "--out", path], tmp)
    tune_wall = time.perf_counter() - start
    trials = json.loads(summary.strip().splitlines()[-1]).get("trials")
    rows.append((f"gradus tune --timeout {timeout}s ({trials} trials)", *gradus_evaluate(path, test_csv, enc),
                 tune_wall))

    fit_x, valid_x, fit_y, valid_y = train_test_split(tr_x, tr_y, test_size=0.2, stratify=tr_y, random_state=0)
    ft_fit, ft_valid = os.path.join(tmp, f"{name}_fit.ft"), os.path.join(tmp, f"{name}_valid.ft")
    fasttext_lines(ft_fit, fit_x, fit_y)
    fasttext_lines(ft_valid, valid_x, valid_y)
    start = time.perf_counter()
    ft = fasttext.train_supervised(input=ft_fit, autotuneValidationFile=ft_valid,
                                   autotuneDuration=max(1, int(round(tune_wall))), thread=1, verbose=0)
    wall = time.perf_counter() - start
    rows.append((f"fastText autotune ({int(round(tune_wall))} s)", *score(te_y, fasttext_predict(ft, te_x)), wall))

    print(f"\n{name}: {len(tr_x)} training rows, {len(te_x)} test rows")
    print("| model | test accuracy | test macro-F1 | fit wall time |")
    print("|---|---|---|---|")
    for label, acc, f1, wall in rows:
        print(f"| {label} | {acc:.4f} | {f1:.4f} | {wall:.2f} s |")
    sys.stdout.flush()
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", choices=["tweets", "chinese", "both"], default="both")
    p.add_argument("--timeout", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    names = ["tweets", "chinese"] if a.corpus == "both" else [a.corpus]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            run(name, a.timeout, a.seed, tmp)


if __name__ == "__main__":
    main()
