//! `gradus compress`: make a saved model smaller and faster — distil it
//! into one network, or prune its weights — and report the figures before
//! and after.

use std::path::PathBuf;

use clap::Args;
use gradus::compress::{DistillOptions, PRUNE_ROUNDS, distill_fastest, figures, prune, quantize};
use gradus::report::svg::number;
use gradus::train::{EarlyStopping, Ensemble, Metrics, NoObserver, TrainConfig};
use serde_json::json;

use crate::metrics_line;
use crate::predict::{LabelledSource, ReadArgs, load_labelled};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("how").required(true).multiple(true).args(["distill", "prune", "int8"]))]
pub struct CompressArgs {
    /// The model to compress: a file saved by `gradus tune --out` or `gradus train --out`.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Labelled rows to compress with: the training rows (the student learns the model's predictions on them).
    #[arg(long, value_name = "PATH|builtin:NAME")]
    data: String,
    /// Where to save the compressed model.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Distil the model into one MLP trained on its predicted probabilities (Hinton et al. 2015); with --int8, quantise the student.
    #[arg(long, group = "how")]
    distill: bool,
    /// Prune each member's weights of least magnitude to this share of zeros (0.9: 90%), fine-tuning the rest on the rows; stored sparsely.
    #[arg(long, group = "how", value_name = "SPARSITY", conflicts_with_all = ["distill", "int8"])]
    prune: Option<f64>,
    /// Quantise each member's dense and conv layers to int8 (weights per output channel, inputs calibrated on up to 2,000 of the rows); predicts with int8 kernels. With --distill: the student, timed in int8 when chosen.
    #[arg(long, group = "how")]
    int8: bool,
    /// The student's hidden layer widths, comma-separated [default: of 32, 64, 128, 256, 512, 1024, 64-64 and 128-128 units, the slowest that still predicts at least --speedup times faster, in int8 with --int8].
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    hidden: Vec<usize>,
    /// With no --hidden: the least speed-up over the model a student must give to be chosen.
    #[arg(long, default_value_t = 8.0, value_name = "X")]
    speedup: f64,
    /// The most epochs of training: a distilled student's (Adam, early stopping on the validation rows' labels, patience 20), or the pruned model's fine-tuning over its rounds (patience 10 in each).
    #[arg(long, default_value_t = 300, value_name = "N")]
    epochs: usize,
    /// The student's learning rate.
    #[arg(long, default_value_t = 1e-3, value_name = "LR")]
    lr: f32,
    /// The fraction of the rows held out to validate the student.
    #[arg(long, default_value_t = 0.15, value_name = "F")]
    valid_fraction: f64,
    /// Add this many times the training rows made by mixup (blends of two rows, labelled by the model) to the rows the student learns from.
    #[arg(long, default_value_t = 8, value_name = "N")]
    mixup: usize,
    /// Soften the model's probabilities by this temperature for the student to learn (its logits over T; Hinton et al. 2015).
    #[arg(long, default_value_t = 1.0, value_name = "T")]
    temperature: f32,
    /// Report the figures on these labelled rows [default: the validation rows].
    #[arg(long, value_name = "PATH|builtin:NAME")]
    test: Option<String>,
    /// Seeds the split and the student's training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run(args: CompressArgs) -> anyhow::Result<()> {
    crate::check_out_path(&args.out)?;
    if args.hidden.contains(&0) {
        anyhow::bail!("invalid --hidden {:?}: a hidden layer needs at least one unit", args.hidden);
    }
    if !args.hidden.is_empty() && !args.distill {
        anyhow::bail!("--hidden sizes a distilled student; it applies to --distill only");
    }
    if let Some(s) = args.prune
        && !(s > 0.0 && s < 1.0)
    {
        anyhow::bail!("--prune takes the share of weights to set to zero, between 0 and 1 (0.9 for 90%); got {s}");
    }
    if !(args.valid_fraction > 0.0 && args.valid_fraction < 1.0) {
        anyhow::bail!("--valid-fraction must be in (0, 1), got {}", args.valid_fraction);
    }
    if !(args.speedup.is_finite() && args.speedup >= 1.0) {
        anyhow::bail!("--speedup must be a number ≥ 1, got {}", args.speedup);
    }
    let original = Ensemble::load(&args.model)?;
    let (rows, _) = load_labelled(&original, &source(&args, &args.data))?;
    let test = args.test.as_ref().map(|t| load_labelled(&original, &source(&args, t)).map(|(d, _)| d)).transpose()?;
    // The held-out rows: --test, or those compression holds out for
    // validation (the same seeded split).
    let held_out = match test {
        Some(test) => test,
        None => {
            let split = rows.split(args.valid_fraction, 0.0, args.seed)?;
            let [_, valid, _] = rows.clone().into_split(&split);
            if valid.n_samples() == 0 {
                anyhow::bail!("{}: too few rows to hold any out for validation", args.data);
            }
            valid
        }
    };
    progress(&args, "timing the model on the held-out rows");
    let before = figures(&original, &held_out)?;
    let (how, mut model, note) = match args.prune {
        None if args.int8 && !args.distill => {
            progress(&args, "quantising to int8");
            let model = quantize(&original, &rows)?;
            let n = rows.n_samples().min(gradus::compress::CALIBRATION_ROWS);
            ("int8", model, format!("quantised to int8, calibrated on {n} rows of {}", args.data))
        }
        Some(sparsity) => {
            progress(&args, &format!("pruning to {:.1}% zero weights in {PRUNE_ROUNDS} rounds", 100.0 * sparsity));
            let config = TrainConfig {
                epochs: args.epochs.div_ceil(PRUNE_ROUNDS),
                lr: args.lr,
                batch_size: Some(64),
                early_stopping: Some(EarlyStopping::new(10)),
                seed: args.seed,
                ..TrainConfig::default()
            };
            let model = prune(&original, &rows, sparsity, &config, args.valid_fraction, &mut NoObserver)?;
            ("prune", model, format!("pruned and fine-tuned on {} rows of {}", rows.n_samples(), args.data))
        }
        None => {
            let options = DistillOptions {
                hidden: (!args.hidden.is_empty()).then(|| args.hidden.clone()),
                speedup: args.speedup,
                int8: args.int8,
                epochs: args.epochs,
                lr: args.lr,
                valid_fraction: args.valid_fraction,
                mixup: args.mixup,
                temperature: args.temperature,
                seed: args.seed,
            };
            let distilled =
                distill_fastest(&original, &rows, &held_out, before.ms_per_1000_rows, &options, &mut |what| {
                    progress(&args, what)
                })?;
            let mut note = format!("distilled on {} rows of {}", distilled.train_rows, args.data);
            if args.int8 {
                note += ", then quantised to int8";
            }
            let how = if args.int8 { "distill+int8" } else { "distill" };
            (how, Ensemble::from(distilled.outcome.saved), note)
        }
    };
    let after = figures(&model, &held_out)?;
    let held_out =
        if args.test.is_some() { args.test.clone().unwrap_or_default() } else { "the validation rows".into() };
    model.set_about(json!({
        "made_by": format!("gradus compress --{}", how.replace('+', " --")),
        "compressed": args.model.display().to_string(),
        "data": args.data,
        "seed": args.seed,
        "held_out": held_out,
        "before": before,
        "after": after,
        "original_about": original.about(),
    }));
    model.save(&args.out)?;
    if args.json {
        crate::outln!(
            "{}",
            json!({
                "model": args.model.display().to_string(),
                "out": args.out.display().to_string(),
                "compression": how,
                "compressed": model.describe(),
                "held_out": held_out,
                "before": before,
                "after": after,
            })
        );
        return Ok(());
    }
    crate::outln!("model    {} ({})", args.model.display(), original.describe());
    crate::outln!("out      {} ({}), {note}", args.out.display(), model.describe());
    for member in model.members() {
        for c in &member.spec.compression {
            crate::outln!("         {}", c.describe());
        }
    }
    crate::outln!("on {held_out}:");
    crate::outln!("           {:>12} {:>14}  metrics", "size", "ms/1000 rows");
    for (name, f) in [("before", &before), ("after", &after)] {
        crate::outln!(
            "  {name:<8} {:>12} {:>14}  {}",
            bytes(f.bytes),
            number(f.ms_per_1000_rows),
            metrics_line(&f.metrics)
        );
    }
    crate::outln!(
        "change   {:.1}x smaller, {:.1}x faster{}",
        before.bytes as f64 / after.bytes as f64,
        before.ms_per_1000_rows / after.ms_per_1000_rows,
        accuracy_change(&before.metrics, &after.metrics)
    );
    crate::outln!("saved    {}", args.out.display());
    Ok(())
}

/// Where the labelled rows `data` come from, read as the arguments say.
fn source<'a>(args: &'a CompressArgs, data: &'a str) -> LabelledSource<'a> {
    LabelledSource { model: &args.model, data, read: args.read }
}

fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.2} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// `, accuracy −0.28 points` for classifiers; `, R² +0.01` for a real target.
fn accuracy_change(before: &Metrics, after: &Metrics) -> String {
    match (before, after) {
        (Metrics::Classification { accuracy: a, .. }, Metrics::Classification { accuracy: b, .. }) => {
            format!(", accuracy {:+.2} points", 100.0 * (b - a))
        }
        (Metrics::Regression { r2: a, .. }, Metrics::Regression { r2: b, .. }) => format!(", R² {:+.4}", b - a),
        _ => String::new(),
    }
}

/// A line on stderr saying what is being done (not with `--json`).
fn progress(args: &CompressArgs, what: &str) {
    if !args.json {
        eprintln!("compress: {what}");
    }
}
