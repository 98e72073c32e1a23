//! L-BFGS (Liu & Nocedal 1989) with a strong-Wolfe line search (Nocedal &
//! Wright, *Numerical Optimization*, 2nd ed., algorithms 7.4, 3.5 and 3.6),
//! for full-batch, smooth problems such as linear, logistic and softmax
//! regression.
//!
//! Everything is f64; a caller whose parameters are f32 (a model's weights)
//! rounds inside its objective.

/// The objective: writes the gradient at `x` and returns the value.
pub type Objective<'a> = dyn FnMut(&[f64], &mut [f64]) -> f64 + 'a;

/// The outcome of one L-BFGS iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IterationOutcome {
    /// The step was taken; the objective is now `value`.
    Moved { value: f64, evaluations: usize },
    /// No step along the search direction decreases the objective: the
    /// minimum is reached to the precision the objective is computed with.
    Stalled { evaluations: usize },
}

/// L-BFGS state between iterations.
#[derive(Clone, Debug)]
pub struct Lbfgs {
    history: usize,
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    rho: Vec<f64>,
    /// The objective and gradient at the current point, once evaluated.
    value: Option<f64>,
    grad: Vec<f64>,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;
const MAX_EVALUATIONS: usize = 25;

impl Lbfgs {
    pub fn new(history: usize) -> Self {
        Self { history: history.max(1), s: Vec::new(), y: Vec::new(), rho: Vec::new(), value: None, grad: Vec::new() }
    }

    /// The objective at the current point (after the first iteration).
    /// Forgets the current value and gradient but keeps the curvature
    /// pairs: a warm start for an objective that changed a little (a GP
    /// refitted with one more observation), whose first step is then
    /// quasi-Newton rather than steepest descent.
    pub fn restart(&mut self) {
        self.value = None;
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The gradient at the current point (after the first iteration).
    pub fn gradient(&self) -> &[f64] {
        &self.grad
    }

    /// One iteration from `x`: a quasi-Newton direction and a line search
    /// along it. `x` is moved in place.
    pub fn iterate(&mut self, x: &mut [f64], f: &mut Objective) -> IterationOutcome {
        let n = x.len();
        let mut evaluations = 0;
        if self.value.is_none() {
            self.grad = vec![0.0; n];
            self.value = Some(f(x, &mut self.grad));
            evaluations += 1;
        }
        let f0 = self.value.expect("evaluated above");
        let g0: Vec<f64> = self.grad.clone();
        let d = self.direction(&g0);
        let mut dphi0 = dot(&g0, &d);
        let mut d = d;
        if dphi0.is_nan() || dphi0 >= 0.0 {
            // Not a descent direction (curvature pairs gone stale): restart
            // from steepest descent.
            self.s.clear();
            self.y.clear();
            self.rho.clear();
            d = g0.iter().map(|g| -g).collect();
            dphi0 = -dot(&g0, &g0);
            if dphi0 == 0.0 {
                return IterationOutcome::Stalled { evaluations };
            }
        }
        // The first step is scaled to unit length, as in scipy; later steps
        // start at 1 (the quasi-Newton step).
        let alpha0 = if self.s.is_empty() { (1.0 / norm(&d)).min(1.0) } else { 1.0 };

        let mut trial = vec![0.0f64; n];
        let mut trial_grad = vec![0.0f64; n];
        let mut eval = |alpha: f64, trial: &mut Vec<f64>, trial_grad: &mut Vec<f64>| {
            for ((t, &xi), di) in trial.iter_mut().zip(x.iter()).zip(&d) {
                *t = xi + alpha * di;
            }
            let value = f(trial, trial_grad);
            let slope: f64 = trial_grad.iter().zip(&d).map(|(g, di)| g * di).sum();
            (value, slope)
        };

        // Bracketing phase (N&W algorithm 3.5).
        let (mut lo, mut f_lo, mut dphi_lo) = (0.0, f0, dphi0);
        let mut alpha = alpha0;
        let mut hi = None;
        let mut accepted = None;
        while evaluations < MAX_EVALUATIONS {
            let (fa, dphia) = eval(alpha, &mut trial, &mut trial_grad);
            evaluations += 1;
            if !fa.is_finite() || fa > f0 + C1 * alpha * dphi0 || (lo > 0.0 && fa >= f_lo) {
                hi = Some((alpha, fa));
                break;
            }
            if dphia.abs() <= -C2 * dphi0 {
                accepted = Some((alpha, fa));
                break;
            }
            if dphia >= 0.0 {
                hi = Some((lo, f_lo));
                (lo, f_lo, dphi_lo) = (alpha, fa, dphia);
                break;
            }
            (lo, f_lo, dphi_lo) = (alpha, fa, dphia);
            alpha *= 2.0;
        }

        // Zoom phase (N&W algorithm 3.6) with safeguarded quadratic interpolation.
        if accepted.is_none()
            && let Some((mut hi_alpha, mut f_hi)) = hi
        {
            while evaluations < MAX_EVALUATIONS {
                let width = hi_alpha - lo;
                let denom = 2.0 * (f_hi - f_lo - dphi_lo * width);
                let mut a = if denom > 0.0 { lo - dphi_lo * width * width / denom } else { lo + 0.5 * width };
                let (left, right) = (lo.min(hi_alpha), lo.max(hi_alpha));
                let margin = 0.1 * (right - left);
                if !a.is_finite() || a < left + margin || a > right - margin {
                    a = lo + 0.5 * width;
                }
                let (fa, dphia) = eval(a, &mut trial, &mut trial_grad);
                evaluations += 1;
                if !fa.is_finite() || fa > f0 + C1 * a * dphi0 || fa >= f_lo {
                    (hi_alpha, f_hi) = (a, fa);
                } else {
                    if dphia.abs() <= -C2 * dphi0 {
                        accepted = Some((a, fa));
                        break;
                    }
                    if dphia * (hi_alpha - lo) >= 0.0 {
                        (hi_alpha, f_hi) = (lo, f_lo);
                    }
                    (lo, f_lo, dphi_lo) = (a, fa, dphia);
                }
                if (hi_alpha - lo).abs() < 1e-12 {
                    break;
                }
            }
        }
        // Without a point meeting both Wolfe conditions, settle for the best
        // point that decreased the objective, if any.
        let (alpha, value) = match accepted {
            Some(point) => point,
            None if lo > 0.0 && f_lo < f0 => (lo, f_lo),
            None => return IterationOutcome::Stalled { evaluations },
        };
        // An accepted point was the last one evaluated, so `trial` holds it;
        // the fallback point must be evaluated again.
        let fa = if accepted.is_some() {
            value
        } else {
            evaluations += 1;
            eval(alpha, &mut trial, &mut trial_grad).0
        };

        // Curvature pair s = x⁺ − x, y = g⁺ − g.
        let s: Vec<f64> = trial.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = trial_grad.iter().zip(&g0).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if self.s.len() == self.history {
                self.s.remove(0);
                self.y.remove(0);
                self.rho.remove(0);
            }
            self.s.push(s);
            self.y.push(y);
            self.rho.push(1.0 / sy);
        }
        x.copy_from_slice(&trial);
        self.grad.copy_from_slice(&trial_grad);
        self.value = Some(fa);
        IterationOutcome::Moved { value: fa, evaluations }
    }

    /// −H·g by the two-loop recursion, with H₀ = (sᵀy / yᵀy)·I.
    fn direction(&self, g: &[f64]) -> Vec<f64> {
        let mut q = g.to_vec();
        let m = self.s.len();
        let mut alpha = vec![0.0; m];
        for i in (0..m).rev() {
            alpha[i] = self.rho[i] * dot(&self.s[i], &q);
            axpy(-alpha[i], &self.y[i], &mut q);
        }
        if let (Some(s), Some(y)) = (self.s.last(), self.y.last()) {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for (((s, y), rho), a) in self.s.iter().zip(&self.y).zip(&self.rho).zip(&alpha) {
            let beta = rho * dot(y, &q);
            axpy(a - beta, s, &mut q);
        }
        q.iter_mut().for_each(|v| *v = -*v);
        q
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += alpha * xi);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimise(x: &mut [f64], f: &mut Objective, iterations: usize) -> f64 {
        let mut opt = Lbfgs::new(10);
        let mut last = f64::NAN;
        for _ in 0..iterations {
            match opt.iterate(x, f) {
                IterationOutcome::Moved { value, .. } => last = value,
                IterationOutcome::Stalled { .. } => break,
            }
        }
        last
    }

    #[test]
    fn first_steps_match_hand_computed_values() {
        // f(x) = x²/2 from x = 3, so g = x.
        // 1: d = −g = −3; the first step is scaled to unit length, α = 1/3, so
        //    x1 = 2. Armijo: f(2) = 2 ≤ 4.5 − 1e-4·(1/3)·9; curvature: |g(2)·d| =
        //    6 ≤ 0.9·9. Accepted. s = −1, y = g1 − g0 = −1.
        // 2: H₀ = sᵀy/yᵀy = 1 is the exact inverse Hessian, so d = −2, α = 1,
        //    x2 = 0, the minimum.
        // 3: g = 0: no descent direction is left, the iteration stalls.
        let mut f = |x: &[f64], g: &mut [f64]| {
            g[0] = x[0];
            0.5 * x[0].powi(2)
        };
        let mut opt = Lbfgs::new(10);
        let mut x = [3.0f64];
        assert!(matches!(opt.iterate(&mut x, &mut f), IterationOutcome::Moved { value: 2.0, .. }));
        assert_eq!(x, [2.0]);
        assert!(matches!(opt.iterate(&mut x, &mut f), IterationOutcome::Moved { value: 0.0, .. }));
        assert_eq!(x, [0.0]);
        assert!(matches!(opt.iterate(&mut x, &mut f), IterationOutcome::Stalled { .. }));
    }

    #[test]
    fn minimises_an_ill_conditioned_quadratic() {
        // f(x) = Σ cᵢ (xᵢ − 1)² / 2 with conditioning 1e3: minimum 0 at x = 1.
        let c: Vec<f64> = (0..10).map(|i| 10f64.powf(i as f64 / 3.0)).collect();
        let mut f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..x.len() {
                let d = x[i] - 1.0;
                v += 0.5 * c[i] * d * d;
                g[i] = c[i] * d;
            }
            v
        };
        let mut x = vec![0.0f64; 10];
        let value = minimise(&mut x, &mut f, 100);
        assert!(value < 1e-8, "{value}");
        assert!(x.iter().all(|&v| (v - 1.0).abs() < 1e-3), "{x:?}");
    }

    #[test]
    fn minimises_rosenbrock() {
        // The banana function, minimum 0 at (1, 1).
        let mut f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let mut x = vec![-1.2f64, 1.0];
        let value = minimise(&mut x, &mut f, 200);
        assert!(value < 1e-6, "{value} at {x:?}");
    }
}
