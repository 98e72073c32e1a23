//! `gradus explain`: which inputs drive a saved model — permutation
//! importance of each column with confidence intervals, partial dependence
//! and ICE curves of the top columns, saliency maps of image models, the
//! n-grams that move a text model's predictions — as text, JSON, or one
//! HTML page.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use gradus::data::{Dataset, ImageShape, Matrix, seeded_rng};
use gradus::report::explain::{ImportanceBar, Section, dependence_chart, page, permutation_chart, saliency_svg, table};
use gradus::report::svg::number;
use gradus::train::explain::{
    ColumnGroup, NgramEffect, PartialDependence, PermutationImportance, column_groups, ngram_effects,
    partial_dependence, permutation_importance, predicted_response, saliency, sample_rows,
};
use gradus::train::{Architecture, Ensemble, Metric, predicted_classes};
use serde_json::json;

use crate::predict::{LabelledSource, ReadArgs, load_labelled};

#[derive(Args)]
pub struct ExplainArgs {
    /// A model file saved by `gradus train --out` or `gradus tune --out`.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Held-out labelled rows: the model's input columns and its target (a CSV, builtin:NAME, an IDX file or a folder of images).
    #[arg(long, value_name = "PATH|builtin:NAME")]
    data: String,
    /// The score whose drop measures importance [default: accuracy for a classifier, r2 for a real target, as scikit-learn's score].
    #[arg(long, value_name = "NAME")]
    metric: Option<String>,
    /// How many times each column is shuffled (at least 2: the interval needs them).
    #[arg(long, default_value_t = 5, value_name = "N")]
    repeats: usize,
    /// Explain on at most this many rows, drawn at random (seeded) when the data has more.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    rows: usize,
    /// Partial dependence for this many of the most important columns.
    #[arg(long, default_value_t = 3, value_name = "N")]
    top: usize,
    /// Values of a column at which partial dependence is computed (quantiles, or levels).
    #[arg(long, default_value_t = 20, value_name = "N")]
    grid: usize,
    /// Rows drawn as ICE curves in each partial dependence plot.
    #[arg(long, default_value_t = 50, value_name = "N")]
    ice: usize,
    /// The class whose probability partial dependence shows [default: the second of two; of more, the one that moves most].
    #[arg(long, value_name = "LABEL")]
    class: Option<String>,
    /// Image models: saliency maps for this many images of each class.
    #[arg(long, default_value_t = 2, value_name = "N")]
    images_per_class: usize,
    /// Text models: the n-grams that move the prediction of this many rows.
    #[arg(long, default_value_t = 3, value_name = "N")]
    text_rows: usize,
    /// Seeds the row sample and the shuffles.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object with every number instead of text.
    #[arg(long)]
    json: bool,
    /// Also write one self-contained HTML page with the tables and pictures.
    #[arg(long, value_name = "FILE.html")]
    out: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
}

/// The most pixels of an image whose pixels are shuffled one by one; above,
/// saliency maps say what permutation importance would say a pixel at a time.
const MAX_PERMUTED_PIXELS: usize = 256;

/// One image's saliency map.
struct Map {
    class: String,
    predicted: String,
    row: usize,
    image: Vec<f32>,
    map: Vec<f32>,
    inside_outside: [f64; 2],
}

pub fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Some(path) = &args.out {
        crate::check_out_path(path)?;
    }
    for (name, value, least) in [("--repeats", args.repeats, 2), ("--rows", args.rows, 1), ("--grid", args.grid, 2)] {
        if value < least {
            anyhow::bail!("{name} must be at least {least}, got {value}");
        }
    }
    let saved = Ensemble::load(&args.model)?;
    let prep = saved.preprocessing();
    let classes = prep.classes.clone();
    let class = match (&args.class, &classes) {
        (None, _) => None,
        (Some(c), Some(classes)) => Some(classes.iter().position(|k| k == c).ok_or_else(|| {
            anyhow::anyhow!("--class '{c}' is not one of the model's classes ({})", classes.join(", "))
        })?),
        (Some(_), None) => anyhow::bail!("--class needs a classifier; {} predicts a number", args.model.display()),
    };
    let metric = match &args.metric {
        Some(name) => Metric::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            anyhow::anyhow!("--metric '{name}' is not a metric; use one of {}", names.join(", "))
        })?,
        None if classes.is_some() => Metric::Accuracy,
        None => Metric::R2,
    };
    let source = LabelledSource { model: &args.model, data: &args.data, read: args.read };
    let (all, shape) = load_labelled(&saved, &source)?;
    if let Some(why) = metric.unfit_for(all.task()) {
        anyhow::bail!("{why}");
    }
    let total = all.n_samples();
    if total == 0 {
        anyhow::bail!("{}: no labelled rows to explain the model on", args.data);
    }
    let mut rng = seeded_rng(args.seed);
    let data = all.subset(&sample_rows(total, args.rows, &mut rng));
    drop(all);
    progress(&args, &format!("{} rows of {total} from {}", data.n_samples(), args.data));
    let shape = image_shape(&saved, &data, shape, &args.data)?;
    let groups = column_groups(&data.encoding, data.expansion.is_some());

    // Permutation importance: every column, unless they are an image's many pixels.
    let permuted = shape.is_none_or(|[c, h, w]| c * h * w <= MAX_PERMUTED_PIXELS);
    let importance = if permuted {
        progress(&args, &format!("permutation importance: {} columns x {} repeats", groups.len(), args.repeats));
        Some(permutation_importance(&saved, &data, metric, args.repeats, args.seed)?)
    } else {
        None
    };

    // Partial dependence of the top dense columns.
    let mut dependence = Vec::new();
    if let Some(pi) = &importance {
        let top: Vec<&ColumnGroup> = pi
            .columns
            .iter()
            .filter_map(|c| groups.iter().find(|g| g.name == c.column && !g.dense.is_empty()))
            .take(args.top)
            .collect();
        for group in top {
            progress(&args, &format!("partial dependence on {}", group.name));
            let raw = raw_labels(&data, group);
            dependence.push(partial_dependence(&saved, &data, group, class, args.grid, args.ice, raw)?);
        }
    }

    // Saliency maps of images.
    let maps = match shape {
        Some(shape) if classes.is_some() => {
            progress(&args, &format!("saliency maps: {} images of each class", args.images_per_class));
            saliency_maps(&saved, &data, shape, args.images_per_class)?
        }
        _ => Vec::new(),
    };

    // The n-grams that move a text model's predictions.
    let mut texts: Vec<(usize, String, Vec<NgramEffect>)> = Vec::new();
    if data.sparse.is_some() {
        progress(&args, &format!("n-gram effects on {} rows", args.text_rows.min(data.n_samples())));
        for row in 0..args.text_rows.min(data.n_samples()) {
            let response = predicted_response(&saved, &data, row)?;
            let shown = match (response, &classes) {
                (gradus::train::explain::Response::Probability { class }, Some(classes)) => {
                    format!("p({})", classes[class])
                }
                _ => "prediction".into(),
            };
            texts.push((row, shown, ngram_effects(&saved, &data, row, response, 10)?));
        }
    }

    let response_name = |pd: &PartialDependence| match (pd.response, &classes) {
        (gradus::train::explain::Response::Probability { class }, Some(classes)) => format!("p({})", classes[class]),
        _ => format!("predicted {}", prep.target_name),
    };
    if args.json {
        crate::outln!(
            "{}",
            json!({
                "model": args.model.display().to_string(),
                "data": args.data,
                "rows": data.n_samples(),
                "rows_in_data": total,
                "seed": args.seed,
                "permutation_importance": importance,
                "partial_dependence": dependence.iter().map(|pd| {
                    let mut v = serde_json::to_value(pd).expect("serialises");
                    v["response_name"] = response_name(pd).into();
                    if pd.values.iter().any(|x| !x.is_finite()) {
                        v["values"] = serde_json::Value::Null;
                    }
                    v
                }).collect::<Vec<_>>(),
                "saliency": maps.iter().map(|m| json!({
                    "row": m.row, "class": m.class, "predicted": m.predicted,
                    "mean_abs_inside": m.inside_outside[0], "mean_abs_outside": m.inside_outside[1],
                    "map": m.map,
                })).collect::<Vec<_>>(),
                "ngrams": texts.iter().map(|(row, response, effects)| json!({
                    "row": row, "response": response, "effects": effects,
                })).collect::<Vec<_>>(),
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    } else {
        print_text(&args, &saved, &data, total, importance.as_ref(), &dependence, &maps, &texts, &response_name)?;
    }
    if let Some(path) = &args.out {
        let html =
            html_page(&args, &saved, &data, importance.as_ref(), &dependence, &maps, &texts, shape, &response_name);
        gradus::data::output::write_file(path, |sink| sink.write_all(html.as_bytes()))
            .map_err(|e| anyhow::anyhow!("cannot write '{}': {e}", path.display()))?;
        if !args.json {
            crate::outln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// A line on stderr saying what is being computed (not with `--json`).
fn progress(args: &ExplainArgs, what: &str) {
    if !args.json {
        eprintln!("explain: {what}");
    }
}

/// The image shape of the rows, when they are images whose every pixel is
/// a column the model reads: a CNN's input shape, else what the source says
/// (`loaded`: an IDX file's or a folder's; a built-in image dataset's, as
/// [`gradus::data::image_shape`] knows it). A CSV of pixel columns says
/// nothing of its shape, and rows whose pixels a tune dropped in part are
/// not whole images: no shape, no saliency.
fn image_shape(
    saved: &Ensemble,
    data: &Dataset,
    loaded: Option<ImageShape>,
    source: &str,
) -> anyhow::Result<Option<ImageShape>> {
    let cnn = saved.members().iter().find_map(|m| match &m.spec.architecture {
        Architecture::Cnn(spec) => Some(spec.input),
        _ => None,
    });
    let shape = match cnn.or(loaded) {
        Some(shape) => Some(shape),
        None => gradus::data::image_shape(source)?,
    };
    Ok(shape.filter(|s| s.iter().product::<usize>() == data.n_features() && data.sparse.is_none()))
}

/// How a grid value of `group` reads, from the donor row's inputs: the
/// number of a numeric column, the level a one-hot block holds, else the
/// inputs themselves.
fn raw_labels<'a>(data: &'a Dataset, group: &'a ColumnGroup) -> impl Fn(usize) -> String + 'a {
    move |row| {
        let block = &data.x.row(row)[group.dense.clone()];
        if group.numeric {
            return number(f64::from(block[0]));
        }
        let on: Vec<&str> =
            block.iter().zip(&group.inputs).filter(|(v, _)| **v != 0.0).map(|(_, n)| n.as_str()).collect();
        let prefix = format!("{}=", group.name);
        match on.as_slice() {
            [one] if one.starts_with(&prefix) => one[prefix.len()..].to_string(),
            [] => "(none)".into(),
            _ => block.iter().map(|v| number(f64::from(*v))).collect::<Vec<_>>().join(" "),
        }
    }
}

/// Saliency maps of the first `per_class` images of each class (by true
/// label), for the class each is predicted as; the step of the central
/// differences is a thousandth of the pixels' range.
fn saliency_maps(saved: &Ensemble, data: &Dataset, shape: ImageShape, per_class: usize) -> anyhow::Result<Vec<Map>> {
    let Some(labels) = data.y.labels() else { return Ok(Vec::new()) };
    let classes = saved.preprocessing().classes.clone().unwrap_or_default();
    let mut rows = Vec::new();
    for c in 0..classes.len() as u32 {
        rows.extend(labels.iter().enumerate().filter(|(_, l)| **l == c).map(|(i, _)| i).take(per_class));
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let x: Matrix = data.dense_inputs().select_rows(&rows);
    let out = saved.outputs(x.clone())?;
    let predicted = predicted_classes(&out, saved.n_outputs());
    let (lo, hi) = x.as_slice().iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let h = if hi > lo { (hi - lo) * 1e-3 } else { 1e-3 };
    let maps = saliency(saved, &x, &predicted.iter().map(|&p| p as usize).collect::<Vec<_>>(), h)?;
    let [_, height, width] = shape;
    Ok(rows
        .iter()
        .zip(maps)
        .zip(&predicted)
        .enumerate()
        .map(|(i, ((&row, map), &p))| {
            let image = x.row(i).to_vec();
            let inside_outside = inside_outside(&image, &map, height * width);
            Map {
                class: classes[labels[row] as usize].clone(),
                predicted: classes[p as usize].clone(),
                row,
                image,
                map,
                inside_outside,
            }
        })
        .collect())
}

/// The mean |saliency| over the first channel's pixels inside the object
/// (above the midpoint of the image's range) and outside it.
fn inside_outside(image: &[f32], map: &[f32], pixels: usize) -> [f64; 2] {
    let (lo, hi) = image[..pixels].iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let mid = (lo + hi) / 2.0;
    let (mut sums, mut counts) = ([0.0f64; 2], [0usize; 2]);
    for (v, s) in image[..pixels].iter().zip(map) {
        let k = usize::from(*v <= mid);
        sums[k] += f64::from(s.abs());
        counts[k] += 1;
    }
    [sums[0] / counts[0].max(1) as f64, sums[1] / counts[1].max(1) as f64]
}

#[allow(clippy::too_many_arguments)]
fn print_text(
    args: &ExplainArgs,
    saved: &Ensemble,
    data: &Dataset,
    total: usize,
    importance: Option<&PermutationImportance>,
    dependence: &[PartialDependence],
    maps: &[Map],
    texts: &[(usize, String, Vec<NgramEffect>)],
    response_name: &dyn Fn(&PartialDependence) -> String,
) -> anyhow::Result<()> {
    crate::outln!("model    {} ({})", args.model.display(), saved.describe());
    crate::outln!("data     {}: {} of {total} rows", args.data, data.n_samples());
    match importance {
        Some(pi) => {
            crate::outln!(
                "permutation importance: drop in {} (on the rows as they are: {}), {} shuffles each, 95% interval",
                pi.metric.name(),
                number(pi.baseline),
                pi.repeats
            );
            let width = pi.columns.iter().map(|c| c.column.chars().count()).max().unwrap_or(6).max(6);
            crate::outln!("  {:<width$} {:>10} {:>10} {:>22}", "column", "mean", "std", "interval");
            for c in &pi.columns {
                let mark = match c.ci {
                    [low, _] if low > 0.0 => "",
                    [_, high] if high < 0.0 => "  (below 0: the rows score better with it shuffled)",
                    _ => "  (not distinguishable from 0)",
                };
                crate::outln!(
                    "  {:<width$} {:>10.5} {:>10.5} {:>22}{mark}",
                    c.column,
                    c.mean,
                    c.std,
                    format!("[{:.5}, {:.5}]", c.ci[0], c.ci[1])
                );
            }
        }
        None => crate::outln!("permutation importance: not computed for images (saliency maps show each pixel's part)"),
    }
    for pd in dependence {
        let points: Vec<String> =
            pd.labels.iter().zip(&pd.average).map(|(l, a)| format!("{l}: {}", number(*a))).collect();
        crate::outln!("partial dependence of {} on {}: {}", response_name(pd), pd.column, points.join(", "));
    }
    for m in maps {
        crate::outln!(
            "saliency of row {} (class {}, predicted {}): mean |gradient x input| inside the object {}, outside {}",
            m.row,
            m.class,
            m.predicted,
            number(m.inside_outside[0]),
            number(m.inside_outside[1])
        );
    }
    for (row, response, effects) in texts {
        let shown: Vec<String> = effects.iter().map(|e| format!("'{}' {:+.4}", e.ngram, e.effect)).collect();
        crate::outln!("row {row}: the n-grams that move {response} most: {}", shown.join(", "));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn html_page(
    args: &ExplainArgs,
    saved: &Ensemble,
    data: &Dataset,
    importance: Option<&PermutationImportance>,
    dependence: &[PartialDependence],
    maps: &[Map],
    texts: &[(usize, String, Vec<NgramEffect>)],
    shape: Option<ImageShape>,
    response_name: &dyn Fn(&PartialDependence) -> String,
) -> String {
    let mut sections = Vec::new();
    if let Some(pi) = importance {
        let bars: Vec<ImportanceBar> =
            pi.columns.iter().map(|c| ImportanceBar { column: c.column.clone(), mean: c.mean, ci: c.ci }).collect();
        let note = format!(
            "{} rows; {} = {} on them as they are; {} shuffles of each column",
            data.n_samples(),
            pi.metric.name(),
            number(pi.baseline),
            pi.repeats
        );
        let mut html = permutation_chart("Permutation importance", pi.metric.name(), &bars, &note).to_svg();
        let rows: Vec<Vec<String>> = pi
            .columns
            .iter()
            .map(|c| vec![c.column.clone(), number(c.mean), number(c.std), number(c.ci[0]), number(c.ci[1])])
            .collect();
        html.push_str(&table(&["column", "mean drop", "std", "95% low", "95% high"], &rows, &[0]));
        sections.push(Section { heading: "Permutation importance".into(), html });
    }
    for pd in dependence {
        let html =
            dependence_chart(&pd.column, &response_name(pd), &pd.values, &pd.labels, &pd.average, &pd.ice).to_svg();
        sections.push(Section { heading: format!("Partial dependence on {}", pd.column), html });
    }
    if let (false, Some([_, h, w])) = (maps.is_empty(), shape) {
        let mut html = String::from(
            "<p class=\"note\">Each image beside its gradient × input for the predicted class (red: raises it, blue: lowers it).</p><div class=\"maps\">",
        );
        for m in maps {
            let title = format!("row {}: {} (predicted {})", m.row, m.class, m.predicted);
            html.push_str(&saliency_svg(&title, h, w, &m.image[..h * w], &m.map[..h * w]));
        }
        html.push_str("</div>");
        sections.push(Section { heading: "Saliency".into(), html });
    }
    for (row, response, effects) in texts {
        let rows: Vec<Vec<String>> =
            effects.iter().map(|e| vec![e.ngram.clone(), e.column.clone(), format!("{:+.4}", e.effect)]).collect();
        let html = table(&["n-gram", "column", &format!("{response} with it minus without")], &rows, &[0, 1]);
        sections.push(Section { heading: format!("Row {row}: the n-grams that move {response}"), html });
    }
    page(
        &format!("Explanation of {}", args.model.display()),
        &format!("{} on {} ({} rows)", saved.describe(), args.data, data.n_samples()),
        &sections,
    )
}
