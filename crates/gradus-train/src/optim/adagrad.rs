//! Adagrad (Duchi, Hazan & Singer, JMLR 2011), as PyTorch's `torch.optim.Adagrad`
//! with no learning-rate decay: `s ← s + g²`, `p ← p − lr·g / (√s + ε)`.

use std::ops::Range;

use super::Optimizer;

#[derive(Clone, Debug)]
pub struct Adagrad {
    eps: f32,
    sum_sq: Vec<f32>,
}

impl Adagrad {
    pub fn new(n_params: usize, eps: f32) -> Self {
        Self { eps, sum_sq: vec![0.0; n_params] }
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        adagrad_update(params, grad, &mut self.sum_sq, lr, self.eps);
    }

    fn step_ranges(&mut self, params: &mut [f32], grad: &[f32], lr: f32, ranges: &[Range<usize>]) {
        for r in ranges {
            adagrad_update(&mut params[r.clone()], &grad[r.clone()], &mut self.sum_sq[r.clone()], lr, self.eps);
        }
    }
}

crate::simd::multiversion! {
    fn adagrad_update(params: &mut [f32], grad: &[f32], sum_sq: &mut [f32], lr: f32, eps: f32) {
        let n = params.len();
        let (params, grad, s) = (&mut params[..n], &grad[..n], &mut sum_sq[..n]);
        for i in 0..n {
            s[i] += grad[i] * grad[i];
            params[i] -= lr * grad[i] / (s[i].sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{assert_steps, first_three_steps};

    #[test]
    fn first_steps_match_hand_computed_values() {
        // lr 0.1, ε 1e-10, gradients 1, 2, 2 from p = 0:
        // s = 1 → p1 = −0.1·1/1 = −0.1
        // s = 5 → p2 = −0.1 − 0.1·2/√5 = −0.1894427
        // s = 9 → p3 = −0.1894427 − 0.1·2/3 = −0.2561094
        let mut g = [1.0f32, 2.0, 2.0].into_iter();
        let got = first_three_steps(&mut Adagrad::new(1, 1e-10), 0.0, 0.1, |_| g.next().unwrap());
        assert_steps(got, [-0.1, -0.1894427, -0.2561094]);
    }
}
