//! The built-in datasets, compiled into the binary so they work anywhere.
//! Sources and licences: `crates/gradus-data/data/README.md`.

use crate::load::decompress;
use crate::{DataError, Dataset, LoadOptions, TargetKind, parse_csv};

/// A built-in dataset: its name, shape and task, and where it came from.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinInfo {
    pub name: &'static str,
    pub rows: usize,
    pub features: usize,
    /// `regression`, `binary` or `multiclass`.
    pub task: &'static str,
    pub source: &'static str,
    target_kind: TargetKind,
    gzipped_csv: &'static [u8],
}

macro_rules! builtin {
    ($name:literal, $rows:literal, $features:literal, $task:literal, $kind:ident, $source:literal) => {
        BuiltinInfo {
            name: $name,
            rows: $rows,
            features: $features,
            task: $task,
            source: $source,
            target_kind: TargetKind::$kind,
            gzipped_csv: include_bytes!(concat!("../data/", $name, ".csv.gz")),
        }
    };
}

/// Every built-in dataset, addressable as `builtin:NAME`.
pub const BUILTINS: &[BuiltinInfo] = &[
    builtin!("iris", 150, 4, "multiclass", Classes, "Fisher 1936, UCI Iris; CC BY 4.0"),
    builtin!("wine", 178, 13, "multiclass", Classes, "UCI Wine; CC BY 4.0"),
    builtin!("breast_cancer", 569, 30, "binary", Classes, "UCI Breast Cancer Wisconsin (Diagnostic); CC BY 4.0"),
    builtin!("diabetes", 442, 10, "regression", Real, "Efron et al. 2004, Least Angle Regression"),
    builtin!(
        "digits",
        1797,
        64,
        "multiclass",
        Classes,
        "UCI Optical Recognition of Handwritten Digits (8x8); CC BY 4.0"
    ),
    builtin!(
        "mnist_5k",
        5000,
        784,
        "multiclass",
        Classes,
        "5,000-image subset of MNIST (LeCun, Cortes, Burges); CC BY-SA 3.0"
    ),
];

fn find(name: &str) -> Result<&'static BuiltinInfo, DataError> {
    BUILTINS.iter().find(|b| b.name == name).ok_or_else(|| DataError::UnknownBuiltin {
        name: name.into(),
        available: BUILTINS.iter().map(|b| b.name).collect::<Vec<_>>().join(", "),
    })
}

/// The CSV text of the built-in dataset `name`.
pub(crate) fn builtin_text(name: &str) -> Result<Vec<u8>, DataError> {
    let info = find(name)?;
    decompress(info.gzipped_csv)
        .map(|text| text.into_owned())
        .map_err(|error| DataError::Io { path: format!("builtin:{name}").into(), error })
}

/// Loads the built-in dataset `name`. Its target is read as the dataset's own
/// task says unless `options.target_kind` asks for something else.
/// How the built-in dataset `name` reads its target.
pub(crate) fn target_kind(name: &str) -> Result<TargetKind, DataError> {
    Ok(find(name)?.target_kind)
}

pub fn load_builtin(name: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
    let info = find(name)?;
    let options = LoadOptions {
        target: options.target.clone(),
        target_kind: match options.target_kind {
            TargetKind::Auto => info.target_kind,
            kind => kind,
        },
    };
    parse_csv(&builtin_text(name)?, &format!("builtin:{name}"), &options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Task;

    #[test]
    fn every_builtin_loads_with_the_shape_and_task_it_declares() {
        for info in BUILTINS {
            let d = load_builtin(info.name, &LoadOptions::default()).unwrap();
            assert_eq!((d.n_samples(), d.n_features()), (info.rows, info.features), "{}", info.name);
            let task = match d.task() {
                Task::Regression => "regression",
                Task::Binary => "binary",
                Task::Multiclass { .. } => "multiclass",
            };
            assert_eq!(task, info.task, "{}", info.name);
        }
    }

    #[test]
    fn an_unknown_builtin_lists_the_known_ones() {
        let err = load_builtin("nope", &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.starts_with("unknown built-in dataset 'nope' (available: iris, wine"), "{err}");
    }
}
