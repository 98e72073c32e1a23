//! The training loop. Like argmin's `Executor`, the [`Trainer`] owns the loop
//! so that every model and optimizer gets the same epochs, mini-batches,
//! schedules, clipping, early stopping, logging, convergence and divergence
//! checks, observers and termination reasons.

use gradus_data::{Batches, Dataset, Inputs, Matrix, SparseRows, Target, seeded_rng};
use serde::{Deserialize, Serialize};

use crate::{
    Loss, Metric, Model, Optimizer, OptimizerConfig, Penalty, Schedule, Scheduler, Targets, TrainError,
    regularised_loss_and_grad,
};
use gradus_optim::{IterationOutcome, Lbfgs};

/// Stop when the validation loss has not improved for a while (it needs a
/// validation set).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping, ≥ 1.
    pub patience: usize,
    /// The least decrease of the validation loss that counts as improvement.
    pub min_delta: f64,
    /// Put back the weights of the best epoch when training ends.
    pub restore_best: bool,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> Self {
        Self { patience, min_delta: 0.0, restore_best: true }
    }
}

/// Hyperparameters of one training run.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `optimizer` | Adam | update rule |
/// | `lr` | 1e-3 | learning rate, > 0 (unused by L-BFGS) |
/// | `schedule` | constant | learning rate per epoch |
/// | `epochs` | 100 | passes over the training set (L-BFGS: iterations), ≥ 1 |
/// | `batch_size` | `Some(32)` | rows per step; `None` = the whole set (forced for GD and L-BFGS) |
/// | `l1` | 0 | penalty `l1·‖w‖₁` on weights, ≥ 0 |
/// | `l2` | 0 | penalty `l2/2·‖w‖²` on weights, ≥ 0 |
/// | `clip_norm` | `None` | rescale each gradient to at most this L2 norm |
/// | `early_stopping` | `None` | patience on the validation loss |
/// | `tol` | 1e-6 | stop (Converged) when the epoch loss has not beaten its best by `tol` … |
/// | `n_iter_no_change` | 5 | … for this many epochs in a row (scikit-learn's rule) and is still at its best; ≥ 1 |
/// | `max_iter` | `None` | stop after this many optimizer steps |
/// | `seed` | 0 | seeds initialisation, dropout and batch order |
/// | `log_every` | 0 | call [`Observer::on_step`] every N steps; 0 never |
/// | `divergence_threshold` | 1e10 | a parameter beyond ± this means Diverged |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub optimizer: OptimizerConfig,
    pub lr: f32,
    pub schedule: Schedule,
    pub epochs: usize,
    pub batch_size: Option<usize>,
    pub l1: f32,
    pub l2: f32,
    pub clip_norm: Option<f32>,
    pub early_stopping: Option<EarlyStopping>,
    pub tol: f64,
    pub n_iter_no_change: usize,
    pub max_iter: Option<usize>,
    pub seed: u64,
    pub log_every: usize,
    pub divergence_threshold: f32,
    /// A metric measured on the validation set after every epoch, beside
    /// the loss ([`EpochRecord::valid_score`]); early stopping stays on the loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Metric>,
    /// A weight per class for the training loss (scikit-learn's
    /// `class_weight`): each training row's loss and gradient count its
    /// class's weight. The validation loss stays unweighted: it measures
    /// the model, not the objective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f32>>,
    /// An epoch of at most this many rows (in whole batches) instead of a
    /// full pass (Keras's `steps_per_epoch`): rows are still drawn pass
    /// after pass in a fresh shuffled order, but the epoch's end — the
    /// validation loss, early stopping, the schedule, the observer — comes
    /// every so many rows, so on a large table a run is judged and stopped
    /// at a cost that does not grow with the table. Full-batch optimizers
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_rows: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerConfig::adam(),
            lr: 1e-3,
            schedule: Schedule::Constant,
            epochs: 100,
            batch_size: Some(32),
            l1: 0.0,
            l2: 0.0,
            clip_norm: None,
            early_stopping: None,
            tol: 1e-6,
            n_iter_no_change: 5,
            max_iter: None,
            seed: 0,
            log_every: 0,
            divergence_threshold: 1e10,
            monitor: None,
            class_weights: None,
            epoch_rows: None,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), TrainError> {
        let non_negative = |name, v: f32| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(TrainError::invalid(name, v, "must be a finite number >= 0"))
            }
        };
        if self.epoch_rows == Some(0) {
            return Err(TrainError::invalid("epoch rows", 0, "must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(TrainError::invalid("lr", self.lr, "must be a finite number > 0"));
        }
        if self.epochs == 0 {
            return Err(TrainError::invalid("epochs", 0, "must be at least 1"));
        }
        if self.batch_size == Some(0) {
            return Err(TrainError::invalid("batch size", 0, "must be at least 1"));
        }
        non_negative("l1", self.l1)?;
        non_negative("l2", self.l2)?;
        if let Some(c) = self.clip_norm
            && !(c > 0.0 && c.is_finite())
        {
            return Err(TrainError::invalid("clip norm", c, "must be a finite number > 0"));
        }
        if let Some(es) = &self.early_stopping {
            if es.patience == 0 {
                return Err(TrainError::invalid("patience", 0, "must be at least 1"));
            }
            if !(es.min_delta >= 0.0 && es.min_delta.is_finite()) {
                return Err(TrainError::invalid("min delta", es.min_delta, "must be a finite number >= 0"));
            }
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(TrainError::invalid("tol", self.tol, "must be a finite number >= 0"));
        }
        if self.n_iter_no_change == 0 {
            return Err(TrainError::invalid("n_iter_no_change", 0, "must be at least 1"));
        }
        if self.max_iter == Some(0) {
            return Err(TrainError::invalid("max iterations", 0, "must be at least 1"));
        }
        if self.divergence_threshold.is_nan() || self.divergence_threshold <= 0.0 {
            return Err(TrainError::invalid("divergence threshold", self.divergence_threshold, "must be > 0"));
        }
        self.schedule.validate()?;
        self.optimizer.validate()
    }

    fn penalty(&self) -> Penalty {
        Penalty { l1: self.l1, l2: self.l2 }
    }
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// The epoch loss changed by less than `tol` (or L-BFGS could not descend further).
    Converged,
    MaxEpochs,
    MaxIterations,
    /// The validation loss stopped improving (early stopping).
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
    /// The gradient's L2 norm before clipping.
    pub grad_norm: f64,
    pub lr: f32,
}

/// One finished epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub steps: usize,
    pub lr: f32,
    /// The mean objective (loss + penalties) over the epoch's batches, each
    /// evaluated before its update (L-BFGS: the objective after the iteration).
    pub train_loss: f64,
    /// The loss on the validation set after the epoch, when one was given.
    pub valid_loss: Option<f64>,
    /// [`TrainConfig::monitor`]'s metric on the validation set after the
    /// epoch, when both were given (and the metric is defined there).
    pub valid_score: Option<f64>,
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
    /// With early stopping: the epoch whose validation loss was best.
    pub best_epoch: Option<usize>,
    pub best_valid_loss: Option<f64>,
    pub history: Vec<EpochRecord>,
    /// Wall time of the loop: the steps and the per-epoch validation, not
    /// the checks before it.
    pub seconds: f64,
}

/// Runs the training loop with a validated [`TrainConfig`].
#[derive(Clone, Debug)]
pub struct Trainer {
    config: TrainConfig,
}

/// How one epoch ended, before the end-of-epoch checks.
enum EpochEnd {
    Completed,
    MaxIterations,
    Diverged,
    Converged,
}

/// The state of the update rule across epochs.
enum Engine {
    FirstOrder(Box<dyn Optimizer>),
    /// L-BFGS works in f64; the model holds the f32 rounding of `x`.
    Lbfgs {
        state: Lbfgs,
        x: Vec<f64>,
    },
}

/// Early-stopping bookkeeping.
struct BestSoFar {
    loss: f64,
    epoch: Option<usize>,
    params: Vec<f32>,
    wait: usize,
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
        self.fit_to(model, loss, train, None, valid, observer)
    }

    /// [`Self::fit`] with the training loss taken against `soft` targets —
    /// probabilities, [`Targets::Soft`]'s layout, row for row with `train` —
    /// instead of its labels: knowledge distillation (Hinton et al. 2015),
    /// a teacher's predictions as the targets. Validation, early stopping
    /// and the metrics still read the labels of `valid`.
    pub fn fit_soft(
        &self,
        model: &mut dyn Model,
        loss: Loss,
        train: &Dataset,
        soft: &[f32],
        valid: Option<&Dataset>,
        observer: &mut dyn Observer,
    ) -> Result<TrainReport, TrainError> {
        let n = train.n_samples();
        if !matches!(loss, Loss::SoftmaxCrossEntropy | Loss::BinaryCrossEntropy) {
            return Err(TrainError::Mismatch(format!("soft targets need a cross-entropy loss, not {}", loss.name())));
        }
        if soft.len() != n * model.n_outputs() {
            return Err(TrainError::Mismatch(format!(
                "{} soft targets for {n} rows of {} outputs",
                soft.len(),
                model.n_outputs()
            )));
        }
        if let Some(bad) = soft.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(TrainError::Mismatch(format!("a soft target must be a probability in [0, 1], got {bad}")));
        }
        // Softmax's −Σ p·log q and its gradient q − p hold for rows that sum to 1.
        let k = model.n_outputs();
        if loss == Loss::SoftmaxCrossEntropy
            && let Some((i, row)) =
                soft.chunks_exact(k).enumerate().find(|(_, r)| (r.iter().sum::<f32>() - 1.0).abs() > 1e-3)
        {
            return Err(TrainError::Mismatch(format!(
                "soft targets of row {i} sum to {}, not 1",
                row.iter().sum::<f32>()
            )));
        }
        if self.config.class_weights.is_some() {
            return Err(TrainError::Mismatch("class weights apply to labels, not to soft targets".into()));
        }
        self.fit_to(model, loss, train, Some(soft), valid, observer)
    }

    fn fit_to(
        &self,
        model: &mut dyn Model,
        loss: Loss,
        train: &Dataset,
        soft: Option<&[f32]>,
        valid: Option<&Dataset>,
        observer: &mut dyn Observer,
    ) -> Result<TrainReport, TrainError> {
        let cfg = &self.config;
        if model.is_quantized() {
            return Err(TrainError::Mismatch(
                "an int8 model predicts only; train or fine-tune the model it came from".into(),
            ));
        }
        for (part, data) in std::iter::once(("training", train)).chain(valid.map(|v| ("validation", v))) {
            if data.n_features() != model.n_inputs() {
                return Err(TrainError::Mismatch(format!(
                    "the {part} data has {} features, the model takes {}",
                    data.n_features(),
                    model.n_inputs()
                )));
            }
            if data.n_sparse_features() != model.n_sparse_inputs() {
                return Err(TrainError::Mismatch(format!(
                    "the {part} data has {} sparse features, the model takes {}",
                    data.n_sparse_features(),
                    model.n_sparse_inputs()
                )));
            }
            loss.check(model.n_outputs(), &data.y)?;
        }
        let n = train.n_samples();
        if n == 0 {
            return Err(TrainError::Mismatch("the training data has no rows".into()));
        }
        if cfg.early_stopping.is_some() && valid.is_none_or(|v| v.n_samples() == 0) {
            return Err(TrainError::Mismatch("early stopping needs a validation set".into()));
        }
        if let Some(w) = &cfg.class_weights {
            let Target::Classes { classes, .. } = &train.y else {
                return Err(TrainError::Mismatch("class weights need a class target".into()));
            };
            if w.len() != classes.len() || w.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(TrainError::Mismatch(format!(
                    "class weights must be {} finite numbers > 0, one per class; got {w:?}",
                    classes.len()
                )));
            }
        }

        let mut rng = seeded_rng(cfg.seed);
        model.init_params(&mut rng);
        let mut engine = match (cfg.optimizer.build(model.params().len())?, &cfg.optimizer) {
            (Some(optimizer), _) => Engine::FirstOrder(optimizer),
            (None, OptimizerConfig::Lbfgs { history }) => {
                Engine::Lbfgs { state: Lbfgs::new(*history), x: model.params().iter().map(|&p| p as f64).collect() }
            }
            (None, other) => unreachable!("{other:?} builds a first-order optimizer"),
        };
        let batch_size = match cfg.batch_size {
            Some(b) if !cfg.optimizer.is_full_batch() => b.min(n),
            _ => n,
        };
        let mut batches = Batches::new(n, batch_size)?;
        // An epoch is a pass over the rows, or `epoch_rows` of them (whole
        // batches) taken in turn from passes in shuffled order.
        let batches_per_epoch = match cfg.epoch_rows {
            Some(rows) if batch_size < n && rows < n => rows.div_ceil(batch_size),
            _ => batches.len(),
        };
        // The next batch of the current pass; at the end, a new pass begins.
        let mut next_batch = batches.len();
        let mut scheduler = Scheduler::new(cfg.schedule.clone(), cfg.lr, cfg.epochs);
        let mut grad = vec![0.0f32; model.params().len()];
        let mut frozen_values = Vec::new();
        let mut touched: Vec<std::ops::Range<usize>> = Vec::new();
        let mut batch_x = Matrix::zeros(0, train.n_features());
        let mut batch_sparse = SparseRows::new(train.n_sparse_features());
        let mut rows: Vec<usize> = Vec::with_capacity(batch_size);
        // Full-batch training reads every row's inputs at each step: held whole.
        let full_inputs = (batch_size == n).then(|| train.dense_inputs());
        let full_sparse = train.sparse.as_ref().map(SparseRows::view);
        let mut batch_y = empty_like(&train.y);
        let k = model.n_outputs();
        let mut batch_soft: Vec<f32> = Vec::new();
        // The targets of the whole training set.
        let all_targets = || match soft {
            Some(p) => Targets::Soft(p, k),
            None => training_targets(&train.y, cfg.class_weights.as_deref()),
        };
        let mut best = BestSoFar { loss: f64::INFINITY, epoch: None, params: Vec::new(), wait: 0 };

        let started = std::time::Instant::now();
        let mut history: Vec<EpochRecord> = Vec::new();
        let mut best_train_loss = f64::INFINITY;
        let mut epochs_without_progress = 0;
        let mut steps = 0usize;
        let mut final_loss = f64::NAN;
        let mut termination = Termination::MaxEpochs;
        for epoch in 0..cfg.epochs {
            let lr = scheduler.lr(epoch);
            // The epoch's loss, weighted by rows (an epoch cut short by
            // max_iter is averaged over the rows it did see).
            let mut epoch_loss = 0.0;
            let mut epoch_rows = 0usize;
            let end = match &mut engine {
                Engine::FirstOrder(optimizer) => {
                    let mut end = EpochEnd::Completed;
                    for _ in 0..batches_per_epoch {
                        // A new pass over the rows: a new order.
                        if next_batch == batches.len() {
                            if batch_size < n {
                                batches.shuffle(&mut rng);
                            }
                            next_batch = 0;
                        }
                        rows.clear();
                        rows.extend(batches.batch(next_batch).iter().map(|&r| r as usize));
                        let rows = rows.as_slice();
                        next_batch += 1;
                        let value = if batch_size == n {
                            regularised_loss_and_grad(
                                model,
                                Inputs::new(full_inputs.as_ref().expect("a full batch").view(), full_sparse),
                                all_targets(),
                                loss,
                                cfg.penalty(),
                                &mut grad,
                            )
                        } else {
                            train.gather_inputs(rows, &mut batch_x);
                            let sparse = train.gather_sparse(rows, &mut batch_sparse).then(|| batch_sparse.view());
                            let targets = match soft {
                                Some(p) => {
                                    batch_soft.clear();
                                    batch_soft.extend(rows.iter().flat_map(|&r| &p[r * k..(r + 1) * k]));
                                    Targets::Soft(&batch_soft, k)
                                }
                                None => {
                                    gather_target(&train.y, rows, &mut batch_y);
                                    training_targets(&batch_y, cfg.class_weights.as_deref())
                                }
                            };
                            regularised_loss_and_grad(
                                model,
                                Inputs::new(batch_x.view(), sparse),
                                targets,
                                loss,
                                cfg.penalty(),
                                &mut grad,
                            )
                        };
                        final_loss = value;
                        let log = cfg.log_every > 0 && steps.is_multiple_of(cfg.log_every);
                        // The norm costs a pass over the gradient: only when it is used.
                        // A sparse model's gradient is zero outside the ranges it names.
                        touched.clear();
                        touched.extend(model.sparse_grad().into_iter().flatten().cloned());
                        let sparse_step = model.sparse_grad().is_some();
                        let grad_norm = match (log || cfg.clip_norm.is_some(), sparse_step) {
                            (false, _) => f64::NAN,
                            (true, false) => norm(&grad),
                            (true, true) => touched.iter().map(|r| norm(&grad[r.clone()]).powi(2)).sum::<f64>().sqrt(),
                        };
                        if log {
                            observer.on_step(&StepLog { step: steps, epoch, loss: value, grad_norm, lr });
                        }
                        if !value.is_finite() || grad_norm.is_infinite() {
                            end = EpochEnd::Diverged;
                            break;
                        }
                        if let Some(c) = cfg.clip_norm
                            && grad_norm > c as f64
                        {
                            let scale = (c as f64 / grad_norm) as f32;
                            if sparse_step {
                                touched.iter().for_each(|r| grad[r.clone()].iter_mut().for_each(|g| *g *= scale));
                            } else {
                                grad.iter_mut().for_each(|g| *g *= scale);
                            }
                        }
                        let touched = sparse_step.then_some(touched.as_slice());
                        step_keeping_frozen(optimizer.as_mut(), model, &grad, lr, touched, &mut frozen_values);
                        steps += 1;
                        epoch_loss += value * rows.len() as f64;
                        epoch_rows += rows.len();
                        if cfg.max_iter == Some(steps) {
                            end = EpochEnd::MaxIterations;
                            break;
                        }
                    }
                    end
                }
                Engine::Lbfgs { state, x } => {
                    let penalty = cfg.penalty();
                    let mut objective = |p: &[f64], g: &mut [f64]| {
                        model.params_mut().iter_mut().zip(p).for_each(|(m, &v)| *m = v as f32);
                        let value = regularised_loss_and_grad(
                            model,
                            Inputs::new(full_inputs.as_ref().expect("a full batch").view(), full_sparse),
                            all_targets(),
                            loss,
                            penalty,
                            &mut grad,
                        );
                        g.iter_mut().zip(&grad).for_each(|(g, &v)| *g = v as f64);
                        value
                    };
                    let outcome = state.iterate(x, &mut objective);
                    model.params_mut().iter_mut().zip(x.iter()).for_each(|(m, &v)| *m = v as f32);
                    let value = state.value().unwrap_or(f64::NAN);
                    final_loss = value;
                    epoch_loss = value;
                    epoch_rows = 1;
                    if cfg.log_every > 0 && steps.is_multiple_of(cfg.log_every) {
                        let grad_norm = state.gradient().iter().map(|g| g * g).sum::<f64>().sqrt();
                        observer.on_step(&StepLog { step: steps, epoch, loss: value, grad_norm, lr });
                    }
                    steps += 1;
                    if !value.is_finite() || exploded(model.params(), cfg.divergence_threshold) {
                        EpochEnd::Diverged
                    } else if matches!(outcome, IterationOutcome::Stalled { .. }) {
                        EpochEnd::Converged
                    } else if cfg.max_iter == Some(steps) {
                        EpochEnd::MaxIterations
                    } else {
                        EpochEnd::Completed
                    }
                }
            };
            // Exploding weights are caught once an epoch (a non-finite loss at
            // once, every step): a pass over all parameters per step costs as
            // much as a small model's update.
            if matches!(end, EpochEnd::Diverged) || exploded(model.params(), cfg.divergence_threshold) {
                termination = Termination::Diverged;
                break;
            }

            let (valid_loss, valid_score) = match valid {
                Some(v) => {
                    let (l, s) = validation(model, loss, v, cfg.monitor);
                    (Some(l), s)
                }
                None => (None, None),
            };
            let record = EpochRecord {
                epoch,
                steps,
                lr,
                train_loss: epoch_loss / epoch_rows.max(1) as f64,
                valid_loss,
                valid_score,
            };
            history.push(record);
            scheduler.observe(record.valid_loss.unwrap_or(record.train_loss));
            // This epoch counts towards the best weights before the observer
            // may stop training, so that a run it stops keeps this epoch if
            // it is the best; the observer's reason to stop comes first.
            let mut patience_spent = false;
            if let (Some(es), Some(v)) = (&cfg.early_stopping, record.valid_loss) {
                if v < best.loss - es.min_delta {
                    best.loss = v;
                    best.epoch = Some(epoch);
                    best.wait = 0;
                    if es.restore_best {
                        best.params.clear();
                        best.params.extend_from_slice(model.params());
                    }
                } else {
                    best.wait += 1;
                    patience_spent = best.wait >= es.patience;
                }
            }
            if let Control::Stop(reason) = observer.on_epoch(&record) {
                termination = reason;
                break;
            }
            if patience_spent {
                termination = Termination::EarlyStopped;
                break;
            }
            match end {
                EpochEnd::MaxIterations => {
                    termination = Termination::MaxIterations;
                    break;
                }
                EpochEnd::Converged => {
                    termination = Termination::Converged;
                    break;
                }
                _ => {}
            }
            // scikit-learn's rule — converged once the loss has failed to beat
            // its best by tol for n_iter_no_change epochs in a row, which a
            // noisy mini-batch loss crossing its previous value cannot fake —
            // and the loss must still sit at its best: a rising loss (a step
            // too large) is not convergence.
            if cfg.tol > 0.0 {
                if record.train_loss > best_train_loss - cfg.tol {
                    epochs_without_progress += 1;
                } else {
                    epochs_without_progress = 0;
                }
                best_train_loss = best_train_loss.min(record.train_loss);
                let at_best = record.train_loss <= best_train_loss + cfg.tol.max(1e-4 * best_train_loss.abs());
                if epochs_without_progress >= cfg.n_iter_no_change && at_best {
                    termination = Termination::Converged;
                    break;
                }
            }
        }
        if !best.params.is_empty() {
            model.params_mut().copy_from_slice(&best.params);
        }
        Ok(TrainReport {
            termination,
            epochs: history.len(),
            steps,
            final_loss,
            best_epoch: best.epoch,
            best_valid_loss: best.epoch.map(|_| best.loss),
            history,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// The targets the training loss sees: class labels with their classes'
/// weights when there are any.
fn training_targets<'a>(y: &'a Target, class_weights: Option<&'a [f32]>) -> Targets<'a> {
    match (y, class_weights) {
        (Target::Classes { labels, .. }, Some(w)) => Targets::Weighted(labels, w),
        _ => y.into(),
    }
}

fn empty_like(y: &Target) -> Target {
    match y {
        Target::Real(_) => Target::Real(Vec::new()),
        Target::Classes { classes, .. } => Target::Classes { labels: Vec::new(), classes: classes.clone() },
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

/// An optimizer step on `model` that leaves its frozen parameters (see
/// [`Model::frozen`]) as they were: copied out before, back after (`saved`
/// is the caller's buffer). With `touched` (a sparse gradient), only those
/// ranges step.
fn step_keeping_frozen(
    optimizer: &mut dyn Optimizer,
    model: &mut dyn Model,
    grad: &[f32],
    lr: f32,
    touched: Option<&[std::ops::Range<usize>]>,
    saved: &mut Vec<f32>,
) {
    let frozen = model.frozen().to_vec();
    saved.clear();
    for r in &frozen {
        saved.extend_from_slice(&model.params()[r.clone()]);
    }
    match touched {
        None => optimizer.step(model.params_mut(), grad, lr),
        Some(ranges) => optimizer.step_ranges(model.params_mut(), grad, lr, ranges),
    }
    let mut at = 0;
    for r in frozen {
        let len = r.len();
        model.params_mut()[r].copy_from_slice(&saved[at..at + len]);
        at += len;
    }
}

/// The L2 norm, summed in eight f64 lanes (so it vectorises and cannot
/// overflow for any finite f32 gradient).
fn norm(v: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut blocks = v.chunks_exact(8);
    for block in &mut blocks {
        for (l, &x) in lanes.iter_mut().zip(block) {
            *l += (x as f64) * (x as f64);
        }
    }
    let rest: f64 = blocks.remainder().iter().map(|&x| (x as f64) * (x as f64)).sum();
    (lanes.iter().sum::<f64>() + rest).sqrt()
}

crate::simd::multiversion! {
    /// Whether any parameter is NaN or beyond ±threshold; without early exit so
    /// that the scan vectorises.
    fn exploded(params: &[f32], threshold: f32) -> bool {
        params.iter().fold(false, |bad, p| bad | p.is_nan() | (p.abs() > threshold))
    }
}

/// The loss on `data`, and `monitor`'s metric when asked (and defined).
fn validation(model: &dyn Model, loss: Loss, data: &Dataset, monitor: Option<Metric>) -> (f64, Option<f64>) {
    let k = model.n_outputs();
    let out = crate::metrics::predict_dataset(model, data);
    let score = monitor.and_then(|m| m.of(&crate::metrics::metrics_of_outputs(&out, k, loss, &data.y).ok()?));
    (loss.value(&out, k, Targets::from(&data.y)), score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, Augment, CnnSpec, ConvStage, Network, OptimizerConfig, Pooling};
    use gradus_data::{MatRef, seeded_rng};
    use rand::Rng as _;

    #[test]
    fn a_step_moves_the_weights_but_leaves_the_running_statistics_as_training_set_them() {
        let spec = CnnSpec {
            input: [1, 4, 4],
            conv: vec![ConvStage { channels: 2, kernel: 3, stride: 1, padding: 1, pool: 2, pooling: Pooling::Max }],
            global_pool: false,
            hidden: vec![],
            n_outputs: 2,
            activation: Activation::Relu,
            dropout: 0.0,
            augment: Augment::default(),
            batch_norm: true,
        };
        let mut model = Network::cnn(&spec).unwrap();
        model.init_params(&mut seeded_rng(3));
        let frozen = model.frozen().to_vec();
        assert_eq!(frozen.len(), 1);
        assert_eq!(model.params()[frozen[0].clone()], [0.0, 0.0, 1.0, 1.0], "running mean 0, variance 1");
        let mut rng = seeded_rng(4);
        let x: Vec<f32> = (0..6 * 16).map(|_| rng.random_range(0.0f32..3.0)).collect();
        let labels = [0u32, 1, 0, 1, 1, 0];
        let mut grad = vec![0.0; model.params().len()];
        let targets = Targets::Classes(&labels);
        model.forward_backward(MatRef::new(&x, 6, 16).unwrap().into(), targets, Loss::SoftmaxCrossEntropy, &mut grad);
        let after_forward = model.params().to_vec();
        assert!(after_forward[frozen[0].clone()].iter().zip([0.0, 0.0, 1.0, 1.0]).all(|(a, b)| *a != b), "updated");
        assert!(grad[frozen[0].clone()].iter().all(|&g| g == 0.0), "no gradient reaches them");
        // AdamW with a strong decay would shrink every parameter it steps.
        let mut optimizer = OptimizerConfig::adamw(0.5).build(model.params().len()).unwrap().unwrap();
        step_keeping_frozen(optimizer.as_mut(), &mut model, &grad, 0.1, None, &mut Vec::new());
        assert_eq!(model.params()[frozen[0].clone()], after_forward[frozen[0].clone()], "the statistics are kept");
        assert!(model.params()[..frozen[0].start].iter().zip(&after_forward).any(|(a, b)| a != b), "weights moved");
    }

    /// Rows of two features and a label, with the probability of class 1
    /// that a logistic model with weights (1.5, −2) and bias 0.5 gives.
    fn teacher_rows(n: usize) -> (Dataset, Vec<f32>) {
        let mut rng = seeded_rng(11);
        let x: Vec<f32> = (0..2 * n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let p: Vec<f32> = x.chunks_exact(2).map(|r| crate::loss::sigmoid(1.5 * r[0] - 2.0 * r[1] + 0.5)).collect();
        let labels = p.iter().map(|&q| u32::from(q > 0.5)).collect();
        let y = Target::Classes { labels, classes: vec!["a".into(), "b".into()] };
        let names = ["x0".to_string(), "x1".to_string()];
        (Dataset::numeric("teacher", Matrix::from_vec(n, 2, x).unwrap(), y, &names, "y"), p)
    }

    #[test]
    fn a_student_of_a_teachers_probabilities_learns_the_teachers_weights() {
        // −Σ p log q is least where q = p: a logistic student of a logistic
        // teacher's probabilities recovers its weights, which its labels
        // alone (separable rows) would send to infinity.
        let (data, p) = teacher_rows(400);
        let config = TrainConfig {
            optimizer: OptimizerConfig::Lbfgs { history: 10 },
            epochs: 200,
            tol: 0.0,
            ..TrainConfig::default()
        };
        let trainer = Trainer::new(config).unwrap();
        let mut student = crate::LinearModel::new(2, 1, true);
        trainer.fit_soft(&mut student, Loss::BinaryCrossEntropy, &data, &p, None, &mut crate::NoObserver).unwrap();
        let w = student.params();
        for (got, want) in w.iter().zip([1.5f32, -2.0, 0.5]) {
            assert!((got - want).abs() < 1e-3, "{w:?}");
        }
        // Softmax over two outputs: the logits' difference is the teacher's.
        let two: Vec<f32> = p.iter().flat_map(|&q| [1.0 - q, q]).collect();
        let mut student = crate::LinearModel::new(2, 2, true);
        trainer.fit_soft(&mut student, Loss::SoftmaxCrossEntropy, &data, &two, None, &mut crate::NoObserver).unwrap();
        let w = student.params();
        let diff = [w[1] - w[0], w[3] - w[2], w[5] - w[4]];
        for (got, want) in diff.iter().zip([1.5f32, -2.0, 0.5]) {
            assert!((got - want).abs() < 1e-3, "{w:?}");
        }
    }

    #[test]
    fn one_hot_soft_targets_train_as_the_labels_do_and_bad_ones_are_refused() {
        let (data, p) = teacher_rows(300);
        let config = TrainConfig { epochs: 5, batch_size: Some(32), seed: 3, ..TrainConfig::default() };
        let trainer = Trainer::new(config).unwrap();
        let labels = data.y.labels().unwrap();
        let one_hot: Vec<f32> = labels.iter().flat_map(|&l| if l == 1 { [0.0, 1.0] } else { [1.0, 0.0] }).collect();
        let (mut a, mut b) = (crate::LinearModel::new(2, 2, true), crate::LinearModel::new(2, 2, true));
        trainer.fit(&mut a, Loss::SoftmaxCrossEntropy, &data, None, &mut crate::NoObserver).unwrap();
        trainer.fit_soft(&mut b, Loss::SoftmaxCrossEntropy, &data, &one_hot, None, &mut crate::NoObserver).unwrap();
        for (x, y) in a.params().iter().zip(b.params()) {
            assert!((x - y).abs() < 1e-4, "{:?} vs {:?}", a.params(), b.params());
        }
        let mut m = crate::LinearModel::new(2, 1, true);
        let fit = |m: &mut crate::LinearModel, loss, soft: &[f32]| {
            trainer.fit_soft(m, loss, &data, soft, None, &mut crate::NoObserver).unwrap_err().to_string()
        };
        assert!(fit(&mut m, Loss::BinaryCrossEntropy, &p[..10]).contains("10 soft targets for 300 rows"));
        let mut wrong = p.clone();
        wrong[7] = 1.5;
        assert!(fit(&mut m, Loss::BinaryCrossEntropy, &wrong).contains("in [0, 1], got 1.5"));
        assert!(fit(&mut m, Loss::Mse, &p).contains("cross-entropy"));
        let mut two = crate::LinearModel::new(2, 2, true);
        let mut halves = one_hot.clone();
        halves[0] = 0.5;
        let err = trainer.fit_soft(&mut two, Loss::SoftmaxCrossEntropy, &data, &halves, None, &mut crate::NoObserver);
        assert!(err.unwrap_err().to_string().contains("soft targets of row 0 sum to 1.5, not 1"));
    }

    #[test]
    fn an_int8_network_is_not_trained() {
        let (data, _) = teacher_rows(40);
        let spec = crate::MlpSpec {
            n_inputs: 2,
            hidden: vec![4],
            n_outputs: 2,
            activation: crate::Activation::Relu,
            dropout: 0.0,
            init: crate::WeightInit::Auto,
            periodic: None,
            categories: None,
        };
        let mut model = Network::mlp(&spec).unwrap();
        model.init_params(&mut seeded_rng(1));
        model.quantize(data.x.view()).unwrap();
        let err = Trainer::new(TrainConfig::default())
            .unwrap()
            .fit(&mut model, Loss::SoftmaxCrossEntropy, &data, None, &mut crate::NoObserver)
            .unwrap_err();
        assert!(err.to_string().contains("an int8 model predicts only"), "{err}");
    }
}
