//! `gradus train`: flags in, a [`TrainJob`] run, the loss curve and metrics
//! out, and the model saved with `--out`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::{Args, ValueEnum};
use gradus::data::{Scaling, Target, Task};
use gradus::pipeline::{Family, ModelChoice, Periodic, TrainJob};
use gradus::train::{
    Activation, Augment, ConvStage, EarlyStopping, Loss, Metrics, OptimizerConfig, Pooling, Schedule, Shape,
    Termination, TrainConfig, WeightInit,
};
use serde::Serialize;

use crate::progress::Progress;
use crate::{RunFailed, metrics_line, num};

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// A CSV file (optionally gzip'd) with a header row, or builtin:NAME.
    #[arg(long, value_name = "PATH|builtin:NAME")]
    data: String,
    /// The target column's name [default: the last column].
    #[arg(long, value_name = "COL")]
    target: Option<String>,
    /// linear: real target; logistic: 2 classes; softmax: k classes; mlp: any
    /// target; cnn: any target, on images; text: any target, on text
    /// columns (linear, logistic and softmax read text too).
    #[arg(long, value_parser = crate::family_parser(), value_name = "MODEL")]
    model: Family,
    /// The file's character encoding: utf-8, latin-1 (iso-8859-1) or windows-1252 (cp1252).
    #[arg(long, default_value = "utf-8", value_parser = crate::parse_encoding, value_name = "NAME")]
    encoding: gradus::data::TextEncoding,
    #[command(flatten)]
    text: crate::text_args::TextArgs,
    /// Text model: the values of each n-gram's embedding [default: 16].
    #[arg(long, value_name = "N")]
    dim: Option<usize>,
    /// Hidden Dense layer widths, comma-separated: an MLP's (and a CNN's
    /// after its convolutions) [default: 128]; a text model's MLP head (one
    /// layer) [default: none, a linear head].
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    hidden: Vec<usize>,
    /// MLP (and CNN) activation.
    #[arg(long, value_enum, default_value = "relu")]
    activation: ActivationArg,
    /// MLP (and CNN) dropout probability on hidden Dense units.
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// CNN: each row's image shape [default: from the data: an IDX file's
    /// header, builtin:digits 1,8,8, builtin:mnist_5k 1,28,28].
    #[arg(long, value_delimiter = ',', num_args = 1.., value_name = "C,H,W")]
    image_shape: Option<Vec<usize>>,
    /// A folder of images: resize every image to this height and width
    /// (HxW, or one side for a square) [default: all must share one size].
    #[arg(long, value_parser = crate::parse_image_size, value_name = "HxW")]
    image_size: Option<[usize; 2]>,
    /// CNN: output channels of each convolution stage, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "32,64", value_name = "N,N,...")]
    channels: Vec<usize>,
    /// CNN: the side of each stage's square kernel (stride 1, padded to keep the size).
    #[arg(long, default_value_t = 5, value_name = "K")]
    kernel: usize,
    /// CNN: the side of the pooling window after each stage (1 for none).
    #[arg(long, default_value_t = 2, value_name = "P")]
    pool: usize,
    /// CNN: each window's maximum or mean.
    #[arg(long, value_enum, default_value = "max")]
    pooling: PoolingArg,
    /// CNN: average each channel over the image after the stages, so the
    /// Dense layers see one value per channel.
    #[arg(long)]
    global_pool: bool,
    /// CNN augmentation, training only: move each image by up to this many
    /// pixels each way, vertically and horizontally (bilinear; 0: off).
    #[arg(long, default_value_t = 0.0, value_name = "PIXELS")]
    shift: f32,
    /// CNN augmentation: turn each image by up to this many degrees either way (0: off).
    #[arg(long, default_value_t = 0.0, value_name = "DEGREES")]
    rotate: f32,
    /// CNN augmentation: mirror half the images left to right (off: digits are not symmetric).
    #[arg(long)]
    flip: bool,
    /// CNN: batch normalisation after each convolution (before its
    /// activation), with running statistics for prediction.
    #[arg(long)]
    batch_norm: bool,
    /// MLP weight initialisation (auto: He for relu/gelu, Xavier for tanh/sigmoid).
    #[arg(long, value_enum, default_value = "auto")]
    init: InitArg,
    /// MLP: periodic embeddings of each numeric column's value before the
    /// first layer (16 frequencies, 16 values per column; Gorishniy et al.
    /// 2022's PLR).
    #[arg(long, value_enum, default_value = "none")]
    embedding: EmbeddingArg,
    /// MLP with --embedding periodic: the standard deviation the embeddings'
    /// frequencies start from (on the scaled inputs).
    #[arg(long, value_name = "SIGMA")]
    embedding_sigma: Option<f32>,
    /// The loss for a real target [default: mse].
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// δ of the Huber loss.
    #[arg(long, default_value_t = 1.0)]
    huber_delta: f32,
    /// The optimizer [default: adam; sgd for --model text, as fastText].
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Learning rate, unused by lbfgs [default: 0.01; 2 for --model text with sgd, on the mean loss of a batch].
    #[arg(long, value_name = "LR")]
    lr: Option<f32>,
    /// Momentum for sgd and rmsprop [default: 0; 0.9 for momentum and nesterov].
    #[arg(long, value_name = "F")]
    momentum: Option<f32>,
    /// Decoupled weight decay for adamw.
    #[arg(long, value_name = "F")]
    weight_decay: Option<f32>,
    /// Passes over the training rows, lbfgs: iterations [default: 100; 5 for
    /// --model text, as fastText].
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Rows per step for the mini-batch optimizers [default: 32].
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Learning-rate schedule, applied per epoch.
    #[arg(long, value_enum, default_value = "constant")]
    schedule: ScheduleArg,
    /// cosine: epochs of linear warm-up.
    #[arg(long, value_name = "N")]
    warmup: Option<usize>,
    /// step: epochs between decays [default: 10].
    #[arg(long, value_name = "N")]
    step_size: Option<usize>,
    /// step, exponential, plateau: the decay factor [default: 0.1, 0.95, 0.1].
    #[arg(long, value_name = "F")]
    gamma: Option<f32>,
    /// cosine, plateau: the floor of the learning rate [default: 0].
    #[arg(long, value_name = "F")]
    min_lr: Option<f32>,
    /// plateau: epochs without improvement before a decay [default: 10].
    #[arg(long, value_name = "N")]
    plateau_patience: Option<usize>,
    /// Early stopping: epochs without a better validation loss before stopping.
    #[arg(long, value_name = "N")]
    patience: Option<usize>,
    /// Early stopping: the least decrease that counts as better.
    #[arg(long, default_value_t = 0.0)]
    min_delta: f64,
    /// Early stopping: keep the last weights instead of the best epoch's.
    #[arg(long)]
    keep_last: bool,
    /// Rescale each gradient to at most this L2 norm.
    #[arg(long, value_name = "F")]
    clip_norm: Option<f32>,
    /// L1 penalty l1·‖w‖₁ on the weights (not the biases).
    #[arg(long, default_value_t = 0.0)]
    l1: f32,
    /// L2 penalty l2/2·‖w‖² on the weights (not the biases).
    #[arg(long, default_value_t = 0.0)]
    l2: f32,
    /// Stop when the epoch loss has not beaten its best by this for 5 epochs; 0 never stops early.
    #[arg(long, default_value_t = 1e-6)]
    tol: f64,
    /// Stop after this many optimizer steps.
    #[arg(long, value_name = "N")]
    max_iter: Option<usize>,
    /// Seeds the split, the initialisation, dropout and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the loss every N steps; 0 prints none [default: about ten lines].
    #[arg(long, value_name = "N")]
    log_every: Option<usize>,
    /// Draw the run's loss curve as an SVG here: the batch loss as it goes
    /// (about 200 points), each epoch's mean training loss and its
    /// validation loss.
    #[arg(long, value_name = "FILE")]
    plot_loss: Option<PathBuf>,
    /// The fraction of rows held out for validation (stratified for classes).
    #[arg(long, default_value_t = 0.2)]
    valid_fraction: f64,
    /// Feature scaling fitted on the training rows: standard, minmax, global
    /// (one range for every feature: pixels) or none [default: standard;
    /// global for --model cnn].
    #[arg(long, value_parser = crate::scaling_parser(), value_name = "SCALE")]
    scale: Option<Scaling>,
    /// Save the trained model (weights, architecture, preprocessing) here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// No progress bar and no step lines.
    #[arg(long, short)]
    quiet: bool,
    /// Print one JSON object with the results instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ActivationArg {
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
}

#[derive(Clone, Copy, ValueEnum)]
enum PoolingArg {
    Max,
    Avg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EmbeddingArg {
    None,
    Periodic,
}

#[derive(Clone, Copy, ValueEnum)]
enum InitArg {
    Auto,
    He,
    Xavier,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    Mse,
    Mae,
    Huber,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum OptimizerArg {
    Gd,
    Sgd,
    Momentum,
    Nesterov,
    Adagrad,
    Rmsprop,
    Adam,
    Adamw,
    Lbfgs,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ScheduleArg {
    Constant,
    Step,
    Exponential,
    Cosine,
    Plateau,
}

impl TrainArgs {
    /// `--optimizer`, or the model's default.
    fn optimizer(&self) -> OptimizerArg {
        self.optimizer.unwrap_or(if self.model == Family::Text { OptimizerArg::Sgd } else { OptimizerArg::Adam })
    }

    /// `--lr`, or the default for the model and optimizer.
    fn lr(&self) -> f32 {
        self.lr.unwrap_or(if self.model == Family::Text && self.optimizer() == OptimizerArg::Sgd { 2.0 } else { 0.01 })
    }

    /// `--epochs`, or the model's default.
    fn epochs(&self) -> usize {
        self.epochs.unwrap_or(if self.model == Family::Text { 5 } else { 100 })
    }
}

fn optimizer(args: &TrainArgs) -> anyhow::Result<OptimizerConfig> {
    use OptimizerArg as O;
    if args.momentum.is_some() && !matches!(args.optimizer(), O::Sgd | O::Momentum | O::Nesterov | O::Rmsprop) {
        bail!("--momentum applies to sgd, momentum, nesterov and rmsprop only");
    }
    if args.weight_decay.is_some() && args.optimizer() != O::Adamw {
        bail!("--weight-decay applies to adamw only (use --l2 for a penalty with other optimizers)");
    }
    Ok(match args.optimizer() {
        O::Gd => OptimizerConfig::Gd,
        O::Sgd => OptimizerConfig::sgd(args.momentum.unwrap_or(0.0)),
        O::Momentum => OptimizerConfig::sgd(args.momentum.unwrap_or(0.9)),
        O::Nesterov => OptimizerConfig::Sgd { momentum: args.momentum.unwrap_or(0.9), nesterov: true },
        O::Adagrad => OptimizerConfig::adagrad(),
        O::Rmsprop => OptimizerConfig::Rmsprop { alpha: 0.99, eps: 1e-8, momentum: args.momentum.unwrap_or(0.0) },
        O::Adam => OptimizerConfig::adam(),
        O::Adamw => OptimizerConfig::adamw(args.weight_decay.unwrap_or(0.01)),
        O::Lbfgs => OptimizerConfig::lbfgs(),
    })
}

fn schedule(args: &TrainArgs) -> anyhow::Result<Schedule> {
    use ScheduleArg as S;
    let only = |flag: &str, given: bool, allowed: &[ScheduleArg], names: &str| {
        if given && !allowed.contains(&args.schedule) {
            bail!("{flag} applies to --schedule {names} only");
        }
        Ok(())
    };
    only("--warmup", args.warmup.is_some(), &[S::Cosine], "cosine")?;
    only("--step-size", args.step_size.is_some(), &[S::Step], "step")?;
    only("--gamma", args.gamma.is_some(), &[S::Step, S::Exponential, S::Plateau], "step, exponential or plateau")?;
    only("--min-lr", args.min_lr.is_some(), &[S::Cosine, S::Plateau], "cosine or plateau")?;
    only("--plateau-patience", args.plateau_patience.is_some(), &[S::Plateau], "plateau")?;
    Ok(match args.schedule {
        S::Constant => Schedule::Constant,
        S::Step => Schedule::Step { step_size: args.step_size.unwrap_or(10), gamma: args.gamma.unwrap_or(0.1) },
        S::Exponential => Schedule::Exponential { gamma: args.gamma.unwrap_or(0.95) },
        S::Cosine => Schedule::Cosine { warmup: args.warmup.unwrap_or(0), min_lr: args.min_lr.unwrap_or(0.0) },
        S::Plateau => Schedule::ReduceOnPlateau {
            factor: args.gamma.unwrap_or(0.1),
            patience: args.plateau_patience.unwrap_or(10),
            threshold: 1e-4,
            min_lr: args.min_lr.unwrap_or(0.0),
        },
    })
}

fn activation(arg: ActivationArg) -> Activation {
    match arg {
        ActivationArg::Relu => Activation::Relu,
        ActivationArg::Tanh => Activation::Tanh,
        ActivationArg::Sigmoid => Activation::Sigmoid,
        ActivationArg::Gelu => Activation::Gelu,
    }
}

/// The CNN's input shape: `--image-shape`, else what the data source says.
/// `folder`: the shape of an image folder's images, as read.
fn image_shape(args: &TrainArgs, folder: Option<Shape>) -> anyhow::Result<Shape> {
    if let Some(given) = &args.image_shape {
        return match given.as_slice() {
            &[c, h, w] if c > 0 && h > 0 && w > 0 => Ok([c, h, w]),
            _ => bail!("--image-shape takes three sides of at least 1, C,H,W (such as 1,28,28); got {given:?}"),
        };
    }
    match folder.map_or_else(|| gradus::data::image_shape(&args.data), |s| Ok(Some(s)))? {
        Some(shape) => Ok(shape),
        None => bail!(
            "--model cnn needs images: an IDX images file, a folder of images, builtin:digits or builtin:mnist_5k, \
             or --image-shape C,H,W for a CSV of pixel columns ({} says nothing of its shape)",
            args.data
        ),
    }
}

/// Turns the flags into a training job; every check on flags happens here.
/// `folder`: the shape of an image folder's images, when the data are one.
fn job(args: &TrainArgs, folder: Option<Shape>) -> anyhow::Result<TrainJob> {
    let optimizer = optimizer(args)?;
    if args.batch_size.is_some() && optimizer.is_full_batch() {
        bail!(
            "--batch-size does not apply to --optimizer {}, which uses every training row per step",
            optimizer.name()
        );
    }
    if !(0.0..1.0).contains(&args.valid_fraction) {
        bail!("invalid --valid-fraction {}: must be in [0, 1)", args.valid_fraction);
    }
    if args.model != Family::Cnn {
        let given = [
            ("--image-shape", args.image_shape.is_some()),
            ("--global-pool", args.global_pool),
            ("--shift", args.shift != 0.0),
            ("--rotate", args.rotate != 0.0),
            ("--flip", args.flip),
            ("--batch-norm", args.batch_norm),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
            bail!("{flag} applies to --model cnn, not --model {}", args.model.name());
        }
    }
    if args.embedding == EmbeddingArg::Periodic && args.model != Family::Mlp {
        bail!("--embedding applies to --model mlp, not --model {}", args.model.name());
    }
    if args.embedding_sigma.is_some() && args.embedding != EmbeddingArg::Periodic {
        bail!("--embedding-sigma applies to --embedding periodic");
    }
    if args.dim.is_some() && args.model != Family::Text {
        bail!("--dim applies to --model text, not --model {}", args.model.name());
    }
    if args.dim == Some(0) {
        bail!("invalid --dim 0: an embedding needs at least one value");
    }
    let hidden = if args.hidden.is_empty() { vec![128] } else { args.hidden.clone() };
    if !args.hidden.is_empty() && matches!(args.model, Family::Linear | Family::Logistic | Family::Softmax) {
        bail!("--hidden applies to --model mlp, cnn and text, not --model {}", args.model.name());
    }
    if args.hidden.contains(&0) {
        bail!("invalid --hidden {:?}: a hidden layer needs at least one unit", args.hidden);
    }
    let model = match args.model {
        Family::Text => ModelChoice::Text {
            dim: args.dim.unwrap_or(gradus::pipeline::DEFAULT_TEXT_DIM),
            hidden: match args.hidden.as_slice() {
                [] => None,
                &[units] => Some(units),
                more => bail!("--hidden {more:?}: a text model's MLP head has one hidden layer (give one width)"),
            },
        },
        Family::Linear => ModelChoice::Linear,
        Family::Logistic => ModelChoice::Logistic,
        Family::Softmax => ModelChoice::Softmax,
        Family::Cnn => ModelChoice::Cnn {
            input: image_shape(args, folder)?,
            conv: args
                .channels
                .iter()
                .map(|&c| ConvStage {
                    pooling: match args.pooling {
                        PoolingArg::Max => Pooling::Max,
                        PoolingArg::Avg => Pooling::Avg,
                    },
                    ..ConvStage::same(c, args.kernel, args.pool)
                })
                .collect(),
            global_pool: args.global_pool,
            augment: Augment { shift: args.shift, rotate: args.rotate, flip: args.flip },
            batch_norm: args.batch_norm,
            hidden: hidden.clone(),
            activation: activation(args.activation),
            dropout: args.dropout,
        },
        Family::Mlp => ModelChoice::Mlp {
            hidden: hidden.clone(),
            activation: activation(args.activation),
            dropout: args.dropout,
            init: match args.init {
                InitArg::Auto => WeightInit::Auto,
                InitArg::He => WeightInit::He,
                InitArg::Xavier => WeightInit::Xavier,
            },
            periodic: (args.embedding == EmbeddingArg::Periodic)
                .then(|| Periodic::with_sigma(args.embedding_sigma.unwrap_or(1.0))),
        },
    };
    let loss = match args.loss {
        None => None,
        Some(_) if matches!(args.model, Family::Logistic | Family::Softmax) => {
            bail!("--loss chooses a regression loss; --model {} trains with cross-entropy", model.name())
        }
        Some(LossArg::Mse) => Some(Loss::Mse),
        Some(LossArg::Mae) => Some(Loss::Mae),
        Some(LossArg::Huber) => Some(Loss::Huber { delta: args.huber_delta }),
    };
    let config = TrainConfig {
        batch_size: (!optimizer.is_full_batch()).then(|| args.batch_size.unwrap_or(32)),
        optimizer,
        lr: args.lr(),
        schedule: schedule(args)?,
        epochs: args.epochs(),
        l1: args.l1,
        l2: args.l2,
        clip_norm: args.clip_norm,
        early_stopping: args.patience.map(|patience| EarlyStopping {
            patience,
            min_delta: args.min_delta,
            restore_best: !args.keep_last,
        }),
        tol: args.tol,
        max_iter: args.max_iter,
        seed: args.seed,
        log_every: 0,
        ..TrainConfig::default()
    };
    config.validate()?;
    Ok(TrainJob {
        model,
        loss,
        scaling: args.scale.unwrap_or(if args.model == Family::Cnn { Scaling::Global } else { Scaling::Standard }),
        valid_fraction: args.valid_fraction,
        balanced: false,
        train_metrics: true,
        config,
    })
}

/// The rows of a CSV file or built-in dataset: a table of numbers as it is;
/// one with text, categories, booleans or dates (or read in another
/// character encoding) typed and encoded as `gradus tune` encodes it, the
/// encoding fitted on the training rows of the split training then makes.
fn load_table(args: &TrainArgs, job: &TrainJob) -> anyhow::Result<gradus::data::Dataset> {
    use gradus::data::{DataError, RawOptions, TextEncoding};
    use gradus::pipeline::PipelineError;
    let numbers_only = args.encoding == TextEncoding::Utf8 && !args.text.given();
    let mut not_a_number = None;
    if numbers_only || gradus::data::is_idx_images(&args.data) {
        match job.load(&args.data, args.target.clone()) {
            Err(PipelineError::Data(e @ DataError::NotANumber { .. })) if !args.data.starts_with("builtin:") => {
                not_a_number = Some(e)
            }
            other => return Ok(other?),
        }
    }
    let mut raw = gradus::data::load_raw(
        &args.data,
        &RawOptions {
            target: args.target.clone(),
            target_kind: job.model.target_kind(job.loss),
            encoding: args.encoding,
            ..RawOptions::default()
        },
    )?;
    raw.text = args.text.options()?;
    let has_text = raw.has_text();
    // Without text, a cell that is not a number is an error here, not a
    // category guessed (`gradus tune` reads such tables, showing each
    // column's kind).
    if let (Some(e), false) = (not_a_number, has_text) {
        return Err(e.into());
    }
    args.text.check_applies(has_text, &args.data, "")?;
    let split = raw.split(args.valid_fraction, 0.0, args.seed)?;
    let encoding = raw.fit_encoding(&split.train)?;
    let rows: Vec<usize> = (0..raw.n_rows()).collect();
    Ok(raw.dataset(&rows, &encoding)?)
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
    architecture: String,
    loss: Loss,
    config: &'a TrainConfig,
    train_rows: usize,
    valid_rows: usize,
    termination: Termination,
    epochs: usize,
    steps: usize,
    best_epoch: Option<usize>,
    seconds: f64,
    /// The training loop's own time (in `seconds`, also loading, splitting,
    /// scaling and the final metrics).
    train_seconds: f64,
    /// The last objective value; null when training diverged to NaN/inf.
    final_loss: Option<f64>,
    train: Option<&'a Metrics>,
    valid: Option<&'a Metrics>,
    /// The mean training objective of each epoch.
    loss_curve: Vec<f64>,
    saved_to: Option<String>,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    for path in args.out.iter().chain(&args.plot_loss) {
        crate::check_out_path(path)?;
    }
    // An image folder is read first: its images' shape is the network's input.
    let (folder, folder_shape) = if gradus::data::is_image_folder(&args.data) {
        if let Some(target) = args.target.as_ref().filter(|t| *t != "label") {
            bail!("an image folder has one target, its class sub-folders ('label'), not '{target}'");
        }
        let (data, shape) = gradus::data::load_image_folder(std::path::Path::new(&args.data), args.image_size)?;
        (Some(data), Some(shape))
    } else {
        if args.image_size.is_some() {
            bail!("--image-size applies to a folder of images; {} is not one", args.data);
        }
        (None, None)
    };
    let mut job = job(&args, folder_shape)?;
    let data = match folder {
        Some(data) => data,
        None => load_table(&args, &job)?,
    };
    if let ModelChoice::Cnn { input: shape @ [c, h, w], .. } = &job.model
        && shape.iter().product::<usize>() != data.n_features()
    {
        bail!(
            "--model cnn on images of {c}x{h}x{w} needs {} values a row; {} has {} features (give --image-shape C,H,W)",
            shape.iter().product::<usize>(),
            data.name,
            data.n_features()
        );
    }
    let (loss, _) = job.loss_and_outputs(&data)?;

    let train_rows = data.n_samples() - (data.n_samples() as f64 * args.valid_fraction).round() as usize;
    let batch = job.config.batch_size.unwrap_or(train_rows).clamp(1, train_rows.max(1));
    let steps_per_epoch = if job.config.optimizer.is_full_batch() { 1 } else { train_rows.div_ceil(batch) };
    let quiet = args.quiet || args.json;
    let total_steps = args.epochs().saturating_mul(steps_per_epoch);
    let print_every = if quiet { 0 } else { args.log_every.unwrap_or_else(|| (total_steps / 10).max(1)) };
    // A loss curve wants more points than the printed lines: about 200,
    // at steps the printed ones are multiples of.
    job.config.log_every = match (&args.plot_loss, print_every) {
        (Some(_), 0) => (total_steps / 200).max(1),
        (Some(_), every) => (1..=every).rev().find(|d| every % d == 0 && total_steps / d >= 200).unwrap_or(1),
        (None, every) => every,
    };

    if !quiet {
        let classes = match &data.y {
            Target::Classes { classes, .. } if classes.len() > 10 => {
                format!(" (classes: {}, ...)", classes[..10].join(", "))
            }
            Target::Classes { classes, .. } => format!(" (classes: {})", classes.join(", ")),
            Target::Real(_) => String::new(),
        };
        crate::outln!(
            "data     {}: {} rows, {} features, target '{}', {}{classes}",
            data.name,
            data.n_samples(),
            data.n_features(),
            data.target_name,
            data.task()
        );
    }
    let mut progress = Progress::new(args.epochs(), quiet || print_every == 0, print_every);
    let start = Instant::now();
    // What the report says of the data; the rows themselves are given up
    // to training, which frees them once split.
    let (name, rows, features, target_name, task) =
        (data.name.clone(), data.n_samples(), data.n_features(), data.target_name.clone(), data.task());
    let classes = match &data.y {
        Target::Classes { classes, .. } => Some(classes.clone()),
        Target::Real(_) => None,
    };
    let outcome = job.run_owned(data, &mut progress)?;
    let seconds = start.elapsed().as_secs_f64();
    progress.finish();
    if let Some(path) = &args.plot_loss {
        let chart =
            gradus::report::plots::loss_curve(&format!("Training loss on {name}"), &progress.steps, &progress.epochs);
        gradus::data::output::write_file(path, |sink| sink.write_all(chart.to_svg().as_bytes()))
            .map_err(|e| anyhow::anyhow!("writing the loss curve to {}: {e}", path.display()))?;
    }
    let report = &outcome.report;
    let diverged = report.termination == Termination::Diverged;
    if let (Some(path), false) = (&args.out, diverged) {
        outcome.saved.save(path)?;
    }
    let saved_to = args.out.as_ref().filter(|_| !diverged).map(|p| p.display().to_string());

    if args.json {
        let out = JsonOutput {
            data: &name,
            rows,
            features,
            target: &target_name,
            task: match task {
                Task::Regression => "regression",
                Task::Binary => "binary",
                Task::Multiclass { .. } => "multiclass",
            },
            classes: classes.as_ref(),
            model: job.model.name(),
            architecture: outcome.saved.spec.architecture.describe(),
            loss,
            config: &job.config,
            train_rows: outcome.train_rows,
            valid_rows: outcome.valid_rows,
            termination: report.termination,
            epochs: report.epochs,
            steps: report.steps,
            best_epoch: report.best_epoch,
            seconds,
            train_seconds: report.seconds,
            final_loss: report.final_loss.is_finite().then_some(report.final_loss),
            train: outcome.train_metrics.as_ref(),
            valid: outcome.valid_metrics.as_ref(),
            loss_curve: report.history.iter().map(|e| e.train_loss).collect(),
            saved_to,
        };
        crate::outln!("{}", serde_json::to_string(&out)?);
    } else {
        let best = report.best_epoch.map_or(String::new(), |e| format!(", best epoch {e}"));
        crate::outln!(
            "model    {} ({} parameters), {} loss, {} lr {}, batch {}, {} rows train / {} valid, scaling {}",
            outcome.saved.spec.architecture.describe(),
            outcome.saved.model.params().len(),
            loss.name(),
            job.config.optimizer.name(),
            args.lr(),
            job.config.batch_size.map_or("all".to_string(), |b| b.to_string()),
            outcome.train_rows,
            outcome.valid_rows,
            job.scaling.name(),
        );
        crate::outln!(
            "stopped  {} after {} epochs, {} steps, {:.3} s{best}",
            report.termination,
            report.epochs,
            report.steps,
            seconds
        );
        if let Some(m) = &outcome.train_metrics {
            crate::outln!("train    {}", metrics_line(m));
        }
        if let Some(m) = &outcome.valid_metrics {
            crate::outln!("valid    {}", metrics_line(m));
        }
        if let Some(path) = &saved_to {
            crate::outln!("saved    {path}");
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
