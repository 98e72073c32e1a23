//! Gaussian-process Bayesian optimisation (Snoek, Larochelle & Adams,
//! "Practical Bayesian Optimization of Machine Learning Algorithms", NeurIPS
//! 2012), with log expected improvement (Ament et al., "Unexpected
//! Improvements to Expected Improvement for Bayesian Optimization", NeurIPS
//! 2023).
//!
//! - Inputs are the unit cube of each parameter's working space (log space
//!   for log parameters); integer and stepped parameters are evaluated only
//!   on their grid, never merely rounded after the search; categoricals use a
//!   Hamming distance in the kernel.
//! - Outputs are standardised; the kernel is Matérn-5/2 with one lengthscale
//!   per dimension (ARD), a signal variance and a noise variance, fitted by
//!   maximising the marginal likelihood with log-normal priors, by L-BFGS
//!   from several starts.
//! - The acquisition, log EI, is maximised over scrambled Sobol candidates
//!   and the best observations' neighbourhoods, then refined by a shrinking
//!   coordinate search.
//! - Pending (running) trials are "believed": added at the posterior mean, so
//!   a batch of asks spreads out (the Kriging believer).
//! - The first `n_startup_trials` trials are random.
//! - Failed trials are observed at the worst value seen, so that a region
//!   where training diverges is not proposed again and again (an
//!   interrupted trial counts so too, as in the TPE sampler).
//! - Pruned trials are observed at the best value they reported, with the
//!   step they reached as one more input (the fidelity: see `Fidelity`),
//!   and complete trials at their pruner's rungs as well as at the end, so
//!   an epoch-10 loss is not read as a final one; proposals are made at the
//!   end of training. Without pruned trials the input is left out.
//! - Parameters outside the space every observed trial shares — the
//!   conditional ones, such as an MLP's shape when some trials are linear
//!   models — are sampled by the independent (univariate) TPE over the
//!   trials that have them, not at random.
//!
//! Cost: the factorisations and products run through faer; each fit
//! precomputes the inputs' pairwise differences once, so a likelihood
//! evaluation is a few vector sums, and starts from the previous ask's
//! hyperparameters and L-BFGS curvature memory (three fresh starts every
//! tenth fit); candidates are scored in batches, one kernel block and one
//! matrix product each.

use std::collections::BTreeMap;

use faer::linalg::matmul::matmul;
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, Mat, Par, Side};
use gradus_optim::{IterationOutcome, Lbfgs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Sampler, TpeSampler, stable_hash};
use crate::{Direction, Distribution, FrozenTrial, StudyView, TrialState};

/// See the module documentation.
#[derive(Debug)]
pub struct GpSampler {
    pub seed: u64,
    pub n_startup_trials: usize,
    /// Quasi-random candidates scored per proposal.
    pub n_candidates: usize,
    /// Samples the parameters the GP does not model (see the module docs).
    fallback: TpeSampler,
    /// The last fit's hyperparameters, the next fit's first start.
    warm: std::sync::Mutex<Option<Warm>>,
}

impl GpSampler {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            n_startup_trials: 10,
            n_candidates: 1024,
            fallback: TpeSampler::new(seed).multivariate(false),
            warm: std::sync::Mutex::new(None),
        }
    }
}

/// The last fit's hyperparameters and its optimizer's curvature memory: the
/// next fit's start.
#[derive(Clone, Debug)]
struct Warm {
    theta: Vec<f64>,
    optimizer: Lbfgs,
}

/// How a parameter is encoded on its axis of the unit cube.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Axis {
    /// Continuous in [0, 1]; `levels` > 0 for ints and steps (the grid size).
    Numeric { levels: usize },
    /// A choice index, compared by equality.
    Categorical { n: usize },
}

fn axis_of(d: &Distribution) -> Axis {
    match d {
        Distribution::Categorical { choices } => Axis::Categorical { n: choices.len() },
        Distribution::Float { step: None, .. } => Axis::Numeric { levels: 0 },
        _ => Axis::Numeric { levels: d.grid_len().map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)) },
    }
}

/// The unit-cube coordinate of an internal value (the inverse of `from_unit`
/// up to its grid: a level's centre).
fn encode(d: &Distribution, v: f64) -> f64 {
    match *d {
        Distribution::Categorical { .. } => v,
        Distribution::Float { low, high, log: true, .. } => {
            if high > low {
                (v.ln() - low.ln()) / (high.ln() - low.ln())
            } else {
                0.5
            }
        }
        Distribution::Float { low, high, step: None, .. } => {
            if high > low {
                (v - low) / (high - low)
            } else {
                0.5
            }
        }
        _ => {
            // The value's level on the grid, counted rather than searched for.
            let (low, step) = match *d {
                Distribution::Int { low, step, .. } => (low as f64, step as f64),
                Distribution::Float { low, step, .. } => (low, step.unwrap_or(1.0)),
                Distribution::Categorical { .. } => (0.0, 1.0),
            };
            let levels = d.grid_len().unwrap_or(1).max(1) as f64;
            let k = ((v - low) / step).round().clamp(0.0, levels - 1.0);
            (k + 0.5) / levels
        }
    }
}

/// A unit-cube point snapped to what the parameters can take: grid levels'
/// centres for ints and steps, whole indices for categoricals.
fn snap(axes: &[Axis], x: &mut [f64]) {
    for (v, a) in x.iter_mut().zip(axes) {
        match *a {
            Axis::Numeric { levels: 0 } => *v = v.clamp(0.0, 1.0),
            Axis::Numeric { levels } => {
                let k = ((*v * levels as f64).floor() as usize).min(levels - 1);
                *v = (k as f64 + 0.5) / levels as f64;
            }
            Axis::Categorical { n } => *v = (v.round() as usize).min(n - 1) as f64,
        }
    }
}

/// Matérn-5/2 ARD kernel hyperparameters, in log space.
#[derive(Clone, Debug)]
struct Kernel {
    log_lengthscales: Vec<f64>,
    log_signal: f64,
    log_noise: f64,
}

const SQRT5: f64 = 2.23606797749979;
const MIN_NOISE: f64 = 1e-6;

impl Kernel {
    fn from_theta(theta: &[f64]) -> Self {
        let d = theta.len() - 2;
        Self { log_lengthscales: theta[..d].to_vec(), log_signal: theta[d], log_noise: theta[d + 1] }
    }

    fn noise(&self) -> f64 {
        MIN_NOISE + self.log_noise.exp()
    }

    /// 1/ℓ_d² per dimension.
    fn inv_sq_lengthscales(&self) -> Vec<f64> {
        self.log_lengthscales.iter().map(|l| (-2.0 * l).exp()).collect()
    }

    /// k as a function of the scaled distance r: s²(1 + √5r + 5r²/3)e^{−√5r},
    /// given s² and e^{−√5r}.
    fn of_r(s2: f64, r: f64, e: f64) -> f64 {
        s2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * e
    }
}

/// e^{−√5 r}, 0 where it underflows (without libm's slow underflow path).
fn decay(r: f64) -> f64 {
    let t = SQRT5 * r;
    if t > 700.0 { 0.0 } else { (-t).exp() }
}

/// The training inputs' squared differences Δ_d² (0 or 1 for categoricals)
/// per dimension, over the pairs i > j: they do not depend on the kernel, so
/// a fit computes them once and each likelihood evaluation is then a few
/// vector sums over pairs.
struct Pairs {
    n: usize,
    /// Per dimension, per pair (j ascending, then i from j + 1).
    sq: Vec<Vec<f64>>,
}

impl Pairs {
    fn new(axes: &[Axis], x: &[Vec<f64>]) -> Self {
        let n = x.len();
        let sq = axes
            .iter()
            .enumerate()
            .map(|(d, ax)| {
                let mut column = Vec::with_capacity(n * n.saturating_sub(1) / 2);
                for j in 0..n {
                    for i in j + 1..n {
                        let delta = match ax {
                            Axis::Categorical { .. } => f64::from(x[i][d] != x[j][d]),
                            Axis::Numeric { .. } => x[i][d] - x[j][d],
                        };
                        column.push(delta * delta);
                    }
                }
                column
            })
            .collect();
        Self { n, sq }
    }

    fn len(&self) -> usize {
        self.n * self.n.saturating_sub(1) / 2
    }

    /// K + σ²I for `kernel`, with each pair's scaled distance r and decay
    /// e^{−√5r}.
    fn gram(&self, kernel: &Kernel) -> (Mat<f64>, Vec<f64>, Vec<f64>) {
        let inv = kernel.inv_sq_lengthscales();
        let s2 = kernel.log_signal.exp();
        let mut r = vec![0.0; self.len()];
        for (column, w) in self.sq.iter().zip(&inv) {
            for (r2, sq) in r.iter_mut().zip(column) {
                *r2 += w * sq;
            }
        }
        r.iter_mut().for_each(|v| *v = v.sqrt());
        let e: Vec<f64> = r.iter().map(|&v| decay(v)).collect();
        let mut k = Mat::<f64>::zeros(self.n, self.n);
        let mut p = 0;
        for j in 0..self.n {
            k[(j, j)] = s2 + kernel.noise();
            for i in j + 1..self.n {
                let v = Kernel::of_r(s2, r[p], e[p]);
                (k[(i, j)], k[(j, i)]) = (v, v);
                p += 1;
            }
        }
        (k, r, e)
    }
}

/// The Cholesky factor L of `k` and its inverse, or `None` when `k` is not
/// numerically positive definite.
fn factor(k: &Mat<f64>) -> Option<(Mat<f64>, Mat<f64>)> {
    let llt = k.llt(Side::Lower).ok()?;
    let l = llt.L().to_owned();
    if (0..l.nrows()).any(|i| !(l[(i, i)] > 0.0 && l[(i, i)].is_finite())) {
        return None;
    }
    let mut l_inv = Mat::<f64>::zeros(l.nrows(), l.ncols());
    invert_lower_triangular(l_inv.as_mut(), l.as_ref(), Par::Seq);
    gradus_optim::clear_upper_state();
    Some((l, l_inv))
}

/// z = L⁻¹ y and α = L⁻ᵀ z = K⁻¹ y, from L⁻¹ (lower triangular).
fn solve_with(l_inv: &Mat<f64>, y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = y.len();
    let z: Vec<f64> = (0..n).map(|i| (0..=i).map(|k| l_inv[(i, k)] * y[k]).sum()).collect();
    let alpha = (0..n).map(|i| (i..n).map(|k| l_inv[(k, i)] * z[k]).sum()).collect();
    (z, alpha)
}

/// A fitted GP: L⁻¹ for L the Cholesky factor of K + σ²I, and α = K⁻¹y.
struct Gp {
    axes: Vec<Axis>,
    kernel: Kernel,
    /// The training inputs, dimension by dimension (for batched kernels).
    columns: Vec<Vec<f64>>,
    l_inv: Mat<f64>,
    alpha: Vec<f64>,
}

/// Log-normal priors: lengthscales around 0.5 of the cube, the signal
/// variance around 1 (outputs are standardised), little noise.
fn log_prior(theta: &[f64], grad: &mut [f64]) -> f64 {
    let d = theta.len() - 2;
    let mut lp = 0.0;
    let mut add = |i: usize, mean: f64, sd: f64| {
        let z = (theta[i] - mean) / sd;
        lp -= 0.5 * z * z;
        grad[i] -= z / sd;
    };
    for i in 0..d {
        add(i, 0.5f64.ln(), 1.0);
    }
    add(d, 0.0, 1.0);
    add(d + 1, (1e-3f64).ln(), 3.0);
    lp
}

/// The negative log posterior of the kernel hyperparameters `theta` given
/// the inputs' `pairs` and outputs `y`, and its gradient in `grad`.
fn neg_log_posterior(pairs: &Pairs, y: &[f64], theta: &[f64], grad: &mut [f64]) -> f64 {
    let n = pairs.n;
    let d = theta.len() - 2;
    grad.iter_mut().for_each(|g| *g = 0.0);
    let kernel = Kernel::from_theta(theta);
    let (k, r, decays) = pairs.gram(&kernel);
    let Some((l, l_inv)) = factor(&k) else { return f64::INFINITY };
    let (z, alpha) = solve_with(&l_inv, y);
    let nll = 0.5 * z.iter().map(|v| v * v).sum::<f64>()
        + (0..n).map(|i| l[(i, i)].ln()).sum::<f64>()
        + 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    // ∂NLL/∂θ = −½ tr((ααᵀ − K⁻¹) ∂K/∂θ), with K⁻¹ = L⁻ᵀL⁻¹: the diagonal,
    // then the pairs i > j (twice, for both triangles).
    let mut k_inv = Mat::<f64>::zeros(n, n);
    matmul(k_inv.as_mut(), Accum::Replace, l_inv.transpose(), l_inv.as_ref(), 1.0, Par::Seq);
    gradus_optim::clear_upper_state();
    let s2 = kernel.log_signal.exp();
    let (mut g_signal, mut g_noise) = (0.0, 0.0);
    for i in 0..n {
        let w = alpha[i] * alpha[i] - k_inv[(i, i)];
        g_signal -= 0.5 * w * s2;
        g_noise -= 0.5 * w * kernel.log_noise.exp();
    }
    // Per pair, −½w·∂k/∂log ℓ_d / (Δ_d²/ℓ_d²) = −½w·s²(5/3)(1 + √5r)e^{−√5r}.
    let mut common = Vec::with_capacity(pairs.len());
    let mut p = 0;
    for j in 0..n {
        for i in j + 1..n {
            let w = 2.0 * (alpha[i] * alpha[j] - k_inv[(i, j)]);
            let (rp, e) = (r[p], decays[p]);
            g_signal -= 0.5 * w * Kernel::of_r(s2, rp, e);
            common.push(-0.5 * w * s2 * (5.0 / 3.0) * (1.0 + SQRT5 * rp) * e);
            p += 1;
        }
    }
    for ((g, column), w) in grad.iter_mut().zip(&pairs.sq).zip(kernel.inv_sq_lengthscales()) {
        *g = w * column.iter().zip(&common).map(|(sq, c)| sq * c).sum::<f64>();
    }
    grad[d] = g_signal;
    grad[d + 1] = g_noise;
    let mut prior_grad = vec![0.0; d + 2];
    let lp = log_prior(theta, &mut prior_grad);
    for (g, p) in grad.iter_mut().zip(&prior_grad) {
        *g -= p;
    }
    nll - lp
}

impl Gp {
    /// Fits the kernel to standardised `y` (several L-BFGS starts) and
    /// factors it; also returns the warm start for the next fit. With `warm`
    /// the previous fit's hyperparameters are refined, the optimizer keeping
    /// its curvature memory; without one, and every tenth fit, three starts
    /// (the prior's centre and two random) are searched.
    fn fit(
        axes: &[Axis],
        x: Vec<Vec<f64>>,
        y: &[f64],
        rng: &mut ChaCha8Rng,
        warm: Option<&Warm>,
    ) -> Option<(Self, Warm)> {
        let (n, d) = (x.len(), axes.len());
        let default: Vec<f64> = (0..d).map(|_| 0.5f64.ln()).chain([0.0, (1e-3f64).ln()]).collect();
        let warm = warm.filter(|w| w.theta.len() == d + 2 && n % 10 != 0);
        let (starts, iterations): (Vec<(Vec<f64>, Lbfgs)>, usize) = match warm {
            Some(w) => {
                let mut optimizer = w.optimizer.clone();
                optimizer.restart();
                (vec![(w.theta.clone(), optimizer)], 15)
            }
            None => (
                (0..3)
                    .map(|s| {
                        let theta =
                            default.iter().map(|t| if s == 0 { *t } else { t + rng.random_range(-1.0..1.0) }).collect();
                        (theta, Lbfgs::new(10))
                    })
                    .collect(),
                50,
            ),
        };
        let pairs = Pairs::new(axes, &x);
        let mut best: Option<(f64, Warm)> = None;
        for (mut theta, mut opt) in starts {
            let mut objective = |t: &[f64], g: &mut [f64]| neg_log_posterior(&pairs, y, t, g);
            let mut last = f64::INFINITY;
            for _ in 0..iterations {
                match opt.iterate(&mut theta, &mut objective) {
                    IterationOutcome::Stalled { .. } => break,
                    // Converged: the posterior moved by less than 1e-6 relative.
                    IterationOutcome::Moved { value, .. } if (last - value).abs() <= 1e-6 * (1.0 + value.abs()) => {
                        break;
                    }
                    IterationOutcome::Moved { value, .. } => last = value,
                }
            }
            let value = opt.value().unwrap_or(f64::INFINITY);
            if value.is_finite() && best.as_ref().is_none_or(|(b, _)| value < *b) {
                best = Some((value, Warm { theta, optimizer: opt }));
            }
        }
        let (_, warm) = best?;
        let gp = Self::condition(axes, Kernel::from_theta(&warm.theta), x, y)?;
        Some((gp, warm))
    }

    /// The GP with fixed `kernel` conditioned on (x, y).
    fn condition(axes: &[Axis], kernel: Kernel, x: Vec<Vec<f64>>, y: &[f64]) -> Option<Self> {
        let (k, _, _) = Pairs::new(axes, &x).gram(&kernel);
        let (_, l_inv) = factor(&k)?;
        let (_, alpha) = solve_with(&l_inv, y);
        let columns = (0..axes.len()).map(|d| x.iter().map(|p| p[d]).collect()).collect();
        Some(Self { axes: axes.to_vec(), kernel, columns, l_inv, alpha })
    }

    /// Posterior mean and variance at each of `points`: k* from the kernel,
    /// mean k*ᵀα, variance s² − |L⁻¹k*|² (one matrix product for all).
    fn predict_many(&self, points: &[Vec<f64>]) -> Vec<(f64, f64)> {
        let (n, m) = (self.alpha.len(), points.len());
        let inv = self.kernel.inv_sq_lengthscales();
        let s2 = self.kernel.log_signal.exp();
        // k(x_i, p_j), one column per point: the squared scaled distances
        // summed dimension by dimension over all training points at once.
        let mut ks = Mat::<f64>::zeros(n, m);
        let mut r2 = vec![0.0; n];
        for (j, p) in points.iter().enumerate() {
            r2.iter_mut().for_each(|v| *v = 0.0);
            for (d, (ax, w)) in self.axes.iter().zip(&inv).enumerate() {
                let column = &self.columns[d];
                match ax {
                    Axis::Numeric { .. } => {
                        for (acc, x) in r2.iter_mut().zip(column) {
                            *acc += w * (x - p[d]) * (x - p[d]);
                        }
                    }
                    Axis::Categorical { .. } => {
                        for (acc, x) in r2.iter_mut().zip(column) {
                            *acc += w * f64::from(*x != p[d]);
                        }
                    }
                }
            }
            for (i, &v) in r2.iter().enumerate() {
                let r = v.sqrt();
                ks[(i, j)] = Kernel::of_r(s2, r, decay(r));
            }
        }
        let mut v = Mat::<f64>::zeros(n, m);
        matmul(v.as_mut(), Accum::Replace, self.l_inv.as_ref(), ks.as_ref(), 1.0, Par::Seq);
        gradus_optim::clear_upper_state();
        (0..m)
            .map(|j| {
                let mean = (0..n).map(|i| ks[(i, j)] * self.alpha[i]).sum::<f64>();
                let var = s2 - (0..n).map(|i| v[(i, j)] * v[(i, j)]).sum::<f64>();
                (mean, var.max(1e-12))
            })
            .collect()
    }

    /// Training input `i`.
    fn point(&self, i: usize) -> Vec<f64> {
        self.columns.iter().map(|c| c[i]).collect()
    }
}

/// log E[max(best − f, 0)] for f ~ N(μ, σ²), stable far into the tail.
fn log_ei(best: f64, mean: f64, var: f64) -> f64 {
    let sigma = var.sqrt();
    let z = (best - mean) / sigma;
    let log_phi = -0.5 * z * z - 0.5 * (2.0 * std::f64::consts::PI).ln();
    let log_h = if z > -6.0 {
        (z * super::normal::normal_cdf(z) + log_phi.exp()).max(1e-300).ln()
    } else {
        // φ(z) + zΦ(z) = φ(z)/z²·(1 − 3/z² + 15/z⁴ − …) as z → −∞.
        let z2 = z * z;
        log_phi - z2.ln() + (1.0 - 3.0 / z2 + 15.0 / (z2 * z2)).ln()
    };
    sigma.ln() + log_h
}

/// What the GP is told about one trial (or, under a pruner, about one
/// complete trial at an earlier step).
#[derive(Clone, Copy)]
struct Observation<'a> {
    trial: &'a FrozenTrial,
    value: f64,
    /// A final value: the incumbent for expected improvement is the best of these.
    complete: bool,
    /// The step the value was reached by, when it is not the end of training.
    step: Option<u64>,
}

/// The training progress of an observation, as one more input in [0, 1]:
/// ln(step) / ln(longest step seen), with every final value at 1 — the
/// fidelity of multi-fidelity Bayesian optimisation (as in Kandasamy et
/// al., "Multi-fidelity Bayesian Optimisation with Continuous
/// Approximations", ICML 2017, without the cost model). Only under a pruner:
/// with no pruned trial every value is final and the input is left out.
struct Fidelity {
    longest: u64,
    /// The steps at which pruned trials typically stopped (a pruner's
    /// rungs): each one at least a tenth of them stopped at, or the median
    /// if none is so common. At most ten.
    typical_stops: Vec<u64>,
}

impl Fidelity {
    fn of(observed: &[Observation]) -> Option<Self> {
        let mut stops: Vec<u64> = observed.iter().filter(|o| !o.complete).filter_map(|o| o.step).collect();
        if stops.is_empty() {
            return None;
        }
        stops.sort_unstable();
        let median = stops[stops.len() / 2];
        let mut typical_stops: Vec<u64> =
            stops.chunk_by(|a, b| a == b).filter(|same| 10 * same.len() >= stops.len()).map(|same| same[0]).collect();
        if typical_stops.is_empty() {
            typical_stops.push(median);
        }
        let longest = observed.iter().filter_map(|o| o.trial.intermediate.keys().next_back()).max().copied()?;
        Some(Self { longest: longest.max(2), typical_stops })
    }

    fn coordinate(&self, step: u64) -> f64 {
        ((step.max(1) as f64).ln() / (self.longest as f64).ln()).clamp(0.0, 1.0)
    }
}

/// What the GP is told about a study: complete trials at their value, and
/// pruned ones at the best value they reported — what tells the model that
/// their region is poor (under a pruner most trials end pruned, and a model
/// of the complete ones alone would see almost nothing). The best, not the
/// last: a complete trial's value is its best step too (a tune restores the
/// best epoch's weights).
///
/// Failed trials (in a tune, runs that diverged) count as the worst value
/// seen: ignored, as Optuna ignores them, their region looks unexplored and
/// is proposed again and again.
///
/// Under a pruner a pruned trial's value is an early one, beside the
/// complete trials' final values: the step becomes one more input (see
/// `Fidelity`), and each complete trial is observed as well at the steps
/// where pruned ones typically stopped, so the model learns how much values
/// fall between there and the end.
fn observations(view: &StudyView) -> (Vec<Observation<'_>>, Option<Fidelity>) {
    let direction = view.direction;
    let mut observed: Vec<Observation> = view
        .trials
        .iter()
        .filter_map(|t| match t.state {
            TrialState::Complete(v) => Some(Observation { trial: t, value: v, complete: true, step: None }),
            TrialState::Pruned => {
                let &last = t.intermediate.keys().next_back()?;
                let v = t.best_intermediate(direction).filter(|v| v.is_finite())?;
                Some(Observation { trial: t, value: v, complete: false, step: Some(last) })
            }
            _ => None,
        })
        .collect();
    let worst = observed.iter().map(|o| o.value).reduce(|a, b| if direction.better(a, b) { b } else { a });
    if let Some(worst) = worst {
        let failed = view.trials.iter().filter(|t| t.state == TrialState::Fail);
        observed.extend(failed.map(|t| Observation { trial: t, value: worst, complete: false, step: None }));
    }
    let fidelity = Fidelity::of(&observed);
    if let Some(f) = &fidelity {
        let earlier: Vec<Observation> = observed
            .iter()
            .filter(|o| o.complete)
            .flat_map(|o| f.typical_stops.iter().map(move |&stop| (o, stop)))
            .filter(|(o, stop)| o.trial.intermediate.keys().next_back().is_some_and(|last| last > stop))
            .filter_map(|(o, stop)| {
                let v = o.trial.best_intermediate_until(direction, stop).filter(|v| v.is_finite())?;
                Some(Observation { value: v, complete: false, step: Some(stop), ..*o })
            })
            .collect();
        observed.extend(earlier);
    }
    (observed, fidelity)
}

impl GpSampler {
    fn rng(&self, trial: &FrozenTrial) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(stable_hash(&[b"gp", &self.seed.to_le_bytes(), &trial.number.to_le_bytes()]))
    }
}

impl Sampler for GpSampler {
    fn sample_relative(&self, view: &StudyView, trial: &FrozenTrial) -> BTreeMap<String, f64> {
        if !trial.fixed_params.is_empty() {
            return BTreeMap::new();
        }
        let (observed, fidelity) = observations(view);
        // Startup counts trials with a value of their own (not failed ones,
        // nor complete trials' earlier steps).
        let valued = observed.iter().filter(|o| o.complete || o.trial.state == TrialState::Pruned).count();
        if valued < self.n_startup_trials {
            return BTreeMap::new();
        }
        let sign = if view.direction == Direction::Maximize { -1.0 } else { 1.0 };
        let names = view.intersection_space();
        if names.is_empty() || names.len() > 64 {
            return BTreeMap::new();
        }
        let n_params = names.len();
        let mut axes: Vec<Axis> = names.iter().map(|(_, d)| axis_of(d)).collect();
        if fidelity.is_some() {
            axes.push(Axis::Numeric { levels: 0 });
        }
        // A point in the cube; under a pruner its last coordinate is the
        // fidelity, 1 (the end of training) unless a step is given.
        let point = |t: &FrozenTrial, step: Option<u64>| -> Vec<f64> {
            let mut p: Vec<f64> = names.iter().map(|(n, d)| encode(d, t.internal(n).unwrap_or(0.0))).collect();
            if let Some(f) = &fidelity {
                p.push(step.map_or(1.0, |s| f.coordinate(s)));
            }
            p
        };
        let has_all = |t: &FrozenTrial| names.iter().all(|(n, d)| t.distributions.get(n) == Some(d));
        let (mut x, mut y, mut complete): (Vec<Vec<f64>>, Vec<f64>, Vec<bool>) = (Vec::new(), Vec::new(), Vec::new());
        for o in observed.iter().filter(|o| has_all(o.trial)) {
            x.push(point(o.trial, o.step));
            y.push(sign * o.value);
            complete.push(o.complete);
        }
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let std = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt().max(1e-12);
        let ys: Vec<f64> = y.iter().map(|v| (v - mean) / std).collect();
        // The incumbent EI improves on: the best complete trial.
        let best = ys.iter().zip(&complete).filter(|(_, c)| **c).map(|(v, _)| *v).fold(f64::INFINITY, f64::min);
        let best = if best.is_finite() { best } else { ys.iter().copied().fold(f64::INFINITY, f64::min) };
        let mut rng = self.rng(trial);
        let warm = self.warm.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some((mut gp, next_warm)) = Gp::fit(&axes, x.clone(), &ys, &mut rng, warm.as_ref()) else {
            return BTreeMap::new();
        };
        *self.warm.lock().unwrap_or_else(|e| e.into_inner()) = Some(next_warm);
        // Kriging believer: pending trials join at their posterior mean.
        let pending: Vec<Vec<f64>> = view
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Running && t.number != trial.number && has_all(t))
            .map(|t| point(t, None))
            .collect();
        if !pending.is_empty() {
            let (mut bx, mut by) = (x, ys.clone());
            by.extend(gp.predict_many(&pending).into_iter().map(|(mean, _)| mean));
            bx.extend(pending);
            if let Some(believed) = Gp::condition(&axes, gp.kernel.clone(), bx, &by) {
                gp = believed;
            }
        }
        let score_all = |points: &[Vec<f64>]| -> Vec<f64> {
            gp.predict_many(points).into_iter().map(|(m, v)| log_ei(best, m, v)).collect()
        };
        // Candidates: scrambled Sobol points, and neighbours of the best observations.
        // Candidates are always at the end of training (fidelity 1).
        let dims = n_params as u32;
        let sobol_seed = (rng.random::<u64>() & 0xffff_ffff) as u32;
        let mut candidates: Vec<Vec<f64>> = (0..self.n_candidates as u32)
            .map(|i| {
                let mut c: Vec<f64> = (0..dims)
                    .map(|d| {
                        let u = sobol_burley::sample(i, d % 256, sobol_seed ^ (d / 256)) as f64;
                        match axes[d as usize] {
                            Axis::Categorical { n } => (u * n as f64).floor().min(n as f64 - 1.0),
                            Axis::Numeric { .. } => u,
                        }
                    })
                    .collect();
                c.resize(axes.len(), 1.0);
                c
            })
            .collect();
        let mut order: Vec<usize> = (0..ys.len()).collect();
        order.sort_by(|&a, &b| ys[a].total_cmp(&ys[b]));
        for &i in order.iter().take(5) {
            for _ in 0..20 {
                let mut c = gp.point(i);
                for (v, a) in c.iter_mut().zip(&axes).take(n_params) {
                    if let Axis::Numeric { .. } = a {
                        *v += 0.05 * rng.random_range(-1.0..1.0);
                    }
                }
                c[n_params..].fill(1.0);
                candidates.push(c);
            }
        }
        for c in &mut candidates {
            snap(&axes, c);
        }
        let mut scored: Vec<(f64, Vec<f64>)> = score_all(&candidates).into_iter().zip(candidates).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Local refinement of the best few: a shrinking coordinate search,
        // moving ints and steps by whole levels and trying every category;
        // the starts move together so each step is one batched prediction.
        let mut starts: Vec<(f64, Vec<f64>)> = scored.into_iter().take(3).collect();
        for round in 0..8 {
            let step = 0.1 / (1 << round) as f64;
            for d in 0..n_params {
                let mut tries: Vec<(usize, Vec<f64>)> = Vec::new();
                for (k, (_, p)) in starts.iter().enumerate() {
                    let moves: Vec<f64> = match axes[d] {
                        Axis::Categorical { n } => (0..n).map(|c| c as f64).collect(),
                        Axis::Numeric { levels: 0 } => vec![p[d] - step, p[d] + step],
                        Axis::Numeric { levels } => vec![p[d] - 1.0 / levels as f64, p[d] + 1.0 / levels as f64],
                    };
                    for m in moves {
                        let mut q = p.clone();
                        q[d] = m;
                        snap(&axes, &mut q);
                        tries.push((k, q));
                    }
                }
                let points: Vec<Vec<f64>> = tries.iter().map(|(_, q)| q.clone()).collect();
                for (s, (k, q)) in score_all(&points).into_iter().zip(tries) {
                    if s > starts[k].0 {
                        starts[k] = (s, q);
                    }
                }
            }
        }
        let best_point = starts.into_iter().fold(None::<(f64, Vec<f64>)>, |b, c| match b {
            Some(b) if b.0 >= c.0 => Some(b),
            _ => Some(c),
        });
        let Some(best_point) = best_point else { return BTreeMap::new() };
        names
            .iter()
            .zip(&best_point.1)
            .map(|((name, d), &u)| {
                let internal = match d {
                    Distribution::Categorical { .. } => u,
                    _ => d.from_unit(u),
                };
                ((*name).clone(), internal)
            })
            .collect()
    }

    fn sample_independent(
        &self,
        view: &StudyView,
        trial: &FrozenTrial,
        name: &str,
        distribution: &Distribution,
    ) -> f64 {
        self.fallback.sample_independent(view, trial, name, distribution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ei_matches_the_closed_form_and_stays_finite_in_the_tail() {
        // EI(best 0, μ 0, σ 1) = φ(0) = 0.3989422804014327
        assert!((log_ei(0.0, 0.0, 1.0) - 0.3989422804014327f64.ln()).abs() < 1e-10);
        // Continuity across the switch to the asymptotic form at z = −6: the
        // slope there is about |z| = 6, so a step of 2e-4 moves it by ~1.2e-3.
        let (a, b) = (log_ei(-5.9999, 0.0, 1.0), log_ei(-6.0001, 0.0, 1.0));
        assert!((a - b).abs() < 2e-3, "{a} {b}");
        assert!(log_ei(-40.0, 0.0, 1.0).is_finite());
    }

    #[test]
    fn the_posterior_gradient_matches_finite_differences() {
        let axes = [Axis::Numeric { levels: 0 }, Axis::Categorical { n: 3 }, Axis::Numeric { levels: 4 }];
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x: Vec<Vec<f64>> = (0..15)
            .map(|_| {
                vec![rng.random::<f64>(), rng.random_range(0..3) as f64, (rng.random_range(0..4) as f64 + 0.5) / 4.0]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|p| (4.0 * p[0]).sin() + 0.3 * p[1] - p[2]).collect();
        let theta = vec![-0.5, 0.3, -1.0, 0.2, -3.0];
        let mut g = vec![0.0; 5];
        let pairs = Pairs::new(&axes, &x);
        neg_log_posterior(&pairs, &y, &theta, &mut g);
        let mut scratch = vec![0.0; 5];
        for i in 0..5 {
            let h = 1e-6;
            let (mut p, mut m) = (theta.clone(), theta.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (neg_log_posterior(&pairs, &y, &p, &mut scratch)
                - neg_log_posterior(&pairs, &y, &m, &mut scratch))
                / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()), "theta {i}: {} vs {fd}", g[i]);
        }
    }

    #[test]
    fn a_conditional_parameter_is_searched_not_drawn_at_random() {
        // `x` exists only in family "a" trials, so it is outside the space
        // all trials share and the GP does not model it: the fallback must
        // still learn where it is good. Uniform draws give E|x − 0.9| ≈ 0.41.
        let study = crate::Study::in_memory("c", Direction::Minimize, Box::new(GpSampler::new(5))).unwrap();
        study
            .optimize(
                |trial| {
                    let family = trial.suggest_categorical("family", &["a", "b"])?;
                    Ok(if family == "a" { (trial.suggest_float("x", 0.0, 1.0)? - 0.9).powi(2) } else { 0.5 })
                },
                80,
                None,
                1,
            )
            .unwrap();
        let late: Vec<f64> = study
            .trials()
            .unwrap()
            .iter()
            .filter(|t| t.number >= 40)
            .filter_map(|t| t.params.get("x").and_then(serde_json::Value::as_f64))
            .collect();
        assert!(late.len() >= 10, "the GP favours family a: {} late trials have x", late.len());
        let miss = late.iter().map(|x| (x - 0.9).abs()).sum::<f64>() / late.len() as f64;
        assert!(miss < 0.2, "mean |x − 0.9| over the last 40 trials: {miss}");
    }

    #[test]
    fn under_a_pruner_the_gp_learns_how_far_values_fall_after_the_rung() {
        // Every run's value falls by 0.5 from step 1 to step 100, linearly in
        // ln(step), to f(x) = (x − 0.3)² at the end: a trial stopped at step
        // 10 has reported f + 0.25, at step 30 about f + 0.13.
        let f = |x: f64| (x - 0.3).powi(2);
        let at = |x: f64, s: u64| f(x) + 0.5 * (1.0 - (s as f64).ln() / 100f64.ln());
        let dist = Distribution::Float { low: 0.0, high: 1.0, log: false, step: None };
        let make = |number: u64, x: f64, steps: u64| {
            let state = if steps == 100 { TrialState::Complete(f(x)) } else { TrialState::Pruned };
            let mut t = FrozenTrial::new(number, number, state);
            t.params.insert("x".into(), serde_json::json!(x));
            t.distributions.insert("x".into(), dist.clone());
            t.intermediate = (1..=steps).map(|s| (s, at(x, s))).collect();
            t
        };
        // Complete runs at 0, 0.1, …, 1; pruned ones between, ten at step 10
        // and two at step 30.
        let mut trials: Vec<FrozenTrial> = (0..=10).map(|i| make(i, i as f64 / 10.0, 100)).collect();
        for i in 0..12 {
            trials.push(make(11 + i, 0.05 + (i % 10) as f64 / 10.0, if i < 10 { 10 } else { 30 }));
        }
        let view = StudyView { direction: Direction::Minimize, trials: std::sync::Arc::new(trials) };
        let (observed, fidelity) = observations(&view);
        let fidelity = fidelity.expect("pruned trials add the fidelity input");
        assert_eq!(fidelity.typical_stops, [10, 30], "the steps a tenth or more of the pruned trials stopped at");
        assert_eq!(fidelity.coordinate(10), 0.5);
        // Each complete trial at its end and at both stops; each pruned one once.
        assert_eq!(observed.len(), 11 * 3 + 12);
        let pruned = observed.iter().find(|o| o.trial.number == 11).unwrap();
        assert_eq!((pruned.step, pruned.complete), (Some(10), false));
        assert!((pruned.value - (f(0.05) + 0.25)).abs() < 1e-12);

        let axes = [Axis::Numeric { levels: 0 }, Axis::Numeric { levels: 0 }];
        let point =
            |o: &Observation| vec![o.trial.internal("x").unwrap(), o.step.map_or(1.0, |s| fidelity.coordinate(s))];
        let x: Vec<Vec<f64>> = observed.iter().map(point).collect();
        let y: Vec<f64> = observed.iter().map(|o| o.value).collect();
        let (gp, _) = Gp::fit(&axes, x, &y, &mut ChaCha8Rng::seed_from_u64(1), None).unwrap();
        // Where only pruned trials ran (x = 0.55), the model predicts the end
        // of training at f, not at the rung's f + 0.25.
        let (end, _) = gp.predict_many(&[vec![0.55, 1.0]])[0];
        let (rung, _) = gp.predict_many(&[vec![0.55, 0.5]])[0];
        assert!((end - f(0.55)).abs() < 0.03, "end of training at 0.55: {end} vs {}", f(0.55));
        assert!((rung - at(0.55, 10)).abs() < 0.03, "step 10 at 0.55: {rung} vs {}", at(0.55, 10));
    }

    #[test]
    fn a_fitted_gp_interpolates_a_smooth_function() {
        let axes = [Axis::Numeric { levels: 0 }];
        let x: Vec<Vec<f64>> = (0..12).map(|i| vec![i as f64 / 11.0]).collect();
        let y: Vec<f64> = x.iter().map(|p| (6.0 * p[0]).sin()).collect();
        let (gp, _) = Gp::fit(&axes, x, &y, &mut ChaCha8Rng::seed_from_u64(0), None).unwrap();
        for t in [0.13, 0.5, 0.77] {
            let (m, v) = gp.predict_many(&[vec![t]])[0];
            assert!((m - (6.0f64 * t).sin()).abs() < 0.05 && v < 0.05, "at {t}: {m} ± {v}");
        }
    }
}
