//! Which hyperparameters mattered: fANOVA (Hutter, Hoos and Leyton-Brown
//! 2014, Optuna's default) and PED-ANOVA (Watanabe et al. 2023), each run
//! over several seeds so that a near-tie shows as one.
//!
//! Both read the complete trials with a finite value (fANOVA at most
//! [`MAX_TRIALS`] of them, spread evenly over a larger study) and the
//! parameters every one of them has, with the same distribution (Optuna's choice: a
//! parameter only some trials have, as a network's width beside a linear
//! model, is left out); a parameter with one possible value gets 0. Each
//! method's importances sum to 1.
//!
//! - **fANOVA** fits a random forest (64 regression trees, each on a
//!   bootstrap sample of the trials, every parameter tried at each split,
//!   grown until its leaves are pure) to the values over the parameters —
//!   numbers as they are, categories one-hot — and, in each tree, measures
//!   the variance of the prediction as a function of one parameter, the
//!   others averaged out over the search space, as a share of the tree's
//!   whole variance (Optuna's `FanovaImportanceEvaluator`, the same
//!   defaults). Seeds draw other forests.
//! - **PED-ANOVA** compares, for each parameter, where the best 10% of the
//!   trials put it with where all of them did: the Pearson divergence of the
//!   two densities (Scott-rule Parzen estimators over a grid of 50 points —
//!   in log space for a log distribution — or over the choices), large when
//!   the good trials crowd into part of the range. It needs no model and
//!   little time; seeds draw four fifths of the trials (seed 0: all).

use std::collections::BTreeMap;

use gradus_tune::samplers::gauss_mass;
use gradus_tune::{Direction, Distribution, FrozenTrial};

use crate::{ReportError, StudyTrials};

/// An importance method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Fanova,
    PedAnova,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Fanova => "fANOVA",
            Method::PedAnova => "PED-ANOVA",
        }
    }
}

/// The most complete trials fANOVA reads: on a larger study, that many
/// spread evenly over its trials (its forests on 10,000 trials took 18 s;
/// on 1,000, under 2). PED-ANOVA reads them all.
pub const MAX_TRIALS: usize = 1000;

/// The seeds reports run each method with: enough to show a near-tie as one.
pub const IMPORTANCE_SEEDS: [u64; 5] = [0, 1, 2, 3, 4];

/// One parameter's importance by one method: the mean over the seeds and
/// their standard deviation.
#[derive(Clone, Debug, PartialEq)]
pub struct Importance {
    pub param: String,
    pub mean: f64,
    pub spread: f64,
    /// Each seed's value, in seed order.
    pub per_seed: Vec<f64>,
}

/// The importances of `study`'s parameters by `method`, one run per seed in
/// `seeds`, the most important first. An error when fewer than two complete
/// trials share a parameter.
pub fn importances(study: &StudyTrials, method: Method, seeds: &[u64]) -> Result<Vec<Importance>, ReportError> {
    // fANOVA's forests grow with the trials; PED-ANOVA's counts barely.
    let table = Table::of(study, if method == Method::Fanova { MAX_TRIALS } else { usize::MAX })?;
    let runs: Vec<Vec<f64>> = seeds
        .iter()
        .map(|&seed| match method {
            Method::Fanova => fanova(&table, seed),
            Method::PedAnova => ped_anova(&table, study.direction, seed),
        })
        .collect();
    let mut out: Vec<Importance> = table
        .params
        .iter()
        .enumerate()
        .map(|(p, param)| {
            let per_seed: Vec<f64> = runs.iter().map(|r| r[p]).collect();
            let mean = per_seed.iter().sum::<f64>() / per_seed.len().max(1) as f64;
            let spread =
                (per_seed.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / per_seed.len().max(1) as f64).sqrt();
            Importance { param: param.name.clone(), mean, spread, per_seed }
        })
        .collect();
    out.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.param.cmp(&b.param)));
    Ok(out)
}

/// A parameter as the methods read it.
struct Param {
    name: String,
    distribution: Distribution,
    /// Its columns in [`Table::columns`]: one, or one per choice.
    columns: std::ops::Range<usize>,
}

/// The complete trials' parameters as columns of numbers, and their values.
struct Table {
    params: Vec<Param>,
    /// Column-major: `columns[c][i]` is trial i's column c.
    columns: Vec<Vec<f64>>,
    /// Each column's range over the search space.
    bounds: Vec<[f64; 2]>,
    /// Each parameter's internal value per trial (a choice's index).
    internal: Vec<Vec<f64>>,
    values: Vec<f64>,
}

impl Table {
    /// At most `most` complete trials, spread evenly over the study.
    fn of(study: &StudyTrials, most: usize) -> Result<Self, ReportError> {
        let mut done: Vec<&FrozenTrial> =
            study.trials.iter().filter(|t| t.value().is_some_and(f64::is_finite)).collect();
        // A large study: every k-th complete trial, at most `most`.
        if done.len() > most {
            let n = done.len();
            done = (0..most).map(|i| done[i * n / most]).collect();
        }
        let few = || ReportError::Empty {
            study: study.name.clone(),
            what: "fewer than two complete trials with a parameter in common".into(),
        };
        let first = done.first().ok_or_else(few)?;
        // The parameters every complete trial has, with the same distribution.
        let shared: BTreeMap<&String, &Distribution> = first
            .distributions
            .iter()
            .filter(|(name, d)| {
                done.iter().all(|t| t.distributions.get(*name) == Some(*d) && t.internal(name).is_some())
            })
            .collect();
        if done.len() < 2 || shared.is_empty() {
            return Err(few());
        }
        let (mut params, mut columns, mut bounds, mut internal) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (name, d) in shared {
            let values: Vec<f64> = done.iter().map(|t| t.internal(name).expect("checked above")).collect();
            let start = columns.len();
            match d {
                // No columns: it cannot explain anything (and a side of
                // width 0 would leave the search space no volume).
                _ if d.is_single() => {}
                Distribution::Categorical { choices } => {
                    for c in 0..choices.len() {
                        columns.push(values.iter().map(|&v| if v as usize == c { 1.0 } else { 0.0 }).collect());
                        bounds.push([0.0, 1.0]);
                    }
                }
                Distribution::Float { low, high, .. } => {
                    columns.push(values.clone());
                    bounds.push([*low, *high]);
                }
                Distribution::Int { low, high, .. } => {
                    columns.push(values.clone());
                    bounds.push([*low as f64, *high as f64]);
                }
            }
            params.push(Param { name: name.clone(), distribution: d.clone(), columns: start..columns.len() });
            internal.push(values);
        }
        let values = done.iter().map(|t| t.value().expect("complete")).collect();
        Ok(Table { params, columns, bounds, internal, values })
    }

    fn n(&self) -> usize {
        self.values.len()
    }
}

/// SplitMix64: a small seeded generator for bootstrap samples and feature order.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in 0..n.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------- fANOVA

/// Trees in the forest and their deepest level: Optuna's defaults.
const TREES: usize = 64;
const MAX_DEPTH: usize = 64;

/// A node of a regression tree: a split (`feature`, `threshold`: left
/// takes ≤) or a leaf (`feature` None) predicting `value`. Children come
/// after their parent.
#[derive(Clone, Debug)]
struct Node {
    feature: Option<usize>,
    threshold: f64,
    children: [usize; 2],
    value: f64,
}

/// A CART regression tree on the rows `sample` (with repeats) of `columns`.
fn grow_tree(columns: &[Vec<f64>], y: &[f64], sample: &mut [usize], rng: &mut Rng) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut order: Vec<usize> = (0..columns.len()).collect();
    grow(columns, y, sample, 0, rng, &mut order, &mut nodes);
    nodes
}

fn grow(
    columns: &[Vec<f64>],
    y: &[f64],
    rows: &mut [usize],
    depth: usize,
    rng: &mut Rng,
    order: &mut [usize],
    nodes: &mut Vec<Node>,
) -> usize {
    let n = rows.len() as f64;
    let sum: f64 = rows.iter().map(|&r| y[r]).sum();
    let mean = sum / n;
    let at = nodes.len();
    nodes.push(Node { feature: None, threshold: 0.0, children: [0, 0], value: mean });
    let spread = rows.iter().map(|&r| (y[r] - mean).powi(2)).sum::<f64>();
    if rows.len() < 2 || depth >= MAX_DEPTH || spread <= 1e-12 * (1.0 + mean * mean) * n {
        return at;
    }
    // Every feature, in a random order (which breaks ties between equal splits).
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    // The split maximising Σ_left² / n_left + Σ_right² / n_right (the
    // squared error's reduction, up to a constant).
    let parent = sum * sum / n;
    let mut best: Option<(f64, usize, f64)> = None;
    let mut sorted = rows.to_vec();
    for &f in order.iter() {
        let x = &columns[f];
        sorted.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
        let mut left = 0.0;
        for i in 0..sorted.len() - 1 {
            left += y[sorted[i]];
            let (a, b) = (x[sorted[i]], x[sorted[i + 1]]);
            if b <= a {
                continue;
            }
            let (nl, nr) = ((i + 1) as f64, n - (i + 1) as f64);
            let gain = left * left / nl + (sum - left).powi(2) / nr;
            if best.is_none_or(|(g, _, _)| gain > g) {
                let mid = a + (b - a) / 2.0;
                best = Some((gain, f, if mid < b { mid } else { a }));
            }
        }
    }
    let Some((gain, feature, threshold)) = best else { return at };
    if gain <= parent + 1e-12 * parent.abs() {
        return at;
    }
    let x = &columns[feature];
    // Left (≤ threshold) first, then right.
    let mut split = 0;
    for i in 0..rows.len() {
        if x[rows[i]] <= threshold {
            rows.swap(i, split);
            split += 1;
        }
    }
    let (left_rows, right_rows) = rows.split_at_mut(split);
    let left = grow(columns, y, left_rows, depth + 1, rng, order, nodes);
    let right = grow(columns, y, right_rows, depth + 1, rng, order, nodes);
    nodes[at].feature = Some(feature);
    nodes[at].threshold = threshold;
    nodes[at].children = [left, right];
    at
}

/// A tree read as fANOVA reads it (Optuna's `_FanovaTree`): each node's
/// value averaged over the part of the search space it covers, weighted by
/// that part's size.
struct FanovaTree<'a> {
    nodes: &'a [Node],
    bounds: &'a [[f64; 2]],
    /// Per node: the mean prediction over its cell and the cell's size.
    statistics: Vec<(f64, f64)>,
    /// Per feature: the midpoints and widths of the intervals its splits cut.
    midpoints: Vec<Vec<f64>>,
    sizes: Vec<Vec<f64>>,
    /// Per node: the features its subtree splits on.
    active: Vec<Vec<bool>>,
}

/// The size of a box (the product of its sides).
fn cardinality(cell: &[[f64; 2]]) -> f64 {
    cell.iter().map(|b| b[1] - b[0]).product()
}

impl<'a> FanovaTree<'a> {
    fn new(nodes: &'a [Node], bounds: &'a [[f64; 2]]) -> Self {
        let d = bounds.len();
        let mut cells: Vec<Option<Vec<[f64; 2]>>> = vec![None; nodes.len()];
        cells[0] = Some(bounds.to_vec());
        let mut statistics = vec![(0.0, 0.0); nodes.len()];
        for i in 0..nodes.len() {
            let cell = cells[i].take().expect("a parent comes before its children");
            match nodes[i].feature {
                None => statistics[i] = (nodes[i].value, cardinality(&cell)),
                Some(f) => {
                    let (mut left, mut right) = (cell.clone(), cell);
                    left[f][1] = nodes[i].threshold;
                    right[f][0] = nodes[i].threshold;
                    cells[nodes[i].children[0]] = Some(left);
                    cells[nodes[i].children[1]] = Some(right);
                }
            }
        }
        let mut active = vec![vec![false; d]; nodes.len()];
        for i in (0..nodes.len()).rev() {
            if let Some(f) = nodes[i].feature {
                let [l, r] = nodes[i].children;
                let ((vl, wl), (vr, wr)) = (statistics[l], statistics[r]);
                let w = wl + wr;
                statistics[i] = (if w > 0.0 { (vl * wl + vr * wr) / w } else { (vl + vr) / 2.0 }, w);
                let mut here = vec![false; d];
                here[f] = true;
                for c in [l, r] {
                    here.iter_mut().zip(&active[c]).for_each(|(h, &a)| *h |= a);
                }
                active[i] = here;
            }
        }
        let (mut midpoints, mut sizes) = (Vec::with_capacity(d), Vec::with_capacity(d));
        for (f, b) in bounds.iter().enumerate() {
            let mut cuts: Vec<f64> = nodes.iter().filter(|n| n.feature == Some(f)).map(|n| n.threshold).collect();
            cuts.sort_by(f64::total_cmp);
            cuts.dedup();
            let edges: Vec<f64> = std::iter::once(b[0]).chain(cuts).chain(std::iter::once(b[1])).collect();
            midpoints.push(edges.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect());
            sizes.push(edges.windows(2).map(|w| w[1] - w[0]).collect());
        }
        FanovaTree { nodes, bounds, statistics, midpoints, sizes, active }
    }

    /// The variance of the prediction over the search space.
    fn variance(&self) -> f64 {
        let leaves = self.nodes.iter().zip(&self.statistics).filter(|(n, _)| n.feature.is_none()).map(|(_, s)| *s);
        weighted_variance(leaves)
    }

    /// The variance of the prediction as a function of `features` alone,
    /// the others averaged out.
    fn marginal_variance(&self, features: &[usize]) -> f64 {
        let mut sample = vec![f64::NAN; self.bounds.len()];
        let mut points = Vec::new();
        // Every combination of the features' intervals.
        let mut index = vec![0usize; features.len()];
        loop {
            let mut size = 1.0;
            for (k, &f) in features.iter().enumerate() {
                sample[f] = self.midpoints[f][index[k]];
                size *= self.sizes[f][index[k]];
            }
            let (value, weight) = self.marginalized(&sample);
            points.push((value, weight * size));
            // The next combination, odometer-wise.
            let mut k = 0;
            loop {
                if k == features.len() {
                    return weighted_variance(points.into_iter()).max(0.0);
                }
                index[k] += 1;
                if index[k] < self.midpoints[features[k]].len() {
                    break;
                }
                index[k] = 0;
                k += 1;
            }
        }
    }

    /// The prediction at `sample` (NaN: averaged out) and the weight of
    /// the cells it covers.
    fn marginalized(&self, sample: &[f64]) -> (f64, f64) {
        let mut space: Vec<[f64; 2]> = self.bounds.to_vec();
        for (b, s) in space.iter_mut().zip(sample) {
            if s.is_nan() {
                *b = [0.0, 1.0];
            }
        }
        let (mut stack, mut sum, mut total) = (vec![(0usize, space)], 0.0, 0.0);
        while let Some((i, cell)) = stack.pop() {
            if let Some(f) = self.nodes[i].feature {
                let [l, r] = self.nodes[i].children;
                let v = sample[f];
                if !v.is_nan() {
                    let mut next = cell;
                    if v <= self.nodes[i].threshold {
                        next[f][1] = self.nodes[i].threshold;
                        stack.push((l, next));
                    } else {
                        next[f][0] = self.nodes[i].threshold;
                        stack.push((r, next));
                    }
                    continue;
                }
                if self.active[i].iter().zip(sample).any(|(&a, s)| a && !s.is_nan()) {
                    stack.push((l, cell.clone()));
                    stack.push((r, cell));
                    continue;
                }
            }
            let (value, weight) = self.statistics[i];
            let w = weight / cardinality(&cell);
            sum += value * w;
            total += w;
        }
        (if total > 0.0 { sum / total } else { 0.0 }, total)
    }
}

/// The weighted variance of (value, weight) pairs.
fn weighted_variance(points: impl Iterator<Item = (f64, f64)>) -> f64 {
    let points: Vec<(f64, f64)> = points.collect();
    let total: f64 = points.iter().map(|p| p.1).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mean = points.iter().map(|(v, w)| v * w).sum::<f64>() / total;
    points.iter().map(|(v, w)| w * (v - mean).powi(2)).sum::<f64>() / total
}

/// fANOVA's forest on `table`: [`TREES`] trees, each on a bootstrap
/// sample drawn by `seed`.
fn forest(table: &Table, seed: u64) -> Vec<Vec<Node>> {
    let mut rng = Rng(seed ^ 0x5eed_fa0a);
    let n = table.n();
    (0..TREES)
        .map(|_| {
            let mut sample: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
            grow_tree(&table.columns, &table.values, &mut sample, &mut rng)
        })
        .collect()
}

/// fANOVA's importance of each parameter of `table` (see the module docs).
fn fanova(table: &Table, seed: u64) -> Vec<f64> {
    let forest = forest(table, seed);
    let trees: Vec<FanovaTree> = forest.iter().map(|nodes| FanovaTree::new(nodes, &table.bounds)).collect();
    fanova_of(table, &trees)
}

/// Each parameter's importance from the fANOVA `trees` of `table`.
fn fanova_of(table: &Table, trees: &[FanovaTree]) -> Vec<f64> {
    let variances: Vec<f64> = trees.iter().map(FanovaTree::variance).collect();
    let mut importances: Vec<f64> = table
        .params
        .iter()
        .map(|p| {
            if p.distribution.is_single() {
                return 0.0;
            }
            let features: Vec<usize> = p.columns.clone().collect();
            let shares: Vec<f64> = trees
                .iter()
                .zip(&variances)
                .filter(|(_, v)| **v > 0.0)
                .map(|(t, v)| t.marginal_variance(&features) / v)
                .collect();
            if shares.is_empty() { 0.0 } else { shares.iter().sum::<f64>() / shares.len() as f64 }
        })
        .collect();
    normalise(&mut importances);
    importances
}

/// The two most important numeric parameters of `study` by fANOVA (seed
/// 0), and the forest's prediction as a function of them alone — the other
/// parameters averaged out over the search space, as fANOVA does — at each
/// point of the `steps` x `steps` grid spanning their ranges (in log space
/// for a log distribution): `(names, xs, ys, values)`, `values[j][i]` at
/// (`xs[i]`, `ys[j]`). An error when fewer than two numeric parameters
/// vary.
#[allow(clippy::type_complexity)]
pub fn pair_surface(
    study: &StudyTrials,
    steps: usize,
) -> Result<([String; 2], Vec<f64>, Vec<f64>, Vec<Vec<f64>>), ReportError> {
    let table = Table::of(study, MAX_TRIALS)?;
    // One forest (seed 0) ranks the parameters and predicts the surface.
    let forest = forest(&table, 0);
    let trees: Vec<FanovaTree> = forest.iter().map(|nodes| FanovaTree::new(nodes, &table.bounds)).collect();
    let ranked = fanova_of(&table, &trees);
    let mut numeric: Vec<usize> = (0..table.params.len())
        .filter(|&p| {
            let d = &table.params[p].distribution;
            !d.is_single() && !matches!(d, Distribution::Categorical { .. })
        })
        .collect();
    if numeric.len() < 2 {
        return Err(ReportError::Empty { study: study.name.clone(), what: "fewer than two numeric parameters".into() });
    }
    numeric.sort_by(|&a, &b| ranked[b].total_cmp(&ranked[a]).then(a.cmp(&b)));
    let (pa, pb) = (numeric[0], numeric[1]);
    let axis = |p: usize| -> Vec<f64> {
        let (low, high, log) = match table.params[p].distribution {
            Distribution::Float { low, high, log, .. } => (low, high, log),
            Distribution::Int { low, high, log, .. } => (low as f64, high as f64, log),
            Distribution::Categorical { .. } => unreachable!("numeric parameters only"),
        };
        let n = steps.max(2);
        (0..n)
            .map(|i| {
                let f = i as f64 / (n - 1) as f64;
                if log { (low.ln() + f * (high.ln() - low.ln())).exp() } else { low + f * (high - low) }
            })
            .collect()
    };
    let (xs, ys) = (axis(pa), axis(pb));
    let (ca, cb) = (table.params[pa].columns.start, table.params[pb].columns.start);
    let mut sample = vec![f64::NAN; table.bounds.len()];
    let values = ys
        .iter()
        .map(|&y| {
            xs.iter()
                .map(|&x| {
                    (sample[ca], sample[cb]) = (x, y);
                    trees.iter().map(|t| t.marginalized(&sample).0).sum::<f64>() / trees.len() as f64
                })
                .collect()
        })
        .collect();
    Ok(([table.params[pa].name.clone(), table.params[pb].name.clone()], xs, ys, values))
}

/// Scales `values` to sum to 1 (all 0 stay 0)./// Scales `values` to sum to 1 (all 0 stay 0).
fn normalise(values: &mut [f64]) {
    let total: f64 = values.iter().sum();
    if total > 0.0 {
        values.iter_mut().for_each(|v| *v /= total);
    }
}

// ---------------------------------------------------------------- PED-ANOVA

/// The share of the trials PED-ANOVA calls good, and the fewest it takes.
const TOP_QUANTILE: f64 = 0.1;
const MIN_TOP: usize = 2;
/// The grid a continuous parameter is counted on.
const GRID: usize = 50;

/// PED-ANOVA's importance of each parameter of `table`, on four fifths of
/// the trials drawn by `seed` (seed 0: all of them).
fn ped_anova(table: &Table, direction: Direction, seed: u64) -> Vec<f64> {
    let n = table.n();
    let mut rows: Vec<usize> = (0..n).collect();
    if seed != 0 {
        // Four fifths of the trials, drawn without repeats (a bootstrap's
        // repeats would pile kernels on single trials).
        let mut rng = Rng(seed ^ 0xbad_5eed);
        for i in (1..n).rev() {
            rows.swap(i, rng.below(i + 1));
        }
        rows.truncate((n * 4 / 5).max(2));
    }
    let mut ranked = rows.clone();
    ranked.sort_by(|&a, &b| {
        let (x, y) = (table.values[a], table.values[b]);
        match direction {
            Direction::Minimize => x.total_cmp(&y),
            Direction::Maximize => y.total_cmp(&x),
        }
    });
    let top_n = ((n as f64 * TOP_QUANTILE).ceil() as usize).max(MIN_TOP).min(n);
    let top = &ranked[..top_n];
    let mut importances: Vec<f64> = table
        .params
        .iter()
        .zip(&table.internal)
        .map(|(p, values)| {
            if p.distribution.is_single() {
                return 0.0;
            }
            let (steps, cell) = grid_of(&p.distribution);
            let counts = |rows: &[usize]| {
                let mut c = vec![0.0; steps];
                rows.iter().for_each(|&r| c[cell(values[r])] += 1.0);
                c
            };
            let categorical = matches!(p.distribution, Distribution::Categorical { .. });
            let pdf_top = scott_parzen(&counts(top), categorical);
            let pdf_all = scott_parzen(&counts(&rows), categorical);
            pdf_all
                .iter()
                .zip(&pdf_top)
                .map(|(&a, &t)| {
                    let (a, t) = (a + 1e-12, t + 1e-12);
                    a * (t / a - 1.0).powi(2)
                })
                .sum()
        })
        .collect();
    normalise(&mut importances);
    importances
}

/// The grid a parameter is counted on: its size, and the cell of an
/// internal value (the nearest grid point; a choice's own index).
fn grid_of(d: &Distribution) -> (usize, Box<dyn Fn(f64) -> usize + '_>) {
    let linear = |low: f64, high: f64, steps: usize, log: bool| -> (usize, Box<dyn Fn(f64) -> usize>) {
        let (a, b) = if log { (low.ln(), high.ln()) } else { (low, high) };
        let cell = move |v: f64| {
            let v = if log { v.ln() } else { v };
            let at = if b > a { ((v - a) / (b - a) * (steps - 1) as f64).round() } else { 0.0 };
            (at.max(0.0) as usize).min(steps - 1)
        };
        (steps, Box::new(cell))
    };
    match *d {
        Distribution::Categorical { ref choices } => (choices.len(), Box::new(|v: f64| v as usize)),
        Distribution::Float { low, high, log, step } => {
            let steps = step.map_or(GRID, |s| (((high - low) / s).round() as usize + 1).min(GRID)).max(2);
            linear(low, high, steps, log)
        }
        Distribution::Int { low, high, log, step } => {
            let steps = (((high - low) / step.max(1)) as usize + 1).clamp(2, GRID);
            linear(low as f64, high as f64, steps, log)
        }
    }
}

/// The density over the grid cells 0..counts.len() of a Parzen estimator
/// (Optuna's `_ScottParzenEstimator`): a kernel at each cell with trials,
/// weighted by their count, and a prior kernel of weight 1. On a grid: a
/// normal discretised and truncated to the grid, of Scott's bandwidth
/// (at least 0.5/1.64 cells); the prior centred, as wide as the grid. On
/// choices: each kernel puts 1 on its choice plus 1/kernels on every
/// choice; the prior is uniform.
fn scott_parzen(counts: &[f64], categorical: bool) -> Vec<f64> {
    let steps = counts.len();
    let observed: Vec<(usize, f64)> = counts.iter().copied().enumerate().filter(|(_, c)| *c > 0.0).collect();
    let n_trials: f64 = observed.iter().map(|o| o.1).sum();
    let mut kernels: Vec<(Vec<f64>, f64)> = Vec::new();
    if categorical {
        let n_kernels = observed.len() as f64 + 1.0;
        for &(c, weight) in &observed {
            let mut row = vec![1.0 / n_kernels; steps];
            row[c] += 1.0;
            let total: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= total);
            kernels.push((row, weight));
        }
        kernels.push((vec![1.0 / steps as f64; steps], 1.0));
    } else {
        let discrete = |mu: f64, sigma: f64| {
            let mass: Vec<f64> =
                (0..steps).map(|i| gauss_mass((i as f64 - 0.5 - mu) / sigma, (i as f64 + 0.5 - mu) / sigma)).collect();
            let total: f64 = mass.iter().sum();
            mass.into_iter().map(|m| if total > 0.0 { m / total } else { 1.0 / steps as f64 }).collect::<Vec<f64>>()
        };
        if !observed.is_empty() {
            let mean = observed.iter().map(|&(c, w)| c as f64 * w).sum::<f64>() / n_trials;
            let sd = (observed.iter().map(|&(c, w)| w * (c as f64 - mean).powi(2)).sum::<f64>() / n_trials).sqrt();
            // The interquartile range from the cumulative counts.
            let cumulative: Vec<f64> = observed
                .iter()
                .scan(0.0, |s, o| {
                    *s += o.1;
                    Some(*s)
                })
                .collect();
            let quartile = |q: f64| {
                let target = (n_trials * q).floor();
                let k = cumulative.partition_point(|&c| c < target).min(observed.len() - 1);
                observed[k].0 as f64
            };
            let iqr = quartile(0.75) - quartile(0.25);
            let sigma = (1.059 * (iqr / 1.34).min(sd) * n_trials.powf(-0.2)).max(0.5 / 1.64);
            for &(c, weight) in &observed {
                kernels.push((discrete(c as f64, sigma), weight));
            }
        }
        kernels.push((discrete((steps - 1) as f64 / 2.0, steps as f64), 1.0));
    }
    let total: f64 = kernels.iter().map(|k| k.1).sum();
    let mut pdf = vec![0.0; steps];
    for (row, weight) in &kernels {
        pdf.iter_mut().zip(row).for_each(|(p, r)| *p += weight / total * r);
    }
    pdf
}

#[cfg(test)]
mod tests {
    use gradus_tune::samplers::RandomSampler;
    use gradus_tune::{Study, TrialState};

    use super::*;

    /// A study of `n` trials drawn uniformly at random (as a random
    /// sampler draws them) of f(x) = Σ wᵢ·xᵢ² over [-1, 1]⁶ with
    /// w = 8, 4, 2, 1, 0, 0 (negated when maximised).
    fn weighted(seed: u64, n: u64, direction: Direction) -> StudyTrials {
        let weights = [8.0, 4.0, 2.0, 1.0, 0.0, 0.0];
        let mut rng = Rng(seed);
        let trials = (0..n)
            .map(|number| {
                let mut f = 0.0;
                let mut t = FrozenTrial::new(number, number, TrialState::Running);
                for (i, w) in weights.iter().enumerate() {
                    let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                    f += w * x * x;
                    t.params.insert(format!("x{i}"), x.into());
                    t.distributions.insert(format!("x{i}"), Distribution::float(-1.0, 1.0));
                }
                t.state = TrialState::Complete(if direction == Direction::Minimize { f } else { -f });
                t
            })
            .collect();
        StudyTrials { name: "w".into(), direction, trials }
    }

    fn ranking(found: &[Importance]) -> Vec<&str> {
        found.iter().map(|i| i.param.as_str()).collect()
    }

    #[test]
    fn both_methods_rank_parameters_by_the_weight_they_carry_in_every_study() {
        for seed in 0..5 {
            for method in [Method::Fanova, Method::PedAnova] {
                let direction = if seed % 2 == 0 { Direction::Minimize } else { Direction::Maximize };
                let n = if method == Method::Fanova { 300 } else { 3000 };
                let found = importances(&weighted(seed, n, direction), method, &[0, 1, 2]).unwrap();
                let order = ranking(&found);
                assert_eq!(&order[..4], ["x0", "x1", "x2", "x3"], "{method:?} study {seed}: {found:?}");
                assert!((found.iter().map(|i| i.mean).sum::<f64>() - 1.0).abs() < 1e-9);
                // The weightless two are near nothing.
                assert!(found[4..].iter().all(|i| i.mean < 0.05), "{method:?} study {seed}: {found:?}");
            }
        }
    }

    #[test]
    fn a_forest_tree_fits_its_sample_and_fanova_reads_an_additive_function_exactly() {
        // f(a, b) = 3·[a > 0.5] + [b > 0.5] on a 4x4 grid: a tree fits it
        // exactly, and the variance splits 9 : 1 between a and b.
        let (mut a, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..4 {
            for j in 0..4 {
                let (x1, x2) = (i as f64 / 3.0, j as f64 / 3.0);
                a.push(x1);
                b.push(x2);
                y.push(3.0 * f64::from(u8::from(x1 > 0.5)) + f64::from(u8::from(x2 > 0.5)));
            }
        }
        let columns = vec![a, b];
        let mut rows: Vec<usize> = (0..16).collect();
        let nodes = grow_tree(&columns, &y, &mut rows, &mut Rng(1));
        for (i, &want) in y.iter().enumerate() {
            let mut at = 0;
            while let Some(f) = nodes[at].feature {
                at = nodes[at].children[usize::from(columns[f][i] > nodes[at].threshold)];
            }
            assert_eq!(nodes[at].value, want);
        }
        let bounds = [[0.0, 1.0], [0.0, 1.0]];
        let tree = FanovaTree::new(&nodes, &bounds);
        let (va, vb, all) = (tree.marginal_variance(&[0]), tree.marginal_variance(&[1]), tree.variance());
        // Splits at 0.5: each half of the range. Var(3·B) = 9/4, Var(B) = 1/4.
        assert!((va - 2.25).abs() < 1e-12 && (vb - 0.25).abs() < 1e-12 && (all - 2.5).abs() < 1e-12, "{va} {vb} {all}");
    }

    #[test]
    fn a_categorical_counts_as_one_parameter_and_a_single_value_as_none() {
        let study = Study::in_memory("c", Direction::Minimize, Box::new(RandomSampler::new(4))).unwrap();
        study
            .optimize(
                |trial| {
                    let opt = trial.suggest_categorical("opt", &["sgd", "adam", "rmsprop"])?;
                    let x = trial.suggest_float("x", 0.0, 1.0)?;
                    let fixed = trial.suggest_int("fixed", 3, 3)?;
                    Ok(if opt == "adam" { 5.0 } else { 0.0 } + 0.1 * x + fixed as f64)
                },
                120,
                None,
                1,
            )
            .unwrap();
        let trials = StudyTrials { name: "c".into(), direction: Direction::Minimize, trials: study.trials().unwrap() };
        for method in [Method::Fanova, Method::PedAnova] {
            let found = importances(&trials, method, &[0, 1]).unwrap();
            assert_eq!(found.last().map(|i| (i.param.as_str(), i.mean)), Some(("fixed", 0.0)), "{method:?}");
            assert!(found.iter().all(|i| i.param == "fixed" || i.mean > 0.0), "{method:?}: {found:?}");
        }
        // fANOVA: the choice moves the value 50 times as far as x does. (PED-ANOVA
        // asks where the best tenth lies instead: among the non-adam trials,
        // by x alone, so it finds x the more telling.)
        let found = importances(&trials, Method::Fanova, &[0, 1]).unwrap();
        assert_eq!(ranking(&found), ["opt", "x", "fixed"], "{found:?}");
        assert!(found[0].mean > 0.9, "{found:?}");
        // Too few trials is an error naming the study.
        let one = StudyTrials { name: "c".into(), direction: Direction::Minimize, trials: trials.trials[..1].to_vec() };
        let err = importances(&one, Method::Fanova, &[0]).err().unwrap().to_string();
        assert_eq!(err, "study 'c' has fewer than two complete trials with a parameter in common to show");
    }
}
