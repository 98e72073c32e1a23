//! `gradus tune`, run as a real process on small budgets.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn gradus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().expect("the gradus binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The study's trials as `gradus trials --format json` lists them.
fn trials(dir: &Path, study: &str) -> Vec<serde_json::Value> {
    let out = gradus(dir, &["trials", "--study", study, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    json_lines(&out)
}

#[test]
fn tune_records_every_trial_and_saves_a_model_predict_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(
        dir.path(),
        &["tune", "--data", "builtin:iris", "--trials", "6", "--epochs", "30", "--out", "best.gradus", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut lines = json_lines(&out);
    let columns = lines.remove(0);
    assert_eq!(columns["event"], "columns", "the column table comes first");
    assert_eq!(columns["columns"][0]["kind"], "numeric");
    assert_eq!(columns["inputs"], 61, "4 numbers and their piecewise-linear bins");
    assert_eq!(lines.len(), 7, "six trial lines and a summary");
    assert!(lines[..6].iter().all(|l| l["event"] == "trial"));
    let summary = &lines[6];
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["study"], "tune-iris");
    let counts = &summary["trials"];
    let total = ["complete", "pruned", "failed"].iter().map(|k| counts[*k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(total, 6);
    // Six short trials, the defaults first: well above chance (1/3).
    assert!(summary["test_metrics"]["accuracy"].as_f64().unwrap() > 0.5, "{summary}");
    // The best configuration's validation metrics, re-measured on its own validation rows.
    assert!(summary["valid_metrics"]["accuracy"].as_f64().unwrap() > 0.5, "{summary}");
    // Every trial is in the storage, numbered 0..5.
    let stored = trials(dir.path(), "tune-iris");
    let numbers: Vec<u64> = stored.iter().map(|t| t["trial"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..6).collect::<Vec<_>>());
    // Scored by cross-validation (150 rows), the final model is the equal
    // mean of the best complete trials (ten at most), best first.
    let members: Vec<u64> = summary["ensemble"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    let complete = counts["complete"].as_u64().unwrap() as usize;
    assert_eq!(members.len(), complete.min(10), "{summary}");
    assert_eq!(members[0], summary["best_trial"].as_u64().unwrap());
    assert_eq!(summary["ensemble_weights"], serde_json::json!(vec![1.0; members.len()]));
    assert!(summary["ensemble_selection"].is_null(), "{summary}");
    // The saved model predicts, and `evaluate` reads it.
    let out = gradus(dir.path(), &["predict", "--model", "best.gradus", "--data", "builtin:iris"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 151, "a header and 150 rows");
    let out = gradus(dir.path(), &["evaluate", "--model", "best.gradus", "--data", "builtin:iris"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.contains(&format!("ensemble of {}", members.len())), members.len() > 1, "{text}");
    // Running the same command again finds the study complete: no new trials.
    let again = gradus(dir.path(), &["tune", "--data", "builtin:iris", "--trials", "6", "--epochs", "30", "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(json_lines(&again).len(), 2, "only the column table and the summary");
    assert_eq!(trials(dir.path(), "tune-iris").len(), 6);
}

#[test]
fn the_same_command_gives_the_same_study_and_model_on_two_threads() {
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let args = ["tune", "--data", "builtin:iris", "--trials", "16", "--epochs", "30", "--jobs", "2"];
        let out = gradus(dir.path(), &[&args[..], &["--out", "m.gradus", "--json"]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let mut lines = json_lines(&out);
        let summary = lines.pop().unwrap();
        lines.retain(|l| l["event"] == "trial");
        // Trials finish in whatever order the threads take; compare them by number.
        lines.sort_by_key(|l| l["trial"].as_u64());
        let model = std::fs::read(dir.path().join("m.gradus")).unwrap();
        (lines, [summary["best_trial"].clone(), summary["ensemble"].clone(), summary["test_metrics"].clone()], model)
    };
    let first = run();
    assert_eq!(first.0.len(), 16);
    assert!(first.0.iter().any(|t| t["state"] == "pruned"), "the pruner took part: {:?}", first.0);
    let again = run();
    assert_eq!(again.0, first.0, "the same trials");
    assert_eq!(again.1, first.1, "the same final model and test score");
    assert!(again.2 == first.2, "the same model file, byte for byte");
}

#[test]
fn an_interrupted_tune_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // A hold-out set and short trials keep the three resumed trials quick.
    let args = [
        "tune",
        "--data",
        "builtin:iris",
        "--model",
        "mlp",
        "--trials",
        "500",
        "--pruner",
        "none",
        "--epochs",
        "30",
        "--valid-fraction",
        "0.2",
        "--json",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradus"))
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once two trials have finished.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        lines.next().expect("a trial line").unwrap();
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an interrupted run exits 1");
    let summary: serde_json::Value = serde_json::from_str(rest.last().expect("a summary")).unwrap();
    assert_eq!(summary["interrupted"], true);
    let first = trials(dir.path(), "tune-iris");
    assert!(first.len() < 500, "stopped early: {} trials", first.len());
    assert!(first.iter().all(|t| t["state"] != "running"), "no trial left running");
    // The same command resumes: numbering continues (three more trials here).
    let total = (first.len() + 3).to_string();
    let out = gradus(dir.path(), &args.map(|a| if a == "500" { total.as_str() } else { a }));
    assert!(out.status.success(), "{}", stderr(&out));
    let all = trials(dir.path(), "tune-iris");
    assert_eq!(all.len(), first.len() + 3);
    let numbers: Vec<u64> = all.iter().map(|t| t["trial"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..all.len() as u64).collect::<Vec<_>>());
}

fn assert_bad_input(args: &[&str], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("space.toml"), "[typo_rate]\ntype = \"float\"\nlow = 0.1\nhigh = 0.2\n").unwrap();
    let out = gradus(dir.path(), args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    assert!(!dir.path().join("gradus.db").exists(), "no storage is made for bad input");
}

#[test]
fn on_a_hold_out_split_ensemble_selection_weighs_the_members_and_never_loses_to_the_best_alone() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["tune", "--data", "builtin:iris", "--trials", "8", "--epochs", "30", "--valid-fraction", "0.3"];
    let out = gradus(dir.path(), &[&args[..], &["--out", "m.gradus", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json_lines(&out).pop().unwrap();
    let selection = &summary["ensemble_selection"];
    let mixed = selection["value"].as_f64().unwrap();
    let single = selection["best_single_value"].as_f64().unwrap();
    assert!(mixed <= single, "{summary}");
    let members = summary["ensemble"].as_array().unwrap();
    let weights = summary["ensemble_weights"].as_array().unwrap();
    assert_eq!(members.len(), weights.len());
    let picks = weights.iter().map(|w| w.as_f64().unwrap()).sum::<f64>();
    assert!(picks.fract() == 0.0 && (1.0..=25.0).contains(&picks), "weights count picks, 25 at most: {summary}");
    assert!(dir.path().join("m.gradus").exists());
}

#[test]
fn a_space_file_naming_an_unknown_hyperparameter_is_refused() {
    assert_bad_input(
        &["tune", "--data", "builtin:iris", "--space", "space.toml"],
        "space.toml: unknown hyperparameter 'typo_rate'",
    );
}

#[test]
fn a_model_that_does_not_fit_the_target_is_refused() {
    assert_bad_input(&["tune", "--data", "builtin:diabetes", "--model", "softmax"], "--model softmax");
}

#[test]
fn bad_fractions_and_budgets_are_refused() {
    assert_bad_input(&["tune", "--data", "builtin:iris", "--valid-fraction", "1.5"], "--valid-fraction");
    assert_bad_input(&["tune", "--data", "builtin:iris", "--trials", "0"], "at least 1");
    // The flags tune shares with train fail as train's do, with train's words.
    for (flag, expected) in [("--patience", "invalid patience 0: must be at least 1"), ("--epochs", "invalid epochs 0")]
    {
        assert_bad_input(&["tune", "--data", "builtin:iris", flag, "0"], expected);
        let dir = tempfile::tempdir().unwrap();
        let train = ["train", "--data", "builtin:iris", "--model", "softmax", flag, "0"];
        let out = gradus(dir.path(), &train);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "train {flag}: {}", stderr(&out));
    }
    assert_bad_input(&["tune", "--data", "builtin:iris", "--timeout", "5x"], "unknown unit");
    assert_bad_input(&["tune", "--data", "builtin:iris", "--ensemble", "0"], "--ensemble");
    assert_bad_input(&["tune", "--data", "builtin:iris", "--sampler", "grid"], "dropout, lr, weight_decay are not");
}

#[test]
fn too_few_rows_for_the_folds_is_refused() {
    // iris keeps 40 rows of each class for tuning: 50 folds cannot hold them.
    assert_bad_input(
        &["tune", "--data", "builtin:iris", "--cv", "50"],
        "--cv 50 needs at least 50 tuning rows of every class",
    );
    assert_bad_input(&["tune", "--data", "builtin:iris", "--cv", "1"], "at least 2 folds");
}

#[test]
fn cross_validated_trials_report_every_fold() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(
        dir.path(),
        &[
            "tune",
            "--data",
            "builtin:wine",
            "--model",
            "softmax",
            "--trials",
            "3",
            "--cv",
            "3",
            "--epochs",
            "20",
            "--pruner",
            "none",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    let trial = &lines[1];
    // Three folds of up to 20 epochs each, all reported.
    let epochs = trial["epochs"].as_u64().unwrap();
    assert!(epochs > 20 && epochs <= 60, "{trial}");
    let summary = lines.last().unwrap();
    assert!(summary["best_epochs"].as_u64().unwrap() <= 20, "{summary}");
}

#[test]
fn small_data_is_scored_by_cross_validation_and_the_defaults_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["tune", "--data", "builtin:iris", "--trials", "3", "--epochs", "5", "--jobs", "1"];
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("trials scored by 5-fold cross-validation"), "{}", stderr(&out));
    // 120 tuning rows of iris, 5 folds: each trial reports 5 folds' epochs.
    let stored = trials(dir.path(), "tune-iris");
    let first = &stored[0]["params"];
    assert_eq!(first["model"], "softmax");
    assert_eq!(first["optimizer"], "adam");
    assert_eq!(first["lr"], 0.01);
    assert_eq!(first["scaling"], "standard");
    assert_eq!(stored[1]["params"]["scaling"], "minmax");
    // A validation fraction, when given, is used instead.
    let out = gradus(
        dir.path(),
        &[
            "tune",
            "--data",
            "builtin:iris",
            "--study",
            "holdout",
            "--trials",
            "1",
            "--epochs",
            "5",
            "--valid-fraction",
            "0.25",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("trials scored on 25% of the tuning rows"), "{}", stderr(&out));
}

#[test]
fn a_regression_shows_the_rmse_in_the_targets_units_and_the_refit_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let args =
        ["tune", "--data", "builtin:diabetes", "--trials", "3", "--epochs", "5", "--jobs", "1", "--model", "linear"];
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let (err, text) = (stderr(&out), String::from_utf8(out.stdout.clone()).unwrap());
    // Trial values are mean squared errors on the standardised target;
    // the RMSE beside them is in the target's units (diabetes: tens).
    let rmse = |line: &str| -> f64 {
        let at = line.find("(RMSE ").unwrap_or_else(|| panic!("no RMSE in {line:?}")) + 6;
        line[at..].split(')').next().unwrap().parse().unwrap()
    };
    let trial_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("trial ") && l.contains(" value ")).collect();
    assert!(!trial_lines.is_empty(), "{err}");
    for line in &trial_lines {
        let value: f64 = line.split(" value ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let r = rmse(line);
        assert!(value > 0.0 && value < 2.0 && r > 20.0 && r < 200.0, "{line}");
    }
    // The refit says what it will cost before it starts, then each member's end.
    assert!(err.contains("on all tuning rows, to average them (about "), "{err}");
    assert!(err.contains("s by the trials' epoch times)"), "{err}");
    let done: Vec<&str> = err.lines().filter(|l| l.starts_with("refit ") && l.contains(" done, ")).collect();
    assert!(!done.is_empty() && done.iter().all(|l| l.contains(" left")), "{err}");
    assert!(text.contains("on the standardised target, RMSE "), "{text}");
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_url_naming_a_missing_database_is_refused() {
    // The server of the store's tests (GRADUS_TEST_POSTGRES, by default CI's local one).
    let server = std::env::var("GRADUS_TEST_POSTGRES").unwrap_or("postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = server.split('?').next().unwrap_or(&server);
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..].find('/').map_or(base.len(), |i| host_start + i);
    let url = format!("{}/gradus_no_such_database", &base[..host_end]);
    assert_bad_input(
        &["tune", "--data", "builtin:iris", "--storage", &url],
        "no database 'gradus_no_such_database' (create it first",
    );
}

#[test]
fn timeout_bounds_the_whole_command_trials_refit_and_test() {
    let dir = tempfile::tempdir().unwrap();
    // Trials that would run for a thousand epochs: only the deadline ends them.
    let args = [
        "tune",
        "--data",
        "builtin:digits",
        "--timeout",
        "4s",
        "--epochs",
        "1000",
        "--patience",
        "1000",
        "--out",
        "m.gradus",
        "--json",
    ];
    let started = std::time::Instant::now();
    let out = gradus(dir.path(), &args);
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(seconds < 4.0 + 2.5, "took {seconds:.1} s with --timeout 4s");
    let summary = json_lines(&out).pop().unwrap();
    assert!(summary["trials"]["complete"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["test_metrics"]["accuracy"].as_f64().unwrap() > 0.8, "{summary}");
    assert!(dir.path().join("m.gradus").exists());
    // The trials stopped by the deadline trained fewer epochs than allowed and still completed.
    let stored = trials(dir.path(), "tune-digits");
    assert!(stored.iter().all(|t| t["state"] != "running"), "nothing left running");
}

#[test]
fn under_a_timeout_members_the_refit_cannot_afford_join_as_their_trials_trained_them() {
    let dir = tempfile::tempdir().unwrap();
    // Hold-out trials (4,000 tuning rows) that only the deadline ends, at
    // 80% of the 8 s. Plain SGD at a small rate still improves at the last
    // epoch, so a refit would take as long as its trial (6 s), and the 1.6 s
    // left (less 1 s kept for the test and the save) fits none: every member
    // joins as trained. (At 5 s and Adam, a busy machine once started no
    // trial before the deadline; and Adam's best epoch came early enough
    // for a refit to fit.)
    std::fs::write(
        dir.path().join("slow.json"),
        r#"{"optimizer": {"type": "categorical", "choices": ["sgd"]},
            "lr": {"type": "categorical", "choices": [0.001]}}"#,
    )
    .unwrap();
    let args = [
        "tune",
        "--data",
        "builtin:mnist_5k",
        "--model",
        "softmax",
        "--space",
        "slow.json",
        "--timeout",
        "8s",
        "--epochs",
        "1000",
        "--patience",
        "1000",
        "--jobs",
        "2",
        "--out",
        "m.gradus",
        "--json",
    ];
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json_lines(&out).pop().unwrap();
    let members = summary["ensemble"].as_array().unwrap().len();
    let retrained: Vec<bool> =
        summary["ensemble_retrained"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
    assert_eq!(retrained.len(), members, "{summary}");
    assert!(summary["test_metrics"]["accuracy"].as_f64().unwrap() > 0.8, "{summary}");
    let out = gradus(dir.path(), &["inspect", "m.gradus"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let as_trained = retrained.iter().filter(|r| !**r).count();
    assert_eq!(text.matches("(as trained in the trial)").count(), as_trained, "{text}");
    assert_eq!(as_trained, members, "no time for a refit: {summary}");
}

#[test]
fn a_space_choice_trains_what_it_names_and_an_unknown_one_is_exit_2_before_any_trial() {
    let dir = tempfile::tempdir().unwrap();
    let space = r#"{"model": {"type": "categorical", "choices": ["mlp"]},
        "activation": {"type": "categorical", "choices": ["sigmoid"]},
        "optimizer": {"type": "categorical", "choices": ["rmsprop"]}}"#;
    std::fs::write(dir.path().join("space.json"), space).unwrap();
    let args = ["tune", "--data", "builtin:iris", "--trials", "2", "--epochs", "5", "--space", "space.json"];
    let out = gradus(dir.path(), &[&args[..], &["--out", "m.gradus", "--ensemble", "1", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gradus(dir.path(), &["inspect", "m.gradus", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("sigmoid") && !text.contains("relu"), "the activation trained is the one named: {text}");
    assert!(text.contains("rmsprop"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("space.json"), r#"{"activation": {"type": "categorical", "choices": ["swish"]}}"#)
        .unwrap();
    let out = gradus(dir.path(), &["tune", "--data", "builtin:iris", "--space", "space.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("space.json: activation choice \"swish\" is not one gradus can train"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("gradus.db").exists(), "refused before any storage or trial");
}

#[test]
fn a_space_whose_largest_network_would_not_fit_in_memory_is_exit_2_before_any_trial() {
    for (space, names) in [
        (r#"{"n_layers": {"type": "int", "low": 1, "high": 100000}}"#, "n_layers 100000"),
        (r#"{"width": {"type": "int", "low": 16, "high": 1000000000000, "log": true}}"#, "width 1000000000000"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("space.json"), space).unwrap();
        let out = gradus(dir.path(), &["tune", "--data", "builtin:iris", "--model", "mlp", "--space", "space.json"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(names) && stderr(&out).contains("fit in memory"), "{}", stderr(&out));
        assert!(!dir.path().join("gradus.db").exists(), "no trial started");
    }
}

#[test]
fn why_each_trial_failed_is_stored_and_shown_and_a_search_with_none_complete_says_why() {
    let dir = tempfile::tempdir().unwrap();
    // Plain SGD at a learning rate of thousands diverges every time.
    let space = r#"{"optimizer": {"type": "categorical", "choices": ["sgd"]},
        "lr": {"type": "float", "low": 1000, "high": 5000}}"#;
    std::fs::write(dir.path().join("space.json"), space).unwrap();
    let args = ["tune", "--data", "builtin:diabetes", "--model", "linear", "--trials", "3", "--epochs", "5"];
    let out = gradus(dir.path(), &[&args[..], &["--space", "space.json", "--json"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no trial of study 'tune-diabetes' completed (3 failed: 3 diverged; 0 pruned)"),
        "{}",
        stderr(&out)
    );
    let lines = json_lines(&out);
    let failed: Vec<&serde_json::Value> = lines.iter().filter(|l| l["event"] == "trial").collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|l| l["fail_reason"].as_str().unwrap().starts_with("diverged at epoch")), "{lines:?}");
    // Stored with the trial: `trials` shows it, in every format.
    let stored = trials(dir.path(), "tune-diabetes");
    assert!(stored.iter().all(|t| t["fail_reason"].as_str().unwrap().starts_with("diverged at epoch")), "{stored:?}");
    let table = gradus(dir.path(), &["trials", "--study", "tune-diabetes"]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("why it failed") && text.contains("diverged at epoch"), "{text}");
}

#[test]
fn two_tune_processes_on_one_study_share_its_trials_budget() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["tune", "--data", "builtin:iris", "--trials", "10", "--epochs", "20", "--jobs", "1", "-q"];
    let children: Vec<_> = ["a.gradus", "b.gradus"]
        .iter()
        .map(|out| {
            Command::new(env!("CARGO_BIN_EXE_gradus"))
                .args(args)
                .args(["--out", out])
                .current_dir(dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let stored = trials(dir.path(), "tune-iris");
    let numbers: Vec<u64> = stored.iter().map(|t| t["trial"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..10).collect::<Vec<_>>(), "10 trials between them, not 20");
}
