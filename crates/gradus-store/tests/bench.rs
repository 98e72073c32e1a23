//! The cost of the storage per trial. Run in release mode:
//! `cargo test --release -p gradus-store --test bench -- --ignored --nocapture`
//! (`GRADUS_BENCH_DIR=/dev/shm` to measure without the disk).

use std::time::{Duration, Instant};

use gradus_store::SqliteStorage;
use gradus_tune::{Direction, Distribution, InMemoryStorage, Storage, TrialState};
use serde_json::json;

const TRIALS: u64 = 10_000;

/// Microseconds per trial in create_trial, set_param (one float) and finish_trial.
fn per_trial(s: &dyn Storage) -> [f64; 3] {
    let study = s.create_study("bench", Direction::Minimize, &json!(null)).unwrap().id;
    let d = Distribution::float(0.0, 1.0);
    let mut spent = [Duration::ZERO; 3];
    for i in 0..TRIALS {
        let x = (i as f64 * 0.618_034).fract();
        let t0 = Instant::now();
        let t = s.create_trial(study).unwrap();
        let t1 = Instant::now();
        s.set_param(t.id, "x", &d, &json!(x)).unwrap();
        let t2 = Instant::now();
        s.finish_trial(t.id, TrialState::Complete(x * x)).unwrap();
        let t3 = Instant::now();
        spent[0] += t1 - t0;
        spent[1] += t2 - t1;
        spent[2] += t3 - t2;
    }
    spent.map(|d| d.as_secs_f64() * 1e6 / TRIALS as f64)
}

/// Mean microseconds of `f` over `n` calls.
fn micros(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

#[test]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
fn overhead_per_trial() {
    let dir =
        std::env::var_os("GRADUS_BENCH_DIR").filter(|d| !d.is_empty()).map_or_else(std::env::temp_dir, Into::into);
    let tmp = tempfile::tempdir_in(dir).unwrap();
    let s = SqliteStorage::open(tmp.path().join("bench.db")).unwrap();
    let report = |name: &str, [c, p, f]: [f64; 3]| {
        println!("  {name:<9} {:7.1} µs  (create {c:.1}, set_param {p:.1}, finish {f:.1})", c + p + f);
    };
    println!("per trial, {TRIALS} trials, database in {}:", tmp.path().display());
    report("sqlite", per_trial(&s));
    report("in memory", per_trial(&InMemoryStorage::new()));

    let study = s.load_study("bench").unwrap().id;
    let cursor = s.trials_since(study, 0).unwrap().cursor;
    let all = micros(10, || assert_eq!(s.trials_since(study, 0).unwrap().trials.len() as u64, TRIALS));
    let none = micros(1000, || assert!(s.trials_since(study, cursor).unwrap().trials.is_empty()));
    let one = micros(1000, || drop(s.trial(study, TRIALS / 2).unwrap()));
    let list = micros(10, || drop(s.list_studies().unwrap()));
    println!("  trials_since(0), all {TRIALS} trials: {:.1} ms", all / 1e3);
    println!("  trials_since(cursor), nothing new: {none:.1} µs");
    println!("  trial(study, number): {one:.1} µs");
    println!("  list_studies: {:.2} ms", list / 1e3);
}
