//! Explanations of a saved model's predictions, computed from its outputs
//! only (any architecture, ensembles included): permutation importance of
//! each raw input column, partial dependence and ICE curves, saliency
//! (gradient × input) of image models, and the n-grams that move a text
//! model's prediction.
//!
//! Everything works on rows encoded as the model reads them
//! ([`Dataset`] from [`gradus_data::load_encoded`]). A raw column's encoded
//! inputs are a function of that column's cell alone, so changing a raw
//! column of a row — shuffling it across rows, or setting it to another
//! row's value — is changing its block of encoded inputs; nothing is
//! re-encoded, and categorical, date and text columns are handled as
//! numbers are.

use std::ops::Range;

use gradus_data::{Dataset, Encoding, Matrix, Rng, SparseRows, seeded_rng};
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::{Ensemble, Metric, TrainError, probabilities};

/// One raw input column and where its encoded inputs are.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnGroup {
    /// The raw column's name.
    pub name: String,
    /// Its columns of [`Dataset::x`] (as stored: without the bins an
    /// expansion computes).
    pub dense: Range<usize>,
    /// Its block of sparse (text) inputs, for a text column.
    pub sparse: Option<Range<u32>>,
    /// The names of its inputs in [`Self::dense`] (`color=red`, `age`).
    pub inputs: Vec<String>,
    /// Whether its first input is the column's number (a numeric column),
    /// which partial dependence plots on a number axis.
    pub numeric: bool,
}

/// The raw input columns of `encoding`, in input order, with their blocks
/// of encoded inputs; `stored`: the rows are stored without their bins
/// (the dataset has an [`gradus_data::Expansion`]).
pub fn column_groups(encoding: &Encoding, stored: bool) -> Vec<ColumnGroup> {
    let mut groups = Vec::new();
    let mut offset = 0;
    for column in &encoding.columns {
        let width = if stored { column.stored_width() } else { column.width() };
        let mut inputs = column.output_names();
        inputs.truncate(width);
        groups.push(ColumnGroup {
            name: column.column().to_string(),
            dense: offset..offset + width,
            sparse: None,
            inputs,
            numeric: matches!(column, gradus_data::ColumnEncoder::Number { .. }),
        });
        offset += width;
    }
    let mut sparse = 0u32;
    for text in &encoding.text {
        let width = text.width() as u32;
        groups.push(ColumnGroup {
            name: text.column.clone(),
            dense: offset..offset,
            sparse: Some(sparse..sparse + width),
            inputs: Vec::new(),
            numeric: false,
        });
        sparse += width;
    }
    groups
}

/// The score of the model on `data` (given up) by `metric`; an error when
/// the rows do not give one (a ROC AUC of rows of one class).
pub fn score(model: &Ensemble, data: Dataset, metric: Metric) -> Result<f64, TrainError> {
    let name = data.name.clone();
    let metrics = model.evaluate(data)?;
    metric.of(&metrics).ok_or_else(|| {
        TrainError::Mismatch(format!("{name}: the model's {} cannot be computed on these rows", metric.name()))
    })
}

/// How much the score drops when one column's values are shuffled across
/// the rows: `repeats` shuffles, each the score before minus the score
/// after (after minus before for a loss), so a larger number means the
/// model leans on the column more and 0 means it does not use it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnImportance {
    pub column: String,
    /// The mean drop over the repeats.
    pub mean: f64,
    /// The drops' sample standard deviation (n − 1).
    pub std: f64,
    /// The 95% confidence interval of the mean drop: mean ∓ t(0.975,
    /// repeats − 1) · std / √repeats.
    pub ci: [f64; 2],
    /// Each repeat's drop.
    pub drops: Vec<f64>,
}

/// [`permutation_importance`]'s answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PermutationImportance {
    pub metric: Metric,
    /// The score on the rows as they are.
    pub baseline: f64,
    pub repeats: usize,
    /// One per raw input column, most important first.
    pub columns: Vec<ColumnImportance>,
}

/// Permutation importance (Breiman 2001; scikit-learn's
/// `permutation_importance`): for each raw input column, `repeats` times,
/// the rows' values of that column are shuffled (the other columns and the
/// target stay) and the model is scored again by `metric`. Seeded: the same
/// seed gives the same numbers.
pub fn permutation_importance(
    model: &Ensemble,
    data: &Dataset,
    metric: Metric,
    repeats: usize,
    seed: u64,
) -> Result<PermutationImportance, TrainError> {
    if repeats < 2 {
        return Err(TrainError::Mismatch(format!(
            "permutation importance needs at least 2 repeats for a confidence interval, got {repeats}"
        )));
    }
    let baseline = score(model, data.clone(), metric)?;
    let sign = if metric.higher_is_better() { 1.0 } else { -1.0 };
    let groups = column_groups(&data.encoding, data.expansion.is_some());
    let mut rng = seeded_rng(seed);
    let n = data.n_samples();
    let mut columns = Vec::with_capacity(groups.len());
    for group in &groups {
        let mut drops = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            let shuffled = with_column_from(data, group, |i| order[i]);
            drops.push(sign * (baseline - score(model, shuffled, metric)?));
        }
        let (mean, std) = mean_and_std(&drops);
        let half = t_975(repeats - 1) * std / (repeats as f64).sqrt();
        columns.push(ColumnImportance { column: group.name.clone(), mean, std, ci: [mean - half, mean + half], drops });
    }
    columns.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    Ok(PermutationImportance { metric, baseline, repeats, columns })
}

/// `data` with row i's cells of `group` taken from row `source(i)` (the
/// other columns as they are).
pub fn with_column_from(data: &Dataset, group: &ColumnGroup, source: impl Fn(usize) -> usize) -> Dataset {
    let mut out = data.clone();
    let n = data.n_samples();
    if !group.dense.is_empty() {
        for i in 0..n {
            let from = &data.x.row(source(i))[group.dense.clone()];
            out.x.row_mut(i)[group.dense.clone()].copy_from_slice(from);
        }
    }
    if let (Some(range), Some(sparse)) = (&group.sparse, &data.sparse) {
        let mut rows = SparseRows::new(sparse.cols());
        let mut entries: Vec<(u32, f32)> = Vec::new();
        for i in 0..n {
            entries.clear();
            let (own_idx, own_val) = sparse.row(i);
            entries.extend(own_idx.iter().zip(own_val).filter(|(c, _)| !range.contains(c)).map(|(&c, &v)| (c, v)));
            let (idx, val) = sparse.row(source(i));
            entries.extend(idx.iter().zip(val).filter(|(c, _)| range.contains(c)).map(|(&c, &v)| (c, v)));
            rows.push_row(&mut entries);
        }
        out.sparse = Some(rows);
    }
    out
}

/// The mean and the sample standard deviation (0 for one value).
fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Student's t distribution's 97.5% quantile for `df` degrees of freedom
/// (tabulated to 30; the normal's 1.96 beyond, which is within 2% there).
fn t_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.96,
    }
}

/// What the curves of [`partial_dependence`] show of the model's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Response {
    /// The prediction of a real target.
    Prediction,
    /// The probability of class `class` (its index in the model's classes).
    Probability { class: usize },
}

/// The model's responses for each row of `data` (given up), row after
/// row, and how many a row has: a real target's prediction (one), or each
/// class's probability (two for one logit).
pub fn responses(model: &Ensemble, data: Dataset) -> Result<(Vec<f64>, usize), TrainError> {
    let out = model.outputs_of(data)?;
    let k = model.n_outputs();
    Ok(match model.preprocessing().classes {
        None => (out.into_iter().map(f64::from).collect(), k),
        Some(_) => (probabilities(&out, k).into_iter().map(f64::from).collect(), if k == 1 { 2 } else { k }),
    })
}

/// One response of each row of `data` (see [`responses`]).
pub fn response_of(model: &Ensemble, data: Dataset, response: Response) -> Result<Vec<f64>, TrainError> {
    let (r, width) = responses(model, data)?;
    let column = match response {
        Response::Prediction => 0,
        Response::Probability { class } => class,
    };
    Ok(r.chunks_exact(width).map(|row| row[column]).collect())
}

/// Partial dependence (Friedman 2001) and individual conditional
/// expectation (ICE, Goldstein et al. 2015) of one column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartialDependence {
    pub column: String,
    pub response: Response,
    /// The grid: the column's values at which every row was predicted, as
    /// numbers for a numeric column (NaN for others).
    pub values: Vec<f64>,
    /// The grid's values as text: the number, or a category's level.
    pub labels: Vec<String>,
    /// The mean response over all rows at each grid value.
    pub average: Vec<f64>,
    /// The response of each of a sample of rows at each grid value.
    pub ice: Vec<Vec<f64>>,
}

/// The partial dependence of the model on `group`: every row of `data`
/// predicted with the column set to each of up to `grid` values (quantiles
/// of a numeric column; the first values seen, for others — each value is
/// the block of encoded inputs of a row that holds it, which `label`
/// names), the mean of the responses, and `ice_rows` rows' own curves.
/// The response is `class`'s probability for a classifier — by default the
/// second class of two, and of more the class whose mean moves most — or a
/// real target's prediction.
pub fn partial_dependence(
    model: &Ensemble,
    data: &Dataset,
    group: &ColumnGroup,
    class: Option<usize>,
    grid: usize,
    ice_rows: usize,
    label: impl Fn(usize) -> String,
) -> Result<PartialDependence, TrainError> {
    let n = data.n_samples();
    if n == 0 || group.dense.is_empty() {
        return Err(TrainError::Mismatch(format!(
            "no partial dependence for column '{}' (no rows or no dense inputs)",
            group.name
        )));
    }
    // The donors: one row per distinct block of the column.
    let key = |i: usize| -> Vec<u32> { data.x.row(i)[group.dense.clone()].iter().map(|v| v.to_bits()).collect() };
    let mut donors: Vec<usize> = Vec::new();
    if group.numeric {
        let first = group.dense.start;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| data.x.row(a)[first].total_cmp(&data.x.row(b)[first]));
        order.dedup_by(|a, b| key(*a) == key(*b));
        let m = order.len();
        let points = grid.min(m).max(1);
        for q in 0..points {
            let at = if points == 1 { 0 } else { q * (m - 1) / (points - 1) };
            if donors.last() != Some(&order[at]) {
                donors.push(order[at]);
            }
        }
    } else {
        let mut seen: Vec<Vec<u32>> = Vec::new();
        for i in 0..n {
            let k = key(i);
            if !seen.contains(&k) {
                seen.push(k);
                donors.push(i);
                if donors.len() == grid {
                    break;
                }
            }
        }
    }
    let ice_rows = ice_rows.min(n);
    // Per donor: every response's mean, and the ICE rows' responses.
    let (mut means, mut ice_all) = (Vec::new(), Vec::new());
    let mut width = 1;
    for &donor in &donors {
        let (r, w) = responses(model, with_column_from(data, group, |_| donor))?;
        width = w;
        let mut mean = vec![0.0; w];
        for row in r.chunks_exact(w) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / n as f64);
        }
        means.push(mean);
        // The ICE rows: evenly spread over the rows.
        ice_all.push((0..ice_rows).map(|j| r[(j * n / ice_rows) * w..][..w].to_vec()).collect::<Vec<_>>());
    }
    let classes = model.preprocessing().classes.as_ref().map_or(0, Vec::len);
    let column = match class {
        _ if classes == 0 => 0,
        Some(c) if c < width => c,
        Some(c) => return Err(TrainError::Mismatch(format!("class index {c} of a model of {classes} classes"))),
        None if classes == 2 => 1,
        None => (0..width)
            .max_by(|&a, &b| {
                let range = |c: usize| {
                    let v = means.iter().map(|m| m[c]);
                    v.clone().fold(f64::NEG_INFINITY, f64::max) - v.fold(f64::INFINITY, f64::min)
                };
                range(a).total_cmp(&range(b))
            })
            .unwrap_or(0),
    };
    let values = donors
        .iter()
        .map(|&d| if group.numeric { f64::from(data.x.row(d)[group.dense.start]) } else { f64::NAN })
        .collect();
    Ok(PartialDependence {
        column: group.name.clone(),
        response: if classes == 0 { Response::Prediction } else { Response::Probability { class: column } },
        values,
        labels: donors.iter().map(|&d| label(d)).collect(),
        average: means.iter().map(|m| m[column]).collect(),
        ice: (0..ice_rows).map(|j| ice_all.iter().map(|donor| donor[j][column]).collect()).collect(),
    })
}

/// Saliency maps: for each row of `x` (raw model inputs, as
/// [`Ensemble::outputs`] reads them) and its class, the gradient of that
/// class's output (a logit; an ensemble's log mean probability) with
/// respect to each input, times the input (Shrikumar et al. 2016,
/// "gradient × input"). The gradient is taken by central differences on
/// the model's own prediction path, `h` per input (so it holds for every
/// architecture and for ensembles, with dropout off and batch norm's
/// running statistics as in prediction): one batch of 2·inputs rows per row.
/// For a real target, the class is ignored: the prediction's gradient.
pub fn saliency(model: &Ensemble, x: &Matrix, classes: &[usize], h: f32) -> Result<Vec<Vec<f32>>, TrainError> {
    let d = x.cols();
    let k = model.n_outputs();
    let mut maps = Vec::with_capacity(x.rows());
    for (i, &class) in classes.iter().enumerate().take(x.rows()) {
        let row = x.row(i);
        let mut batch = Vec::with_capacity(2 * d * d);
        for j in 0..d {
            for sign in [1.0f32, -1.0] {
                let start = batch.len();
                batch.extend_from_slice(row);
                batch[start + j] += sign * h;
            }
        }
        let out = model.outputs(Matrix::from_vec(2 * d, d, batch).expect("2d x d"))?;
        let column = if k == 1 { 0 } else { class };
        // One logit of two classes: class 0's is its negation.
        let sign = if k == 1 && class == 0 && model.preprocessing().classes.is_some() { -1.0 } else { 1.0 };
        maps.push(
            (0..d)
                .map(|j| {
                    let up = out[(2 * j) * k + column];
                    let down = out[(2 * j + 1) * k + column];
                    sign * (up - down) / (2.0 * h) * row[j]
                })
                .collect(),
        );
    }
    Ok(maps)
}

/// An n-gram of a row and how much it moves the row's prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NgramEffect {
    pub ngram: String,
    /// The text column it was read from.
    pub column: String,
    /// The predicted class's probability (a real target's prediction) with
    /// the row as it is, minus that with this n-gram removed: positive
    /// where the n-gram pushes the prediction towards its answer.
    pub effect: f64,
}

/// For row `row` of `data`, the `top` n-grams whose removal changes its
/// response most (occlusion: the row predicted once without each of its
/// n-grams), largest effect first.
pub fn ngram_effects(
    model: &Ensemble,
    data: &Dataset,
    row: usize,
    response: Response,
    top: usize,
) -> Result<Vec<NgramEffect>, TrainError> {
    let Some(sparse) = &data.sparse else {
        return Err(TrainError::Mismatch(format!("{}: the model reads no text column", data.name)));
    };
    let (idx, val) = sparse.row(row);
    let m = idx.len();
    // Row 0 as it is, row 1 + j without its j-th n-gram.
    let mut rows = data.subset(&[row].repeat(m + 1));
    let mut without = SparseRows::new(sparse.cols());
    let mut entries: Vec<(u32, f32)> = Vec::new();
    for j in 0..=m {
        entries.clear();
        entries.extend(idx.iter().zip(val).enumerate().filter(|(e, _)| *e + 1 != j).map(|(_, (&c, &v))| (c, v)));
        without.push_row(&mut entries);
    }
    rows.sparse = Some(without);
    let r = response_of(model, rows, response)?;
    let mut effects: Vec<NgramEffect> = idx
        .iter()
        .enumerate()
        .map(|(j, &feature)| {
            let (column, ngram) = ngram_name(&data.encoding, feature);
            NgramEffect { ngram, column, effect: r[0] - r[j + 1] }
        })
        .collect();
    effects.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    effects.truncate(top);
    Ok(effects)
}

/// The text column and the n-gram (or hash bucket) of sparse input `feature`.
fn ngram_name(encoding: &Encoding, feature: u32) -> (String, String) {
    let mut offset = 0usize;
    for text in &encoding.text {
        let f = feature as usize;
        if f < offset + text.width() {
            let i = f - offset;
            return (text.column.clone(), text.ngram(i).map_or_else(|| format!("bucket {i}"), str::to_string));
        }
        offset += text.width();
    }
    (String::new(), format!("input {feature}"))
}

/// The response a classifier's explanation follows for a row: its
/// predicted class's probability; a real target's prediction.
pub fn predicted_response(model: &Ensemble, data: &Dataset, row: usize) -> Result<Response, TrainError> {
    if model.preprocessing().classes.is_none() {
        return Ok(Response::Prediction);
    }
    let out = model.outputs_of(data.subset(&[row]))?;
    Ok(Response::Probability { class: crate::predicted_classes(&out, model.n_outputs())[0] as usize })
}

/// `n` row indices of `0..rows`, drawn without replacement with `rng`, in
/// increasing order; all rows when `n ≥ rows`.
pub fn sample_rows(rows: usize, n: usize, rng: &mut Rng) -> Vec<usize> {
    if n >= rows {
        return (0..rows).collect();
    }
    let mut all: Vec<usize> = (0..rows).collect();
    all.shuffle(rng);
    all.truncate(n);
    all.sort_unstable();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_file::{ModelSpec, Preprocessing, Transform};
    use crate::{Architecture, LinearModel, Loss, Model, SavedModel};
    use gradus_data::Target;
    use rand::Rng as _;

    /// A linear model `y = Σ w_j x_j` on columns c0, c1, … (no scaler).
    fn linear(weights: &[f32]) -> Ensemble {
        let names: Vec<String> = (0..weights.len()).map(|j| format!("c{j}")).collect();
        let mut model = LinearModel::new(weights.len(), 1, true);
        model.params_mut()[..weights.len()].copy_from_slice(weights);
        let spec = ModelSpec {
            architecture: Architecture::Linear { n_inputs: weights.len(), n_outputs: 1, fit_intercept: true },
            loss: Loss::Mse,
            preprocessing: Preprocessing::new(
                vec![Transform::Encode(gradus_data::Encoding::numbers(&names))],
                "y".into(),
                None,
            )
            .unwrap(),
            compression: Vec::new(),
        };
        Ensemble::from(SavedModel { spec, model: Box::new(model) })
    }

    /// `n` rows of standard normal columns and y = Σ w_j x_j + noise.
    fn rows(weights: &[f32], n: usize, noise: f32, seed: u64) -> Dataset {
        let d = weights.len();
        let mut rng = seeded_rng(seed);
        let mut normal = || -> f32 { rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng) };
        let x: Vec<f32> = (0..n * d).map(|_| normal()).collect();
        let y: Vec<f32> = x
            .chunks_exact(d)
            .map(|r| r.iter().zip(weights).map(|(a, w)| a * w).sum::<f32>() + noise * normal())
            .collect();
        let names: Vec<String> = (0..d).map(|j| format!("c{j}")).collect();
        Dataset::numeric("rows", Matrix::from_vec(n, d, x).unwrap(), Target::Real(y), &names, "y")
    }

    #[test]
    fn only_the_columns_a_model_uses_matter_and_by_how_much() {
        // RMSE of a noiseless linear model with column j shuffled:
        // |w_j| · √(mean (x − x_π)²) ≈ |w_j| · √2 for standard normal x.
        let weights = [3.0, -1.5, 0.0, 0.0, 0.0];
        let data = rows(&weights, 4000, 0.0, 1);
        let model = linear(&weights);
        let pi = permutation_importance(&model, &data, Metric::Rmse, 5, 7).unwrap();
        assert!(pi.baseline < 1e-5, "{}", pi.baseline);
        let by = |c: &str| pi.columns.iter().find(|i| i.column == c).unwrap();
        assert_eq!(pi.columns[0].column, "c0");
        assert_eq!(pi.columns[1].column, "c1");
        for (c, w) in [("c0", 3.0f64), ("c1", 1.5)] {
            let expected = w * 2f64.sqrt();
            assert!((by(c).mean - expected).abs() < 0.05 * expected, "{c}: {} vs {expected}", by(c).mean);
            assert!(by(c).ci[0] > 0.0, "{c}: {:?}", by(c).ci);
        }
        for c in ["c2", "c3", "c4"] {
            assert_eq!(by(c).mean, 0.0, "an unused column changes nothing");
        }
        // Seeded: the same seed, the same numbers; another seed, others.
        assert_eq!(pi, permutation_importance(&model, &data, Metric::Rmse, 5, 7).unwrap());
        assert_ne!(pi, permutation_importance(&model, &data, Metric::Rmse, 5, 8).unwrap());
        assert!(permutation_importance(&model, &data, Metric::Rmse, 1, 7).is_err(), "one repeat has no interval");
    }

    #[test]
    fn the_interval_is_students_t() {
        let drops = [1.0, 2.0, 3.0, 4.0, 5.0];
        let (mean, std) = mean_and_std(&drops);
        assert_eq!(mean, 3.0);
        assert!((std - 2.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(t_975(4), 2.776);
        assert_eq!(t_975(100), 1.96);
    }

    #[test]
    fn partial_dependence_of_a_linear_model_is_its_line() {
        let weights = [2.0, 0.5];
        let data = rows(&weights, 500, 0.0, 3);
        let model = linear(&weights);
        let group = &column_groups(&data.encoding, false)[0];
        let pd = partial_dependence(&model, &data, group, None, 11, 4, |_| String::new()).unwrap();
        assert_eq!(pd.values.len(), 11);
        assert!(pd.values.windows(2).all(|w| w[0] < w[1]), "a numeric grid ascends: {:?}", pd.values);
        let mean_other = data.x.as_slice().chunks_exact(2).map(|r| f64::from(r[1])).sum::<f64>() / 500.0;
        for (v, a) in pd.values.iter().zip(&pd.average) {
            // The average over rows of 2v + 0.5 x₁.
            assert!((a - (2.0 * v + 0.5 * mean_other)).abs() < 1e-4, "{a} at {v}");
        }
        // Each ICE curve is the line through its row: slope 2.
        for curve in &pd.ice {
            for (w, v) in curve.windows(2).zip(pd.values.windows(2)) {
                assert!(((w[1] - w[0]) / (v[1] - v[0]) - 2.0).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn saliency_of_a_linear_model_is_weight_times_input() {
        let weights = [2.0, -1.0, 0.25];
        let model = linear(&weights);
        let mut rng = seeded_rng(5);
        let x = Matrix::from_vec(4, 3, (0..12).map(|_| rng.random_range(-2.0f32..2.0)).collect()).unwrap();
        let maps = saliency(&model, &x, &[0, 0, 0, 0], 1e-2).unwrap();
        for (i, map) in maps.iter().enumerate() {
            for j in 0..3 {
                let expected = weights[j] * x.row(i)[j];
                assert!((map[j] - expected).abs() < 1e-3 * (1.0 + expected.abs()), "{} vs {expected}", map[j]);
            }
        }
    }
}
