//! CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016) with IPOP
//! restarts (Auger & Hansen, "A Restart CMA Evolution Strategy With
//! Increasing Population Size", CEC 2005), for continuous spaces and larger
//! budgets.
//!
//! The float and int parameters every complete trial shares are searched
//! jointly in the unit cube of their working space (log space for log
//! parameters; ints rounded); categoricals are drawn at random. Trials are
//! handed out generation by generation: trial n gets a point of the current
//! search distribution, and once λ trials of a generation are complete the
//! distribution is updated. The state lives in the sampler (one process);
//! sequentially, a seeded run is reproducible.

// Small dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, StandardNormal};

use super::{RandomSampler, Sampler, stable_hash};
use crate::{Direction, Distribution, FrozenTrial, StudyView};

/// See the module documentation. `sigma0` is the initial step size in the
/// unit cube (default 1/6: the cube's width over six, as Optuna's).
pub struct CmaEsSampler {
    seed: u64,
    sigma0: f64,
    n_startup_trials: usize,
    fallback: RandomSampler,
    state: Mutex<Option<Run>>,
}

impl CmaEsSampler {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            sigma0: 1.0 / 6.0,
            n_startup_trials: 1,
            fallback: RandomSampler::new(seed),
            state: Mutex::new(None),
        }
    }
}

/// One CMA-ES run over a fixed set of parameters (restarted with a larger
/// population when it stagnates).
struct Run {
    names: Vec<(String, Distribution)>,
    es: Es,
    restarts: u32,
    /// Trial number → generation it was sampled for (this run's trials only).
    generation_of: BTreeMap<u64, u64>,
    /// The last complete trial number folded into the state.
    told: std::collections::BTreeSet<u64>,
}

/// The state of the evolution strategy.
struct Es {
    n: usize,
    lambda: usize,
    mu: usize,
    weights: Vec<f64>,
    mu_eff: f64,
    c_sigma: f64,
    d_sigma: f64,
    c_c: f64,
    c_1: f64,
    c_mu: f64,
    chi_n: f64,
    mean: Vec<f64>,
    sigma: f64,
    c: Vec<Vec<f64>>,
    p_sigma: Vec<f64>,
    p_c: Vec<f64>,
    /// C = B·diag(d²)·Bᵀ.
    b: Vec<Vec<f64>>,
    d: Vec<f64>,
    generation: u64,
}

impl Es {
    fn new(n: usize, lambda: usize, mean: Vec<f64>, sigma: f64) -> Self {
        let mu = lambda / 2;
        let raw: Vec<f64> = (1..=mu).map(|i| ((lambda as f64 + 1.0) / 2.0).ln() - (i as f64).ln()).collect();
        let total: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|w| w / total).collect();
        let mu_eff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let nf = n as f64;
        let c_sigma = (mu_eff + 2.0) / (nf + mu_eff + 5.0);
        let d_sigma = 1.0 + 2.0 * (((mu_eff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + c_sigma;
        let c_c = (4.0 + mu_eff / nf) / (nf + 4.0 + 2.0 * mu_eff / nf);
        let c_1 = 2.0 / ((nf + 1.3).powi(2) + mu_eff);
        let c_mu = (1.0 - c_1).min(2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((nf + 2.0).powi(2) + mu_eff));
        let identity: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| f64::from(i == j)).collect()).collect();
        Self {
            n,
            lambda,
            mu,
            weights,
            mu_eff,
            c_sigma,
            d_sigma,
            c_c,
            c_1,
            c_mu,
            chi_n: nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf)),
            mean,
            sigma,
            c: identity.clone(),
            p_sigma: vec![0.0; n],
            p_c: vec![0.0; n],
            b: identity,
            d: vec![1.0; n],
            generation: 0,
        }
    }

    /// m + σ·B·D·z for standard normal z, resampled (then clipped) into the cube.
    fn sample(&self, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let mut x = vec![0.0; self.n];
        for attempt in 0..100 {
            let z: Vec<f64> = (0..self.n).map(|_| StandardNormal.sample(rng)).collect();
            for i in 0..self.n {
                x[i] = self.mean[i] + self.sigma * (0..self.n).map(|k| self.b[i][k] * self.d[k] * z[k]).sum::<f64>();
            }
            if x.iter().all(|v| (0.0..=1.0).contains(v)) || attempt == 99 {
                break;
            }
        }
        x.iter().map(|v| v.clamp(0.0, 1.0)).collect()
    }

    /// One generation's update from its solutions, best first.
    fn tell(&mut self, sorted: &[Vec<f64>]) {
        let (n, mu) = (self.n, self.mu.min(sorted.len()));
        let old_mean = self.mean.clone();
        let ys: Vec<Vec<f64>> =
            sorted[..mu].iter().map(|x| x.iter().zip(&old_mean).map(|(a, m)| (a - m) / self.sigma).collect()).collect();
        let w = &self.weights[..mu];
        let wsum: f64 = w.iter().sum();
        let y_w: Vec<f64> = (0..n).map(|i| ys.iter().zip(w).map(|(y, w)| w * y[i]).sum::<f64>() / wsum).collect();
        for i in 0..n {
            self.mean[i] = old_mean[i] + self.sigma * y_w[i];
        }
        // C^{-1/2}·y_w = B·D⁻¹·Bᵀ·y_w
        let bt_y: Vec<f64> = (0..n).map(|k| (0..n).map(|i| self.b[i][k] * y_w[i]).sum::<f64>() / self.d[k]).collect();
        let c_inv_sqrt_y: Vec<f64> = (0..n).map(|i| (0..n).map(|k| self.b[i][k] * bt_y[k]).sum()).collect();
        let cs = (self.c_sigma * (2.0 - self.c_sigma) * self.mu_eff).sqrt();
        for i in 0..n {
            self.p_sigma[i] = (1.0 - self.c_sigma) * self.p_sigma[i] + cs * c_inv_sqrt_y[i];
        }
        let ps_norm = self.p_sigma.iter().map(|v| v * v).sum::<f64>().sqrt();
        let g = (self.generation + 1) as f64;
        let h_sigma =
            ps_norm / (1.0 - (1.0 - self.c_sigma).powf(2.0 * g)).sqrt() < (1.4 + 2.0 / (n as f64 + 1.0)) * self.chi_n;
        let h = f64::from(h_sigma);
        let cc = (self.c_c * (2.0 - self.c_c) * self.mu_eff).sqrt();
        for i in 0..n {
            self.p_c[i] = (1.0 - self.c_c) * self.p_c[i] + h * cc * y_w[i];
        }
        let delta = (1.0 - h) * self.c_c * (2.0 - self.c_c);
        for i in 0..n {
            for j in 0..n {
                let rank_mu: f64 = ys.iter().zip(w).map(|(y, w)| w / wsum * y[i] * y[j]).sum();
                self.c[i][j] = (1.0 - self.c_1 - self.c_mu) * self.c[i][j]
                    + self.c_1 * (self.p_c[i] * self.p_c[j] + delta * self.c[i][j])
                    + self.c_mu * rank_mu;
            }
        }
        self.sigma *= ((self.c_sigma / self.d_sigma) * (ps_norm / self.chi_n - 1.0)).exp();
        self.sigma = self.sigma.min(1.0);
        let (b, eig) = jacobi_eigen(&self.c);
        self.b = b;
        self.d = eig.iter().map(|e| e.max(1e-20).sqrt()).collect();
        self.generation += 1;
    }

    /// Whether the run has stalled: a tiny step or an ill-conditioned C.
    fn stagnated(&self) -> bool {
        let max_d = self.d.iter().copied().fold(0.0, f64::max);
        let min_d = self.d.iter().copied().fold(f64::INFINITY, f64::min);
        self.sigma * max_d < 1e-8 || max_d / min_d > 1e7
    }
}

/// The eigenvectors (columns) and eigenvalues of a symmetric matrix, by
/// cyclic Jacobi rotations (ample for the few dimensions tuned here).
fn jacobi_eigen(a: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let n = a.len();
    let mut a: Vec<Vec<f64>> = a.to_vec();
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| f64::from(i == j)).collect()).collect();
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let eig = (0..n).map(|i| a[i][i]).collect();
    (v, eig)
}

/// The unit-cube coordinate of an internal value, and back.
fn to_unit(d: &Distribution, v: f64) -> f64 {
    let (lo, hi, x) = match *d {
        Distribution::Float { low, high, log: true, .. } => (low.ln(), high.ln(), v.ln()),
        Distribution::Float { low, high, .. } => (low, high, v),
        Distribution::Int { low, high, log: true, .. } => {
            ((low as f64 - 0.5).max(0.5).ln(), (high as f64 + 0.5).ln(), v.ln())
        }
        Distribution::Int { low, high, .. } => (low as f64 - 0.5, high as f64 + 0.5, v),
        Distribution::Categorical { .. } => return 0.5,
    };
    if hi > lo { ((x - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.5 }
}

fn from_unit(d: &Distribution, u: f64) -> f64 {
    // Distribution::from_unit maps the cube uniformly (log space for log
    // parameters) and snaps ints and steps onto their grids.
    d.from_unit(u)
}

impl CmaEsSampler {
    fn rng(&self, number: u64, what: &[u8]) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(stable_hash(&[b"cmaes", &self.seed.to_le_bytes(), &number.to_le_bytes(), what]))
    }
}

impl Sampler for CmaEsSampler {
    fn sample_relative(&self, view: &StudyView, trial: &FrozenTrial) -> BTreeMap<String, f64> {
        if !trial.fixed_params.is_empty() || view.complete().count() < self.n_startup_trials {
            return BTreeMap::new();
        }
        // The continuous parameters every complete trial shares.
        let names: Vec<(String, Distribution)> = view
            .intersection_space()
            .into_iter()
            .filter(|(_, d)| !matches!(d, Distribution::Categorical { .. }))
            .collect();
        if names.is_empty() {
            return BTreeMap::new();
        }
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|run| run.names != names) {
            let n = names.len();
            // Start from the best trial so far.
            let best = view
                .complete()
                .fold(None::<&FrozenTrial>, |b, t| match b {
                    Some(b) if !view.direction.better(t.value().unwrap_or(f64::NAN), b.value().unwrap_or(f64::NAN)) => {
                        Some(b)
                    }
                    _ => Some(t),
                })
                .expect("a complete trial");
            let mean = names.iter().map(|(name, d)| to_unit(d, best.internal(name).unwrap_or(0.5))).collect();
            let lambda = 4 + (3.0 * (n as f64).ln()).floor() as usize;
            *guard = Some(Run {
                names: names.clone(),
                es: Es::new(n, lambda, mean, self.sigma0),
                restarts: 0,
                generation_of: BTreeMap::new(),
                told: Default::default(),
            });
        }
        let run = guard.as_mut().expect("set above");
        // Fold in the current generation once λ of its trials are complete.
        let current = run.es.generation;
        let mut done: Vec<(f64, Vec<f64>)> = view
            .complete()
            .filter(|t| run.generation_of.get(&t.number) == Some(&current) && !run.told.contains(&t.number))
            .map(|t| {
                let v = t.value().unwrap_or(f64::NAN);
                let key = if view.direction == Direction::Maximize { -v } else { v };
                (key, run.names.iter().map(|(name, d)| to_unit(d, t.internal(name).unwrap_or(0.5))).collect())
            })
            .collect();
        if done.len() >= run.es.lambda {
            done.sort_by(|a, b| a.0.total_cmp(&b.0));
            for t in view.complete().filter(|t| run.generation_of.get(&t.number) == Some(&current)) {
                run.told.insert(t.number);
            }
            let solutions: Vec<Vec<f64>> = done.into_iter().map(|(_, x)| x).collect();
            run.es.tell(&solutions);
            if run.es.stagnated() {
                // IPOP: restart from a random point with twice the population.
                run.restarts += 1;
                let mut rng = self.rng(trial.number, b"restart");
                let mean = (0..run.es.n).map(|_| rng.random::<f64>()).collect();
                let lambda = run.es.lambda * 2;
                run.es = Es { generation: run.es.generation, ..Es::new(run.es.n, lambda, mean, self.sigma0) };
            }
        }
        run.generation_of.insert(trial.number, run.es.generation);
        let x = run.es.sample(&mut self.rng(trial.number, b"sample"));
        run.names.iter().zip(x).map(|((name, d), u)| (name.clone(), from_unit(d, u))).collect()
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
    fn jacobi_finds_the_eigen_decomposition() {
        let a = vec![vec![4.0, 1.0, 0.5], vec![1.0, 3.0, 0.2], vec![0.5, 0.2, 1.0]];
        let (v, e) = jacobi_eigen(&a);
        // A·v_k = e_k·v_k for every column k.
        for k in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| a[i][j] * v[j][k]).sum();
                assert!((av - e[k] * v[i][k]).abs() < 1e-10);
            }
        }
        assert!((e.iter().sum::<f64>() - 8.0).abs() < 1e-10, "the trace is kept");
    }

    #[test]
    fn the_strategy_converges_on_a_sphere_by_itself() {
        let mut es = Es::new(4, 8, vec![0.9; 4], 0.2);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let f = |x: &[f64]| x.iter().map(|v| (v - 0.3).powi(2)).sum::<f64>();
        for _ in 0..150 {
            let mut pop: Vec<Vec<f64>> = (0..es.lambda).map(|_| es.sample(&mut rng)).collect();
            pop.sort_by(|a, b| f(a).total_cmp(&f(b)));
            es.tell(&pop);
        }
        assert!(f(&es.mean) < 1e-8, "{:?}", es.mean);
    }
}
