//! The training pipeline: split a dataset, fit the preprocessing on the
//! training rows, pick the loss the target calls for, train, and hand back a
//! [`SavedModel`] whose predictions are in the target's own units, with the
//! train/validation metrics.
//!
//! This is where data and the training engine meet; neither knows the other's
//! conventions beyond the `Dataset` type.

use std::borrow::Cow;

use gradus_data::{Dataset, Encoding, LoadOptions, Scaler, Scaling, Target, TargetKind, Task, load};
use gradus_train::{
    Activation, Architecture, Augment, CategorySpec, CnnSpec, ConvStage, Loss, Metric, Metrics, MlpSpec, ModelSpec,
    Observer, PeriodicSpec, Preprocessing, SavedModel, Shape, TextSpec, TrainConfig, TrainError, TrainReport, Trainer,
    WeightInit, evaluate,
};
use serde::{Deserialize, Serialize};

/// A model family, by the name the CLI, the search space and the trials
/// use: the one list of what gradus can train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Linear regression (a real target).
    Linear,
    /// Logistic regression (two classes).
    Logistic,
    /// Softmax regression (any number of classes).
    Softmax,
    /// A multi-layer perceptron for any target.
    Mlp,
    /// A convolutional network for any target, on images.
    Cnn,
    /// An embedding bag of n-grams with a linear head (fastText's
    /// model) for any target, on data with text columns.
    Text,
}

impl Family {
    pub const ALL: [Family; 6] =
        [Family::Linear, Family::Logistic, Family::Softmax, Family::Mlp, Family::Cnn, Family::Text];

    pub fn name(self) -> &'static str {
        match self {
            Family::Linear => "linear",
            Family::Logistic => "logistic",
            Family::Softmax => "softmax",
            Family::Mlp => "mlp",
            Family::Cnn => "cnn",
            Family::Text => "text",
        }
    }

    /// The family called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Family> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether a search on a `task` target uses it: the linear family made
    /// for that kind of target, and the networks for every kind.
    pub fn fits(self, task: Task) -> bool {
        match self {
            Family::Linear => task == Task::Regression,
            Family::Logistic => task == Task::Binary,
            Family::Softmax => matches!(task, Task::Multiclass { .. }),
            Family::Mlp | Family::Cnn | Family::Text => true,
        }
    }

    /// Whether `gradus tune --model auto` searches it on any data: every
    /// family but the CNN, which auto adds when the rows are images of a
    /// known shape, and the text model, which it adds (with the linear
    /// family, instead of the others) when they have text columns (see
    /// [`crate::autotune::ModelRequest::families`]).
    pub fn in_auto(self) -> bool {
        !matches!(self, Family::Cnn | Family::Text)
    }

    /// Whether it reads sparse (text) inputs: the linear families, read
    /// straight off the n-grams, and the text model.
    pub fn reads_text(self) -> bool {
        !matches!(self, Family::Mlp | Family::Cnn)
    }

    /// How the target column is read for this family when no loss says.
    fn target_kind(self) -> TargetKind {
        match self {
            Family::Linear => TargetKind::Real,
            Family::Logistic | Family::Softmax => TargetKind::Classes,
            Family::Mlp | Family::Cnn | Family::Text => TargetKind::Auto,
        }
    }
}

/// Which model to train: a family with its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelChoice {
    Linear,
    Logistic,
    Softmax,
    Mlp {
        hidden: Vec<usize>,
        activation: Activation,
        dropout: f32,
        init: WeightInit,
        /// Periodic embeddings of every numeric column's value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        periodic: Option<Periodic>,
    },
    /// `input` is each row's image shape; the Dense layers' widths are `hidden`.
    Cnn {
        input: Shape,
        conv: Vec<ConvStage>,
        global_pool: bool,
        hidden: Vec<usize>,
        activation: Activation,
        dropout: f32,
        augment: Augment,
        /// Batch normalisation after each convolution.
        #[serde(default)]
        batch_norm: bool,
    },
    /// An embedding bag of `dim` values per n-gram (see
    /// [`gradus_train::TextModel`]) into a linear head, or an MLP head of
    /// `hidden` ReLU units.
    Text {
        dim: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hidden: Option<usize>,
    },
}

/// The values of each n-gram's embedding in `--model text` unless
/// told otherwise.
pub const DEFAULT_TEXT_DIM: usize = 16;

/// The hidden units of a text model's MLP head unless told otherwise.
pub const DEFAULT_TEXT_HIDDEN: usize = 64;

/// The values an MLP learns for each level of a column it embeds (see
/// [`gradus_data::HighCardinality::Embed`]).
pub const CATEGORY_DIM: usize = 16;

/// Periodic embeddings of the numeric columns (see [`PeriodicSpec`]; the
/// inputs embedded are each numeric column's value, as the data's encoding
/// places them).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Periodic {
    pub frequencies: usize,
    pub dim: usize,
    pub sigma: f32,
}

impl Periodic {
    /// k = 16 frequencies and d = 16 values per column, and σ to tune.
    pub fn with_sigma(sigma: f32) -> Self {
        Self { frequencies: 16, dim: 16, sigma }
    }
}

impl ModelChoice {
    pub fn family(&self) -> Family {
        match self {
            ModelChoice::Linear => Family::Linear,
            ModelChoice::Logistic => Family::Logistic,
            ModelChoice::Softmax => Family::Softmax,
            ModelChoice::Mlp { .. } => Family::Mlp,
            ModelChoice::Cnn { .. } => Family::Cnn,
            ModelChoice::Text { .. } => Family::Text,
        }
    }

    pub fn name(&self) -> &'static str {
        self.family().name()
    }

    /// How the target column must be read for this model and loss.
    pub fn target_kind(&self, loss: Option<Loss>) -> TargetKind {
        loss.map_or_else(|| self.family().target_kind(), Loss::target_kind)
    }
}

/// Why a training job could not run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Data(#[from] gradus_data::DataError),
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The model choice does not fit the data (a usage error).
    #[error("{0}")]
    Unsuitable(String),
    /// Training diverged where it had to succeed (not the input's fault).
    #[error("{0}")]
    Diverged(String),
}

/// Everything one training run needs.
#[derive(Clone, Debug)]
pub struct TrainJob {
    pub model: ModelChoice,
    /// `None`: the loss the model and target call for.
    pub loss: Option<Loss>,
    pub scaling: Scaling,
    /// Rows held out for validation (stratified for classes); 0 for none.
    pub valid_fraction: f64,
    /// Weight each class by n / (classes × its rows) in the training loss,
    /// counted on the training rows (scikit-learn's `class_weight="balanced"`);
    /// overrides `config.class_weights`.
    pub balanced: bool,
    pub config: TrainConfig,
    /// Whether to measure the trained model on its own training rows
    /// ([`TrainOutcome::train_metrics`]): `gradus train` reports them; a
    /// tuning trial or refit does not need them, and they cost a pass over
    /// every training row and a prediction for each.
    pub train_metrics: bool,
}

/// The result of [`TrainJob::run`].
pub struct TrainOutcome {
    pub saved: SavedModel,
    pub report: TrainReport,
    pub train_rows: usize,
    pub valid_rows: usize,
    /// `None` when training diverged, or when the job did not ask for them.
    pub train_metrics: Option<Metrics>,
    pub valid_metrics: Option<Metrics>,
}

impl TrainJob {
    /// Loads `source` (`builtin:NAME` or a CSV path) the way this job's model reads it.
    pub fn load(&self, source: &str, target: Option<String>) -> Result<Dataset, PipelineError> {
        Ok(load(source, &LoadOptions { target, target_kind: self.model.target_kind(self.loss) })?)
    }

    /// The loss and the number of outputs for this model on `data`'s target.
    pub fn loss_and_outputs(&self, data: &Dataset) -> Result<(Loss, usize), PipelineError> {
        let unsuitable = |m: String| Err(PipelineError::Unsuitable(m));
        let (loss, outputs) = match (&self.model, &data.y) {
            (ModelChoice::Logistic, Target::Classes { classes, .. }) if classes.len() != 2 => {
                return unsuitable(format!(
                    "--model logistic needs a target with 2 classes; '{}' has {} (use --model softmax)",
                    data.target_name,
                    classes.len()
                ));
            }
            (ModelChoice::Softmax, Target::Classes { classes, .. }) => (Loss::SoftmaxCrossEntropy, classes.len()),
            (
                ModelChoice::Mlp { .. } | ModelChoice::Cnn { .. } | ModelChoice::Text { .. },
                Target::Classes { classes, .. },
            ) if classes.len() > 2 => (Loss::SoftmaxCrossEntropy, classes.len()),
            (_, Target::Classes { .. }) => (Loss::BinaryCrossEntropy, 1),
            (_, Target::Real(_)) => (Loss::Mse, 1),
        };
        Ok((self.loss.unwrap_or(loss), outputs))
    }

    /// The architecture this job trains on inputs encoded by `inputs`.
    pub fn architecture(&self, inputs: &Encoding, n_outputs: usize) -> Result<Architecture, PipelineError> {
        let n_features = inputs.n_outputs();
        if !inputs.text.is_empty() {
            if !self.model.family().reads_text() {
                let columns: Vec<&str> = inputs.text.iter().map(|t| t.column.as_str()).collect();
                return Err(PipelineError::Unsuitable(format!(
                    "--model {} reads numbers only, and the data have text (column {}): use --model text, or \
                     linear, logistic or softmax on the n-grams",
                    self.model.name(),
                    columns.join(", ")
                )));
            }
            // The linear families read the n-grams straight, without an embedding.
            let (dim, hidden) = match &self.model {
                ModelChoice::Text { dim, hidden } => (Some(*dim), *hidden),
                _ => (None, None),
            };
            let n_sparse = inputs.n_sparse_outputs();
            return Ok(Architecture::Text(TextSpec { n_sparse, n_dense: n_features, dim, hidden, n_outputs }));
        }
        Ok(match &self.model {
            ModelChoice::Text { .. } => {
                return Err(PipelineError::Unsuitable(
                    "--model text reads text columns, and the data have none (a column of free text: long, mostly \
                     distinct values)"
                        .into(),
                ));
            }
            ModelChoice::Cnn { input, conv, global_pool, hidden, activation, dropout, augment, batch_norm } => {
                Architecture::Cnn(CnnSpec {
                    input: *input,
                    conv: conv.clone(),
                    global_pool: *global_pool,
                    hidden: hidden.clone(),
                    n_outputs,
                    activation: *activation,
                    dropout: *dropout,
                    augment: *augment,
                    batch_norm: *batch_norm,
                })
            }
            ModelChoice::Mlp { hidden, activation, dropout, init, periodic } => Architecture::Mlp(MlpSpec {
                n_inputs: n_features,
                hidden: hidden.clone(),
                n_outputs,
                activation: *activation,
                dropout: *dropout,
                init: *init,
                periodic: match periodic {
                    None => None,
                    Some(p) => {
                        let columns = inputs.numeric_inputs();
                        if columns.is_empty() {
                            return Err(PipelineError::Unsuitable(
                                "periodic embeddings embed numeric columns; the data have none".into(),
                            ));
                        }
                        Some(PeriodicSpec { columns, frequencies: p.frequencies, dim: p.dim, sigma: p.sigma })
                    }
                },
                // The columns encoded for embedding (HighCardinality::Embed) are embedded.
                categories: {
                    let blocks = inputs.embedded_blocks();
                    (!blocks.is_empty()).then_some(CategorySpec { blocks, dim: CATEGORY_DIM })
                },
            }),
            _ => Architecture::Linear { n_inputs: n_features, n_outputs, fit_intercept: true },
        })
    }

    /// Splits (holding out `valid_fraction` of the rows), preprocesses and
    /// trains on `data`.
    pub fn run(&self, data: &Dataset, observer: &mut dyn Observer) -> Result<TrainOutcome, PipelineError> {
        self.run_split(Cow::Borrowed(data), observer)
    }

    /// [`Self::run`] on rows the caller gives up: they are freed once split
    /// (or, with no validation rows, preprocessed in place).
    pub fn run_owned(&self, data: Dataset, observer: &mut dyn Observer) -> Result<TrainOutcome, PipelineError> {
        self.run_split(Cow::Owned(data), observer)
    }

    fn run_split(&self, data: Cow<'_, Dataset>, observer: &mut dyn Observer) -> Result<TrainOutcome, PipelineError> {
        let (train_raw, valid_raw) = if self.valid_fraction > 0.0 {
            let split = data.split(self.valid_fraction, 0.0, self.config.seed)?;
            let [train, valid, _] = match data {
                Cow::Owned(data) => data.into_split(&split),
                Cow::Borrowed(data) => [&split.train, &split.valid, &split.test].map(|rows| data.subset(rows)),
            };
            // The row numbers (8 bytes a row) go before training.
            drop(split);
            (Cow::Owned(train), (valid.n_samples() > 0).then_some(Cow::Owned(valid)))
        } else {
            (data, None)
        };
        self.train(train_raw, None, valid_raw, observer)
    }

    /// Preprocesses and trains on `train_raw`, validating on `valid_raw`
    /// (a cross-validation fold, say); `valid_fraction` is not used.
    pub fn run_on(
        &self,
        train_raw: &Dataset,
        valid_raw: Option<&Dataset>,
        observer: &mut dyn Observer,
    ) -> Result<TrainOutcome, PipelineError> {
        self.train(Cow::Borrowed(train_raw), None, valid_raw.map(Cow::Borrowed), observer)
    }

    /// [`Self::run_on`] with the training loss taken against `soft`
    /// targets, row for row with `train_raw` (see
    /// [`gradus_train::Trainer::fit_soft`]): a teacher's class
    /// probabilities, as many a row as this job's model has outputs (the
    /// positive class's alone for one logit). Validation reads the labels.
    pub fn run_soft(
        &self,
        train_raw: &Dataset,
        soft: &[f32],
        valid_raw: Option<&Dataset>,
        observer: &mut dyn Observer,
    ) -> Result<TrainOutcome, PipelineError> {
        self.train(Cow::Borrowed(train_raw), Some(soft), valid_raw.map(Cow::Borrowed), observer)
    }

    /// [`Self::run_on`] on rows that are borrowed (and copied to be
    /// preprocessed) or given up (and preprocessed in place).
    fn train(
        &self,
        train_raw: Cow<'_, Dataset>,
        soft: Option<&[f32]>,
        valid_raw: Option<Cow<'_, Dataset>>,
        observer: &mut dyn Observer,
    ) -> Result<TrainOutcome, PipelineError> {
        let data = train_raw.as_ref();
        let mut config = self.config.clone();
        if let (true, Target::Classes { labels, classes }) = (self.balanced, &data.y) {
            config.class_weights = Some(balanced_weights(labels, classes.len()));
        }
        let trainer = Trainer::new(config)?;
        if let (
            ModelChoice::Mlp { dropout, .. } | ModelChoice::Cnn { dropout, .. },
            gradus_train::OptimizerConfig::Lbfgs { .. },
        ) = (&self.model, &self.config.optimizer)
            && *dropout > 0.0
        {
            return Err(PipelineError::Unsuitable(
                "L-BFGS needs a deterministic objective; dropout makes it random (use another optimizer or --dropout 0)"
                    .into(),
            ));
        }
        if let (ModelChoice::Cnn { batch_norm: true, .. }, gradus_train::OptimizerConfig::Lbfgs { .. }) =
            (&self.model, &self.config.optimizer)
        {
            return Err(PipelineError::Unsuitable(
                "L-BFGS needs a deterministic objective; batch norm makes each row's output depend on its batch \
                 (use another optimizer, or no --batch-norm)"
                    .into(),
            ));
        }
        let (loss, n_outputs) = self.loss_and_outputs(data)?;
        loss.check(n_outputs, &data.y)?;
        let preprocessing = Preprocessing::fit(data, self.scaling)?;
        let apply = |d: Cow<'_, Dataset>| match d {
            Cow::Owned(d) => preprocessing.apply_owned(d),
            Cow::Borrowed(d) => preprocessing.apply(d),
        };
        let mut train = apply(train_raw)?;
        let mut valid = valid_raw.map(apply).transpose()?;

        // A real target is standardised for training (unless scaling is off),
        // and the output layer mapped back afterwards, so that the learning
        // rate means the same whatever the target's units.
        let target_scale = match (&train.y, self.scaling) {
            (Target::Real(y), Scaling::Standard | Scaling::MinMax | Scaling::Global) => Some(target_scale(y)?),
            _ => None,
        };
        // Training sees the standardised target in place of the real one,
        // which comes back for the metrics (the inputs are not copied).
        let standardise = |d: &mut Dataset| match (target_scale, &d.y) {
            (Some((mean, std)), Target::Real(y)) => {
                let scaled = Target::Real(y.iter().map(|&v| ((v as f64 - mean) / std) as f32).collect());
                Some(std::mem::replace(&mut d.y, scaled))
            }
            _ => None,
        };
        let (train_y, valid_y) = (standardise(&mut train), valid.as_mut().and_then(standardise));
        // Huber's δ is given in the target's units; training sees standardised ones.
        let train_loss = match (loss, target_scale) {
            (Loss::Huber { delta }, Some((_, std))) => Loss::Huber { delta: (delta as f64 / std) as f32 },
            _ => loss,
        };

        let architecture = self.architecture(preprocessing.encoding(), n_outputs)?;
        let mut model = architecture.build()?;
        // A monitored RMSE or MAE is reported in the target's units.
        let mut in_units = InTargetUnits { inner: observer, scale: 1.0 };
        if let (Some((_, std)), Some(Metric::Rmse | Metric::Mae)) = (target_scale, self.config.monitor) {
            in_units.scale = std;
        }
        let report = match soft {
            Some(p) => trainer.fit_soft(model.as_mut(), train_loss, &train, p, valid.as_ref(), &mut in_units)?,
            None => trainer.fit(model.as_mut(), train_loss, &train, valid.as_ref(), &mut in_units)?,
        };
        if let Some(y) = train_y {
            train.y = y;
        }
        if let (Some(v), Some(y)) = (valid.as_mut(), valid_y) {
            v.y = y;
        }
        if let Some((mean, std)) = target_scale {
            model.rescale_outputs(&[std as f32], &[mean as f32]);
        }
        let diverged = report.termination == gradus_train::Termination::Diverged;
        let train_metrics =
            (!diverged && self.train_metrics).then(|| evaluate(model.as_ref(), loss, &train)).transpose()?;
        let valid_metrics = match (&valid, diverged) {
            (Some(v), false) => Some(evaluate(model.as_ref(), loss, v)?),
            _ => None,
        };
        Ok(TrainOutcome {
            saved: SavedModel { spec: ModelSpec { architecture, loss, preprocessing, compression: Vec::new() }, model },
            report,
            train_rows: train.n_samples(),
            valid_rows: valid.as_ref().map_or(0, Dataset::n_samples),
            train_metrics,
            valid_metrics,
        })
    }
}

/// Passes epochs on with the validation score multiplied by `scale`: the
/// standard deviation a real target was divided by for training, so that
/// a monitored RMSE or MAE is in the target's units.
struct InTargetUnits<'a> {
    inner: &'a mut dyn Observer,
    scale: f64,
}

impl Observer for InTargetUnits<'_> {
    fn on_step(&mut self, log: &gradus_train::StepLog) {
        self.inner.on_step(log);
    }

    fn on_epoch(&mut self, record: &gradus_train::EpochRecord) -> gradus_train::Control {
        let record = gradus_train::EpochRecord { valid_score: record.valid_score.map(|s| s * self.scale), ..*record };
        self.inner.on_epoch(&record)
    }
}

/// scikit-learn's balanced class weights: n / (k · n_c) for class c of k
/// among n labels (1 for a class with no rows, which no loss term uses).
pub fn balanced_weights(labels: &[u32], k: usize) -> Vec<f32> {
    let mut counts = vec![0usize; k];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    counts.iter().map(|&c| if c == 0 { 1.0 } else { (labels.len() as f64 / (k * c) as f64) as f32 }).collect()
}

/// The (mean, standard deviation) of a real target: what training
/// standardises it by.
pub fn target_scale(y: &[f32]) -> Result<(f64, f64), PipelineError> {
    let column = gradus_data::Matrix::from_vec(y.len(), 1, y.to_vec()).expect("n x 1");
    let scaler = Scaler::standard(&column)?;
    Ok((scaler.offset[0], scaler.scale[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradus_train::{EarlyStopping, NoObserver, OptimizerConfig};

    fn job(model: ModelChoice) -> TrainJob {
        TrainJob {
            model,
            loss: None,
            scaling: Scaling::Standard,
            valid_fraction: 0.2,
            balanced: false,
            train_metrics: true,
            config: TrainConfig { lr: 0.01, epochs: 60, ..TrainConfig::default() },
        }
    }

    #[test]
    fn the_loss_follows_the_model_and_the_target() {
        let mlp = ModelChoice::Mlp {
            hidden: vec![8],
            activation: Activation::Relu,
            dropout: 0.0,
            init: WeightInit::Auto,
            periodic: None,
        };
        for (choice, source, want) in [
            (ModelChoice::Linear, "builtin:diabetes", (Loss::Mse, 1)),
            (ModelChoice::Logistic, "builtin:breast_cancer", (Loss::BinaryCrossEntropy, 1)),
            (ModelChoice::Softmax, "builtin:iris", (Loss::SoftmaxCrossEntropy, 3)),
            (mlp.clone(), "builtin:wine", (Loss::SoftmaxCrossEntropy, 3)),
            (mlp.clone(), "builtin:breast_cancer", (Loss::BinaryCrossEntropy, 1)),
            (mlp, "builtin:diabetes", (Loss::Mse, 1)),
        ] {
            let job = job(choice);
            let data = job.load(source, None).unwrap();
            assert_eq!(job.loss_and_outputs(&data).unwrap(), want, "{source}");
        }
    }

    #[test]
    fn balanced_weights_are_scikit_learns() {
        // compute_class_weight("balanced", classes=[0, 1, 2], y=[0, 0, 0, 1, 2, 2]) = [0.6667, 2, 1]
        let w = balanced_weights(&[0, 0, 0, 1, 2, 2], 3);
        assert!((w[0] - 2.0 / 3.0).abs() < 1e-7 && w[1] == 2.0 && w[2] == 1.0, "{w:?}");
        assert_eq!(balanced_weights(&[0, 0], 2), vec![0.5, 1.0], "a class with no rows weighs 1");
    }

    #[test]
    fn huber_delta_is_in_the_targets_own_units() {
        // y = 10x with every tenth row an outlier +300: a Huber fit with δ = 1
        // (in target units) ignores the outliers; were δ taken in standardised
        // units (about 100 target units here) they would drag the line up.
        let x: Vec<f32> = (0..200).map(|i| i as f32 / 100.0).collect();
        let y: Vec<f32> = x.iter().enumerate().map(|(i, v)| 10.0 * v + if i % 10 == 0 { 300.0 } else { 0.0 }).collect();
        let data = Dataset::numeric(
            "outliers",
            gradus_data::Matrix::from_vec(200, 1, x).unwrap(),
            Target::Real(y),
            &["x".into()],
            "y",
        );
        let job = TrainJob {
            model: ModelChoice::Linear,
            loss: Some(Loss::Huber { delta: 1.0 }),
            scaling: Scaling::Standard,
            valid_fraction: 0.0,
            balanced: false,
            train_metrics: true,
            config: TrainConfig {
                optimizer: OptimizerConfig::lbfgs(),
                epochs: 200,
                tol: 0.0,
                ..TrainConfig::default()
            },
        };
        let outcome = job.run(&data, &mut NoObserver).unwrap();
        assert_eq!(outcome.saved.spec.loss, Loss::Huber { delta: 1.0 }, "the file keeps δ in target units");
        let out = outcome.saved.outputs(gradus_data::Matrix::from_vec(2, 1, vec![0.0, 1.0]).unwrap()).unwrap();
        assert!(out[0].abs() < 1.0 && (out[1] - 10.0).abs() < 1.0, "robust fit: {out:?}");
    }

    #[test]
    fn lbfgs_refuses_a_dropout_network() {
        let mut job = job(ModelChoice::Mlp {
            hidden: vec![4],
            activation: Activation::Relu,
            dropout: 0.5,
            init: WeightInit::Auto,
            periodic: None,
        });
        job.config.optimizer = OptimizerConfig::lbfgs();
        job.config.batch_size = None;
        let data = job.load("builtin:iris", None).unwrap();
        let err = job.run(&data, &mut NoObserver).err().expect("refused");
        assert!(err.to_string().contains("L-BFGS needs a deterministic objective"), "{err}");
    }

    #[test]
    fn a_regression_model_predicts_in_the_targets_own_units() {
        let mut job = job(ModelChoice::Mlp {
            hidden: vec![16],
            activation: Activation::Tanh,
            dropout: 0.0,
            init: WeightInit::Auto,
            periodic: None,
        });
        job.config.optimizer = OptimizerConfig::adam();
        job.config.early_stopping = Some(EarlyStopping::new(10));
        let data = job.load("builtin:diabetes", None).unwrap();
        let outcome = job.run(&data, &mut NoObserver).unwrap();
        let Some(Metrics::Regression { r2, .. }) = outcome.valid_metrics else { panic!("regression metrics") };
        assert!(r2 > 0.3, "validation R² {r2} in target units");
        let raw = data.select_features(&outcome.saved.spec.preprocessing.feature_names()).unwrap();
        let out = outcome.saved.outputs(raw.x).unwrap();
        let mean = out.iter().sum::<f32>() / out.len() as f32;
        assert!((100.0..200.0).contains(&mean), "predictions average {mean}, the target's mean is about 152");
    }
}
