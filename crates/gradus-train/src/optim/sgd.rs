//! (Stochastic) gradient descent with optional heavy-ball or Nesterov
//! momentum, with PyTorch's `torch.optim.SGD` semantics (dampening 0):
//! `v ← μ·v + g`, then `p ← p − lr·v`, or `p ← p − lr·(g + μ·v)` for Nesterov
//! (Sutskever et al. 2013's formulation as PyTorch implements it).

use std::ops::Range;

use super::Optimizer;

#[derive(Clone, Debug)]
pub struct Sgd {
    momentum: f32,
    nesterov: bool,
    velocity: Vec<f32>,
}

impl Sgd {
    pub fn new(n_params: usize, momentum: f32, nesterov: bool) -> Self {
        Self { momentum, nesterov, velocity: if momentum > 0.0 { vec![0.0; n_params] } else { Vec::new() } }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        if self.momentum == 0.0 {
            plain_update(params, grad, lr);
        } else {
            momentum_update(params, grad, &mut self.velocity, lr, self.momentum, self.nesterov);
        }
    }

    fn step_ranges(&mut self, params: &mut [f32], grad: &[f32], lr: f32, ranges: &[Range<usize>]) {
        if self.momentum == 0.0 {
            // One dispatch for all ranges: a sparse step touches thousands of short rows.
            return plain_update_ranges(params, grad, ranges, lr);
        }
        for r in ranges {
            let v = &mut self.velocity[r.clone()];
            momentum_update(&mut params[r.clone()], &grad[r.clone()], v, lr, self.momentum, self.nesterov);
        }
    }
}

crate::simd::multiversion! {
    fn plain_update(params: &mut [f32], grad: &[f32], lr: f32) {
        let n = params.len();
        let (params, grad) = (&mut params[..n], &grad[..n]);
        for i in 0..n {
            params[i] -= lr * grad[i];
        }
    }
}

crate::simd::multiversion! {
    fn plain_update_ranges(params: &mut [f32], grad: &[f32], ranges: &[Range<usize>], lr: f32) {
        for r in ranges {
            let (p, g) = (&mut params[r.clone()], &grad[r.clone()]);
            for (p, g) in p.iter_mut().zip(g) {
                *p -= lr * g;
            }
        }
    }
}

crate::simd::multiversion! {
    fn momentum_update(params: &mut [f32], grad: &[f32], velocity: &mut [f32], lr: f32, mu: f32, nesterov: bool) {
        let n = params.len();
        let (params, grad, v) = (&mut params[..n], &grad[..n], &mut velocity[..n]);
        if nesterov {
            for i in 0..n {
                v[i] = mu * v[i] + grad[i];
                params[i] -= lr * (grad[i] + mu * v[i]);
            }
        } else {
            for i in 0..n {
                v[i] = mu * v[i] + grad[i];
                params[i] -= lr * v[i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::first_three_steps;

    #[test]
    fn plain_gd_moves_against_the_gradient() {
        // f(p) = p²/2, g = p, lr 0.1 from p = 1: each step multiplies p by 0.9.
        assert_eq!(first_three_steps(&mut Sgd::new(1, 0.0, false), 1.0, 0.1, |p| p), [0.9, 0.81, 0.729]);
    }

    #[test]
    fn momentum_first_steps_match_hand_computed_values() {
        // f(p) = p²/2 so g = p. From p = 1 with lr 0.1, μ = 0.9:
        // v1 = 1,            p1 = 1 − 0.1·1 = 0.9
        // v2 = 0.9 + 0.9,    p2 = 0.9 − 0.18 = 0.72
        // v3 = 1.62 + 0.72,  p3 = 0.72 − 0.234 = 0.486
        let got = first_three_steps(&mut Sgd::new(1, 0.9, false), 1.0, 0.1, |p| p);
        crate::optim::tests::assert_steps(got, [0.9, 0.72, 0.486]);
    }

    #[test]
    fn nesterov_first_steps_match_hand_computed_values() {
        // g = p, lr 0.1, μ 0.9, p0 = 1; update v ← μv + g, p ← p − lr(g + μv):
        // g=1:      v = 1,                      p1 = 1 − 0.1·1.9 = 0.81
        // g=0.81:   v = 0.9 + 0.81 = 1.71,      p2 = 0.81 − 0.1·(0.81 + 1.539) = 0.5751
        // g=0.5751: v = 1.539 + 0.5751 = 2.1141, p3 = 0.5751 − 0.1·(0.5751 + 1.90269) = 0.327321
        let got = first_three_steps(&mut Sgd::new(1, 0.9, true), 1.0, 0.1, |p| p);
        crate::optim::tests::assert_steps(got, [0.81, 0.5751, 0.327321]);
    }
}
