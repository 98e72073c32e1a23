//! `gradus explain` as a user runs it: on a table where the answer is
//! known, on MNIST images, against scikit-learn's permutation importance,
//! and on bad input.

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

/// A seeded uniform draw in [0, 1).
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    }
}

/// `n` seeded rows of six numeric columns in [−1, 1) where only `a` and
/// `b` decide the class: yes when a + 0.7·b (give or take 0.05) > 0.
fn two_numbers_that_matter(n: usize, seed: u64) -> String {
    let mut next = uniform(seed);
    let mut text = String::from("n1,a,n2,b,n3,n4,label\n");
    for _ in 0..n {
        let v: Vec<f64> = (0..6).map(|_| 2.0 * next() - 1.0).collect();
        let label = if v[1] + 0.7 * v[3] + 0.1 * (next() - 0.5) > 0.0 { "yes" } else { "no" };
        let cells: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
        text.push_str(&format!("{},{label}\n", cells.join(",")));
    }
    text
}

/// `n` seeded rows where only `a` (a number) and `color` (a category)
/// decide the class; `n1` … `n4` are noise.
fn a_number_and_a_category(n: usize, seed: u64) -> String {
    let mut next = uniform(seed);
    let mut text = String::from("n1,a,n2,color,n3,n4,label\n");
    for _ in 0..n {
        let v: Vec<f64> = (0..5).map(|_| 2.0 * next() - 1.0).collect();
        let color = ["red", "green", "blue"][(next() * 3.0) as usize];
        let shift = match color {
            "red" => 0.8,
            "green" => -0.8,
            _ => 0.0,
        };
        let label = if v[1] + shift + 0.1 * (next() - 0.5) > 0.0 { "yes" } else { "no" };
        text.push_str(&format!("{:.4},{:.4},{:.4},{color},{:.4},{:.4},{label}\n", v[0], v[1], v[2], v[3], v[4]));
    }
    text
}

fn importances(found: &Value) -> &Vec<Value> {
    found["permutation_importance"]["columns"].as_array().unwrap()
}

fn interval(c: &Value) -> [f64; 2] {
    [c["ci"][0].as_f64().unwrap(), c["ci"][1].as_f64().unwrap()]
}

#[test]
fn on_a_table_where_two_columns_decide_those_two_rank_first_and_the_rest_are_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), two_numbers_that_matter(4000, 1)).unwrap();
    std::fs::write(dir.path().join("test.csv"), two_numbers_that_matter(2000, 2)).unwrap();
    let args = ["train", "--data", "train.csv", "--target", "label", "--model", "logistic", "--out", "m.gradus"];
    let out = gradus(dir.path(), &[&args[..], &["--quiet"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let args = ["explain", "--model", "m.gradus", "--data", "test.csv", "--repeats", "10", "--json"];
    let found = json(&gradus(dir.path(), &args));
    let columns = importances(&found);
    let names: Vec<&str> = columns.iter().map(|c| c["column"].as_str().unwrap()).collect();
    assert_eq!(names[..2], ["a", "b"], "{columns:?}");
    for c in &columns[..2] {
        assert!(interval(c)[0] > 0.1, "a column that decides matters clearly: {c}");
    }
    // Noise: the fitted model's weights on it are small but not zero, so a
    // shuffle moves a row or two of the 2,000 (accuracy moves in steps of
    // 0.0005), and ten shuffles can pin such an effect to one side of 0.
    // Indistinguishable from 0 here: the interval reaches to within 0.001
    // (two rows) of 0. (A column with no effect at all gives exactly 0:
    // the unit tests.)
    for c in &columns[2..] {
        let [low, high] = interval(c);
        assert!(low <= 0.001 && high >= -0.001, "noise is indistinguishable from 0: {c}");
    }
}

/// Tunes a logistic regression on `train.csv` (a mixed table: `gradus
/// tune` reads its categorical column) into `m.gradus`.
fn tune_logistic(dir: &Path) {
    let args = ["tune", "--data", "train.csv", "--target", "label", "--model", "logistic", "--trials", "3"];
    let out = gradus(dir, &[&args[..], &["--epochs", "30", "--out", "m.gradus", "--quiet"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_category_is_shuffled_as_one_column_and_plotted_by_its_levels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), a_number_and_a_category(4000, 1)).unwrap();
    std::fs::write(dir.path().join("test.csv"), a_number_and_a_category(2000, 2)).unwrap();
    tune_logistic(dir.path());
    let args = ["explain", "--model", "m.gradus", "--data", "test.csv", "--repeats", "10", "--json", "--out", "e.html"];
    let found = json(&gradus(dir.path(), &args));
    let columns = importances(&found);
    let names: Vec<&str> = columns.iter().map(|c| c["column"].as_str().unwrap()).collect();
    let mut top = names[..2].to_vec();
    top.sort();
    assert_eq!(top, ["a", "color"], "{columns:?}");
    for c in &columns[..2] {
        assert!(interval(c)[0] > 0.1, "{c}");
    }
    // The tuned model reads each number through 16 piecewise-linear bins,
    // which fit the noise columns a little: shuffling one moves a handful
    // of the 2,000 rows, either way.
    for c in &columns[2..] {
        assert!(c["mean"].as_f64().unwrap().abs() < 0.005, "{c}");
    }
    // Partial dependence of the top columns: p(yes) rises with a; a level per color.
    let pd = found["partial_dependence"].as_array().unwrap();
    assert_eq!(pd.len(), 3, "the top three columns");
    for p in &pd[..2] {
        assert_eq!(p["response_name"], "p(yes)");
        assert_eq!(p["ice"].as_array().unwrap().len(), 50);
        let average: Vec<f64> = p["average"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        match p["column"].as_str().unwrap() {
            "a" => {
                assert_eq!(average.len(), 20);
                assert!(average.windows(2).all(|w| w[1] >= w[0] - 5e-3), "rises, give or take its bins: {average:?}");
                assert!(average[19] - average[0] > 0.5, "{average:?}");
            }
            _ => {
                let labels: Vec<&str> = p["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
                let mut sorted = labels.clone();
                sorted.sort();
                assert_eq!(sorted, ["blue", "green", "red"]);
                let at = |l: &str| average[labels.iter().position(|x| *x == l).unwrap()];
                assert!(at("red") > at("blue") && at("blue") > at("green"), "{labels:?} {average:?}");
            }
        }
    }
    let html = std::fs::read_to_string(dir.path().join("e.html")).unwrap();
    assert!(html.contains("Permutation importance") && html.contains("Partial dependence on a"));
    assert!(!html.contains("<script"));
}

#[test]
fn saliency_on_mnist_lies_on_the_digit() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradus(
        dir.path(),
        &["train", "--data", "builtin:mnist_5k", "--model", "mlp", "--epochs", "3", "--out", "m.gradus", "--quiet"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let args = [
        "explain",
        "--model",
        "m.gradus",
        "--data",
        "builtin:mnist_5k",
        "--rows",
        "300",
        "--images-per-class",
        "1",
        "--json",
    ];
    let found = json(&gradus(dir.path(), &args));
    assert!(found["permutation_importance"].is_null(), "784 pixels are not shuffled one by one");
    let maps = found["saliency"].as_array().unwrap();
    assert_eq!(maps.len(), 10, "one image of each class");
    // The margin: mean |gradient × input| on the digit's stroke (pixels
    // above half the image's range) at least 5 times that elsewhere, for
    // every image. A map of the wrong pixels, or of noise, fails it.
    for m in maps {
        let [inside, outside] = [m["mean_abs_inside"].as_f64().unwrap(), m["mean_abs_outside"].as_f64().unwrap()];
        assert!(inside > 5.0 * outside, "row {}: inside {inside}, outside {outside}", m["row"]);
        assert_eq!(m["map"].as_array().unwrap().len(), 784);
    }
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), a_number_and_a_category(300, 1)).unwrap();
    std::fs::write(dir.path().join("other.csv"), "x,y,label\n1,2,yes\n3,4,no\n").unwrap();
    tune_logistic(dir.path());
    for (extra, says) in [
        (vec!["--data", "other.csv"], "n1"),
        (vec!["--data", "train.csv", "--repeats", "1"], "--repeats must be at least 2"),
        (vec!["--data", "train.csv", "--metric", "precision"], "'precision' is not a metric"),
        (vec!["--data", "train.csv", "--metric", "rmse"], "rmse"),
        (vec!["--data", "train.csv", "--class", "maybe"], "'maybe' is not one of the model's classes"),
        (vec!["--data", "missing.csv"], "missing.csv"),
    ] {
        let out = gradus(dir.path(), &[&["explain", "--model", "m.gradus"], &extra[..]].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
    }
}

/// scikit-learn 1.9.1's `permutation_importance` (accuracy, 30 repeats) of
/// the logistic regression below on breast_cancer's rows 401 to 569: each
/// column's mean drop and its standard deviation (n − 1), pasted from
/// `bench/reference/sklearn_permutation_importance.py`, which scores the
/// same gradus model through `gradus predict`.
const SKLEARN_BREAST_CANCER: [(&str, f64, f64); 30] = [
    ("radius_error", 0.030966, 0.011385),
    ("worst_symmetry", 0.026036, 0.008310),
    ("worst_smoothness", 0.020316, 0.009665),
    ("area_error", 0.023077, 0.011768),
    ("mean_concavity", 0.017554, 0.010128),
    ("compactness_error", 0.014596, 0.008330),
    ("worst_texture", 0.013215, 0.015040),
    ("worst_concave_points", 0.013412, 0.011090),
    ("perimeter_error", 0.015187, 0.008884),
    ("worst_perimeter", 0.012623, 0.010039),
    ("worst_concavity", 0.013412, 0.010416),
    ("worst_fractal_dimension", 0.016568, 0.008708),
    ("worst_radius", 0.015582, 0.008856),
    ("worst_area", 0.015385, 0.011270),
    ("mean_concave_points", 0.013609, 0.011004),
    ("concave_points_error", 0.004931, 0.007626),
    ("mean_texture", 0.005128, 0.015440),
    ("mean_smoothness", 0.003945, 0.007177),
    ("mean_area", 0.007890, 0.011024),
    ("mean_radius", 0.004734, 0.009754),
    ("mean_perimeter", 0.005917, 0.009193),
    ("mean_compactness", 0.000789, 0.004848),
    ("fractal_dimension_error", 0.003156, 0.008183),
    ("texture_error", 0.000000, 0.000000),
    ("mean_fractal_dimension", 0.000592, 0.007010),
    ("concavity_error", -0.000197, 0.004526),
    ("mean_symmetry", -0.002959, 0.008756),
    ("smoothness_error", -0.002761, 0.003002),
    ("symmetry_error", -0.004734, 0.003611),
    ("worst_compactness", -0.005128, 0.005323),
];

#[test]
fn permutation_importance_agrees_with_scikit_learn_within_the_intervals() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../gradus-data/data/breast_cancer.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(dir.path().join("train.csv"), lines[..401].join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("test.csv"), [&lines[..1], &lines[401..]].concat().join("\n") + "\n").unwrap();
    let args = ["train", "--data", "train.csv", "--model", "logistic", "--seed", "1", "--out", "bc.gradus", "--quiet"];
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let args = ["explain", "--model", "bc.gradus", "--data", "test.csv", "--metric", "accuracy", "--repeats", "30"];
    let found = json(&gradus(dir.path(), &[&args[..], &["--top", "0", "--json"]].concat()));
    let columns = importances(&found);
    assert_eq!(columns.len(), 30);
    // t(0.975, 29) · sd / √30: scikit-learn's interval, as ours is made.
    let half = |sd: f64| 2.045 * sd / 30f64.sqrt();
    for (name, mean, sd) in SKLEARN_BREAST_CANCER {
        let ours = columns.iter().find(|c| c["column"] == name).unwrap();
        let [low, high] = interval(ours);
        let diff = (ours["mean"].as_f64().unwrap() - mean).abs();
        assert!(
            diff <= (high - low) / 2.0 + half(sd) + 1e-9,
            "{name}: ours {ours}, scikit-learn {mean} ± {}",
            half(sd)
        );
    }
}
