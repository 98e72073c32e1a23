//! Typed errors of the training engine. Each one is the caller's input at
//! fault (a parameter out of range, or data that does not fit the model).

/// A training request that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A hyperparameter outside its valid range.
    #[error("invalid {name} {value}: {expected}")]
    InvalidParameter { name: &'static str, value: String, expected: &'static str },
    /// Data whose shape or target does not fit the model or loss.
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Data(#[from] gradus_data::DataError),
}

impl TrainError {
    pub(crate) fn invalid(name: &'static str, value: impl ToString, expected: &'static str) -> Self {
        TrainError::InvalidParameter { name, value: value.to_string(), expected }
    }
}
