//! `gradus plot`, run as a real process on a real SQLite study.

use std::path::Path;
use std::process::{Command, Output};

fn gradus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().expect("the gradus binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn each_plot_of_a_tuned_study_is_an_svg_with_its_title_and_axes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = gradus(
        d,
        &[
            "tune",
            "--data",
            "builtin:iris",
            "--trials",
            "6",
            "--study",
            "iris",
            "--out",
            "m.gradus",
            "--report",
            "r.html",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8(out.stdout).unwrap().contains("report r.html"));
    // The report tune wrote, and the one `gradus report` writes: the same sections, nothing fetched.
    let out = gradus(d, &["report", "--study", "iris", "--out", "again.html"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for file in ["r.html", "again.html"] {
        let html = std::fs::read_to_string(d.join(file)).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<title>Study iris</title>"), "{file}");
        for heading in ["Optimisation history", "Intermediate values", "Hyperparameter importance", "Trials"] {
            assert!(html.contains(&format!("<h2>{heading}</h2>")), "{file}: {heading}");
        }
        assert!(!html.contains("<script") && !html.contains("href=") && !html.contains("src="), "{file}");
    }
    for (kind, title, x_label) in [
        ("history", "Optimisation history of iris", "trial"),
        ("intermediate", "Intermediate values of iris", "step"),
        ("edf", "Empirical distribution of the values of iris", "objective value (lower is better)"),
        ("timeline", "Timeline of iris", "seconds since the first trial started"),
        (
            "importance",
            "Hyperparameter importance in iris",
            "importance (share of the explained variation; each method sums to 1)",
        ),
        ("slice", "batch_size in iris", "batch_size"),
        ("parallel", "Parallel coordinates of iris", "batch_size"),
    ] {
        let file = format!("{kind}.svg");
        let out = gradus(d, &["plot", kind, "--study", "iris", "--out", &file]);
        assert!(out.status.success(), "{kind}: {}", stderr(&out));
        let svg = std::fs::read_to_string(d.join(&file)).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(&format!(">{title}</text>")), "{kind}: {svg}");
        assert!(svg.contains("class=\"x-label\"") && svg.contains(&format!(">{x_label}</text>")), "{svg}");
        // Self-contained: nothing fetched.
        assert!(!svg.contains("href") && !svg.contains("<script"), "{kind}");
    }
    // The contour of the two most important numeric parameters.
    let out = gradus(d, &["plot", "contour", "--study", "iris", "--out", "contour.svg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = std::fs::read_to_string(d.join("contour.svg")).unwrap();
    assert!(svg.contains(" in iris</text>") && svg.matches("<rect x=").count() > 1600, "{svg}");
    // The importances as numbers: each method's sum to 1, the most important first.
    let out = gradus(d, &["importance", "--study", "iris", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["param"] == "lr"), "{lines:?}");
    for method in ["fanova", "ped_anova"] {
        let sum: f64 = lines.iter().map(|l| l[method].as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{method}: {sum}");
    }
    let fanova: Vec<f64> = lines.iter().map(|l| l["fanova"].as_f64().unwrap()).collect();
    assert!(fanova.windows(2).all(|w| w[0] >= w[1]), "{fanova:?}");
}

#[test]
fn a_study_that_is_not_there_or_holds_nothing_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let space = r#"{"x": {"type": "float", "low": 0, "high": 1}}"#;
    let out = gradus(d, &["study", "create", "--study", "empty", "--direction", "minimize", "--space", space]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (study, expected) in [("empty", "study 'empty' has no trials to show"), ("nope", "no study named 'nope'")] {
        let out = gradus(d, &["plot", "history", "--study", study, "--out", "x.svg"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
        assert!(!d.join("x.svg").exists(), "nothing written");
    }
    let out = gradus(d, &["report", "--study", "empty", "--out", "r.html"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("study 'empty' has no trials to show"), "{}", stderr(&out));
    assert!(!d.join("r.html").exists());
    let out = gradus(d, &["importance", "--study", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no study named 'nope'"), "{}", stderr(&out));
    let out = gradus(d, &["importance", "--study", "empty"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("fewer than two complete trials"), "{}", stderr(&out));
    let out = gradus(d, &["plot", "pie", "--study", "empty", "--out", "x.svg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid value 'pie'"), "{}", stderr(&out));
}

#[test]
fn train_draws_its_loss_curve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["train", "--data", "builtin:iris", "--model", "softmax", "--epochs", "30", "--plot-loss", "loss.svg"];
    let out = gradus(d, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    // The printed step lines stay about ten.
    let printed = String::from_utf8(out.stdout).unwrap().lines().filter(|l| l.starts_with("step ")).count();
    assert!((9..=12).contains(&printed), "{printed}");
    let svg = std::fs::read_to_string(d.join("loss.svg")).unwrap();
    for text in [">Training loss on builtin:iris</text>", ">validation loss</text>", ">30 epochs, "] {
        assert!(svg.contains(text), "{text}: {svg}");
    }
    // Every step logged for the curve: more points than lines printed.
    let points = svg.split("class=\"line\" d=\"").nth(1).unwrap().split('"').next().unwrap().matches('L').count();
    assert!(points > 50, "{points}");
    // A path that cannot be written: exit 2 before training.
    let out = gradus(d, &["train", "--data", "builtin:iris", "--plot-loss", "no/such/dir/loss.svg"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
