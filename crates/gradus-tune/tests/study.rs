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

/// A pause of 0–3 ms that differs from run to run (the clock's nanoseconds),
/// so that threads finish their trials in a different order each time.
fn jitter() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    std::thread::sleep(std::time::Duration::from_micros(u64::from(nanos % 3000)));
}

/// What each ask saw: its number, the finished trials' numbers and the running ones'.
type Seen = Vec<(u64, Vec<u64>, Vec<u64>)>;

/// Random sampling that records what each ask's view held.
struct Recording(RandomSampler, Arc<std::sync::Mutex<Seen>>);

impl gradus_tune::Sampler for Recording {
    fn sample_relative(
        &self,
        view: &gradus_tune::StudyView,
        trial: &gradus_tune::FrozenTrial,
    ) -> BTreeMap<String, f64> {
        let finished = view.trials.iter().filter(|t| t.state.is_finished()).map(|t| t.number).collect();
        let running = view.running().map(|t| t.number).collect();
        self.1.lock().unwrap().push((trial.number, finished, running));
        BTreeMap::new()
    }

    fn sample_independent(
        &self,
        view: &gradus_tune::StudyView,
        trial: &gradus_tune::FrozenTrial,
        name: &str,
        distribution: &Distribution,
    ) -> f64 {
        self.0.sample_independent(view, trial, name, distribution)
    }
}

#[test]
fn under_the_ordered_schedule_each_ask_sees_the_trials_up_to_its_lag_finished_and_the_rest_running() {
    for n_jobs in [1, 2, 3] {
        let record = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sampler = Recording(RandomSampler::new(0), record.clone());
        let study = Study::in_memory("s", Direction::Minimize, Box::new(sampler)).unwrap();
        let objective = |t: &mut gradus_tune::Trial<'_>| {
            jitter();
            Ok(t.suggest_float("x", 0.0, 1.0)?)
        };
        study.optimize(objective, 30, None, n_jobs).unwrap();
        let lag = gradus_tune::ordered_lag(n_jobs) as u64;
        let seen = record.lock().unwrap().clone();
        assert_eq!(seen.len(), 30);
        for (number, finished, running) in seen {
            let expected_finished: Vec<u64> = (0..(number + 1).saturating_sub(lag)).collect();
            let expected_running: Vec<u64> = ((number + 1).saturating_sub(lag)..number).collect();
            assert_eq!(finished, expected_finished, "{n_jobs} threads, trial {number}: finished");
            assert_eq!(running, expected_running, "{n_jobs} threads, trial {number}: running");
        }
    }
}

#[test]
fn the_ordered_schedule_gives_the_same_model_based_pruned_study_on_two_threads_whatever_the_timing() {
    let run = || {
        let pruner = gradus_tune::pruners::SuccessiveHalvingPruner::new(2, 2, 0).unwrap();
        let sampler = gradus_tune::samplers::TpeSampler::new(5).n_startup_trials(5);
        // (The default schedule; under `Schedule::Greedy` this test fails.)
        let study =
            Study::in_memory("s", Direction::Minimize, Box::new(sampler)).unwrap().with_pruner(Box::new(pruner));
        study
            .optimize(
                |trial| {
                    let x = trial.suggest_float("x", -3.0, 3.0)?;
                    let y = trial.suggest_float("y", -3.0, 3.0)?;
                    for step in 1..=8u64 {
                        jitter();
                        trial.report(step, (x - 1.0).powi(2) + y * y + 1.0 / step as f64)?;
                        if trial.should_prune() {
                            return Err(TrialFailure::Pruned);
                        }
                    }
                    Ok((x - 1.0).powi(2) + y * y)
                },
                30,
                None,
                2,
            )
            .unwrap();
        study.trials().unwrap().into_iter().map(|t| (t.params, t.state, t.intermediate)).collect::<Vec<_>>()
    };
    let first = run();
    assert!(first.iter().any(|t| t.1 == TrialState::Pruned), "the pruner took part");
    for _ in 0..3 {
        assert_eq!(run(), first);
    }
}

#[test]
fn a_thread_that_errs_does_not_leave_the_others_waiting_for_its_trial() {
    let study = Study::in_memory("s", Direction::Minimize, Box::new(RandomSampler::new(0))).unwrap();
    // Trial 2 is finished behind its thread's back, so that thread's own
    // tell fails; the trials after it wait for trial 2 under the ordered
    // schedule, and must give up instead.
    let result = study.optimize(
        |trial| {
            if trial.number() == 2 {
                std::thread::sleep(std::time::Duration::from_millis(50));
                study.tell_number(2, Ok(1.0)).unwrap();
            }
            Ok(trial.suggest_float("x", 0.0, 1.0)?)
        },
        50,
        None,
        2,
    );
    assert!(matches!(result, Err(TuneError::TrialFinished { trial: 2, .. })), "{result:?}");
    assert!(study.trials().unwrap().len() < 50);
}

/// Two handles on one study, as two processes would have (with a heartbeat
/// of 50 ms and a grace of 300 ms).
fn two_handles() -> (Study, Study, Arc<InMemoryStorage>) {
    let storage = Arc::new(InMemoryStorage::new());
    let open = |create: bool| {
        let study = match create {
            true => Study::create(
                storage.clone(),
                "s",
                Direction::Minimize,
                Box::new(RandomSampler::new(0)),
                Box::new(NopPruner),
                &json!(null),
            ),
            false => Study::load(storage.clone(), "s", Box::new(RandomSampler::new(0)), Box::new(NopPruner)),
        };
        let beats = std::time::Duration::from_millis(50);
        study.unwrap().with_heartbeat(beats, beats * 6).unwrap()
    };
    (open(true), open(false), storage)
}

#[test]
fn one_process_holds_a_role_until_it_is_done_released_or_its_holder_dies() {
    use gradus_tune::{Claimed, Storage};
    let (a, b, storage) = two_handles();
    let Claimed::Mine(held) = a.claim_role("finalise", 10).unwrap() else { panic!("nobody held it") };
    // Held and renewed: another claimant is told who holds it, even after the grace.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let Claimed::Theirs(holder) = b.claim_role("finalise", 10).unwrap() else { panic!("taken from a live holder") };
    assert_eq!((holder.pid, holder.done), (u64::from(std::process::id()), false));
    // Done: final for this round, and the note says what was made.
    held.finish(json!({"model": "m.gradus"})).unwrap();
    let Claimed::Theirs(holder) = b.claim_role("finalise", 10).unwrap() else { panic!("done twice") };
    assert_eq!((holder.done, &holder.note), (true, &json!({"model": "m.gradus"})));
    // A later round (a larger budget) is claimed again.
    let Claimed::Mine(held) = b.claim_role("finalise", 20).unwrap() else { panic!("a new round is free") };
    // Dropped unfinished (the work failed): released at once.
    drop(held);
    let Claimed::Mine(held) = a.claim_role("finalise", 20).unwrap() else { panic!("a released role is free") };
    // A holder that stops beating (a process on another machine that died)
    // loses the role after the grace; its late finish is refused.
    let study = a.record().id;
    let stored = storage.study_attr(study, "finalise").unwrap().unwrap();
    let mut dead = stored.clone();
    dead["host"] = json!("elsewhere");
    dead["beat"] = json!(gradus_tune::now() - 1.0);
    assert_eq!(storage.swap_study_attr(study, "finalise", Some(&stored), &dead).unwrap(), Some(dead.clone()));
    let Claimed::Mine(taken) = b.claim_role("finalise", 20).unwrap() else { panic!("taken from a dead holder") };
    assert!(held.finish(json!(null)).unwrap_err().to_string().contains("taken over"));
    taken.finish(json!(null)).unwrap();
    // A holder on this machine whose process has ended loses it at once.
    let stored = storage.study_attr(study, "finalise").unwrap().unwrap();
    let ended = json!({"host": stored["host"], "pid": 4_000_000_000u64, "round": 30, "beat": gradus_tune::now(), "done": false});
    assert_eq!(storage.swap_study_attr(study, "finalise", Some(&stored), &ended).unwrap(), Some(ended.clone()));
    assert!(matches!(a.claim_role("finalise", 30).unwrap(), Claimed::Mine(_)));
}
