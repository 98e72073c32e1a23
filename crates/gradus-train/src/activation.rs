//! Element-wise activation functions with their derivatives, as used by the
//! hidden layers of an [`crate::Mlp`]. Derivatives are taken from the
//! pre-activation `z`, so dropout applied after the activation never confuses
//! them.

use serde::{Deserialize, Serialize};

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

    #[inline]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => crate::loss::sigmoid(z),
            Activation::Gelu => z * normal_cdf(z),
        }
    }

    /// d apply(z) / dz.
    #[inline]
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
                let t = z.tanh();
                1.0 - t * t
            }
            Activation::Sigmoid => {
                let s = crate::loss::sigmoid(z);
                s * (1.0 - s)
            }
            Activation::Gelu => normal_cdf(z) + z * (-0.5 * z * z).exp() * INV_SQRT_2PI,
        }
    }

    /// `out[i] = apply(z[i])`, vectorised over a slice.
    pub fn apply_slice(self, z: &[f32], out: &mut [f32]) {
        match self {
            Activation::Relu => relu(z, out),
            _ => out.iter_mut().zip(z).for_each(|(o, &v)| *o = self.apply(v)),
        }
    }

    /// `v[i] = apply(v[i])`.
    pub fn apply_in_place(self, v: &mut [f32]) {
        match self {
            Activation::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            _ => v.iter_mut().for_each(|x| *x = self.apply(*x)),
        }
    }

    /// `delta[i] *= derivative(z[i])`: back-propagation through the activation.
    pub fn backprop_slice(self, z: &[f32], delta: &mut [f32]) {
        match self {
            Activation::Relu => relu_backprop(z, delta),
            _ => delta.iter_mut().zip(z).for_each(|(d, &v)| *d *= self.derivative(v)),
        }
    }
}

crate::simd::multiversion! {
    fn relu(z: &[f32], out: &mut [f32]) {
        out.iter_mut().zip(z).for_each(|(o, &v)| *o = v.max(0.0));
    }
}

crate::simd::multiversion! {
    /// A select, not a branch, so that the loop vectorises.
    fn relu_backprop(z: &[f32], delta: &mut [f32]) {
        delta.iter_mut().zip(z).for_each(|(d, &v)| *d = if v > 0.0 { *d } else { 0.0 });
    }
}

/// 1/√(2π), the standard normal density at 0.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Φ(z), the standard normal CDF, through `erf`.
fn normal_cdf(z: f32) -> f32 {
    0.5 * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function, to about 1e-7 absolute (Abramowitz & Stegun 7.1.26 is
/// 1.5e-7; this uses the Numerical Recipes `erfc` Chebyshev fit, 1.2e-7
/// relative), evaluated in f64.
fn erf(x: f32) -> f32 {
    let x = x as f64;
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * poly.exp();
    (if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        // math.erf in Python: erf(0.5) = 0.5204998778130465, erf(1) = 0.8427007929497149,
        // erf(-2) = -0.9953222650189527.
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3)] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

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
