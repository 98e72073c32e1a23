//! Element-wise activation functions with their derivatives, as used by the
//! hidden layers of a [`crate::Network`]. Derivatives are taken from the
//! pre-activation `z`, so dropout applied after the activation never confuses
//! them.

use serde::{Deserialize, Serialize};

use crate::vmath;

/// A hidden-layer activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Sigmoid,
    /// The exact GELU, `z·Φ(z)` (PyTorch's default `nn.GELU()`).
    Gelu,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Gelu => "gelu",
        }
    }

    #[inline(always)]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => vmath::tanh(z),
            Activation::Sigmoid => vmath::sigmoid(z),
            Activation::Gelu => z * normal_cdf(z),
        }
    }

    /// d apply(z) / dz.
    #[inline(always)]
    pub fn derivative(self, z: f32) -> f32 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => {
                let t = vmath::tanh(z);
                1.0 - t * t
            }
            Activation::Sigmoid => {
                let s = vmath::sigmoid(z);
                s * (1.0 - s)
            }
            Activation::Gelu => normal_cdf(z) + z * vmath::exp(-0.5 * z * z) * INV_SQRT_2PI,
        }
    }

    /// `out[i] = apply(z[i])`, vectorised over a slice.
    pub fn apply_slice(self, z: &[f32], out: &mut [f32]) {
        apply_kernel(self, z, out)
    }

    /// `v[i] = apply(v[i])`.
    pub fn apply_in_place(self, v: &mut [f32]) {
        apply_in_place_kernel(self, v)
    }

    /// `delta[i] *= derivative(z[i])`: back-propagation through the activation.
    pub fn backprop_slice(self, z: &[f32], delta: &mut [f32]) {
        backprop_kernel(self, z, delta)
    }
}

// One loop per activation inside each kernel, so that every loop vectorises
// with the activation's arithmetic inlined (the match is outside the loops).
// Plain index loops: iterator adapters are generic functions of their own,
// which LLVM may leave un-inlined and so compiled without the wide vectors.

crate::simd::multiversion! {
    #[allow(clippy::needless_range_loop)]
    fn apply_kernel(act: Activation, z: &[f32], out: &mut [f32]) {
        let out = &mut out[..z.len()];
        match act {
            Activation::Relu => for i in 0..z.len() { out[i] = Activation::Relu.apply(z[i]) },
            Activation::Tanh => for i in 0..z.len() { out[i] = Activation::Tanh.apply(z[i]) },
            Activation::Sigmoid => for i in 0..z.len() { out[i] = Activation::Sigmoid.apply(z[i]) },
            Activation::Gelu => for i in 0..z.len() { out[i] = Activation::Gelu.apply(z[i]) },
        }
    }
}

crate::simd::multiversion! {
    #[allow(clippy::needless_range_loop)]
    fn apply_in_place_kernel(act: Activation, v: &mut [f32]) {
        match act {
            Activation::Relu => for i in 0..v.len() { v[i] = Activation::Relu.apply(v[i]) },
            Activation::Tanh => for i in 0..v.len() { v[i] = Activation::Tanh.apply(v[i]) },
            Activation::Sigmoid => for i in 0..v.len() { v[i] = Activation::Sigmoid.apply(v[i]) },
            Activation::Gelu => for i in 0..v.len() { v[i] = Activation::Gelu.apply(v[i]) },
        }
    }
}

crate::simd::multiversion! {
    /// ReLU's derivative is a select, not a branch, so that the loop vectorises.
    #[allow(clippy::needless_range_loop)]
    fn backprop_kernel(act: Activation, z: &[f32], delta: &mut [f32]) {
        let delta = &mut delta[..z.len()];
        match act {
            Activation::Relu => for i in 0..z.len() { delta[i] = if z[i] > 0.0 { delta[i] } else { 0.0 } },
            Activation::Tanh => for i in 0..z.len() { delta[i] *= Activation::Tanh.derivative(z[i]) },
            Activation::Sigmoid => for i in 0..z.len() { delta[i] *= Activation::Sigmoid.derivative(z[i]) },
            Activation::Gelu => for i in 0..z.len() { delta[i] *= Activation::Gelu.derivative(z[i]) },
        }
    }
}

/// 1/√(2π), the standard normal density at 0.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Φ(z), the standard normal CDF, through `erf`.
#[inline(always)]
fn normal_cdf(z: f32) -> f32 {
    0.5 * (1.0 + vmath::erf(z * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_pytorch_values() {
        // torch.nn.functional.gelu(torch.tensor([-1.0, 0.5, 2.0])) =
        // [-0.15865525, 0.34573123, 1.95449972]
        for (z, want) in [(-1.0, -0.158_655_25), (0.5, 0.345_731_23), (2.0, 1.954_499_7)] {
            assert!((Activation::Gelu.apply(z) - want).abs() < 1e-6, "gelu({z})");
        }
    }

    #[test]
    fn every_derivative_matches_central_differences() {
        let h = 1e-3f32;
        for act in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Gelu] {
            for i in -40..=40 {
                let z = i as f32 * 0.1 + 0.013; // avoid ReLU's kink at exactly 0
                let numeric = ((act.apply(z + h) as f64 - act.apply(z - h) as f64) / (2.0 * h as f64)) as f32;
                let analytic = act.derivative(z);
                assert!((numeric - analytic).abs() < 1e-3, "{act:?}'({z}): {analytic} vs {numeric}");
            }
        }
    }

    #[test]
    fn slice_forms_agree_with_the_scalar_forms() {
        let z: Vec<f32> = (-10..10).map(|i| i as f32 * 0.37).collect();
        for act in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Gelu] {
            let mut out = vec![0.0; z.len()];
            act.apply_slice(&z, &mut out);
            let mut delta = vec![2.0; z.len()];
            act.backprop_slice(&z, &mut delta);
            for i in 0..z.len() {
                assert_eq!(out[i], act.apply(z[i]));
                assert_eq!(delta[i], 2.0 * act.derivative(z[i]));
            }
        }
    }
}
