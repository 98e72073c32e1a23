//! The gradus side of `bench/tune_overhead.py`: per-trial overhead of a study
//! with the random sampler on the SQLite storage, for a no-op objective that
//! suggests one float. Prints one JSON object.
//!
//! ```text
//! bench_tune TRIALS DB_PATH
//! ```

use std::sync::Arc;
use std::time::Instant;

use gradus::store::SqliteStorage;
use gradus::tune::pruners::NopPruner;
use gradus::tune::samplers::RandomSampler;
use gradus::tune::{Direction, Study};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [trials, path] = args.as_slice() else {
        eprintln!("usage: bench_tune TRIALS DB_PATH");
        std::process::exit(2);
    };
    let trials: u64 = trials.parse().expect("a number of trials");
    let storage = Arc::new(SqliteStorage::open(path).expect("a database file"));
    let study = Study::create(
        storage,
        "overhead",
        Direction::Minimize,
        Box::new(RandomSampler::new(0)),
        Box::new(NopPruner),
        &serde_json::Value::Null,
    )
    .expect("a new study");
    let start = Instant::now();
    study.optimize(|t| Ok(t.suggest_float("x", 0.0, 1.0)?), trials, None, 1).expect("the study runs");
    let seconds = start.elapsed().as_secs_f64();
    println!("{{\"trials\": {trials}, \"seconds\": {seconds}, \"ms_per_trial\": {}}}", seconds * 1e3 / trials as f64);
}
