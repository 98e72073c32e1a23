//! Typed errors for loading and preparing data. Each message is one line that
//! names the file (and where it applies the line and column) at fault.

use std::path::PathBuf;

/// Something wrong with the data or with a request about it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read '{path}': {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: the file is empty (expected a header row and data rows)")]
    Empty { path: String },
    #[error("{path}: the header has no data rows under it")]
    NoRows { path: String },
    #[error("{path}:{line}: malformed CSV: {message}")]
    Malformed { path: String, line: u64, message: String },
    #[error("{path}:{line}: row has {found} fields but the header has {expected}")]
    Ragged { path: String, line: u64, expected: usize, found: usize },
    #[error("{path}:{line}:{column}: value '{value}' in column '{name}' is not a number")]
    NotANumber { path: String, line: u64, column: usize, name: String, value: String },
    #[error(
        "{path}:{line}:{column}: value '{value}' in column '{name}' is not finite (NaN and infinity are not allowed)"
    )]
    NotFinite { path: String, line: u64, column: usize, name: String, value: String },
    #[error(
        "{path}:{line}:{column}: value '{value}' in column '{name}' is not '{truth}' or '{falsity}' (any case, as in training)"
    )]
    NotBoolean {
        path: String,
        line: u64,
        column: usize,
        name: String,
        value: String,
        truth: &'static str,
        falsity: &'static str,
    },
    #[error("{path}:{line}:{column}: value '{value}' in column '{name}' is not a date ({form}, as in training)")]
    NotADate { path: String, line: u64, column: usize, name: String, value: String, form: &'static str },
    #[error("{path}: no column named '{name}' to use as the target (columns: {available})")]
    UnknownTarget { path: String, name: String, available: String },
    #[error("{path}: target column '{name}' has only one class ('{class}'); classification needs at least two")]
    OneClass { path: String, name: String, class: String },
    #[error("{path}: the header has only the target column '{name}'; there are no features")]
    NoFeatures { path: String, name: String },
    #[error("{path}: column name '{name}' appears twice (columns {first} and {second})")]
    DuplicateColumn { path: String, name: String, first: usize, second: usize },
    #[error("{path}: no column named '{name}', a feature the model was trained on")]
    MissingFeature { path: String, name: String },
    #[error("unknown built-in dataset '{name}' (available: {available})")]
    UnknownBuiltin { name: String, available: String },
    #[error(
        "{path}: {what}, more than this machine may hold while reading it (a table takes up to 4 times its text; \
         the memory budget is {budget}); set GRADUS_MAX_MEMORY (such as 32G) to allow more"
    )]
    TooLarge { path: String, what: String, budget: String },
    #[error("{path}: {message}")]
    Idx { path: String, message: String },
    #[error("{path}: {message}")]
    Image { path: String, message: String },
    #[error("invalid {name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },
}

impl DataError {
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        DataError::InvalidArgument { name, reason: reason.into() }
    }
}
