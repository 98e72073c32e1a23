//! The rows `gradus tune` uses, for the Python side of `bench/tune_vs_optuna.py`
//! and other comparisons that must train and test on exactly gradus's rows.
//! Prints one JSON object of row indices into the dataset: `test` (held out
//! of the search), `train` and `valid` (each trial's split of the rest).
//!
//! ```text
//! bench_splits DATA TEST_FRACTION VALID_FRACTION SEED
//! ```

use gradus::data::{LoadOptions, TargetKind, load};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, test_fraction, valid_fraction, seed] = args.as_slice() else {
        eprintln!("usage: bench_splits DATA TEST_FRACTION VALID_FRACTION SEED");
        std::process::exit(2);
    };
    let number = |s: &str| s.parse::<f64>().expect("a number");
    let seed: u64 = seed.parse().expect("a seed");
    let data = load(data, &LoadOptions { target: None, target_kind: TargetKind::Auto }).expect("a dataset");
    // As `gradus::autotune::hold_out`, then `TrainJob::run` on the tuning rows.
    let outer = data.split(0.0, number(test_fraction), seed).expect("a test split");
    let tuning = data.subset(&outer.train);
    let inner = tuning.split(number(valid_fraction), 0.0, seed).expect("a validation split");
    let back = |rows: &[usize]| rows.iter().map(|&i| outer.train[i]).collect::<Vec<_>>();
    println!("{}", serde_json::json!({"test": outer.test, "train": back(&inner.train), "valid": back(&inner.valid)}));
}
