//! Trials as stored: their state, parameters and intermediate values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Distribution, TuneError};

pub use crate::study::Trial;

/// Whether the objective is minimised or maximised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Minimize,
    Maximize,
}

impl Direction {
    /// Whether `a` is better than `b` in this direction.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Minimize => a < b,
            Direction::Maximize => a > b,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Minimize => "minimize",
            Direction::Maximize => "maximize",
        }
    }
}

/// Where a trial is in its life. Only a complete trial has a value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", content = "value", rename_all = "snake_case")]
pub enum TrialState {
    /// Enqueued with fixed parameters, not yet claimed.
    Waiting,
    Running,
    Complete(f64),
    Pruned,
    Fail,
}

impl TrialState {
    pub fn is_finished(&self) -> bool {
        matches!(self, TrialState::Complete(_) | TrialState::Pruned | TrialState::Fail)
    }

    pub fn name(&self) -> &'static str {
        match self {
            TrialState::Waiting => "waiting",
            TrialState::Running => "running",
            TrialState::Complete(_) => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Fail => "fail",
        }
    }

    pub fn value(&self) -> Option<f64> {
        match self {
            TrialState::Complete(v) => Some(*v),
            _ => None,
        }
    }

    /// Checks that a trial (`trial_id` names it in the error) may end in this
    /// state: a final one, with a finite value if complete. Every storage
    /// checks `finish_trial` with it.
    pub fn check_final(&self, trial_id: u64) -> Result<(), TuneError> {
        if !self.is_finished() {
            return Err(TuneError::InvalidArgument {
                name: "state",
                reason: format!("{} is not a final state", self.name()),
            });
        }
        if let TrialState::Complete(v) = self
            && !v.is_finite()
        {
            return Err(TuneError::InvalidValue { trial: trial_id, reason: format!("{v} is not a finite number") });
        }
        Ok(())
    }
}

/// The attribute that holds why a trial failed (see [`FrozenTrial::fail_reason`]).
pub const FAIL_REASON: &str = "fail_reason";

/// How the failure reason of a trial whose process died begins.
pub const WORKER_LOST_PREFIX: &str = "worker lost";

/// Why a trial found without a heartbeat was failed.
pub const WORKER_LOST: &str = "worker lost (no heartbeat)";

/// A snapshot of a trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrozenTrial {
    /// Unique within the storage.
    pub id: u64,
    /// 0, 1, 2, ... within the study, in order of creation.
    pub number: u64,
    pub state: TrialState,
    /// Parameter values as the objective saw them.
    pub params: BTreeMap<String, Value>,
    pub distributions: BTreeMap<String, Distribution>,
    /// Values reported with `Trial::report`, by step.
    pub intermediate: BTreeMap<u64, f64>,
    /// Parameters fixed in advance (enqueued trials).
    pub fixed_params: BTreeMap<String, Value>,
    /// What the objective recorded beside its value, by name
    /// ([`crate::Trial::set_attr`]; Optuna's user attributes): a
    /// measurement a later step needs, such as the epoch count to retrain.
    #[serde(default)]
    pub attrs: BTreeMap<String, Value>,
    /// Seconds since the Unix epoch.
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub heartbeat_at: Option<f64>,
}

impl FrozenTrial {
    /// A trial with no parameters, reports or times yet.
    pub fn new(id: u64, number: u64, state: TrialState) -> Self {
        FrozenTrial {
            id,
            number,
            state,
            params: BTreeMap::new(),
            distributions: BTreeMap::new(),
            intermediate: BTreeMap::new(),
            fixed_params: BTreeMap::new(),
            attrs: BTreeMap::new(),
            started_at: None,
            finished_at: None,
            heartbeat_at: None,
        }
    }

    pub fn value(&self) -> Option<f64> {
        self.state.value()
    }

    /// Why the trial failed, as recorded when it did: the objective's error,
    /// "diverged at epoch k", "interrupted", [`WORKER_LOST`]…
    pub fn fail_reason(&self) -> Option<&str> {
        self.attrs.get(FAIL_REASON).and_then(Value::as_str)
    }

    /// The internal (f64) value of a parameter.
    pub fn internal(&self, name: &str) -> Option<f64> {
        let (value, dist) = (self.params.get(name)?, self.distributions.get(name)?);
        dist.to_internal(name, value).ok()
    }

    /// The best intermediate value reported so far (`direction`-wise).
    pub fn best_intermediate(&self, direction: Direction) -> Option<f64> {
        self.best_intermediate_until(direction, u64::MAX)
    }

    /// The best intermediate value reported at or before `step`.
    pub fn best_intermediate_until(&self, direction: Direction, step: u64) -> Option<f64> {
        self.intermediate
            .range(..=step)
            .map(|(_, &v)| v)
            .filter(|v| !v.is_nan())
            .reduce(|a, b| if direction.better(b, a) { b } else { a })
    }

    /// Seconds the trial ran (finished trials).
    pub fn duration(&self) -> Option<f64> {
        Some(self.finished_at? - self.started_at?)
    }
}

/// Seconds since the Unix epoch, now: how every storage stamps its trials.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
