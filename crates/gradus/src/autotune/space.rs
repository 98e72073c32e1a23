//! What `gradus tune` searches: the model families a request allows, the
//! default space, a user's space file laid over it, and the decoding of a
//! trial's values into what is trained (a value gradus does not train is an
//! error, never a default).
//!
//! # The default search space
//!
//! | name | values | for |
//! |---|---|---|
//! | `model` | the families that fit the target (on text: the linear one and the text model) | `--model auto` only |
//! | `scaling` | standard, minmax, and on images global: the feature scaling fitted on each trial's training rows | unless `--scale` fixes it |
//! | `optimizer` | sgd, momentum (0.9), adam, adamw | every family |
//! | `lr` | 1e-4 … 0.3, log | every family |
//! | `batch_size` | 16 … 256, log, integer (64 … 1024 on a large table, [`large_data_batches`]) | every family |
//! | `weight_decay` | 1e-6 … 0.1, log: the L2 penalty, or AdamW's decoupled decay | every family |
//! | `schedule` | constant, cosine | every family |
//! | `n_layers` | 1 … 3 | mlp |
//! | `conv_layers` | 1 … up to 3 stages of a 3x3 convolution (ReLU) and 2x2 pooling, as many as fit the images ([`max_conv_stages`]) | cnn |
//! | `channels` | 8 … 64, log, integer: the first stage's, doubling at each stage | cnn |
//! | `pooling` | max, avg | cnn |
//! | `normalization` | none, batch: batch norm after each convolution (before its ReLU) | cnn |
//! | `width` | 16 … 512, log, integer (every hidden layer) | mlp, cnn (one Dense layer), text with an MLP head (its hidden layer) |
//! | `activation` | relu, tanh, gelu | mlp |
//! | `dropout` | 0 … 0.5 | mlp, cnn |
//! | `shift` | 0 … 2: augmentation, the most pixels a training image moves each way | cnn |
//! | `embedding` | none, periodic: periodic embeddings of the numeric columns ([`periodic_embeddings`]) | mlp, on a large table of at most 32 numeric columns (on a smaller one, when a space file names it) |
//! | `embedding_sigma` | 0.01 … 100, log: σ of the initial frequencies (the paper's range) | mlp, with `embedding` periodic |
//! | `dim` | 8 … 32, log, integer: the values of each n-gram's embedding | text |
//! | `head` | linear, mlp: the embedding into the outputs (fastText's), or through one hidden layer of ReLU units | text |
//! | `text_ngrams` | 1 … the columns' longest n-grams (`--ngram`'s HIGH): the longest kept, [`text_vocabulary_space`] | every family, on text read through a vocabulary |
//! | `text_features` | 4096, 16384, … (each 4x the last) and the largest vocabulary: the n-grams in most rows kept per column | every family, on text read through a vocabulary |
//!
//! A space file (JSON or TOML, as for `gradus study create --space`) may
//! replace any of these distributions — to narrow a range or fix a value —
//! but may not name others.

use std::collections::BTreeMap;

use gradus_data::{Scaling, Task};
use gradus_train::{Activation, OptimizerConfig, Pooling, Schedule, Shape};
use gradus_tune::{Distribution, SearchSpace};
use serde_json::Value;

use crate::pipeline::{Family, PipelineError};

/// Which model families the search may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelRequest {
    /// Every family that fits the target (`model` becomes a hyperparameter).
    Auto,
    /// This family only.
    Only(Family),
}

impl ModelRequest {
    /// The families this request allows on a task; with `images` (the rows
    /// are images of a known shape) auto searches CNNs as well; with `text`
    /// (the rows have text columns) only the families that read text: the
    /// linear one for the task and the text model.
    pub fn families(self, task: Task, images: bool, text: bool) -> Result<Vec<Family>, PipelineError> {
        let fitting: Vec<Family> = Family::ALL.into_iter().filter(|f| f.fits(task)).collect();
        match self {
            ModelRequest::Auto if text => Ok(fitting.into_iter().filter(|f| f.reads_text()).collect()),
            ModelRequest::Auto => {
                Ok(fitting.into_iter().filter(|&f| f.in_auto() || images && f == Family::Cnn).collect())
            }
            ModelRequest::Only(wanted) if text && !wanted.reads_text() => Err(PipelineError::Unsuitable(format!(
                "--model {} reads numbers only, and the data have text columns (use --model text, {} or auto)",
                wanted.name(),
                fitting
                    .iter()
                    .filter(|f| f.reads_text() && f.in_auto())
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            ModelRequest::Only(wanted) if wanted.fits(task) => Ok(vec![wanted]),
            ModelRequest::Only(wanted) => Err(PipelineError::Unsuitable(format!(
                "--model {} does not fit a {task} target (use --model {} or auto)",
                wanted.name(),
                fitting.iter().filter(|f| f.in_auto()).map(|f| f.name()).collect::<Vec<_>>().join(" or --model ")
            ))),
        }
    }
}

/// The hyperparameters [`default_space`] can hold, in suggestion order.
pub const HYPERPARAMETERS: &[&str] = &[
    "model",
    "scaling",
    "optimizer",
    "lr",
    "batch_size",
    "weight_decay",
    "schedule",
    "n_layers",
    "conv_layers",
    "channels",
    "pooling",
    "normalization",
    "head",
    "width",
    "activation",
    "dropout",
    "shift",
    "embedding",
    "embedding_sigma",
    "dim",
    "text_ngrams",
    "text_features",
];

/// The most convolution stages a CNN search tries on `image`: each stage
/// (3x3 kernel, then 2x2 max or average pooling) halves the image, and its
/// kernel must fit what reaches it; at most 3. `None` when not even one fits.
pub fn max_conv_stages(image: Shape) -> Option<usize> {
    let side = image[1].min(image[2]);
    let fitting = (0..3).take_while(|&i| side >> i >= 3).count();
    (fitting > 0).then_some(fitting)
}

/// The default search space for `families` (see the module docs), with
/// the feature scaling among the hyperparameters when `search_scaling`;
/// `image` is the shape of the rows' images, which a CNN needs.
pub fn default_space(families: &[Family], search_scaling: bool, image: Option<Shape>) -> SearchSpace {
    let mut space = BTreeMap::new();
    if families.len() > 1 {
        space.insert("model".to_string(), Distribution::categorical(families.iter().map(|f| f.name())));
    }
    if search_scaling {
        // Per feature, as for any table; on images also every pixel by one
        // range, which keeps an image's look for a convolution.
        let global = image.map(|_| "global");
        space
            .insert("scaling".to_string(), Distribution::categorical(["standard", "minmax"].into_iter().chain(global)));
    }
    space.insert("optimizer".into(), Distribution::categorical(["sgd", "momentum", "adam", "adamw"]));
    space.insert("lr".into(), Distribution::log_float(1e-4, 0.3));
    space.insert("batch_size".into(), Distribution::Int { low: 16, high: 256, log: true, step: 1 });
    space.insert("weight_decay".into(), Distribution::log_float(1e-6, 1e-1));
    space.insert("schedule".into(), Distribution::categorical(["constant", "cosine"]));
    if families.contains(&Family::Mlp) {
        space.insert("n_layers".into(), Distribution::int(1, 3));
        space.insert("activation".into(), Distribution::categorical(["relu", "tanh", "gelu"]));
    }
    if let (true, Some(stages)) = (families.contains(&Family::Cnn), image.and_then(max_conv_stages)) {
        space.insert("conv_layers".into(), Distribution::int(1, stages as i64));
        space.insert("channels".into(), Distribution::Int { low: 8, high: 64, log: true, step: 1 });
        space.insert("pooling".into(), Distribution::categorical(["max", "avg"]));
        space.insert("normalization".into(), Distribution::categorical(["none", "batch"]));
        space.insert("shift".into(), Distribution::float(0.0, 2.0));
    }
    if families.contains(&Family::Text) {
        // 2^18 n-grams (buckets or a vocabulary) x 32 is 34 MB of weights,
        // and as much again for each of the gradient and Adam's two
        // moments; with the models kept (MODEL_BYTES) a search stays well
        // within a gigabyte (up to 64, the Chinese reviews peaked at 903 MB).
        space.insert("dim".into(), Distribution::Int { low: 8, high: 32, log: true, step: 1 });
        space.insert("head".into(), Distribution::categorical(["linear", "mlp"]));
    }
    if [Family::Mlp, Family::Cnn, Family::Text].iter().any(|f| families.contains(f)) {
        space.insert("width".into(), Distribution::Int { low: 16, high: 512, log: true, step: 1 });
    }
    if families.contains(&Family::Mlp) || families.contains(&Family::Cnn) {
        space.insert("dropout".into(), Distribution::float(0.0, 0.5));
    }
    SearchSpace(space)
}

/// The space for a large table (see
/// [`super::TuneJob::shorten_epochs_on_large_data`]): batches of 64 … 1024 rows
/// instead of 16 … 256. On tens of thousands of rows a batch of 16 takes
/// thousands of small steps an epoch, each a matrix product too small to
/// run fast; larger batches cover the rows in fewer, faster steps, and the
/// learning rate is searched with them.
pub fn large_data_batches(mut space: SearchSpace) -> SearchSpace {
    if let Some(batch) = space.0.get_mut("batch_size") {
        *batch = Distribution::Int { low: 64, high: 1024, log: true, step: 1 };
    }
    space
}

/// The space with periodic embeddings of the numeric columns for the MLPs
/// (Gorishniy et al. 2022's PLR: 16 frequencies and 16 values per column,
/// σ searched over the paper's range), for a large table (a trial trains
/// on more than [`super::LARGE_DATA_ROWS`] rows) whose numeric
/// columns get piecewise-linear bins (at most 32, not pixels; see
/// [`gradus_data::Encoding::has_bins`]). On UCI Adult (20,839 rows a
/// trial) they raised test accuracy from 86.1% to 87.0% and ROC AUC from
/// 0.914 to 0.923 (three seeds); on breast_cancer and wine (a few hundred
/// rows) they cost 0.9 and 0.6 points over five seeds, so smaller tables
/// go without unless a space file names them (BENCHMARKS.md).
pub fn periodic_embeddings(mut space: SearchSpace) -> SearchSpace {
    if space.0.contains_key("n_layers") {
        space.0.insert("embedding".into(), Distribution::categorical(["none", "periodic"]));
        space.0.insert("embedding_sigma".into(), Distribution::log_float(0.01, 100.0));
    }
    space
}

/// The fewest n-grams per column `text_features` tries.
pub const MIN_TEXT_FEATURES: usize = 4096;

/// The space with the text columns' vocabularies searched, when every text
/// column of `encoding` was read through one (not hashed): `text_ngrams`,
/// the longest n-grams kept (from the columns' shortest up to their
/// longest), and `text_features`, how many of the n-grams in most rows each
/// column keeps ([`MIN_TEXT_FEATURES`], 4 times as many, … and the largest
/// vocabulary: a few sizes, so that trials share them, as the members of
/// one final model must).
/// Each trial's rows are the fitted vocabularies narrowed to its choice
/// ([`gradus_data::Dataset::narrow_text`]): exactly what fitting with that
/// n-gram range and `--max-features` gives, without reading the text again.
/// A dimension with nothing to choose (one n-gram length; vocabularies of
/// at most 4096) is left out. With the hashing trick there is nothing to
/// narrow, and the space is as it was.
pub fn text_vocabulary_space(mut space: SearchSpace, encoding: &gradus_data::Encoding) -> SearchSpace {
    let text = &encoding.text;
    if text.is_empty() || text.iter().any(|t| t.vocabulary.as_ref().is_none_or(|v| v.orders.len() != v.terms.len())) {
        return space;
    }
    let low = text.iter().map(|t| t.ngrams.low).max().unwrap_or(1);
    let high = text.iter().map(|t| t.ngrams.high).max().unwrap_or(1);
    if high > low {
        space.0.insert("text_ngrams".into(), Distribution::int(low as i64, high as i64));
    }
    let widest = text.iter().map(|t| t.width()).max().unwrap_or(0);
    if widest > MIN_TEXT_FEATURES {
        // A few sizes, each 4x the last, so that trials share vocabularies:
        // the members of one model must read the same inputs.
        let sizes = std::iter::successors(Some(MIN_TEXT_FEATURES), |s| Some(s * 4)).take_while(|&s| s < widest);
        let choices = sizes.chain([widest]).map(|s| Value::from(s as u64)).collect();
        space.0.insert("text_features".into(), Distribution::Categorical { choices });
    }
    space
}

/// The values a categorical hyperparameter may take, each decoded by the
/// one function the trials use ([`decode_optimizer`] and its kin): a space
/// naming any other is refused ([`merge_space`]), never trained as a default.
pub fn known_choices(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "optimizer" => &["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"],
        "activation" => &["relu", "tanh", "sigmoid", "gelu"],
        "schedule" => &["constant", "cosine"],
        "scaling" => &["standard", "minmax", "global", "none"],
        "pooling" => &["max", "avg"],
        "embedding" => &["none", "periodic"],
        "normalization" => &["none", "batch"],
        "head" => &["linear", "mlp"],
        _ => return None,
    })
}

/// The optimizer named `name` (settings as `gradus train`'s, PyTorch's
/// defaults; momentum 0.9 for momentum and nesterov) and the L2 penalty:
/// `weight_decay`, or 0 for AdamW, which decays weights itself.
pub fn decode_optimizer(name: &str, weight_decay: f32) -> Option<(OptimizerConfig, f32)> {
    Some(match name {
        "sgd" => (OptimizerConfig::sgd(0.0), weight_decay),
        "momentum" => (OptimizerConfig::sgd(0.9), weight_decay),
        "nesterov" => (OptimizerConfig::Sgd { momentum: 0.9, nesterov: true }, weight_decay),
        "adagrad" => (OptimizerConfig::adagrad(), weight_decay),
        "rmsprop" => (OptimizerConfig::rmsprop(), weight_decay),
        "adam" => (OptimizerConfig::adam(), weight_decay),
        "adamw" => (OptimizerConfig::Adamw { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay }, 0.0),
        _ => return None,
    })
}

/// The activation named `name`.
pub fn decode_activation(name: &str) -> Option<Activation> {
    [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Gelu].into_iter().find(|a| a.name() == name)
}

/// The learning-rate schedule named `name` (cosine: to 0 over the trial's epochs).
pub fn decode_schedule(name: &str) -> Option<Schedule> {
    match name {
        "constant" => Some(Schedule::Constant),
        "cosine" => Some(Schedule::Cosine { warmup: 0, min_lr: 0.0 }),
        _ => None,
    }
}

/// The feature scaling named `name`.
pub fn decode_scaling(name: &str) -> Option<Scaling> {
    Scaling::from_name(name)
}

/// Whether the normalization named `name` is batch norm (`none`: no normalization).
pub fn decode_normalization(name: &str) -> Option<bool> {
    match name {
        "none" => Some(false),
        "batch" => Some(true),
        _ => None,
    }
}

pub fn decode_pooling(name: &str) -> Option<Pooling> {
    match name {
        "max" => Some(Pooling::Max),
        "avg" => Some(Pooling::Avg),
        _ => None,
    }
}

/// Whether `name`'s decoder knows `value` (see [`known_choices`]).
fn decodes(name: &str, value: &str) -> bool {
    match name {
        "optimizer" => decode_optimizer(value, 0.0).is_some(),
        "activation" => decode_activation(value).is_some(),
        "schedule" => decode_schedule(value).is_some(),
        "scaling" => decode_scaling(value).is_some(),
        "pooling" => decode_pooling(value).is_some(),
        "embedding" => matches!(value, "none" | "periodic"),
        "normalization" => decode_normalization(value).is_some(),
        "head" => matches!(value, "linear" | "mlp"),
        _ => true,
    }
}

/// The most numbers a network of the space may hold — its weights, or the
/// activations of its largest batch — 100 million (400 MB as f32, before
/// the optimizer's copies).
pub const MAX_NETWORK_NUMBERS: u128 = 100_000_000;

/// Refuses a space whose largest network would not fit in memory, naming
/// the parameters, before any trial allocates it: the most weights (the
/// widest, deepest MLP on `n_inputs` inputs and `n_outputs` outputs) and
/// the most activations (that network on the largest batch).
pub fn check_network_size(
    space: &SearchSpace,
    n_inputs: usize,
    n_outputs: usize,
    origin: &str,
) -> Result<(), PipelineError> {
    let most = |name: &str, default: i64| -> u128 {
        let high = match space.0.get(name) {
            Some(Distribution::Int { high, .. }) => *high,
            Some(Distribution::Categorical { choices }) => {
                choices.iter().filter_map(Value::as_i64).max().unwrap_or(default)
            }
            _ => default,
        };
        high.max(0) as u128
    };
    let (layers, width, batch) = (most("n_layers", 0), most("width", 0), most("batch_size", 1));
    if layers == 0 || !space.0.contains_key("width") {
        return Ok(());
    }
    let (inputs, outputs) = (n_inputs as u128, n_outputs as u128);
    let weights = (inputs + 1) * width + (layers - 1) * (width + 1) * width + (width + 1) * outputs;
    let activations = batch * width * layers;
    for (what, count) in [("weights", weights), ("activations of one batch", activations)] {
        if count > MAX_NETWORK_NUMBERS {
            return Err(PipelineError::Unsuitable(format!(
                "{origin}: the largest network (n_layers {layers}, width {width}, batch_size {batch}, on {n_inputs} \
                 inputs) would hold {count} {what}, more than the {MAX_NETWORK_NUMBERS} that fit in memory; \
                 lower n_layers or width{}",
                if what == "weights" { "" } else { " or batch_size" }
            )));
        }
    }
    Ok(())
}

/// [`check_network_size`] for a CNN on images of `image`: the most
/// activations (the first stage's outputs at the most channels, on the
/// largest batch) and the most weights (the Dense layer on the last
/// stage's flattened outputs).
pub fn check_cnn_size(space: &SearchSpace, image: Shape, origin: &str) -> Result<(), PipelineError> {
    let most = |name: &str| -> u128 {
        match space.0.get(name) {
            Some(Distribution::Int { high, .. }) => (*high).max(0) as u128,
            Some(Distribution::Categorical { choices }) => {
                choices.iter().filter_map(Value::as_i64).max().unwrap_or(0).max(0) as u128
            }
            _ => 0,
        }
    };
    let (channels, stages, width, batch) = (most("channels"), most("conv_layers"), most("width"), most("batch_size"));
    let [_, h, w] = image.map(|s| s as u128);
    let activations = batch.max(1).saturating_mul(channels).saturating_mul(h * w);
    let last = channels.saturating_mul(1 << stages.saturating_sub(1).min(60));
    let flat = (h >> stages.min(60)).max(1) * (w >> stages.min(60)).max(1);
    let weights = last.saturating_mul(flat).saturating_mul(width);
    for (what, count) in [("activations of one batch", activations), ("weights", weights)] {
        if count > MAX_NETWORK_NUMBERS {
            return Err(PipelineError::Unsuitable(format!(
                "{origin}: the largest CNN (conv_layers {stages}, channels {channels}, width {width}, batch_size \
                 {batch}) would hold {count} {what}, more than the {MAX_NETWORK_NUMBERS} that fit in memory; lower \
                 channels, width or batch_size"
            )));
        }
    }
    Ok(())
}

/// The defaults with a user's space file laid over them: a name the
/// defaults lack is an error naming the file.
pub fn merge_space(defaults: SearchSpace, user: SearchSpace, origin: &str) -> Result<SearchSpace, PipelineError> {
    let mut merged = defaults;
    for (name, distribution) in user.0 {
        if !merged.0.contains_key(&name) {
            let known = merged.0.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
            let hint = match name.as_str() {
                "embedding" | "embedding_sigma" => {
                    " (it applies to MLPs on a table of at most 32 numeric columns)".to_string()
                }
                known if HYPERPARAMETERS.contains(&known) => {
                    " (it applies to other model families than this search's)".to_string()
                }
                _ => String::new(),
            };
            return Err(PipelineError::Unsuitable(format!(
                "{origin}: unknown hyperparameter '{name}'{hint}; this search's are: {known}"
            )));
        }
        // A value of the wrong kind would be read as the default.
        let words = matches!(
            name.as_str(),
            "model"
                | "scaling"
                | "optimizer"
                | "schedule"
                | "activation"
                | "pooling"
                | "normalization"
                | "embedding"
                | "head"
        );
        let whole = matches!(
            name.as_str(),
            "batch_size" | "n_layers" | "width" | "conv_layers" | "channels" | "dim" | "text_ngrams" | "text_features"
        );
        let fits = match &distribution {
            Distribution::Categorical { choices } if words => choices.iter().all(Value::is_string),
            Distribution::Categorical { choices } if whole => choices.iter().all(Value::is_i64),
            Distribution::Categorical { choices } => choices.iter().all(Value::is_number),
            Distribution::Float { .. } => !words && !whole,
            Distribution::Int { .. } => !words,
        };
        if !fits {
            let want = match (words, whole) {
                (true, _) => "a categorical of names",
                (_, true) => "an int range or a categorical of whole numbers",
                _ => "a float or int range or a categorical of numbers",
            };
            let given = serde_json::to_string(&distribution).unwrap_or_default();
            return Err(PipelineError::Unsuitable(format!("{origin}: {name} must be {want}, not {given}")));
        }
        if let (Some(known), Distribution::Categorical { choices }) = (known_choices(&name), &distribution)
            && let Some(bad) = choices.iter().find(|c| !c.as_str().is_some_and(|v| decodes(&name, v)))
        {
            return Err(PipelineError::Unsuitable(format!(
                "{origin}: {name} choice {bad} is not one gradus can train (choices: {})",
                known.join(", ")
            )));
        }
        if name == "model"
            && let (Distribution::Categorical { choices }, Some(Distribution::Categorical { choices: allowed })) =
                (&distribution, merged.0.get("model"))
            && let Some(bad) = choices.iter().find(|c| !allowed.contains(c))
        {
            let allowed: Vec<String> = allowed.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
            return Err(PipelineError::Unsuitable(format!(
                "{origin}: model {bad} does not fit this target (choices: {})",
                allowed.join(", ")
            )));
        }
        merged.0.insert(name, distribution);
    }
    Ok(merged)
}
