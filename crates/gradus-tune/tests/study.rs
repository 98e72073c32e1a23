//! Studies end to end on the in-memory storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use gradus_tune::pruners::{MedianPruner, NopPruner};
use gradus_tune::samplers::{GridSampler, RandomSampler, SobolSampler};
use gradus_tune::{Direction, Distribution, InMemoryStorage, SearchSpace, Study, TrialFailure, TrialState, TuneError};
use serde_json::json;

fn space() -> SearchSpace {
    SearchSpace::parse(
        r#"{"lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": true},
            "layers": {"type": "int", "low": 1, "high": 4},
            "opt": {"type": "categorical", "choices": ["sgd", "adam"]}}"#,
        "space",
    )
    .unwrap()
}

fn params_of(study: &Study) -> Vec<BTreeMap<String, serde_json::Value>> {
    study.trials().unwrap().into_iter().map(|t| t.params).collect()
}

fn run(sampler: Box<dyn gradus_tune::Sampler>, n_jobs: usize) -> Study {
    let study = Study::in_memory("s", Direction::Minimize, sampler).unwrap();
    study
        .optimize(
            |trial| {
                let lr = trial.suggest_float_log("lr", 1e-5, 0.1)?;
                let layers = trial.suggest_int("layers", 1, 4)?;
                let opt = trial.suggest_categorical("opt", &["sgd", "adam"])?;
                Ok(lr.ln().abs() + layers as f64 + if opt == "adam" { 0.0 } else { 1.0 })
            },
            40,
            None,
            n_jobs,
        )
        .unwrap();
    study
}

#[test]
fn seeded_random_and_sobol_studies_are_reproducible_even_on_threads() {
    for make in [
        (|| Box::new(RandomSampler::new(3)) as Box<dyn gradus_tune::Sampler>) as fn() -> Box<dyn gradus_tune::Sampler>,
        || Box::new(SobolSampler::new(3, Some(&space()))),
    ] {
        let a = params_of(&run(make(), 1));
        assert_eq!(a, params_of(&run(make(), 1)), "sequential runs agree");
        assert_eq!(a, params_of(&run(make(), 4)), "the same trial numbers get the same parameters on 4 threads");
        assert_eq!(a.len(), 40);
    }
    let other = params_of(&run(Box::new(RandomSampler::new(4)), 1));
    assert_ne!(params_of(&run(Box::new(RandomSampler::new(3)), 1)), other, "the seed matters");
}

#[test]
fn sobol_points_cover_the_unit_square_evenly() {
    let study = Study::in_memory("s", Direction::Minimize, Box::new(SobolSampler::new(1, None))).unwrap();
    study.optimize(|t| Ok(t.suggest_float("x", 0.0, 1.0)? + t.suggest_float("y", 0.0, 1.0)?), 64, None, 1).unwrap();
    // 64 scrambled Sobol points: every cell of an 8 x 8 grid holds exactly one.
    let mut cells = [[0; 8]; 8];
    for t in study.trials().unwrap() {
        let (x, y) = (t.params["x"].as_f64().unwrap(), t.params["y"].as_f64().unwrap());
        cells[(x * 8.0) as usize][(y * 8.0) as usize] += 1;
    }
    let filled = cells.iter().flatten().filter(|&&c| c > 0).count();
    assert_eq!(filled, 64, "{filled} of 64 cells hit; random points hit about 40");
}

#[test]
fn grid_search_evaluates_every_point_exactly_once_on_four_threads() {
    let space = SearchSpace::parse(
        r#"{"a": {"type": "int", "low": 0, "high": 4}, "b": {"type": "categorical", "choices": ["x", "y", "z"]},
            "c": {"type": "float", "low": 0, "high": 1, "step": 0.25}}"#,
        "grid",
    )
    .unwrap();
    let grid = GridSampler::new(space, 0).unwrap();
    assert_eq!(grid.len(), 75);
    let storage = Arc::new(InMemoryStorage::new());
    let study =
        Study::create(storage, "g", Direction::Minimize, Box::new(grid), Box::new(NopPruner), &json!(null)).unwrap();
    study
        .optimize(
            |t| {
                let a = t.suggest_int("a", 0, 4)?;
                let b = t.suggest_categorical("b", &["x", "y", "z"])?;
                let c = t.suggest("c", Distribution::Float { low: 0.0, high: 1.0, log: false, step: Some(0.25) })?;
                Ok(a as f64 + b.len() as f64 + c.as_f64().unwrap())
            },
            1000,
            None,
            4,
        )
        .unwrap();
    let mut seen: Vec<String> =
        study.trials().unwrap().iter().map(|t| serde_json::to_string(&t.params).unwrap()).collect();
    assert_eq!(seen.len(), 75, "the study stops when the grid is exhausted");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 75, "no point twice");
    assert!(matches!(study.ask(), Err(TuneError::Exhausted(_))));
}

#[test]
fn failures_nan_and_panics_fail_their_trial_and_the_study_goes_on() {
    let study = Study::in_memory("s", Direction::Maximize, Box::new(RandomSampler::new(0))).unwrap();
    study
        .optimize(
            |t| {
                let x = t.suggest_float("x", 0.0, 1.0)?;
                match t.number() % 4 {
                    0 => Err(TrialFailure::Failed("diverged".into())),
                    1 => Ok(f64::NAN),
                    2 => panic!("boom"),
                    _ => Ok(x),
                }
            },
            20,
            None,
            2,
        )
        .unwrap();
    let states: Vec<&str> = study.trials().unwrap().iter().map(|t| t.state.name()).collect();
    assert_eq!(states.len(), 20);
    assert_eq!(states.iter().filter(|s| **s == "fail").count(), 15);
    assert_eq!(states.iter().filter(|s| **s == "complete").count(), 5);
    let best = study.best_trial().unwrap().unwrap();
    assert_eq!(best.number % 4, 3);
}

#[test]
fn enqueued_trials_come_first_with_their_fixed_values() {
    let study = Study::in_memory("s", Direction::Minimize, Box::new(RandomSampler::new(0))).unwrap();
    study.enqueue_trial(BTreeMap::from([("x".to_string(), json!(0.25))])).unwrap();
    study.optimize(|t| Ok(t.suggest_float("x", 0.0, 1.0)?), 3, None, 1).unwrap();
    let trials = study.trials().unwrap();
    assert_eq!(trials[0].params["x"], json!(0.25));
    assert_eq!(trials.len(), 3);
    // An enqueued value outside the distribution fails that trial with a reason.
    study.enqueue_trial(BTreeMap::from([("x".to_string(), json!(7.0))])).unwrap();
    let mut trial = study.ask().unwrap();
    let err = trial.suggest_float("x", 0.0, 1.0).unwrap_err().to_string();
    assert!(err.contains("7.0 is not in float [0, 1]"), "{err}");
}

#[test]
fn a_parameter_suggested_twice_must_keep_its_distribution() {
    let study = Study::in_memory("s", Direction::Minimize, Box::new(RandomSampler::new(0))).unwrap();
    let mut trial = study.ask().unwrap();
    let x = trial.suggest_float("x", 0.0, 1.0).unwrap();
    assert_eq!(trial.suggest_float("x", 0.0, 1.0).unwrap(), x, "the same distribution returns the same value");
    let err = trial.suggest_int("x", 0, 3).unwrap_err();
    assert!(matches!(err, TuneError::IncompatibleSuggestion { .. }), "{err}");
    assert!(trial.suggest_float("y", 2.0, 1.0).is_err(), "low > high");
}

#[test]
fn pruned_trials_keep_their_intermediate_values_and_ask_tell_works() {
    let study = Study::in_memory("s", Direction::Minimize, Box::new(RandomSampler::new(0)))
        .unwrap()
        .with_pruner(Box::new(MedianPruner::new()));
    for i in 0..6 {
        let mut trial = study.ask().unwrap();
        for step in 0..5 {
            trial.report(step, i as f64 + step as f64 * 0.1).unwrap();
        }
        let value = i as f64;
        study.tell(trial, Ok(value)).unwrap();
    }
    let mut bad = study.ask().unwrap();
    bad.report(0, 100.0).unwrap();
    assert!(bad.should_prune());
    let number = bad.number();
    study.tell(bad, Err(TrialFailure::Pruned)).unwrap();
    let stored = &study.trials().unwrap()[number as usize];
    assert_eq!((stored.state, stored.intermediate.len()), (TrialState::Pruned, 1));
    assert!(matches!(study.tell_number(number, Ok(1.0)), Err(TuneError::TrialFinished { .. })));
    assert_eq!(study.best_trial().unwrap().unwrap().value(), Some(0.0));
    assert_eq!(study.best_value().unwrap(), Some(0.0));
}

#[test]
fn stop_and_timeout_end_optimize_early() {
    let study = Study::in_memory("s", Direction::Minimize, Box::new(RandomSampler::new(0))).unwrap();
    study
        .optimize_with_callback(
            |t| Ok(t.suggest_float("x", 0.0, 1.0)?),
            1000,
            None,
            1,
            |s, t| {
                if t.number == 9 {
                    s.stop()
                }
            },
        )
        .unwrap();
    assert_eq!(study.trials().unwrap().len(), 10);
    let start = std::time::Instant::now();
    study
        .optimize(
            |_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                Ok(1.0)
            },
            u64::MAX,
            Some(std::time::Duration::from_millis(200)),
            2,
        )
        .unwrap();
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}
