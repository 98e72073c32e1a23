//! The Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for
//! Hyper-Parameter Optimization", NeurIPS 2011), in Optuna's modern form
//! (Watanabe, "Tree-Structured Parzen Estimator: Understanding Its Algorithm
//! Components and Their Roles for Better Empirical Performance", 2023).
//!
//! Complete trials are split into the best γ(n) = min(⌈0.1·n⌉, 25) ("below")
//! and the rest ("above"). Each group becomes a Parzen estimator — a weighted
//! mixture of one kernel per observation plus a wide prior kernel — l(x) for
//! below and g(x) for above. Candidates are drawn from l, and the one with the
//! largest l(x)/g(x) (the expected-improvement proxy) is proposed.
//!
//! - Multivariate (default): the parameters every complete trial shares with
//!   the same distribution are sampled jointly, with product kernels and a
//!   Scott-style bandwidth; any other parameter (a conditional one) falls back
//!   to univariate TPE over the trials that have it — a simple group
//!   decomposition.
//! - Constant liar (default): running trials join the "above" group, so
//!   parallel workers are pushed away from points already being evaluated.
//! - Startup: the first `n_startup_trials` trials are sampled at random.
//! - Pruned trials count as worse than every complete one.
//! - Continuous kernels are truncated normals in the distribution's working
//!   space (log space for log parameters); integers and stepped floats are
//!   sampled continuously over their bins and rounded; categoricals use
//!   categorical kernels that put most mass on the observed choice.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Sampler, stable_hash};
use crate::{Direction, Distribution, FrozenTrial, StudyView, TrialState};

/// Observations' internal values, one row per trial.
type Points = Vec<Vec<f64>>;

/// See the module documentation.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `n_startup_trials` | 10 | random trials before modelling |
/// | `n_ei_candidates` | 24 | candidates drawn from l(x) per proposal |
/// | `multivariate` | true | joint kernels over the shared parameters |
/// | `constant_liar` | true | running trials count as bad observations |
/// | `prior_weight` | 1.0 | weight of the wide prior kernel |
#[derive(Clone, Debug)]
pub struct TpeSampler {
    pub seed: u64,
    pub n_startup_trials: usize,
    pub n_ei_candidates: usize,
    pub multivariate: bool,
    pub constant_liar: bool,
    pub prior_weight: f64,
}

impl TpeSampler {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            n_startup_trials: 10,
            n_ei_candidates: 24,
            multivariate: true,
            constant_liar: true,
            prior_weight: 1.0,
        }
    }

    fn rng(&self, trial: &FrozenTrial, name: &str) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(stable_hash(&[
            b"tpe",
            &self.seed.to_le_bytes(),
            &trial.number.to_le_bytes(),
            name.as_bytes(),
        ]))
    }

    /// The observations of `names`, split into below and above, each with
    /// its points (internal values, in `names` order) in trial-number order.
    fn split(
        &self,
        view: &StudyView,
        trial: &FrozenTrial,
        names: &[(&String, &Distribution)],
    ) -> Option<(Points, Points)> {
        let has_all = |t: &FrozenTrial| names.iter().all(|(n, d)| t.distributions.get(*n) == Some(*d));
        let point = |t: &FrozenTrial| {
            names.iter().map(|(n, _)| t.internal(n).expect("has the parameter")).collect::<Vec<f64>>()
        };
        let mut complete: Vec<&FrozenTrial> = view.complete().filter(|t| has_all(t)).collect();
        if complete.len() < self.n_startup_trials.max(1) {
            return None;
        }
        complete.sort_by(|a, b| {
            let (x, y) = (a.value().unwrap_or(f64::NAN), b.value().unwrap_or(f64::NAN));
            match view.direction {
                Direction::Minimize => x.total_cmp(&y),
                Direction::Maximize => y.total_cmp(&x),
            }
        });
        let n_below = (complete.len() as f64 * 0.1).ceil().min(25.0) as usize;
        let mut below: Vec<&FrozenTrial> = complete[..n_below].to_vec();
        let mut above: Vec<&FrozenTrial> = complete[n_below..].to_vec();
        above.extend(view.trials.iter().filter(|t| {
            t.number != trial.number
                && has_all(t)
                && (t.state == TrialState::Pruned || (self.constant_liar && t.state == TrialState::Running))
        }));
        below.sort_by_key(|t| t.number);
        above.sort_by_key(|t| t.number);
        Some((below.into_iter().map(point).collect(), above.into_iter().map(point).collect()))
    }

    /// Proposes internal values for `names` (jointly when there are several).
    fn propose(
        &self,
        view: &StudyView,
        trial: &FrozenTrial,
        names: &[(&String, &Distribution)],
        rng: &mut ChaCha8Rng,
    ) -> Option<Vec<f64>> {
        let (below, above) = self.split(view, trial, names)?;
        let dists: Vec<&Distribution> = names.iter().map(|(_, d)| *d).collect();
        let multivariate = names.len() > 1;
        let l = Parzen::new(&dists, &below, self.prior_weight, multivariate);
        let g = Parzen::new(&dists, &above, self.prior_weight, multivariate);
        let mut best: Option<(f64, Vec<f64>)> = None;
        for _ in 0..self.n_ei_candidates.max(1) {
            let x = l.sample(rng);
            let score = l.log_pdf(&x) - g.log_pdf(&x);
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, x));
            }
        }
        let (_, x) = best?;
        Some(x.iter().zip(&dists).map(|(&v, d)| to_internal(d, v)).collect())
    }
}

impl Sampler for TpeSampler {
    fn sample_relative(&self, view: &StudyView, trial: &FrozenTrial) -> BTreeMap<String, f64> {
        if !self.multivariate || !trial.fixed_params.is_empty() {
            return BTreeMap::new();
        }
        // The parameters every complete trial has, with one distribution each.
        let names = view.intersection_space();
        if names.is_empty() {
            return BTreeMap::new();
        }
        let mut rng = self.rng(trial, "");
        match self.propose(view, trial, &names, &mut rng) {
            Some(x) => names.iter().map(|(n, _)| (*n).clone()).zip(x).collect(),
            None => BTreeMap::new(),
        }
    }

    fn sample_independent(
        &self,
        view: &StudyView,
        trial: &FrozenTrial,
        name: &str,
        distribution: &Distribution,
    ) -> f64 {
        let mut rng = self.rng(trial, name);
        let owned = name.to_string();
        let names = [(&owned, distribution)];
        match self.propose(view, trial, &names, &mut rng) {
            Some(x) => x[0],
            None => distribution.from_unit(rng.random::<f64>()),
        }
    }
}

/// A parameter's working space: (low, high) of the continuous coordinate
/// the kernels live in, or the number of choices of a categorical.
enum Axis {
    Continuous { low: f64, high: f64 },
    Categorical { n: usize },
}

fn axis(d: &Distribution) -> Axis {
    match *d {
        Distribution::Float { low, high, log: true, .. } => Axis::Continuous { low: low.ln(), high: high.ln() },
        Distribution::Float { low, high, step: Some(s), .. } => {
            Axis::Continuous { low: low - s / 2.0, high: high + s / 2.0 }
        }
        Distribution::Float { low, high, .. } => Axis::Continuous { low, high },
        Distribution::Int { low, high, log: true, .. } => {
            Axis::Continuous { low: (low as f64 - 0.5).max(0.5).ln(), high: (high as f64 + 0.5).ln() }
        }
        Distribution::Int { low, high, step, .. } => {
            Axis::Continuous { low: low as f64 - step as f64 / 2.0, high: high as f64 + step as f64 / 2.0 }
        }
        Distribution::Categorical { ref choices } => Axis::Categorical { n: choices.len() },
    }
}

/// The working-space coordinate of an internal value.
fn to_working(d: &Distribution, v: f64) -> f64 {
    match d {
        Distribution::Float { log: true, .. } | Distribution::Int { log: true, .. } => v.ln(),
        _ => v,
    }
}

/// The internal value (on the distribution's grid) of a working coordinate.
fn to_internal(d: &Distribution, w: f64) -> f64 {
    let snap = |v: f64| {
        // Round to the nearest grid value via the unit map's inverse.
        match *d {
            Distribution::Float { low, high, log: true, .. } => v.clamp(low, high),
            Distribution::Float { low, step: Some(s), .. } => {
                let top = d.grid().and_then(|g| g.last().copied()).unwrap_or(low);
                (low + ((v - low) / s).round() * s).clamp(low, top)
            }
            Distribution::Float { low, high, .. } => v.clamp(low, high),
            Distribution::Int { low, high, step, .. } => {
                let k = ((v - low as f64) / step as f64).round() as i64;
                let top = low + (high - low) / step * step;
                (low + k * step).clamp(low, top) as f64
            }
            Distribution::Categorical { ref choices } => (v.round() as i64).clamp(0, choices.len() as i64 - 1) as f64,
        }
    };
    match d {
        Distribution::Float { log: true, .. } | Distribution::Int { log: true, .. } => snap(w.exp()),
        _ => snap(w),
    }
}

/// A weighted mixture of product kernels, one per observation plus a prior.
struct Parzen {
    /// Mixture weights (normalised), the prior last.
    weights: Vec<f64>,
    /// Per component, per dimension: (μ, σ) for continuous axes, or the
    /// probabilities of each choice for categorical ones.
    kernels: Vec<Vec<Kernel>>,
}

enum Kernel {
    Normal { mu: f64, sigma: f64, low: f64, high: f64 },
    Categorical(Vec<f64>),
}

/// Optuna's weights by age: equal for the last 25 observations, ramping down
/// linearly for older ones.
fn age_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    (0..ramp)
        .map(|i| 1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / ramp.max(2).saturating_sub(1) as f64)
        .chain(std::iter::repeat_n(1.0, 25))
        .collect()
}

impl Parzen {
    fn new(dists: &[&Distribution], points: &[Vec<f64>], prior_weight: f64, multivariate: bool) -> Self {
        let n = points.len();
        let axes: Vec<Axis> = dists.iter().map(|d| axis(d)).collect();
        let mut weights = age_weights(n);
        weights.push(prior_weight);
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let mut kernels: Vec<Vec<Kernel>> = (0..=n).map(|_| Vec::with_capacity(dists.len())).collect();
        for (j, (d, ax)) in dists.iter().zip(&axes).enumerate() {
            match *ax {
                Axis::Continuous { low, high } => {
                    let width = high - low;
                    let mus: Vec<f64> = points.iter().map(|p| to_working(d, p[j]).clamp(low, high)).collect();
                    let sigmas = if multivariate {
                        // Scott-style bandwidth shared by the observations.
                        let s = 0.2 * (n.max(1) as f64).powf(-1.0 / (dists.len() as f64 + 4.0)) * width;
                        vec![s; n]
                    } else {
                        neighbour_bandwidths(&mus, low, high)
                    };
                    let min_sigma = width / (100f64).min(1.0 + n as f64);
                    for (i, (&mu, &s)) in mus.iter().zip(&sigmas).enumerate() {
                        kernels[i].push(Kernel::Normal { mu, sigma: s.clamp(min_sigma, width), low, high });
                    }
                    kernels[n].push(Kernel::Normal { mu: 0.5 * (low + high), sigma: width, low, high });
                }
                Axis::Categorical { n: k } => {
                    for (i, p) in points.iter().enumerate() {
                        let mut probs = vec![prior_weight / k as f64; k];
                        probs[p[j] as usize] += 1.0;
                        let s: f64 = probs.iter().sum();
                        kernels[i].push(Kernel::Categorical(probs.into_iter().map(|v| v / s).collect()));
                    }
                    kernels[n].push(Kernel::Categorical(vec![1.0 / k as f64; k]));
                }
            }
        }
        Self { weights, kernels }
    }

    /// A point drawn from the mixture, in working coordinates (category
    /// indices for categoricals).
    fn sample(&self, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let mut u = rng.random::<f64>();
        let mut component = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            if u < *w {
                component = i;
                break;
            }
            u -= w;
        }
        self.kernels[component]
            .iter()
            .map(|k| match k {
                Kernel::Normal { mu, sigma, low, high } => truncated_normal(rng, *mu, *sigma, *low, *high),
                Kernel::Categorical(probs) => {
                    let mut u = rng.random::<f64>();
                    probs
                        .iter()
                        .position(|p| {
                            let hit = u < *p;
                            u -= p;
                            hit
                        })
                        .unwrap_or(probs.len() - 1) as f64
                }
            })
            .collect()
    }

    /// log of the mixture density at `x` (working coordinates).
    fn log_pdf(&self, x: &[f64]) -> f64 {
        let logs: Vec<f64> = self
            .kernels
            .iter()
            .zip(&self.weights)
            .map(|(ks, w)| {
                w.ln()
                    + ks.iter()
                        .zip(x)
                        .map(|(k, &v)| match k {
                            Kernel::Normal { mu, sigma, low, high } => {
                                truncated_normal_log_pdf(v, *mu, *sigma, *low, *high)
                            }
                            Kernel::Categorical(probs) => probs[v as usize].ln(),
                        })
                        .sum::<f64>()
            })
            .collect();
        let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return max;
        }
        max + logs.iter().map(|l| (l - max).exp()).sum::<f64>().ln()
    }
}

/// Univariate bandwidths: each observation's larger gap to its sorted
/// neighbours (the bounds at the ends), as in Bergstra's TPE.
fn neighbour_bandwidths(mus: &[f64], low: f64, high: f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..mus.len()).collect();
    order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
    let mut sigmas = vec![0.0; mus.len()];
    for (rank, &i) in order.iter().enumerate() {
        let left = if rank == 0 { low } else { mus[order[rank - 1]] };
        let right = if rank + 1 == order.len() { high } else { mus[order[rank + 1]] };
        sigmas[i] = (mus[i] - left).max(right - mus[i]);
    }
    sigmas
}

fn truncated_normal(rng: &mut ChaCha8Rng, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    // Inverse-CDF sampling between the bounds' CDF values.
    let (a, b) = (normal_cdf((low - mu) / sigma), normal_cdf((high - mu) / sigma));
    if b - a < 1e-12 {
        return mu.clamp(low, high);
    }
    let u = a + rng.random::<f64>() * (b - a);
    (mu + sigma * normal_quantile(u)).clamp(low, high)
}

fn truncated_normal_log_pdf(x: f64, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    let z = (x - mu) / sigma;
    let mass = (normal_cdf((high - mu) / sigma) - normal_cdf((low - mu) / sigma)).max(1e-300);
    -0.5 * z * z - (sigma * (2.0 * std::f64::consts::PI).sqrt()).ln() - mass.ln()
}

/// Φ(z), to about 1e-14 (via erfc's continued fraction / series split).
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// erfc with W. J. Cody's rational approximations' accuracy class, through
/// the complementary error function's Chebyshev fit (Numerical Recipes 3rd ed. §6.2.2).
#[allow(clippy::excessive_precision)] // the published coefficients, as published
fn erfc(x: f64) -> f64 {
    const COF: [f64; 28] = [
        -1.3026537197817094,
        6.4196979235649026e-1,
        1.9476473204185836e-2,
        -9.561514786808631e-3,
        -9.46595344482036e-4,
        3.66839497852761e-4,
        4.2523324806907e-5,
        -2.0278578112534e-5,
        -1.624290004647e-6,
        1.303655835580e-6,
        1.5626441722e-8,
        -8.5238095915e-8,
        6.529054439e-9,
        5.059343495e-9,
        -9.91364156e-10,
        -2.27365122e-10,
        9.6467911e-11,
        2.394038e-12,
        -6.886027e-12,
        8.94487e-13,
        3.13092e-13,
        -1.12708e-13,
        3.81e-16,
        7.106e-15,
        -1.523e-15,
        -9.4e-17,
        1.21e-16,
        -2.8e-17,
    ];
    let z = x.abs();
    let t = 2.0 / (2.0 + z);
    let ty = 4.0 * t - 2.0;
    let (mut d, mut dd) = (0.0, 0.0);
    for &c in COF[1..].iter().rev() {
        let tmp = d;
        d = ty * d - dd + c;
        dd = tmp;
    }
    let erfc_z = t * (-z * z + 0.5 * (COF[0] + ty * d) - dd).exp();
    if x >= 0.0 { erfc_z } else { 2.0 - erfc_z }
}

/// Φ⁻¹(p) (Acklam's algorithm, refined by one Halley step).
#[allow(clippy::excessive_precision)]
fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let x = if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - 0.02425 {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_and_quantile_match_reference_values() {
        // scipy.stats.norm.cdf(1.0) = 0.8413447460685429, cdf(-2.5) = 0.0062096653257761
        assert!((normal_cdf(1.0) - 0.8413447460685429).abs() < 1e-12);
        assert!((normal_cdf(-2.5) - 0.0062096653257761).abs() < 1e-12);
        // scipy.stats.norm.ppf(0.975) = 1.959963984540054
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-9);
        for p in [1e-10, 0.01, 0.3, 0.5, 0.9, 0.999999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-12 * p.max(1e-3) * 1e3, "{p}");
        }
    }

    #[test]
    fn truncated_normal_density_integrates_to_one() {
        let (mu, sigma, low, high) = (0.3, 0.5, 0.0, 1.0);
        let n = 100_000;
        let integral: f64 = (0..n)
            .map(|i| truncated_normal_log_pdf(low + (i as f64 + 0.5) / n as f64, mu, sigma, low, high).exp())
            .sum::<f64>()
            / n as f64;
        assert!((integral - 1.0).abs() < 1e-6, "{integral}");
    }

    #[test]
    fn age_weights_ramp_up_to_the_last_25() {
        assert_eq!(age_weights(3), [1.0; 3]);
        let w = age_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && w[4] == 1.0 && w[29] == 1.0);
        assert!(w[..5].windows(2).all(|p| p[0] < p[1]));
    }
}
