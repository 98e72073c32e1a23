//! Raw mixed-type tables end to end, as a user has them: categorical,
//! boolean and date columns, missing values, an identifier, a missing
//! target — through `gradus tune`, `predict` and `evaluate` as real processes.

use std::path::Path;
use std::process::{Command, Output};

fn gradus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().expect("the gradus binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A seeded table of `n` rows whose class depends on every kind of column:
/// `age` (numeric, some `NA`), `color` (categorical, a rare level, some
/// `?`), `member` (yes/no), `joined` (ISO dates, some empty), `id` (an
/// identifier) and `label`, missing on every 50th row.
fn mixed_table(n: usize) -> String {
    let mut state = 42u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut text = String::from("id,age,color,member,joined,label\n");
    for i in 0..n {
        let age = 20.0 + 50.0 * next();
        let color = if i % 97 == 0 { "teal" } else { ["red", "green", "blue"][(next() * 3.0) as usize] };
        let member = next() < 0.5;
        let month = 1 + (next() * 12.0) as u32;
        let score = (age - 45.0) / 10.0
            + if color == "red" { 1.5 } else { -0.5 }
            + if member { 1.0 } else { -1.0 }
            + if month > 6 { 0.5 } else { -0.5 };
        let label = if i % 50 == 7 {
            ""
        } else if score + next() - 0.5 > 0.0 {
            "good"
        } else {
            "bad"
        };
        let age = if i % 13 == 0 { "NA".to_string() } else { format!("{age:.1}") };
        let color = if i % 17 == 0 { "?" } else { color };
        let joined = if i % 19 == 0 { String::new() } else { format!("2023-{month:02}-{:02}", 1 + i % 28) };
        text.push_str(&format!("u{i},{age}, {color},{},{joined},{label}\n", if member { "yes" } else { "no" }));
    }
    text
}

#[test]
fn a_raw_mixed_table_tunes_and_predicts_new_raw_rows_with_unseen_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), mixed_table(400)).unwrap();
    let args = ["tune", "--data", "train.csv", "--target", "label", "--trials", "4", "--epochs", "20"];
    let out = gradus(dir.path(), &[&args[..], &["--out", "m.gradus", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let columns = &lines[0];
    assert_eq!(columns["event"], "columns");
    assert_eq!(columns["missing_target_rows"], 8, "rows 7, 57, …, 357 have no label");
    assert_eq!(columns["classes"], serde_json::json!(["bad", "good"]), "never an empty class");
    let kinds: Vec<(&str, &str)> = columns["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["column"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("id", "identifier"),
            ("age", "numeric"),
            ("color", "categorical"),
            ("member", "boolean"),
            ("joined", "date_time"),
        ]
    );
    let summary = lines.last().unwrap();
    let accuracy = summary["test_metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.7, "the columns carry the signal: {summary}");

    // New rows: an unseen color, missing cells in every column, stray spaces.
    let new = "id,age,color,member,joined\nz1,33, purple ,yes,2024-02-02\nz2,NA,?,,\nz3,50,red,no,2023-07-01\n";
    std::fs::write(dir.path().join("new.csv"), new).unwrap();
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "new.csv", "--proba"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "prediction,p_bad,p_good");
    assert_eq!(rows.len(), 4);
    for row in &rows[1..] {
        let p: Vec<f64> = row.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
        assert!(p.iter().all(|v| v.is_finite()) && (p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{row}");
    }

    // inspect shows what the file holds, where it came from included.
    let out = gradus(dir.path(), &["inspect", "m.gradus", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let about: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(about["task"], "binary");
    assert_eq!(about["classes"], serde_json::json!(["bad", "good"]));
    let columns: Vec<&str> =
        about["columns"].as_array().unwrap().iter().map(|c| c["column"].as_str().unwrap()).collect();
    assert_eq!(columns, ["age", "color", "member", "joined"], "the identifier is not an input");
    let members = about["members"].as_array().unwrap().len();
    assert_eq!(about["about"]["members"].as_array().unwrap().len(), members);
    assert!(about["about"]["members"][0]["params"].is_object());
    assert!(about["about"]["objective"].as_str().unwrap().contains("target 'label' (binary)"), "{about}");
    let out = gradus(dir.path(), &["inspect", "m.gradus"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("task     binary: target 'label', classes bad, good"), "{text}");
    assert!(text.contains("  color   one-hot: 3 levels + other + missing"), "{text}");
    let out = gradus(dir.path(), &["inspect", "train.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a readable gradus model file"), "{}", stderr(&out));

    // --keep carries an id column through, before the prediction.
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "new.csv", "--keep", "id"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text.lines().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(ids, ["id", "z1", "z2", "z3"]);
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "new.csv", "--keep", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--keep names 'nope', which is not a column of new.csv"), "{}", stderr(&out));

    // Text where training read numbers is an error naming the place.
    std::fs::write(dir.path().join("bad.csv"), "id,age,color,member,joined\nz1,old,red,yes,2024-02-02\n").unwrap();
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "bad.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.csv:2:2: value 'old' in column 'age' is not a number"), "{}", stderr(&out));

    // evaluate reads the same columns and leaves out rows with no label.
    let out = gradus(dir.path(), &["evaluate", "--model", "m.gradus", "--data", "train.csv", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 392);
}

#[test]
fn bad_table_input_is_exit_2_with_the_place_named_and_nothing_written() {
    let cases: [(&str, &[&str], &str); 7] = [
        ("a,y\n1,NA\n2,\n", &[], "target column 'y' has no values"),
        ("a,b,y\n1,2,x\n3,4,z\n", &["--categorical", "nope"], "--categorical names 'nope', which is not a column"),
        ("a,b,y\n1,2,x\n3,4,z\n", &["--ignore", "y"], "--ignore names 'y', the target column"),
        ("a,y\nu1,x\n", &[], "no column is left to learn from"),
        ("a,b,y\n1,2,x\n3,4,z\n", &["--metric", "rmse"], "--metric rmse does not fit a binary target"),
        ("a,y\n1,x\n2,z\n3,w\n", &["--metric", "roc_auc"], "--metric roc_auc is defined for two classes only"),
        ("a,y\n1,1.5\n2,2.25\n3,3.125\n", &["--class-weight", "balanced"], "--class-weight balanced needs classes"),
    ];
    for (table, flags, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut text = table.to_string();
        if expected.contains("left to learn") {
            // Enough rows that a distinct value on each is an identifier.
            text = "a,y\n".to_string() + &(0..30).map(|i| format!("u{i},{}\n", i % 2)).collect::<String>();
        }
        std::fs::write(dir.path().join("t.csv"), text).unwrap();
        let out = gradus(dir.path(), &[&["tune", "--data", "t.csv", "--target", "y"][..], flags].concat());
        assert_eq!(out.status.code(), Some(2), "{expected}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{expected}: {}", stderr(&out));
        assert!(!dir.path().join("gradus.db").exists(), "{expected}: no storage is made for bad input");
    }
}

#[test]
fn na_values_replace_the_default_markers() {
    let dir = tempfile::tempdir().unwrap();
    // -999 marks a missing reading; NA here is a level, not a gap.
    let rows: String = (0..40)
        .map(|i| {
            format!(
                "{},{},{}\n",
                if i % 5 == 0 { "-999".to_string() } else { i.to_string() },
                ["NA", "EU"][i % 2],
                i % 2
            )
        })
        .collect();
    std::fs::write(dir.path().join("t.csv"), format!("reading,region,y\n{rows}")).unwrap();
    let columns = |flags: &[&str]| -> serde_json::Value {
        let args =
            [&["tune", "--data", "t.csv", "--target", "y", "--trials", "1", "--epochs", "2", "--json"][..], flags];
        let out = gradus(dir.path(), &args.concat());
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap()
    };
    // By default -999 is a number and NA a missing cell.
    let default = columns(&["--study", "default"]);
    assert_eq!(default["columns"][0]["missing"], 0, "{default}");
    assert_eq!(default["columns"][1]["missing"], 20, "{default}");
    // --na-values -999: a fifth of the readings are missing (median fill and
    // a flag), and NA is one of two levels.
    let asked = columns(&["--study", "asked", "--na-values=-999"]);
    assert_eq!(asked["columns"][0]["missing"], 8, "{asked}");
    assert!(asked["columns"][0]["becomes"].as_str().unwrap().contains("missing → median"), "{asked}");
    assert_eq!((asked["columns"][1]["missing"].as_u64(), asked["columns"][1]["distinct"].as_u64()), (Some(0), Some(2)));
}

#[test]
fn a_latin1_file_is_refused_as_utf8_with_the_line_named_and_read_with_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"city,size,y\n".to_vec();
    for i in 0..60 {
        let city: &[u8] = if i % 2 == 0 { b"Montr\xe9al" } else { b"Z\xfcrich" };
        bytes.extend_from_slice(city);
        bytes.extend_from_slice(format!(",{},{}\n", i % 7, i % 2).as_bytes());
    }
    std::fs::write(dir.path().join("t.csv"), &bytes).unwrap();
    let args = ["tune", "--data", "t.csv", "--trials", "2", "--epochs", "3", "--json"];
    let out = gradus(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("t.csv:2: malformed CSV: byte 0xE9 (byte 6 of the line) is not valid UTF-8"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--encoding latin-1"), "{}", stderr(&out));
    assert!(!dir.path().join("gradus.db").exists());
    let out = gradus(dir.path(), &[&args[..], &["--encoding", "klingon"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown encoding 'klingon'"), "{}", stderr(&out));
    let out = gradus(dir.path(), &[&args[..], &["--encoding", "latin-1"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let columns: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(columns["columns"][0]["becomes"], "one-hot: 2 levels", "Montréal and Zürich: {columns}");
}

#[test]
fn tab_and_semicolon_files_are_sniffed_and_task_overrides_the_inference() {
    let dir = tempfile::tempdir().unwrap();
    // A 1–5 rating: read as five classes unless --task regression says otherwise.
    let rows: String = (0..60).map(|i| format!("{}\t{}\t{}\n", i % 10, ["a", "b"][i % 2], 1 + i % 5)).collect();
    std::fs::write(dir.path().join("t.tsv"), format!("x\tkind\trating\n{rows}")).unwrap();
    std::fs::write(dir.path().join("t.csv"), format!("x;kind;rating\n{}", rows.replace('\t', ";"))).unwrap();
    std::fs::write(dir.path().join("t.psv"), format!("x|kind|rating\n{}", rows.replace('\t', "|"))).unwrap();
    // A delimiter the sniffer does not try, forced.
    std::fs::write(dir.path().join("t.txt"), format!("x:kind:rating\n{}", rows.replace('\t', ":"))).unwrap();
    for (file, forced) in [("t.tsv", None), ("t.csv", None), ("t.psv", None), ("t.txt", Some(":"))] {
        let mut base = vec!["tune", "--data", file, "--trials", "2", "--epochs", "3", "--model", "linear", "--json"];
        if let Some(d) = forced {
            base.extend(["--delimiter", d]);
        }
        let out = gradus(dir.path(), &base);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains("--model linear does not fit a multiclass"), "{file}: {}", stderr(&out));
        let study = format!("s-{file}");
        let out = gradus(dir.path(), &[&base[..], &["--task", "regression", "--study", &study]].concat());
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let first: serde_json::Value =
            serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(first["task"], "regression", "{file}");
        assert_eq!(first["inputs"], 12, "{file}: x, its 9 piecewise-linear bins and the two levels of kind");
    }
    let out = gradus(dir.path(), &["tune", "--data", "t.tsv", "--delimiter", "ab"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not one character"), "{}", stderr(&out));
}

#[test]
fn a_changed_file_or_target_does_not_silently_resume_the_old_study() {
    let dir = tempfile::tempdir().unwrap();
    let rows = |k: usize| -> String { (0..40).map(|i| format!("{},{},{}\n", i % 7, (i * k) % 5, i % 2)).collect() };
    std::fs::write(dir.path().join("t.csv"), format!("a,b,y\n{}", rows(3))).unwrap();
    let args = ["tune", "--data", "t.csv", "--trials", "2", "--epochs", "3"];
    let first = gradus(dir.path(), &args);
    assert!(first.status.success(), "{}", stderr(&first));
    // The same command again resumes, and says so.
    let again = gradus(dir.path(), &args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("resuming study 'tune-t' (2 trials done): the same data"), "{}", stderr(&again));
    // An edited file, or another target, is another study.
    std::fs::write(dir.path().join("t.csv"), format!("a,b,y\n{}", rows(4))).unwrap();
    let before = std::fs::read(dir.path().join("gradus.db")).unwrap();
    for extra in [&[][..], &["--target", "a"][..]] {
        let out = gradus(dir.path(), &[&args[..], extra].concat());
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("study 'tune-t' was tuned on other data"), "{err}");
        assert!(err.contains("--study NAME") && err.contains("gradus study delete --study tune-t"), "{err}");
    }
    assert_eq!(std::fs::read(dir.path().join("gradus.db")).unwrap(), before, "the stored study is left as it was");
    let out = gradus(dir.path(), &[&args[..], &["--study", "edited"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_columns_file_gives_kinds_and_conflicts_or_unknown_kinds_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..40).map(|i| format!("{},{},{},{}\n", 10000 + i % 4, i % 9, i, i % 2)).collect();
    std::fs::write(dir.path().join("t.csv"), format!("zip,n,row,y\n{rows}")).unwrap();
    std::fs::write(dir.path().join("kinds.json"), r#"{"zip": "categorical", "row": "ignore"}"#).unwrap();
    std::fs::write(dir.path().join("kinds.toml"), "zip = \"categorical\"\nrow = \"ignore\"\n").unwrap();
    for file in ["kinds.json", "kinds.toml"] {
        let study = format!("s-{file}");
        let args = ["tune", "--data", "t.csv", "--trials", "2", "--epochs", "3", "--json", "--columns", file];
        let out = gradus(dir.path(), &[&args[..], &["--study", &study]].concat());
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let first: serde_json::Value =
            serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
        let zip = &first["columns"][0];
        assert_eq!((zip["column"].as_str(), zip["kind"].as_str()), (Some("zip"), Some("categorical")), "{file}");
        assert_eq!(zip["reason"], format!("--columns {file}"));
        assert_eq!(zip["becomes"], "one-hot: 4 levels", "{file}");
        assert_eq!(first["columns"].as_array().unwrap().len(), 2, "{file}: row is left out");
    }
    std::fs::write(dir.path().join("bad.json"), r#"{"zip": "postcode"}"#).unwrap();
    for (flags, expected) in [
        (&["--columns", "bad.json"][..], "bad.json: column 'zip': unknown kind 'postcode'"),
        (
            &["--columns", "kinds.json", "--categorical", "zip"][..],
            "--categorical names 'zip', whose kind --columns kinds.json gives already",
        ),
        (
            &["--columns", "kinds.json", "--ignore", "row"][..],
            "--ignore names 'row', which --columns kinds.json leaves out already",
        ),
        (
            &["--categorical", "n", "--ignore", "n"][..],
            "--categorical gives column 'n' a kind, and --ignore leaves it out",
        ),
        (&["--columns", "missing.json"][..], "cannot read 'missing.json'"),
    ] {
        let out = gradus(dir.path(), &[&["tune", "--data", "t.csv", "--study", "bad"][..], flags].concat());
        assert_eq!(out.status.code(), Some(2), "{expected}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{expected}: {}", stderr(&out));
    }
}

/// A seeded binary table (`a`, `b`, `c`, `y`) whose class depends on `a`
/// and on the square of `b`, with noise, label flips and a third of rows
/// positive: hard enough that the models of a search rank its rows and
/// calibrate their probabilities differently well.
fn noisy_binary_table(n: usize) -> String {
    let mut state = 5u64;
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut normal = move || {
        let (u, v) = (uniform(), uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let mut text = String::from("a,b,c,y\n");
    for _ in 0..n {
        let (a, b, c) = (normal(), normal(), normal());
        let z = 1.5 * a - 1.0 + 0.8 * (b * b - 1.0) + 1.2 * normal();
        let flip = normal() > 1.4;
        let y = (z > 0.0) != flip;
        text.push_str(&format!("{a:.4},{b:.4},{c:.4},{}\n", u8::from(y)));
    }
    text
}

#[test]
fn metric_roc_auc_ranks_the_same_trials_otherwise_than_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.csv"), noisy_binary_table(600)).unwrap();
    // The random sampler draws the same configurations whatever the values,
    // and without pruning each trial trains the same model in both studies:
    // only the ranking differs.
    let run = |metric: &str| {
        let args = [
            "tune",
            "--data",
            "t.csv",
            "--target",
            "y",
            "--trials",
            "10",
            "--epochs",
            "20",
            "--valid-fraction",
            "0.3",
            "--sampler",
            "random",
            "--pruner",
            "none",
            "--jobs",
            "1",
            "--ensemble",
            "1",
            "--json",
            "--quiet",
            "--metric",
            metric,
            "--study",
            metric,
        ];
        let out = gradus(dir.path(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
        let lines: Vec<serde_json::Value> =
            String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let trials: Vec<(serde_json::Value, f64)> = lines
            .iter()
            .filter(|l| l["event"] == "trial" && l["state"] == "complete")
            .map(|l| (l["params"].clone(), l["value"].as_f64().unwrap()))
            .collect();
        (trials, lines.last().unwrap().clone())
    };
    let (by_loss, loss_summary) = run("log_loss");
    let (by_auc, auc_summary) = run("roc_auc");
    assert_eq!(by_loss.len(), 10, "{loss_summary}");
    assert_eq!(
        by_loss.iter().map(|t| &t.0).collect::<Vec<_>>(),
        by_auc.iter().map(|t| &t.0).collect::<Vec<_>>(),
        "the same configurations"
    );
    let arg_best = |trials: &[(serde_json::Value, f64)], higher: bool| {
        let key = |v: f64| if higher { -v } else { v };
        (0..trials.len()).min_by(|&i, &j| key(trials[i].1).total_cmp(&key(trials[j].1))).unwrap() as u64
    };
    assert_eq!(auc_summary["metric"], "roc_auc");
    assert_eq!(loss_summary["best_trial"].as_u64().unwrap(), arg_best(&by_loss, false));
    assert_eq!(auc_summary["best_trial"].as_u64().unwrap(), arg_best(&by_auc, true), "the highest AUC is best");
    let (lowest_loss, highest_auc) = (arg_best(&by_loss, false), arg_best(&by_auc, true));
    assert_ne!(lowest_loss, highest_auc, "on this table the loss and the AUC disagree: {by_loss:?} {by_auc:?}");
    // Each value is what the metric says: AUCs in (0.5, 1], the best's
    // validation metrics agree with it.
    assert!(by_auc.iter().all(|t| t.1 > 0.5 && t.1 <= 1.0), "{by_auc:?}");
    let auc = auc_summary["valid_metrics"]["roc_auc"].as_f64().unwrap();
    assert!((auc - by_auc[highest_auc as usize].1).abs() < 1e-9, "{auc_summary}");
    // A study ranked by one metric is not resumed under another.
    let args = ["tune", "--data", "t.csv", "--target", "y", "--study", "log_loss", "--metric", "pr_auc"];
    let out = gradus(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("other inputs, metric or class weights"), "{}", stderr(&out));
}

#[test]
fn a_file_past_the_memory_budget_is_refused_before_it_is_read() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    // 2.3 MB of text, plain and gzip'd (the gzip is a few KB: a small file
    // that unpacks to much more).
    let text: String = std::iter::once("a,b,y\n".to_string())
        .chain((0..400_000).map(|i| format!("{},1,{}\n", i % 10, i % 2)))
        .collect();
    std::fs::write(dir.path().join("t.csv"), &text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(dir.path().join("t.csv.gz"), gz.finish().unwrap()).unwrap();
    let run = |file: &str, budget: &str| {
        Command::new(env!("CARGO_BIN_EXE_gradus"))
            .args(["tune", "--data", file, "--trials", "1", "--epochs", "1"])
            .env("GRADUS_MAX_MEMORY", budget)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    for (file, what) in [("t.csv", "its 2.3 MB of text"), ("t.csv.gz", "it unpacks to more than 2.0 MB of text")] {
        let out = run(file, "8M");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("{file}: {what}")) && err.contains("8.0 MB (GRADUS_MAX_MEMORY=8M)"), "{err}");
        assert!(!dir.path().join("gradus.db").exists(), "refused before any study was made");
    }
    // Text that fits (a table takes up to 4 times its 2.3 MB), encoded to
    // more than fits in the copies tuning makes: one value a row (1.6 MB;
    // the bins are not held) with its label, held 2.2 times or more, and
    // 16 bytes a row besides: 13.4 MB or more.
    let out = run("t.csv", "12M");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("t.csv: its 400000 rows encode to 1 value each")
            && err.contains("more than the memory budget of 12.0 MB"),
        "{err}"
    );
    assert!(!dir.path().join("gradus.db").exists(), "refused before any study was made");
    // A budget that is not a size is an error, not a default.
    let out = run("t.csv", "lots");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("'lots' is not a size"), "{}", stderr(&out));
}

#[test]
fn periodic_embeddings_tune_on_a_table_predict_raw_rows_and_bad_flags_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), mixed_table(400)).unwrap();
    // A space file fixing the embeddings on: every trial's MLP embeds `age`.
    let space = r#"{"model": {"type": "categorical", "choices": ["mlp"]},
        "embedding": {"type": "categorical", "choices": ["periodic"]}}"#;
    std::fs::write(dir.path().join("space.json"), space).unwrap();
    let args = ["tune", "--data", "train.csv", "--target", "label", "--trials", "3", "--epochs", "10"];
    let out = gradus(dir.path(), &[&args[..], &["--space", "space.json", "--out", "m.gradus", "-q"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gradus(dir.path(), &["inspect", "m.gradus"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("periodic embeddings of 1 numeric column (16 frequencies"), "{text}");
    let new = "id,age,color,member,joined\nz1,33, purple ,yes,2024-02-02\nz2,NA,?,,\n";
    std::fs::write(dir.path().join("new.csv"), new).unwrap();
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "new.csv", "--proba"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
    // Without a space file naming them, a table this small (320 rows a
    // trial) is searched without them.
    let out = gradus(dir.path(), &[&args[..], &["--model", "mlp", "--study", "plain", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().last().unwrap()).unwrap();
    assert!(summary["best_params"]["width"].is_number(), "{summary}");
    assert!(summary["best_params"].get("embedding").is_none(), "{summary}");
    // A choice gradus does not train is refused before any trial.
    std::fs::write(dir.path().join("bad.json"), r#"{"embedding": {"type": "categorical", "choices": ["fourier"]}}"#)
        .unwrap();
    let out = gradus(dir.path(), &[&args[..], &["--space", "bad.json", "--study", "other"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("embedding choice \"fourier\" is not one gradus can train"), "{}", stderr(&out));

    // gradus train: the flags apply to MLPs, sigma to periodic embeddings only.
    let train = ["train", "--data", "builtin:wine", "--epochs", "5"];
    for (extra, says) in [
        (&["--model", "logistic", "--embedding", "periodic"][..], "--embedding applies to --model mlp"),
        (&["--model", "mlp", "--embedding-sigma", "2"][..], "--embedding-sigma applies to --embedding periodic"),
        (&["--model", "mlp", "--embedding", "periodic", "--embedding-sigma", "0"][..], "sigma"),
        (&["--model", "mlp", "--embedding", "fourier"][..], "fourier"),
    ] {
        let out = gradus(dir.path(), &[&train[..], extra].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
    }
    let out = gradus(
        dir.path(),
        &[&train[..], &["--model", "mlp", "--embedding", "periodic", "--embedding-sigma", "0.5", "--out", "w.gradus"]]
            .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(gradus(dir.path(), &["inspect", "w.gradus"]).stdout).unwrap();
    assert!(
        text.contains("periodic embeddings of 13 numeric columns (16 frequencies, σ 0.5, 16 values each)"),
        "{text}"
    );
}

#[test]
fn high_cardinality_columns_are_embedded_hashed_or_cut_as_asked_and_predict_unseen_levels() {
    let dir = tempfile::tempdir().unwrap();
    // 80 shops seen 12 times each, the label following the shop's number.
    let mut text = String::from("shop,x,label\n");
    for i in 0..960 {
        let shop = i % 80;
        text.push_str(&format!("shop{shop},{},{}\n", i % 7, if shop % 3 == 0 { "a" } else { "b" }));
    }
    std::fs::write(dir.path().join("t.csv"), text).unwrap();
    let args = ["tune", "--data", "t.csv", "--target", "label", "--trials", "3", "--epochs", "10", "-q"];
    for (how, says) in [
        ("embed", "one-hot: 80 levels, embedded by MLPs"),
        ("hash", "hashed into 128 buckets"),
        ("onehot", "one-hot: 80 levels"),
        ("other", "one-hot: 50 levels + other"),
    ] {
        let space = r#"{"model": {"type": "categorical", "choices": ["mlp"]}}"#;
        std::fs::write(dir.path().join("space.json"), space).unwrap();
        let out = gradus(
            dir.path(),
            &[&args[..], &["--high-cardinality", how, "--space", "space.json", "--study", how, "--out", "m.gradus"]]
                .concat(),
        );
        assert!(out.status.success(), "{how}: {}", stderr(&out));
        let about = String::from_utf8(gradus(dir.path(), &["inspect", "m.gradus"]).stdout).unwrap();
        assert!(about.contains(says), "{how}: {about}");
        assert_eq!(about.contains("16-value embeddings of 1 categorical column"), how == "embed", "{about}");
        std::fs::write(dir.path().join("new.csv"), "shop,x\nshop3,1\nshop999,2\n,3\n").unwrap();
        let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "new.csv", "--proba"]);
        assert!(out.status.success(), "{how}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        for row in text.lines().skip(1) {
            let p: Vec<f64> = row.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
            assert!(p.iter().all(|v| v.is_finite()), "{how}: {row}");
        }
    }
    let out = gradus(dir.path(), &[&args[..], &["--high-cardinality", "lookup"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'lookup' is not one of other, hash, embed, onehot"), "{}", stderr(&out));
}
