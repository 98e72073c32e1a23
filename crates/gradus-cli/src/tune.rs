//! `gradus tune`: a dataset in, the best model the budget finds out. Flags
//! become a [`TuneJob`] and a study (resumed when it already exists), the
//! study runs, and the best configuration is retrained, tested once and
//! saved. Progress goes to stderr (a bar on a terminal); the summary, or
//! JSON lines with `--json`, to stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use gradus::autotune::{self, Member, ModelRequest, RefitProgress, TuneJob};
use gradus::pipeline::Family;
use std::collections::BTreeMap;

use gradus::data::{ColumnKind, Dataset, RawData, RawOptions, Scaling, TargetKind};
use gradus::train::Metric;
use gradus::tune::{Claimed, FrozenTrial, Study, StudySettings, TrialState};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::study::{HeartbeatArg, PrunerArg, SamplerArg, ScheduleArg, StorageArg, read_space};
use crate::{RunFailed, metrics_line, num, outln};

#[derive(Args)]
pub struct TuneArgs {
    /// A CSV file (optionally gzip'd) with a header row, or builtin:NAME.
    #[arg(long, value_name = "PATH|builtin:NAME")]
    data: String,
    /// The target column's name [default: the last column].
    #[arg(long, value_name = "COL")]
    target: Option<String>,
    /// Columns read as categories whatever their values look like (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    categorical: Vec<String>,
    /// Columns left out (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    ignore: Vec<String>,
    /// A JSON or TOML file giving columns their kind: {"zip": "categorical",
    /// "notes": "ignore", ...}; kinds: numeric, categorical, boolean,
    /// date_time, text, identifier, constant, ignore.
    #[arg(long, value_name = "FILE")]
    columns: Option<PathBuf>,
    /// Cells read as missing, comma-separated [default: the empty cell, NA,
    /// N/A, n/a, ?, null, NULL, NaN, nan, None].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    na_values: Option<Vec<String>>,
    /// A categorical column with more than 50 levels seen 5 times or more:
    /// embed (one-hot of up to 1000 levels, which MLPs read through a
    /// learned 16-value embedding), onehot (the same, read as it is), hash
    /// (every level hashed into 128 buckets) or other (one-hot of the 50
    /// most frequent, the rest in one "other" input) [default: embed].
    #[arg(long, value_parser = parse_high_cardinality, value_name = "HOW")]
    high_cardinality: Option<gradus::data::HighCardinality>,
    /// The file's character encoding: utf-8, latin-1 (iso-8859-1) or windows-1252 (cp1252).
    #[arg(long, default_value = "utf-8", value_parser = crate::parse_encoding, value_name = "NAME")]
    encoding: gradus::data::TextEncoding,
    /// The field delimiter [default: sniffed from the header: comma, semicolon, tab or pipe].
    #[arg(long, value_parser = crate::parse_delimiter, value_name = "CHAR")]
    delimiter: Option<u8>,
    /// Read the target as classes or as a real number [default: classes
    /// when any value is not a number, or at most 20 distinct whole numbers].
    #[arg(long, value_enum)]
    task: Option<TaskArg>,
    /// What the study optimises and the final models are chosen by:
    /// log_loss, accuracy, balanced_accuracy, macro_f1, roc_auc, pr_auc
    /// (two classes) for classes; rmse, mae, r2 for a real target [default:
    /// log_loss, or rmse]. Early stopping inside a trial stays on the loss.
    #[arg(long, value_parser = parse_metric, value_name = "NAME")]
    metric: Option<Metric>,
    /// Class weights in the training loss: balanced weighs each class by
    /// n / (classes × its rows), as scikit-learn's class_weight="balanced";
    /// none weighs every row alike (see the README for the measurement
    /// behind the default).
    #[arg(long, value_enum, default_value = "none")]
    class_weight: ClassWeightArg,
    /// A folder of images: resize every image to this height and width (HxW, or one side).
    #[arg(long, value_parser = crate::parse_image_size, value_name = "HxW")]
    image_size: Option<[usize; 2]>,
    /// --model cnn: each row's image shape [default: from the data:
    /// builtin:digits 1,8,8, builtin:mnist_5k 1,28,28].
    #[arg(long, value_delimiter = ',', num_args = 1.., value_name = "C,H,W")]
    image_shape: Option<Vec<usize>>,
    /// The model families to search; auto searches every one that fits the
    /// target but cnn, which is searched when named.
    #[arg(long, default_value = "auto", value_parser = model_request_parser(), value_name = "MODEL")]
    model: ModelRequest,
    /// Trials in the study, counting those of earlier runs of the same study.
    #[arg(long, default_value_t = 60)]
    trials: u64,
    /// Bound the whole command (e.g. 90s, 10m, 1h): trials stop at an epoch
    /// boundary by 80% of it, and the refit is sized to the rest.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// Trials run at once, on threads [default: the machine's cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// ordered: each trial waits for the earlier trials it must see, so a
    /// seed and --jobs give the same study and model run after run; greedy:
    /// a trial starts as soon as a thread is free (faster when trial lengths
    /// vary widely, but with --jobs above 1 the study varies from run to run).
    #[arg(long, value_enum, default_value = "ordered")]
    schedule: ScheduleArg,
    /// auto: GP for the first 100 trials, then TPE (see BENCHMARKS.md).
    #[arg(long, value_enum, default_value = "auto")]
    sampler: SamplerArg,
    /// Stops poor trials early from their per-epoch validation loss (asha:
    /// rungs at 10, 30, 90 epochs keeping the best third, once 5 trials are
    /// complete; see BENCHMARKS.md).
    #[arg(long, value_enum, default_value = "asha")]
    pruner: PrunerArg,
    /// No trial is pruned before this many epochs (the median pruner's
    /// warm-up, the first rung of ASHA and Hyperband).
    #[arg(long, default_value_t = 10, value_name = "N")]
    warmup_epochs: u64,
    /// A JSON or TOML file replacing some of the default search space's distributions.
    #[arg(long, value_name = "FILE")]
    space: Option<String>,
    /// The fraction of the tuning rows each trial holds out for validation
    /// [default: 0.2, or 5-fold cross-validation below 1,000 tuning rows].
    #[arg(long, value_name = "F")]
    valid_fraction: Option<f64>,
    /// Score each trial by K-fold cross-validation (stratified for classes) instead.
    #[arg(long, value_name = "K", conflicts_with = "valid_fraction")]
    cv: Option<usize>,
    /// The fraction of all rows held out of the search to test the final model.
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// The most epochs a trial trains (early stopping usually ends it sooner).
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Early stopping's patience, in epochs.
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// An epoch of at most this many training rows instead of a full pass
    /// (rows still drawn pass after pass in shuffled order), so that early
    /// stopping and pruning judge a trial every so many rows [default:
    /// 8192 when trials train on more than 16384, else a full pass].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    epoch_rows: Option<u64>,
    /// Feature scaling fitted on each trial's training rows; auto searches
    /// standard and minmax as a hyperparameter, and on images global
    /// (every pixel by one range) as well.
    #[arg(long, default_value = "auto", value_parser = scale_parser(), value_name = "SCALE")]
    scale: ScaleRequest,
    #[command(flatten)]
    text: crate::text_args::TextArgs,
    #[command(flatten)]
    storage: StorageArg,
    #[command(flatten)]
    heartbeat: HeartbeatArg,
    /// The study's name [default: tune-DATASET].
    #[arg(long)]
    study: Option<String>,
    /// Seeds the sampler, the splits and every trial's training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Make the final model in this process even when another process
    /// sharing the study has made it, or is making it.
    #[arg(long)]
    refit: bool,
    /// Save the final model (retrained on all tuning rows) here.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Write the study's HTML report here at the end (as `gradus report`).
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// At the end, distil the final model into one MLP at least 8x faster (as `gradus compress --distill`) and save that instead; its training is not bounded by --timeout.
    #[arg(long)]
    distill: bool,
    /// How many times faster than the final model --distill's student must predict.
    #[arg(long, value_name = "X", default_value_t = 8.0, requires = "distill")]
    distill_speedup: f64,
    /// Quantise --distill's student to int8 (as `gradus compress --distill --int8`): students are timed in int8, so a larger one is 8x faster.
    #[arg(long, requires = "distill")]
    distill_int8: bool,
    /// The final model averages the K best configurations, each retrained
    /// on all tuning rows (their class probabilities, or predictions); 1
    /// keeps the best one alone.
    #[arg(long, default_value_t = 10, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    ensemble: u64,
    /// One JSON object per finished trial, then a summary object, on stdout.
    #[arg(long)]
    json: bool,
    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
}

/// `--model`'s parser: auto, or one of the families (listed in `--help`).
fn model_request_parser() -> impl clap::builder::TypedValueParser<Value = ModelRequest> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = std::iter::once("auto").chain(Family::ALL.map(Family::name)).collect();
    clap::builder::PossibleValuesParser::new(names).map(|name| match Family::from_name(&name) {
        Some(family) => ModelRequest::Only(family),
        None => ModelRequest::Auto,
    })
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClassWeightArg {
    None,
    Balanced,
}

#[derive(Clone, Copy, ValueEnum)]
enum TaskArg {
    Classification,
    Regression,
}

/// `--scale`: searched (auto), or one scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScaleRequest {
    Auto,
    Fixed(Scaling),
}

impl ScaleRequest {
    /// The scaling when it is not searched (standard when it is).
    fn scaling(self) -> Scaling {
        match self {
            ScaleRequest::Auto => Scaling::Standard,
            ScaleRequest::Fixed(s) => s,
        }
    }
}

/// `--scale`'s parser: auto, or one scaling (listed in `--help`).
fn scale_parser() -> impl clap::builder::TypedValueParser<Value = ScaleRequest> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = std::iter::once("auto").chain(Scaling::ALL.map(Scaling::name)).collect();
    clap::builder::PossibleValuesParser::new(names)
        .map(|name| Scaling::from_name(&name).map_or(ScaleRequest::Auto, ScaleRequest::Fixed))
}

/// `--metric`'s parser: a metric's name.
fn parse_metric(name: &str) -> Result<Metric, String> {
    Metric::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!("unknown metric '{name}' (use one of {})", names.join(", "))
    })
}

/// "90s", "10m", "1h", "1.5h" or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let seconds = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit '{unit}' (use s, m or h)")),
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(Duration::from_secs_f64(v * seconds)),
        _ => Err(format!("'{text}' is not a positive duration (e.g. 90s, 10m, 1h)")),
    }
}

pub fn run(args: TuneArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    for path in args.out.iter().chain(&args.report) {
        crate::check_out_path(path)?;
    }
    if args.cv.is_some_and(|k| k < 2) {
        bail!("--cv needs at least 2 folds, got {}", args.cv.unwrap_or(0));
    }
    if let Some(f) = args.valid_fraction
        && !(f > 0.0 && f < 1.0)
    {
        bail!("--valid-fraction must be in (0, 1), got {f}");
    }
    if !(0.0..1.0).contains(&args.test_fraction) {
        bail!("--test-fraction must be in [0, 1), got {}", args.test_fraction);
    }
    if !(args.distill_speedup.is_finite() && args.distill_speedup >= 1.0) {
        bail!("--distill-speedup must be a number ≥ 1, got {}", args.distill_speedup);
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if args.trials == 0 || jobs == 0 {
        bail!("--trials and --jobs must be at least 1");
    }
    args.heartbeat.durations()?;
    let request = args.model;
    // The target is read as it looks (classes or real), and the families
    // checked against it: a softmax search on a real target is an error,
    // not 400 classes.
    let (kinds, ignore) = given_kinds(&args)?;
    // Images (an IDX file, a folder) are read as their pixels, with their shape.
    let images = gradus::data::is_idx_images(&args.data) || gradus::data::is_image_folder(&args.data);
    if args.image_size.is_some() && !gradus::data::is_image_folder(&args.data) {
        bail!("--image-size applies to a folder of images; {} is not one", args.data);
    }
    if images {
        let given = [
            ("--categorical", !args.categorical.is_empty()),
            ("--ignore", !args.ignore.is_empty()),
            ("--columns", args.columns.is_some()),
            ("--na-values", args.na_values.is_some()),
            ("--high-cardinality", args.high_cardinality.is_some()),
            ("--tokens, --ngram, --strip and the other text flags", args.text.given()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
            bail!("{flag} applies to CSV tables; {} holds images", args.data);
        }
        if let Some(target) = args.target.as_ref().filter(|t| *t != "label") {
            bail!("{} holds images whose one target is their label ('label'), not '{target}'", args.data);
        }
    }
    let (mut raw, source_shape) = if images {
        let path = std::path::Path::new(&args.data);
        let (data, shape) = if gradus::data::is_idx_images(&args.data) {
            gradus::data::load_idx(path)?
        } else {
            gradus::data::load_image_folder(path, args.image_size)?
        };
        (gradus::data::RawData::from_images(data), Some(shape))
    } else {
        (
            gradus::data::load_raw(
                &args.data,
                &RawOptions {
                    target: args.target.clone(),
                    target_kind: match args.task {
                        None => TargetKind::Auto,
                        Some(TaskArg::Classification) => TargetKind::Classes,
                        Some(TaskArg::Regression) => TargetKind::Real,
                    },
                    na_values: args.na_values.clone(),
                    kinds,
                    ignore,
                    encoding: args.encoding,
                    delimiter: args.delimiter,
                },
            )?,
            None,
        )
    };
    raw.high_cardinality = args.high_cardinality.unwrap_or_default();
    raw.text = args.text.options()?;
    let has_text = raw.has_text();
    args.text.check_applies(has_text, &args.data, ", or one a --columns file calls text")?;
    let task = raw.y.task();
    // Images of a known shape (a file or folder of them, a built-in image
    // set, or --image-shape): --model auto searches CNNs too.
    let known_shape =
        args.image_shape.is_some() || source_shape.is_some() || gradus::data::image_shape(&args.data)?.is_some();
    let families = request.families(task, known_shape, has_text)?;
    // A CNN reads every column as a pixel of an image of a known shape.
    let image_shape = if families.contains(&Family::Cnn) {
        let shape = match &args.image_shape {
            Some(given) => match given.as_slice() {
                &[c, h, w] if c > 0 && h > 0 && w > 0 => [c, h, w],
                _ => bail!("--image-shape takes three sides of at least 1, C,H,W (such as 1,28,28); got {given:?}"),
            },
            None => source_shape.or(gradus::data::image_shape(&args.data)?).ok_or_else(|| {
                anyhow::anyhow!(
                    "--model cnn needs images: an IDX images file, a folder of images, builtin:digits or \
                     builtin:mnist_5k, or --image-shape C,H,W for a CSV of pixel columns ({} says nothing of its shape)",
                    args.data
                )
            })?,
        };
        raw.as_pixels()?;
        let [c, h, w] = shape;
        if raw.table.columns.len() != c * h * w {
            bail!(
                "--model cnn on images of {c}x{h}x{w} needs {} pixel columns; {} has {} feature columns",
                c * h * w,
                args.data,
                raw.table.columns.len()
            );
        }
        if autotune::max_conv_stages(shape).is_none() {
            bail!("images of {c}x{h}x{w} are too small for a CNN's 3x3 kernels");
        }
        Some(shape)
    } else {
        if args.image_shape.is_some() {
            bail!("--image-shape applies to CNNs (--model cnn or auto)");
        }
        None
    };
    let metric = args.metric.unwrap_or(Metric::default_for(task));
    if let Some(why) = metric.unfit_for(task) {
        bail!("{why}");
    }
    let balanced = args.class_weight == ClassWeightArg::Balanced;
    if balanced && task == gradus::data::Task::Regression {
        bail!("--class-weight balanced needs classes; the target '{}' is a number", raw.target_name);
    }
    let user_space = args.space.as_ref().map(|file| read_space(file).map(|s| (file, s))).transpose()?;
    let mut job = TuneJob {
        space: autotune::default_space(&families, args.scale == ScaleRequest::Auto, image_shape),
        families,
        scaling: args.scale.scaling(),
        max_epochs: args.epochs,
        patience: args.patience,
        valid_fraction: args.valid_fraction.unwrap_or(0.2),
        cv: args.cv,
        seed: args.seed,
        metric,
        deadline: None,
        balanced,
        epoch_rows: args.epoch_rows.map(|r| r as usize),
        image_shape,
    };
    // The training flags tune shares with train (--epochs, --patience) are
    // checked where train's are: by the trainer's own validation.
    job.job(&BTreeMap::new())?.config.validate()?;
    let (tuning, test) = autotune::hold_out(&raw, args.test_fraction, args.seed)?;
    // The values each row holds: a table's bins are computed as needed, not held.
    check_memory(&args.data, raw.n_rows(), tuning.x.cols(), jobs)?;
    if args.json {
        print_json_line(&columns_json(&raw, &tuning))?;
    } else if !args.quiet {
        eprint!("{}", columns_table(&raw, &tuning));
    }
    // The rows are encoded (tuning, test): the raw cells go, keeping what
    // the study and the model file record of them.
    let raw_rows = raw.n_rows();
    let (content_hash, missing_target_rows) = (raw.content_hash, raw.missing_target_rows);
    let (target_name, kinds) = (raw.target_name.clone(), raw.kinds.clone());
    drop(raw);
    // Each trial splits the tuning rows again; a split too small to hold
    // every class, or too few rows for the folds, is an input error, caught
    // here rather than in every trial.
    match args.cv {
        Some(k) => {
            job.folds(&tuning, k)?;
        }
        None => {
            tuning.split(job.valid_fraction, 0.0, args.seed)?;
        }
    }
    if args.cv.is_none() && args.valid_fraction.is_none() {
        job.cross_validate_small_data(&tuning);
    }
    let large = args.epoch_rows.is_none() && job.shorten_epochs_on_large_data(&tuning);
    // The space: the defaults (larger batches on a large table), with a
    // --space file laid over them.
    // Scaling is searched when there are dense inputs to scale (text alone has none).
    let search_scaling = args.scale == ScaleRequest::Auto && tuning.n_features() > 0;
    let mut space = autotune::default_space(&job.families, search_scaling, job.image_shape);
    space = autotune::text_vocabulary_space(space, &tuning.encoding);
    if large {
        space = autotune::large_data_batches(space);
    }
    // Periodic embeddings by default on a large table, and on a smaller
    // one when the space file asks for them.
    let asks_for_embeddings = user_space
        .as_ref()
        .is_some_and(|(_, user)| user.0.contains_key("embedding") || user.0.contains_key("embedding_sigma"));
    if tuning.encoding.has_bins() && (job.is_large(&tuning) || asks_for_embeddings) {
        space = autotune::periodic_embeddings(space);
    }
    if let Some((file, user)) = user_space {
        space = autotune::merge_space(space, user, file)?;
        let outputs = match task {
            gradus::data::Task::Multiclass { n_classes } => n_classes,
            _ => 1,
        };
        autotune::check_network_size(&space, tuning.n_features(), outputs, file)?;
        if let Some(shape) = job.image_shape {
            autotune::check_cnn_size(&space, shape, file)?;
        }
    }
    job.space = space.clone();

    // What the trials measure: the same file, target, task, inputs and
    // metric, or another study. (The default metric is left out, as before
    // there was a choice, so that those studies still resume.)
    let mut objective = format!(
        "data {:016x}, target '{}' ({task}), inputs {:016x}",
        content_hash,
        target_name,
        gradus::data::fnv1a(serde_json::to_string(&tuning.encoding)?.as_bytes())
    );
    if metric != Metric::default_for(task) {
        objective.push_str(&format!(", ranked by {metric}"));
    }
    if balanced {
        objective.push_str(", balanced class weights");
    }
    if let Some(rows) = job.epoch_rows {
        objective.push_str(&format!(", epochs of {rows} rows"));
    }
    let settings = StudySettings {
        sampler: args.sampler.spec(args.seed),
        pruner: args.pruner.spec(args.warmup_epochs, args.epochs as u64, 5),
        space: Some(space),
        objective: Some(objective.clone()),
    };
    settings.sampler().with_context(|| match args.sampler {
        SamplerArg::Grid if settings.space.as_ref().is_some_and(|s| s.iter().any(|(_, d)| d.grid_len().is_none())) => {
            "--sampler grid: give --space a file that fixes these or gives them a step"
        }
        _ => "--sampler",
    })?;
    settings.pruner()?;
    let name = args.study.clone().unwrap_or_else(|| format!("tune-{}", short_name(&args.data)));
    let storage = args.storage.open(true)?;
    // Workers started at once on a new study race to create it: the losers open it.
    let opened = match Study::open(storage.clone(), &name) {
        Err(gradus::tune::TuneError::UnknownStudy(_)) => {
            match Study::create_with_settings(storage.clone(), &name, job.direction(), &settings) {
                Ok(study) => {
                    // A grid enumerates its points itself.
                    if !matches!(args.sampler, SamplerArg::Grid) {
                        for point in job.starting_points() {
                            study.enqueue_trial(point)?;
                        }
                    }
                    Ok(Opened::Created(study))
                }
                Err(gradus::tune::TuneError::StudyExists(_)) => Study::open(storage, &name).map(Opened::Existing),
                Err(e) => Err(e),
            }
        }
        other => other.map(Opened::Existing),
    };
    let study = match opened {
        Ok(Opened::Created(study)) => study,
        Ok(Opened::Existing((study, stored))) => {
            if let Some(stored) = stored.objective.filter(|o| *o != objective) {
                bail!(
                    "study '{name}' was tuned on other data, another target, other inputs, metric or class weights (its trials measured {stored}; \
                     this run would measure {objective}); pick another --study NAME, or delete it with \
                     `gradus study delete --study {name}`"
                );
            }
            if stored.space != settings.space {
                bail!(
                    "study '{name}' already exists with another search space; resume it with the same flags, or pick another --study"
                );
            }
            study
        }
        Err(e) => return Err(e.into()),
    };
    // --trials is the study's, all processes on it together: each trial's
    // number is claimed below it in the storage, in one step.
    let study = args.heartbeat.apply(study.with_schedule(args.schedule.into()).with_budget(args.trials))?;
    let done = study.trials()?.iter().filter(|t| t.state.is_finished()).count() as u64;
    let to_run = args.trials.saturating_sub(done);

    // Ctrl-C: the first stops every running trial at its next epoch (they are
    // recorded as failed, "interrupted") and the best model so far is still
    // saved; a second exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }

    // --timeout bounds the whole command: trials end by 80% of it (those
    // running then stop at their next epoch), the refit gets the rest.
    let deadline = args.timeout.map(|t| started + t);
    job.deadline = args.timeout.map(|t| started + t.mul_f64(0.8));
    let trials_left = job.deadline.map(|d| d.saturating_duration_since(Instant::now()));
    let target_std = standardised_target_std(&job, &tuning);
    let progress = TrialProgress::new(args.trials, done, args.quiet || args.json, job.deadline, target_std);
    if done > 0 {
        progress.note(&format!(
            "resuming study '{name}' ({done} trials done): the same data, target and inputs ({objective})"
        ));
    }
    if to_run > 0 {
        progress.note(&format!(
            "study '{name}': {done} trials done, running {to_run} more on {jobs} thread(s); data {} rows ({} held out for the test); {}",
            raw_rows,
            test.n_samples(),
            match job.cv {
                Some(k) => format!("trials scored by {k}-fold cross-validation"),
                None => format!("trials scored on {:.0}% of the tuning rows", job.valid_fraction * 100.0),
            }
        ));
    }
    let json_error = std::sync::Mutex::new(None);
    // Under a time limit the best trials' models are kept, for members
    // of the final model that the time left cannot retrain.
    let measured = match deadline {
        Some(_) => autotune::MeasuredTrials::keeping_models(args.ensemble as usize, job.direction()),
        None => autotune::MeasuredTrials::default(),
    };
    study.optimize_with_callback(
        |trial| {
            job.objective(
                trial,
                &tuning,
                &stop,
                &|number, epochs, most| progress.epoch(number, epochs, most),
                &measured,
            )
        },
        to_run,
        trials_left,
        jobs,
        |study, finished| {
            if stop.load(Ordering::Relaxed) {
                study.stop();
            }
            let best = study.best_trial().ok().flatten();
            progress.trial(finished, best.as_ref());
            if args.json
                && let Err(e) = print_json_line(&trial_json(finished))
            {
                // A closed stdout: stop starting trials, report it after.
                study.stop();
                json_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
            }
        },
    )?;
    progress.finish();
    if let Some(e) = json_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let interrupted = stop.load(Ordering::Relaxed);

    // The processes that share a study (on one machine or many) make one
    // final model: once the budget is spent, the first to claim it waits
    // for the others' trials and refits; the others say which and exit 0.
    // A process whose trials ended by --timeout or Ctrl-C saves what it has.
    let budget_spent = !interrupted && study.trials()?.len() as u64 >= args.trials;
    let finalising = match budget_spent && !args.refit {
        false => None,
        true => match study.claim_role(FINALISE, args.trials)? {
            Claimed::Theirs(holder) => {
                let model = holder.note["model"].as_str().map(str::to_string);
                if args.json {
                    print_json_line(&json!({
                        "event": "finalised_elsewhere",
                        "study": name,
                        "by": {"host": holder.host, "pid": holder.pid},
                        "done": holder.done,
                        "model": model,
                    }))?;
                } else if holder.done {
                    let saved = model.map_or(String::new(), |m| format!(", saved to {m} on {}", holder.host));
                    outln!(
                        "study '{name}' is finished: its final model was made by {holder}{saved}; \
                         nothing left to do here (--refit makes it again in this process)"
                    );
                } else {
                    outln!(
                        "study '{name}': its {} trials are done or running; {holder} is retraining and saving \
                         the final model",
                        args.trials
                    );
                }
                write_report(&args, &study)?;
                return Ok(());
            }
            Claimed::Mine(held) => {
                study.wait_for_running_trials(|n| {
                    progress.note(&format!("waiting for {n} trial(s) still running in other processes"))
                })?;
                Some(held)
            }
        },
    };

    let trials = study.trials()?;
    let Some(best) = study.best_trial()? else {
        let (_, pruned, failed) = autotune::tally(&trials);
        let why = failure_summary(&trials).map_or(String::new(), |s| format!(": {s}"));
        return Err(RunFailed(format!(
            "no trial of study '{name}' completed ({failed} failed{why}; {pruned} pruned); see `gradus trials --study {name}`"
        ))
        .into());
    };
    let direction = job.direction();
    // The members of one model read the same inputs: the best trial's text vocabularies.
    // The members of one model read the same inputs: the best trial's text vocabularies.
    let alike: Vec<FrozenTrial> = trials.iter().filter(|t| TuneJob::same_inputs(t, &best)).cloned().collect();
    let candidates = autotune::ensemble_candidates(&alike, args.ensemble as usize, direction);
    // Ensemble selection weighs the candidates on their hold-out
    // predictions; without them (cross-validation, or trials of an earlier
    // run), the best few are averaged equally.
    let selection = if candidates.len() > 1 { job.ensemble_weights(&candidates, &tuning, &measured)? } else { None };
    let (members, weights): (Vec<_>, Vec<f64>) = match &selection {
        Some(s) => candidates.iter().zip(&s.counts).filter(|(_, n)| **n > 0).map(|(t, n)| (*t, *n as f64)).unzip(),
        None => autotune::best_trials(&alike, args.ensemble as usize, direction).into_iter().map(|t| (t, 1.0)).unzip(),
    };
    if let Some(s) = &selection {
        // Selection scores the models' predictions in the target's units:
        // a mean squared error goes back to the trials' standardised scale.
        let on_trial_scale = |v: f64| progress.value(target_std.map_or(v, |std| v / (std * std)));
        progress.note(&format!(
            "ensemble selection: {} of {} candidate trials, validation {} {} (the best alone: {})",
            members.len(),
            candidates.len(),
            value_name(&job),
            on_trial_scale(s.value),
            on_trial_scale(s.single_value)
        ));
    }
    let mut members: Vec<Member> =
        members.into_iter().zip(weights).map(|(trial, weight)| Member { trial, weight, refit: true }).collect();
    let candidates = members.len();
    let left_out = job.keep_within_model_bytes(&mut members, &tuning)?;
    if left_out > 0 {
        progress.note(&format!(
            "left out of the final model: the {left_out} least weighted of {candidates} members, to keep its weights \
             within {} MB",
            autotune::MODEL_BYTES >> 20
        ));
    }
    // What the time left affords: the most weighted members are retrained;
    // the others join as their trials trained them, if their models were kept.
    if let Some(d) = deadline {
        // A second for the test and the save.
        let left = d.saturating_duration_since(Instant::now()).as_secs_f64() - 1.0;
        job.plan_refits(&mut members, left, jobs, &measured);
        let n = members.iter().filter(|m| m.refit).count();
        if n < members.len() {
            let as_trained = members.iter().filter(|m| !m.refit && measured.has_model(m.trial.number)).count();
            let dropped = members.len() - n - as_trained;
            progress.note(&format!(
                "--timeout leaves about {:.0} s: retraining {n} of the {} chosen configurations; {as_trained} join{} as trained in their trials{}",
                left.max(0.0),
                members.len(),
                if as_trained == 1 { "s" } else { "" },
                if dropped > 0 { format!(", {dropped} left out (not kept)") } else { String::new() }
            ));
        }
    }
    let refitted: Vec<&FrozenTrial> = members.iter().filter(|m| m.refit).map(|m| m.trial).collect();
    // The refit's expected cost, from each member's measured time per
    // epoch: `jobs` at a time, the longest or their share of the total.
    let expected: Vec<Option<f64>> = refitted.iter().map(|t| job.refit_seconds(t)).collect();
    let estimate = expected.iter().copied().collect::<Option<Vec<f64>>>().map(|s| {
        let longest = s.iter().copied().fold(0.0, f64::max);
        longest.max(s.iter().sum::<f64>() / jobs.clamp(1, refitted.len().max(1)) as f64)
    });
    let about = estimate.map_or(String::new(), |s| format!(" (about {} by the trials' epoch times)", seconds(s)));
    match (refitted.len(), members.len()) {
        (0, _) => {}
        (1, 1) => progress.note(&format!("retraining the chosen configuration on all tuning rows{about}")),
        (n, m) if n == m => progress
            .note(&format!("retraining the {n} chosen configurations on all tuning rows, to average them{about}")),
        (n, m) => progress.note(&format!("retraining {n} of the {m} chosen configurations on all tuning rows{about}")),
    }
    let valid_metrics = job.validation_metrics(&best, &tuning, &measured)?;
    // The refit's progress: a line per member as it ends, and every 10 s
    // a line for the epochs in between; the time left is the time so far
    // scaled by the share of the expected work done (each member's epochs
    // weighted by its expected seconds, or equally without timings).
    let refit_started = Instant::now();
    let shares: Vec<(u64, usize, f64)> = refitted
        .iter()
        .zip(&expected)
        .map(|(t, e)| (t.number, job.refit_epochs(t).max(1), e.unwrap_or(1.0).max(1e-9)))
        .collect();
    let total_share: f64 = shares.iter().map(|s| s.2).sum();
    let state = Mutex::new((vec![0usize; refitted.len()], 0usize, Instant::now()));
    let refit_deadline = deadline.map(|d| d - Duration::from_secs(1).min(d.saturating_duration_since(started) / 10));
    let (mut model, held) = job.refit_ensemble(&members, &measured, &tuning, jobs, refit_deadline, &|event| {
        let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
        let (epochs, finished, last_line) = &mut *guard;
        let Some(m) = shares.iter().position(|s| s.0 == event.trial()) else { return };
        let line = match event {
            RefitProgress::Epoch { epoch, .. } => {
                epochs[m] = epoch;
                if last_line.elapsed() < Duration::from_secs(10) {
                    return;
                }
                format!("refit of trial {}: epoch {epoch} of {}", shares[m].0, shares[m].1)
            }
            RefitProgress::Done { trial } => {
                epochs[m] = shares[m].1;
                *finished += 1;
                format!("refit {}/{} (trial {trial}) done", finished, refitted.len())
            }
        };
        *last_line = Instant::now();
        let done: f64 =
            shares.iter().zip(epochs.iter()).map(|(s, &e)| s.2 * e.min(s.1) as f64 / s.1 as f64).sum::<f64>()
                / total_share;
        let elapsed = refit_started.elapsed().as_secs_f64();
        let eta = if done > 0.0 { elapsed * (1.0 - done).max(0.0) / done } else { f64::NAN };
        progress.note(&format!("{line}, {elapsed:.0} s elapsed, about {} left", seconds(eta)));
    })?;
    let member_numbers: Vec<u64> = held.iter().map(|m| m.trial.number).collect();
    let diverged = refitted.len() - held.iter().filter(|m| m.refit).count();
    if diverged > 0 {
        progress
            .note(&format!("left out of the final model: {diverged} of the best trials, whose retraining diverged"));
    }
    let test_rows = test.n_samples();
    let test = job.trial_data_owned(&best.params, test)?;
    let mut test_metrics = if test_rows > 0 { Some(model.evaluate(test.clone())?) } else { None };
    let ensemble_weights = model.weights().to_vec();
    // --distill: the final model becomes one network trained on its
    // predictions for the tuning rows, timed and scored on the test rows.
    let (mut distilled, mut ensemble_test_metrics) = (None, None);
    if args.distill {
        let rows = job.trial_data(&best.params, &tuning)?;
        let held_out = match test_rows {
            0 => rows.subset(&(0..rows.n_samples().min(1000)).collect::<Vec<_>>()),
            _ => test,
        };
        progress.note("distilling the final model into one network");
        let before = gradus::compress::figures(&model, &held_out)?;
        let options = gradus::compress::DistillOptions {
            hidden: None,
            speedup: args.distill_speedup,
            int8: args.distill_int8,
            epochs: 300,
            lr: 1e-3,
            valid_fraction: 0.15,
            mixup: 8,
            temperature: 1.0,
            seed: args.seed,
        };
        let student = gradus::compress::distill_fastest(
            &model,
            &rows,
            &held_out,
            before.ms_per_1000_rows,
            &options,
            &mut |what| progress.note(what),
        )?;
        let small = gradus::train::Ensemble::from(student.outcome.saved);
        let after = gradus::compress::figures(&small, &held_out)?;
        distilled = Some(json!({
            "distilled_from": model.describe(),
            "student": small.describe(),
            "int8": args.distill_int8,
            "held_out": if test_rows > 0 { "the test rows" } else { "tuning rows" },
            "before": before,
            "after": after,
        }));
        if test_rows > 0 {
            ensemble_test_metrics = test_metrics.replace(after.metrics.clone());
        }
        model = small;
    }
    model.set_about(json!({
        "made_by": "gradus tune",
        "data": args.data,
        "study": name,
        "seed": args.seed,
        "objective": objective,
        "rows": raw_rows,
        "missing_target_rows": missing_target_rows,
        "columns": kinds,
        "members": held.iter().map(|m| {
            json!({"trial": m.trial.number, "params": m.trial.params, "retrained": m.refit})
        }).collect::<Vec<_>>(),
        "valid_metrics": valid_metrics,
        "test_metrics": test_metrics,
        "distilled": distilled,
    }));
    if let Some(path) = &args.out {
        model.save(path).with_context(|| format!("saving the model to {}", path.display()))?;
    }
    write_report(&args, &study)?;
    if let Some(held) = finalising {
        let model = args.out.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
        held.finish(json!({"model": model, "best_trial": best.number}))?;
    }
    let (complete, pruned, failed) = autotune::tally(&trials);
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        print_json_line(&json!({
            "event": "summary",
            "study": name,
            "best_trial": best.number,
            "best_params": best.params,
            "metric": metric,
            "best_value": best.value(),
            "best_epochs": job.best_epochs(&best),
            "valid_metrics": valid_metrics,
            "test_metrics": test_metrics,
            "ensemble": member_numbers,
            "ensemble_weights": ensemble_weights,
            "distilled": distilled,
            "ensemble_retrained": held.iter().map(|m| m.refit).collect::<Vec<_>>(),
            "ensemble_selection": selection.as_ref().map(|s| json!({
                "value": s.value,
                "best_single_value": s.single_value,
            })),
            "trials": {"complete": complete, "pruned": pruned, "failed": failed},
            "failures": failure_summary(&trials),
            "epochs_trained": autotune::epochs_trained(&trials),
            "seconds": seconds,
            "interrupted": interrupted,
            "model": args.out,
        }))?;
    } else {
        let why = failure_summary(&trials).map_or(String::new(), |s| format!(" ({s})"));
        outln!("study '{name}': {complete} complete, {pruned} pruned, {failed} failed{why}, in {seconds:.1} s");
        outln!(
            "best trial {} (validation {} {}{}, best at epoch {}):",
            best.number,
            value_name(&job),
            best.value().map_or("?".into(), num),
            // The metrics below are in the target's own units.
            match (task == gradus::data::Task::Regression && job.monitor().is_none(), target_std, best.value()) {
                (true, Some(std), Some(v)) if v >= 0.0 =>
                    format!(" on the standardised target, RMSE {} in its units", num(v.sqrt() * std)),
                (true, ..) => " on the standardised target".to_string(),
                _ => String::new(),
            },
            job.best_epochs(&best).map_or("?".into(), |e| e.to_string())
        );
        for (k, v) in &best.params {
            outln!("  {k} = {}", crate::param_text(v));
        }
        if let Some(m) = &valid_metrics {
            let folds = job.cv.map_or(String::new(), |k| format!(", the mean of {k} folds"));
            outln!("validation of the best trial{folds}: {}", metrics_line(m));
        }
        if member_numbers.len() > 1 {
            let weights = &ensemble_weights;
            let total: f64 = weights.iter().sum();
            let equal = weights.iter().all(|w| *w == weights[0]);
            let numbers: Vec<String> = held
                .iter()
                .zip(weights)
                .map(|(m, w)| {
                    let weight = if equal { String::new() } else { format!(" ×{:.2}", w / total) };
                    let how = if m.refit { "" } else { " as trained" };
                    format!("{}{weight}{how}", m.trial.number)
                })
                .collect();
            let mean = if equal { "mean" } else { "weighted mean" };
            outln!("final model: the {mean} of {} trials ({})", numbers.len(), numbers.join(", "));
        }
        if let Some(d) = &distilled {
            let ms = |f: &serde_json::Value| f["ms_per_1000_rows"].as_f64().unwrap_or(f64::NAN);
            outln!(
                "distilled into {}{} ({:.1}x faster on {})",
                d["student"].as_str().unwrap_or("?"),
                if d["int8"] == true { " in int8" } else { "" },
                ms(&d["before"]) / ms(&d["after"]),
                d["held_out"].as_str().unwrap_or("?")
            );
            if let Some(m) = &ensemble_test_metrics {
                outln!("test of the ensemble before distillation ({test_rows} rows): {}", metrics_line(m));
            }
        }
        if let Some(m) = &test_metrics {
            outln!("test of the final model ({test_rows} rows): {}", metrics_line(m));
        }
        if let Some(path) = &args.out {
            outln!("saved {}", path.display());
        }
        if let Some(path) = &args.report {
            outln!("report {}", path.display());
        }
        if interrupted {
            outln!("interrupted: run the same command again to resume the study");
        }
    }
    if interrupted {
        return Err(RunFailed("interrupted".into()).into());
    }
    Ok(())
}

/// Writes the study's HTML report to `--report`, if given.
fn write_report(args: &TuneArgs, study: &Study) -> anyhow::Result<()> {
    let Some(path) = &args.report else { return Ok(()) };
    let html = crate::plot::report_html(study.storage().as_ref(), study.name())?;
    gradus::data::output::write_file(path, |sink| sink.write_all(html.as_bytes()))
        .with_context(|| format!("writing the report to {}", path.display()))?;
    Ok(())
}

/// How many copies of the encoded rows (and their labels) tuning holds at
/// once: the tuning and test rows, and each running trial's split of them.
fn copies_held(jobs: usize) -> f64 {
    1.2 + jobs as f64
}

/// Bytes a row costs beyond its copies: the raw table's line number and the
/// row numbers of splits and batches while they are made.
const ROW_OVERHEAD: f64 = 16.0;

/// Refuses a table whose encoded copies would not fit in the memory budget
/// (see `gradus::data::memory`), before any trial allocates them. `values`
/// is what a row stores (a table's bins are computed as needed, not held).
/// Measured on 8.4M rows of 2 numbers (`bench/memory.sh`): a peak of 291 MB
/// with one job and 402 MB with two, where this estimates 356 MB and 457 MB.
fn check_memory(data: &str, rows: usize, values: usize, jobs: usize) -> anyhow::Result<()> {
    use gradus::data::memory::{budget, human};
    let Some((budget, from)) = budget()? else { return Ok(()) };
    let encoded = rows as u64 * values as u64 * std::mem::size_of::<f32>() as u64;
    let per_row = (values as f64 * 4.0 + 4.0) * copies_held(jobs) + ROW_OVERHEAD;
    let need = (rows as f64 * per_row) as u64;
    if need > budget {
        bail!(
            "{data}: its {rows} rows encode to {values} value{} each ({} as 32-bit floats), and tuning on {jobs} \
             thread(s) holds about {:.1} copies of that with the labels ({}), more than the memory budget of {} \
             ({from}); use fewer --jobs or rows, or set GRADUS_MAX_MEMORY to allow more",
            if values == 1 { "" } else { "s" },
            human(encoded),
            copies_held(jobs),
            human(need),
            human(budget)
        );
    }
    Ok(())
}

/// A study this process made, or one it found (with its stored settings).
enum Opened {
    Created(Study),
    Existing((Study, StudySettings)),
}

/// The study role of the process that makes the final model.
const FINALISE: &str = "finalise";

/// What a trial's value is: the monitored metric, or the loss.
fn value_name(job: &TuneJob) -> String {
    job.monitor().map_or("loss".to_string(), |m| m.name().to_string())
}

/// The tuning target's standard deviation when the trials' values are mean
/// squared errors on the standardised target — a regression ranked by its
/// loss, every trial's scaling standardising the target — so that progress
/// lines can show the RMSE in the target's units beside them (each trial
/// standardises by its own training rows: the same to a fraction of a
/// percent). `None` otherwise.
fn standardised_target_std(job: &TuneJob, tuning: &Dataset) -> Option<f64> {
    let gradus::data::Target::Real(y) = &tuning.y else { return None };
    let standardises = match job.space.0.get("scaling") {
        None => job.scaling != Scaling::None,
        Some(gradus::tune::Distribution::Categorical { choices }) => !choices.iter().any(|c| c == "none"),
        Some(_) => false,
    };
    if job.monitor().is_some() || !standardises || y.is_empty() {
        return None;
    }
    let (_, std) = gradus::pipeline::target_scale(y).ok()?;
    (std > 0.0 && std.is_finite()).then_some(std)
}

/// `v`, and when `target_std` is known (`v` a mean squared error on the
/// standardised target) the RMSE in the target's units beside it.
fn shown_value(v: f64, target_std: Option<f64>) -> String {
    match target_std {
        Some(std) if v >= 0.0 => format!("{} (RMSE {})", num(v), num(v.sqrt() * std)),
        _ => num(v),
    }
}

/// A duration for a progress line: `42 s`, or `?` when unknown.
fn seconds(s: f64) -> String {
    if s.is_finite() { format!("{s:.0} s") } else { "?".to_string() }
}

/// Seconds left for `left` trials (running ones included), from the
/// measured time per epoch: `elapsed` seconds have trained the `finished`
/// epochs of `ran` finished trials and the epochs of those `running`; a
/// trial trains as many epochs as the finished ones did on average (a
/// running one, what it lacks of that). Measured on epochs, not trials, so
/// that a long trial still running weighs in before it ends.
fn epoch_eta(elapsed: f64, finished: usize, ran: u64, running: &[usize], left: u64) -> f64 {
    let trained = finished + running.iter().sum::<usize>();
    if trained == 0 || ran == 0 {
        return f64::NAN;
    }
    let per_trial = finished as f64 / ran as f64;
    let running_left: f64 = running.iter().map(|&e| (per_trial - e as f64).max(0.0)).sum();
    let waiting = left.saturating_sub(running.len() as u64) as f64;
    elapsed / trained as f64 * (waiting * per_trial + running_left)
}

/// The kinds the user gave (`--columns FILE`, `--categorical`) and the
/// columns left out (`--columns FILE`, `--ignore`), each with where it was
/// said. A column given two ways is an error.
type GivenKinds = (BTreeMap<String, (ColumnKind, String)>, BTreeMap<String, String>);

fn given_kinds(args: &TuneArgs) -> anyhow::Result<GivenKinds> {
    let (mut kinds, mut ignore) = (BTreeMap::new(), BTreeMap::new());
    if let Some(path) = &args.columns {
        let origin = format!("--columns {}", path.display());
        // A missing file is bad input (exit 2), not a failure to run.
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read '{}': {e}", path.display()))?;
        let entries: BTreeMap<String, String> = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a TOML table of column = \"kind\": {e}", path.display()))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a JSON object of \"column\": \"kind\": {e}", path.display()))?
        };
        for (column, kind) in entries {
            if kind == "ignore" {
                ignore.insert(column, origin.clone());
                continue;
            }
            let kind = ColumnKind::parse(&kind).ok_or_else(|| {
                let known: Vec<&str> = ColumnKind::ALL.iter().map(|k| k.name()).collect();
                anyhow::anyhow!(
                    "{}: column '{column}': unknown kind '{kind}' (kinds: {}, ignore)",
                    path.display(),
                    known.join(", ")
                )
            })?;
            kinds.insert(column, (kind, origin.clone()));
        }
    }
    for column in &args.categorical {
        if let Some((_, by)) = kinds.insert(column.clone(), (ColumnKind::Categorical, "--categorical".into())) {
            bail!("--categorical names '{column}', whose kind {by} gives already");
        }
    }
    for column in &args.ignore {
        if let Some(by) = ignore.insert(column.clone(), "--ignore".into()) {
            bail!("--ignore names '{column}', which {by} leaves out already");
        }
    }
    Ok((kinds, ignore))
}

/// What each column is and what becomes of it, as `tuning`'s encoding
/// says: the table printed before the search.
fn columns_table(raw: &RawData, tuning: &Dataset) -> String {
    let mut out = format!(
        "{}: {} rows with a target{}; target '{}': {}\n",
        raw.table.source,
        raw.n_rows(),
        match raw.missing_target_rows {
            0 => String::new(),
            n => format!(" ({n} rows left out: their target is missing)"),
        },
        raw.target_name,
        target_description(raw),
    );
    let width = raw.kinds.iter().map(|k| k.column.chars().count()).max().unwrap_or(6).max(6);
    out.push_str(&format!("{:<width$}  {:<11}  {:>7}  {:>8}  becomes\n", "column", "kind", "missing", "distinct"));
    let rows = raw.n_rows().max(1) as f64;
    // A wide table (pixels) shows its first columns and counts the rest by kind.
    const SHOWN: usize = 24;
    if raw.kinds.len() > SHOWN {
        let mut counts = BTreeMap::new();
        raw.kinds.iter().skip(SHOWN).for_each(|k| *counts.entry(k.kind.name()).or_insert(0) += 1);
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        out.push_str(&format!("(the first {SHOWN} of {} columns; the rest: {})\n", raw.kinds.len(), counts.join(", ")));
    }
    for (kind, becomes) in raw.kinds.iter().zip(column_fates(raw, tuning)).take(SHOWN) {
        out.push_str(&format!(
            "{:<width$}  {:<11}  {:>6.1}%  {:>8}  {becomes}\n",
            kind.column,
            kind.kind.name(),
            kind.missing as f64 / rows * 100.0,
            kind.distinct,
        ));
    }
    out
}

/// One line per column: its encoder's description, or why it is left out.
fn column_fates(raw: &RawData, tuning: &Dataset) -> Vec<String> {
    raw.kinds
        .iter()
        .map(|kind| match tuning.encoding.columns.iter().find(|c| c.column() == kind.column) {
            Some(encoder) => encoder.describe(),
            None => match tuning.encoding.text.iter().find(|t| t.column == kind.column) {
                Some(text) => text.describe(),
                None => format!("left out ({})", kind.reason),
            },
        })
        .collect()
}

/// `binary (classes <=50K, >50K)`, `regression`.
fn target_description(raw: &RawData) -> String {
    match &raw.y {
        gradus::data::Target::Classes { classes, .. } => {
            let shown: Vec<&str> = classes.iter().take(10).map(String::as_str).collect();
            let more = if classes.len() > 10 { ", …" } else { "" };
            format!("{} (classes {}{more})", raw.y.task(), shown.join(", "))
        }
        gradus::data::Target::Real(_) => "regression".into(),
    }
}

fn columns_json(raw: &RawData, tuning: &Dataset) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = raw
        .kinds
        .iter()
        .zip(column_fates(raw, tuning))
        .map(|(k, becomes)| {
            json!({
                "column": k.column, "kind": k.kind, "reason": k.reason,
                "missing": k.missing, "distinct": k.distinct, "becomes": becomes,
            })
        })
        .collect();
    json!({
        "event": "columns",
        "data": raw.table.source,
        "rows": raw.n_rows(),
        "missing_target_rows": raw.missing_target_rows,
        "target": raw.target_name,
        "task": raw.y.task().to_string(),
        "classes": match &raw.y { gradus::data::Target::Classes { classes, .. } => Some(classes), _ => None },
        "inputs": tuning.n_features(),
        "columns": columns,
    })
}

/// `builtin:digits` → `digits`, `data/houses.csv.gz` → `houses`.
fn short_name(source: &str) -> String {
    let base = source.strip_prefix("builtin:").unwrap_or(source);
    let file = std::path::Path::new(base).file_name().and_then(|f| f.to_str()).unwrap_or(base);
    file.split('.').next().filter(|s| !s.is_empty()).unwrap_or(file).to_string()
}

/// A mutex's value, also after a panicking holder (the display is all it guards).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn print_json_line(value: &serde_json::Value) -> anyhow::Result<()> {
    outln!("{value}");
    Ok(())
}

fn trial_json(t: &FrozenTrial) -> serde_json::Value {
    let mut line = json!({
        "event": "trial",
        "trial": t.number,
        "state": t.state.name(),
        "value": t.value(),
        "epochs": t.intermediate.len(),
        "params": t.params,
    });
    if let Some(reason) = t.fail_reason() {
        line["fail_reason"] = reason.into();
    }
    line
}

/// Why trials failed, the commonest first: "3 diverged, 1 interrupted",
/// each reason shortened to its kind (the text before " at " or " (").
fn failure_summary(trials: &[FrozenTrial]) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in trials.iter().filter(|t| t.state == TrialState::Fail) {
        let reason = t.fail_reason().unwrap_or("no reason recorded");
        let kind = reason.split([':', '(']).next().unwrap_or(reason);
        let kind = kind.split(" at ").next().unwrap_or(kind).trim();
        *counts.entry(kind.to_string()).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (!counts.is_empty()).then(|| counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "))
}

/// Trials done / total, the best so far, each running trial's epoch and the
/// time left: a live bar on a terminal, a line per trial otherwise.
struct TrialProgress {
    bar: Option<ProgressBar>,
    /// The best so far, as shown.
    best: std::sync::Mutex<String>,
    /// Running trials: number → (epochs trained, most epochs).
    running: std::sync::Mutex<std::collections::BTreeMap<u64, (usize, usize)>>,
    lines: bool,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    started: Instant,
    done_before: u64,
    /// When trials must end (`--timeout`), which bounds the time left.
    deadline: Option<Instant>,
    /// Epochs trained by the trials this run finished.
    finished_epochs: std::sync::atomic::AtomicUsize,
    /// The target's standard deviation when a trial's value is the mean
    /// squared error on the standardised target (see [`standardised_target_std`]).
    target_std: Option<f64>,
}

impl TrialProgress {
    fn new(total: u64, done: u64, quiet: bool, deadline: Option<Instant>, target_std: Option<f64>) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_position(done.min(total));
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} trials  {msg}  ETA {eta}")
                    .expect("a valid template"),
            );
            bar
        });
        Self {
            bar,
            best: std::sync::Mutex::new("no complete trial yet".into()),
            running: Default::default(),
            lines: !quiet,
            total,
            done: done.into(),
            started: Instant::now(),
            done_before: done,
            deadline,
            finished_epochs: 0.into(),
            target_std,
        }
    }

    /// A trial's value as shown: with the RMSE in the target's units
    /// beside a standardised mean squared error.
    fn value(&self, v: f64) -> String {
        shown_value(v, self.target_std)
    }

    fn note(&self, text: &str) {
        if !self.lines {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// A running trial finished an epoch: show it on the bar.
    fn epoch(&self, number: u64, epochs: usize, most: usize) {
        lock(&self.running).insert(number, (epochs, most));
        self.redraw();
    }

    fn redraw(&self) {
        let Some(bar) = &self.bar else { return };
        let running: Vec<String> =
            lock(&self.running).iter().map(|(n, (e, most))| format!("trial {n} epoch {e}/{most}")).collect();
        let best = lock(&self.best).clone();
        bar.set_message(if running.is_empty() { best } else { format!("{best}; {}", running.join(", ")) });
    }

    fn trial(&self, t: &FrozenTrial, best: Option<&FrozenTrial>) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let best_text = best
            .and_then(|b| b.value().map(|v| format!("best {} (trial {})", self.value(v), b.number)))
            .unwrap_or_else(|| "no complete trial yet".into());
        let outcome = match t.state {
            TrialState::Complete(v) => format!("value {} after {} epochs", self.value(v), t.intermediate.len()),
            TrialState::Pruned => format!("pruned after {} epochs", t.intermediate.len()),
            _ => match t.fail_reason() {
                Some(reason) => format!("failed: {reason}"),
                None => "failed".into(),
            },
        };
        *lock(&self.best) = best_text.clone();
        lock(&self.running).remove(&t.number);
        if let Some(bar) = &self.bar {
            bar.set_position(done.min(self.total));
        }
        self.redraw();
        let ran = done - self.done_before;
        let elapsed = self.started.elapsed().as_secs_f64();
        let finished = self.finished_epochs.fetch_add(t.intermediate.len(), Ordering::Relaxed) + t.intermediate.len();
        let running: Vec<usize> = lock(&self.running).values().map(|(e, _)| *e).collect();
        let mut eta = epoch_eta(elapsed, finished, ran, &running, self.total.saturating_sub(done));
        if let Some(d) = self.deadline {
            eta = eta.min(d.saturating_duration_since(Instant::now()).as_secs_f64());
        }
        let eta = seconds(eta);
        self.note(&format!(
            "trial {} {outcome}; {best_text}; {done}/{} done, {elapsed:.0} s elapsed, ETA {eta}",
            t.number, self.total
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn parse_high_cardinality(name: &str) -> Result<gradus::data::HighCardinality, String> {
    gradus::data::HighCardinality::from_name(name)
        .ok_or_else(|| format!("'{name}' is not one of other, hash, embed, onehot"))
}

#[cfg(test)]
mod tests {
    use super::epoch_eta;

    #[test]
    fn the_eta_counts_epochs_so_a_long_running_trial_weighs_in() {
        // Two trials of 10 epochs finished, one running at epoch 4, in 24 s:
        // 1 s an epoch; it lacks 6, and 7 trials wait with 10 each: 76 s.
        assert_eq!(epoch_eta(24.0, 20, 2, &[4], 8), 76.0);
        // The same time spent on fewer epochs (a slow trial running): longer.
        assert_eq!(epoch_eta(24.0, 8, 2, &[4], 8), 24.0 / 12.0 * (7.0 * 4.0));
        // Past the finished trials' mean, a running trial adds nothing more.
        assert_eq!(epoch_eta(10.0, 10, 1, &[30], 1), 0.0);
        assert!(epoch_eta(1.0, 0, 1, &[], 5).is_nan(), "nothing measured yet");
    }
}
