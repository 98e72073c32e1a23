//! `gradus train`: load, split and standardise a dataset, train a linear
//! model on it, and print the loss curve and the final metrics.

use std::time::Instant;

use anyhow::bail;
use clap::{Args, ValueEnum};
use gradus_data::{Dataset, LoadOptions, Matrix, StandardScaler, Target, Task, load};
use gradus_train::{
    LinearModel, Loss, Metrics, Model, Observer, OptimizerConfig, StepLog, Termination, TrainConfig, Trainer, evaluate,
};
use serde::Serialize;

use crate::RunFailed;

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// A CSV file (optionally gzip'd) with a header row, or builtin:NAME.
    #[arg(long, value_name = "PATH|builtin:NAME")]
    data: String,
    /// The target column's name [default: the last column].
    #[arg(long, value_name = "COL")]
    target: Option<String>,
    /// linear: regression (MSE); logistic: binary classes; softmax: any number of classes.
    #[arg(long, value_enum)]
    model: ModelArg,
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// Learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// Passes over the training rows.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Rows per step for sgd and adam [default: 32]; gd always uses all rows.
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Heavy-ball momentum for sgd.
    #[arg(long, value_name = "F")]
    momentum: Option<f32>,
    /// L2 penalty l2/2·‖w‖² on the weights (not the intercept).
    #[arg(long, default_value_t = 0.0)]
    l2: f32,
    /// Stop when the epoch loss changes by less than this; 0 never stops early.
    #[arg(long, default_value_t = 1e-6)]
    tol: f64,
    /// Stop after this many optimizer steps.
    #[arg(long, value_name = "N")]
    max_iter: Option<usize>,
    /// Seeds the split, the initialisation and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the loss every N steps; 0 prints none [default: about ten lines].
    #[arg(long, value_name = "N")]
    log_every: Option<usize>,
    /// The fraction of rows held out for validation (stratified for classes).
    #[arg(long, default_value_t = 0.2)]
    valid_fraction: f64,
    /// Keep the features as they are instead of standardising them on the training rows.
    #[arg(long)]
    no_standardize: bool,
    /// Print one JSON object with the results instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    Linear,
    Logistic,
    Softmax,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Gd,
    Sgd,
    Adam,
}

impl ModelArg {
    fn loss(self) -> Loss {
        match self {
            ModelArg::Linear => Loss::Mse,
            ModelArg::Logistic => Loss::BinaryCrossEntropy,
            ModelArg::Softmax => Loss::SoftmaxCrossEntropy,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ModelArg::Linear => "linear",
            ModelArg::Logistic => "logistic",
            ModelArg::Softmax => "softmax",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ModelArg::Linear => "linear regression",
            ModelArg::Logistic => "logistic regression",
            ModelArg::Softmax => "softmax regression",
        }
    }
}

/// Turns the flags into a validated training configuration.
fn train_config(args: &TrainArgs) -> anyhow::Result<Trainer> {
    let optimizer = match args.optimizer {
        OptimizerArg::Gd => OptimizerConfig::Gd,
        OptimizerArg::Sgd => OptimizerConfig::sgd(args.momentum.unwrap_or(0.0)),
        OptimizerArg::Adam => OptimizerConfig::adam(),
    };
    if args.momentum.is_some() && !matches!(args.optimizer, OptimizerArg::Sgd) {
        bail!("--momentum applies to --optimizer sgd only");
    }
    if args.batch_size.is_some() && optimizer.is_full_batch() {
        bail!("--batch-size does not apply to --optimizer gd, which always uses every training row");
    }
    if !(0.0..1.0).contains(&args.valid_fraction) {
        bail!("invalid --valid-fraction {}: must be in [0, 1)", args.valid_fraction);
    }
    let config = TrainConfig {
        lr: args.lr,
        epochs: args.epochs,
        optimizer: optimizer.clone(),
        batch_size: (!optimizer.is_full_batch()).then(|| args.batch_size.unwrap_or(32)),
        l2: args.l2,
        tol: args.tol,
        max_iter: args.max_iter,
        seed: args.seed,
        log_every: 0,
        ..TrainConfig::default()
    };
    Ok(Trainer::new(config)?)
}

/// The training and validation parts, standardised on the training rows.
struct Prepared {
    train: Dataset,
    valid: Option<Dataset>,
    /// Set when the regression target was standardised for training.
    target_scale: Option<TargetScale>,
}

/// How a regression target was standardised: the model learns `(y − mean) / std`.
struct TargetScale {
    mean: f32,
    std: f32,
    /// The training rows' target in its own units.
    original: Target,
}

/// Splits off the validation rows and standardises features (and a regression
/// target) with statistics of the training rows only.
fn prepare(data: &Dataset, args: &TrainArgs) -> anyhow::Result<Prepared> {
    let (mut train, mut valid) = if args.valid_fraction > 0.0 {
        let split = data.split(args.valid_fraction, 0.0, args.seed)?;
        let valid = (!split.valid.is_empty()).then(|| data.subset(&split.valid));
        (data.subset(&split.train), valid)
    } else {
        (data.clone(), None)
    };
    let mut target_scale = None;
    if !args.no_standardize {
        let scaler = StandardScaler::fit(&train.x)?;
        scaler.transform(&mut train.x)?;
        if let Some(v) = &mut valid {
            scaler.transform(&mut v.x)?;
        }
        if let Target::Real(y) = &train.y {
            let mut column = Matrix::from_vec(y.len(), 1, y.clone()).expect("n x 1");
            let scaler = StandardScaler::fit(&column)?;
            scaler.transform(&mut column)?;
            let original = std::mem::replace(&mut train.y, Target::Real(column.as_slice().to_vec()));
            target_scale = Some(TargetScale { mean: scaler.mean[0], std: scaler.scale[0], original });
        }
    }
    Ok(Prepared { train, valid, target_scale })
}

/// The `--json` result: one object, stable field names (see the README).
#[derive(Serialize)]
struct JsonOutput<'a> {
    data: &'a str,
    rows: usize,
    features: usize,
    target: &'a str,
    task: &'static str,
    classes: Option<&'a Vec<String>>,
    model: &'static str,
    config: &'a TrainConfig,
    train_rows: usize,
    valid_rows: usize,
    termination: Termination,
    epochs: usize,
    steps: usize,
    seconds: f64,
    /// The last objective value; null when training diverged to NaN/inf.
    final_loss: Option<f64>,
    train: Option<Metrics>,
    valid: Option<Metrics>,
    /// The mean training objective of each epoch.
    loss_curve: Vec<f64>,
}

/// Prints the step lines the trainer logs (every `log_every` steps).
struct StepPrinter;

impl Observer for StepPrinter {
    fn on_step(&mut self, log: &StepLog) {
        println!("step {} loss {} grad_norm {}", log.step, num(log.loss), num(log.grad_norm));
    }
}

/// Four decimals, or scientific notation for values too small or large for that.
fn num(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) { format!("{v:.4e}") } else { format!("{v:.4}") }
}

fn metrics_text(m: &Metrics) -> String {
    match m {
        Metrics::Regression { mse, r2 } => format!("mse {}  r2 {:.4}", num(*mse), r2),
        Metrics::Classification { accuracy, log_loss } => {
            format!("accuracy {accuracy:.4}  log_loss {}", num(*log_loss))
        }
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let trainer = train_config(&args)?;
    let loss = args.model.loss();
    let options = LoadOptions { target: args.target.clone(), target_kind: loss.target_kind() };
    let data = load(&args.data, &options)?;
    let n_outputs = match (&data.y, args.model) {
        (Target::Classes { classes, .. }, ModelArg::Logistic) if classes.len() != 2 => bail!(
            "--model logistic needs a target with 2 classes; '{}' has {} (use --model softmax)",
            data.target_name,
            classes.len()
        ),
        (Target::Classes { classes, .. }, ModelArg::Softmax) => classes.len(),
        _ => 1,
    };
    let Prepared { mut train, valid, target_scale } = prepare(&data, &args)?;
    let mut model = LinearModel::new(data.n_features(), n_outputs, true);

    let batch = if trainer.config().optimizer.is_full_batch() {
        train.n_samples()
    } else {
        trainer.config().batch_size.unwrap_or(train.n_samples()).min(train.n_samples())
    };
    let total_steps = args.epochs * train.n_samples().div_ceil(batch);
    let log_every = if args.json { 0 } else { args.log_every.unwrap_or((total_steps / 10).max(1)) };
    let config = TrainConfig { log_every, ..trainer.config().clone() };
    let trainer = Trainer::new(config)?;

    if !args.json {
        let classes = match &data.y {
            Target::Classes { classes, .. } if classes.len() > 10 => {
                format!(" (classes: {}, ...)", classes[..10].join(", "))
            }
            Target::Classes { classes, .. } => format!(" (classes: {})", classes.join(", ")),
            Target::Real(_) => String::new(),
        };
        println!(
            "data     {}: {} rows, {} features, target '{}', {}{classes}",
            data.name,
            data.n_samples(),
            data.n_features(),
            data.target_name,
            data.task()
        );
        println!(
            "split    {} train / {} valid (seed {}), {}",
            train.n_samples(),
            valid.as_ref().map_or(0, Dataset::n_samples),
            args.seed,
            match (args.no_standardize, &target_scale) {
                (true, _) => "as given",
                (false, None) => "features standardised on the training rows",
                (false, Some(_)) => "features and target standardised on the training rows (metrics in target units)",
            }
        );
        println!(
            "model    {} ({} parameters), {} lr {} for {} epochs, batch {batch}",
            args.model.describe(),
            model.params().len(),
            trainer.config().optimizer.name(),
            args.lr,
            args.epochs
        );
    }

    let start = Instant::now();
    let report = trainer.fit(&mut model, loss, &train, valid.as_ref(), &mut StepPrinter)?;
    let seconds = start.elapsed().as_secs_f64();
    let diverged = report.termination == Termination::Diverged;
    if let Some(scale) = target_scale {
        // Predict in the target's own units, and measure the training rows in them too.
        model.rescale_outputs(&[scale.std], &[scale.mean]);
        train.y = scale.original;
    }
    let train_metrics = (!diverged).then(|| evaluate(&model, loss, &train)).transpose()?;
    let valid_metrics = match (&valid, diverged) {
        (Some(v), false) => Some(evaluate(&model, loss, v)?),
        _ => None,
    };

    if args.json {
        let out = JsonOutput {
            data: &data.name,
            rows: data.n_samples(),
            features: data.n_features(),
            target: &data.target_name,
            task: match data.task() {
                Task::Regression => "regression",
                Task::Binary => "binary",
                Task::Multiclass { .. } => "multiclass",
            },
            classes: match &data.y {
                Target::Classes { classes, .. } => Some(classes),
                Target::Real(_) => None,
            },
            model: args.model.name(),
            config: trainer.config(),
            train_rows: train.n_samples(),
            valid_rows: valid.as_ref().map_or(0, Dataset::n_samples),
            termination: report.termination,
            epochs: report.epochs,
            steps: report.steps,
            seconds,
            final_loss: report.final_loss.is_finite().then_some(report.final_loss),
            train: train_metrics,
            valid: valid_metrics,
            loss_curve: report.history.iter().map(|e| e.train_loss).collect(),
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "stopped  {} after {} epochs, {} steps, {:.3} s",
            report.termination, report.epochs, report.steps, seconds
        );
        if let Some(m) = &train_metrics {
            println!("train    {}", metrics_text(m));
        }
        if let Some(m) = &valid_metrics {
            println!("valid    {}", metrics_text(m));
        }
    }
    if diverged {
        return Err(RunFailed(format!(
            "training diverged at step {} (loss {}); try a smaller --lr",
            report.steps,
            num(report.final_loss)
        ))
        .into());
    }
    Ok(())
}
