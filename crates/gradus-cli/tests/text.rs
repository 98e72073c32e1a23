//! Text columns end to end with the real binary: `train`, `predict`,
//! `evaluate`, `inspect` and `tune` on CSV files with free text (English
//! and Chinese, written by the tests), and the errors bad text input gets.

use std::path::Path;
use std::process::Command;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn gradus(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().expect("gradus runs");
    Output {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = gradus(dir, args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.stdout
}

fn bad(dir: &Path, args: &[&str], expected: &str) {
    let out = gradus(dir, args);
    assert_eq!(out.code, 2, "{args:?}: exit code; stderr {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains(expected),
        "expected {expected:?} in {:?}",
        out.stderr
    );
}

/// `n` English reviews, seeded: each says two telling words among filler,
/// with a label that follows them (a tenth of the labels flipped).
fn reviews(n: usize) -> String {
    let good = ["great", "love", "excellent", "wonderful", "happy", "perfect"];
    let bad = ["awful", "hate", "terrible", "broken", "sad", "useless"];
    let filler = ["the", "phone", "arrived", "today", "and", "battery", "screen", "it", "was", "really", "my", "case"];
    let mut state = 12345u64;
    let mut next = |k: usize| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize % k
    };
    let mut csv = String::from("review,stars,label\n");
    for i in 0..n {
        let positive = next(2) == 1;
        let telling = if positive { &good } else { &bad };
        let mut words: Vec<&str> = (0..8).map(|_| filler[next(filler.len())]).collect();
        words.insert(next(8), telling[next(6)]);
        words.insert(next(9), telling[next(6)]);
        let label = if positive ^ (next(10) == 0) { "pos" } else { "neg" };
        csv.push_str(&format!("\"{}, review {i}!\",{},{label}\n", words.join(" "), next(5) + 1));
    }
    csv
}

#[test]
fn a_text_column_trains_predicts_evaluates_and_inspects_with_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("reviews.csv"), reviews(600)).unwrap();
    for model in ["text", "logistic"] {
        let out = ok(d, &["train", "--data", "reviews.csv", "--model", model, "--json", "--out", "m.gradus"]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let accuracy = json["valid"]["accuracy"].as_f64().unwrap();
        // 10% of the labels are flipped: about 0.9 is the most there is.
        assert!(accuracy > 0.8, "{model}: valid accuracy {accuracy}");
    }
    std::fs::write(
        d.join("new.csv"),
        "review,stars\nI love it! It is perfect and excellent,3\n\"awful, broken, I hate it\",3\n",
    )
    .unwrap();
    let predicted = ok(d, &["predict", "--model", "m.gradus", "--data", "new.csv"]);
    assert_eq!(predicted.lines().collect::<Vec<_>>(), ["prediction", "pos", "neg"], "{predicted}");
    let evaluated: serde_json::Value =
        serde_json::from_str(&ok(d, &["evaluate", "--model", "m.gradus", "--data", "reviews.csv", "--json"])).unwrap();
    assert!(evaluated["metrics"]["accuracy"].as_f64().unwrap() > 0.8);
    let inspected = ok(d, &["inspect", "m.gradus"]);
    assert!(inspected.contains("review  text: word 1-2-grams, lowered, a vocabulary of "), "{inspected}");
    assert!(inspected.contains("(in 2 rows or more), TF-IDF, sublinear term frequency"), "{inspected}");
    // The n-grams that pull towards each class: the telling words.
    let top = ok(d, &["inspect", "m.gradus", "--top-features", "4"]);
    let line = |class: &str| top.lines().find(|l| l.trim_start().starts_with(class)).unwrap_or_default().to_string();
    let (pos, neg) = (line("pos:"), line("neg:"));
    let positive = ["great", "love", "excellent", "wonderful", "happy", "perfect"];
    let negative = ["awful", "hate", "terrible", "broken", "sad", "useless"];
    assert!(positive.iter().filter(|w| pos.contains(*w)).count() >= 3, "{top}");
    assert!(negative.iter().filter(|w| neg.contains(*w)).count() >= 3, "{top}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &["inspect", "m.gradus", "--top-features", "2", "--json"])).unwrap();
    assert_eq!(json["top_features"][0]["ngrams"].as_array().unwrap().len(), 2, "{json}");
    // The settings are the user's to choose.
    ok(
        d,
        &[
            "train",
            "--data",
            "reviews.csv",
            "--model",
            "text",
            "--ngram",
            "1-3",
            "--text-features",
            "hashing",
            "--text-buckets",
            "65536",
            "--strip",
            "numbers,urls",
            "--dim",
            "8",
            "-q",
            "--out",
            "m.gradus",
        ],
    );
    let inspected = ok(d, &["inspect", "m.gradus"]);
    assert!(inspected.contains("word 1-3-grams, lowered, without URLs, numbers, hashed into 65536"), "{inspected}");
    assert!(
        inspected.contains("embedding bag of 65536 n-gram inputs x 8 and 5 dense inputs, linear head"),
        "{inspected}"
    );
    // An MLP head, whose n-grams are still shown by what each alone does.
    ok(d, &["train", "--data", "reviews.csv", "--model", "text", "--hidden", "12", "-q", "--out", "mlp.gradus"]);
    let inspected = ok(d, &["inspect", "mlp.gradus", "--top-features", "2"]);
    assert!(inspected.contains("MLP head of 12 ReLU units"), "{inspected}");
    let predicted = ok(d, &["predict", "--model", "mlp.gradus", "--data", "new.csv"]);
    assert_eq!(predicted.lines().count(), 3, "a header and a line a row: {predicted}");
    // A model reading text cannot take rows without the column.
    std::fs::write(d.join("numbers.csv"), "stars\n3\n").unwrap();
    bad(d, &["predict", "--model", "m.gradus", "--data", "numbers.csv"], "no column named 'review'");
    // Hashing keeps no n-gram to show.
    bad(d, &["inspect", "m.gradus", "--top-features", "3"], "column 'review' was read with --text-features hashing");
}

#[test]
fn explain_names_the_words_that_move_a_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("reviews.csv"), reviews(600)).unwrap();
    ok(d, &["train", "--data", "reviews.csv", "--model", "text", "--out", "m.gradus", "--quiet"]);
    let out = ok(d, &["explain", "--model", "m.gradus", "--data", "reviews.csv", "--text-rows", "6", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The review decides; the stars are noise.
    let columns = json["permutation_importance"]["columns"].as_array().unwrap();
    assert_eq!(columns[0]["column"], "review", "{columns:?}");
    assert!(columns[0]["ci"][0].as_f64().unwrap() > 0.2, "{columns:?}");
    assert!(columns[1]["mean"].as_f64().unwrap().abs() < 0.01, "{columns:?}");
    let telling = ["great", "love", "excellent", "wonderful", "happy", "perfect"]
        .into_iter()
        .chain(["awful", "hate", "terrible", "broken", "sad", "useless"])
        .collect::<Vec<_>>();
    let rows = json["ngrams"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for row in rows {
        // The n-gram that moves the row's prediction most holds a telling word.
        let first = row["effects"][0]["ngram"].as_str().unwrap();
        assert!(telling.iter().any(|w| first.split(' ').any(|t| t == *w)), "{row}");
        assert_eq!(row["effects"][0]["column"], "review");
    }
}

#[test]
fn chinese_text_is_read_as_characters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (good, bad) = (["很好", "喜欢", "满意", "推荐"], ["太差", "失望", "糟糕", "退货"]);
    let mut csv = String::from("text,label\n");
    for i in 0..300 {
        let (words, label) = if i % 2 == 0 { (&good, "pos") } else { (&bad, "neg") };
        csv.push_str(&format!(
            "这本书第{i}次买，{}，物流也{}，总体来说{}。,{label}\n",
            words[i % 4],
            words[(i / 2) % 4],
            words[(i / 3) % 4]
        ));
    }
    std::fs::write(d.join("zh.csv"), csv).unwrap();
    let out: serde_json::Value = serde_json::from_str(&ok(
        d,
        &["train", "--data", "zh.csv", "--model", "softmax", "--json", "--out", "zh.gradus"],
    ))
    .unwrap();
    assert!(out["valid"]["accuracy"].as_f64().unwrap() > 0.95, "{out}");
    assert!(ok(d, &["inspect", "zh.gradus"]).contains("text  text: character 1-3-grams"));
}

#[test]
fn tune_takes_a_text_table_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("reviews.csv"), reviews(400)).unwrap();
    let out =
        ok(d, &["tune", "--data", "reviews.csv", "--target", "label", "--trials", "4", "--json", "--out", "t.gradus"]);
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(summary["test_metrics"]["accuracy"].as_f64().unwrap() > 0.75, "{summary}");
    let columns: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(columns["event"], "columns");
    assert_eq!(columns["columns"][0]["kind"], "text", "{columns}");
    assert!(columns["columns"][0]["becomes"].as_str().unwrap().starts_with("text: word 1-2-grams"), "{columns}");
    // The n-gram range is searched: a space that keeps words alone trains,
    // tests and saves a model of the words' vocabulary.
    std::fs::write(d.join("words.json"), r#"{"text_ngrams": {"type": "categorical", "choices": [1]}}"#).unwrap();
    let out = ok(
        d,
        &[
            "tune",
            "--data",
            "reviews.csv",
            "--target",
            "label",
            "--trials",
            "3",
            "--space",
            "words.json",
            "--study",
            "words",
            "--json",
            "--out",
            "w.gradus",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(summary["test_metrics"]["accuracy"].as_f64().unwrap() > 0.75, "{summary}");
    let inspected = ok(d, &["inspect", "w.gradus"]);
    assert!(inspected.contains("text: word 1-1-grams"), "{inspected}");
    let evaluated = ok(d, &["evaluate", "--model", "w.gradus", "--data", "reviews.csv"]);
    assert!(evaluated.contains("accuracy"), "{evaluated}");
    // A value that is not an n-gram length is refused.
    std::fs::write(d.join("zero.json"), r#"{"text_ngrams": {"type": "categorical", "choices": ["two"]}}"#).unwrap();
    bad(
        d,
        &[
            "tune",
            "--data",
            "reviews.csv",
            "--target",
            "label",
            "--trials",
            "1",
            "--space",
            "zero.json",
            "--study",
            "z",
            "-q",
        ],
        "text_ngrams must be an int range or a categorical of whole numbers",
    );
    // The families that cannot read text are refused, not trained on a guess.
    bad(
        d,
        &["tune", "--data", "reviews.csv", "--target", "label", "--model", "mlp", "--trials", "1"],
        "reads numbers only",
    );
}

#[test]
fn bad_text_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("reviews.csv"), reviews(100)).unwrap();
    let train = ["train", "--data", "reviews.csv", "--model", "text"];
    bad(
        d,
        &[&train[..], &["--ngram", "3-1"]].concat(),
        "invalid --ngram: 3-1: the range must be LOW-HIGH with 1 <= LOW <= HIGH",
    );
    bad(d, &[&train[..], &["--ngram", "two"]].concat(), "'two' is not LOW-HIGH");
    bad(
        d,
        &[&train[..], &["--text-features", "hashing", "--text-buckets", "1000"]].concat(),
        "invalid --text-buckets 1000",
    );
    bad(d, &[&train[..], &["--text-buckets", "4096"]].concat(), "--text-buckets applies to --text-features hashing");
    bad(
        d,
        &[&train[..], &["--text-features", "hashing", "--min-df", "3"]].concat(),
        "--min-df and --max-features apply",
    );
    bad(d, &[&train[..], &["--min-df", "1000"]].concat(), "no n-gram of column 'review' is in 1000 or more rows");
    bad(d, &[&train[..], &["--strip", "emoji"]].concat(), "invalid value 'emoji'");
    bad(d, &["train", "--data", "reviews.csv", "--model", "softmax", "--dim", "8"], "--dim applies to --model text");
    bad(d, &[&train[..], &["--hidden", "16,16"]].concat(), "a text model's MLP head has one hidden layer");
    bad(d, &[&train[..], &["--hidden", "0"]].concat(), "a hidden layer needs at least one unit");
    bad(d, &["train", "--data", "reviews.csv", "--model", "softmax", "--hidden", "8"], "--hidden applies to");
    bad(
        d,
        &["train", "--data", "reviews.csv", "--model", "mlp"],
        "--model mlp reads numbers only, and the data have text (column review)",
    );
    // Text where none is.
    std::fs::write(d.join("numbers.csv"), "a,b,y\n1,2,0\n2,1,1\n3,4,0\n4,3,1\n").unwrap();
    bad(
        d,
        &["train", "--data", "numbers.csv", "--model", "text"],
        "--model text reads text columns, and the data have none",
    );
    bad(d, &["train", "--data", "numbers.csv", "--model", "softmax", "--ngram", "1-2"], "numbers.csv has none");
    // Latin-1 bytes read as UTF-8: the line is named.
    let mut latin = b"review,label\n".to_vec();
    for i in 0..50 {
        latin.extend_from_slice(format!("a long enough review number {i} of the caf").as_bytes());
        latin.extend_from_slice(b"\xe9 and its coffee,");
        latin.extend_from_slice(if i % 2 == 0 { b"pos\n" } else { b"neg\n" });
    }
    std::fs::write(d.join("latin.csv"), &latin).unwrap();
    bad(d, &["train", "--data", "latin.csv", "--model", "text"], "latin.csv:2: malformed CSV: byte 0xE9");
    ok(d, &["train", "--data", "latin.csv", "--model", "text", "--encoding", "latin1", "-q"]);
    // A column given as text that holds none.
    let mut empty = String::from("note,x,label\n");
    for i in 0..40 {
        empty.push_str(&format!(",{i},{}\n", i % 2));
    }
    std::fs::write(d.join("empty.csv"), empty).unwrap();
    std::fs::write(d.join("kinds.json"), r#"{"note": "text"}"#).unwrap();
    bad(
        d,
        &["tune", "--data", "empty.csv", "--target", "label", "--columns", "kinds.json", "--trials", "1"],
        "column 'note' is read as text but is empty in every row",
    );
}
