//! The training loop. Like argmin's `Executor`, the [`Trainer`] owns the loop
//! so that every model and optimizer gets the same epochs, mini-batches,
//! logging, convergence and divergence checks, observers and termination
//! reasons.

use gradus_data::{Batches, Dataset, Matrix, Target, seeded_rng};
use serde::{Deserialize, Serialize};

use crate::{Loss, Model, OptimizerConfig, Targets, TrainError, regularised_loss_and_grad};

/// Hyperparameters of one training run.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `optimizer` | Adam | update rule |
/// | `lr` | 1e-3 | learning rate, > 0 |
/// | `epochs` | 100 | passes over the training set, ≥ 1 |
/// | `batch_size` | `Some(32)` | rows per step; `None` = the whole set (forced for GD) |
/// | `l2` | 0 | penalty `l2/2·‖w‖²` on weights, ≥ 0 |
/// | `tol` | 1e-6 | stop (Converged) when the epoch loss changes by less; 0 disables |
/// | `max_iter` | `None` | stop after this many optimizer steps |
/// | `seed` | 0 | seeds initialisation and batch order |
/// | `log_every` | 0 | call [`Observer::on_step`] every N steps; 0 never |
/// | `divergence_threshold` | 1e10 | a parameter beyond ± this means Diverged |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub optimizer: OptimizerConfig,
    pub lr: f32,
    pub epochs: usize,
    pub batch_size: Option<usize>,
    pub l2: f32,
    pub tol: f64,
    pub max_iter: Option<usize>,
    pub seed: u64,
    pub log_every: usize,
    pub divergence_threshold: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerConfig::adam(),
            lr: 1e-3,
            epochs: 100,
            batch_size: Some(32),
            l2: 0.0,
            tol: 1e-6,
            max_iter: None,
            seed: 0,
            log_every: 0,
            divergence_threshold: 1e10,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(TrainError::invalid("lr", self.lr, "must be a finite number > 0"));
        }
        if self.epochs == 0 {
            return Err(TrainError::invalid("epochs", 0, "must be at least 1"));
        }
        if self.batch_size == Some(0) {
            return Err(TrainError::invalid("batch size", 0, "must be at least 1"));
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(TrainError::invalid("l2", self.l2, "must be a finite number >= 0"));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(TrainError::invalid("tol", self.tol, "must be a finite number >= 0"));
        }
        if self.max_iter == Some(0) {
            return Err(TrainError::invalid("max iterations", 0, "must be at least 1"));
        }
        if self.divergence_threshold.is_nan() || self.divergence_threshold <= 0.0 {
            return Err(TrainError::invalid("divergence threshold", self.divergence_threshold, "must be > 0"));
        }
        self.optimizer.validate()
    }
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// The epoch loss changed by less than `tol`.
    Converged,
    MaxEpochs,
    MaxIterations,
    /// An observer stopped training on a validation metric.
    EarlyStopped,
    /// An observer (a tuner's pruner) stopped an unpromising run.
    Pruned,
    /// The loss became NaN or infinite, or a parameter exploded.
    Diverged,
    /// An observer stopped training for another reason (a signal, a time-out).
    Interrupted,
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Termination::Converged => "converged",
            Termination::MaxEpochs => "max epochs",
            Termination::MaxIterations => "max iterations",
            Termination::EarlyStopped => "early stopped",
            Termination::Pruned => "pruned",
            Termination::Diverged => "diverged",
            Termination::Interrupted => "interrupted",
        })
    }
}

/// What an observer tells the trainer after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop(Termination),
}

/// One optimizer step, as passed to [`Observer::on_step`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StepLog {
    pub step: usize,
    pub epoch: usize,
    /// The batch objective before this step's update.
    pub loss: f64,
    pub grad_norm: f64,
}

/// One finished epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub steps: usize,
    /// The mean objective (loss + penalty) over the epoch's batches, each
    /// evaluated before its update.
    pub train_loss: f64,
    /// The loss on the validation set after the epoch, when one was given.
    pub valid_loss: Option<f64>,
}

/// Watches training; the single hook through which a tuner sees it.
pub trait Observer {
    /// Called every `log_every` steps (and at step 0) when `log_every > 0`.
    fn on_step(&mut self, _log: &StepLog) {}
    /// Called after each epoch; may stop training.
    fn on_epoch(&mut self, _record: &EpochRecord) -> Control {
        Control::Continue
    }
}

/// An observer that watches nothing.
pub struct NoObserver;

impl Observer for NoObserver {}

/// The outcome of [`Trainer::fit`]; the trained parameters are in the model.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub termination: Termination,
    pub epochs: usize,
    pub steps: usize,
    /// The last objective value seen (NaN or infinite when Diverged on it).
    pub final_loss: f64,
    pub history: Vec<EpochRecord>,
}

/// Runs the training loop with a validated [`TrainConfig`].
#[derive(Clone, Debug)]
pub struct Trainer {
    config: TrainConfig,
}

impl Trainer {
    pub fn new(config: TrainConfig) -> Result<Self, TrainError> {
        config.validate()?;
        Ok(Self { config })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Initialises `model` from the seed and trains it on `train` with `loss`,
    /// computing the validation loss after each epoch when `valid` is given.
    pub fn fit(
        &self,
        model: &mut dyn Model,
        loss: Loss,
        train: &Dataset,
        valid: Option<&Dataset>,
        observer: &mut dyn Observer,
    ) -> Result<TrainReport, TrainError> {
        let cfg = &self.config;
        for (part, data) in std::iter::once(("training", train)).chain(valid.map(|v| ("validation", v))) {
            if data.n_features() != model.n_inputs() {
                return Err(TrainError::Mismatch(format!(
                    "the {part} data has {} features, the model takes {}",
                    data.n_features(),
                    model.n_inputs()
                )));
            }
            loss.check(model.n_outputs(), &data.y)?;
        }
        let n = train.n_samples();
        if n == 0 {
            return Err(TrainError::Mismatch("the training data has no rows".into()));
        }

        let mut rng = seeded_rng(cfg.seed);
        model.init_params(&mut rng);
        let mut optimizer = cfg.optimizer.build(model.params().len())?;
        let batch_size = match cfg.batch_size {
            Some(b) if !cfg.optimizer.is_full_batch() => b.min(n),
            _ => n,
        };
        let mut batches = Batches::new(n, batch_size)?;
        let mut grad = vec![0.0f32; model.params().len()];
        let mut batch_x = Matrix::zeros(0, train.n_features());
        let mut batch_y = match &train.y {
            Target::Real(_) => Target::Real(Vec::new()),
            Target::Classes { classes, .. } => Target::Classes { labels: Vec::new(), classes: classes.clone() },
        };

        let mut history = Vec::new();
        let mut steps = 0usize;
        let mut final_loss = f64::NAN;
        let mut termination = Termination::MaxEpochs;
        'epochs: for epoch in 0..cfg.epochs {
            if batch_size < n {
                batches.shuffle(&mut rng);
            }
            let mut weighted_loss = 0.0;
            for rows in batches.iter() {
                let value = if batch_size == n {
                    regularised_loss_and_grad(model, train.x.view(), (&train.y).into(), loss, cfg.l2, &mut grad)
                } else {
                    train.x.gather_rows_into(rows, &mut batch_x);
                    gather_target(&train.y, rows, &mut batch_y);
                    regularised_loss_and_grad(model, batch_x.view(), (&batch_y).into(), loss, cfg.l2, &mut grad)
                };
                final_loss = value;
                if cfg.log_every > 0 && steps.is_multiple_of(cfg.log_every) {
                    let grad_norm = grad.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>().sqrt();
                    observer.on_step(&StepLog { step: steps, epoch, loss: value, grad_norm });
                }
                if !value.is_finite() {
                    termination = Termination::Diverged;
                    break 'epochs;
                }
                optimizer.step(model.params_mut(), &grad, cfg.lr);
                steps += 1;
                weighted_loss += value * rows.len() as f64;
                if exploded(model.params(), cfg.divergence_threshold) {
                    termination = Termination::Diverged;
                    break 'epochs;
                }
                if cfg.max_iter == Some(steps) {
                    termination = Termination::MaxIterations;
                    break;
                }
            }
            let record = EpochRecord {
                epoch,
                steps,
                train_loss: weighted_loss / n as f64,
                valid_loss: valid.map(|v| validation_loss(model, loss, v)),
            };
            history.push(record);
            if let Control::Stop(reason) = observer.on_epoch(&record) {
                termination = reason;
                break;
            }
            if termination == Termination::MaxIterations {
                break;
            }
            if let [.., prev, last] = history.as_slice()
                && cfg.tol > 0.0
                && (prev.train_loss - last.train_loss).abs() < cfg.tol
            {
                termination = Termination::Converged;
                break;
            }
        }
        Ok(TrainReport { termination, epochs: history.len(), steps, final_loss, history })
    }
}

fn gather_target(y: &Target, rows: &[usize], out: &mut Target) {
    match (y, out) {
        (Target::Real(src), Target::Real(dst)) => {
            dst.clear();
            dst.extend(rows.iter().map(|&i| src[i]));
        }
        (Target::Classes { labels: src, .. }, Target::Classes { labels: dst, .. }) => {
            dst.clear();
            dst.extend(rows.iter().map(|&i| src[i]));
        }
        _ => unreachable!("the batch target is built with the training target's kind"),
    }
}

fn exploded(params: &[f32], threshold: f32) -> bool {
    params.iter().any(|p| p.is_nan() || p.abs() > threshold)
}

fn validation_loss(model: &dyn Model, loss: Loss, data: &Dataset) -> f64 {
    let mut out = vec![0.0; data.n_samples() * model.n_outputs()];
    model.predict(data.x.view(), &mut out);
    loss.value(&out, model.n_outputs(), Targets::from(&data.y))
}
