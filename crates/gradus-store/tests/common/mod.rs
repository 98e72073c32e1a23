//! What the SQL back ends' tests share: checks that every database storage
//! must pass beyond the conformance suite, and (with the `postgres` feature)
//! a fresh PostgreSQL database per test.

// Each test binary uses only some of these.
#![allow(dead_code)]

#[cfg(feature = "postgres")]
pub mod pg;

use std::collections::BTreeMap;

use gradus_tune::{Direction, Distribution, Storage, TrialState, TuneError};
use serde_json::json;

/// The message of the storage error that opening a database failed with.
pub fn storage_error<T>(opened: Result<T, TuneError>) -> String {
    match opened {
        Err(TuneError::Storage(msg)) => msg,
        Err(other) => panic!("expected a storage error, got {other:?}"),
        Ok(_) => panic!("expected the database to be refused"),
    }
}

/// Reopening a database resumes its studies: `open` opens the same database
/// afresh each time.
pub fn reopening_resumes_the_studies(open: &dyn Fn() -> Box<dyn Storage>) {
    let d = Distribution::log_float(1e-5, 1e-1);
    let (study, before, cursor) = {
        let s = open();
        let study = s.create_study("lr", Direction::Maximize, &json!({"sampler": "tpe", "seed": 7})).unwrap();
        let a = s.create_trial(study.id).unwrap();
        s.set_param(a.id, "lr", &d, &json!(0.0123)).unwrap();
        s.report(a.id, 0, 0.5).unwrap();
        s.finish_trial(a.id, TrialState::Complete(0.75)).unwrap();
        let b = s.create_trial(study.id).unwrap();
        s.heartbeat(b.id).unwrap();
        s.enqueue_trial(study.id, &BTreeMap::from([("lr".to_string(), json!(0.001))])).unwrap();
        let all = s.trials_since(study.id, 0).unwrap();
        (study, all.trials, all.cursor)
    };

    let s = open();
    assert_eq!(s.load_study("lr").unwrap(), study);
    let after = s.trials_since(study.id, 0).unwrap();
    assert_eq!(after.trials, before);
    assert_eq!(after.cursor, cursor);
    assert!(s.trials_since(study.id, cursor).unwrap().trials.is_empty());
    let summary = &s.list_studies().unwrap()[0];
    assert_eq!((summary.n_trials, summary.best_value), (3, Some(0.75)));
    // The work goes on where it stopped: the enqueued trial, then number 3.
    let claimed = s.create_trial(study.id).unwrap();
    assert_eq!((claimed.number, claimed.fixed_params["lr"].clone()), (2, json!(0.001)));
    assert_eq!(s.create_trial(study.id).unwrap().number, 3);
    assert!(s.trials_since(study.id, cursor).unwrap().trials.len() == 2);
    s.finish_trial(before[1].id, TrialState::Fail).unwrap();
}

/// Parameters and intermediate values come back bit for bit, NaN included.
pub fn values_come_back_exactly(s: &dyn Storage) {
    let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
    let t = s.create_trial(study).unwrap();
    // Floats with 17 significant digits, which a JSON parser must round correctly.
    let mut x: f64 = 0.1;
    let d = Distribution::float(0.0, 1.0);
    let mut expected = BTreeMap::new();
    for i in 0..2000 {
        x = (x * 3.987_654_321_987 + 0.123_456_789_123).fract();
        let name = format!("p{i}");
        s.set_param(t.id, &name, &d, &json!(x)).unwrap();
        expected.insert(name, json!(x));
    }
    for (step, v) in
        [(0, f64::NAN), (1, f64::INFINITY), (2, f64::NEG_INFINITY), (3, -0.0), (4, f64::MIN_POSITIVE), (5, 1e300)]
    {
        s.report(t.id, step, v).unwrap();
    }
    let stored = s.trial(study, t.number).unwrap();
    let wrong: Vec<_> = expected.iter().filter(|(k, v)| stored.params.get(*k) != Some(v)).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} parameters changed, e.g. {:?}",
        wrong.len(),
        expected.len(),
        &wrong[..wrong.len().min(3)]
    );
    assert_eq!(stored.params.len(), expected.len());
    let got: Vec<f64> = stored.intermediate.values().copied().collect();
    assert!(got[0].is_nan());
    assert_eq!(&got[1..], [f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MIN_POSITIVE, 1e300]);
    // A reported step is overwritten, as in memory.
    s.report(t.id, 5, 2.0).unwrap();
    assert_eq!(s.trial(study, t.number).unwrap().intermediate[&5], 2.0);
    // A trial's value too.
    let v = 0.1 + 0.2;
    assert_eq!(s.finish_trial(t.id, TrialState::Complete(v)).unwrap().value(), Some(v));
    assert_eq!(s.trial(study, t.number).unwrap().value(), Some(v));
}

/// The errors are the in-memory storage's.
pub fn errors_match_the_in_memory_storage(s: &dyn Storage) {
    let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
    let t = s.create_trial(study).unwrap();
    assert!(
        matches!(s.create_trial(study + 100), Err(TuneError::UnknownStudy(name)) if name == format!("#{}", study + 100))
    );
    assert!(matches!(s.trial(study, 5), Err(TuneError::UnknownTrial { study, trial: 5 }) if study == "s"));
    assert!(matches!(s.heartbeat(u64::MAX), Err(TuneError::UnknownTrial { trial: u64::MAX, .. })));
    assert!(matches!(s.finish_trial(t.id, TrialState::Running), Err(TuneError::InvalidArgument { name: "state", .. })));
    assert!(matches!(s.finish_trial(t.id, TrialState::Complete(f64::INFINITY)), Err(TuneError::InvalidValue { .. })));
    assert!(matches!(
        s.set_param(t.id, "x", &Distribution::float(0.0, 1.0), &json!(2.0)),
        Err(TuneError::InvalidDistribution { .. })
    ));
    s.finish_trial(t.id, TrialState::Complete(1.0)).unwrap();
    assert!(matches!(s.heartbeat(t.id), Err(TuneError::TrialFinished { trial: 0, state }) if state == "complete"));
    // A waiting trial is not finished: it may be finished directly, as in memory.
    let n = s.enqueue_trial(study, &BTreeMap::new()).unwrap();
    let waiting = s.trial(study, n).unwrap();
    assert_eq!((waiting.state, waiting.started_at), (TrialState::Waiting, None));
    s.finish_trial(waiting.id, TrialState::Fail).unwrap();
}

/// Deleting a study deletes its trials, and ids are never reused.
pub fn deleting_a_study_deletes_its_trials_and_never_reuses_ids(s: &dyn Storage) {
    let old = s.create_study("s", Direction::Minimize, &json!(null)).unwrap();
    let t = s.create_trial(old.id).unwrap();
    s.report(t.id, 0, 1.0).unwrap();
    s.delete_study("s").unwrap();
    let new = s.create_study("s", Direction::Minimize, &json!(null)).unwrap();
    assert_ne!(new.id, old.id);
    assert!(matches!(s.trial(old.id, 0), Err(TuneError::UnknownStudy(_))));
    assert!(matches!(s.report(t.id, 1, 1.0), Err(TuneError::UnknownTrial { .. })));
    let fresh = s.create_trial(new.id).unwrap();
    assert_eq!(fresh.number, 0);
    assert_ne!(fresh.id, t.id);
    assert_eq!(s.list_studies().unwrap()[0].n_trials, 1);
}
