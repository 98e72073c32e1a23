//! Model files: everything needed to predict from raw data in one
//! safetensors file — the architecture, the loss, the preprocessing (the
//! fitted transforms from raw columns to inputs, the class labels) and the
//! weights.
//!
//! Layout: each parameter block is a safetensors F32 tensor under its
//! [`crate::NamedParams`] name (`dense.0.weight` [fan_in, fan_out], ...); the
//! `__metadata__` header holds `format` (`gradus-model`), `format_version`,
//! `gradus_version`, `spec` (JSON of [`ModelSpec`]) and `checksum` (FNV-1a 64
//! of the weights in order). A file that is truncated, altered, from another
//! format version or not a model file at all is rejected with a
//! [`ModelFileError`]; it never yields a model that predicts wrongly.
//!
//! An [`Ensemble`] of several models (format version 4) stores member i's
//! tensors as `member.{i}.dense.0.weight` ..., their specs as the JSON array
//! `members`, and one checksum over all of it. An ensemble of one is written
//! as a single model's file (version 3). Versions 1 and 2, whose
//! preprocessing was feature names and one scaler, are still read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use gradus_data::{
    Dataset, Encoding, Inputs, MatRef, Matrix, Scaler, Scaling, SparseRef, SparseRows, Target, six_digits,
};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::quant::InputCode;
use crate::{CnnSpec, LinearModel, Loss, MlpSpec, Model, Network, TextModel, TextSpec, TrainError};

/// The file format version of a single model; ensembles are version 4.
/// Versions 1 and 2 (a single model and an ensemble whose preprocessing was
/// feature names and one scaler) are still read.
pub const FORMAT_VERSION: u32 = 3;
/// The format version of an ensemble of several models.
pub const ENSEMBLE_FORMAT_VERSION: u32 = 4;
const FORMAT: &str = "gradus-model";

/// The shape of a model, enough to rebuild it before loading its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    Linear {
        n_inputs: usize,
        n_outputs: usize,
        fit_intercept: bool,
    },
    Mlp(MlpSpec),
    Cnn(CnnSpec),
    /// A linear model or an embedding bag on sparse (text) inputs.
    Text(TextSpec),
}

/// What an ensemble member's first transform says in the file when its
/// encoding is the first member's.
const SAME_ENCODING: &str = "encoding of member 0";

/// The most parameters a model may have (4 GiB of f32): a bound that turns an
/// absurd width into an error instead of an allocation failure.
pub const MAX_PARAMS: usize = 1 << 30;

impl Architecture {
    /// The number of parameters, or an error when it is zero-width or too large.
    pub fn n_params(&self) -> Result<usize, TrainError> {
        let (widths, bias) = match self {
            Architecture::Text(spec) => return spec.n_params(),
            Architecture::Cnn(spec) => {
                let total = spec.param_counts()?.into_iter().try_fold(0usize, |t, c| t.checked_add(c));
                return match total {
                    Some(total) if total <= MAX_PARAMS => Ok(total),
                    _ => Err(TrainError::Mismatch(format!(
                        "the model {} would have more than {MAX_PARAMS} parameters",
                        self.describe()
                    ))),
                };
            }
            Architecture::Linear { n_inputs, n_outputs, fit_intercept } => {
                (vec![*n_inputs, *n_outputs], *fit_intercept)
            }
            Architecture::Mlp(spec) => {
                spec.validate()?;
                (spec.widths(), true)
            }
        };
        if widths.contains(&0) {
            return Err(TrainError::Mismatch("every layer needs at least one input and one output".into()));
        }
        let too_large = || {
            TrainError::Mismatch(format!("the model {} would have more than {MAX_PARAMS} parameters", self.describe()))
        };
        let mut total = match self {
            Architecture::Mlp(spec) => {
                spec.periodic.as_ref().map_or(0, |p| p.n_params())
                    + spec.categories.as_ref().map_or(0, |c| c.n_params())
            }
            _ => 0,
        };
        for pair in widths.windows(2) {
            let layer = pair[0].checked_mul(pair[1]).and_then(|w| w.checked_add(if bias { pair[1] } else { 0 }));
            total = layer.and_then(|l| total.checked_add(l)).ok_or_else(too_large)?;
        }
        if total > MAX_PARAMS {
            return Err(too_large());
        }
        Ok(total)
    }

    /// How many values a row holds for it, and how many it outputs.
    pub fn inputs_and_outputs(&self) -> (usize, usize) {
        match self {
            Architecture::Linear { n_inputs, n_outputs, .. } => (*n_inputs, *n_outputs),
            Architecture::Mlp(spec) => (spec.n_inputs, spec.n_outputs),
            Architecture::Cnn(spec) => (spec.input.iter().product(), spec.n_outputs),
            Architecture::Text(spec) => (spec.n_dense, spec.n_outputs),
        }
    }

    /// A fresh model of this shape (zero or unset weights).
    pub fn build(&self) -> Result<Box<dyn Model>, TrainError> {
        self.n_params()?;
        Ok(match self {
            Architecture::Linear { n_inputs, n_outputs, fit_intercept } => {
                Box::new(LinearModel::new(*n_inputs, *n_outputs, *fit_intercept))
            }
            Architecture::Mlp(spec) => Box::new(Network::mlp(spec)?),
            Architecture::Cnn(spec) => Box::new(Network::cnn(spec)?),
            Architecture::Text(spec) => Box::new(TextModel::new(spec)?),
        })
    }

    /// A short human description, such as `MLP 64-128-10 relu`.
    pub fn describe(&self) -> String {
        match self {
            Architecture::Linear { n_inputs, n_outputs, .. } => format!("linear {n_inputs}-{n_outputs}"),
            Architecture::Mlp(spec) => {
                let widths: Vec<String> = spec.widths().iter().map(usize::to_string).collect();
                let dropout =
                    if spec.dropout > 0.0 { format!(", dropout {}", six_digits(spec.dropout)) } else { String::new() };
                let periodic = spec.periodic.as_ref().map_or(String::new(), |p| {
                    format!(
                        ", periodic embeddings of {} numeric column{} ({} frequencies, σ {}, {} values each)",
                        p.columns.len(),
                        if p.columns.len() == 1 { "" } else { "s" },
                        p.frequencies,
                        six_digits(p.sigma),
                        p.dim
                    )
                });
                let categories = spec.categories.as_ref().map_or(String::new(), |c| {
                    let n = c.blocks.len();
                    format!(", {}-value embeddings of {n} categorical column{}", c.dim, if n == 1 { "" } else { "s" })
                });
                format!("MLP {} {}{dropout}{periodic}{categories}", widths.join("-"), spec.activation.name())
            }
            Architecture::Cnn(spec) => spec.describe(),
            Architecture::Text(spec) => spec.describe(),
        }
    }
}

/// One fitted step on the way from raw rows to model inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Raw table columns to numeric inputs: always the first step.
    Encode(Encoding),
    /// Every input rescaled, as fitted on the training rows.
    Scale(Scaler),
}

/// How raw rows become model inputs, and outputs become predictions: an
/// ordered list of fitted transforms (the first reads the raw columns),
/// the target's name and its classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PreprocessingRepr")]
pub struct Preprocessing {
    /// Applied in order; the first is a [`Transform::Encode`].
    transforms: Vec<Transform>,
    pub target_name: String,
    /// Class labels in index order; `None` for regression.
    pub classes: Option<Vec<String>>,
}

/// What the file holds: the current layout, or format versions 1 and 2's
/// feature names and one optional scaler.
#[derive(Deserialize)]
#[serde(untagged)]
enum PreprocessingRepr {
    Current { transforms: Vec<Transform>, target_name: String, classes: Option<Vec<String>> },
    Legacy { feature_names: Vec<String>, scaler: Option<Scaler>, target_name: String, classes: Option<Vec<String>> },
}

impl TryFrom<PreprocessingRepr> for Preprocessing {
    type Error = String;

    fn try_from(repr: PreprocessingRepr) -> Result<Self, String> {
        match repr {
            PreprocessingRepr::Current { transforms, target_name, classes } => {
                Preprocessing::new(transforms, target_name, classes).map_err(|e| e.to_string())
            }
            PreprocessingRepr::Legacy { feature_names, scaler, target_name, classes } => {
                let encode = Transform::Encode(Encoding::numbers(&feature_names));
                let transforms = std::iter::once(encode).chain(scaler.map(Transform::Scale)).collect();
                Ok(Preprocessing { transforms, target_name, classes })
            }
        }
    }
}

impl Preprocessing {
    /// Transforms that start with an encoding and use it only there.
    pub fn new(
        transforms: Vec<Transform>,
        target_name: String,
        classes: Option<Vec<String>>,
    ) -> Result<Self, TrainError> {
        let encodes = transforms.iter().filter(|t| matches!(t, Transform::Encode(_))).count();
        if encodes != 1 || !matches!(transforms.first(), Some(Transform::Encode(_))) {
            return Err(TrainError::Mismatch("the preprocessing must start with its one encoding".into()));
        }
        Ok(Self { transforms, target_name, classes })
    }

    /// Fits on the training rows: their encoding, classes and scaler.
    pub fn fit(train: &Dataset, scaling: Scaling) -> Result<Self, TrainError> {
        let encode = Transform::Encode(train.encoding.clone());
        Ok(Self {
            transforms: std::iter::once(encode)
                .chain(Self::fit_scaler(train, scaling)?.map(Transform::Scale))
                .collect(),
            target_name: train.target_name.clone(),
            classes: match &train.y {
                Target::Classes { classes, .. } => Some(classes.clone()),
                Target::Real(_) => None,
            },
        })
    }

    /// The scaler `scaling` fits on the model inputs of `train`'s rows
    /// (expanded a row at a time when the dataset computes them).
    fn fit_scaler(train: &Dataset, scaling: Scaling) -> Result<Option<Scaler>, TrainError> {
        Ok(match &train.expansion {
            None => scaling.fit(&train.x)?,
            Some(e) if e.scaler().is_none() => scaling.fit_rows(&e.unscaled(&train.x))?,
            Some(_) => return Err(TrainError::Mismatch(format!("{}: the rows were scaled already", train.name))),
        })
    }

    /// How raw columns become inputs: the first transform.
    pub fn encoding(&self) -> &Encoding {
        match &self.transforms[0] {
            Transform::Encode(encoding) => encoding,
            Transform::Scale(_) => unreachable!("checked in new"),
        }
    }

    /// The model inputs' names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.encoding().output_names()
    }

    /// The scaler fitted on the training rows, if any.
    pub fn scaler(&self) -> Option<&Scaler> {
        self.transforms.iter().find_map(|t| match t {
            Transform::Scale(s) => Some(s),
            Transform::Encode(_) => None,
        })
    }

    /// Applies the transforms after the encoding to an encoded matrix.
    pub fn transform(&self, x: &mut Matrix) -> Result<(), TrainError> {
        self.transform_block(x, 0)
    }

    /// [`Self::transform`] of rows that come `first_row` rows into a
    /// matrix (errors name the row there).
    pub fn transform_block(&self, x: &mut Matrix, first_row: usize) -> Result<(), TrainError> {
        for t in &self.transforms[1..] {
            match t {
                Transform::Scale(scaler) => scaler.transform_block(x, first_row)?,
                Transform::Encode(_) => unreachable!("checked in new"),
            }
        }
        Ok(())
    }

    /// `data` as the model sees it: encoded as in training, transformed,
    /// and class labels indexed as in training.
    pub fn apply(&self, data: &Dataset) -> Result<Dataset, TrainError> {
        self.apply_owned(data.clone())
    }

    /// [`Self::apply`] on rows the caller gives up: transformed in place
    /// when they are encoded as in training, with no copy.
    pub fn apply_owned(&self, data: Dataset) -> Result<Dataset, TrainError> {
        let mut out = self.select_owned(data)?;
        match &out.expansion {
            None => self.transform(&mut out.x)?,
            // Rows that compute their inputs as needed scale them then too
            // (the transforms after the encoding are at most one scaler).
            Some(e) if e.scaler().is_none() => {
                let scaled = e.with_scaler(self.scaler().cloned());
                scaled.check(&out.x)?;
                out.expansion = Some(std::sync::Arc::new(scaled));
            }
            Some(_) => return Err(TrainError::Mismatch(format!("{}: the rows were scaled already", out.name))),
        }
        Ok(out)
    }

    /// [`Self::apply`] without the transforms after the encoding: `data`
    /// as encoded in training (a plain numeric dataset's columns picked and
    /// ordered by name), class labels indexed as in training.
    pub fn select(&self, data: &Dataset) -> Result<Dataset, TrainError> {
        self.select_owned(data.clone())
    }

    /// [`Self::select`] on rows the caller gives up: kept, not copied, when
    /// they are encoded as in training.
    pub fn select_owned(&self, data: Dataset) -> Result<Dataset, TrainError> {
        let mut out = if data.encoding == *self.encoding() {
            data
        } else if self.encoding().passes_numbers_through() && data.encoding.is_plain_numbers() {
            // Plain numbers (an IDX file's pixels, a numeric CSV), picked by
            // name, as a tune's pixels or a train's numeric columns were.
            let mut out = data.select_features(&self.feature_names())?;
            self.encoding().fill_missing(&mut out.x);
            out
        } else {
            return Err(TrainError::Mismatch(format!(
                "{}: the rows were encoded otherwise than the model's training rows",
                data.name
            )));
        };
        match (&self.classes, &out.y) {
            // Indexed as in training already: kept, not copied.
            (Some(classes), Target::Classes { classes: own, .. }) if own == classes => {}
            (Some(classes), _) => out.y = out.y.remap_classes(classes, &out.name, &out.target_name)?,
            (None, _) => {}
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
    /// What was done to make the model smaller or faster, in order (none
    /// for a model as trained; files from before it was recorded read so).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compression: Vec<Compression>,
}

/// A compression applied to a model, as its file records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Compression {
    /// Trained on a teacher's predicted probabilities over `rows` rows
    /// (knowledge distillation) instead of the labels.
    Distilled {
        /// The teacher, as [`Ensemble::describe`] names it.
        teacher: String,
        /// The teacher's members.
        members: usize,
        rows: usize,
    },
    /// Its weights of least magnitude set to zero, `sparsity` of them, and
    /// the rest fine-tuned; each weight tensor is stored sparsely.
    Pruned {
        /// The share of the weights that are zero.
        sparsity: f64,
        /// The epochs of fine-tuning.
        epochs: usize,
    },
    /// Its dense and conv layers predict in int8 (see [`crate::quant`]): each
    /// weight a byte, with a scale per output channel, the inputs' range
    /// calibrated on `rows` rows.
    Int8 { rows: usize },
}

impl Compression {
    /// Its name on the command line: `distill`.
    pub fn name(&self) -> &'static str {
        match self {
            Compression::Distilled { .. } => "distill",
            Compression::Pruned { .. } => "prune",
            Compression::Int8 { .. } => "int8",
        }
    }

    /// What was done, in a few words.
    pub fn describe(&self) -> String {
        match self {
            Compression::Distilled { teacher, members, rows } => format!(
                "distilled from {teacher} ({members} member{}) on {rows} rows",
                if *members == 1 { "" } else { "s" }
            ),
            Compression::Pruned { sparsity, epochs } => format!(
                "pruned to {:.1}% zero weights by magnitude, fine-tuned {epochs} epochs, stored sparsely",
                100.0 * sparsity
            ),
            Compression::Int8 { rows } => {
                format!("int8 dense and conv layers (weights per output channel, inputs calibrated on {rows} rows)")
            }
        }
    }
}

impl ModelSpec {
    /// Whether its weight tensors are stored sparsely (a pruned model's).
    fn sparse_weights(&self) -> bool {
        !self.int8() && self.compression.iter().any(|c| matches!(c, Compression::Pruned { .. }))
    }

    /// Whether its dense and conv layers are stored, and predict, in int8.
    fn int8(&self) -> bool {
        self.compression.iter().any(|c| matches!(c, Compression::Int8 { .. }))
    }
}

/// Whether `block` is one of `model`'s weights (not a bias or a statistic):
/// what pruning zeroes and a pruned model's file stores sparsely.
fn is_weight(model: &dyn Model, block: &crate::NamedParams) -> bool {
    !block.range.is_empty()
        && model.penalised().iter().any(|r| r.start <= block.range.start && block.range.end <= r.end)
}

impl ModelSpec {
    /// Checks that the parts agree: as many feature names and scaler entries
    /// as inputs, and classes that fit the loss and the outputs.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.architecture.n_params()?;
        let (n_inputs, n_outputs) = self.architecture.inputs_and_outputs();
        let prep = &self.preprocessing;
        let bad = |what: String| Err(TrainError::Mismatch(format!("inconsistent model: {what}")));
        let n_encoded = prep.encoding().n_outputs();
        if n_encoded != n_inputs {
            return bad(format!("{n_encoded} encoded features for {n_inputs} inputs"));
        }
        if let Some(s) = prep.scaler()
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
        "{path}: written in gradus model format version {found}; this gradus ({version}) reads versions 1 to {ENSEMBLE_FORMAT_VERSION}"
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
        self.spec.validate()?;
        let spec = serde_json::to_string(&self.spec).expect("the spec serialises");
        let weights = weight_bytes(std::slice::from_ref(self));
        serialize(&[("", self)], &weights, FORMAT_VERSION, ("spec", spec), None)
    }

    /// Writes the model to `path` (through a temporary file beside it and a
    /// rename, so an interrupted save never leaves half a file under the name).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelFileError> {
        write_atomically(path.as_ref(), self.to_bytes()?)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelFileError> {
        let path = path.as_ref();
        Self::from_bytes(&read(path)?, &path.display().to_string())
    }

    /// Parses a model file's bytes; `source` names it in errors. An
    /// ensemble's file is refused: [`Ensemble::from_bytes`] reads both.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, ModelFileError> {
        let mut members = Ensemble::from_bytes(bytes, source)?.members;
        if members.len() != 1 {
            return Err(ModelFileError::Corrupt {
                path: source.into(),
                reason: format!("an ensemble of {} models, not a single model", members.len()),
            });
        }
        Ok(members.remove(0))
    }

    /// Raw model outputs for a feature matrix already in model column order
    /// and unscaled: predictions (regression) or logits (classification).
    pub fn outputs(&self, x: Matrix) -> Result<Vec<f32>, TrainError> {
        self.outputs_with(x, None)
    }

    /// [`Self::outputs`] of rows with sparse (text) inputs beside the dense ones.
    pub fn outputs_with(&self, mut x: Matrix, sparse: Option<SparseRef>) -> Result<Vec<f32>, TrainError> {
        self.check_widths(x.cols(), sparse)?;
        if let Some(code) = self.unscaled_code() {
            return Ok(self.outputs_of_codes(x.view(), &code));
        }
        self.spec.preprocessing.transform(&mut x)?;
        Ok(self.outputs_of_inputs(x.view(), sparse))
    }

    /// The code of the model's first layer for rows before its one
    /// transform after the encoding, a scaler folded in (see
    /// [`Model::unscaled_code`]).
    fn unscaled_code(&self) -> Option<InputCode> {
        match &self.spec.preprocessing.transforms[1..] {
            [Transform::Scale(scaler)] => self.model.unscaled_code(scaler),
            _ => None,
        }
    }

    /// Outputs for unscaled rows, coded by [`Self::unscaled_code`]'s `code`
    /// a block of rows at a time.
    fn outputs_of_codes(&self, x: MatRef, code: &InputCode) -> Vec<f32> {
        let (d, k) = (x.cols(), self.model.n_outputs());
        let mut out = vec![0.0; x.rows() * k];
        let mut codes = Vec::new();
        let block = block_rows(d);
        for first in (0..x.rows()).step_by(block) {
            let rows = first..(first + block).min(x.rows());
            code.encode(&x.as_slice()[rows.start * d..rows.end * d], &mut codes);
            self.model.predict_codes(&codes, rows.len(), &mut out[rows.start * k..rows.end * k]);
        }
        out
    }

    /// An error unless rows of `cols` feature columns and `sparse` are this
    /// model's inputs.
    fn check_widths(&self, cols: usize, sparse: Option<SparseRef>) -> Result<(), TrainError> {
        let sparse_width = sparse.map_or(0, |s| s.cols());
        if sparse_width != self.model.n_sparse_inputs() {
            return Err(TrainError::Mismatch(format!(
                "the data has {sparse_width} sparse (text) features, the model takes {}",
                self.model.n_sparse_inputs()
            )));
        }
        if cols != self.model.n_inputs() {
            return Err(TrainError::Mismatch(format!(
                "the data has {cols} feature columns, the model takes {}",
                self.model.n_inputs()
            )));
        }
        Ok(())
    }

    /// Outputs for model inputs already transformed (see
    /// [`Preprocessing::transform`]), of the widths [`Self::check_widths`] checks.
    fn outputs_of_inputs(&self, x: MatRef, sparse: Option<SparseRef>) -> Vec<f32> {
        let mut out = vec![0.0; x.rows() * self.model.n_outputs()];
        self.model.predict(Inputs::new(x, sparse), &mut out);
        out
    }
}

impl SavedModel {
    /// What an [`Ensemble`] averages of this model's outputs for a feature
    /// matrix in model column order, unscaled: the class probabilities
    /// (one per class, row after row) or, for a real target, the
    /// predictions.
    pub fn averaged_values(&self, x: Matrix, sparse: Option<SparseRef>) -> Result<Vec<f64>, TrainError> {
        Ok(self.averaged_of_outputs(self.outputs_with(x, sparse)?))
    }

    /// [`Self::averaged_values`] from this model's outputs.
    fn averaged_of_outputs(&self, out: Vec<f32>) -> Vec<f64> {
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        match &self.spec.preprocessing.classes {
            // Both probabilities in f64 from the logit, so that a
            // confident model keeps its margin (1 − p in f32 is 0 past z ≈ 17).
            Some(_) if self.model.n_outputs() == 1 => {
                out.iter().flat_map(|&z| [sigmoid(-f64::from(z)), sigmoid(f64::from(z))]).collect()
            }
            Some(_) => crate::probabilities(&out, self.model.n_outputs()).into_iter().map(f64::from).collect(),
            None => out.into_iter().map(f64::from).collect(),
        }
    }
}

impl SavedModel {
    /// [`Self::averaged_values`] for the rows of `data`, encoded as in
    /// training and unscaled (see [`by_blocks`]).
    pub fn averaged_values_of(&self, data: Dataset) -> Result<Vec<f64>, TrainError> {
        by_blocks(data, |x, sparse| self.averaged_values(x, sparse))
    }
}

/// Rows an [`Ensemble`] (and an int8 model reading codes) transforms and
/// predicts at a time: at most [`BLOCK_VALUES`] values (1 MB) and
/// [`BLOCK_ROWS`], so that the rows and each layer's outputs stay in cache.
fn block_rows(width: usize) -> usize {
    (BLOCK_VALUES / width.max(1)).clamp(1, BLOCK_ROWS)
}

const BLOCK_VALUES: usize = 1 << 18;
const BLOCK_ROWS: usize = 256;

/// `f` (outputs row after row) applied to the unscaled model inputs of
/// `data`'s rows: `x` at once, or, for a dataset that computes its inputs
/// as needed, a block of [`gradus_data::BLOCK_ROWS`] rows at a time.
fn by_blocks<T>(
    data: Dataset,
    f: impl Fn(Matrix, Option<SparseRef>) -> Result<Vec<T>, TrainError>,
) -> Result<Vec<T>, TrainError> {
    let sparse = data.sparse.as_ref().map(SparseRows::view);
    let Some(expansion) = &data.expansion else { return f(data.x, sparse) };
    if expansion.scaler().is_some() {
        return Err(TrainError::Mismatch(format!("{}: the rows were scaled already", data.name)));
    }
    let n = data.n_samples();
    let mut out = Vec::new();
    for first in (0..n).step_by(gradus_data::BLOCK_ROWS) {
        let mut block = Matrix::zeros(0, 0);
        let rows = first..(first + gradus_data::BLOCK_ROWS).min(n);
        data.block_inputs(rows.clone(), &mut block);
        out.extend(f(block, sparse.map(|s| s.slice_rows(rows)))?);
    }
    Ok(out)
}

/// What a model file holds: one trained model, or several whose class
/// probabilities (or, for a real target, predictions) are averaged, with
/// weights — the configurations of a search that ensemble selection chose,
/// refitted (`gradus tune --ensemble`). Averaging models that err
/// differently is the ensemble step of auto-sklearn and AutoGluon. Members
/// share the features, the target and the classes; each keeps its own
/// scaler and architecture.
pub struct Ensemble {
    /// At least one (see [`Ensemble::new`]).
    members: Vec<SavedModel>,
    /// Where the model came from, as its maker records it (see
    /// [`Ensemble::set_about`]); not needed to predict.
    about: Option<serde_json::Value>,
    /// One per member, positive: the members' relative weights (times
    /// chosen by ensemble selection; 1 each for a plain mean).
    weights: Vec<f64>,
}

impl From<SavedModel> for Ensemble {
    fn from(model: SavedModel) -> Self {
        Self { members: vec![model], weights: vec![1.0], about: None }
    }
}

impl Ensemble {
    /// Members that read the same features and predict the same target,
    /// averaged with equal weights.
    pub fn new(members: Vec<SavedModel>) -> Result<Self, TrainError> {
        let n = members.len();
        Self::weighted(members, vec![1.0; n])
    }

    /// Members averaged with relative `weights` (one each, positive and
    /// finite): member i counts `weights[i] / Σ weights`.
    pub fn weighted(members: Vec<SavedModel>, weights: Vec<f64>) -> Result<Self, TrainError> {
        if weights.len() != members.len() || weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(TrainError::Mismatch(format!(
                "an ensemble of {} models needs as many positive weights, got {weights:?}",
                members.len()
            )));
        }

        let Some(first) = members.first() else {
            return Err(TrainError::Mismatch("an ensemble needs at least one model".into()));
        };
        let p = &first.spec.preprocessing;
        for (i, m) in members.iter().enumerate().skip(1) {
            let q = &m.spec.preprocessing;
            if q.encoding() != p.encoding() || q.target_name != p.target_name || q.classes != p.classes {
                return Err(TrainError::Mismatch(format!(
                    "ensemble member {i} reads other features or predicts another target than member 0"
                )));
            }
        }
        Ok(Self { members, weights, about: None })
    }

    /// Records where the model came from — for `gradus tune`, the data's
    /// fingerprint, the trials and hyperparameters of the members and the
    /// metrics at save time — as JSON kept in the file (under the
    /// checksum) for `gradus inspect`. Prediction never reads it.
    pub fn set_about(&mut self, about: serde_json::Value) {
        self.about = Some(about);
    }

    /// What [`Self::set_about`] recorded, if anything.
    pub fn about(&self) -> Option<&serde_json::Value> {
        self.about.as_ref()
    }

    /// The members' relative weights in the average.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The models averaged, at least one.
    pub fn members(&self) -> &[SavedModel] {
        &self.members
    }

    /// The members' shared features, target and classes (member 0's scaler).
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.members[0].spec.preprocessing
    }

    /// The width of [`Self::outputs`]' rows: member 0's.
    pub fn n_outputs(&self) -> usize {
        self.members[0].model.n_outputs()
    }

    /// The loss [`Self::outputs`] are logits of: member 0's.
    pub fn loss(&self) -> Loss {
        self.members[0].spec.loss
    }

    /// `MLP 64-128-10 relu`, or `ensemble of 3: MLP ..., softmax ..., ...`.
    pub fn describe(&self) -> String {
        match self.members.as_slice() {
            [one] => one.spec.architecture.describe(),
            all => format!(
                "ensemble of {}: {}",
                all.len(),
                all.iter().map(|m| m.spec.architecture.describe()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Outputs in member 0's layout for a feature matrix in model column
    /// order, unscaled: the weighted mean prediction for a real target; for
    /// classes, logits whose softmax (or sigmoid, for one output) is the
    /// members' weighted mean probability — log-probabilities, or the
    /// log-odds of the mean.
    pub fn outputs(&self, x: Matrix) -> Result<Vec<f32>, TrainError> {
        self.outputs_with(x, None)
    }

    /// [`Self::outputs`] of rows with sparse (text) inputs beside the dense ones.
    pub fn outputs_with(&self, x: Matrix, sparse: Option<SparseRef>) -> Result<Vec<f32>, TrainError> {
        if let [one] = self.members.as_slice() {
            return one.outputs_with(x, sparse);
        }
        let classes = self.preprocessing().classes.as_ref().map(Vec::len);
        let width = classes.unwrap_or(self.n_outputs());
        let (n, d) = (x.rows(), x.cols());
        for member in &self.members {
            member.check_widths(d, sparse)?;
        }
        // What each member reads. Members transformed alike (a search's,
        // fitted on the same rows) read one transformed copy, made a block
        // of rows at a time (kept in cache, its buffer reused): `Copy(j)`,
        // member j's. Int8 members that fold their scaler into their first
        // layer read codes of the rows, those that code alike one coding
        // (`Codes(j)`). Members with no transform read the rows.
        enum Reads {
            Rows,
            Codes(usize),
            Copy(usize),
        }
        let transforms = |i: usize| &self.members[i].spec.preprocessing.transforms[1..];
        let codes: Vec<Option<InputCode>> = self.members.iter().map(SavedModel::unscaled_code).collect();
        let reads: Vec<Reads> = (0..self.members.len())
            .map(|i| match &codes[i] {
                Some(code) => Reads::Codes((0..i).find(|&j| codes[j].as_ref() == Some(code)).unwrap_or(i)),
                None if transforms(i).is_empty() => Reads::Rows,
                None => {
                    Reads::Copy((0..i).find(|&j| codes[j].is_none() && transforms(j) == transforms(i)).unwrap_or(i))
                }
            })
            .collect();
        let mut copies: Vec<Matrix> = self.members.iter().map(|_| Matrix::zeros(0, 0)).collect();
        let mut coded: Vec<Vec<u8>> = self.members.iter().map(|_| Vec::new()).collect();
        let mut mean = vec![0.0f64; n * width];
        let block = block_rows(d);
        for first in (0..n).step_by(block) {
            let rows = first..(first + block).min(n);
            let raw = MatRef::new(&x.as_slice()[rows.start * d..rows.end * d], rows.len(), d).expect("rows x inputs");
            let block_sparse = sparse.map(|s| s.slice_rows(rows.clone()));
            for (i, reads) in reads.iter().enumerate() {
                match *reads {
                    Reads::Copy(j) if j == i => {
                        copies[i].reset(rows.len(), d);
                        copies[i].as_mut_slice().copy_from_slice(raw.as_slice());
                        self.members[i].spec.preprocessing.transform_block(&mut copies[i], rows.start)?;
                    }
                    Reads::Codes(j) if j == i => {
                        codes[i].as_ref().expect("a code").encode(raw.as_slice(), &mut coded[i]);
                    }
                    _ => {}
                }
            }
            let mean = &mut mean[rows.start * width..rows.end * width];
            for ((member, &weight), reads) in self.members.iter().zip(&self.weights).zip(&reads) {
                let out = match *reads {
                    Reads::Rows => member.outputs_of_inputs(raw, block_sparse),
                    Reads::Codes(j) => {
                        let mut out = vec![0.0; rows.len() * member.model.n_outputs()];
                        member.model.predict_codes(&coded[j], rows.len(), &mut out);
                        out
                    }
                    Reads::Copy(j) => member.outputs_of_inputs(copies[j].view(), block_sparse),
                };
                let values = member.averaged_of_outputs(out);
                if values.len() != mean.len() {
                    return Err(TrainError::Mismatch("ensemble members disagree on their outputs".into()));
                }
                mean.iter_mut().zip(&values).for_each(|(m, v)| *m += weight * v);
            }
        }
        let n: f64 = self.weights.iter().sum();
        mean.iter_mut().for_each(|m| *m /= n);
        Ok(crate::metrics::logits_of_probabilities(&mean, classes, self.n_outputs()))
    }

    /// Every metric (see [`crate::evaluate`]) on labelled raw rows, whose
    /// columns are found by name.
    /// The rows are given up: a single model scales them in place.
    pub fn evaluate(&self, raw: Dataset) -> Result<crate::Metrics, TrainError> {
        let mut data = self.preprocessing().select_owned(raw)?;
        let y = std::mem::replace(&mut data.y, Target::Real(Vec::new()));
        // Unscaled: each member applies its own scaler in `outputs`.
        let out = by_blocks(data, |x, sparse| self.outputs_with(x, sparse))?;
        crate::metrics::metrics_of_outputs(&out, self.n_outputs(), self.loss(), &y)
    }

    /// [`Self::outputs`] for labelled raw rows, whose columns are found by
    /// name; the rows are given up (a single model scales them in place).
    pub fn outputs_of(&self, raw: Dataset) -> Result<Vec<f32>, TrainError> {
        // Unscaled: each member applies its own scaler in `outputs`.
        by_blocks(self.preprocessing().select_owned(raw)?, |x, sparse| self.outputs_with(x, sparse))
    }

    /// The file's bytes: a single model's format for one member.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelFileError> {
        let about = self.about.as_ref().map(|a| a.to_string());
        if let [one] = self.members.as_slice() {
            one.spec.validate()?;
            let spec = serde_json::to_string(&one.spec).expect("the spec serialises");
            let weights = weight_bytes(std::slice::from_ref(one));
            return serialize(&[("", one)], &weights, FORMAT_VERSION, ("spec", spec), about);
        }
        for member in &self.members {
            member.spec.validate()?;
        }
        // Each member's spec with its weight, under the checksum. A member
        // whose encoding is the first member's (as a search's are) says so
        // instead of repeating it: a text column's vocabulary is megabytes.
        let first = self.members[0].spec.preprocessing.encoding();
        let specs: Vec<serde_json::Value> = self
            .members
            .iter()
            .zip(&self.weights)
            .enumerate()
            .map(|(i, (m, w))| {
                let mut spec = serde_json::to_value(&m.spec).expect("the spec serialises");
                spec["weight"] = (*w).into();
                if i > 0 && m.spec.preprocessing.encoding() == first {
                    spec["preprocessing"]["transforms"][0] = SAME_ENCODING.into();
                }
                spec
            })
            .collect();
        let specs = serde_json::to_string(&specs).expect("the specs serialise");
        let prefixes: Vec<String> = (0..self.members.len()).map(|i| format!("member.{i}.")).collect();
        let named: Vec<(&str, &SavedModel)> = prefixes.iter().map(String::as_str).zip(&self.members).collect();
        serialize(&named, &weight_bytes(&self.members), ENSEMBLE_FORMAT_VERSION, ("members", specs), about)
    }

    /// Writes the file atomically, as [`SavedModel::save`] does.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelFileError> {
        write_atomically(path.as_ref(), self.to_bytes()?)
    }

    /// Reads a model file of either version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelFileError> {
        let path = path.as_ref();
        Self::from_bytes(&read(path)?, &path.display().to_string())
    }

    /// Parses a model file's bytes, of either version; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, ModelFileError> {
        let corrupt = |reason: String| ModelFileError::Corrupt { path: source.into(), reason };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(format!("{e:?}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(corrupt("no gradus-model header".into()));
        }
        let found = meta.get("format_version").cloned().unwrap_or_default();
        let (key, prefixed) = match found.parse::<u32>() {
            Ok(1 | FORMAT_VERSION) => ("spec", false),
            Ok(2 | ENSEMBLE_FORMAT_VERSION) => ("members", true),
            _ => {
                return Err(ModelFileError::Version { path: source.into(), found, version: env!("CARGO_PKG_VERSION") });
            }
        };
        let spec_text = meta.get(key).map_or("", String::as_str);
        // An ensemble's members carry their weights (version 2's: none, 1 each).
        let (specs, weights): (Vec<ModelSpec>, Vec<f64>) = if prefixed {
            let values: Vec<serde_json::Value> =
                serde_json::from_str(spec_text).map_err(|e| corrupt(format!("bad members: {e}")))?;
            let mut specs: Vec<ModelSpec> = Vec::with_capacity(values.len());
            let mut weights = Vec::with_capacity(values.len());
            for mut value in values {
                weights.push(match value.get("weight") {
                    None => 1.0,
                    Some(w) => w.as_f64().ok_or_else(|| corrupt(format!("bad member weight {w}")))?,
                });
                // The first member's encoding, shared (see `to_bytes`).
                let first_encode = value["preprocessing"]["transforms"][0] == SAME_ENCODING;
                if first_encode {
                    let first = specs.first().ok_or_else(|| corrupt("the first member refers to itself".into()))?;
                    value["preprocessing"]["transforms"][0] = serde_json::json!({"encode": {"columns": []}});
                    let mut spec: ModelSpec =
                        serde_json::from_value(value).map_err(|e| corrupt(format!("bad members: {e}")))?;
                    spec.preprocessing.transforms[0] = Transform::Encode(first.preprocessing.encoding().clone());
                    specs.push(spec);
                } else {
                    specs.push(serde_json::from_value(value).map_err(|e| corrupt(format!("bad members: {e}")))?);
                }
            }
            (specs, weights)
        } else {
            (vec![serde_json::from_str(spec_text).map_err(|e| corrupt(format!("bad spec: {e}")))?], vec![1.0])
        };
        if specs.is_empty() {
            return Err(corrupt("an ensemble of no models".into()));
        }
        for spec in &specs {
            spec.validate().map_err(|e| corrupt(e.to_string()))?;
        }
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| corrupt(format!("{e:?}")))?;
        // Compare sizes before allocating: the file's tensors bound the models
        // (a sparse tensor holds at most its block's values, checked as read).
        let in_file: usize = tensors
            .tensors()
            .iter()
            .filter(|(n, t)| !is_sparse_part(n) && t.dtype() == Dtype::F32)
            .map(|(_, t)| t.data().len() / 4)
            .sum();
        let mut expected = 0usize;
        for spec in &specs {
            expected = expected.saturating_add(spec.architecture.n_params()?);
        }
        let any_sparse = specs.iter().any(|s| s.sparse_weights() || s.int8());
        if in_file > expected || (!any_sparse && in_file != expected) {
            return Err(corrupt(format!("{in_file} weights where the architecture has {expected}")));
        }
        let mut members = Vec::with_capacity(specs.len());
        let mut n_blocks = 0;
        for (i, spec) in specs.into_iter().enumerate() {
            let prefix = if prefixed { format!("member.{i}.") } else { String::new() };
            let mut model = spec.architecture.build()?;
            let blocks = model.named_params();
            n_blocks += blocks.len();
            let mut int8_layers = Vec::new();
            for block in blocks {
                let name = format!("{prefix}{}", block.name);
                // A conv weight in F32 is from before convolutions were quantised.
                let stored_int8 = tensors.tensor(&name).is_ok_and(|t| t.dtype() == Dtype::I8);
                if spec.int8() && is_int8_weight(&block) && stored_int8 {
                    n_blocks += 2;
                    int8_layers.push(read_int8(&tensors, &name, int8_shape(&block)).map_err(corrupt)?);
                    continue;
                }
                if spec.sparse_weights() && is_weight(model.as_ref(), &block) {
                    n_blocks += 1;
                    let values = read_sparse(&tensors, &name, block.range.len()).map_err(corrupt)?;
                    let target = &mut model.params_mut()[block.range];
                    target.iter_mut().for_each(|p| *p = 0.0);
                    for (i, v) in values {
                        target[i] = v;
                    }
                    continue;
                }
                let tensor = tensors.tensor(&name).map_err(|_| corrupt(format!("tensor '{name}' is missing")))?;
                if tensor.dtype() != Dtype::F32 || tensor.shape() != block.shape.as_slice() {
                    return Err(corrupt(format!(
                        "tensor '{name}' is {:?} {:?}, expected F32 {:?}",
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
            if spec.int8() {
                model.set_int8_layers(int8_layers).map_err(|e| corrupt(e.to_string()))?;
            }
            members.push(SavedModel { spec, model });
        }
        if tensors.len() != n_blocks {
            return Err(corrupt(format!("{} tensors where the architecture has {n_blocks}", tensors.len())));
        }
        let about_text = meta.get("about");
        let checked = match about_text {
            Some(about) => format!("{spec_text}{about}"),
            None => spec_text.to_string(),
        };
        if meta.get("checksum") != Some(&checksum(&checked, &weight_bytes(&members))) {
            return Err(corrupt("the spec and weights do not match their checksum".into()));
        }
        let mut ensemble = Self::weighted(members, weights).map_err(|e| corrupt(e.to_string()))?;
        if let Some(about) = about_text {
            ensemble.about = Some(serde_json::from_str(about).map_err(|e| corrupt(format!("bad about: {e}")))?);
        }
        Ok(ensemble)
    }
}

/// Whether `block` is a dense or conv layer's (or a linear model's)
/// weights: what an int8 model stores as bytes.
fn is_int8_weight(block: &crate::NamedParams) -> bool {
    (block.name.starts_with("dense.") || block.name.starts_with("conv.") || block.name == "linear.weight")
        && block.name.ends_with(".weight")
}

/// The int8 matrix a weight block is stored as: a dense layer's
/// `[fan_in, fan_out]`; a convolution's `[k·k·in, out]`, an output pixel's
/// inputs in (ky, kx, c) order (see `conv::Int8Conv`).
fn int8_shape(block: &crate::NamedParams) -> [usize; 2] {
    match block.shape[..] {
        [out, channels, k, k2] => [k * k2 * channels, out],
        [fan_in, fan_out] => [fan_in, fan_out],
        _ => [block.range.len(), 1],
    }
}

/// The int8 layer stored as `name` (I8 of `shape`), `name_scale` and the
/// layer's `input_range`.
fn read_int8(tensors: &SafeTensors, name: &str, shape: [usize; 2]) -> Result<crate::quant::QuantizedDense, String> {
    let get = |full: &str, dtype: Dtype, want: &[usize]| {
        let t = tensors.tensor(full).map_err(|_| format!("tensor '{full}' is missing"))?;
        if t.dtype() != dtype || t.shape() != want {
            return Err(format!("tensor '{full}' is {:?} {:?}, expected {dtype:?} {want:?}", t.dtype(), t.shape()));
        }
        Ok(t.data().to_vec())
    };
    let [fan_in, fan_out] = shape;
    let q: Vec<i8> = get(name, Dtype::I8, &shape)?.into_iter().map(|b| b as i8).collect();
    if q.contains(&i8::MIN) {
        return Err(format!("'{name}' holds -128, outside the symmetric codes -127..127"));
    }
    let floats = |bytes: Vec<u8>| -> Vec<f32> {
        bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
    };
    let base = name.trim_end_matches(".weight");
    let scales = floats(get(&format!("{name}_scale"), Dtype::F32, &[fan_out])?);
    let range = floats(get(&format!("{base}.input_range"), Dtype::F32, &[fan_in, 2])?);
    let ranges: Vec<[f32; 2]> = range.chunks_exact(2).map(|r| [r[0], r[1]]).collect();
    if scales.iter().chain(&range).any(|v| !v.is_finite())
        || scales.iter().any(|s| *s <= 0.0)
        || ranges.iter().any(|r| r[0] > r[1])
    {
        return Err(format!("'{name}': scales or input ranges out of bounds"));
    }
    Ok(crate::quant::QuantizedDense::from_parts(q, scales, fan_in, fan_out, ranges))
}

/// Whether a tensor is a part of another's storage, not a block of
/// weights: a sparse tensor's positions or values, an int8 tensor's scales
/// or its inputs' ranges.
fn is_sparse_part(name: &str) -> bool {
    [".indices", ".values", "_scale", ".input_range"].iter().any(|end| name.ends_with(end))
}

/// The non-zero values of the sparsely stored tensor `name` of `len`
/// values: (position, value) pairs, positions increasing and below `len`.
fn read_sparse(tensors: &SafeTensors, name: &str, len: usize) -> Result<Vec<(usize, f32)>, String> {
    let part = |suffix: &str, dtype: Dtype| {
        let full = format!("{name}.{suffix}");
        let t = tensors.tensor(&full).map_err(|_| format!("tensor '{full}' is missing"))?;
        if t.dtype() != dtype || t.shape().len() != 1 || t.shape()[0] > len {
            return Err(format!(
                "tensor '{full}' is {:?} {:?}, expected {dtype:?} [at most {len}]",
                t.dtype(),
                t.shape()
            ));
        }
        Ok(t.data().chunks_exact(4).map(|c| <[u8; 4]>::try_from(c).expect("4 bytes")).collect::<Vec<_>>())
    };
    let (indices, values) = (part("indices", Dtype::U32)?, part("values", Dtype::F32)?);
    if indices.len() != values.len() {
        return Err(format!("'{name}' has {} indices for {} values", indices.len(), values.len()));
    }
    let mut last = None;
    let mut out = Vec::with_capacity(indices.len());
    for (i, v) in indices.into_iter().zip(values) {
        let i = u32::from_le_bytes(i) as usize;
        if i >= len || last.is_some_and(|l| i <= l) {
            return Err(format!("'{name}' has position {i} out of order or beyond its {len} values"));
        }
        last = Some(i);
        out.push((i, f32::from_le_bytes(v)));
    }
    Ok(out)
}

/// The models' weights, little-endian f32, one after another.
fn weight_bytes(models: &[SavedModel]) -> Vec<u8> {
    models.iter().flat_map(|m| m.model.params().iter().flat_map(|p| p.to_le_bytes())).collect()
}

/// A safetensors file of the models' parameter blocks, each named with its
/// model's prefix, and the header: `format`, `format_version`,
/// `gradus_version`, the specs under `key`, `about` if given, and the
/// checksum (over the specs, then `about`, then the weights).
fn serialize(
    models: &[(&str, &SavedModel)],
    weights: &[u8],
    version: u32,
    (key, specs): (&str, String),
    about: Option<String>,
) -> Result<Vec<u8>, ModelFileError> {
    // A pruned model's weight tensors, sparsely: `{name}.indices` (U32,
    // the positions in the flattened tensor of the non-zero values, in
    // order) and `{name}.values` (F32, those values).
    let mut sparse: Vec<(String, Dtype, Vec<u8>)> = Vec::new();
    for (prefix, m) in models {
        if !m.spec.sparse_weights() {
            continue;
        }
        for b in m.model.named_params().iter().filter(|b| is_weight(m.model.as_ref(), b)) {
            let block = &m.model.params()[b.range.clone()];
            let kept = || block.iter().enumerate().filter(|(_, v)| **v != 0.0);
            let indices: Vec<u8> = kept().flat_map(|(i, _)| (i as u32).to_le_bytes()).collect();
            let values: Vec<u8> = kept().flat_map(|(_, v)| v.to_le_bytes()).collect();
            sparse.push((format!("{prefix}{}.indices", b.name), Dtype::U32, indices));
            sparse.push((format!("{prefix}{}.values", b.name), Dtype::F32, values));
        }
    }
    let mut tensors: Vec<(String, TensorView)> = Vec::new();
    for (name, dtype, data) in &sparse {
        let view = TensorView::new(*dtype, vec![data.len() / 4], data).expect("4 bytes a value");
        tensors.push((name.clone(), view));
    }
    // An int8 model's dense weights: `dense.{i}.weight` (or
    // `linear.weight`) as I8 [fan_in, fan_out], its scales per output
    // (`.weight_scale`, F32) and each input's calibrated range
    // (`dense.{i}.input_range`, F32 [fan_in, 2]).
    let mut int8: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (prefix, m) in models {
        if !m.spec.int8() {
            continue;
        }
        // Every dense and conv layer's, or (a file from before convolutions
        // were quantised) the dense layers' alone.
        let layers = m.model.int8_layers();
        let mut blocks: Vec<_> = m.model.named_params().into_iter().filter(is_int8_weight).collect();
        if blocks.len() != layers.len() {
            blocks.retain(|b| !b.name.starts_with("conv."));
        }
        for (block, q) in blocks.into_iter().zip(layers) {
            let name = format!("{prefix}{}", block.name);
            let bytes = q.q.iter().map(|&v| v as u8).collect();
            int8.push((name.clone(), Dtype::I8, vec![q.fan_in, q.fan_out], bytes));
            let scales = q.scales.iter().flat_map(|v| v.to_le_bytes()).collect();
            int8.push((format!("{name}_scale"), Dtype::F32, vec![q.fan_out], scales));
            let range = q.ranges.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
            let base = name.trim_end_matches(".weight");
            int8.push((format!("{base}.input_range"), Dtype::F32, vec![q.fan_in, 2], range));
        }
    }
    for (name, dtype, shape, data) in &int8 {
        tensors.push((name.clone(), TensorView::new(*dtype, shape.clone(), data).expect("shape matches the bytes")));
    }
    let mut offset = 0;
    for (prefix, m) in models {
        for b in m.model.named_params() {
            if (m.spec.sparse_weights() && is_weight(m.model.as_ref(), &b))
                || int8.iter().any(|t| t.0 == format!("{prefix}{}", b.name))
            {
                continue;
            }
            let data = &weights[offset + b.range.start * 4..offset + b.range.end * 4];
            let view = TensorView::new(Dtype::F32, b.shape.clone(), data).expect("shape matches the range");
            tensors.push((format!("{prefix}{}", b.name), view));
        }
        offset += m.model.params().len() * 4;
    }
    let checked = format!("{specs}{}", about.as_deref().unwrap_or(""));
    let mut metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("format_version".to_string(), version.to_string()),
        ("gradus_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("checksum".to_string(), checksum(&checked, weights)),
        (key.to_string(), specs),
    ]);
    metadata.extend(about.map(|a| ("about".to_string(), a)));
    let corrupt = |reason: String| ModelFileError::Corrupt { path: "<memory>".into(), reason };
    let bytes = safetensors::serialize(tensors, Some(metadata)).map_err(|e| corrupt(e.to_string()))?;
    sort_header(bytes).map_err(corrupt)
}

/// The file with its JSON header's keys (and the metadata's) in sorted
/// order: safetensors writes the metadata in a `HashMap`'s order, which
/// changes from process to process, and the same model should be the same
/// bytes. The header keeps its length, so nothing else moves.
fn sort_header(mut bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    type Sorted = BTreeMap<String, serde_json::Value>;
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let text = std::str::from_utf8(&bytes[8..8 + n]).map_err(|e| e.to_string())?;
    let mut header: Sorted = serde_json::from_str(text.trim_end()).map_err(|e| e.to_string())?;
    if let Some(meta) = header.get_mut("__metadata__") {
        let sorted: Sorted = serde_json::from_value(meta.take()).map_err(|e| e.to_string())?;
        *meta = serde_json::to_value(sorted).map_err(|e| e.to_string())?;
    }
    let sorted = serde_json::to_string(&header).map_err(|e| e.to_string())?;
    if sorted.len() != text.trim_end().len() {
        return Err("the sorted header changed length".into());
    }
    bytes[8..8 + sorted.len()].copy_from_slice(sorted.as_bytes());
    Ok(bytes)
}

/// Writes through a temporary file beside `path` and a rename, so an
/// interrupted save never leaves half a file under the name (in place for a
/// device or FIFO, which a rename would destroy).
fn write_atomically(path: &Path, bytes: Vec<u8>) -> Result<(), ModelFileError> {
    gradus_data::output::write_file(path, |out| out.write_all(&bytes)).map_err(|error| ModelFileError::Io {
        action: "write",
        path: path.display().to_string(),
        error,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, ModelFileError> {
    std::fs::read(path).map_err(|error| ModelFileError::Io { action: "read", path: path.display().to_string(), error })
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

    /// Plain numeric inputs `names`, an optional scaler, target `y`.
    fn prep(names: &[&str], scaler: Option<Scaler>, classes: Option<&[&str]>) -> Preprocessing {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let encode = Transform::Encode(Encoding::numbers(&names));
        Preprocessing::new(
            std::iter::once(encode).chain(scaler.map(Transform::Scale)).collect(),
            "y".into(),
            classes.map(|c| c.iter().map(|c| c.to_string()).collect()),
        )
        .unwrap()
    }

    fn saved() -> SavedModel {
        saved_with(None)
    }

    fn saved_with(periodic: Option<crate::PeriodicSpec>) -> SavedModel {
        let spec = MlpSpec {
            n_inputs: 3,
            hidden: vec![4],
            n_outputs: 2,
            activation: Activation::Tanh,
            dropout: 0.0,
            init: WeightInit::Auto,
            periodic,
            categories: None,
        };
        let mut model = Network::mlp(&spec).unwrap();
        model.init_params(&mut seeded_rng(1));
        let preprocessing = prep(
            &["a", "b", "c"],
            Some(Scaler { offset: vec![1.0, 2.0, 3.0], scale: vec![2.0, 1.0, 0.5] }),
            Some(&["no", "yes"]),
        );
        SavedModel {
            spec: ModelSpec {
                architecture: Architecture::Mlp(spec),
                loss: Loss::SoftmaxCrossEntropy,
                preprocessing,
                compression: Vec::new(),
            },
            model: Box::new(model),
        }
    }

    #[test]
    fn a_compression_is_recorded_and_a_file_without_one_reads_as_none() {
        let mut model = saved();
        let plain = model.to_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&plain).contains("compression"), "nothing written for a model as trained");
        assert!(SavedModel::from_bytes(&plain, "m.gradus").unwrap().spec.compression.is_empty());
        let distilled = Compression::Distilled { teacher: "ensemble of 3: ...".into(), members: 3, rows: 120 };
        model.spec.compression.push(distilled.clone());
        let loaded = SavedModel::from_bytes(&model.to_bytes().unwrap(), "m.gradus").unwrap();
        assert_eq!(loaded.spec.compression, std::slice::from_ref(&distilled));
        assert_eq!(distilled.describe(), "distilled from ensemble of 3: ... (3 members) on 120 rows");
    }

    #[test]
    fn a_pruned_model_is_stored_sparsely_and_reads_back_bit_identical() {
        let mut model = saved();
        let mask = crate::prune::magnitude_mask(model.model.as_ref(), 0.75).unwrap();
        crate::prune::Masked::new(model.model.as_mut(), mask);
        model.spec.compression.push(Compression::Pruned { sparsity: 0.75, epochs: 3 });
        let bytes = model.to_bytes().unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("dense.0.weight.indices") && text.contains("dense.0.weight.values"));
        assert!(text.contains("\"dense.0.bias\""), "biases stay dense");
        let loaded = SavedModel::from_bytes(&bytes, "m.gradus").unwrap();
        assert_eq!(loaded.model.params(), model.model.params());
        assert_eq!(loaded.spec, model.spec);
        // Only the non-zero weights are stored: the first layer's 12 hold
        // some of the 5 of 20 left (the header outweighs it at this size).
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let info = header.info("dense.0.weight.indices").unwrap();
        let kept = model.model.params()[..12].iter().filter(|w| **w != 0.0).count();
        assert_eq!(info.shape, [kept]);
        // A position out of order is refused, not scattered.
        let start = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + info.data_offsets.0;
        let mut bad = bytes.clone();
        bad[start..start + 4].copy_from_slice(&1000u32.to_le_bytes());
        let err = SavedModel::from_bytes(&bad, "m.gradus").err().unwrap().to_string();
        assert!(err.contains("out of order or beyond"), "{err}");
    }

    #[test]
    fn an_int8_model_is_stored_in_bytes_and_predicts_the_same_after_a_round_trip() {
        let mut model = saved();
        let mut rng = seeded_rng(3);
        let calibration: Vec<f32> = (0..60).map(|_| rand::Rng::random_range(&mut rng, -2.0f32..2.0)).collect();
        let f32_out = model.model.as_ref().params().to_vec();
        model.model.quantize(gradus_data::MatRef::new(&calibration, 20, 3).unwrap()).unwrap();
        assert!(model.model.is_quantized());
        assert_ne!(model.model.params(), f32_out.as_slice(), "the weights are what the int8 ones stand for");
        model.spec.compression.push(Compression::Int8 { rows: 20 });
        let bytes = model.to_bytes().unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(header.info("dense.0.weight").unwrap().dtype, Dtype::I8);
        assert_eq!(header.info("dense.0.weight_scale").unwrap().shape, [4]);
        assert_eq!(header.info("dense.1.input_range").unwrap().shape, [4, 2]);
        assert_eq!(header.info("dense.0.bias").unwrap().dtype, Dtype::F32);
        let loaded = SavedModel::from_bytes(&bytes, "m.gradus").unwrap();
        assert!(loaded.model.is_quantized());
        assert_eq!(loaded.model.int8_layers(), model.model.int8_layers());
        let x = Matrix::from_vec(2, 3, vec![0.1, 5.0, -2.0, 3.0, 0.0, 1.0]).unwrap();
        assert_eq!(loaded.outputs(x.clone()).unwrap(), model.outputs(x.clone()).unwrap());
        // The scaler folded into the first layer's code (no scaled copy)
        // predicts as coding the scaled rows does, but for inputs within
        // f32's error of a half code.
        let mut scaled = x.clone();
        model.spec.preprocessing.transform(&mut scaled).unwrap();
        let mut direct = vec![0.0; 4];
        model.model.predict(Inputs::new(scaled.view(), None), &mut direct);
        for (a, b) in model.outputs(x).unwrap().iter().zip(&direct) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // Twice is refused; training it is refused.
        let again = model.model.quantize(gradus_data::MatRef::new(&calibration, 20, 3).unwrap());
        assert!(again.unwrap_err().to_string().contains("int8 already"));
        // A linear model (an ensemble's softmax member, say) too.
        let mut linear = LinearModel::new(3, 2, true);
        linear.params_mut().copy_from_slice(&[0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.1, -0.2]);
        let mut model = SavedModel {
            spec: ModelSpec {
                architecture: Architecture::Linear { n_inputs: 3, n_outputs: 2, fit_intercept: true },
                ..saved().spec
            },
            model: Box::new(linear),
        };
        model.model.quantize(gradus_data::MatRef::new(&calibration, 20, 3).unwrap()).unwrap();
        model.spec.compression = vec![Compression::Int8 { rows: 20 }];
        let bytes = model.to_bytes().unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(header.info("linear.weight").unwrap().dtype, Dtype::I8);
        assert!(header.info("linear.input_range").is_some());
        let loaded = SavedModel::from_bytes(&bytes, "m.gradus").unwrap();
        let x = Matrix::from_vec(2, 3, vec![0.1, 5.0, -2.0, 3.0, 0.0, 1.0]).unwrap();
        assert_eq!(loaded.outputs(x.clone()).unwrap(), model.outputs(x).unwrap());
    }

    #[test]
    fn an_int8_cnn_stores_its_convolutions_in_bytes_and_predicts_the_same_after_a_round_trip() {
        let spec = crate::CnnSpec::lenet([1, 12, 12], 2);
        let mut net = Network::cnn(&spec).unwrap();
        net.init_params(&mut seeded_rng(2));
        let names: Vec<String> = (0..144).map(|i| format!("px{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut model = SavedModel {
            spec: ModelSpec {
                architecture: Architecture::Cnn(spec),
                loss: Loss::SoftmaxCrossEntropy,
                preprocessing: prep(&names, None, Some(&["no", "yes"])),
                compression: Vec::new(),
            },
            model: Box::new(net),
        };
        let mut rng = seeded_rng(3);
        let x: Vec<f32> = (0..10 * 144).map(|_| rand::Rng::random_range(&mut rng, 0.0f32..1.0)).collect();
        let x = Matrix::from_vec(10, 144, x).unwrap();
        let before = model.outputs(x.clone()).unwrap();
        model.model.quantize(x.view()).unwrap();
        model.spec.compression.push(Compression::Int8 { rows: 10 });
        assert_eq!(model.model.int8_layers().len(), 4, "two convolutions and two dense layers");
        let after = model.outputs(x.clone()).unwrap();
        // Four layers of a random network, each coding its inputs in a
        // byte: within 5% of the largest output (measured: 1.6%; 120%
        // while a dead ReLU unit's weights set its layer's scales).
        let scale = before.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        for (a, b) in after.iter().zip(&before) {
            assert!((a - b).abs() <= scale / 20.0, "int8 {a} vs f32 {b} (largest {scale})");
        }
        let bytes = model.to_bytes().unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let conv = header.info("conv.1.weight").unwrap();
        assert_eq!((conv.dtype, conv.shape.as_slice()), (Dtype::I8, &[5 * 5 * 32, 64][..]));
        assert_eq!(header.info("conv.1.input_range").unwrap().shape, [5 * 5 * 32, 2]);
        let loaded = SavedModel::from_bytes(&bytes, "m.gradus").unwrap();
        assert_eq!(loaded.model.int8_layers(), model.model.int8_layers());
        assert_eq!(loaded.model.params(), model.model.params());
        assert_eq!(loaded.outputs(x.clone()).unwrap(), after);
    }

    #[test]
    fn a_round_trip_keeps_outputs_bit_identical() {
        let periodic = crate::PeriodicSpec { columns: vec![0, 2], frequencies: 3, dim: 2, sigma: 0.5 };
        for original in [saved(), saved_with(Some(periodic))] {
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
        // The embeddings' parameters are stored under their own names.
        let names: Vec<String> =
            saved_with(Some(crate::PeriodicSpec { columns: vec![1], frequencies: 2, dim: 3, sigma: 1.0 }))
                .model
                .named_params()
                .into_iter()
                .map(|p| format!("{} {:?}", p.name, p.shape))
                .collect();
        assert_eq!(
            names[..3],
            ["periodic.0.frequency [1, 2]", "periodic.0.weight [1, 4, 3]", "periodic.0.bias [1, 3]"],
            "{names:?}"
        );
        assert_eq!(names[3], "dense.0.weight [6, 4]", "the first Dense layer reads the 3 inputs and 3 embedded values");
    }

    #[test]
    fn the_same_model_is_the_same_bytes_with_its_header_keys_sorted() {
        // Each HashMap gets its own random order, so ten saves would
        // differ somewhere if the header kept it.
        let first = Ensemble::new(vec![saved(), other()]).unwrap().to_bytes().unwrap();
        for _ in 0..10 {
            assert_eq!(Ensemble::new(vec![saved(), other()]).unwrap().to_bytes().unwrap(), first);
        }
        let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&first[8..8 + n]).unwrap();
        let at = |key: &str| header.find(&format!("\"{key}\":")).unwrap();
        assert!(at("__metadata__") < at("member.0.dense.0.weight"), "{header}");
        assert!(
            at("checksum") < at("format")
                && at("format") < at("format_version")
                && at("format_version") < at("gradus_version")
                && at("gradus_version") < at("members")
        );
        Ensemble::from_bytes(&first, "m.gradus").unwrap();
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
        model.spec.preprocessing = prep(&["a", "b"], None, Some(&["no", "yes"]));
        assert!(model.to_bytes().is_err(), "2 names for 3 inputs");
        let mut model = saved();
        let short = Scaler { offset: vec![1.0, 2.0, 3.0], scale: vec![2.0, 1.0] };
        model.spec.preprocessing = prep(&["a", "b", "c"], Some(short), Some(&["no", "yes"]));
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
            periodic: None,
            categories: None,
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

    /// A second model for the same features and classes: 2 outputs, no
    /// scaler, other weights.
    fn other() -> SavedModel {
        let mut model = saved();
        model.model.init_params(&mut seeded_rng(7));
        model.spec.preprocessing = prep(&["a", "b", "c"], None, Some(&["no", "yes"]));
        model
    }

    #[test]
    fn ensemble_members_sharing_a_text_vocabulary_store_it_once_and_share_it_loaded() {
        use gradus_data::{Analyzer, SparseRows, TextEncoder, Tokenizer};
        let mut text =
            TextEncoder::new("review".into(), Tokenizer::new(Analyzer::Words), "1-1".parse().unwrap(), 1024).unwrap();
        let rows = ["a good film", "a bad film", "good plot", "bad plot"];
        text.fit_vocabulary(rows, 1, 100, "t.csv").unwrap();
        let width = text.width();
        let mut encoding = Encoding::numbers(&[]);
        encoding.text.push(text);
        let member = |seed: u64| {
            let spec = TextSpec { n_sparse: width, n_dense: 0, dim: Some(2), hidden: None, n_outputs: 2 };
            let mut model = TextModel::new(&spec).unwrap();
            model.init_params(&mut seeded_rng(seed));
            let preprocessing = Preprocessing::new(
                vec![Transform::Encode(encoding.clone())],
                "y".into(),
                Some(vec!["n".into(), "p".into()]),
            )
            .unwrap();
            SavedModel {
                spec: ModelSpec {
                    architecture: Architecture::Text(spec),
                    loss: Loss::SoftmaxCrossEntropy,
                    preprocessing,
                    compression: Vec::new(),
                },
                model: Box::new(model),
            }
        };
        let ensemble = Ensemble::new(vec![member(1), member(2), member(3)]).unwrap();
        let bytes = ensemble.to_bytes().unwrap();
        let text_of = String::from_utf8_lossy(&bytes);
        assert_eq!(text_of.matches("\\\"idf\\\"").count(), 1, "the vocabulary is written once");
        assert_eq!(text_of.matches(SAME_ENCODING).count(), 2);
        let loaded = Ensemble::from_bytes(&bytes, "m.gradus").unwrap();
        let vocabularies: Vec<_> = loaded
            .members()
            .iter()
            .map(|m| m.spec.preprocessing.encoding().text[0].vocabulary.clone().unwrap())
            .collect();
        assert!(std::sync::Arc::ptr_eq(&vocabularies[0], &vocabularies[2]), "one vocabulary in memory");
        assert_eq!(loaded.preprocessing().encoding(), &encoding);
        // The same predictions as before the save.
        let mut sparse = SparseRows::new(width);
        sparse.push_row(&mut [(0, 0.6), (2, 0.8)]);
        let x = Matrix::zeros(1, 0);
        let before = ensemble.outputs_with(x.clone(), Some(sparse.view())).unwrap();
        assert_eq!(loaded.outputs_with(x, Some(sparse.view())).unwrap(), before);
    }

    #[test]
    fn an_ensemble_averages_its_members_probabilities() {
        let x = Matrix::from_vec(3, 3, vec![0.1, 5.0, -2.0, 3.0, 0.0, 1.0, -1.0, 2.0, 2.0]).unwrap();
        let (a, b) = (saved(), other());
        let pa = crate::probabilities(&a.outputs(x.clone()).unwrap(), 2);
        let pb = crate::probabilities(&b.outputs(x.clone()).unwrap(), 2);
        let ensemble = Ensemble::new(vec![a, b]).unwrap();
        let p = crate::probabilities(&ensemble.outputs(x.clone()).unwrap(), 2);
        for i in 0..p.len() {
            assert!((p[i] - (pa[i] + pb[i]) / 2.0).abs() < 1e-6, "{i}: {} vs {} {}", p[i], pa[i], pb[i]);
        }
        // The file keeps every member, bit for bit.
        let bytes = ensemble.to_bytes().unwrap();
        let loaded = Ensemble::from_bytes(&bytes, "e.gradus").unwrap();
        assert_eq!(loaded.members().len(), 2);
        assert_eq!(loaded.describe(), "ensemble of 2: MLP 3-4-2 tanh, MLP 3-4-2 tanh");
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(bits(loaded.outputs(x.clone()).unwrap()), bits(ensemble.outputs(x.clone()).unwrap()));
        // A single model's file is an ensemble of one; an ensemble is not a single model.
        let single = Ensemble::from_bytes(&saved().to_bytes().unwrap(), "m.gradus").unwrap();
        assert_eq!(bits(single.outputs(x.clone()).unwrap()), bits(saved().outputs(x).unwrap()));
        let err = SavedModel::from_bytes(&bytes, "e.gradus").err().unwrap();
        assert!(err.to_string().contains("an ensemble of 2 models"), "{err}");
        // And an ensemble of one is written as a single model.
        let one = Ensemble::from(saved()).to_bytes().unwrap();
        let key = br#""format_version":"3""#;
        assert!(one.windows(key.len()).any(|w| w == key) && SavedModel::from_bytes(&one, "m.gradus").is_ok());
    }

    #[test]
    fn a_weighted_ensemble_averages_by_weight_and_its_file_keeps_the_weights() {
        let x = Matrix::from_vec(2, 3, vec![0.1, 5.0, -2.0, 3.0, 0.0, 1.0]).unwrap();
        let pa = crate::probabilities(&saved().outputs(x.clone()).unwrap(), 2);
        let pb = crate::probabilities(&other().outputs(x.clone()).unwrap(), 2);
        let ensemble = Ensemble::weighted(vec![saved(), other()], vec![3.0, 1.0]).unwrap();
        let p = crate::probabilities(&ensemble.outputs(x.clone()).unwrap(), 2);
        for i in 0..p.len() {
            assert!((p[i] - (0.75 * pa[i] + 0.25 * pb[i])).abs() < 1e-6, "{i}");
        }
        let loaded = Ensemble::from_bytes(&ensemble.to_bytes().unwrap(), "e.gradus").unwrap();
        assert_eq!(loaded.weights(), &[3.0, 1.0]);
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(bits(loaded.outputs(x.clone()).unwrap()), bits(ensemble.outputs(x).unwrap()));
        for bad in [vec![1.0], vec![1.0, 0.0], vec![1.0, f64::NAN], vec![-1.0, 2.0]] {
            assert!(Ensemble::weighted(vec![saved(), other()], bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_one_logit_member_joins_a_two_logit_one_and_real_targets_average() {
        // A logistic model (one logit) and a softmax one over the same two classes.
        let logistic = |w: f32| {
            let mut model = LinearModel::new(1, 1, true);
            model.params_mut().copy_from_slice(&[w, 0.0]);
            SavedModel {
                spec: ModelSpec {
                    architecture: Architecture::Linear { n_inputs: 1, n_outputs: 1, fit_intercept: true },
                    loss: Loss::BinaryCrossEntropy,
                    preprocessing: prep(&["x"], None, Some(&["no", "yes"])),
                    compression: Vec::new(),
                },
                model: Box::new(model),
            }
        };
        let mut two = LinearModel::new(1, 2, true);
        two.params_mut().copy_from_slice(&[0.0, 1.0, 0.0, 0.0]); // logits [0, x]: p(yes) = sigmoid(x)
        let mut softmax = logistic(0.0);
        softmax.spec.architecture = Architecture::Linear { n_inputs: 1, n_outputs: 2, fit_intercept: true };
        softmax.spec.loss = Loss::SoftmaxCrossEntropy;
        softmax.model = Box::new(two);
        let x = Matrix::from_vec(2, 1, vec![1.0, -2.0]).unwrap();
        let ensemble = Ensemble::new(vec![logistic(3.0), softmax]).unwrap();
        let out = ensemble.outputs(x.clone()).unwrap();
        assert_eq!(out.len(), 2, "member 0's layout: one logit per row");
        let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
        for (i, &xi) in [1.0f32, -2.0].iter().enumerate() {
            let want = (sigmoid(3.0 * xi) + sigmoid(xi)) / 2.0;
            assert!((sigmoid(out[i]) - want).abs() < 1e-6, "row {i}");
        }
        // A confident member keeps its margin: at x = 10 the logistic member's
        // p(no) is e^-30, which 1 − p in f32 would round to 0.
        let far = Ensemble::new(vec![logistic(3.0), logistic(1.0)]).unwrap();
        let out = far.outputs(Matrix::from_vec(1, 1, vec![10.0]).unwrap()).unwrap();
        let s64 = |z: f64| 1.0 / (1.0 + (-z).exp());
        let no = (s64(-30.0) + s64(-10.0)) / 2.0;
        let want = ((1.0 - no) / no).ln();
        assert!((f64::from(out[0]) - want).abs() < 1e-4 * want, "{} vs {want}", out[0]);
        // A member gone to NaN shows as NaN, not as a confident class.
        let mut broken = logistic(1.0);
        broken.model.params_mut()[0] = f32::NAN;
        let out = Ensemble::new(vec![logistic(1.0), broken]).unwrap().outputs(x.clone()).unwrap();
        assert!(out.iter().all(|v| v.is_nan()), "{out:?}");
        // Real targets: the mean prediction.
        let real = |w: f32| {
            let mut m = logistic(w);
            m.spec.loss = Loss::Mse;
            m.spec.preprocessing.classes = None;
            m
        };
        let out = Ensemble::new(vec![real(1.0), real(4.0)]).unwrap().outputs(x).unwrap();
        assert_eq!(out, vec![2.5, -5.0]);
        // Members must read the same features.
        let mut stranger = real(1.0);
        stranger.spec.preprocessing = prep(&["z"], None, None);
        assert!(Ensemble::new(vec![real(1.0), stranger]).is_err());
        assert!(Ensemble::new(Vec::new()).is_err());
    }

    #[test]
    fn a_damaged_ensemble_file_is_rejected() {
        let bytes = Ensemble::new(vec![saved(), other()]).unwrap().to_bytes().unwrap();
        for cut in [10, bytes.len() / 2, bytes.len() - 1] {
            let err = Ensemble::from_bytes(&bytes[..cut], "e.gradus").err().expect("truncated");
            assert!(err.to_string().starts_with("e.gradus: not a readable gradus model file"), "cut {cut}: {err}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        let err = Ensemble::from_bytes(&flipped, "e.gradus").err().expect("altered");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn a_version_1_file_with_feature_names_and_a_scaler_still_reads() {
        // The spec as format version 1 wrote it: feature names and one scaler.
        let model = saved();
        let legacy = serde_json::json!({
            "architecture": model.spec.architecture,
            "loss": model.spec.loss,
            "preprocessing": {
                "feature_names": ["a", "b", "c"],
                "scaler": {"offset": [1.0, 2.0, 3.0], "scale": [2.0, 1.0, 0.5]},
                "target_name": "y",
                "classes": ["no", "yes"],
            },
        })
        .to_string();
        let bytes =
            serialize(&[("", &model)], &weight_bytes(std::slice::from_ref(&model)), 1, ("spec", legacy), None).unwrap();
        let loaded = SavedModel::from_bytes(&bytes, "old.gradus").unwrap();
        assert_eq!(loaded.spec, model.spec, "read as the same transforms");
        let x = Matrix::from_vec(1, 3, vec![0.1, 5.0, -2.0]).unwrap();
        assert_eq!(loaded.outputs(x.clone()).unwrap(), model.outputs(x).unwrap());
    }

    #[test]
    fn what_the_maker_records_is_kept_under_the_checksum() {
        for members in [vec![saved()], vec![saved(), other()]] {
            let mut ensemble = Ensemble::new(members).unwrap();
            ensemble.set_about(serde_json::json!({"data": "abc", "trials": [3, 1]}));
            let bytes = ensemble.to_bytes().unwrap();
            let loaded = Ensemble::from_bytes(&bytes, "e.gradus").unwrap();
            assert_eq!(loaded.about(), ensemble.about());
            let err = Ensemble::from_bytes(&edited(&bytes, r#""abc""#, r#""abd""#), "e.gradus").err().unwrap();
            assert!(err.to_string().contains("checksum"), "{err}");
        }
        assert_eq!(Ensemble::from_bytes(&saved().to_bytes().unwrap(), "m.gradus").unwrap().about(), None);
    }

    #[test]
    fn another_format_version_is_named_in_the_error() {
        let mut bytes = saved().to_bytes().unwrap();
        let key = br#""format_version":"3""#;
        let at = bytes.windows(key.len()).position(|w| w == key).expect("the header holds the version");
        bytes[at + key.len() - 2] = b'9';
        let err = SavedModel::from_bytes(&bytes, "m.gradus").err().expect("newer version");
        assert!(err.to_string().contains("format version 9; this gradus"), "{err}");
        assert!(err.to_string().contains("reads versions 1 to 4"), "{err}");
    }
}
