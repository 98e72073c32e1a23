//! `gradus predict` and `gradus evaluate`: use a saved model on new rows.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use gradus::data::{ReadOptions, TextEncoding, load_encoded, load_table};
use gradus::train::{Ensemble, Metrics, predicted_classes, probabilities};

use crate::metrics_line;

#[derive(Args)]
pub struct PredictArgs {
    /// A model file saved by `gradus train --out`.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Rows to predict for: a CSV with the model's feature columns (other columns are ignored), or builtin:NAME.
    #[arg(long, value_name = "PATH|builtin:NAME")]
    data: String,
    /// Write the predictions here instead of to stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The file's character encoding: utf-8, latin-1 (iso-8859-1) or windows-1252 (cp1252).
    #[arg(long, default_value = "utf-8", value_parser = crate::parse_encoding, value_name = "NAME")]
    encoding: TextEncoding,
    /// The field delimiter [default: sniffed from the header: comma, semicolon, tab or pipe].
    #[arg(long, value_parser = crate::parse_delimiter, value_name = "CHAR")]
    delimiter: Option<u8>,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// A model file saved by `gradus train --out`.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Labelled rows: the model's feature columns and its target column.
    #[arg(long, value_name = "PATH|builtin:NAME")]
    data: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The file's character encoding: utf-8, latin-1 (iso-8859-1) or windows-1252 (cp1252).
    #[arg(long, default_value = "utf-8", value_parser = crate::parse_encoding, value_name = "NAME")]
    encoding: TextEncoding,
    /// The field delimiter [default: sniffed from the header: comma, semicolon, tab or pipe].
    #[arg(long, value_parser = crate::parse_delimiter, value_name = "CHAR")]
    delimiter: Option<u8>,
}

/// CSV rows: `prediction` (a class label or a number), then for classifiers
/// one probability column `p_<class>` per class.
pub fn run_predict(args: PredictArgs) -> anyhow::Result<()> {
    let saved = Ensemble::load(&args.model)?;
    let prep = saved.preprocessing();
    let encoding = prep.encoding();
    let options = ReadOptions { encoding: args.encoding, delimiter: args.delimiter, ..encoding.read_options() };
    let x = encoding.transform(&load_table(&args.data, &encoding.input_columns(), &options)?)?;
    let outputs = saved.outputs(x)?;
    let k = saved.n_outputs();
    let mut text = String::new();
    match &prep.classes {
        Some(classes) => {
            text.push_str("prediction");
            for c in classes {
                text.push_str(&format!(",p_{c}"));
            }
            text.push('\n');
            let probs = probabilities(&outputs, k);
            let width = classes.len();
            for (label, p) in predicted_classes(&outputs, k).iter().zip(probs.chunks_exact(width)) {
                text.push_str(&classes[*label as usize]);
                for &v in p {
                    text.push(',');
                    text.push_str(&csv_float(v));
                }
                text.push('\n');
            }
        }
        None => {
            text.push_str("prediction\n");
            for &v in &outputs {
                text.push_str(&csv_float(v));
                text.push('\n');
            }
        }
    }
    match &args.out {
        Some(path) => std::fs::write(path, text)?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// The shortest text that reads back as the same f32, in exponent form for
/// tiny values so that probabilities stay short.
fn csv_float(v: f32) -> String {
    if v != 0.0 && v.abs() < 1e-4 { format!("{v:e}") } else { format!("{v}") }
}

pub fn run_evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    let saved = Ensemble::load(&args.model)?;
    let prep = saved.preprocessing();
    let format = ReadOptions { encoding: args.encoding, delimiter: args.delimiter, ..ReadOptions::default() };
    let data = load_encoded(&args.data, prep.encoding(), &prep.target_name, saved.loss().target_kind(), &format)?;
    let metrics = saved.evaluate(&data)?;
    if args.json {
        crate::outln!(
            "{}",
            serde_json::json!({
                "model": args.model.display().to_string(),
                "data": args.data,
                "rows": data.n_samples(),
                "metrics": metrics,
            })
        );
        return Ok(());
    }
    crate::outln!("model    {} ({})", args.model.display(), saved.describe());
    crate::outln!("data     {}: {} rows", args.data, data.n_samples());
    crate::outln!("metrics  {}", metrics_line(&metrics));
    if let (Metrics::Classification { confusion, .. }, Some(classes)) = (&metrics, &prep.classes) {
        let width = classes.iter().map(String::len).max().unwrap_or(1).max(5);
        crate::outln!("confusion (rows: true class, columns: predicted)");
        let mut line = format!("{:>width$}", "");
        for c in classes {
            line.push_str(&format!(" {c:>width$}"));
        }
        crate::outln!("{line}");
        for (c, row) in classes.iter().zip(confusion) {
            let mut line = format!("{c:>width$}");
            for v in row {
                line.push_str(&format!(" {v:>width$}"));
            }
            crate::outln!("{line}");
        }
    }
    Ok(())
}
