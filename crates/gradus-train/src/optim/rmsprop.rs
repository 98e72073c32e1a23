//! RMSProp (Tieleman & Hinton 2012, lecture 6.5), as PyTorch's
//! `torch.optim.RMSprop` (not centred): `v ← αv + (1−α)g²`, then
//! `p ← p − lr·g/(√v + ε)`, or with momentum μ
//! `b ← μb + g/(√v + ε)`, `p ← p − lr·b`.

use std::ops::Range;

use super::Optimizer;

#[derive(Clone, Debug)]
pub struct RmsProp {
    alpha: f32,
    eps: f32,
    momentum: f32,
    mean_sq: Vec<f32>,
    buffer: Vec<f32>,
}

impl RmsProp {
    pub fn new(n_params: usize, alpha: f32, eps: f32, momentum: f32) -> Self {
        Self {
            alpha,
            eps,
            momentum,
            mean_sq: vec![0.0; n_params],
            buffer: if momentum > 0.0 { vec![0.0; n_params] } else { Vec::new() },
        }
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        rmsprop_update(params, grad, &mut self.mean_sq, &mut self.buffer, lr, [self.alpha, self.eps, self.momentum]);
    }

    fn step_ranges(&mut self, params: &mut [f32], grad: &[f32], lr: f32, ranges: &[Range<usize>]) {
        let c = [self.alpha, self.eps, self.momentum];
        for r in ranges {
            let buffer = if self.buffer.is_empty() { &mut [][..] } else { &mut self.buffer[r.clone()] };
            rmsprop_update(&mut params[r.clone()], &grad[r.clone()], &mut self.mean_sq[r.clone()], buffer, lr, c);
        }
    }
}

crate::simd::multiversion! {
    /// `c` holds α, ε and μ; `buffer` is empty when μ = 0.
    fn rmsprop_update(params: &mut [f32], grad: &[f32], mean_sq: &mut [f32], buffer: &mut [f32], lr: f32, c: [f32; 3]) {
        let [a, eps, mu] = c;
        let n = params.len();
        let (params, grad, v) = (&mut params[..n], &grad[..n], &mut mean_sq[..n]);
        if mu == 0.0 {
            for i in 0..n {
                v[i] = a * v[i] + (1.0 - a) * grad[i] * grad[i];
                params[i] -= lr * grad[i] / (v[i].sqrt() + eps);
            }
        } else {
            let b = &mut buffer[..n];
            for i in 0..n {
                v[i] = a * v[i] + (1.0 - a) * grad[i] * grad[i];
                b[i] = mu * b[i] + grad[i] / (v[i].sqrt() + eps);
                params[i] -= lr * b[i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{assert_steps, first_three_steps};

    #[test]
    fn first_steps_match_hand_computed_values() {
        // lr 0.01, α 0.9, ε 1e-8, gradients 1, 2, 2 from p = 0:
        // v = 0.1   → p1 = −0.01·1/√0.1 = −0.0316228
        // v = 0.49  → p2 = p1 − 0.01·2/0.7 = −0.0601942
        // v = 0.841 → p3 = p2 − 0.01·2/0.9170605 = −0.0820030
        let mut g = [1.0f32, 2.0, 2.0].into_iter();
        let got = first_three_steps(&mut RmsProp::new(1, 0.9, 1e-8, 0.0), 0.0, 0.01, |_| g.next().unwrap());
        assert_steps(got, [-0.0316228, -0.0601942, -0.0820030]);
        // With momentum 0.5: b1 = 3.1622777, p1 = −0.0316228;
        // b2 = 1.5811388 + 2.8571429 = 4.4382817, p2 = −0.0760056;
        // b3 = 2.2191408 + 2.1808806 = 4.4000214, p3 = −0.1200058.
        let mut g = [1.0f32, 2.0, 2.0].into_iter();
        let got = first_three_steps(&mut RmsProp::new(1, 0.9, 1e-8, 0.5), 0.0, 0.01, |_| g.next().unwrap());
        assert_steps(got, [-0.0316228, -0.0760056, -0.1200058]);
    }
}
