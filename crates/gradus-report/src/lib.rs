//! Pictures of a study: SVG plots of its trials (the optimisation history,
//! the learning curves with the pruned trials marked, the distribution of
//! values, the timeline of workers, slices, parallel coordinates) and the
//! hyperparameters' importance ([`importance`]), read through the [`Storage`] trait
//! only — so they work the same on SQLite and PostgreSQL, and while a
//! study runs — and knowing nothing of training. And the pictures of a
//! model's explanation ([`explain`]), drawn from numbers the training
//! crate computes.

#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod explain;
pub mod html;
pub mod importance;
pub mod plots;
pub mod svg;

use gradus_tune::{Direction, FrozenTrial, Storage, TuneError};

pub use plots::PlotKind;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Storage(#[from] TuneError),
    /// The study holds nothing the picture could show.
    #[error("study '{study}' has {what} to show")]
    Empty { study: String, what: String },
}

impl ReportError {
    /// Whether the user asked for something that is not there (an unknown
    /// or empty study), rather than the storage failing.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, ReportError::Empty { .. } | ReportError::Storage(TuneError::UnknownStudy(_)))
    }
}

/// A study's name, direction and trials, as read at one moment.
#[derive(Clone, Debug)]
pub struct StudyTrials {
    pub name: String,
    pub direction: Direction,
    pub trials: Vec<FrozenTrial>,
}

impl StudyTrials {
    /// Reads study `name` from `storage`: an unknown study is an error.
    pub fn load(storage: &dyn Storage, name: &str) -> Result<Self, ReportError> {
        let record = storage.load_study(name)?;
        let mut trials = storage.trials_since(record.id, 0)?.trials;
        trials.sort_by_key(|t| t.number);
        Ok(StudyTrials { name: record.name, direction: record.direction, trials })
    }
}

/// The HTML report of study `name` in `storage` (see [`html`]).
pub fn report(storage: &dyn Storage, name: &str) -> Result<String, ReportError> {
    html::report(&StudyTrials::load(storage, name)?)
}

/// The SVG of plot `kind` of study `name` in `storage`.
pub fn plot(storage: &dyn Storage, name: &str, kind: PlotKind) -> Result<String, ReportError> {
    let study = StudyTrials::load(storage, name)?;
    if study.trials.is_empty() {
        return Err(ReportError::Empty { study: study.name, what: "no trials".into() });
    }
    kind.svg(&study)
}
