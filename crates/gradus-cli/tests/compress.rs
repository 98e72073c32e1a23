//! `gradus compress` as a user runs it: a tuned ensemble distilled into one
//! network, the figures before and after, what the file records, and bad input.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn gradus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().expect("the gradus binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A tuned ensemble of MLPs on wine in `dir/big.gradus`.
fn tuned(dir: &Path) {
    let args = ["tune", "--data", "builtin:wine", "--model", "mlp", "--trials", "6", "--epochs", "40"];
    let out = gradus(dir, &[&args[..], &["--ensemble", "3", "--out", "big.gradus", "--quiet"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_ensemble_distils_into_one_smaller_network_that_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tuned(d);
    let args = ["compress", "--model", "big.gradus", "--data", "builtin:wine", "--distill", "--hidden", "16"];
    let found = json(&gradus(d, &[&args[..], &["--out", "small.gradus", "--json"]].concat()));
    let (before, after) = (&found["before"], &found["after"]);
    assert!(after["bytes"].as_u64().unwrap() < before["bytes"].as_u64().unwrap(), "{found}");
    let accuracy = |f: &Value| f["metrics"]["accuracy"].as_f64().unwrap();
    // 27 validation rows: the student may miss one more than the ensemble.
    assert!(accuracy(after) >= accuracy(before) - 0.04, "{found}");
    assert!(accuracy(after) > 0.85, "{found}");
    let student = found["compressed"].as_str().unwrap();
    assert!(student.starts_with("MLP ") && student.ends_with("-16-3 relu"), "{student}");
    let inspected = json(&gradus(d, &["inspect", "small.gradus", "--json"]));
    let compression = &inspected["members"][0]["compression"];
    assert_eq!(compression[0]["kind"], "distilled", "{inspected}");
    assert_eq!(compression[0]["members"], 3, "{inspected}");
    let text = String::from_utf8(gradus(d, &["inspect", "small.gradus"]).stdout).unwrap();
    assert!(text.contains("distilled from ensemble of"), "{text}");
    assert!(text.contains("made by  gradus compress --distill from big.gradus on builtin:wine"), "{text}");
    assert!(text.contains("before   ") && text.contains("after    "), "{text}");
    // The student predicts as any model does.
    let out = gradus(d, &["evaluate", "--model", "small.gradus", "--data", "builtin:wine", "--json"]);
    assert!(json(&out)["metrics"]["accuracy"].as_f64().unwrap() > 0.85);
    // The report as text: a before and an after line.
    let out = gradus(d, &[&args[..], &["--out", "small2.gradus"]].concat());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  before ") && text.contains("  after ") && text.contains("x smaller"), "{text}");
    // Distilled, then quantised: the file records both, in order.
    let found = json(&gradus(d, &[&args[..], &["--int8", "--out", "small8.gradus", "--json"]].concat()));
    assert_eq!(found["compression"], "distill+int8", "{found}");
    assert!(accuracy(&found["after"]) > 0.85, "{found}");
    let inspected = json(&gradus(d, &["inspect", "small8.gradus", "--json"]));
    let kinds: Vec<&Value> =
        inspected["members"][0]["compression"].as_array().unwrap().iter().map(|c| &c["kind"]).collect();
    assert_eq!(kinds, ["distilled", "int8"], "{inspected}");
    let text = String::from_utf8(gradus(d, &["inspect", "small8.gradus"]).stdout).unwrap();
    assert!(text.contains("made by  gradus compress --distill --int8 from big.gradus"), "{text}");
    let out = gradus(d, &["evaluate", "--model", "small8.gradus", "--data", "builtin:wine", "--json"]);
    assert!(json(&out)["metrics"]["accuracy"].as_f64().unwrap() > 0.85);
    let out =
        gradus(d, &["compress", "--model", "small8.gradus", "--data", "builtin:wine", "--int8", "--out", "x.gradus"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("in int8 already"), "{}", stderr(&out));
}

#[test]
fn tune_distill_saves_the_student_and_reports_both() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Wine's ensembles are small and (in a test build) slow to time: a
    // student 2x faster, not the default 8x.
    let args = [
        "tune",
        "--data",
        "builtin:wine",
        "--model",
        "mlp",
        "--trials",
        "4",
        "--epochs",
        "20",
        "--distill",
        "--distill-speedup",
        "2",
        "--distill-int8",
    ];
    let out = gradus(d, &[&args[..], &["--out", "d.gradus", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["event"] == "summary")
        .unwrap();
    let distilled = &summary["distilled"];
    assert!(distilled["student"].as_str().unwrap().starts_with("MLP "), "{summary}");
    assert_eq!(distilled["int8"], true, "{summary}");
    assert_eq!(summary["test_metrics"], distilled["after"]["metrics"], "the saved model's test is the student's");
    let inspected = json(&gradus(d, &["inspect", "d.gradus", "--json"]));
    assert_eq!(inspected["members"].as_array().unwrap().len(), 1);
    let kinds: Vec<&Value> =
        inspected["members"][0]["compression"].as_array().unwrap().iter().map(|c| &c["kind"]).collect();
    assert_eq!(kinds, ["distilled", "int8"], "{inspected}");
}

#[test]
fn pruning_zeroes_most_weights_keeps_the_accuracy_and_stores_them_sparsely() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["train", "--data", "builtin:digits", "--model", "mlp", "--hidden", "128", "--epochs", "30"];
    let out = gradus(d, &[&args[..], &["--lr", "0.001", "--out", "mlp.gradus", "--quiet"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let args = ["compress", "--model", "mlp.gradus", "--data", "builtin:digits", "--prune", "0.8", "--epochs", "50"];
    let found = json(&gradus(d, &[&args[..], &["--out", "pruned.gradus", "--json"]].concat()));
    let (before, after) = (&found["before"], &found["after"]);
    let accuracy = |f: &Value| f["metrics"]["accuracy"].as_f64().unwrap();
    // 270 validation rows: at most a point lost.
    assert!(accuracy(after) >= accuracy(before) - 0.01, "{found}");
    let smaller = before["bytes"].as_f64().unwrap() / after["bytes"].as_f64().unwrap();
    // 80% of the weights gone, each kept one stored as an index and a
    // value: 2.5x at most, less the biases and the header.
    assert!(smaller > 1.9, "{found}");
    let inspected = json(&gradus(d, &["inspect", "pruned.gradus", "--json"]));
    let pruned = &inspected["members"][0]["compression"][0];
    assert_eq!(pruned["kind"], "pruned", "{inspected}");
    let sparsity = pruned["sparsity"].as_f64().unwrap();
    assert!((sparsity - 0.8).abs() < 1e-3, "{sparsity}");
    let out = gradus(d, &["evaluate", "--model", "pruned.gradus", "--data", "builtin:digits", "--json"]);
    assert!(json(&out)["metrics"]["accuracy"].as_f64().unwrap() > 0.9);
    // Pruned again: refused, as a distilled model distilled again is.
    let out = gradus(
        d,
        &["compress", "--model", "pruned.gradus", "--data", "builtin:digits", "--prune", "0.9", "--out", "p2.gradus"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pruned already"), "{}", stderr(&out));
    assert!(!d.join("p2.gradus").exists());
}

#[test]
fn int8_keeps_the_accuracy_in_a_quarter_of_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["train", "--data", "builtin:digits", "--model", "mlp", "--hidden", "128", "--epochs", "30"];
    let out = gradus(d, &[&args[..], &["--lr", "0.001", "--out", "mlp.gradus", "--quiet"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let args = ["compress", "--model", "mlp.gradus", "--data", "builtin:digits", "--int8"];
    let found = json(&gradus(d, &[&args[..], &["--out", "int8.gradus", "--json"]].concat()));
    let (before, after) = (&found["before"], &found["after"]);
    let accuracy = |f: &Value| f["metrics"]["accuracy"].as_f64().unwrap();
    // 270 validation rows: at most one more missed.
    assert!(accuracy(after) >= accuracy(before) - 0.004, "{found}");
    let smaller = before["bytes"].as_f64().unwrap() / after["bytes"].as_f64().unwrap();
    // A byte a weight instead of four; the header (the preprocessing, ~7
    // KB here) and the f32 biases and scales stay: 2.6x for this small MLP.
    assert!(smaller > 2.3, "{found}");
    let inspected = json(&gradus(d, &["inspect", "int8.gradus", "--json"]));
    assert_eq!(inspected["members"][0]["compression"][0]["kind"], "int8", "{inspected}");
    let out = gradus(d, &["evaluate", "--model", "int8.gradus", "--data", "builtin:digits", "--json"]);
    assert!(json(&out)["metrics"]["accuracy"].as_f64().unwrap() > 0.9);
    for (how, says) in [("--int8", "in int8 already"), ("--prune", "prune the model it came from, then quantise")] {
        let mut args = vec!["compress", "--model", "int8.gradus", "--data", "builtin:digits", "--out", "x.gradus", how];
        if how == "--prune" {
            args.push("0.5");
        }
        let out = gradus(d, &args);
        assert_eq!(out.status.code(), Some(2), "{how}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{how}: {}", stderr(&out));
    }
}

#[test]
fn bad_input_is_an_error_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tuned(d);
    let base = ["compress", "--model", "big.gradus", "--data", "builtin:wine", "--out", "small.gradus"];
    let out = gradus(d, &[&base[..], &["--distill", "--hidden", "8"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(d.join("other.csv"), "x,y,label\n1,2,a\n3,4,b\n").unwrap();
    for (args, says) in [
        (
            vec!["compress", "--model", "small.gradus", "--data", "builtin:wine", "--out", "s2.gradus", "--distill"],
            "distilled already",
        ),
        (base[..].to_vec(), "<--distill|--prune <SPARSITY>|--int8>"),
        ([&base[..], &["--distill", "--prune", "0.5"]].concat(), "cannot be used with"),
        ([&base[..], &["--int8", "--prune", "0.5"]].concat(), "cannot be used with"),
        ([&base[..], &["--prune", "1"]].concat(), "between 0 and 1"),
        ([&base[..], &["--prune", "0"]].concat(), "between 0 and 1"),
        ([&base[..], &["--prune=-0.2"]].concat(), "between 0 and 1"),
        ([&base[..], &["--prune", "0.5", "--hidden", "8"]].concat(), "--hidden sizes a distilled student"),
        ([&base[..], &["--distill", "--valid-fraction", "1.5"]].concat(), "--valid-fraction must be in (0, 1)"),
        ([&base[..], &["--distill", "--hidden", "0"]].concat(), "a hidden layer needs at least one unit"),
        ([&base[..], &["--distill", "--speedup", "0.5"]].concat(), "--speedup must be a number"),
        (
            vec!["tune", "--data", "builtin:wine", "--distill", "--distill-speedup", "0.5", "--out", "s2.gradus"],
            "--distill-speedup must be a number",
        ),
        (vec!["tune", "--data", "builtin:wine", "--distill-speedup", "2"], "--distill"),
        (vec!["tune", "--data", "builtin:wine", "--distill-int8"], "--distill"),
        (
            vec!["compress", "--model", "big.gradus", "--data", "other.csv", "--out", "s3.gradus", "--distill"],
            "alcohol",
        ),
    ] {
        let out = gradus(d, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    for never in ["s2.gradus", "s3.gradus"] {
        assert!(!d.join(never).exists(), "{never} written on bad input");
    }
}
