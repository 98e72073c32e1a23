//! One worker of `bench/storage_overhead.py`: runs trials of a no-op
//! objective (one float suggested) with the random sampler on a shared
//! study until the study-wide budget is spent, timing each `ask` (claiming a
//! trial and reading what changed) and each whole trial (ask, suggest, tell).
//! Prints one JSON object: the trials it ran, its timings in ms, and when
//! it started and ended its trials (seconds since the Unix epoch).
//!
//! ```text
//! bench_storage URL STUDY BUDGET [create]
//! ```
//! With `create`, makes the study and exits.

use std::time::Instant;

use gradus::tune::pruners::NopPruner;
use gradus::tune::samplers::RandomSampler;
use gradus::tune::{Direction, Study};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, name, budget) = match args.as_slice() {
        [url, name, budget, ..] => (url, name, budget.parse::<u64>().expect("a budget")),
        _ => {
            eprintln!("usage: bench_storage URL STUDY BUDGET [create]");
            std::process::exit(2);
        }
    };
    let create = args.get(3).is_some_and(|a| a == "create");
    let storage = gradus::store::open(url, create).expect("the storage");
    let sampler = Box::new(RandomSampler::new(u64::from(std::process::id())));
    if create {
        Study::create(storage, name, Direction::Minimize, sampler, Box::new(NopPruner), &serde_json::Value::Null)
            .expect("a new study");
        return;
    }
    let study = Study::load(storage, name, sampler, Box::new(NopPruner)).expect("the study").with_budget(budget);
    let (mut asks, mut trials) = (Vec::new(), Vec::new());
    let epoch = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let began = epoch();
    loop {
        let start = Instant::now();
        let mut trial = match study.ask() {
            Ok(t) => t,
            Err(gradus::tune::TuneError::Exhausted(_)) => break,
            Err(e) => panic!("{e}"),
        };
        asks.push(start.elapsed().as_secs_f64() * 1e3);
        let x = trial.suggest_float("x", 0.0, 1.0).expect("a float");
        study.tell(trial, Ok(x)).expect("told");
        trials.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let ended = epoch();
    println!(
        "{}",
        serde_json::json!({"trials": trials.len(), "ask_ms": asks, "trial_ms": trials, "start": began, "end": ended})
    );
}
