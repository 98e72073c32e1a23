//! Typed errors of the tuning engine.

/// Something wrong with a search space, a study request or a storage.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// A distribution or search space that cannot be sampled.
    #[error("parameter '{name}': {reason}")]
    InvalidDistribution { name: String, reason: String },
    /// A space file or JSON that does not parse.
    #[error("{source_name}: {reason}")]
    InvalidSpace { source_name: String, reason: String },
    /// The same parameter suggested twice with different distributions.
    #[error("parameter '{name}' was suggested as {first} and now as {second}")]
    IncompatibleSuggestion { name: String, first: String, second: String },
    #[error("no study named '{0}'")]
    UnknownStudy(String),
    #[error("a study named '{0}' already exists")]
    StudyExists(String),
    #[error("no trial {trial} in study '{study}'")]
    UnknownTrial { study: String, trial: u64 },
    #[error("trial {trial} is already finished ({state}); it cannot be changed")]
    TrialFinished { trial: u64, state: String },
    #[error("invalid value for trial {trial}: {reason}")]
    InvalidValue { trial: u64, reason: String },
    #[error("study '{0}' has no trials left to propose (its grid is exhausted)")]
    Exhausted(String),
    #[error("invalid {name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },
    /// A failure of the storage back end (I/O, database).
    #[error("storage: {0}")]
    Storage(String),
}
