//! Model files: everything needed to predict from raw data in one
//! safetensors file — the architecture, the loss, the preprocessing (feature
//! names and order, the scaler, the class labels) and the weights.
//!
//! Layout: each parameter block is a safetensors F32 tensor under its
//! [`crate::NamedParams`] name (`dense.0.weight` [fan_in, fan_out], ...); the
//! `__metadata__` header holds `format` (`gradus-model`), `format_version`,
//! `gradus_version`, `spec` (JSON of [`ModelSpec`]) and `checksum` (FNV-1a 64
//! of the weights in order). A file that is truncated, altered, from another
//! format version or not a model file at all is rejected with a
//! [`ModelFileError`]; it never yields a model that predicts wrongly.

use std::collections::HashMap;
use std::path::Path;

use gradus_data::{Dataset, Matrix, Scaler, Scaling, Target};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::{LinearModel, Loss, Mlp, MlpSpec, Model, TrainError};

/// The file format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT: &str = "gradus-model";

/// The shape of a model, enough to rebuild it before loading its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    Linear { n_inputs: usize, n_outputs: usize, fit_intercept: bool },
    Mlp(MlpSpec),
}

/// The most parameters a model may have (4 GiB of f32): a bound that turns an
/// absurd width into an error instead of an allocation failure.
pub const MAX_PARAMS: usize = 1 << 30;

impl Architecture {
    /// The number of parameters, or an error when it is zero-width or too large.
    pub fn n_params(&self) -> Result<usize, TrainError> {
        let (widths, bias) = match self {
            Architecture::Linear { n_inputs, n_outputs, fit_intercept } => {
                (vec![*n_inputs, *n_outputs], *fit_intercept)
            }
            Architecture::Mlp(spec) => {
                spec.validate()?;
                let widths = std::iter::once(spec.n_inputs).chain(spec.hidden.iter().copied()).chain([spec.n_outputs]);
                (widths.collect(), true)
            }
        };
        if widths.contains(&0) {
            return Err(TrainError::Mismatch("every layer needs at least one input and one output".into()));
        }
        let too_large = || {
            TrainError::Mismatch(format!("the model {} would have more than {MAX_PARAMS} parameters", self.describe()))
        };
        let mut total = 0usize;
        for pair in widths.windows(2) {
            let layer = pair[0].checked_mul(pair[1]).and_then(|w| w.checked_add(if bias { pair[1] } else { 0 }));
            total = layer.and_then(|l| total.checked_add(l)).ok_or_else(too_large)?;
        }
        if total > MAX_PARAMS {
            return Err(too_large());
        }
        Ok(total)
    }

    /// A fresh model of this shape (zero or unset weights).
    pub fn build(&self) -> Result<Box<dyn Model>, TrainError> {
        self.n_params()?;
        Ok(match self {
            Architecture::Linear { n_inputs, n_outputs, fit_intercept } => {
                Box::new(LinearModel::new(*n_inputs, *n_outputs, *fit_intercept))
            }
            Architecture::Mlp(spec) => Box::new(Mlp::new(spec.clone())?),
        })
    }

    /// A short human description, such as `MLP 64-128-10 relu`.
    pub fn describe(&self) -> String {
        match self {
            Architecture::Linear { n_inputs, n_outputs, .. } => format!("linear {n_inputs}-{n_outputs}"),
            Architecture::Mlp(spec) => {
                let widths: Vec<String> = std::iter::once(spec.n_inputs)
                    .chain(spec.hidden.iter().copied())
                    .chain([spec.n_outputs])
                    .map(|w| w.to_string())
                    .collect();
                let dropout = if spec.dropout > 0.0 { format!(", dropout {}", spec.dropout) } else { String::new() };
                format!("MLP {} {}{dropout}", widths.join("-"), spec.activation.name())
            }
        }
    }
}

/// How raw rows become model inputs, and outputs become predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// The input columns, in the order the model reads them.
    pub feature_names: Vec<String>,
    /// The feature scaler fitted on the training rows, if any.
    pub scaler: Option<Scaler>,
    pub target_name: String,
    /// Class labels in index order; `None` for regression.
    pub classes: Option<Vec<String>>,
}

impl Preprocessing {
    /// Fits on the training rows: their feature names, classes and scaler.
    pub fn fit(train: &Dataset, scaling: Scaling) -> Result<Self, TrainError> {
        Ok(Self {
            feature_names: train.feature_names.clone(),
            scaler: scaling.fit(&train.x)?,
            target_name: train.target_name.clone(),
            classes: match &train.y {
                Target::Classes { classes, .. } => Some(classes.clone()),
                Target::Real(_) => None,
            },
        })
    }

    /// Scales a feature matrix whose columns are already in model order.
    pub fn transform(&self, x: &mut Matrix) -> Result<(), TrainError> {
        if let Some(scaler) = &self.scaler {
            scaler.transform(x)?;
        }
        Ok(())
    }

    /// `data` as the model sees it: its columns picked and ordered by name,
    /// scaled, and class labels indexed as in training.
    pub fn apply(&self, data: &Dataset) -> Result<Dataset, TrainError> {
        let mut out = data.select_features(&self.feature_names)?;
        self.transform(&mut out.x)?;
        if let Some(classes) = &self.classes {
            out.y = out.y.remap_classes(classes, &data.name, &data.target_name)?;
        }
        Ok(out)
    }
}

/// What the metadata `spec` entry holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub architecture: Architecture,
    pub loss: Loss,
    pub preprocessing: Preprocessing,
}

impl ModelSpec {
    /// Checks that the parts agree: as many feature names and scaler entries
    /// as inputs, and classes that fit the loss and the outputs.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.architecture.n_params()?;
        let (n_inputs, n_outputs) = match &self.architecture {
            Architecture::Linear { n_inputs, n_outputs, .. } => (*n_inputs, *n_outputs),
            Architecture::Mlp(spec) => (spec.n_inputs, spec.n_outputs),
        };
        let prep = &self.preprocessing;
        let bad = |what: String| Err(TrainError::Mismatch(format!("inconsistent model: {what}")));
        if prep.feature_names.len() != n_inputs {
            return bad(format!("{} feature names for {n_inputs} inputs", prep.feature_names.len()));
        }
        if let Some(s) = &prep.scaler
            && (s.offset.len() != n_inputs || s.scale.len() != n_inputs)
        {
            return bad(format!("a scaler of {}/{} entries for {n_inputs} inputs", s.offset.len(), s.scale.len()));
        }
        let target = match &prep.classes {
            Some(classes) => Target::Classes { labels: Vec::new(), classes: classes.clone() },
            None => Target::Real(Vec::new()),
        };
        self.loss.check(n_outputs, &target)?;
        if prep.classes.as_ref().is_some_and(|c| c.len() < 2) {
            return bad("fewer than two classes".into());
        }
        Ok(())
    }
}

/// A trained model with everything needed to use it on raw data.
pub struct SavedModel {
    pub spec: ModelSpec,
    pub model: Box<dyn Model>,
}

/// Why a model file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot {action} '{path}': {error}")]
    Io { action: &'static str, path: String, error: std::io::Error },
    #[error("{path}: not a readable gradus model file ({reason})")]
    Corrupt { path: String, reason: String },
    #[error(
        "{path}: written in gradus model format version {found}; this gradus ({version}) reads version {FORMAT_VERSION}"
    )]
    Version { path: String, found: String, version: &'static str },
    #[error("invalid model: {0}")]
    Invalid(#[from] TrainError),
}

impl ModelFileError {
    /// Whether the error is a failure to write (not a fault of the input).
    pub fn is_write_failure(&self) -> bool {
        matches!(self, ModelFileError::Io { action: "write", .. })
    }
}

impl SavedModel {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelFileError> {
        let params = self.model.params();
        let bytes: Vec<u8> = params.iter().flat_map(|p| p.to_le_bytes()).collect();
        let blocks = self.model.named_params();
        let tensors: Vec<(String, TensorView)> = blocks
            .iter()
            .map(|b| {
                let data = &bytes[b.range.start * 4..b.range.end * 4];
                (b.name.clone(), TensorView::new(Dtype::F32, b.shape.clone(), data).expect("shape matches the range"))
            })
            .collect();
        self.spec.validate()?;
        let spec = serde_json::to_string(&self.spec).expect("the spec serialises");
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("gradus_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("checksum".to_string(), checksum(&spec, &bytes)),
            ("spec".to_string(), spec),
        ]);
        safetensors::serialize(tensors, Some(metadata))
            .map_err(|e| ModelFileError::Corrupt { path: "<memory>".into(), reason: e.to_string() })
    }

    /// Writes the model to `path` (through a temporary file beside it and a
    /// rename, so an interrupted save never leaves half a file under the name).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelFileError> {
        let path = path.as_ref();
        let io = |error| ModelFileError::Io { action: "write", path: path.display().to_string(), error };
        let bytes = self.to_bytes()?;
        let name = path.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelFileError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let bytes =
            std::fs::read(path).map_err(|error| ModelFileError::Io { action: "read", path: name.clone(), error })?;
        Self::from_bytes(&bytes, &name)
    }

    /// Parses a model file's bytes; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, ModelFileError> {
        let corrupt = |reason: String| ModelFileError::Corrupt { path: source.into(), reason };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(format!("{e:?}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(corrupt("no gradus-model header".into()));
        }
        let found = meta.get("format_version").cloned().unwrap_or_default();
        if found != FORMAT_VERSION.to_string() {
            return Err(ModelFileError::Version { path: source.into(), found, version: env!("CARGO_PKG_VERSION") });
        }
        let spec_text = meta.get("spec").map_or("", String::as_str);
        let spec: ModelSpec = serde_json::from_str(spec_text).map_err(|e| corrupt(format!("bad spec: {e}")))?;
        spec.validate().map_err(|e| corrupt(e.to_string()))?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| corrupt(format!("{e:?}")))?;
        // Compare sizes before allocating: the file's tensors bound the model.
        let in_file: usize = tensors.tensors().iter().map(|(_, t)| t.data().len() / 4).sum();
        let expected = spec.architecture.n_params()?;
        if in_file != expected {
            return Err(corrupt(format!("{in_file} weights where the architecture has {expected}")));
        }
        let mut model = spec.architecture.build()?;
        let blocks = model.named_params();
        if tensors.len() != blocks.len() {
            return Err(corrupt(format!("{} tensors where the architecture has {}", tensors.len(), blocks.len())));
        }
        for block in blocks {
            let tensor =
                tensors.tensor(&block.name).map_err(|_| corrupt(format!("tensor '{}' is missing", block.name)))?;
            if tensor.dtype() != Dtype::F32 || tensor.shape() != block.shape.as_slice() {
                return Err(corrupt(format!(
                    "tensor '{}' is {:?} {:?}, expected F32 {:?}",
                    block.name,
                    tensor.dtype(),
                    tensor.shape(),
                    block.shape
                )));
            }
            let target = &mut model.params_mut()[block.range];
            for (p, chunk) in target.iter_mut().zip(tensor.data().chunks_exact(4)) {
                *p = f32::from_le_bytes(chunk.try_into().expect("4 bytes"));
            }
        }
        let params: Vec<u8> = model.params().iter().flat_map(|p| p.to_le_bytes()).collect();
        if meta.get("checksum") != Some(&checksum(spec_text, &params)) {
            return Err(corrupt("the spec and weights do not match their checksum".into()));
        }
        Ok(Self { spec, model })
    }

    /// Raw model outputs for a feature matrix already in model column order
    /// and unscaled: predictions (regression) or logits (classification).
    pub fn outputs(&self, mut x: Matrix) -> Result<Vec<f32>, TrainError> {
        if x.cols() != self.model.n_inputs() {
            return Err(TrainError::Mismatch(format!(
                "the data has {} feature columns, the model takes {}",
                x.cols(),
                self.model.n_inputs()
            )));
        }
        self.spec.preprocessing.transform(&mut x)?;
        let mut out = vec![0.0; x.rows() * self.model.n_outputs()];
        self.model.predict(x.view(), &mut out);
        Ok(out)
    }
}

/// FNV-1a, 64-bit, over the spec's JSON and then the weights' bytes: a
/// small, dependency-free check against corruption (not against tampering).
fn checksum(spec: &str, weights: &[u8]) -> String {
    let hash = spec
        .as_bytes()
        .iter()
        .chain(weights)
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, WeightInit};
    use gradus_data::seeded_rng;

    fn saved() -> SavedModel {
        let spec = MlpSpec {
            n_inputs: 3,
            hidden: vec![4],
            n_outputs: 2,
            activation: Activation::Tanh,
            dropout: 0.0,
            init: WeightInit::Auto,
        };
        let mut model = Mlp::new(spec.clone()).unwrap();
        model.init_params(&mut seeded_rng(1));
        let preprocessing = Preprocessing {
            feature_names: vec!["a".into(), "b".into(), "c".into()],
            scaler: Some(Scaler { offset: vec![1.0, 2.0, 3.0], scale: vec![2.0, 1.0, 0.5] }),
            target_name: "y".into(),
            classes: Some(vec!["no".into(), "yes".into()]),
        };
        SavedModel {
            spec: ModelSpec { architecture: Architecture::Mlp(spec), loss: Loss::SoftmaxCrossEntropy, preprocessing },
            model: Box::new(model),
        }
    }

    #[test]
    fn a_round_trip_keeps_outputs_bit_identical() {
        let original = saved();
        let bytes = original.to_bytes().unwrap();
        let loaded = SavedModel::from_bytes(&bytes, "m.gradus").unwrap();
        assert_eq!(loaded.spec, original.spec);
        let x = Matrix::from_vec(2, 3, vec![0.1, 5.0, -2.0, 3.0, 0.0, 1.0]).unwrap();
        let a = original.outputs(x.clone()).unwrap();
        let b = loaded.outputs(x).unwrap();
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn truncated_altered_and_foreign_files_are_rejected() {
        let bytes = saved().to_bytes().unwrap();
        for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
            let err = SavedModel::from_bytes(&bytes[..cut], "m.gradus").err().expect("truncated");
            assert!(err.to_string().starts_with("m.gradus: not a readable gradus model file"), "cut {cut}: {err}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        let err = SavedModel::from_bytes(&flipped, "m.gradus").err().expect("altered");
        assert!(err.to_string().contains("checksum"), "{err}");
        let err = SavedModel::from_bytes(b"a,b\n1,2\n", "m.gradus").err().expect("not a model");
        assert!(err.to_string().contains("not a readable gradus model file"), "{err}");
    }

    /// The file with the first occurrence of `from` in its spec replaced by
    /// `to` (of the same length, so the layout stays valid). The spec is a
    /// JSON string inside the header, so its quotes are escaped there.
    fn edited(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let (from, to) = (from.replace('"', "\\\""), to.replace('"', "\\\""));
        let mut out = bytes.to_vec();
        let at = out.windows(from.len()).position(|w| w == from.as_bytes()).expect("the header holds it");
        out[at..at + from.len()].copy_from_slice(to.as_bytes());
        out
    }

    #[test]
    fn an_altered_spec_is_rejected() {
        let bytes = saved().to_bytes().unwrap();
        // A changed scaler offset leaves a valid spec that no longer matches the checksum.
        let err =
            SavedModel::from_bytes(&edited(&bytes, r#""offset":[1.0"#, r#""offset":[9.0"#), "m.gradus").err().unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");
        // Classes that do not fit the outputs are refused before any prediction.
        let one_class = edited(&bytes, r#""classes":["no","yes"]"#, r#""classes":["no"],"x":0"#);
        let err = SavedModel::from_bytes(&one_class, "m.gradus").err().unwrap();
        assert!(err.to_string().contains("one output per class"), "{err}");
    }

    #[test]
    fn a_spec_that_contradicts_itself_is_refused() {
        let mut model = saved();
        model.spec.preprocessing.classes = Some(vec!["a".into(), "b".into(), "c".into()]);
        assert!(model.to_bytes().is_err(), "3 classes for 2 outputs");
        let mut model = saved();
        model.spec.preprocessing.feature_names.pop();
        assert!(model.to_bytes().is_err(), "2 names for 3 inputs");
        let mut model = saved();
        model.spec.preprocessing.scaler.as_mut().unwrap().scale.pop();
        assert!(model.to_bytes().is_err(), "a short scaler");
    }

    #[test]
    fn absurd_sizes_are_errors_not_allocations() {
        let huge = Architecture::Mlp(MlpSpec {
            n_inputs: 3,
            hidden: vec![1 << 40],
            n_outputs: 2,
            activation: Activation::Relu,
            dropout: 0.0,
            init: WeightInit::Auto,
        });
        assert!(huge.build().is_err());
        let overflow = Architecture::Linear { n_inputs: 1 << 33, n_outputs: 1 << 33, fit_intercept: true };
        assert!(overflow.n_params().is_err());
        // A file whose spec claims more weights than it holds.
        let bytes = saved().to_bytes().unwrap();
        let err =
            SavedModel::from_bytes(&edited(&bytes, r#""hidden":[4]"#, r#""hidden":[9]"#), "m.gradus").err().unwrap();
        assert!(err.to_string().contains("weights where the architecture has"), "{err}");
    }

    #[test]
    fn another_format_version_is_named_in_the_error() {
        let mut bytes = saved().to_bytes().unwrap();
        let key = br#""format_version":"1""#;
        let at = bytes.windows(key.len()).position(|w| w == key).expect("the header holds the version");
        bytes[at + key.len() - 2] = b'9';
        let err = SavedModel::from_bytes(&bytes, "m.gradus").err().expect("newer version");
        assert!(err.to_string().contains("format version 9; this gradus"), "{err}");
    }
}
