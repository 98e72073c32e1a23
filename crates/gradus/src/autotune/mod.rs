//! `gradus tune`'s engine: the two searches joined. The study's sampler
//! proposes a training configuration (model family, optimizer, learning
//! rate, batch size, network shape, regularisation, schedule), a
//! [`TrainJob`] trains it with early stopping and reports the validation
//! loss after every epoch through the trainer's [`Observer`] hook, so the
//! study's pruner can stop a poor run early, and the study records the
//! result. At the end the best few configurations ([`best_trials`]) are
//! each retrained on the training and validation rows for their best number
//! of epochs and averaged into one model ([`TuneJob::refit_ensemble`]),
//! which is scored once on the test rows no trial ever saw.
//!
//! A trial's score is its validation loss at the epoch count where it is
//! lowest; with cross-validation (by default below [`SMALL_DATA_ROWS`]
//! tuning rows), the folds' mean at the one epoch count where that mean is
//! lowest ([`best_common_epoch`]), which is the count the refit trains
//! (recorded with the trial, [`BEST_EPOCHS`]). Ranked by another metric
//! ([`TuneJob::metric`], [`TuneJob::monitor`]), each epoch reports that
//! metric instead, and the score is its value at that same epoch count:
//! early stopping and the refit stay on the loss. A new study first tries
//! each family's defaults ([`TuneJob::starting_points`]).
//!
//! The training engine knows nothing of studies and the tuner nothing of
//! models: [`TuneJob::objective`] is the only place where both meet.
//!
//! The search space and its decoding are in `space.rs`; ensemble selection
//! over the best trials is in `ensemble.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gradus_data::{Dataset, RawData, Scaling, Target};
use gradus_train::{
    Activation, Augment, Control, ConvStage, EarlyStopping, Ensemble, EpochRecord, Metric, Metrics, Observer,
    SavedModel, Shape, Termination, TrainConfig, WeightInit,
};
use gradus_tune::{Direction, Distribution, FrozenTrial, SearchSpace, Trial, TrialFailure, TrialState};
use serde_json::Value;

mod ensemble;
mod space;

pub use ensemble::*;
pub use space::*;

use crate::pipeline::{DEFAULT_TEXT_DIM, DEFAULT_TEXT_HIDDEN, Family, ModelChoice, Periodic, PipelineError, TrainJob};

/// The attribute under which a trial records the epoch count its
/// validation loss (with cross-validation, the folds' mean) was lowest at:
/// what its refit trains.
pub const BEST_EPOCHS: &str = "best_epochs";

/// The attribute under which a trial scored on a hold-out split records its
/// validation metrics at that epoch count (accuracy, macro-F1, log loss…;
/// RMSE, R²… for a real target; not the confusion matrix), for reports.
pub const VALID_METRICS: &str = "valid_metrics";

/// `metrics` as a trial attribute: the headline numbers, by name.
fn headline(metrics: &Metrics) -> Value {
    let mut value = serde_json::to_value(metrics).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.remove("confusion");
    }
    value
}

/// A table is large when a trial trains on more than this many rows (see
/// [`TuneJob::shorten_epochs_on_large_data`]).
pub const LARGE_DATA_ROWS: usize = 16384;

/// The rows of an epoch on a large table (see
/// [`TuneJob::shorten_epochs_on_large_data`]).
pub const LARGE_DATA_EPOCH_ROWS: usize = 8192;

/// Below this many tuning rows, [`TuneJob::cross_validate_small_data`]
/// scores trials by cross-validation.
pub const SMALL_DATA_ROWS: usize = 1000;

/// What stays fixed across the trials of a search.
#[derive(Clone, Debug)]
pub struct TuneJob {
    /// The families the search may use (one: not a hyperparameter).
    pub families: Vec<Family>,
    pub space: SearchSpace,
    /// The feature scaling when the space does not search it.
    pub scaling: Scaling,
    /// The most epochs a trial trains; early stopping usually ends it sooner.
    pub max_epochs: usize,
    /// Early stopping's patience, in epochs.
    pub patience: usize,
    /// Rows of the tuning part held out to score each trial.
    pub valid_fraction: f64,
    /// Score each trial by k-fold cross-validation instead (the folds' mean
    /// validation loss at their best common epoch count, see
    /// [`best_common_epoch`]); `valid_fraction` is then unused.
    pub cv: Option<usize>,
    /// Seeds the split, every trial's initialisation and batch order.
    pub seed: u64,
    /// What trials are ranked by (see [`TuneJob::monitor`]).
    pub metric: Metric,
    /// When running trials must end (`--timeout`): each stops at its first
    /// epoch boundary past it. Scored on a hold-out split, a trial stopped
    /// so completes with the epochs it trained (early stopping's best among
    /// them); under cross-validation, whose unfinished folds would bias
    /// the mean, it fails.
    pub deadline: Option<std::time::Instant>,
    /// Weigh classes in every trial's training loss by their inverse
    /// frequency (`--class-weight balanced`, see [`TrainJob::balanced`]).
    pub balanced: bool,
    /// Epochs of this many training rows instead of full passes (see
    /// [`TrainConfig::epoch_rows`] and [`TuneJob::shorten_epochs_on_large_data`]).
    pub epoch_rows: Option<usize>,
    /// The shape of the rows' images, which a CNN trial needs.
    pub image_shape: Option<Shape>,
}

/// The most bytes of weights the models a search keeps as trained may hold
/// together, and the final ensemble's members (the best one always).
pub const MODEL_BYTES: usize = 256 << 20;

/// Set to stop every running trial at its next epoch (Ctrl-C).
pub type StopFlag = Arc<AtomicBool>;

/// Told after each epoch of a trial, for a live display: the trial's
/// number, the epochs it has trained (all folds' together) and the most it
/// may train.
pub type EpochWatch<'a> = &'a (dyn Fn(u64, usize, usize) + Sync);

/// What [`TuneJob::objective`] measured of the hold-out-scored trials this
/// process ran, by trial number, at each trial's best epoch: the
/// validation metrics, which [`TuneJob::validation_metrics`] reads instead
/// of training the best trial once more, and the validation predictions,
/// which ensemble selection weighs ([`TuneJob::ensemble_weights`]); and,
/// when asked ([`MeasuredTrials::keeping_models`]), the models of the best
/// of them as their trials trained them.
#[derive(Default)]
pub struct MeasuredTrials {
    measured: Mutex<BTreeMap<u64, Measured>>,
    /// The best trials' models (at most `keep`), with their scores.
    models: Mutex<Vec<(u64, f64, SavedModel)>>,
    keep: usize,
    maximize: bool,
}

#[derive(Debug, Clone)]
struct Measured {
    metrics: Metrics,
    /// What an ensemble averages (see [`SavedModel::averaged_values`]) on
    /// the hold-out rows, in their order.
    predictions: Vec<f64>,
}

impl MeasuredTrials {
    /// Keeps, besides the measurements, the models of the `keep` best
    /// hold-out trials by their scores (`direction`'s way), as trained in
    /// the trial at its best epoch: [`TuneJob::refit_ensemble`] takes them
    /// for members the time left cannot retrain. The rest are dropped as
    /// better ones come, so that memory holds `keep` models at most.
    pub fn keeping_models(keep: usize, direction: Direction) -> Self {
        Self { keep, maximize: direction == Direction::Maximize, ..Self::default() }
    }

    fn insert(&self, number: u64, measured: Measured) {
        self.measured.lock().unwrap_or_else(|e| e.into_inner()).insert(number, measured);
    }

    fn get(&self, number: u64) -> Option<Measured> {
        self.measured.lock().unwrap_or_else(|e| e.into_inner()).get(&number).cloned()
    }

    fn keep_model(&self, number: u64, score: f64, model: SavedModel) {
        if self.keep == 0 || !score.is_finite() {
            return;
        }
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        models.push((number, score, model));
        let maximize = self.maximize;
        // Best first; the earlier trial first on a tie.
        models.sort_by(|a, b| {
            let order = a.1.total_cmp(&b.1);
            (if maximize { order.reverse() } else { order }).then(a.0.cmp(&b.0))
        });
        models.truncate(self.keep);
        // At most MODEL_BYTES of weights (the best model always): a text
        // model's embedding table is tens of megabytes.
        let mut total = 0;
        let within = models
            .iter()
            .take_while(|m| {
                total += m.2.model.params().len() * 4;
                total <= MODEL_BYTES
            })
            .count();
        models.truncate(within.max(1));
    }

    /// Whether trial `number`'s model is kept (see [`Self::keeping_models`]).
    pub fn has_model(&self, number: u64) -> bool {
        self.models.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|m| m.0 == number)
    }

    /// Trial `number`'s model as its trial trained it, if kept.
    fn take_model(&self, number: u64) -> Option<SavedModel> {
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let at = models.iter().position(|m| m.0 == number)?;
        Some(models.remove(at).2)
    }
}

impl TuneJob {
    /// The metric each epoch measures beside the loss, when the study's
    /// metric ranks trials otherwise than the loss does: `None` for
    /// log-loss (the classes' training loss itself) and RMSE (the square
    /// root of the regression loss, so the same ranking). Trials are then
    /// scored by the loss, as without `--metric`.
    pub fn monitor(&self) -> Option<Metric> {
        (!matches!(self.metric, Metric::LogLoss | Metric::Rmse)).then_some(self.metric)
    }

    /// Whether the study minimises or maximises: the metric's way.
    pub fn direction(&self) -> Direction {
        if self.metric.higher_is_better() { Direction::Maximize } else { Direction::Minimize }
    }

    /// The model family a trial's parameters name (the only one when
    /// `model` is not searched).
    /// A name outside the search's families is an error naming them.
    fn family(&self, params: &BTreeMap<String, Value>) -> Result<Family, PipelineError> {
        let Some(value) = params.get("model") else { return Ok(self.families[0]) };
        value.as_str().and_then(Family::from_name).filter(|f| self.families.contains(f)).ok_or_else(|| {
            PipelineError::Unsuitable(format!(
                "model {} is not one this search can train (choices: {})",
                value.as_str().map_or_else(|| value.to_string(), str::to_string),
                self.families.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The configurations a new study tries first, one per family (and per
    /// per-feature scaling, when the space searches it; a CNN's scaled
    /// globally, as `gradus train --model cnn` scales): the settings known to train
    /// each family well (for an MLP: Adam at 1e-3, batches of 64, two hidden
    /// layers of 256 ReLU units, dropout 0.1), as FLAML and auto-sklearn
    /// start from defaults. The sampler then searches around a sound
    /// baseline, and the pruner measures trials against it from the start.
    /// A value the space does not hold is left to the sampler.
    pub fn starting_points(&self) -> Vec<BTreeMap<String, Value>> {
        let scalings: Vec<Value> = match self.space.0.get("scaling") {
            Some(Distribution::Categorical { choices }) => choices.clone(),
            _ => vec![Value::Null],
        };
        let global = Value::from("global");
        let per_feature: Vec<&Value> = scalings.iter().filter(|s| **s != global).collect();
        let mut points = Vec::new();
        for &family in &self.families {
            // A CNN starts as `gradus train --model cnn` trains, every pixel
            // scaled alike; the table families from each per-feature scaling.
            let own = if scalings.contains(&global) && (family == Family::Cnn || per_feature.is_empty()) {
                vec![&global]
            } else {
                per_feature.clone()
            };
            for scaling in own {
                let mut point: Vec<(&str, Value)> = vec![
                    ("model", family.name().into()),
                    ("scaling", scaling.clone()),
                    ("optimizer", "adam".into()),
                    ("weight_decay", 1e-4.into()),
                    ("schedule", "constant".into()),
                ];
                if family == Family::Mlp {
                    point.extend([
                        ("lr", 1e-3.into()),
                        ("batch_size", 64.into()),
                        ("n_layers", 2.into()),
                        ("width", 256.into()),
                        ("activation", "relu".into()),
                        ("dropout", 0.1.into()),
                        ("embedding", "none".into()),
                    ]);
                } else if family == Family::Cnn {
                    // The default network of `gradus train --model cnn`, in 3x3 kernels.
                    point.extend([
                        ("lr", 1e-3.into()),
                        ("batch_size", 64.into()),
                        ("conv_layers", 2.into()),
                        ("channels", 32.into()),
                        ("pooling", "max".into()),
                        ("normalization", "none".into()),
                        ("width", 128.into()),
                        ("dropout", 0.25.into()),
                        ("shift", 0.0.into()),
                    ]);
                } else if family == Family::Text {
                    point.extend([
                        ("lr", 1e-2.into()),
                        ("batch_size", 32.into()),
                        ("dim", DEFAULT_TEXT_DIM.into()),
                        ("head", "linear".into()),
                    ]);
                } else {
                    point.extend([("lr", 1e-2.into()), ("batch_size", 32.into())]);
                }
                // The vocabularies as fitted: every n-gram length, every n-gram kept.
                for name in TEXT_PARAMS {
                    let most = match self.space.0.get(name) {
                        Some(Distribution::Int { high, .. }) => Some(*high),
                        Some(Distribution::Categorical { choices }) => choices.iter().filter_map(Value::as_i64).max(),
                        _ => None,
                    };
                    point.extend(most.map(|m| (name, m.into())));
                }
                points.push(self.in_space(point.clone()));
                // On a table with periodic embeddings in the space, the
                // default MLP is tried with them as well.
                if family == Family::Mlp && self.space.0.contains_key("embedding") {
                    point.retain(|(name, _)| *name != "embedding");
                    point.extend([("embedding", "periodic".into()), ("embedding_sigma", 3.0.into())]);
                    points.push(self.in_space(point));
                }
            }
        }
        points
    }

    /// The values of `point` that the space holds.
    fn in_space(&self, point: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
        point
            .into_iter()
            .filter(|(name, value)| self.space.0.get(*name).is_some_and(|d| d.to_internal(name, value).is_ok()))
            .map(|(name, value)| (name.to_string(), value))
            .collect()
    }

    /// Suggests this trial's hyperparameters (define-by-run: the network's
    /// only for an MLP) and returns the training job they describe.
    pub fn suggest(&self, trial: &mut Trial<'_>) -> Result<TrainJob, TrialFailure> {
        for name in HYPERPARAMETERS {
            let Some(distribution) = self.space.0.get(*name) else { continue };
            // A family's own hyperparameters only for its trials (define-by-run).
            let family = self.family(trial.params()).ok();
            let skip = match *name {
                "n_layers" | "activation" | "embedding" => family != Some(Family::Mlp),
                "embedding_sigma" => {
                    family != Some(Family::Mlp) || trial.params().get("embedding") != Some(&Value::from("periodic"))
                }
                "conv_layers" | "channels" | "pooling" | "normalization" | "shift" => family != Some(Family::Cnn),
                "dropout" => !matches!(family, Some(Family::Mlp | Family::Cnn)),
                // A text model's width is its MLP head's.
                "width" => {
                    !(matches!(family, Some(Family::Mlp | Family::Cnn))
                        || family == Some(Family::Text) && trial.params().get("head") == Some(&Value::from("mlp")))
                }
                "dim" | "head" => family != Some(Family::Text),
                _ => false,
            };
            if skip {
                continue;
            }
            trial.suggest(name, distribution.clone())?;
        }
        Ok(self.job(trial.params())?)
    }

    /// The training job for a set of hyperparameters (missing ones take
    /// their defaults: Adam, lr 1e-3, batch 32, no decay, one hidden layer
    /// of 128 ReLU units).
    ///
    /// A value no decoder knows is an error, never a default: `merge_space`
    /// keeps such values out of a space, so one here came from elsewhere
    /// (a study's stored trials).
    pub fn job(&self, params: &BTreeMap<String, Value>) -> Result<TrainJob, PipelineError> {
        // A value that is not a word reads as its JSON text, which no decoder knows.
        let text = |name: &str, default: &str| {
            params.get(name).map_or(default.to_string(), |v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        };
        let real = |name: &str, default: f64| params.get(name).and_then(Value::as_f64).unwrap_or(default);
        let whole = |name: &str, default: i64| params.get(name).and_then(Value::as_i64).unwrap_or(default);
        // The defaults stand only for hyperparameters the space lacks.
        let unknown = |name: &str| {
            PipelineError::Unsuitable(format!(
                "hyperparameter {name} = {} is not one gradus can train (choices: {})",
                params.get(name).map_or("?".into(), Value::to_string),
                known_choices(name).unwrap_or_default().join(", ")
            ))
        };
        let weight_decay = real("weight_decay", 0.0) as f32;
        let (optimizer, l2) =
            decode_optimizer(&text("optimizer", "adam"), weight_decay).ok_or_else(|| unknown("optimizer"))?;
        let schedule = decode_schedule(&text("schedule", "constant")).ok_or_else(|| unknown("schedule"))?;
        let model = match self.family(params)? {
            Family::Linear => ModelChoice::Linear,
            Family::Logistic => ModelChoice::Logistic,
            Family::Softmax => ModelChoice::Softmax,
            Family::Text => ModelChoice::Text {
                dim: whole("dim", DEFAULT_TEXT_DIM as i64).max(1) as usize,
                hidden: match text("head", "linear").as_str() {
                    "linear" => None,
                    "mlp" => Some(whole("width", DEFAULT_TEXT_HIDDEN as i64).max(1) as usize),
                    _ => return Err(unknown("head")),
                },
            },
            Family::Cnn => {
                let input = self.image_shape.ok_or_else(|| {
                    PipelineError::Unsuitable("a CNN needs images: the rows' image shape is not known".into())
                })?;
                let pooling = decode_pooling(&text("pooling", "max")).ok_or_else(|| unknown("pooling"))?;
                let batch_norm =
                    decode_normalization(&text("normalization", "none")).ok_or_else(|| unknown("normalization"))?;
                let channels = whole("channels", 32).max(1) as usize;
                let stages = whole("conv_layers", 2).max(1) as u32;
                ModelChoice::Cnn {
                    input,
                    // Channels double at each stage, as the image halves.
                    conv: (0..stages)
                        .map(|i| ConvStage { pooling, ..ConvStage::same(channels << i.min(16), 3, 2) })
                        .collect(),
                    global_pool: false,
                    hidden: vec![whole("width", 128).max(1) as usize],
                    activation: Activation::Relu,
                    dropout: real("dropout", 0.0) as f32,
                    augment: Augment { shift: real("shift", 0.0) as f32, rotate: 0.0, flip: false },
                    batch_norm,
                }
            }
            Family::Mlp => ModelChoice::Mlp {
                hidden: vec![whole("width", 128).max(1) as usize; whole("n_layers", 1).max(1) as usize],
                activation: decode_activation(&text("activation", "relu")).ok_or_else(|| unknown("activation"))?,
                dropout: real("dropout", 0.0) as f32,
                init: WeightInit::Auto,
                periodic: match text("embedding", "none").as_str() {
                    "none" => None,
                    "periodic" => Some(Periodic::with_sigma(real("embedding_sigma", 1.0) as f32)),
                    _ => return Err(unknown("embedding")),
                },
            },
        };
        Ok(TrainJob {
            model,
            loss: None,
            scaling: match params.get("scaling") {
                None => self.scaling,
                Some(_) => decode_scaling(&text("scaling", "")).ok_or_else(|| unknown("scaling"))?,
            },
            valid_fraction: self.valid_fraction,
            balanced: self.balanced,
            train_metrics: false,
            config: TrainConfig {
                optimizer,
                lr: real("lr", 1e-3) as f32,
                schedule,
                epochs: self.max_epochs,
                batch_size: Some(whole("batch_size", 32).max(1) as usize),
                l2,
                early_stopping: Some(EarlyStopping::new(self.patience)),
                tol: 0.0,
                seed: self.seed,
                monitor: self.monitor(),
                epoch_rows: self.epoch_rows,
                ..TrainConfig::default()
            },
        })
    }

    /// One trial: suggest, train on `data` (the tuning rows) reporting the
    /// validation loss each epoch, and return the trial's score (see
    /// [`best_common_epoch`]). A pruned run ends `Pruned`; a diverged or
    /// interrupted one fails with its reason. Scored on a hold-out split, a
    /// complete trial's validation metrics go into `measured`.
    pub fn objective(
        &self,
        trial: &mut Trial<'_>,
        data: &Dataset,
        stop: &StopFlag,
        watch: EpochWatch<'_>,
        measured: &MeasuredTrials,
    ) -> Result<f64, TrialFailure> {
        let job = self.suggest(trial)?;
        let data = self.trial_data(trial.params(), data)?;
        let data = data.as_ref();
        let folds = match self.cv {
            Some(k) => self.folds(data, k)?,
            None => vec![None],
        };
        let (mut curves, mut scores) = (Vec::with_capacity(folds.len()), Vec::with_capacity(folds.len()));
        let (mut valid_metrics, mut predictions, mut trained) = (None, None, None);
        let most = folds.len() * self.max_epochs;
        for (i, fold) in folds.iter().enumerate() {
            // Fold i's epochs are steps i·max_epochs + 1 …, so a pruner
            // compares trials at the same fold and epoch.
            let offset = (i * self.max_epochs) as u64;
            let before: usize = curves.iter().map(Vec::len).sum();
            let mut bridge = PrunerBridge {
                trial,
                stop,
                storage_error: None,
                offset,
                curve: Vec::new(),
                scores: Vec::new(),
                monitoring: self.monitor().is_some(),
                deadline: self.deadline,
                timed_out: false,
                watch: &|number, epochs| watch(number, before + epochs, most),
            };
            let outcome = match fold {
                Some((train, valid)) => job.run_on(train, Some(valid), &mut bridge)?,
                None => job.run(data, &mut bridge)?,
            };
            if let Some(e) = bridge.storage_error {
                return Err(TrialFailure::Failed(format!("could not record progress: {e}")));
            }
            match outcome.report.termination {
                Termination::Pruned => return Err(TrialFailure::Pruned),
                Termination::Interrupted => return Err(TrialFailure::Failed("interrupted".into())),
                Termination::Diverged => {
                    return Err(TrialFailure::Failed(format!(
                        "diverged at epoch {} (loss {})",
                        outcome.report.epochs, outcome.report.final_loss
                    )));
                }
                _ if bridge.timed_out && folds.len() > 1 => {
                    return Err(TrialFailure::Failed(format!(
                        "stopped by the time limit (in fold {} of {})",
                        i + 1,
                        folds.len()
                    )));
                }
                _ => {
                    curves.push(bridge.curve);
                    scores.push(bridge.scores);
                }
            }
            // Only a hold-out trial's predictions are weighed (see `ensemble_weights`).
            if fold.is_none() {
                let valid = self.hold_out_rows(data)?;
                predictions = Some(outcome.saved.averaged_values_of(valid).map_err(PipelineError::from)?);
                trained = Some(outcome.saved);
            }
            valid_metrics = outcome.valid_metrics;
        }
        let (epochs, loss) =
            best_common_epoch(&curves).ok_or_else(|| TrialFailure::Failed("no finite validation loss".into()))?;
        // Early stopping and the refit's epoch count follow the loss; a
        // monitored metric is read at that epoch count.
        let score = match self.monitor() {
            None => loss,
            Some(metric) => {
                let at = |s: &Vec<f64>| s.get((epochs - 1).min(s.len().saturating_sub(1))).copied();
                let values: Option<Vec<f64>> = scores.iter().map(at).collect();
                match values.map(|v| v.iter().sum::<f64>() / v.len() as f64) {
                    Some(mean) if mean.is_finite() => mean,
                    _ => {
                        return Err(TrialFailure::Failed(format!(
                            "{metric} is not defined on the validation rows at epoch {epochs}"
                        )));
                    }
                }
            }
        };
        trial.set_attr(BEST_EPOCHS, epochs.into()).map_err(TrialFailure::from)?;
        // One split: early stopping restored the weights of the best epoch,
        // the one `best_common_epoch` picks, so these are the metrics a
        // replay would measure. (Folds each restore their own best epoch,
        // not the common one: those are replayed.)
        if let (Some(metrics), Some(predictions)) = (valid_metrics, predictions) {
            trial.set_attr(VALID_METRICS, headline(&metrics)).map_err(TrialFailure::from)?;
            measured.insert(trial.number(), Measured { metrics, predictions });
        }
        if let Some(model) = trained {
            measured.keep_model(trial.number(), score, model);
        }
        Ok(score)
    }

    /// The validation rows of a hold-out-scored trial: the split
    /// [`TrainJob::run`] makes with this job's seed.
    fn hold_out_rows(&self, data: &Dataset) -> Result<Dataset, PipelineError> {
        let split = data.split(self.valid_fraction, 0.0, self.seed)?;
        Ok(data.subset(&split.valid))
    }

    /// The weight of each of `members` (best first) in the final model,
    /// chosen by greedy ensemble selection with replacement on their
    /// hold-out predictions (see [`select_ensemble`]). `None` under
    /// cross-validation, and when a member's predictions were not measured
    /// in this process (a resumed study's earlier trials): then the best
    /// few are averaged equally.
    ///
    /// Why not under cross-validation: each fold's predictions come from
    /// its own best epoch, while the refit trains the folds' common best
    /// count ([`best_common_epoch`]); weights fitted to the former reward
    /// the curves that jump about, whose lucky minima no refit reproduces.
    /// On breast_cancer (5-fold) they lost test accuracy on 3 of 5 seeds
    /// against the equal mean (BENCHMARKS.md); so did keeping the best
    /// trial alone where it beat the equal mean on those predictions
    /// (breast_cancer seed 0: 98.2% → 92.0%). A hold-out trial's
    /// predictions are from the weights early stopping restored, the epoch
    /// its score and its refit use.
    pub fn ensemble_weights(
        &self,
        members: &[&FrozenTrial],
        data: &Dataset,
        measured: &MeasuredTrials,
    ) -> Result<Option<Selection>, PipelineError> {
        if self.cv.is_some() {
            return Ok(None);
        }
        let Some(predictions) =
            members.iter().map(|t| measured.get(t.number).map(|m| m.predictions)).collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        let target = self.hold_out_rows(data)?.y;
        if predictions.iter().any(|p| p.is_empty() || p.len() % target.len().max(1) != 0) {
            return Ok(None);
        }
        let candidates: Vec<&[f64]> = predictions.iter().map(Vec::as_slice).collect();
        // Selection minimises: a metric where higher is better is negated.
        let sign = if self.metric.higher_is_better() { -1.0 } else { 1.0 };
        let loss = |mean: &[f64]| sign * self.averaged_value(mean, &target);
        let counts = select_ensemble(&candidates, &loss, ENSEMBLE_ROUNDS);
        let total: usize = counts.iter().sum();
        let mut mean = vec![0.0f64; candidates[0].len()];
        for (c, &n) in candidates.iter().zip(&counts) {
            mean.iter_mut().zip(c.iter()).for_each(|(m, v)| *m += n as f64 * v / total as f64);
        }
        let single_loss = candidates.iter().map(|c| loss(c)).fold(f64::INFINITY, f64::min);
        Ok(Some(Selection { value: sign * loss(&mean), single_value: sign * single_loss, counts }))
    }

    /// What the study ranks, measured on values as an ensemble averages
    /// them (see [`SavedModel::averaged_values`]): the monitored metric, or
    /// else the loss ([`averaged_loss`]). NaN where the metric is undefined.
    pub fn averaged_value(&self, values: &[f64], target: &Target) -> f64 {
        match self.monitor() {
            None => averaged_loss(values, target),
            Some(metric) => {
                gradus_train::metrics_of_averaged(values, target).ok().and_then(|m| metric.of(&m)).unwrap_or(f64::NAN)
            }
        }
    }

    /// Whether `tuning` is a large table: a trial trains on more than
    /// [`LARGE_DATA_ROWS`] of its rows.
    pub fn is_large(&self, tuning: &Dataset) -> bool {
        let training_rows = match self.cv {
            Some(k) => tuning.n_samples() * (k - 1) / k,
            None => (tuning.n_samples() as f64 * (1.0 - self.valid_fraction)) as usize,
        };
        training_rows > LARGE_DATA_ROWS
    }

    /// Cuts epochs to [`LARGE_DATA_EPOCH_ROWS`] rows when a trial trains on
    /// more than [`LARGE_DATA_ROWS`]: a trial's reports, early stopping and
    /// pruning then come every so many rows, so what a trial costs before
    /// it is judged no longer grows with the table. Whether it did: the
    /// table is large (see [`large_data_batches`]). UCI Adult (20,839
    /// training rows a trial) is: epochs of 16,384 rows took its tune from
    /// 120 … 408 s to 46 … 81 s with the same test accuracy and AUC; epochs
    /// of 8,192 took the 54,000-row table's from 249 s to 75 s at the same
    /// test R², once periodic embeddings had made it slow, and Adult's
    /// seeds take 68 … 214 s (BENCHMARKS.md).
    pub fn shorten_epochs_on_large_data(&mut self, tuning: &Dataset) -> bool {
        let large = self.is_large(tuning);
        if large {
            self.epoch_rows = Some(LARGE_DATA_EPOCH_ROWS);
        }
        large
    }

    /// Scores trials by 5-fold cross-validation (as scikit-learn's searches
    /// do) when `tuning` has fewer than [`SMALL_DATA_ROWS`] rows and every
    /// class has 5 of them: on small data a hold-out set of a few dozen
    /// rows scores trials too noisily to choose among them.
    pub fn cross_validate_small_data(&mut self, tuning: &Dataset) {
        const K: usize = 5;
        if tuning.n_samples() < SMALL_DATA_ROWS && self.folds(tuning, K).is_ok() {
            self.cv = Some(K);
        }
    }

    /// The `k` cross-validation folds of `data` (stratified for classes), as
    /// (training rows, validation rows).
    pub fn folds(&self, data: &Dataset, k: usize) -> Result<Vec<Option<(Dataset, Dataset)>>, PipelineError> {
        let folds = match data.y.labels() {
            Some(labels) => {
                let mut counts = std::collections::BTreeMap::new();
                labels.iter().for_each(|l| *counts.entry(*l).or_insert(0usize) += 1);
                if let Some((class, n)) = counts.iter().find(|(_, n)| **n < k) {
                    let name = match &data.y {
                        gradus_data::Target::Classes { classes, .. } => classes[*class as usize].clone(),
                        _ => class.to_string(),
                    };
                    return Err(PipelineError::Unsuitable(format!(
                        "--cv {k} needs at least {k} tuning rows of every class; class '{name}' has {n}"
                    )));
                }
                gradus_data::stratified_kfold(labels, k, self.seed)?
            }
            None => gradus_data::kfold(data.n_samples(), k, self.seed)?,
        };
        Ok(folds.into_iter().map(|f| Some((data.subset(&f.train), data.subset(&f.valid)))).collect())
    }

    /// The number of epochs the refit of `trial` trains: where its
    /// validation loss (with cross-validation, the folds' mean) was lowest.
    pub fn best_epochs(&self, trial: &FrozenTrial) -> Option<usize> {
        if let Some(epochs) = trial.attrs.get(BEST_EPOCHS).and_then(Value::as_u64) {
            return Some(epochs as usize);
        }
        // A trial of a study from before the attribute: its reports are the loss.
        let per_fold = self.max_epochs.max(1) as u64;
        let mut curves: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for (&step, &v) in &trial.intermediate {
            // Steps are reported in order, one per epoch from 1, fold after fold.
            curves.entry((step - 1) / per_fold).or_default().push(v);
        }
        best_common_epoch(&curves.into_values().collect::<Vec<_>>()).map(|(epoch, _)| epoch)
    }

    /// `best`'s validation metrics, as the search measured its loss:
    /// retrained for [`Self::best_epochs`] on the hold-out split's (or each
    /// fold's) training rows and scored on its validation rows; with
    /// cross-validation the folds' mean (their confusion matrices summed),
    /// as scikit-learn's searches report mean test scores. Costs one more
    /// training run per fold, once, at the end of a search, unless the
    /// trial ran on a hold-out split in this process (`measured`).
    pub fn validation_metrics(
        &self,
        best: &FrozenTrial,
        data: &Dataset,
        measured: &MeasuredTrials,
    ) -> Result<Option<Metrics>, PipelineError> {
        // `objective` records metrics of hold-out-scored trials only.
        if let Some(Measured { metrics, .. }) = measured.get(best.number) {
            return Ok(Some(metrics));
        }
        let (job, mut stop) = self.replay(best)?;
        let data = self.trial_data(&best.params, data)?;
        let data = data.as_ref();
        let mut scores = Vec::new();
        match self.cv {
            Some(k) => {
                for (train, valid) in self.folds(data, k)?.into_iter().flatten() {
                    scores.extend(job.run_on(&train, Some(&valid), &mut stop)?.valid_metrics);
                }
            }
            None => scores.extend(job.run(data, &mut stop)?.valid_metrics),
        }
        Ok(mean_metrics(&scores))
    }

    /// `best`'s training job without early stopping, and the observer that
    /// ends it after its best epoch count (see [`Self::refit`] for why the
    /// schedule keeps its full length).
    fn replay(&self, best: &FrozenTrial) -> Result<(TrainJob, StopAfter<'static>), PipelineError> {
        let mut job = self.job(&best.params)?;
        job.config.early_stopping = None;
        Ok((job, StopAfter { epochs: self.refit_epochs(best), deadline: None, watch: None }))
    }

    /// The epochs [`Self::refit`] of `trial` trains: its best epoch count,
    /// or the most a trial may train when its curve was not stored.
    pub fn refit_epochs(&self, trial: &FrozenTrial) -> usize {
        self.best_epochs(trial).unwrap_or(self.max_epochs)
    }

    /// Retrains `best`'s configuration on all of `data` (training and
    /// validation rows) for the number of epochs its validation loss was
    /// best at, with no early stopping.
    ///
    /// The run keeps the trial's `max_epochs` and is stopped after the best
    /// epoch, rather than given fewer epochs: a cosine schedule spans the
    /// configured epochs, and the refit must follow the trial's learning
    /// rates, not a compressed schedule.
    ///
    /// `None` if the refit diverged: it runs more steps per epoch than the
    /// trial did, on more rows, with no early stopping to fall back on.
    /// Past `deadline` it stops at the next epoch, short of its count.
    /// `watch` is told each epoch it finishes (counted from 1).
    fn refit(
        &self,
        best: &FrozenTrial,
        data: &Dataset,
        deadline: Option<std::time::Instant>,
        watch: &(dyn Fn(usize) + Sync),
    ) -> Result<Option<SavedModel>, PipelineError> {
        let (mut job, stop) = self.replay(best)?;
        let mut stop = StopAfter { deadline, watch: Some(watch), ..stop };
        job.valid_fraction = 0.0;
        let outcome = job.run(self.trial_data(&best.params, data)?.as_ref(), &mut stop)?;
        Ok((outcome.report.termination != Termination::Diverged).then_some(outcome.saved))
    }

    /// The seconds [`Self::refit`] of `trial` should take, from the trial's
    /// own measured time per epoch scaled to its best epoch count and to
    /// all the tuning rows (a trial trains on 1 − `valid_fraction` of them,
    /// a fold on (k − 1)/k). `None` without timings.
    pub fn refit_seconds(&self, trial: &FrozenTrial) -> Option<f64> {
        let epochs = trial.intermediate.len();
        let per_epoch = trial.duration()? / epochs.max(1) as f64;
        let rows = match self.cv {
            Some(k) => k as f64 / (k as f64 - 1.0).max(1.0),
            None => 1.0 / (1.0 - self.valid_fraction).max(0.05),
        };
        Some(per_epoch * self.best_epochs(trial)? as f64 * rows)
    }

    /// How many of `members` (in the order given: the most weighted first)
    /// can be refitted in `seconds`, `jobs` at a time, by their
    /// [`Self::refit_seconds`]; possibly none.
    pub fn affordable_refits(&self, members: &[&FrozenTrial], seconds: f64, jobs: usize) -> usize {
        let (mut total, mut longest, mut count) = (0.0f64, 0.0f64, 0);
        for trial in members {
            let cost = self.refit_seconds(trial).unwrap_or(f64::INFINITY);
            (total, longest) = (total + cost, longest.max(cost));
            // `jobs` refits at a time: the longest, or their share of the total.
            if longest.max(total / jobs.max(1) as f64) > seconds {
                break;
            }
            count += 1;
        }
        count
    }

    /// The bytes of weights of the model `params` trains on `data`.
    fn model_bytes(&self, params: &BTreeMap<String, Value>, data: &Dataset) -> Result<usize, PipelineError> {
        let job = self.job(params)?;
        let (_, outputs) = job.loss_and_outputs(data)?;
        let encoding = match text_narrowing(params, &data.encoding)? {
            None => std::borrow::Cow::Borrowed(&data.encoding),
            Some((longest, most)) => std::borrow::Cow::Owned(data.encoding.narrow_text(longest, most)?.0),
        };
        Ok(job.architecture(&encoding, outputs)?.n_params()? * 4)
    }

    /// The rows a trial with `params` trains on: `data`, or, when they
    /// choose `text_ngrams` or `text_features`, `data` with its text read
    /// through the narrower vocabularies they name
    /// ([`text_vocabulary_space`]). Not a copy when they keep everything.
    pub fn trial_data<'d>(
        &self,
        params: &BTreeMap<String, Value>,
        data: &'d Dataset,
    ) -> Result<std::borrow::Cow<'d, Dataset>, PipelineError> {
        Ok(match text_narrowing(params, &data.encoding)? {
            None => std::borrow::Cow::Borrowed(data),
            Some((longest, most)) => std::borrow::Cow::Owned(data.narrow_text(longest, most)?),
        })
    }

    /// [`Self::trial_data`] of rows the caller gives up.
    pub fn trial_data_owned(&self, params: &BTreeMap<String, Value>, data: Dataset) -> Result<Dataset, PipelineError> {
        Ok(match text_narrowing(params, &data.encoding)? {
            None => data,
            Some((longest, most)) => data.narrow_text(longest, most)?,
        })
    }

    /// Whether trials `a` and `b` read the same inputs (the same text
    /// vocabularies), as the members of one ensemble must.
    pub fn same_inputs(a: &FrozenTrial, b: &FrozenTrial) -> bool {
        TEXT_PARAMS.iter().all(|name| a.params.get(*name) == b.params.get(*name))
    }

    /// Leaves out of `members` the least weighted ones whose weights (as
    /// trained on `data`) would take the final model past [`MODEL_BYTES`] —
    /// the most weighted always stays, as a text model's embedding table is
    /// tens of megabytes — keeping the others in their order; returns how
    /// many were left out.
    pub fn keep_within_model_bytes(
        &self,
        members: &mut Vec<Member<'_>>,
        data: &Dataset,
    ) -> Result<usize, PipelineError> {
        let mut ranked: Vec<usize> = (0..members.len()).collect();
        ranked.sort_by(|&a, &b| members[b].weight.total_cmp(&members[a].weight).then(a.cmp(&b)));
        let (mut total, mut within) = (0, vec![false; members.len()]);
        for (rank, &i) in ranked.iter().enumerate() {
            total += self.model_bytes(&members[i].trial.params, data)?;
            if rank > 0 && total > MODEL_BYTES {
                break;
            }
            within[i] = true;
        }
        let before = members.len();
        let mut keep = within.into_iter();
        members.retain(|_| keep.next().unwrap_or(false));
        Ok(before - members.len())
    }

    /// Which of `members` (all marked to be refitted) the `seconds` left
    /// afford to retrain, `jobs` at a time: the most weighted first, by
    /// [`Self::affordable_refits`]. The others are marked to join as their
    /// trials trained them (see [`Self::refit_ensemble`]). A refit the
    /// deadline would cut short trains fewer epochs than its trial found
    /// best, so even the most weighted member is taken as trained when its
    /// refit does not fit — if `as_trained` kept its model; without it, it
    /// is retrained all the same, as far as the time goes.
    pub fn plan_refits(&self, members: &mut [Member<'_>], seconds: f64, jobs: usize, as_trained: &MeasuredTrials) {
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by(|&a, &b| members[b].weight.total_cmp(&members[a].weight).then(a.cmp(&b)));
        let ranked: Vec<&FrozenTrial> = order.iter().map(|&i| members[i].trial).collect();
        let mut n = self.affordable_refits(&ranked, seconds, jobs);
        if n == 0 && ranked.first().is_some_and(|t| !as_trained.has_model(t.number)) {
            n = 1;
        }
        for &i in &order[n.min(order.len())..] {
            members[i].refit = false;
        }
    }

    /// Builds the final model from `members`: each to be refitted is
    /// retrained (see [`Self::refit`]), `jobs` at a time; each other one
    /// joins as its trial trained it (on the tuning rows less the
    /// validation rows), when `as_trained` kept that model
    /// ([`MeasuredTrials::keeping_models`]). They are averaged with their
    /// weights (positive; see [`Ensemble`]). Returns the members the model
    /// holds, in the order given: a member whose refit diverged (its
    /// weights would predict nothing) or whose trial's model was not kept
    /// is left out; if none is left, that is an error. `progress` is told
    /// each epoch a refit finishes and each refit's end, for a progress
    /// display.
    /// Refits still running at `deadline` stop at their next epoch (see
    /// [`Self::affordable_refits`] to choose members that fit the time).
    pub fn refit_ensemble<'a>(
        &self,
        members: &[Member<'a>],
        as_trained: &MeasuredTrials,
        data: &Dataset,
        jobs: usize,
        deadline: Option<std::time::Instant>,
        progress: &(dyn Fn(RefitProgress) + Sync),
    ) -> Result<(Ensemble, Vec<Member<'a>>), PipelineError> {
        let refits: Vec<usize> = (0..members.len()).filter(|&i| members[i].refit).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        type Refit = Result<Option<SavedModel>, PipelineError>;
        let fitted: Mutex<Vec<(usize, Refit)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, refits.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let Some(&i) = refits.get(next.fetch_add(1, Ordering::SeqCst)) else { return };
                        let trial = members[i].trial.number;
                        let epoch = |epoch| progress(RefitProgress::Epoch { trial, epoch });
                        let model = self.refit(members[i].trial, data, deadline, &epoch);
                        fitted.lock().unwrap_or_else(|e| e.into_inner()).push((i, model));
                        progress(RefitProgress::Done { trial });
                    }
                });
            }
        });
        let mut models: Vec<Option<SavedModel>> = members.iter().map(|_| None).collect();
        for (i, model) in fitted.into_inner().unwrap_or_else(|e| e.into_inner()) {
            models[i] = model?;
        }
        for (model, member) in models.iter_mut().zip(members).filter(|(_, m)| !m.refit) {
            *model = as_trained.take_model(member.trial.number);
        }
        let (mut kept, mut weights, mut held) = (Vec::new(), Vec::new(), Vec::new());
        for (model, member) in models.into_iter().zip(members) {
            if let Some(model) = model {
                kept.push(model);
                weights.push(member.weight);
                held.push(*member);
            }
        }
        if kept.is_empty() {
            let tried: Vec<String> = members.iter().map(|m| m.trial.number.to_string()).collect();
            return Err(PipelineError::Diverged(format!(
                "retraining the best trials ({}) on all tuning rows diverged every time",
                tried.join(", ")
            )));
        }
        Ok((Ensemble::weighted(kept, weights)?, held))
    }
}

/// The hyperparameters that choose a trial's text vocabularies.
const TEXT_PARAMS: [&str; 2] = ["text_ngrams", "text_features"];

/// The longest n-grams and the most n-grams per column that `params` keep
/// of `encoding`'s text vocabularies; `None` when they keep all of them (or
/// name neither). A value that is not a positive whole number is an error.
fn text_narrowing(
    params: &BTreeMap<String, Value>,
    encoding: &gradus_data::Encoding,
) -> Result<Option<(usize, usize)>, PipelineError> {
    let value = |name: &str| -> Result<usize, PipelineError> {
        match params.get(name) {
            None => Ok(usize::MAX),
            Some(v) => v.as_u64().filter(|&n| n > 0).map(|n| n as usize).ok_or_else(|| {
                PipelineError::Unsuitable(format!("hyperparameter {name} = {v} is not a positive whole number"))
            }),
        }
    };
    let (longest, most) = (value(TEXT_PARAMS[0])?, value(TEXT_PARAMS[1])?);
    let keeps_all = encoding.text.iter().all(|t| longest >= t.ngrams.high && most >= t.width());
    Ok((!keeps_all).then_some((longest, most)))
}

/// A trial in the final model ([`TuneJob::refit_ensemble`]): its weight
/// (positive), and whether it is retrained on all the tuning rows or taken
/// as its trial trained it.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    pub trial: &'a FrozenTrial,
    pub weight: f64,
    pub refit: bool,
}

/// A trial's score and the epoch count that earns it, from its validation
/// curves (one per fold, or one with a hold-out set; `curves[i][e]` is fold
/// i's loss after epoch e + 1): the epoch count at which the folds' mean
/// loss is lowest, and that mean. A fold that stopped early keeps its last
/// loss for the later epochs. `None` if no epoch has a finite mean.
///
/// All folds share one epoch count because the refit trains one model for
/// one number of epochs: the score is what that refit can expect. Scoring
/// each fold at its own best epoch instead rewards a curve that jumps about,
/// whose lucky minima no refit reproduces.
pub fn best_common_epoch(curves: &[Vec<f64>]) -> Option<(usize, f64)> {
    if curves.iter().any(Vec::is_empty) {
        return None;
    }
    let longest = curves.iter().map(Vec::len).max()?;
    let mut best: Option<(usize, f64)> = None;
    for epoch in 0..longest {
        let mean = curves.iter().map(|c| c[epoch.min(c.len() - 1)]).sum::<f64>() / curves.len() as f64;
        if mean.is_finite() && best.is_none_or(|(_, b)| mean < b) {
            best = Some((epoch + 1, mean));
        }
    }
    best
}

/// The mean of each metric over folds (confusion matrices summed; ROC and
/// PR AUC only when every fold has them). `None` for no folds.
fn mean_metrics(folds: &[Metrics]) -> Option<Metrics> {
    let n = folds.len() as f64;
    Some(match folds.first()? {
        Metrics::Regression { .. } => {
            let mut sums = [0.0; 4];
            for m in folds {
                let Metrics::Regression { mse, rmse, mae, r2 } = m else { return None };
                sums.iter_mut().zip([mse, rmse, mae, r2]).for_each(|(s, v)| *s += v);
            }
            let [mse, rmse, mae, r2] = sums.map(|s| s / n);
            Metrics::Regression { mse, rmse, mae, r2 }
        }
        Metrics::Classification { confusion, .. } => {
            let (mut sums, mut auc, mut ap) = ([0.0; 4], Some(0.0), Some(0.0));
            let mut total = vec![vec![0u64; confusion.len()]; confusion.len()];
            for m in folds {
                let Metrics::Classification {
                    accuracy,
                    balanced_accuracy,
                    log_loss,
                    macro_f1,
                    roc_auc,
                    pr_auc,
                    confusion,
                } = m
                else {
                    return None;
                };
                sums.iter_mut().zip([accuracy, balanced_accuracy, log_loss, macro_f1]).for_each(|(s, v)| *s += v);
                auc = auc.zip(*roc_auc).map(|(a, r)| a + r);
                ap = ap.zip(*pr_auc).map(|(a, r)| a + r);
                for (row, counts) in total.iter_mut().zip(confusion) {
                    row.iter_mut().zip(counts).for_each(|(t, c)| *t += c);
                }
            }
            let [accuracy, balanced_accuracy, log_loss, macro_f1] = sums.map(|s| s / n);
            Metrics::Classification {
                accuracy,
                balanced_accuracy,
                log_loss,
                macro_f1,
                roc_auc: auc.map(|a| a / n),
                pr_auc: ap.map(|a| a / n),
                confusion: total,
            }
        }
    })
}

/// The rows the search tunes on (which the trials split again into
/// training and validation rows) and the test rows held out of it, both
/// encoded by an encoding fitted on the tuning rows only.
pub fn hold_out(raw: &RawData, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset), PipelineError> {
    let split = raw.split(0.0, test_fraction, seed)?;
    let encoding = raw.fit_encoding(&split.train)?;
    let tuning = raw.dataset(&split.train, &encoding)?;
    // The tuning rows' numbers (8 bytes a row) go before the test rows are encoded.
    let test_rows = split.test;
    drop(split.train);
    Ok((tuning, raw.dataset(&test_rows, &encoding)?))
}

/// Epochs trained by every finished trial (one report per epoch).
pub fn epochs_trained(trials: &[FrozenTrial]) -> usize {
    trials.iter().filter(|t| t.state.is_finished()).map(|t| t.intermediate.len()).sum()
}

/// Counts of complete, pruned and failed trials.
pub fn tally(trials: &[FrozenTrial]) -> (usize, usize, usize) {
    let count = |f: fn(&TrialState) -> bool| trials.iter().filter(|t| f(&t.state)).count();
    (
        count(|s| matches!(s, TrialState::Complete(_))),
        count(|s| *s == TrialState::Pruned),
        count(|s| *s == TrialState::Fail),
    )
}

/// What [`TuneJob::refit_ensemble`] reports as it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefitProgress {
    /// The refit of `trial` finished its epoch `epoch` (counted from 1).
    Epoch { trial: u64, epoch: usize },
    /// The refit of `trial` ended.
    Done { trial: u64 },
}

impl RefitProgress {
    /// The trial whose refit this is about.
    pub fn trial(&self) -> u64 {
        match *self {
            RefitProgress::Epoch { trial, .. } | RefitProgress::Done { trial } => trial,
        }
    }
}

/// Ends training after a number of epochs, whatever the configured count,
/// or at the first epoch past a deadline.
struct StopAfter<'a> {
    epochs: usize,
    deadline: Option<std::time::Instant>,
    /// Told each epoch finished (counted from 1).
    watch: Option<&'a (dyn Fn(usize) + Sync)>,
}

impl Observer for StopAfter<'_> {
    fn on_epoch(&mut self, record: &EpochRecord) -> Control {
        if let Some(watch) = self.watch {
            watch(record.epoch + 1);
        }
        let late = self.deadline.is_some_and(|d| std::time::Instant::now() >= d);
        if record.epoch + 1 >= self.epochs || late { Control::Stop(Termination::MaxEpochs) } else { Control::Continue }
    }
}

/// Reports each epoch's validation loss to the trial and stops the run when
/// the pruner says so, or when the user interrupts.
struct PrunerBridge<'a, 'b> {
    trial: &'a mut Trial<'b>,
    stop: &'a StopFlag,
    storage_error: Option<gradus_tune::TuneError>,
    /// Added to the epoch number: the steps of earlier folds.
    offset: u64,
    /// The validation loss after each epoch.
    curve: Vec<f64>,
    /// The monitored metric after each epoch (NaN where undefined), when
    /// the job monitors one.
    scores: Vec<f64>,
    /// Told the trial's number and this run's epochs after each epoch.
    watch: &'a dyn Fn(u64, usize),
    /// Whether the study ranks a metric other than the loss (see [`TuneJob::monitor`]).
    monitoring: bool,
    /// Stop at the first epoch past this ([`TuneJob::deadline`]).
    deadline: Option<std::time::Instant>,
    /// Whether the deadline stopped the run.
    timed_out: bool,
}

impl Observer for PrunerBridge<'_, '_> {
    fn on_epoch(&mut self, record: &EpochRecord) -> Control {
        if self.stop.load(Ordering::Relaxed) {
            return Control::Stop(Termination::Interrupted);
        }
        let Some(loss) = record.valid_loss else { return Control::Continue };
        self.curve.push(loss);
        // What the study ranks: the monitored metric, when there is one.
        let reported = match self.monitoring {
            true => record.valid_score.unwrap_or(f64::NAN),
            false => loss,
        };
        if self.monitoring {
            self.scores.push(reported);
        }
        (self.watch)(self.trial.number(), self.curve.len());
        if let Err(e) = self.trial.report(self.offset + record.epoch as u64 + 1, reported) {
            self.storage_error = Some(e);
            return Control::Stop(Termination::Interrupted);
        }
        if self.trial.should_prune() {
            return Control::Stop(Termination::Pruned);
        }
        if self.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            self.timed_out = true;
            return Control::Stop(Termination::MaxEpochs);
        }
        Control::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradus_train::OptimizerConfig;

    #[test]
    fn the_score_is_the_folds_mean_at_their_best_common_epoch() {
        // Fold a is best at epoch 1 (0.1), fold b at epoch 3 (0.1); each
        // fold's own best would average 0.1, but no single epoch count
        // gives that: epoch 2 gives (0.3 + 0.2) / 2 = 0.25, the lowest.
        let a = vec![0.1, 0.3, 0.9];
        let b = vec![0.9, 0.2, 0.1];
        assert_eq!(best_common_epoch(&[a.clone(), b]), Some((2, 0.25)));
        // One curve (a hold-out set): its minimum, the first epoch reaching it.
        assert_eq!(best_common_epoch(&[vec![0.5, 0.2, 0.2, 0.4]]), Some((2, 0.2)));
        // A fold that stopped early keeps its last loss: at epoch 3, (0.3 + 0.1) / 2.
        let short = vec![0.4, 0.3];
        let long = vec![0.6, 0.5, 0.1];
        assert_eq!(best_common_epoch(&[short, long]), Some((3, 0.2)));
        // Non-finite means are skipped; nothing finite, or a fold with no epoch, is None.
        assert_eq!(best_common_epoch(&[vec![f64::NAN, 0.3]]), Some((2, 0.3)));
        assert_eq!(best_common_epoch(&[vec![f64::INFINITY]]), None);
        assert_eq!(best_common_epoch(&[a, vec![]]), None);
        assert_eq!(best_common_epoch(&[]), None);
    }

    fn job(families: Vec<Family>, space: SearchSpace) -> TuneJob {
        TuneJob {
            families,
            space,
            scaling: Scaling::Standard,
            max_epochs: 10,
            patience: 3,
            valid_fraction: 0.2,
            cv: None,
            seed: 0,
            metric: Metric::LogLoss,
            deadline: None,
            balanced: false,
            image_shape: None,
            epoch_rows: None,
        }
    }

    #[test]
    fn ensemble_selection_never_loses_to_the_best_single_model_and_gives_a_useless_one_no_weight() {
        // Two classes, four rows with labels 0, 1, 0, 1; probabilities row by row.
        let target = Target::Classes { labels: vec![0, 1, 0, 1], classes: vec!["a".into(), "b".into()] };
        let probs = |p1: [f64; 4]| p1.iter().flat_map(|&p| [1.0 - p, p]).collect::<Vec<f64>>();
        // a and b are each right with confidence on two rows and unsure on the
        // others, complementing each other; c is confidently wrong everywhere.
        let a = probs([0.1, 0.9, 0.5, 0.5]);
        let b = probs([0.5, 0.5, 0.1, 0.9]);
        let c = probs([0.99, 0.01, 0.99, 0.01]);
        let loss = |mean: &[f64]| averaged_loss(mean, &target);
        let counts = select_ensemble(&[&a, &b, &c], &loss, 25);
        assert_eq!(counts[2], 0, "the harmful model gets no weight: {counts:?}");
        assert!(counts[0] > 0 && counts[1] > 0, "the complementary pair is mixed: {counts:?}");
        let total = counts.iter().sum::<usize>() as f64;
        let mean: Vec<f64> =
            (0..a.len()).map(|i| (counts[0] as f64 * a[i] + counts[1] as f64 * b[i]) / total).collect();
        assert!(loss(&mean) < loss(&a).min(loss(&b)), "{} vs {} {}", loss(&mean), loss(&a), loss(&b));
        // One good model and only worse ones: it alone.
        assert_eq!(select_ensemble(&[&a, &c], &loss, 25), vec![1, 0]);
        // Regression: the mean squared error of the weighted mean.
        let real = Target::Real(vec![1.0, 2.0]);
        let over: [f64; 2] = [2.0, 3.0];
        let under: [f64; 2] = [0.0, 1.0];
        let counts = select_ensemble(&[&over, &under], &|m| averaged_loss(m, &real), 10);
        assert_eq!(counts[0], counts[1], "errors that cancel are mixed half and half: {counts:?}");
    }

    #[test]
    fn fold_metrics_are_averaged_and_their_confusion_matrices_summed() {
        let fold = |accuracy: f64, auc: Option<f64>, hits: u64| Metrics::Classification {
            accuracy,
            balanced_accuracy: accuracy,
            log_loss: accuracy / 10.0,
            macro_f1: accuracy,
            roc_auc: auc,
            pr_auc: auc,
            confusion: vec![vec![hits, 1], vec![0, hits]],
        };
        let Some(Metrics::Classification { accuracy, log_loss, roc_auc, confusion, .. }) =
            mean_metrics(&[fold(0.9, Some(0.8), 4), fold(0.7, Some(0.6), 2)])
        else {
            panic!("classification metrics")
        };
        assert!((accuracy - 0.8).abs() < 1e-12 && (log_loss - 0.08).abs() < 1e-12);
        assert!((roc_auc.unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(confusion, vec![vec![6, 2], vec![0, 6]]);
        let Some(Metrics::Classification { roc_auc, .. }) =
            mean_metrics(&[fold(0.9, Some(0.8), 4), fold(0.7, None, 2)])
        else {
            panic!("classification metrics")
        };
        assert_eq!(roc_auc, None, "only when every fold has one");
        let r = |r2: f64| Metrics::Regression { mse: 2.0 * r2, rmse: r2, mae: r2, r2 };
        assert_eq!(
            mean_metrics(&[r(0.5), r(0.3)]),
            Some(Metrics::Regression { mse: 0.8, rmse: 0.4, mae: 0.4, r2: 0.4 })
        );
        assert_eq!(mean_metrics(&[]), None);
    }

    #[test]
    fn best_epochs_reads_the_common_epoch_from_the_stored_fold_curves() {
        let mut trial = FrozenTrial::new(0, 0, TrialState::Complete(0.25));
        // max_epochs 10: fold 0 at steps 1..3, fold 1 at steps 11..13 (as the objective reports).
        for (step, v) in [(1, 0.1), (2, 0.3), (3, 0.9), (11, 0.9), (12, 0.2), (13, 0.1)] {
            trial.intermediate.insert(step, v);
        }
        assert_eq!(
            job(vec![Family::Softmax], default_space(&[Family::Softmax], false, None)).best_epochs(&trial),
            Some(2)
        );
    }

    #[test]
    fn a_hold_out_trials_measured_metrics_are_what_a_replay_measures() {
        let data = gradus_data::load_builtin("iris", &Default::default()).unwrap();
        let families = vec![Family::Softmax, Family::Mlp];
        let job = job(families.clone(), default_space(&families, false, None));
        let study = gradus_tune::Study::in_memory(
            "t",
            gradus_tune::Direction::Minimize,
            Box::new(gradus_tune::samplers::RandomSampler::new(3)),
        )
        .unwrap();
        let measured = MeasuredTrials::default();
        let stop = StopFlag::default();
        study.optimize(|trial| job.objective(trial, &data, &stop, &|_, _, _| {}, &measured), 4, None, 1).unwrap();
        let best = study.best_trial().unwrap().unwrap();
        let read = job.validation_metrics(&best, &data, &measured).unwrap().unwrap();
        let replayed = job.validation_metrics(&best, &data, &MeasuredTrials::default()).unwrap().unwrap();
        assert_eq!(read, replayed);
        let Metrics::Classification { log_loss, accuracy, .. } = read else { panic!("classification metrics") };
        assert!((log_loss - best.value().unwrap()).abs() < 1e-9, "the score is the measured loss");
        // The trial records them, for reports, without the confusion matrix;
        // and which process and thread ran it.
        let recorded = &best.attrs[VALID_METRICS];
        assert_eq!(recorded["accuracy"].as_f64(), Some(accuracy), "{recorded}");
        assert!(recorded.get("confusion").is_none(), "{recorded}");
        let worker = &best.attrs[gradus_tune::WORKER];
        assert_eq!((worker["pid"].as_u64(), worker["slot"].as_u64()), (Some(std::process::id() as u64), Some(0)));
    }

    #[test]
    fn ranked_by_a_metric_a_trial_scores_it_at_the_epoch_its_loss_was_best_and_records_that_epoch() {
        let data = gradus_data::load_builtin("iris", &Default::default()).unwrap();
        let families = vec![Family::Softmax];
        let mut job = job(families.clone(), default_space(&families, false, None));
        job.metric = Metric::BalancedAccuracy;
        assert_eq!((job.monitor(), job.direction()), (Some(Metric::BalancedAccuracy), Direction::Maximize));
        let study =
            gradus_tune::Study::in_memory("t", job.direction(), Box::new(gradus_tune::samplers::RandomSampler::new(5)))
                .unwrap();
        let (measured, stop) = (MeasuredTrials::default(), StopFlag::default());
        study.optimize(|trial| job.objective(trial, &data, &stop, &|_, _, _| {}, &measured), 4, None, 1).unwrap();
        let trials = study.trials().unwrap();
        let best = study.best_trial().unwrap().unwrap();
        assert!(trials.iter().filter_map(FrozenTrial::value).all(|v| v <= best.value().unwrap()), "highest is best");
        assert_eq!(best_trials(&trials, 1, Direction::Maximize)[0].number, best.number);
        // The reports are the metric; the value is the metric at the
        // recorded epoch count, which the refit trains.
        let epochs = best.attrs[BEST_EPOCHS].as_u64().unwrap() as usize;
        assert_eq!(job.best_epochs(&best), Some(epochs));
        assert_eq!(best.intermediate[&(epochs as u64)], best.value().unwrap());
        let Some(Metrics::Classification { balanced_accuracy, .. }) =
            job.validation_metrics(&best, &data, &measured).unwrap()
        else {
            panic!("classification metrics")
        };
        assert_eq!(balanced_accuracy, best.value().unwrap());
    }

    #[test]
    fn a_refit_that_diverges_is_left_out_of_the_ensemble() {
        let data = gradus_data::load_builtin("iris", &Default::default()).unwrap();
        let job = job(vec![Family::Softmax], default_space(&[Family::Softmax], false, None));
        let trial = |number: u64, lr: f64| {
            let mut t = FrozenTrial::new(number, number, TrialState::Complete(0.1));
            t.params = BTreeMap::from([
                ("optimizer".to_string(), Value::from("sgd")),
                ("lr".to_string(), Value::from(lr)),
                ("batch_size".to_string(), Value::from(16)),
            ]);
            t
        };
        let (good, wild) = (trial(0, 0.05), trial(1, 1e30));
        let member = |trial| Member { trial, weight: 1.0, refit: true };
        let events = Mutex::new(Vec::new());
        let none = MeasuredTrials::default();
        let (ensemble, held) = job
            .refit_ensemble(&[member(&good), member(&wild)], &none, &data, 2, None, &|e| events.lock().unwrap().push(e))
            .unwrap();
        // Each refit tells its epochs in order, then its end.
        let events = events.into_inner().unwrap();
        for trial in [good.number, wild.number] {
            let mine: Vec<_> = events.iter().filter(|e| e.trial() == trial).copied().collect();
            let epochs = mine.iter().filter(|e| matches!(e, RefitProgress::Epoch { .. })).count();
            let want: Vec<_> = (1..=epochs).map(|epoch| RefitProgress::Epoch { trial, epoch }).collect();
            assert_eq!(mine[..epochs], want[..], "trial {trial}");
            assert_eq!(mine[epochs..], [RefitProgress::Done { trial }], "trial {trial}");
        }
        assert_eq!(held.iter().map(|m| m.trial.number).collect::<Vec<_>>(), [0], "the diverged refit is dropped");
        assert_eq!(ensemble.members().len(), 1);
        match job.refit_ensemble(&[member(&wild)], &none, &data, 1, None, &|_| {}) {
            Err(PipelineError::Diverged(msg)) => assert!(msg.contains("diverged"), "{msg}"),
            other => panic!("expected a divergence, got {:?}", other.map(|(_, held)| held.len())),
        }
    }

    #[test]
    fn the_text_vocabularies_are_searched_in_a_few_sizes_and_each_trial_reads_its_own() {
        use gradus_data::{Analyzer, Matrix, SparseRows, TextEncoder, Tokenizer, Vocabulary};
        // A vocabulary of 20,000 unigrams and 20,000 bigrams, the first most frequent.
        let mut text =
            TextEncoder::new("t".into(), Tokenizer::new(Analyzer::Words), "1-2".parse().unwrap(), 1 << 10).unwrap();
        let n = 40_000;
        let mut v =
            Vocabulary::new((0..n as u64).collect(), (0..n).map(|i| 1.0 + i as f32 / n as f32).collect(), 2, vec![]);
        v.orders = (0..n).map(|i| 1 + (i % 2) as u8).collect();
        text.vocabulary = Some(std::sync::Arc::new(v));
        let y = Target::Classes { labels: vec![0, 1], classes: vec!["a".into(), "b".into()] };
        let mut data = Dataset::numeric("t", Matrix::zeros(2, 0), y, &[], "y");
        data.encoding.text.push(text.clone());
        let mut sparse = SparseRows::new(n);
        sparse.push_row(&mut [(0, 0.6), (1, 0.8)]);
        sparse.push_row(&mut [(5001, 1.0)]);
        data.sparse = Some(sparse);
        let space = text_vocabulary_space(default_space(&[Family::Text], false, None), &data.encoding);
        assert_eq!(space.0["text_ngrams"], Distribution::int(1, 2));
        let sizes = Distribution::Categorical { choices: vec![4096.into(), 16384.into(), 40000.into()] };
        assert_eq!(space.0["text_features"], sizes);
        let job = job(vec![Family::Text], space);
        let params = |longest: i64, most: i64| {
            BTreeMap::from([("text_ngrams".to_string(), Value::from(longest)), ("text_features".into(), most.into())])
        };
        // Everything kept: the rows themselves, not a copy.
        assert!(matches!(job.trial_data(&params(2, 40000), &data).unwrap(), std::borrow::Cow::Borrowed(_)));
        // Unigrams only: the first row keeps input 0 at unit length, the second has none.
        let words = job.trial_data(&params(1, 40000), &data).unwrap();
        assert_eq!(words.encoding.n_sparse_outputs(), 20_000);
        let rows = words.sparse.as_ref().unwrap();
        assert_eq!((rows.row(0).0, rows.row(0).1, rows.row(1).0), (&[0u32][..], &[1.0f32][..], &[][..]));
        assert_eq!(job.trial_data(&params(2, 4096), &data).unwrap().encoding.n_sparse_outputs(), 4096);
        let err = job.trial_data(&params(0, 4096), &data).unwrap_err().to_string();
        assert!(err.contains("text_ngrams = 0 is not a positive whole number"), "{err}");
        // Trials read the same inputs when they choose the same vocabularies.
        let trial = |p: BTreeMap<String, Value>| {
            let mut t = FrozenTrial::new(0, 0, TrialState::Complete(0.1));
            t.params = p;
            t
        };
        assert!(TuneJob::same_inputs(&trial(params(1, 4096)), &trial(params(1, 4096))));
        assert!(!TuneJob::same_inputs(&trial(params(1, 4096)), &trial(params(2, 4096))));
        // Hashed text has no vocabulary to narrow: the space is as it was.
        data.encoding.text[0].vocabulary = None;
        let plain = default_space(&[Family::Text], false, None);
        assert_eq!(text_vocabulary_space(plain.clone(), &data.encoding), plain);
    }

    #[test]
    fn auto_searches_cnns_on_images_only_and_the_text_model_on_text_only() {
        let task = gradus_data::Task::Multiclass { n_classes: 10 };
        let auto = |images, text| ModelRequest::Auto.families(task, images, text).unwrap();
        assert_eq!(auto(false, false), [Family::Softmax, Family::Mlp]);
        // Images add the CNN, not the text model (whose trials would all fail).
        assert_eq!(auto(true, false), [Family::Softmax, Family::Mlp, Family::Cnn]);
        assert_eq!(auto(false, true), [Family::Softmax, Family::Text]);
    }

    #[test]
    fn a_text_trials_head_is_decoded_to_what_it_names() {
        let job = job(vec![Family::Text], default_space(&[Family::Text], false, None));
        let decode = |head: &str| {
            let params = BTreeMap::from([
                ("dim".to_string(), Value::from(12)),
                ("head".to_string(), Value::from(head)),
                ("width".to_string(), Value::from(40)),
            ]);
            job.job(&params).map(|train| train.model)
        };
        assert_eq!(decode("mlp").unwrap(), ModelChoice::Text { dim: 12, hidden: Some(40) });
        assert_eq!(decode("linear").unwrap(), ModelChoice::Text { dim: 12, hidden: None });
        let err = decode("deep").unwrap_err().to_string();
        assert!(err.contains("head = \"deep\"") && err.contains("linear, mlp"), "{err}");
    }

    #[test]
    fn the_final_members_keep_within_the_model_bytes_most_weighted_first_in_their_order() {
        use gradus_data::{Analyzer, Matrix, TextEncoder, Tokenizer};
        let job = job(vec![Family::Text], default_space(&[Family::Text], false, None));
        // Text in 2^20 buckets: a member of dim d holds 2^20·d·4 bytes of table.
        let y = Target::Classes { labels: vec![0, 1], classes: vec!["a".into(), "b".into()] };
        let mut data = Dataset::numeric("t", Matrix::zeros(2, 0), y, &[], "y");
        let text = TextEncoder::new("t".into(), Tokenizer::new(Analyzer::Words), "1-1".parse().unwrap(), 1 << 20);
        data.encoding.text.push(text.unwrap());
        let trial = |number: u64, dim: i64| {
            let mut t = FrozenTrial::new(number, number, TrialState::Complete(0.1));
            t.params = BTreeMap::from([("dim".to_string(), Value::from(dim))]);
            t
        };
        let kept = |dim: i64| {
            let trials = [trial(0, dim), trial(1, dim), trial(2, dim)];
            let mut members: Vec<Member> = trials
                .iter()
                .zip([1.0, 3.0, 2.0])
                .map(|(trial, weight)| Member { trial, weight, refit: true })
                .collect();
            let left_out = job.keep_within_model_bytes(&mut members, &data).unwrap();
            (left_out, members.iter().map(|m| m.trial.number).collect::<Vec<_>>())
        };
        // dim 8: 32 MB each, all three fit.
        assert_eq!(kept(8), (0, vec![0, 1, 2]));
        // dim 24: 96 MB each: the two most weighted (3, then 2) fit.
        assert_eq!(kept(24), (1, vec![1, 2]));
        // dim 128: 512 MB, more than the budget alone: the most weighted stays.
        assert_eq!(kept(128), (2, vec![1]));
    }

    #[test]
    fn a_timeout_retrains_the_most_weighted_members_it_affords_and_takes_the_others_as_trained() {
        let data = gradus_data::load_builtin("iris", &Default::default()).unwrap();
        let job = job(vec![Family::Softmax], default_space(&[Family::Softmax], false, None));
        // A trial of `epochs` one-second epochs, best at the last.
        let trial = |number: u64, epochs: u64| {
            let mut t = FrozenTrial::new(number, number, TrialState::Complete(0.1));
            t.params = BTreeMap::from([
                ("optimizer".to_string(), Value::from("sgd")),
                ("lr".to_string(), Value::from(0.05)),
                ("batch_size".to_string(), Value::from(16)),
            ]);
            (t.started_at, t.finished_at) = (Some(0.0), Some(epochs as f64));
            t.intermediate = (1..=epochs).map(|e| (e, 1.0 / e as f64)).collect();
            t.attrs.insert(BEST_EPOCHS.into(), epochs.into());
            t
        };
        let (a, b, c) = (trial(0, 8), trial(1, 4), trial(2, 2));
        // A refit trains on all the tuning rows: r times the trial's.
        let r = 1.0 / (1.0 - job.valid_fraction);
        let plan = |seconds: f64, jobs: usize, kept: &MeasuredTrials| -> Vec<bool> {
            let mut members = [
                Member { trial: &b, weight: 2.0, refit: true },
                Member { trial: &a, weight: 3.0, refit: true },
                Member { trial: &c, weight: 1.0, refit: true },
            ];
            job.plan_refits(&mut members, seconds, jobs, kept);
            members.iter().map(|m| m.refit).collect()
        };
        let none = MeasuredTrials::default();
        assert_eq!(plan(100.0, 1, &none), [true, true, true]);
        // One at a time, a (the most weighted: 8r) fits, a then b (12r) do not.
        assert_eq!(plan(9.0 * r, 1, &none), [false, true, false]);
        // Two at a time the three take a's 8r (their total shared: 7r).
        assert_eq!(plan(8.5 * r, 2, &none), [true, true, true]);
        // Not even a's refit fits: without its model it is retrained all the same,
        assert_eq!(plan(2.0, 1, &none), [false, true, false]);
        // and with it, taken as trained.
        let kept = MeasuredTrials::keeping_models(3, Direction::Minimize);
        let (train, mut stop) = job.replay(&a).unwrap();
        stop.epochs = 1;
        kept.keep_model(a.number, 0.1, train.run(&data, &mut stop).unwrap().saved);
        assert_eq!(plan(2.0, 1, &kept), [false, false, false]);
    }

    #[test]
    fn members_not_refitted_join_as_their_trials_trained_them_if_kept() {
        let data = gradus_data::load_builtin("iris", &Default::default()).unwrap();
        let families = vec![Family::Softmax];
        let job = job(families.clone(), default_space(&families, false, None));
        let study = gradus_tune::Study::in_memory(
            "t",
            gradus_tune::Direction::Minimize,
            Box::new(gradus_tune::samplers::RandomSampler::new(5)),
        )
        .unwrap();
        let measured = MeasuredTrials::keeping_models(2, Direction::Minimize);
        let stop = StopFlag::default();
        study.optimize(|trial| job.objective(trial, &data, &stop, &|_, _, _| {}, &measured), 5, None, 1).unwrap();
        let mut ranked = study.trials().unwrap();
        ranked.retain(|t| t.value().is_some());
        ranked.sort_by(|a, b| a.value().unwrap().total_cmp(&b.value().unwrap()));
        assert!(ranked.len() >= 3, "{} complete trials", ranked.len());
        // The two best are kept, no other.
        let kept: Vec<bool> = ranked.iter().map(|t| measured.has_model(t.number)).collect();
        assert_eq!(kept[..3], [true, true, false]);
        assert_eq!(kept.iter().filter(|k| **k).count(), 2);
        let members = [
            Member { trial: &ranked[1], weight: 2.0, refit: false },
            Member { trial: &ranked[0], weight: 1.0, refit: true },
            Member { trial: &ranked[2], weight: 1.0, refit: false },
        ];
        let (ensemble, held) = job.refit_ensemble(&members, &measured, &data, 1, None, &|_| {}).unwrap();
        let numbers = |m: &[Member]| m.iter().map(|m| (m.trial.number, m.refit)).collect::<Vec<_>>();
        assert_eq!(numbers(&held), numbers(&members[..2]), "the third's model was not kept");
        assert_eq!(ensemble.weights(), [2.0, 1.0]);
        // The member taken as trained predicts the validation rows as its trial measured them.
        let valid = job.hold_out_rows(&data).unwrap();
        let predicted = ensemble.members()[0].averaged_values_of(valid).unwrap();
        assert_eq!(predicted, measured.get(ranked[1].number).unwrap().predictions);
        assert!(!measured.has_model(ranked[1].number), "taken, not copied");
    }

    #[test]
    fn a_large_table_gets_shorter_epochs_and_larger_batches_a_small_one_neither() {
        let rows = |n: usize| {
            let x = gradus_data::Matrix::from_vec(n, 1, (0..n).map(|i| i as f32).collect()).unwrap();
            Dataset::numeric("t", x, Target::Real(vec![0.0; n]), &["x".into()], "y")
        };
        let mut small = job(vec![Family::Linear], default_space(&[Family::Linear], false, None));
        // 20,480 tuning rows train trials on 16,384 (LARGE_DATA_ROWS): a full pass is an epoch.
        assert!(!small.shorten_epochs_on_large_data(&rows(20_480)));
        assert_eq!(small.epoch_rows, None);
        assert_eq!(small.job(&BTreeMap::new()).unwrap().config.epoch_rows, None);
        let mut large = job(vec![Family::Linear], default_space(&[Family::Linear], false, None));
        assert!(large.shorten_epochs_on_large_data(&rows(26_049)), "Adult's trials train on 20,839 rows");
        assert_eq!(large.job(&BTreeMap::new()).unwrap().config.epoch_rows, Some(LARGE_DATA_EPOCH_ROWS));
        let space = large_data_batches(default_space(&[Family::Linear], false, None));
        assert_eq!(space.0["batch_size"], Distribution::Int { low: 64, high: 1024, log: true, step: 1 });
        assert_eq!(space.0["lr"], default_space(&[Family::Linear], false, None).0["lr"], "only the batches change");
    }

    #[test]
    fn every_choice_a_space_may_name_is_decoded_to_what_it_names_and_others_are_refused() {
        let merged = |name: &str, d: Distribution| {
            merge_space(
                default_space(&[Family::Mlp], true, None),
                SearchSpace(BTreeMap::from([(name.to_string(), d)])),
                "s.json",
            )
        };
        for name in ["optimizer", "activation", "schedule", "scaling"] {
            for &value in known_choices(name).unwrap() {
                let space = merged(name, Distribution::categorical([value])).unwrap();
                let job = job(vec![Family::Mlp], space);
                let train = job.job(&BTreeMap::from([(name.to_string(), Value::from(value))])).unwrap();
                let decoded = match name {
                    "optimizer" => format!("{:?}", train.config.optimizer),
                    "activation" => match &train.model {
                        ModelChoice::Mlp { activation, .. } => activation.name().to_string(),
                        other => panic!("{other:?}"),
                    },
                    "schedule" => format!("{:?}", train.config.schedule),
                    _ => format!("{:?}", train.scaling),
                };
                let expected = match (name, value) {
                    ("optimizer", "momentum") | ("optimizer", "nesterov") => "Sgd".to_string(),
                    ("scaling", "minmax") => "MinMax".to_string(),
                    _ => value.to_string(),
                };
                assert!(decoded.to_lowercase().starts_with(&expected.to_lowercase()), "{name} {value}: {decoded}");
            }
        }
        let job = job(vec![Family::Mlp], default_space(&[Family::Mlp], true, None));
        let nesterov = job.job(&BTreeMap::from([("optimizer".to_string(), Value::from("nesterov"))])).unwrap();
        assert_eq!(nesterov.config.optimizer, OptimizerConfig::Sgd { momentum: 0.9, nesterov: true });
        // A stored value no decoder knows is an error, not the default.
        for (name, value) in
            [("activation", Value::from("swish")), ("optimizer", Value::from(3)), ("model", "tree".into())]
        {
            let err = job.job(&BTreeMap::from([(name.to_string(), value.clone())])).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{name} {}", value.as_str().map_or(value.to_string(), str::to_string)))
                    || err.contains(&format!("{name} = {value}")),
                "{err}"
            );
        }
        // Unknown names, and values of the wrong kind, which would train a default.
        let err = merged("activation", Distribution::categorical(["relu", "swish"])).unwrap_err().to_string();
        assert!(err.contains("s.json: activation choice \"swish\"") && err.contains("sigmoid"), "{err}");
        let err = merged("optimizer", Distribution::categorical(["lbfgs"])).unwrap_err().to_string();
        assert!(err.contains("optimizer choice \"lbfgs\" is not one gradus can train"), "{err}");
        let err = merged("optimizer", Distribution::float(0.0, 1.0)).unwrap_err().to_string();
        assert!(err.contains("optimizer must be a categorical of names"), "{err}");
        let err = merged("batch_size", Distribution::float(16.0, 256.0)).unwrap_err().to_string();
        assert!(err.contains("batch_size must be an int range"), "{err}");
        let err = merged("lr", Distribution::categorical(["fast"])).unwrap_err().to_string();
        assert!(err.contains("lr must be a float or int range"), "{err}");
        assert!(merged("width", Distribution::Categorical { choices: vec![64.into(), 128.into()] }).is_ok());
    }

    #[test]
    fn a_cnn_search_decodes_stages_that_fit_its_images() {
        // 8x8 images: a 3x3 kernel fits the 8x8 and 4x4 stages, not a third at 2x2.
        assert_eq!(max_conv_stages([1, 8, 8]), Some(2));
        assert_eq!(max_conv_stages([3, 28, 28]), Some(3));
        assert_eq!(max_conv_stages([1, 2, 9]), None);
        let space = default_space(&[Family::Cnn], false, Some([1, 8, 8]));
        assert_eq!(space.0["conv_layers"], Distribution::int(1, 2));
        assert!(!space.0.contains_key("n_layers") && !space.0.contains_key("activation"));
        let mut job = job(vec![Family::Cnn], space);
        job.image_shape = Some([1, 8, 8]);
        let params: BTreeMap<String, Value> = [
            ("conv_layers", Value::from(2)),
            ("channels", 12.into()),
            ("pooling", "avg".into()),
            ("width", 40.into()),
            ("dropout", 0.2.into()),
            ("shift", 1.5.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ModelChoice::Cnn { input, conv, hidden, dropout, augment, .. } = job.job(&params).unwrap().model else {
            panic!("a CNN")
        };
        assert_eq!(input, [1, 8, 8]);
        let stages: Vec<(usize, usize, gradus_train::Pooling)> =
            conv.iter().map(|s| (s.channels, s.kernel, s.pooling)).collect();
        assert_eq!(stages, [(12, 3, gradus_train::Pooling::Avg), (24, 3, gradus_train::Pooling::Avg)]);
        assert_eq!((hidden, dropout, augment.shift), (vec![40], 0.2, 1.5));
        // Normalization: none (the default) or batch norm; nothing else.
        assert_eq!(job.space.0["normalization"], Distribution::categorical(["none", "batch"]));
        for (value, want) in [("none", false), ("batch", true)] {
            let mut with = params.clone();
            with.insert("normalization".into(), value.into());
            let ModelChoice::Cnn { batch_norm, .. } = job.job(&with).unwrap().model else { panic!("a CNN") };
            assert_eq!(batch_norm, want, "{value}");
        }
        let mut layer = params.clone();
        layer.insert("normalization".into(), "layer".into());
        assert!(job.job(&layer).unwrap_err().to_string().contains("normalization = \"layer\" is not one"));
        let refused = merge_space(
            default_space(&[Family::Cnn], false, Some([1, 8, 8])),
            SearchSpace(BTreeMap::from([("normalization".to_string(), Distribution::categorical(["group"]))])),
            "s.json",
        );
        let refused = refused.unwrap_err().to_string();
        assert!(refused.contains("normalization choice \"group\" is not one"), "{refused}");
        // Every starting point is a network that builds.
        let names: Vec<String> = (0..64).map(|i| format!("p{i}")).collect();
        for point in job.starting_points() {
            let choice = job.job(&point).unwrap();
            choice.architecture(&gradus_data::Encoding::numbers(&names), 10).unwrap().n_params().unwrap();
        }
        // Without the images' shape, a CNN trial is refused, not guessed.
        job.image_shape = None;
        assert!(job.job(&params).unwrap_err().to_string().contains("needs images"));
    }

    #[test]
    fn starting_points_cover_each_family_and_scaling_and_respect_a_narrowed_space() {
        let families = vec![Family::Softmax, Family::Mlp];
        let points = job(families.clone(), default_space(&families, true, None)).starting_points();
        assert_eq!(points.len(), 4, "two families times two scalings");
        let mlp = points.iter().find(|p| p["model"] == "mlp" && p["scaling"] == "minmax").unwrap();
        assert_eq!(mlp["width"], 256);
        assert_eq!(mlp["lr"], 1e-3);
        assert!(points.iter().filter(|p| p["model"] == "softmax").all(|p| !p.contains_key("width")));
        // A space that narrows lr past the default leaves lr to the sampler.
        let narrowed = merge_space(
            default_space(&families, false, None),
            SearchSpace(BTreeMap::from([("lr".to_string(), Distribution::log_float(0.05, 0.1))])),
            "space.json",
        )
        .unwrap();
        let points = job(families, narrowed).starting_points();
        assert_eq!(points.len(), 2);
        assert!(points.iter().all(|p| !p.contains_key("lr") && !p.contains_key("scaling")));
        assert!(points.iter().all(|p| p["optimizer"] == "adam"));
        // On images a CNN starts scaled globally, as `train --model cnn`
        // scales; the table families once per per-feature scaling.
        let families = vec![Family::Softmax, Family::Mlp, Family::Cnn];
        let space = default_space(&families, true, Some([1, 8, 8]));
        assert_eq!(space.0["scaling"], Distribution::categorical(["standard", "minmax", "global"]));
        let points = job(families.clone(), space).starting_points();
        let scalings = |model: &str| -> Vec<&Value> {
            points.iter().filter(|p| p["model"] == model).map(|p| &p["scaling"]).collect()
        };
        assert_eq!(scalings("cnn"), ["global"]);
        assert_eq!(scalings("mlp"), ["standard", "minmax"]);
        // A space that fixes the scaling to global starts every family there.
        let narrowed = merge_space(
            default_space(&families, true, Some([1, 8, 8])),
            SearchSpace(BTreeMap::from([("scaling".to_string(), Distribution::categorical(["global"]))])),
            "space.json",
        )
        .unwrap();
        let points = job(families, narrowed).starting_points();
        assert_eq!(points.iter().filter(|p| p["scaling"] == "global").count(), 3);
    }

    #[test]
    fn a_tables_mlps_search_periodic_embeddings_decoded_to_what_they_name() {
        let families = vec![Family::Logistic, Family::Mlp];
        let space = periodic_embeddings(default_space(&families, false, None));
        assert_eq!(space.0["embedding"], Distribution::categorical(["none", "periodic"]));
        assert_eq!(space.0["embedding_sigma"], Distribution::log_float(0.01, 100.0));
        let linear_only = periodic_embeddings(default_space(&[Family::Logistic], false, None));
        assert!(!linear_only.0.contains_key("embedding"), "no MLP, no embeddings");
        let job = job(families, space);
        let decode = |embedding: &str| {
            let params = BTreeMap::from([
                ("model".to_string(), Value::from("mlp")),
                ("embedding".to_string(), embedding.into()),
                ("embedding_sigma".to_string(), 2.5.into()),
            ]);
            job.job(&params).map(|j| match j.model {
                ModelChoice::Mlp { periodic, .. } => periodic,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(decode("periodic").unwrap(), Some(Periodic { frequencies: 16, dim: 16, sigma: 2.5 }));
        assert_eq!(decode("none").unwrap(), None);
        assert!(decode("fourier").unwrap_err().to_string().contains("embedding = \"fourier\""));
        // The default MLP starts with and without them; logistic regression has none.
        let points = job.starting_points();
        let mlps: Vec<_> = points.iter().filter(|p| p["model"] == "mlp").collect();
        assert_eq!(mlps.len(), 2);
        assert_eq!((&mlps[0]["embedding"], mlps[0].get("embedding_sigma")), (&Value::from("none"), None));
        assert_eq!((&mlps[1]["embedding"], &mlps[1]["embedding_sigma"]), (&Value::from("periodic"), &Value::from(3.0)));
        assert!(points.iter().filter(|p| p["model"] == "logistic").all(|p| !p.contains_key("embedding")));
        // A space file may fix them, but only to values gradus trains.
        let user = |d| SearchSpace(BTreeMap::from([("embedding".to_string(), d)]));
        let base = || periodic_embeddings(default_space(&[Family::Mlp], false, None));
        assert!(merge_space(base(), user(Distribution::categorical(["periodic"])), "s.json").is_ok());
        let err = merge_space(base(), user(Distribution::categorical(["fourier"])), "s.json").unwrap_err();
        assert!(err.to_string().contains("embedding choice \"fourier\" is not one gradus can train"), "{err}");
    }
}
