//! (Stochastic) gradient descent with optional heavy-ball momentum, with
//! PyTorch's `torch.optim.SGD` semantics (dampening 0):
//! `v ← μ·v + g`, `p ← p − lr·v`.

use super::Optimizer;

#[derive(Clone, Debug)]
pub struct Sgd {
    momentum: f32,
    velocity: Vec<f32>,
}

impl Sgd {
    pub fn new(n_params: usize, momentum: f32) -> Self {
        Self { momentum, velocity: if momentum > 0.0 { vec![0.0; n_params] } else { Vec::new() } }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        if self.momentum == 0.0 {
            for (p, g) in params.iter_mut().zip(grad) {
                *p -= lr * g;
            }
        } else {
            for ((p, g), v) in params.iter_mut().zip(grad).zip(&mut self.velocity) {
                *v = self.momentum * *v + g;
                *p -= lr * *v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_steps_match_hand_computed_values() {
        // f(p) = p²/2 so g = p. From p = 1 with lr 0.1, μ = 0.9:
        // v1 = 1,            p1 = 1 - 0.1·1 = 0.9
        // v2 = 0.9 + 0.9,    p2 = 0.9 - 0.18 = 0.72
        // v3 = 1.62 + 0.72,  p3 = 0.72 - 0.234 = 0.486
        let mut opt = Sgd::new(1, 0.9);
        let mut p = [1.0f32];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let g = [p[0]];
            opt.step(&mut p, &g, 0.1);
            seen.push(p[0]);
        }
        for (got, want) in seen.iter().zip([0.9, 0.72, 0.486]) {
            assert!((got - want).abs() < 1e-6, "{seen:?}");
        }
        let mut plain = Sgd::new(1, 0.0);
        let mut p = [1.0f32];
        plain.step(&mut p, &[2.0], 0.25);
        assert_eq!(p, [0.5]);
    }
}
