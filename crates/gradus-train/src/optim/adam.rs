//! Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015),
//! with PyTorch's `torch.optim.Adam` arithmetic:
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.

use super::Optimizer;

#[derive(Clone, Debug)]
pub struct Adam {
    beta1: f32,
    beta2: f32,
    eps: f32,
    t: i32,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    pub fn new(n_params: usize, beta1: f32, beta2: f32, eps: f32) -> Self {
        Self { beta1, beta2, eps, t: 0, m: vec![0.0; n_params], v: vec![0.0; n_params] }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        self.t = self.t.saturating_add(1);
        let bias1 = 1.0 - (self.beta1 as f64).powi(self.t);
        let bias2 = 1.0 - (self.beta2 as f64).powi(self.t);
        let step_size = (lr as f64 / bias1) as f32;
        let inv_sqrt_bias2 = (1.0 / bias2.sqrt()) as f32;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step_size * *m / (v.sqrt() * inv_sqrt_bias2 + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_steps_match_hand_computed_values() {
        // Constant gradient g = 2, lr 0.1, β₁ 0.9, β₂ 0.999, ε 1e-8, from p = 0.
        // With a constant gradient the bias-corrected m̂ = 2 and v̂ = 4 at every
        // step, so each step moves p by −lr·2/(2 + ε) ≈ −0.1: p = −0.1, −0.2, −0.3.
        let mut opt = Adam::new(1, 0.9, 0.999, 1e-8);
        let mut p = [0.0f32];
        for want in [-0.1f32, -0.2, -0.3] {
            opt.step(&mut p, &[2.0], 0.1);
            assert!((p[0] - want).abs() < 1e-6, "{} vs {want}", p[0]);
        }
        // A changing gradient: g1 = 1, g2 = −1 (lr 0.1).
        // t=1: m = 0.1, v = 0.001; m̂ = 1, v̂ = 1 → p = −0.1.
        // t=2: m = 0.09 − 0.1 = −0.01, v = 0.000999 + 0.001 = 0.001999;
        //      m̂ = −0.01/0.19 = −0.0526316, v̂ = 0.001999/0.001999 = 1 → p = −0.1 + 0.00526316.
        let mut opt = Adam::new(1, 0.9, 0.999, 1e-8);
        let mut p = [0.0f32];
        opt.step(&mut p, &[1.0], 0.1);
        opt.step(&mut p, &[-1.0], 0.1);
        assert!((p[0] - (-0.1 + 0.005263158)).abs() < 1e-6, "{}", p[0]);
    }
}
