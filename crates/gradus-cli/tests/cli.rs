//! Runs the real `gradus` binary in a temporary directory and checks its
//! output and exit codes.

use std::path::Path;
use std::process::Command;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn gradus(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gradus"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the gradus binary runs");
    Output {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `gradus train` on `csv` (written to data.csv) with extra `args` and
/// checks that it fails with exit code 2 and one clear line naming `expected`.
fn assert_bad_input(csv: Option<&str>, args: &[&str], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(text) = csv {
        std::fs::write(dir.path().join("data.csv"), text).unwrap();
    }
    let mut all = vec!["train"];
    if !args.contains(&"--data") {
        all.extend(["--data", "data.csv"]);
    }
    all.extend(args);
    let out = gradus(dir.path(), &all);
    assert_eq!(out.code, 2, "exit code for {args:?}; stderr: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    assert!(out.stderr.starts_with("error: "), "{:?}", out.stderr);
    assert!(out.stderr.contains(expected), "expected {expected:?} in {:?}", out.stderr);
}

const GOOD: &str = "a,b,y\n1,2,0\n2,1,1\n3,4,0\n4,3,1\n";

#[test]
fn missing_file() {
    assert_bad_input(None, &["--model", "linear"], "cannot read 'data.csv': No such file");
}

#[test]
fn empty_file() {
    assert_bad_input(Some(""), &["--model", "linear"], "data.csv: the file is empty");
}

#[test]
fn header_without_rows() {
    assert_bad_input(Some("a,b,y\n"), &["--model", "linear"], "data.csv: the header has no data rows");
}

#[test]
fn ragged_row() {
    assert_bad_input(
        Some("a,b,y\n1,2,3\n4,5\n"),
        &["--model", "linear"],
        "data.csv:3: row has 2 fields but the header has 3",
    );
}

#[test]
fn non_numeric_feature() {
    assert_bad_input(
        Some("a,b,y\n1,2,3\n4,five,6\n"),
        &["--model", "linear"],
        "data.csv:3:2: value 'five' in column 'b' is not a number",
    );
}

#[test]
fn nan_feature() {
    assert_bad_input(
        Some("a,b,y\n1,2,3\n4,5,6\nNaN,1,2\n"),
        &["--model", "linear"],
        "data.csv:4:1: value 'NaN' in column 'a' is not finite",
    );
}

#[test]
fn inf_feature() {
    assert_bad_input(
        Some("a,b,y\n1,inf,3\n"),
        &["--model", "linear"],
        "data.csv:2:2: value 'inf' in column 'b' is not finite",
    );
}

#[test]
fn unknown_target_column() {
    assert_bad_input(
        Some(GOOD),
        &["--model", "logistic", "--target", "label"],
        "data.csv: no column named 'label' to use as the target (columns: a, b, y)",
    );
}

#[test]
fn target_with_one_class() {
    assert_bad_input(
        Some("a,b,y\n1,2,cat\n3,4,cat\n"),
        &["--model", "logistic"],
        "data.csv: target column 'y' has only one class ('cat')",
    );
}

#[test]
fn non_positive_learning_rate() {
    assert_bad_input(Some(GOOD), &["--model", "logistic", "--lr", "0"], "invalid lr 0: must be a finite number > 0");
    assert_bad_input(Some(GOOD), &["--model", "logistic", "--lr", "-0.5"], "invalid lr -0.5");
}

#[test]
fn zero_batch_size() {
    assert_bad_input(Some(GOOD), &["--model", "logistic", "--batch-size", "0"], "invalid batch size 0");
}

#[test]
fn zero_epochs() {
    assert_bad_input(Some(GOOD), &["--model", "logistic", "--epochs", "0"], "invalid epochs 0");
}

#[test]
fn unknown_builtin() {
    assert_bad_input(None, &["--data", "builtin:nope", "--model", "linear"], "unknown built-in dataset 'nope'");
}

#[test]
fn class_labels_for_a_regression_model() {
    assert_bad_input(
        Some("a,b,y\n1,2,3\n4,5,dog\n"),
        &["--model", "linear"],
        "data.csv:3:3: value 'dog' in column 'y' is not a number",
    );
}

#[test]
fn logistic_on_three_classes_points_to_softmax() {
    assert_bad_input(None, &["--data", "builtin:iris", "--model", "logistic"], "use --model softmax");
}

#[test]
fn unknown_flag_value_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(dir.path(), &["train", "--data", "builtin:iris", "--model", "tree"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("invalid value 'tree'"), "{}", out.stderr);
}

#[test]
fn train_prints_the_loss_curve_and_final_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(
        dir.path(),
        &["train", "--data", "builtin:iris", "--model", "softmax", "--epochs", "20", "--log-every", "10"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let steps: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("step ")).collect();
    // 120 training rows, batch 32 → 4 steps an epoch, 80 steps, a line every 10.
    assert_eq!(steps.len(), 8, "{}", out.stdout);
    assert!(steps[0].starts_with("step 0 loss 1.0986 "), "ln 3 from zero weights: {}", steps[0]);
    assert!(out.stdout.contains("\ntrain    accuracy "), "{}", out.stdout);
    assert!(out.stdout.contains("\nvalid    accuracy "), "{}", out.stdout);
}

#[test]
fn train_json_is_one_object_with_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(
        dir.path(),
        &[
            "train",
            "--data",
            "builtin:diabetes",
            "--model",
            "linear",
            "--optimizer",
            "gd",
            "--lr",
            "0.1",
            "--epochs",
            "300",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["task"], "regression");
    assert_eq!(v["termination"], "max_epochs");
    assert_eq!(v["loss_curve"].as_array().unwrap().len(), 300);
    let r2 = v["valid"]["r2"].as_f64().unwrap();
    assert!(r2 > 0.4, "valid R² {r2}");
}

#[test]
fn gzipped_csv_and_a_named_target_column_load() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("d.csv.gz")).unwrap();
    let mut gz = flate2_writer(file);
    let mut text = String::from("label,x1,x2\n");
    for i in 0..40 {
        let (c, s) = if i % 2 == 0 { ("no", -1.0) } else { ("yes", 1.0) };
        text.push_str(&format!("{c},{},{}\n", s + (i as f32) * 0.01, s * 2.0));
    }
    gz.write_all(text.as_bytes()).unwrap();
    drop(gz);
    let out =
        gradus(dir.path(), &["train", "--data", "d.csv.gz", "--target", "label", "--model", "logistic", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["classes"], serde_json::json!(["no", "yes"]));
    assert_eq!(v["features"], 2);
    assert_eq!(v["valid"]["accuracy"], 1.0);
}

/// A gzip stream written by the same library the loader reads with.
fn flate2_writer(file: std::fs::File) -> impl std::io::Write {
    flate2::write::GzEncoder::new(file, flate2::Compression::default())
}

#[test]
fn divergence_exits_1_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(
        dir.path(),
        &["train", "--data", "builtin:diabetes", "--model", "linear", "--optimizer", "gd", "--lr", "5"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("stopped  diverged"), "{}", out.stdout);
    assert!(out.stderr.contains("training diverged") && out.stderr.contains("smaller --lr"), "{}", out.stderr);
}

#[test]
fn datasets_lists_every_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(dir.path(), &["datasets", "--json"]);
    assert_eq!(out.code, 0);
    let rows: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "builtin:iris",
            "builtin:wine",
            "builtin:breast_cancer",
            "builtin:diabetes",
            "builtin:digits",
            "builtin:mnist_5k"
        ]
    );
    assert_eq!((rows[5]["rows"].as_u64(), rows[5]["features"].as_u64()), (Some(5000), Some(784)));
}

#[test]
fn a_saved_model_predicts_and_evaluates_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(
        dir.path(),
        &[
            "train",
            "--data",
            "builtin:iris",
            "--model",
            "mlp",
            "--hidden",
            "16",
            "--optimizer",
            "adamw",
            "--epochs",
            "50",
            "--patience",
            "10",
            "--out",
            "iris.gradus",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["saved_to"], "iris.gradus");
    assert_eq!(v["architecture"], "MLP 4-16-3 relu");

    // Columns in another order, the target missing: predict picks features by name.
    let mut csv = String::from("petal_width,petal_length,sepal_width,sepal_length\n");
    csv.push_str("0.2,1.4,3.5,5.1\n2.3,5.4,3.0,6.2\n");
    std::fs::write(dir.path().join("new.csv"), csv).unwrap();
    let out = gradus(dir.path(), &["predict", "--model", "iris.gradus", "--data", "new.csv", "--out", "preds.csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let preds = std::fs::read_to_string(dir.path().join("preds.csv")).unwrap();
    assert_eq!(preds, "prediction\nsetosa\nvirginica\n", "the classes alone unless --proba");
    let proba = gradus(dir.path(), &["predict", "--model", "iris.gradus", "--data", "new.csv", "--proba"]);
    assert_eq!(proba.code, 0, "{}", proba.stderr);
    let lines: Vec<&str> = proba.stdout.lines().collect();
    assert_eq!(lines[0], "prediction,p_setosa,p_versicolor,p_virginica");
    assert!(lines[1].starts_with("setosa,") && lines[2].starts_with("virginica,"), "{}", proba.stdout);
    let again = gradus(dir.path(), &["predict", "--model", "iris.gradus", "--data", "new.csv", "--proba"]);
    assert_eq!(again.stdout, proba.stdout, "the same file predicts the same bits");

    let out = gradus(dir.path(), &["evaluate", "--model", "iris.gradus", "--data", "builtin:iris", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["metrics"]["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    assert_eq!(v["metrics"]["confusion"].as_array().unwrap().len(), 3);
}

#[test]
fn a_truncated_model_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(dir.path(), &["train", "--data", "builtin:wine", "--model", "softmax", "--out", "m.gradus", "-q"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bytes = std::fs::read(dir.path().join("m.gradus")).unwrap();
    std::fs::write(dir.path().join("cut.gradus"), &bytes[..bytes.len() - 10]).unwrap();
    for command in ["predict", "evaluate"] {
        let out = gradus(dir.path(), &[command, "--model", "cut.gradus", "--data", "builtin:wine"]);
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(out.stderr.contains("cut.gradus: not a readable gradus model file"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "no predictions from a damaged file");
    }
}

#[test]
fn proba_for_a_model_that_predicts_a_number_is_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        gradus(dir.path(), &["train", "--data", "builtin:diabetes", "--model", "linear", "--out", "r.gradus", "-q"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let args = ["predict", "--model", "r.gradus", "--data", "builtin:diabetes", "--proba", "--out", "p.csv"];
    let out = gradus(dir.path(), &args);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--proba needs a classifier; r.gradus predicts a number"), "{}", out.stderr);
    assert!(!dir.path().join("p.csv").exists());
}

#[test]
fn predict_names_a_missing_feature_column() {
    let dir = tempfile::tempdir().unwrap();
    gradus(dir.path(), &["train", "--data", "builtin:iris", "--model", "softmax", "--out", "m.gradus", "-q"]);
    std::fs::write(dir.path().join("few.csv"), "sepal_length,sepal_width\n5.1,3.5\n").unwrap();
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "few.csv"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("few.csv: no column named 'petal_length', a feature the model was trained on"),
        "{}",
        out.stderr
    );
}

#[test]
fn flags_that_do_not_apply_are_rejected() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--model", "softmax", "--optimizer", "adam", "--weight-decay", "0.1"],
            "--weight-decay applies to adamw only",
        ),
        (&["--model", "softmax", "--warmup", "3"], "--warmup applies to --schedule cosine only"),
        (
            &["--model", "softmax", "--optimizer", "lbfgs", "--batch-size", "8"],
            "--batch-size does not apply to --optimizer lbfgs",
        ),
        (&["--model", "softmax", "--loss", "mae"], "--loss chooses a regression loss"),
        (&["--model", "mlp", "--patience", "3", "--valid-fraction", "0"], "early stopping needs a validation set"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--data", "builtin:iris"];
        all.extend_from_slice(args);
        assert_bad_input(None, &all, expected);
    }
}

#[test]
fn every_optimizer_and_schedule_trains_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for optimizer in ["gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs"] {
        let out = gradus(
            dir.path(),
            &[
                "train",
                "--data",
                "builtin:breast_cancer",
                "--model",
                "logistic",
                "--optimizer",
                optimizer,
                "--epochs",
                "30",
                "--json",
            ],
        );
        assert_eq!(out.code, 0, "{optimizer}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let acc = v["valid"]["accuracy"].as_f64().unwrap();
        assert!(acc > 0.9, "{optimizer}: valid accuracy {acc}");
    }
    for schedule in ["constant", "step", "exponential", "cosine", "plateau"] {
        let out = gradus(
            dir.path(),
            &[
                "train",
                "--data",
                "builtin:diabetes",
                "--model",
                "mlp",
                "--hidden",
                "8",
                "--schedule",
                schedule,
                "--epochs",
                "20",
                "--json",
            ],
        );
        assert_eq!(out.code, 0, "{schedule}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["config"]["schedule"]["name"], if schedule == "plateau" { "reduce_on_plateau" } else { schedule });
    }
}

#[test]
fn duplicate_column_names() {
    assert_bad_input(
        Some("a,a,y\n1,2,3\n"),
        &["--model", "linear"],
        "data.csv: column name 'a' appears twice (columns 1 and 2)",
    );
}

#[test]
fn a_file_holding_only_a_byte_order_mark() {
    assert_bad_input(Some("\u{feff}"), &["--model", "linear"], "data.csv: the file is empty");
}

#[test]
fn evaluate_reads_only_the_columns_the_model_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,x,y\n");
    for i in 0..60 {
        csv.push_str(&format!("row{i},{},{}\n", i as f32 / 10.0, if i < 30 { "low" } else { "high" }));
    }
    std::fs::write(dir.path().join("d.csv"), &csv).unwrap();
    std::fs::write(dir.path().join("train.csv"), csv.replace("row", "")).unwrap();
    let out = gradus(dir.path(), &["train", "--data", "train.csv", "--model", "logistic", "--out", "m.gradus", "-q"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The model took `id` as a feature; a file whose id column is text cannot serve it.
    let out = gradus(dir.path(), &["evaluate", "--model", "m.gradus", "--data", "d.csv"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("value 'row0' in column 'id' is not a number"), "{}", out.stderr);
    // Trained without `id`, the same file evaluates: the text column is never read.
    std::fs::write(
        dir.path().join("train2.csv"),
        csv.lines().map(|l| l.split_once(',').unwrap().1).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let out = gradus(dir.path(), &["train", "--data", "train2.csv", "--model", "logistic", "--out", "m2.gradus", "-q"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = gradus(dir.path(), &["evaluate", "--model", "m2.gradus", "--data", "d.csv", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn an_out_path_that_cannot_be_written_is_exit_2_before_any_work_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("m.gradus"), "x").unwrap();
    let train = ["train", "--data", "builtin:iris", "--model", "softmax", "-q", "--out"];
    let tune = ["tune", "--data", "builtin:iris", "-q", "--out"];
    let predict = ["predict", "--model", "m.gradus", "--data", "builtin:iris", "--out"];
    for command in [&train[..], &tune[..], &predict[..]] {
        for (path, expected) in [
            ("taken", "--out taken: is a directory"),
            ("no/such/dir/m.gradus", "--out no/such/dir/m.gradus: the directory 'no/such/dir' does not exist"),
        ] {
            let out = gradus(dir.path(), &[command, &[path]].concat());
            assert_eq!(out.code, 2, "{command:?} {path}: {}", out.stderr);
            assert!(out.stderr.contains(expected), "{command:?}: {}", out.stderr);
        }
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["m.gradus", "taken"], "no study, probe or temporary file is left behind");
}

/// Renaming a finished file over `--out` would destroy what is not a
/// regular file there: as root, `--out /dev/null` replaced the system's null
/// device with a regular file (and broke later builds reading from it).
#[cfg(unix)]
#[test]
fn an_out_path_that_is_a_device_or_a_symlink_is_written_through_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(dir.path(), &["train", "--data", "builtin:iris", "--model", "softmax", "-q", "--out", "m.gradus"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "builtin:iris", "--out", "/dev/stdout"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 151, "the predictions arrive on stdout: {}", out.stdout);
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "builtin:iris", "--out", "/dev/null"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device(), "/dev/null is still a device");
    std::fs::create_dir(dir.path().join("models")).unwrap();
    std::os::unix::fs::symlink("models/real.gradus", dir.path().join("link.gradus")).unwrap();
    for _ in 0..2 {
        let args = ["train", "--data", "builtin:iris", "--model", "softmax", "-q", "--out", "link.gradus"];
        let out = gradus(dir.path(), &args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let link = std::fs::symlink_metadata(dir.path().join("link.gradus")).unwrap();
        assert!(link.file_type().is_symlink(), "the link is kept");
        let out = gradus(dir.path(), &["evaluate", "--model", "models/real.gradus", "--data", "builtin:iris"]);
        assert_eq!(out.code, 0, "the model is saved at the link's target: {}", out.stderr);
    }
    let mut names: Vec<_> =
        std::fs::read_dir(dir.path().join("models")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["real.gradus"], "no temporary file is left beside the target");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradus"))
        .args(["train", "--data", "builtin:iris", "--model", "softmax", "--log-every", "1"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once, as `| head -0` would
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}
