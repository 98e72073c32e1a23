//! `gradus predict` and `gradus evaluate`: use a saved model on new rows.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use gradus::data::{DataError, MISSING, ReadOptions, TextEncoding, Values, load_encoded, load_table};
use gradus::train::{Ensemble, Metrics, class_scores, predicted_classes, probabilities};

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
    /// Columns of the data copied to the output before the prediction (an
    /// id, say; comma-separated), as written, a missing cell left empty.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    keep: Vec<String>,
    /// Also write each class's probability, one column `p_<class>` per
    /// class after the prediction (classifiers only).
    #[arg(long)]
    proba: bool,
    #[command(flatten)]
    read: ReadArgs,
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
    #[command(flatten)]
    read: ReadArgs,
}

/// CSV rows: the `--keep` columns as read, `prediction` (a class label or
/// a number), then with `--proba` one probability column `p_<class>` per
/// class. Fields are quoted where they need it.
pub fn run_predict(args: PredictArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.out {
        crate::check_out_path(path)?;
    }
    let saved = Ensemble::load(&args.model)?;
    let prep = saved.preprocessing();
    if args.proba && prep.classes.is_none() {
        anyhow::bail!(
            "--proba needs a classifier; {} predicts a number (its prediction column is all there is)",
            args.model.display()
        );
    }
    let encoding = prep.encoding();
    // An IDX images file gives one row per image; a CSV, its rows and any
    // --keep columns.
    let images = gradus::data::is_idx_images(&args.data) || gradus::data::is_image_folder(&args.data);
    if images && !args.keep.is_empty() {
        anyhow::bail!("--keep names CSV columns; {} holds images, which have none", args.data);
    }
    if args.read.image_size.is_some() && !gradus::data::is_image_folder(&args.data) {
        anyhow::bail!("--image-size applies to a folder of images; {} is not one", args.data);
    }
    // A folder's rows are its image files, named in a first column `path`.
    let mut paths: Vec<String> = Vec::new();
    let (outputs, rows, table) = if gradus::data::is_idx_images(&args.data) {
        let (x, shape) = gradus::data::load_idx_images(std::path::Path::new(&args.data))?;
        check_image_input(&saved, &args.model, shape, &args.data)?;
        let rows = x.rows();
        (saved.outputs(x)?, rows, None)
    } else if gradus::data::is_image_folder(&args.data) {
        let (x, shape, files) = gradus::data::load_image_files(std::path::Path::new(&args.data), args.read.image_size)?;
        check_image_input(&saved, &args.model, shape, &args.data)?;
        paths = files.iter().map(|f| f.display().to_string()).collect();
        let rows = x.rows();
        (saved.outputs(x)?, rows, None)
    } else {
        let mut options =
            ReadOptions { encoding: args.read.encoding, delimiter: args.read.delimiter, ..encoding.read_options() };
        let mut columns = encoding.input_columns();
        for keep in &args.keep {
            options.as_text.push(keep.clone());
            if !columns.contains(keep) {
                columns.push(keep.clone());
            }
        }
        let mut table = load_table(&args.data, &columns, &options).map_err(|e| match e {
            DataError::MissingFeature { path, name }
                if args.keep.contains(&name) && !encoding.input_columns().contains(&name) =>
            {
                anyhow::anyhow!("--keep names '{name}', which is not a column of {path}")
            }
            e => e.into(),
        })?;
        let x = encoding.transform(&table)?;
        let text = encoding.transform_text(&table, None)?;
        // From here the table is needed only for the kept columns.
        let rows = table.n_rows();
        table.columns.retain(|c| args.keep.contains(&c.name));
        table.lines = Vec::new();
        (saved.outputs_with(x, text.as_ref().map(|t| t.view()))?, rows, Some(table))
    };
    let kept: Vec<(&[u32], &[String])> = args
        .keep
        .iter()
        .map(|name| match table.as_ref().and_then(|t| t.column(name)).map(|c| &c.values) {
            Some(Values::Text { codes, levels }) => (codes.as_slice(), levels.as_slice()),
            _ => unreachable!("kept columns are read as text"),
        })
        .collect();
    let k = saved.n_outputs();
    let (labels, probs) = match &prep.classes {
        Some(_) => (Some(predicted_classes(&outputs, k)), args.proba.then(|| probabilities(&outputs, k))),
        None => (None, None),
    };
    let write = |sink: &mut dyn Write| -> anyhow::Result<()> {
        let mut out = csv::Writer::from_writer(std::io::BufWriter::new(sink));
        let mut header: Vec<String> = args.keep.clone();
        if !paths.is_empty() {
            header.push("path".into());
        }
        header.push("prediction".into());
        if let (Some(_), Some(classes)) = (&probs, &prep.classes) {
            header.extend(classes.iter().map(|c| format!("p_{c}")));
        }
        out.write_record(&header)?;
        let width = prep.classes.as_ref().map_or(0, Vec::len);
        let mut record: Vec<String> = Vec::with_capacity(header.len());
        for row in 0..rows {
            record.clear();
            record.extend(kept.iter().map(|(codes, levels)| match codes[row] {
                MISSING => String::new(),
                c => levels[c as usize].clone(),
            }));
            if let Some(path) = paths.get(row) {
                record.push(path.clone());
            }
            match (&labels, &prep.classes) {
                (Some(labels), Some(classes)) => record.push(classes[labels[row] as usize].clone()),
                _ => record.push(csv_float(outputs[row])),
            }
            if let Some(p) = &probs {
                record.extend(p[row * width..(row + 1) * width].iter().map(|&p| csv_float(p)));
            }
            out.write_record(&record)?;
        }
        out.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))?.flush()?;
        Ok(())
    };
    match &args.out {
        // Written beside the file and renamed over it once complete (in
        // place for a device or FIFO): an error midway leaves any earlier
        // predictions as they were.
        Some(path) => {
            let mut failure = None;
            let written = gradus::data::output::write_file(path, |sink| {
                write(sink).map_err(|e| {
                    let shown = std::io::Error::other(format!("{e:#}"));
                    failure = Some(e);
                    shown
                })
            });
            if let Err(e) = written {
                let e = failure.unwrap_or_else(|| e.into());
                return Err(e.context(format!("cannot write '{}'", path.display())));
            }
        }
        None => write(&mut std::io::stdout().lock())?,
    }
    Ok(())
}

/// Checks that a model reads images of `shape` as IDX files hold them: its
/// inputs are the pixel columns `px0`, `px1`, … and, for a CNN, its input
/// shape is `shape`.
fn check_image_input(
    saved: &Ensemble,
    model: &std::path::Path,
    shape: gradus::data::ImageShape,
    data: &str,
) -> anyhow::Result<()> {
    let [c, h, w] = shape;
    let pixels: Vec<String> = (0..c * h * w).map(|i| format!("px{i}")).collect();
    let inputs = saved.preprocessing().encoding().input_columns();
    if inputs != pixels {
        anyhow::bail!(
            "{} reads {} columns ({}, ...); {data} holds images of {c}x{h}x{w} pixels (px0 ... px{})",
            model.display(),
            inputs.len(),
            inputs.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
            c * h * w - 1
        );
    }
    for member in saved.members() {
        if let gradus::train::Architecture::Cnn(spec) = &member.spec.architecture
            && spec.input != shape
        {
            let [mc, mh, mw] = spec.input;
            anyhow::bail!("{} takes images of {mc}x{mh}x{mw}; {data} holds images of {c}x{h}x{w}", model.display());
        }
    }
    Ok(())
}

/// The shortest text that reads back as the same f32, in exponent form for
/// tiny values so that probabilities stay short.
fn csv_float(v: f32) -> String {
    if v != 0.0 && v.abs() < 1e-4 { format!("{v:e}") } else { format!("{v}") }
}

/// How to read a data file: the flags `predict`, `evaluate`, `explain`
/// and `compress` share.
#[derive(Args, Clone, Copy)]
pub struct ReadArgs {
    /// The file's character encoding: utf-8, latin-1 (iso-8859-1) or windows-1252 (cp1252).
    #[arg(long, default_value = "utf-8", value_parser = crate::parse_encoding, value_name = "NAME")]
    pub encoding: TextEncoding,
    /// The field delimiter [default: sniffed from the header: comma, semicolon, tab or pipe].
    #[arg(long, value_parser = crate::parse_delimiter, value_name = "CHAR")]
    pub delimiter: Option<u8>,
    /// A folder of images: resize every image to this height and width (HxW, or one side).
    #[arg(long, value_parser = crate::parse_image_size, value_name = "HxW")]
    pub image_size: Option<[usize; 2]>,
}

/// Where labelled rows for a saved model come from and how to read them.
pub struct LabelledSource<'a> {
    pub model: &'a std::path::Path,
    pub data: &'a str,
    pub read: ReadArgs,
}

/// Labelled rows encoded as `saved` reads them — a CSV or built-in table, an
/// IDX file or a folder of images — and, for images, their shape; an error
/// naming what does not match the model.
pub fn load_labelled(
    saved: &Ensemble,
    source: &LabelledSource,
) -> anyhow::Result<(gradus::data::Dataset, Option<gradus::data::ImageShape>)> {
    let prep = saved.preprocessing();
    let data = source.data;
    if source.read.image_size.is_some() && !gradus::data::is_image_folder(data) {
        anyhow::bail!("--image-size applies to a folder of images; {data} is not one");
    }
    if gradus::data::is_image_folder(data) {
        let (rows, shape) = gradus::data::load_image_folder(std::path::Path::new(data), source.read.image_size)?;
        check_image_input(saved, source.model, shape, data)?;
        return Ok((rows, Some(shape)));
    }
    let mut shape = None;
    if gradus::data::is_idx_images(data) {
        let found = gradus::data::idx_image_shape(std::path::Path::new(data))?;
        check_image_input(saved, source.model, found, data)?;
        shape = Some(found);
    }
    let format =
        ReadOptions { encoding: source.read.encoding, delimiter: source.read.delimiter, ..ReadOptions::default() };
    let rows = load_encoded(data, prep.encoding(), &prep.target_name, saved.loss().target_kind(), &format)?;
    Ok((rows, shape))
}

pub fn run_evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    let saved = Ensemble::load(&args.model)?;
    let prep = saved.preprocessing();
    let source = LabelledSource { model: &args.model, data: &args.data, read: args.read };
    let (data, _) = load_labelled(&saved, &source)?;
    let rows = data.n_samples();
    let metrics = saved.evaluate(data)?;
    if args.json {
        crate::outln!(
            "{}",
            serde_json::json!({
                "model": args.model.display().to_string(),
                "data": args.data,
                "rows": rows,
                "metrics": metrics,
                "per_class": match (&metrics, &prep.classes) {
                    (Metrics::Classification { confusion, .. }, Some(classes)) => Some(
                        classes.iter().zip(class_scores(confusion)).map(|(c, s)| serde_json::json!({
                            "class": c, "precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support,
                        })).collect::<Vec<_>>()
                    ),
                    _ => None,
                },
            })
        );
        return Ok(());
    }
    crate::outln!("model    {} ({})", args.model.display(), saved.describe());
    crate::outln!("data     {}: {rows} rows", args.data);
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
        crate::outln!("{:>width$} {:>9} {:>9} {:>9} {:>9}", "class", "precision", "recall", "f1", "support");
        for (c, s) in classes.iter().zip(class_scores(confusion)) {
            crate::outln!("{c:>width$} {:>9.4} {:>9.4} {:>9.4} {:>9}", s.precision, s.recall, s.f1, s.support);
        }
    }
    Ok(())
}
