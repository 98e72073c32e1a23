//! The narrow [`Storage`] trait every back end implements (in memory here;
//! SQLite and PostgreSQL in `gradus-store`), the in-memory implementation, and
//! the [`conformance`] suite each implementation must pass.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::trial::now;
use crate::{Direction, Distribution, FrozenTrial, TrialState, TuneError};

/// A study as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    pub id: u64,
    pub name: String,
    pub direction: Direction,
    /// How the study was created (sampler, pruner, space), for tools that
    /// reopen it; opaque to the storage.
    pub settings: Value,
}

/// One line of a study listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudySummary {
    pub name: String,
    pub direction: Direction,
    pub n_trials: u64,
    pub best_value: Option<f64>,
}

/// Trials changed after a cursor, and the cursor to ask from next time.
#[derive(Clone, Debug, Default)]
pub struct TrialsSince {
    pub trials: Vec<FrozenTrial>,
    pub cursor: u64,
}

/// Where studies and trials live. Every method is atomic; several threads —
/// and, for the database back ends, several processes — may share one.
pub trait Storage: Send + Sync {
    fn create_study(&self, name: &str, direction: Direction, settings: &Value) -> Result<StudyRecord, TuneError>;
    fn load_study(&self, name: &str) -> Result<StudyRecord, TuneError>;
    fn list_studies(&self) -> Result<Vec<StudySummary>, TuneError>;
    fn delete_study(&self, name: &str) -> Result<(), TuneError>;
    /// Adds a waiting trial with fixed parameters; returns its number.
    fn enqueue_trial(&self, study: u64, params: &BTreeMap<String, Value>) -> Result<u64, TuneError>;
    /// Starts a trial: claims the oldest waiting one, or creates a new one
    /// numbered after every existing trial. Two callers never get the same.
    fn create_trial(&self, study: u64) -> Result<FrozenTrial, TuneError> {
        self.start_trial_within(study, u64::MAX, false)?
            .ok_or_else(|| TuneError::Storage(format!("study #{study} holds as many trials as can be numbered")))
    }
    /// Claims the oldest waiting trial, if any; never creates one.
    fn claim_waiting_trial(&self, study: u64) -> Result<Option<FrozenTrial>, TuneError>;
    /// Starts a trial numbered below `budget`, atomically — a study-wide
    /// budget several processes share: the oldest waiting trial below it,
    /// or, unless `waiting_only`, a new trial if the next number is below
    /// it. `None` once the budget is spent.
    fn start_trial_within(&self, study: u64, budget: u64, waiting_only: bool)
    -> Result<Option<FrozenTrial>, TuneError>;
    fn set_param(&self, trial_id: u64, name: &str, distribution: &Distribution, value: &Value)
    -> Result<(), TuneError>;
    fn report(&self, trial_id: u64, step: u64, value: f64) -> Result<(), TuneError>;
    /// Sets an attribute of a running trial (see [`FrozenTrial::attrs`]).
    fn set_attr(&self, trial_id: u64, name: &str, value: &Value) -> Result<(), TuneError>;
    fn heartbeat(&self, trial_id: u64) -> Result<(), TuneError>;
    /// Ends a running trial; a finished one cannot be changed.
    fn finish_trial(&self, trial_id: u64, state: TrialState) -> Result<FrozenTrial, TuneError>;
    /// The trial numbered `number` in `study`.
    fn trial(&self, study: u64, number: u64) -> Result<FrozenTrial, TuneError>;
    /// Trials created or changed after `cursor` (0 for all). A back end must
    /// hand out change numbers in commit order (a locked counter, not a
    /// free-running sequence), or a reader could skip a change.
    fn trials_since(&self, study: u64, cursor: u64) -> Result<TrialsSince, TuneError>;
    /// Marks running trials without a heartbeat for `max_age` seconds failed;
    /// returns their numbers.
    fn fail_stale_trials(&self, study: u64, max_age: f64) -> Result<Vec<u64>, TuneError>;
    /// The study's attribute `name` (Optuna's study user attributes), if set.
    fn study_attr(&self, study: u64, name: &str) -> Result<Option<Value>, TuneError>;
    /// Sets the study's attribute `name` to `new` if its value is `expected`
    /// (`None`: it has none), in one step; returns the value it holds after,
    /// which is `new` when this call set it. Processes claim a role with it:
    /// the one whose value is stored has it.
    fn swap_study_attr(
        &self,
        study: u64,
        name: &str,
        expected: Option<&Value>,
        new: &Value,
    ) -> Result<Option<Value>, TuneError>;
}

#[derive(Default)]
struct Memory {
    studies: Vec<Option<StudyRecord>>,
    /// Each study's attributes, by study id.
    study_attrs: BTreeMap<u64, BTreeMap<String, Value>>,
    /// All trials, indexed by id; each with the sequence number of its last change.
    trials: Vec<(u64, FrozenTrial)>,
    study_of: Vec<u64>,
    seq: u64,
}

/// A storage in this process's memory: fast, and gone when it ends.
#[derive(Default)]
pub struct InMemoryStorage {
    inner: Mutex<Memory>,
}

impl InMemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic elsewhere cannot leave the maps half-updated (every method
        // mutates after its checks), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Memory {
    fn study(&self, id: u64) -> Result<&StudyRecord, TuneError> {
        self.studies.get(id as usize).and_then(Option::as_ref).ok_or_else(|| TuneError::UnknownStudy(format!("#{id}")))
    }

    fn trial_mut(&mut self, id: u64) -> Result<&mut FrozenTrial, TuneError> {
        self.seq += 1;
        let seq = self.seq;
        let (stamp, trial) =
            self.trials.get_mut(id as usize).ok_or(TuneError::UnknownTrial { study: String::new(), trial: id })?;
        *stamp = seq;
        Ok(trial)
    }

    /// Claims the oldest waiting trial numbered below `below`.
    fn claim_waiting(&mut self, study: u64, below: u64) -> Result<Option<FrozenTrial>, TuneError> {
        self.study(study)?;
        let waiting = self
            .trials
            .iter()
            .zip(&self.study_of)
            .filter(|((_, t), s)| **s == study && t.state == TrialState::Waiting && t.number < below)
            .min_by_key(|((_, t), _)| t.number)
            .map(|((_, t), _)| t.id);
        let Some(id) = waiting else { return Ok(None) };
        let trial = self.trial_mut(id)?;
        trial.state = TrialState::Running;
        trial.started_at = Some(now());
        Ok(Some(trial.clone()))
    }

    /// A trial that may still change; checked before it is marked changed,
    /// so a refused write leaves the change cursor alone.
    fn running_mut(&mut self, id: u64) -> Result<&mut FrozenTrial, TuneError> {
        let (_, trial) =
            self.trials.get(id as usize).ok_or(TuneError::UnknownTrial { study: String::new(), trial: id })?;
        if trial.state.is_finished() {
            return Err(TuneError::TrialFinished { trial: trial.number, state: trial.state.name().into() });
        }
        self.trial_mut(id)
    }
}

fn new_trial(id: u64, number: u64, state: TrialState, fixed: BTreeMap<String, Value>) -> FrozenTrial {
    FrozenTrial {
        fixed_params: fixed,
        started_at: (state == TrialState::Running).then(now),
        ..FrozenTrial::new(id, number, state)
    }
}

impl Storage for InMemoryStorage {
    fn create_study(&self, name: &str, direction: Direction, settings: &Value) -> Result<StudyRecord, TuneError> {
        let mut m = self.lock();
        if m.studies.iter().flatten().any(|s| s.name == name) {
            return Err(TuneError::StudyExists(name.into()));
        }
        let record =
            StudyRecord { id: m.studies.len() as u64, name: name.into(), direction, settings: settings.clone() };
        m.studies.push(Some(record.clone()));
        Ok(record)
    }

    fn load_study(&self, name: &str) -> Result<StudyRecord, TuneError> {
        let m = self.lock();
        m.studies.iter().flatten().find(|s| s.name == name).cloned().ok_or_else(|| TuneError::UnknownStudy(name.into()))
    }

    fn list_studies(&self) -> Result<Vec<StudySummary>, TuneError> {
        let m = self.lock();
        Ok(m.studies
            .iter()
            .flatten()
            .map(|s| {
                let trials = m.trials.iter().zip(&m.study_of).filter(|(_, st)| **st == s.id).map(|((_, t), _)| t);
                let (mut n, mut best) = (0, None::<f64>);
                for t in trials {
                    n += 1;
                    if let Some(v) = t.value()
                        && best.is_none_or(|b| s.direction.better(v, b))
                    {
                        best = Some(v);
                    }
                }
                StudySummary { name: s.name.clone(), direction: s.direction, n_trials: n, best_value: best }
            })
            .collect())
    }

    fn delete_study(&self, name: &str) -> Result<(), TuneError> {
        let mut m = self.lock();
        let slot = m.studies.iter_mut().find(|s| s.as_ref().is_some_and(|s| s.name == name));
        match slot {
            Some(slot) => {
                let id = slot.take().map(|s| s.id);
                m.study_attrs.remove(&id.unwrap_or(u64::MAX));
                Ok(())
            }
            None => Err(TuneError::UnknownStudy(name.into())),
        }
    }

    fn enqueue_trial(&self, study: u64, params: &BTreeMap<String, Value>) -> Result<u64, TuneError> {
        let mut m = self.lock();
        m.study(study)?;
        let number = m.study_of.iter().filter(|&&s| s == study).count() as u64;
        let id = m.trials.len() as u64;
        m.seq += 1;
        let seq = m.seq;
        m.trials.push((seq, new_trial(id, number, TrialState::Waiting, params.clone())));
        m.study_of.push(study);
        Ok(number)
    }

    fn start_trial_within(
        &self,
        study: u64,
        budget: u64,
        waiting_only: bool,
    ) -> Result<Option<FrozenTrial>, TuneError> {
        let mut m = self.lock();
        if let Some(trial) = m.claim_waiting(study, budget)? {
            return Ok(Some(trial));
        }
        let number = m.study_of.iter().filter(|&&s| s == study).count() as u64;
        if waiting_only || number >= budget {
            return Ok(None);
        }
        let id = m.trials.len() as u64;
        m.seq += 1;
        let seq = m.seq;
        let trial = new_trial(id, number, TrialState::Running, BTreeMap::new());
        m.trials.push((seq, trial.clone()));
        m.study_of.push(study);
        Ok(Some(trial))
    }

    fn claim_waiting_trial(&self, study: u64) -> Result<Option<FrozenTrial>, TuneError> {
        self.lock().claim_waiting(study, u64::MAX)
    }

    fn set_param(
        &self,
        trial_id: u64,
        name: &str,
        distribution: &Distribution,
        value: &Value,
    ) -> Result<(), TuneError> {
        distribution.to_internal(name, value)?;
        let mut m = self.lock();
        let trial = m.running_mut(trial_id)?;
        trial.params.insert(name.into(), value.clone());
        trial.distributions.insert(name.into(), distribution.clone());
        Ok(())
    }

    fn report(&self, trial_id: u64, step: u64, value: f64) -> Result<(), TuneError> {
        let mut m = self.lock();
        m.running_mut(trial_id)?.intermediate.insert(step, value);
        Ok(())
    }

    fn set_attr(&self, trial_id: u64, name: &str, value: &Value) -> Result<(), TuneError> {
        let mut m = self.lock();
        m.running_mut(trial_id)?.attrs.insert(name.into(), value.clone());
        Ok(())
    }

    fn heartbeat(&self, trial_id: u64) -> Result<(), TuneError> {
        let mut m = self.lock();
        m.running_mut(trial_id)?.heartbeat_at = Some(now());
        Ok(())
    }

    fn finish_trial(&self, trial_id: u64, state: TrialState) -> Result<FrozenTrial, TuneError> {
        state.check_final(trial_id)?;
        let mut m = self.lock();
        let trial = m.running_mut(trial_id)?;
        trial.state = state;
        trial.finished_at = Some(now());
        Ok(trial.clone())
    }

    fn trial(&self, study: u64, number: u64) -> Result<FrozenTrial, TuneError> {
        let m = self.lock();
        let name = m.study(study)?.name.clone();
        m.trials
            .iter()
            .zip(&m.study_of)
            .find(|((_, t), s)| **s == study && t.number == number)
            .map(|((_, t), _)| t.clone())
            .ok_or(TuneError::UnknownTrial { study: name, trial: number })
    }

    fn trials_since(&self, study: u64, cursor: u64) -> Result<TrialsSince, TuneError> {
        let m = self.lock();
        m.study(study)?;
        let trials = m
            .trials
            .iter()
            .zip(&m.study_of)
            .filter(|((seq, _), s)| **s == study && *seq > cursor)
            .map(|((_, t), _)| t.clone())
            .collect();
        Ok(TrialsSince { trials, cursor: m.seq })
    }

    fn fail_stale_trials(&self, study: u64, max_age: f64) -> Result<Vec<u64>, TuneError> {
        let mut m = self.lock();
        m.study(study)?;
        let cutoff = now() - max_age;
        let stale: Vec<u64> = m
            .trials
            .iter()
            .zip(&m.study_of)
            .filter(|((_, t), s)| {
                **s == study
                    && t.state == TrialState::Running
                    && t.heartbeat_at.or(t.started_at).unwrap_or(0.0) < cutoff
            })
            .map(|((_, t), _)| t.id)
            .collect();
        let mut numbers = Vec::new();
        for id in stale {
            let trial = m.trial_mut(id)?;
            trial.state = TrialState::Fail;
            trial.finished_at = Some(now());
            trial.attrs.insert(crate::FAIL_REASON.into(), crate::WORKER_LOST.into());
            numbers.push(trial.number);
        }
        Ok(numbers)
    }

    fn study_attr(&self, study: u64, name: &str) -> Result<Option<Value>, TuneError> {
        let m = self.lock();
        m.study(study)?;
        Ok(m.study_attrs.get(&study).and_then(|a| a.get(name)).cloned())
    }

    fn swap_study_attr(
        &self,
        study: u64,
        name: &str,
        expected: Option<&Value>,
        new: &Value,
    ) -> Result<Option<Value>, TuneError> {
        let mut m = self.lock();
        m.study(study)?;
        let attrs = m.study_attrs.entry(study).or_default();
        if attrs.get(name) == expected {
            attrs.insert(name.into(), new.clone());
        }
        Ok(attrs.get(name).cloned())
    }
}

/// The behaviour every [`Storage`] must have: call [`conformance::run`] with
/// a function that makes a fresh, empty storage.
pub mod conformance {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    /// Runs every check; panics with the name of the first that fails.
    pub fn run(make: &dyn Fn() -> Box<dyn Storage>) {
        studies_are_created_listed_and_deleted(make().as_ref());
        trials_are_numbered_in_order_and_enqueued_ones_come_first(make().as_ref());
        params_reports_and_finishing_are_recorded(make().as_ref());
        a_finished_trial_cannot_change(make().as_ref());
        cursors_return_only_what_changed(make().as_ref());
        stale_trials_are_failed(make().as_ref());
        concurrent_creation_never_repeats_a_number(make());
        a_budget_is_shared_and_never_overrun(make());
        study_attributes_are_swapped_only_from_the_expected_value(make().as_ref());
        one_of_many_claimants_wins_a_study_attribute(make());
    }

    fn study_attributes_are_swapped_only_from_the_expected_value(s: &dyn Storage) {
        let a = s.create_study("a", Direction::Minimize, &json!(null)).unwrap().id;
        let b = s.create_study("b", Direction::Minimize, &json!(null)).unwrap().id;
        assert_eq!(s.study_attr(a, "k").unwrap(), None);
        assert_eq!(s.swap_study_attr(a, "k", None, &json!({"pid": 1})).unwrap(), Some(json!({"pid": 1})));
        // Taken: a second claim from "absent" fails and sees the first.
        assert_eq!(s.swap_study_attr(a, "k", None, &json!({"pid": 2})).unwrap(), Some(json!({"pid": 1})));
        assert_eq!(s.swap_study_attr(a, "k", Some(&json!({"pid": 3})), &json!(4)).unwrap(), Some(json!({"pid": 1})));
        assert_eq!(s.swap_study_attr(a, "k", Some(&json!({"pid": 1})), &json!(4)).unwrap(), Some(json!(4)));
        assert_eq!(s.study_attr(a, "k").unwrap(), Some(json!(4)));
        // Another study's attributes are its own; an unknown study is an error.
        assert_eq!(s.study_attr(b, "k").unwrap(), None);
        assert!(matches!(s.study_attr(999, "k"), Err(TuneError::UnknownStudy(_))));
        assert!(matches!(s.swap_study_attr(999, "k", None, &json!(1)), Err(TuneError::UnknownStudy(_))));
        // They go with their study.
        s.delete_study("a").unwrap();
        let a = s.create_study("a", Direction::Minimize, &json!(null)).unwrap().id;
        assert_eq!(s.study_attr(a, "k").unwrap(), None);
    }

    fn one_of_many_claimants_wins_a_study_attribute(s: Box<dyn Storage>) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        let s: &dyn Storage = s.as_ref();
        let winners: Vec<u64> = std::thread::scope(|scope| {
            let claims: Vec<_> = (0..8u64)
                .map(|i| scope.spawn(move || s.swap_study_attr(study, "role", None, &json!(i)).unwrap()))
                .collect();
            let seen: Vec<Value> = claims.into_iter().map(|c| c.join().unwrap().unwrap()).collect();
            seen.iter().map(|v| v.as_u64().unwrap()).collect()
        });
        assert!(winners.iter().all(|w| *w == winners[0]), "every claimant sees the one winner: {winners:?}");
    }

    fn studies_are_created_listed_and_deleted(s: &dyn Storage) {
        let a = s.create_study("a", Direction::Minimize, &json!({"sampler": "random"})).unwrap();
        s.create_study("b", Direction::Maximize, &json!(null)).unwrap();
        assert!(matches!(s.create_study("a", Direction::Minimize, &json!(null)), Err(TuneError::StudyExists(_))));
        assert_eq!(s.load_study("a").unwrap(), a);
        assert!(matches!(s.load_study("zz"), Err(TuneError::UnknownStudy(_))));
        let names: Vec<String> = s.list_studies().unwrap().into_iter().map(|x| x.name).collect();
        assert_eq!(names, ["a", "b"]);
        s.delete_study("a").unwrap();
        assert!(s.load_study("a").is_err());
        assert!(s.delete_study("a").is_err());
    }

    fn trials_are_numbered_in_order_and_enqueued_ones_come_first(s: &dyn Storage) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        assert_eq!(s.create_trial(study).unwrap().number, 0);
        let fixed = BTreeMap::from([("x".to_string(), json!(1.5))]);
        assert_eq!(s.enqueue_trial(study, &fixed).unwrap(), 1);
        let claimed = s.create_trial(study).unwrap();
        assert_eq!((claimed.number, claimed.state, &claimed.fixed_params), (1, TrialState::Running, &fixed));
        assert_eq!(s.create_trial(study).unwrap().number, 2);
        assert!(s.claim_waiting_trial(study).unwrap().is_none(), "nothing waits, nothing is created");
        s.enqueue_trial(study, &fixed).unwrap();
        assert_eq!(s.claim_waiting_trial(study).unwrap().map(|t| t.number), Some(3));
        assert_eq!(s.trials_since(study, 0).unwrap().trials.len(), 4);
    }

    fn params_reports_and_finishing_are_recorded(s: &dyn Storage) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        let t = s.create_trial(study).unwrap();
        let d = Distribution::categorical(["sgd", "adam"]);
        s.set_param(t.id, "opt", &d, &json!("adam")).unwrap();
        assert!(s.set_param(t.id, "opt", &d, &json!("lbfgs")).is_err(), "a value outside the distribution");
        s.report(t.id, 0, 0.9).unwrap();
        s.report(t.id, 1, 0.5).unwrap();
        s.set_attr(t.id, "best_epochs", &json!(3)).unwrap();
        s.set_attr(t.id, "best_epochs", &json!(2)).unwrap();
        s.set_attr(t.id, "why", &json!({"a": [1, "b"]})).unwrap();
        s.heartbeat(t.id).unwrap();
        let done = s.finish_trial(t.id, TrialState::Complete(0.25)).unwrap();
        assert_eq!(done.value(), Some(0.25));
        let stored = s.trial(study, 0).unwrap();
        assert_eq!(stored.params["opt"], json!("adam"));
        assert_eq!(stored.distributions["opt"], d);
        assert_eq!(stored.intermediate, BTreeMap::from([(0, 0.9), (1, 0.5)]));
        let attrs =
            BTreeMap::from([("best_epochs".to_string(), json!(2)), ("why".to_string(), json!({"a": [1, "b"]}))]);
        assert_eq!(stored.attrs, attrs, "the last value of each name");
        assert_eq!(s.trials_since(study, 0).unwrap().trials[0].attrs, attrs);
        assert!(stored.finished_at.is_some() && stored.heartbeat_at.is_some());
        assert!(matches!(s.trial(study, 7), Err(TuneError::UnknownTrial { .. })));
        let t = s.create_trial(study).unwrap();
        assert!(s.finish_trial(t.id, TrialState::Complete(f64::NAN)).is_err(), "NaN is not a value");
        assert_eq!(s.list_studies().unwrap()[0].best_value, Some(0.25));
    }

    fn a_finished_trial_cannot_change(s: &dyn Storage) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        let t = s.create_trial(study).unwrap();
        s.report(t.id, 3, 1.0).unwrap();
        s.finish_trial(t.id, TrialState::Pruned).unwrap();
        assert!(matches!(s.finish_trial(t.id, TrialState::Complete(1.0)), Err(TuneError::TrialFinished { .. })));
        assert!(s.report(t.id, 4, 1.0).is_err());
        assert!(s.set_attr(t.id, "x", &json!(1)).is_err());
        assert!(s.set_param(t.id, "x", &Distribution::float(0.0, 1.0), &json!(0.5)).is_err());
        let kept = s.trial(study, 0).unwrap();
        assert_eq!((kept.state, kept.intermediate.len()), (TrialState::Pruned, 1), "a pruned trial keeps its values");
    }

    fn cursors_return_only_what_changed(s: &dyn Storage) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        let a = s.create_trial(study).unwrap();
        let b = s.create_trial(study).unwrap();
        let first = s.trials_since(study, 0).unwrap();
        assert_eq!(first.trials.len(), 2);
        s.finish_trial(b.id, TrialState::Complete(1.0)).unwrap();
        let next = s.trials_since(study, first.cursor).unwrap();
        assert_eq!(next.trials.iter().map(|t| t.number).collect::<Vec<_>>(), [1]);
        assert!(s.trials_since(study, next.cursor).unwrap().trials.is_empty());
        s.report(a.id, 0, 2.0).unwrap();
        assert_eq!(s.trials_since(study, next.cursor).unwrap().trials[0].number, 0);
    }

    fn stale_trials_are_failed(s: &dyn Storage) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        let t = s.create_trial(study).unwrap();
        assert!(s.fail_stale_trials(study, 60.0).unwrap().is_empty(), "a fresh trial is not stale");
        assert_eq!(s.fail_stale_trials(study, -1.0).unwrap(), [t.number]);
        assert_eq!(s.trial(study, t.number).unwrap().fail_reason(), Some(crate::WORKER_LOST), "the reason is kept");
        assert_eq!(s.trial(study, 0).unwrap().state, TrialState::Fail);
    }

    fn concurrent_creation_never_repeats_a_number(s: Box<dyn Storage>) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        let s: &dyn Storage = s.as_ref();
        let mut numbers: Vec<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(move || (0..50).map(|_| s.create_trial(study).unwrap().number).collect::<Vec<_>>())
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        numbers.sort_unstable();
        assert_eq!(numbers, (0..200).collect::<Vec<_>>());
    }

    fn a_budget_is_shared_and_never_overrun(s: Box<dyn Storage>) {
        let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
        let fixed = BTreeMap::from([("x".to_string(), json!(1))]);
        for _ in 0..3 {
            s.enqueue_trial(study, &fixed).unwrap();
        }
        // Waiting trials numbered below the budget first, then new ones, then none.
        let start = |budget, waiting_only| s.start_trial_within(study, budget, waiting_only).unwrap().map(|t| t.number);
        assert_eq!(start(2, false), Some(0));
        assert_eq!(start(2, false), Some(1));
        assert_eq!(start(2, false), None, "trial 2 waits, but beyond the budget");
        assert_eq!(start(5, true), Some(2));
        assert_eq!(start(5, true), None, "nothing waits");
        assert_eq!(start(5, false), Some(3));
        // Four threads share a budget of 60: exactly 60 trials, each number once.
        let s: &dyn Storage = s.as_ref();
        let mut numbers: Vec<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(move || {
                        std::iter::from_fn(|| s.start_trial_within(study, 60, false).unwrap().map(|t| t.number))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        numbers.sort_unstable();
        assert_eq!(numbers, (4..60).collect::<Vec<_>>());
    }

    #[test]
    fn in_memory_storage_conforms() {
        run(&|| Box::new(InMemoryStorage::new()));
    }
}
