//! What the SQL back ends share: how rows decode into studies and trials, the
//! checks they make the same way, and how their failures become
//! [`TuneError`]s. Both lay out their tables alike (see the SQLite module's
//! docs), so only the SQL dialect and the driver differ.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use gradus_tune::{Direction, Distribution, FrozenTrial, StudyRecord, StudySummary, TrialState, TuneError};

/// Why an operation failed, before it is turned into a [`TuneError`] that
/// names the database; `E` is the driver's error.
pub(crate) enum Failure<E> {
    /// A caller's mistake (unknown study, finished trial, ...), passed on as is.
    Tune(TuneError),
    Db(E),
    /// Data in the database that this code never writes.
    Corrupt(String),
    /// A database this code will not use, and why.
    Refused(String),
}

/// A failure found without the driver (the same variants as [`Failure`]'s).
pub(crate) enum Invalid {
    Tune(TuneError),
    Corrupt(String),
    Refused(String),
}

impl<E> From<TuneError> for Failure<E> {
    fn from(e: TuneError) -> Self {
        Failure::Tune(e)
    }
}

impl<E> From<Invalid> for Failure<E> {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Tune(e) => Failure::Tune(e),
            Invalid::Corrupt(reason) => Failure::Corrupt(reason),
            Invalid::Refused(reason) => Failure::Refused(reason),
        }
    }
}

impl From<TuneError> for Invalid {
    fn from(e: TuneError) -> Self {
        Invalid::Tune(e)
    }
}

impl<E: Display> Failure<E> {
    /// The error to return: a caller's mistake as is, anything else as a
    /// storage error naming `place` (the database) and `what` was being done.
    pub(crate) fn into_tune(self, place: &str, what: &str) -> TuneError {
        match self {
            Failure::Tune(e) => e,
            Failure::Db(e) => TuneError::Storage(format!("{place}: {what}: {e}")),
            Failure::Corrupt(reason) => TuneError::Storage(format!("{place}: {what}: corrupted data: {reason}")),
            Failure::Refused(reason) => TuneError::Storage(format!("{place}: {what}: {reason}")),
        }
    }
}

/// Adds "cannot open study database" to the storage error of a failed open.
pub(crate) fn open_failed(e: TuneError) -> TuneError {
    match e {
        TuneError::Storage(msg) => TuneError::Storage(format!("cannot open study database {msg}")),
        other => other,
    }
}

/// The index of the first migration to run on a database of schema version
/// `found`, where this code writes version `current`.
pub(crate) fn pending_migrations(found: i64, current: i64) -> Result<usize, Invalid> {
    if found > current {
        Err(Invalid::Refused(format!(
            "it has schema version {found}, newer than this gradus understands ({current}); open it with a newer gradus"
        )))
    } else if found < 1 {
        Err(Invalid::Corrupt(format!("schema version {found}")))
    } else {
        Ok((found - 1) as usize)
    }
}

/// Why a schema without a version is not set up: it already has other tables.
pub(crate) const FOREIGN_TABLES: &str = "it has tables but no schema version: not a gradus study database";

/// A caller's id as a database integer; `None` (no such row) beyond `i64`.
pub(crate) fn key(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// A step as a database integer.
pub(crate) fn step_key(step: u64) -> Result<i64, TuneError> {
    i64::try_from(step)
        .map_err(|_| TuneError::InvalidArgument { name: "step", reason: format!("{step} is larger than {}", i64::MAX) })
}

/// An intermediate value as stored: NULL stands for NaN (SQLite has no NaN,
/// and both back ends store it alike).
pub(crate) fn nan_as_null(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// A database integer that must be a `u64`.
pub(crate) fn unsigned(v: i64, what: &str) -> Result<u64, Invalid> {
    u64::try_from(v).map_err(|_| Invalid::Corrupt(format!("negative {what} {v}")))
}

pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String, Invalid> {
    serde_json::to_string(value).map_err(|e| Invalid::Corrupt(format!("cannot encode JSON: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Invalid> {
    serde_json::from_str(text).map_err(|e| Invalid::Corrupt(format!("{what} {text:?}: {e}")))
}

pub(crate) fn parse_direction(name: &str) -> Result<Direction, Invalid> {
    match name {
        "minimize" => Ok(Direction::Minimize),
        "maximize" => Ok(Direction::Maximize),
        _ => Err(Invalid::Corrupt(format!("direction '{name}'"))),
    }
}

pub(crate) fn parse_state(name: &str, value: Option<f64>) -> Result<TrialState, Invalid> {
    Ok(match (name, value) {
        ("waiting", None) => TrialState::Waiting,
        ("running", None) => TrialState::Running,
        ("complete", Some(v)) => TrialState::Complete(v),
        ("pruned", None) => TrialState::Pruned,
        ("fail", None) => TrialState::Fail,
        _ => return Err(Invalid::Corrupt(format!("trial state '{name}' with value {value:?}"))),
    })
}

/// `UnknownStudy` naming the study `#id`, as the in-memory storage does.
pub(crate) fn unknown_study(study: u64) -> TuneError {
    TuneError::UnknownStudy(format!("#{study}"))
}

/// `UnknownTrial` for a trial id (no study known).
pub(crate) fn unknown_trial(trial_id: u64) -> TuneError {
    TuneError::UnknownTrial { study: String::new(), trial: trial_id }
}

/// Checks that trial `trial_id`, whose `(number, state, value)` row was
/// looked up, exists and is not finished (the errors of the in-memory storage).
pub(crate) fn check_unfinished(trial_id: u64, row: Option<(i64, String, Option<f64>)>) -> Result<(), Invalid> {
    let (number, state, value) = row.ok_or_else(|| unknown_trial(trial_id))?;
    let state = parse_state(&state, value)?;
    if state.is_finished() {
        return Err(
            TuneError::TrialFinished { trial: unsigned(number, "trial number")?, state: state.name().into() }.into()
        );
    }
    Ok(())
}

pub(crate) fn study_record(id: i64, name: &str, direction: &str, settings: &str) -> Result<StudyRecord, Invalid> {
    Ok(StudyRecord {
        id: unsigned(id, "study id")?,
        name: name.into(),
        direction: parse_direction(direction)?,
        settings: from_json(settings, "study settings")?,
    })
}

/// A line of the study listing from `name, direction, COUNT(trials),
/// MIN(value), MAX(value)` (`value` is set on complete trials only).
pub(crate) fn study_summary(
    name: String,
    direction: &str,
    n_trials: i64,
    min: Option<f64>,
    max: Option<f64>,
) -> Result<StudySummary, Invalid> {
    let direction = parse_direction(direction)?;
    let best_value = match direction {
        Direction::Minimize => min,
        Direction::Maximize => max,
    };
    Ok(StudySummary { name, direction, n_trials: unsigned(n_trials, "count")?, best_value })
}

/// The query for the trials that `filter` (an SQL condition on `trials t`)
/// selects; its columns are those of [`TrialRow`], in order.
pub(crate) fn trials_query(filter: &str) -> String {
    format!(
        "SELECT t.id, t.number, t.state, t.value, t.fixed_params, t.started_at, t.finished_at, t.heartbeat_at
         FROM trials t WHERE {filter} ORDER BY t.id"
    )
}

/// The query for their parameters: `trial_id, name, distribution, value`.
pub(crate) fn params_query(filter: &str) -> String {
    format!(
        "SELECT p.trial_id, p.name, p.distribution, p.value FROM params p JOIN trials t ON t.id = p.trial_id WHERE {filter}"
    )
}

/// The query for their intermediate values: `trial_id, step, value`.
pub(crate) fn intermediate_query(filter: &str) -> String {
    format!("SELECT i.trial_id, i.step, i.value FROM intermediate i JOIN trials t ON t.id = i.trial_id WHERE {filter}")
}

/// The query for their attributes: `trial_id, name, value`.
pub(crate) fn attrs_query(filter: &str) -> String {
    format!("SELECT a.trial_id, a.name, a.value FROM attrs a JOIN trials t ON t.id = a.trial_id WHERE {filter}")
}

/// A row of [`trials_query`].
pub(crate) struct TrialRow {
    pub id: i64,
    pub number: i64,
    pub state: String,
    pub value: Option<f64>,
    pub fixed_params: String,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub heartbeat_at: Option<f64>,
}

/// Trials put together from the rows of the four queries above.
#[derive(Default)]
pub(crate) struct TrialSet {
    trials: Vec<FrozenTrial>,
    /// Position in `trials` by trial key.
    index: HashMap<i64, usize>,
}

impl TrialSet {
    pub(crate) fn push(&mut self, row: TrialRow) -> Result<(), Invalid> {
        self.index.insert(row.id, self.trials.len());
        self.trials.push(FrozenTrial {
            id: unsigned(row.id, "trial id")?,
            number: unsigned(row.number, "trial number")?,
            state: parse_state(&row.state, row.value)?,
            params: BTreeMap::new(),
            distributions: BTreeMap::new(),
            intermediate: BTreeMap::new(),
            fixed_params: from_json(&row.fixed_params, "fixed parameters")?,
            attrs: BTreeMap::new(),
            started_at: row.started_at,
            finished_at: row.finished_at,
            heartbeat_at: row.heartbeat_at,
        });
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.trials.is_empty()
    }

    /// Adds a row of [`params_query`] (of a trial not in the set: ignored).
    pub(crate) fn add_param(
        &mut self,
        trial: i64,
        name: String,
        distribution: &str,
        value: &str,
    ) -> Result<(), Invalid> {
        let Some(&i) = self.index.get(&trial) else { return Ok(()) };
        let distribution: Distribution = from_json(distribution, "distribution")?;
        self.trials[i].params.insert(name.clone(), from_json(value, "parameter value")?);
        self.trials[i].distributions.insert(name, distribution);
        Ok(())
    }

    /// Adds a row of [`intermediate_query`] (NULL is NaN).
    pub(crate) fn add_intermediate(&mut self, trial: i64, step: i64, value: Option<f64>) -> Result<(), Invalid> {
        let Some(&i) = self.index.get(&trial) else { return Ok(()) };
        self.trials[i].intermediate.insert(unsigned(step, "step")?, value.unwrap_or(f64::NAN));
        Ok(())
    }

    /// Adds a row of [`attrs_query`] (of a trial not in the set: ignored).
    pub(crate) fn add_attr(&mut self, trial: i64, name: String, value: &str) -> Result<(), Invalid> {
        let Some(&i) = self.index.get(&trial) else { return Ok(()) };
        self.trials[i].attrs.insert(name, from_json(value, "attribute value")?);
        Ok(())
    }

    pub(crate) fn into_vec(self) -> Vec<FrozenTrial> {
        self.trials
    }
}
