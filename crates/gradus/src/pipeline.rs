//! The training pipeline: split a dataset, fit the preprocessing on the
//! training rows, pick the loss the target calls for, train, and hand back a
//! [`SavedModel`] whose predictions are in the target's own units, with the
//! train/validation metrics.
//!
//! This is where data and the training engine meet; neither knows the other's
//! conventions beyond the `Dataset` type.

use gradus_data::{Dataset, LoadOptions, Scaler, Scaling, Target, TargetKind, load};
use gradus_train::{
    Activation, Architecture, Loss, Metrics, MlpSpec, ModelSpec, Observer, Preprocessing, SavedModel, TrainConfig,
    TrainError, TrainReport, Trainer, WeightInit, evaluate,
};
use serde::{Deserialize, Serialize};

/// Which model family to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelChoice {
    /// Linear regression (a real target).
    Linear,
    /// Logistic regression (two classes).
    Logistic,
    /// Softmax regression (any number of classes).
    Softmax,
    /// A multi-layer perceptron for any target.
    Mlp { hidden: Vec<usize>, activation: Activation, dropout: f32, init: WeightInit },
}

impl ModelChoice {
    pub fn name(&self) -> &'static str {
        match self {
            ModelChoice::Linear => "linear",
            ModelChoice::Logistic => "logistic",
            ModelChoice::Softmax => "softmax",
            ModelChoice::Mlp { .. } => "mlp",
        }
    }

    /// How the target column must be read for this model and loss.
    pub fn target_kind(&self, loss: Option<Loss>) -> TargetKind {
        match (self, loss) {
            (_, Some(loss)) => loss.target_kind(),
            (ModelChoice::Linear, None) => TargetKind::Real,
            (ModelChoice::Logistic | ModelChoice::Softmax, None) => TargetKind::Classes,
            (ModelChoice::Mlp { .. }, None) => TargetKind::Auto,
        }
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
    pub config: TrainConfig,
}

/// The result of [`TrainJob::run`].
pub struct TrainOutcome {
    pub saved: SavedModel,
    pub report: TrainReport,
    pub train_rows: usize,
    pub valid_rows: usize,
    /// `None` when training diverged.
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
            (ModelChoice::Mlp { .. }, Target::Classes { classes, .. }) if classes.len() > 2 => {
                (Loss::SoftmaxCrossEntropy, classes.len())
            }
            (_, Target::Classes { .. }) => (Loss::BinaryCrossEntropy, 1),
            (_, Target::Real(_)) => (Loss::Mse, 1),
        };
        Ok((self.loss.unwrap_or(loss), outputs))
    }

    /// The architecture this job trains for `n_features` inputs.
    pub fn architecture(&self, n_features: usize, n_outputs: usize) -> Architecture {
        match &self.model {
            ModelChoice::Mlp { hidden, activation, dropout, init } => Architecture::Mlp(MlpSpec {
                n_inputs: n_features,
                hidden: hidden.clone(),
                n_outputs,
                activation: *activation,
                dropout: *dropout,
                init: *init,
            }),
            _ => Architecture::Linear { n_inputs: n_features, n_outputs, fit_intercept: true },
        }
    }

    /// Splits, preprocesses and trains on `data`.
    pub fn run(&self, data: &Dataset, observer: &mut dyn Observer) -> Result<TrainOutcome, PipelineError> {
        let trainer = Trainer::new(self.config.clone())?;
        let (loss, n_outputs) = self.loss_and_outputs(data)?;
        loss.check(n_outputs, &data.y)?;
        let (train_raw, valid_raw) = if self.valid_fraction > 0.0 {
            let split = data.split(self.valid_fraction, 0.0, self.config.seed)?;
            let valid = (!split.valid.is_empty()).then(|| data.subset(&split.valid));
            (data.subset(&split.train), valid)
        } else {
            (data.clone(), None)
        };
        let preprocessing = Preprocessing::fit(&train_raw, self.scaling)?;
        let train = preprocessing.apply(&train_raw)?;
        let valid = valid_raw.as_ref().map(|v| preprocessing.apply(v)).transpose()?;

        // A real target is standardised for training (unless scaling is off),
        // and the output layer mapped back afterwards, so that the learning
        // rate means the same whatever the target's units.
        let target_scaler = match (&train.y, self.scaling) {
            (Target::Real(y), Scaling::Standard | Scaling::MinMax) => Some(target_scaler(y)?),
            _ => None,
        };
        let scaled = |d: &Dataset| match (&target_scaler, &d.y) {
            (Some(s), Target::Real(y)) => {
                let mut d = d.clone();
                d.y = Target::Real(y.iter().map(|v| (v - s.offset[0]) / s.scale[0]).collect());
                d
            }
            _ => d.clone(),
        };
        let (train_fit, valid_fit) = (scaled(&train), valid.as_ref().map(scaled));

        let architecture = self.architecture(train.n_features(), n_outputs);
        let mut model = architecture.build()?;
        let report = trainer.fit(model.as_mut(), loss, &train_fit, valid_fit.as_ref(), observer)?;
        if let Some(s) = &target_scaler {
            model.rescale_outputs(&s.scale, &s.offset);
        }
        let diverged = report.termination == gradus_train::Termination::Diverged;
        let train_metrics = (!diverged).then(|| evaluate(model.as_ref(), loss, &train)).transpose()?;
        let valid_metrics = match (&valid, diverged) {
            (Some(v), false) => Some(evaluate(model.as_ref(), loss, v)?),
            _ => None,
        };
        Ok(TrainOutcome {
            saved: SavedModel { spec: ModelSpec { architecture, loss, preprocessing }, model },
            report,
            train_rows: train.n_samples(),
            valid_rows: valid.as_ref().map_or(0, Dataset::n_samples),
            train_metrics,
            valid_metrics,
        })
    }
}

fn target_scaler(y: &[f32]) -> Result<Scaler, PipelineError> {
    let column = gradus_data::Matrix::from_vec(y.len(), 1, y.to_vec()).expect("n x 1");
    Ok(Scaler::standard(&column)?)
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
            config: TrainConfig { lr: 0.01, epochs: 60, ..TrainConfig::default() },
        }
    }

    #[test]
    fn the_loss_follows_the_model_and_the_target() {
        let mlp =
            ModelChoice::Mlp { hidden: vec![8], activation: Activation::Relu, dropout: 0.0, init: WeightInit::Auto };
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
    fn a_regression_model_predicts_in_the_targets_own_units() {
        let mut job = job(ModelChoice::Mlp {
            hidden: vec![16],
            activation: Activation::Tanh,
            dropout: 0.0,
            init: WeightInit::Auto,
        });
        job.config.optimizer = OptimizerConfig::adam();
        job.config.early_stopping = Some(EarlyStopping::new(10));
        let data = job.load("builtin:diabetes", None).unwrap();
        let outcome = job.run(&data, &mut NoObserver).unwrap();
        let Some(Metrics::Regression { r2, .. }) = outcome.valid_metrics else { panic!("regression metrics") };
        assert!(r2 > 0.3, "validation R² {r2} in target units");
        let raw = data.select_features(&outcome.saved.spec.preprocessing.feature_names).unwrap();
        let out = outcome.saved.outputs(raw.x).unwrap();
        let mean = out.iter().sum::<f32>() / out.len() as f32;
        assert!((100.0..200.0).contains(&mean), "predictions average {mean}, the target's mean is about 152");
    }
}
