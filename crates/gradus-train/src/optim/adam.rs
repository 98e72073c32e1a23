//! Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015)
//! and AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
//! ICLR 2019), with PyTorch's arithmetic:
//! `p ← p·(1 − lr·λ)` (AdamW only), then
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.
//! As in PyTorch, AdamW's decay applies to every parameter.

use std::ops::Range;

use super::Optimizer;

#[derive(Clone, Debug)]
pub struct Adam {
    beta1: f32,
    beta2: f32,
    eps: f32,
    /// Decoupled weight decay λ (0 for plain Adam).
    weight_decay: f32,
    t: i32,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    pub fn new(n_params: usize, beta1: f32, beta2: f32, eps: f32) -> Self {
        Self::with_weight_decay(n_params, beta1, beta2, eps, 0.0)
    }

    /// AdamW: Adam with decoupled weight decay.
    pub fn with_weight_decay(n_params: usize, beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Self {
        Self { beta1, beta2, eps, weight_decay, t: 0, m: vec![0.0; n_params], v: vec![0.0; n_params] }
    }
}

impl Adam {
    /// Counts a step and returns its constants for [`adam_update`].
    fn next_step(&mut self, lr: f32) -> [f32; 5] {
        self.t = self.t.saturating_add(1);
        let bias1 = 1.0 - (self.beta1 as f64).powi(self.t);
        let bias2 = 1.0 - (self.beta2 as f64).powi(self.t);
        let step_size = (lr as f64 / bias1) as f32;
        let inv_sqrt_bias2 = (1.0 / bias2.sqrt()) as f32;
        [self.beta1, self.beta2, self.eps, step_size, inv_sqrt_bias2]
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        let c = self.next_step(lr);
        if self.weight_decay != 0.0 {
            let decay = 1.0 - lr * self.weight_decay;
            params.iter_mut().for_each(|p| *p *= decay);
        }
        adam_update(params, grad, &mut self.m, &mut self.v, c);
    }

    fn step_ranges(&mut self, params: &mut [f32], grad: &[f32], lr: f32, ranges: &[Range<usize>]) {
        let c = self.next_step(lr);
        let decay = 1.0 - lr * self.weight_decay;
        // One dispatch for all ranges: a sparse step touches thousands of short rows.
        adam_update_ranges(params, grad, &mut self.m, &mut self.v, ranges, c, decay);
    }
}

crate::simd::multiversion! {
    /// One Adam update over equal-length slices; `c` holds β₁, β₂, ε, the
    /// bias-corrected step size and 1/√(1−β₂ᵗ).
    fn adam_update(params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], c: [f32; 5]) {
        let [b1, b2, eps, step_size, inv_sqrt_bias2] = c;
        let n = params.len();
        let (params, grad, m, v) = (&mut params[..n], &grad[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let g = grad[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            params[i] -= step_size * m[i] / (v[i].sqrt() * inv_sqrt_bias2 + eps);
        }
    }
}

crate::simd::multiversion! {
    /// [`adam_update`] over each of `ranges`, after the decay `p ← p·decay`
    /// (AdamW; 1 for Adam).
    fn adam_update_ranges(
        params: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        ranges: &[Range<usize>],
        c: [f32; 5],
        decay: f32,
    ) {
        let [b1, b2, eps, step_size, inv_sqrt_bias2] = c;
        for r in ranges {
            let (p, g, m, v) = (&mut params[r.clone()], &grad[r.clone()], &mut m[r.clone()], &mut v[r.clone()]);
            for i in 0..p.len() {
                if decay != 1.0 {
                    p[i] *= decay;
                }
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                p[i] -= step_size * m[i] / (v[i].sqrt() * inv_sqrt_bias2 + eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{assert_steps, first_three_steps};

    #[test]
    fn adam_first_steps_match_hand_computed_values() {
        // Constant gradient g = 2, lr 0.1, β₁ 0.9, β₂ 0.999, ε 1e-8, from p = 0.
        // With a constant gradient the bias-corrected m̂ = 2 and v̂ = 4 at every
        // step, so each step moves p by −lr·2/(2 + ε) ≈ −0.1: p = −0.1, −0.2, −0.3.
        let got = first_three_steps(&mut Adam::new(1, 0.9, 0.999, 1e-8), 0.0, 0.1, |_| 2.0);
        assert_steps(got, [-0.1, -0.2, -0.3]);
        // A changing gradient: g1 = 1, g2 = −1, g3 = 1 (lr 0.1).
        // t=1: m = 0.1, v = 0.001; m̂ = 1, v̂ = 1 → p = −0.1.
        // t=2: m = 0.09 − 0.1 = −0.01, v = 0.000999 + 0.001 = 0.001999;
        //      m̂ = −0.01/0.19 = −0.0526316, v̂ = 0.001999/0.001999 = 1 → p = −0.0947368.
        // t=3: m = −0.009 + 0.1 = 0.091, v = 0.001997001 + 0.001 = 0.002997001;
        //      m̂ = 0.091/0.271 = 0.3357934, v̂ = 0.002997001/0.002997001 = 1 → p = −0.1283162.
        let mut g = [1.0f32, -1.0, 1.0].into_iter();
        let got = first_three_steps(&mut Adam::new(1, 0.9, 0.999, 1e-8), 0.0, 0.1, |_| g.next().unwrap());
        assert_steps(got, [-0.1, -0.0947368, -0.1283162]);
    }

    #[test]
    fn adamw_first_steps_match_hand_computed_values() {
        // Constant gradient g = 2, lr 0.1, λ 0.1, from p = 1. Each step first
        // shrinks p by (1 − 0.01), then moves it by −0.1 as above:
        // p1 = 0.99 − 0.1 = 0.89, p2 = 0.8811 − 0.1 = 0.7811, p3 = 0.773289 − 0.1 = 0.673289.
        let got = first_three_steps(&mut Adam::with_weight_decay(1, 0.9, 0.999, 1e-8, 0.1), 1.0, 0.1, |_| 2.0);
        assert_steps(got, [0.89, 0.7811, 0.673289]);
    }
}
