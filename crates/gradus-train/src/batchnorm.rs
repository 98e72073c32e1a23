//! Batch normalisation (Ioffe and Szegedy 2015), as PyTorch's
//! `BatchNorm2d`: each channel's values — over the batch's rows and the
//! channel's positions in each — are standardised by the batch's mean and
//! variance in training, by running estimates at inference, then scaled
//! and shifted by a learned γ and β. The running mean and (unbiased)
//! variance move 10% of the way to each batch's (PyTorch's momentum 0.1);
//! they live in the layer's slice, frozen to the optimizer (see
//! [`Layer::frozen`]), so the model file keeps them.

use std::ops::Range;

use gradus_data::Rng;

use crate::layer::Layer;

/// PyTorch's ε and momentum.
const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

/// The layer over rows of `channels` × `spatial` values, channel-major.
/// Its slice: γ, β, running mean, running variance, `channels` each.
#[derive(Clone, Debug)]
pub(crate) struct BatchNorm {
    channels: usize,
    spatial: usize,
    /// The last training batch's standardised values, 1/σ per channel, and
    /// its mean and unbiased variance per channel (for the running ones).
    normalised: Vec<f32>,
    inv_std: Vec<f32>,
    batch_mean: Vec<f32>,
    batch_var: Vec<f32>,
}

impl BatchNorm {
    pub fn new(channels: usize, spatial: usize) -> Self {
        Self {
            channels,
            spatial,
            normalised: Vec::new(),
            inv_std: Vec::new(),
            batch_mean: Vec::new(),
            batch_var: Vec::new(),
        }
    }

    /// The running mean and variance.
    fn running(&self) -> Range<usize> {
        2 * self.channels..4 * self.channels
    }

    fn block(&self, k: usize) -> Range<usize> {
        k * self.channels..(k + 1) * self.channels
    }

    /// The values of channel `c` across the `n` rows of `x`.
    fn channel<'a>(&self, x: &'a [f32], n: usize, c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (width, s) = (self.channels * self.spatial, self.spatial);
        (0..n).map(move |row| &x[row * width + c * s..row * width + (c + 1) * s])
    }
}

impl Layer for BatchNorm {
    fn kind(&self) -> &'static str {
        "batchnorm"
    }

    fn input_width(&self) -> usize {
        self.channels * self.spatial
    }

    fn output_width(&self) -> usize {
        self.channels * self.spatial
    }

    fn n_params(&self) -> usize {
        4 * self.channels
    }

    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        let c = vec![self.channels];
        vec![
            ("weight", c.clone(), self.block(0)),
            ("bias", c.clone(), self.block(1)),
            ("running_mean", c.clone(), self.block(2)),
            ("running_var", c, self.block(3)),
        ]
    }

    fn frozen(&self) -> Vec<Range<usize>> {
        vec![self.running()]
    }

    /// γ = 1, β = 0, running mean 0 and variance 1, as PyTorch starts.
    fn init(&self, params: &mut [f32], _rng: &mut Rng) {
        params[self.block(0)].fill(1.0);
        params[self.block(1)].fill(0.0);
        params[self.block(2)].fill(0.0);
        params[self.block(3)].fill(1.0);
    }

    fn forward(&mut self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        let (channels, s, width) = (self.channels, self.spatial, self.channels * self.spatial);
        let m = (n * s) as f64;
        self.normalised.resize(n * width, 0.0);
        self.inv_std.resize(channels, 0.0);
        self.batch_mean.resize(channels, 0.0);
        self.batch_var.resize(channels, 0.0);
        for c in 0..channels {
            let mean = self.channel(input, n, c).flatten().map(|&v| f64::from(v)).sum::<f64>() / m;
            let var = self.channel(input, n, c).flatten().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / m;
            let inv = 1.0 / (var + f64::from(EPS)).sqrt();
            self.inv_std[c] = inv as f32;
            self.batch_mean[c] = mean as f32;
            self.batch_var[c] = if m > 1.0 { (var * m / (m - 1.0)) as f32 } else { var as f32 };
            let (gamma, beta) = (params[c], params[channels + c]);
            for row in 0..n {
                let at = row * width + c * s..row * width + (c + 1) * s;
                for ((o, z), &x) in out[at.clone()].iter_mut().zip(&mut self.normalised[at.clone()]).zip(&input[at]) {
                    *z = ((f64::from(x) - mean) * inv) as f32;
                    *o = gamma * *z + beta;
                }
            }
        }
    }

    fn update_buffers(&mut self, params: &mut [f32]) {
        let c = self.channels;
        for (running, batch) in [(2, &self.batch_mean), (3, &self.batch_var)] {
            for (r, &b) in params[running * c..(running + 1) * c].iter_mut().zip(batch.iter()) {
                *r = (1.0 - MOMENTUM) * *r + MOMENTUM * b;
            }
        }
    }

    fn backward(
        &mut self,
        params: &[f32],
        _input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        _scratch: &mut Vec<f32>,
        grad: &mut [f32],
        input_grad: bool,
    ) {
        let (channels, s, width) = (self.channels, self.spatial, self.channels * self.spatial);
        let m = (n * s) as f32;
        grad.fill(0.0);
        for c in 0..channels {
            // dβ = Σ dy, dγ = Σ dy·x̂.
            let (mut d_beta, mut d_gamma) = (0.0f64, 0.0f64);
            for row in 0..n {
                let at = row * width + c * s..row * width + (c + 1) * s;
                for (&d, &z) in delta[at.clone()].iter().zip(&self.normalised[at]) {
                    d_beta += f64::from(d);
                    d_gamma += f64::from(d * z);
                }
            }
            grad[c] = d_gamma as f32;
            grad[channels + c] = d_beta as f32;
            if input_grad {
                // dx = γ/(σ·m) · (m·dy − dβ − x̂·dγ).
                let k = params[c] * self.inv_std[c] / m;
                let (d_beta, d_gamma) = (d_beta as f32, d_gamma as f32);
                for row in 0..n {
                    let at = row * width + c * s..row * width + (c + 1) * s;
                    for (d, &z) in delta[at.clone()].iter_mut().zip(&self.normalised[at]) {
                        *d = k * (m * *d - d_beta - z * d_gamma);
                    }
                }
            }
        }
    }

    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        let (channels, s, width) = (self.channels, self.spatial, self.channels * self.spatial);
        for c in 0..channels {
            let scale = params[c] / (params[3 * channels + c] + EPS).sqrt();
            let shift = params[channels + c] - params[2 * channels + c] * scale;
            for row in 0..n {
                let at = row * width + c * s..row * width + (c + 1) * s;
                for (o, &x) in out[at.clone()].iter_mut().zip(&input[at]) {
                    *o = x * scale + shift;
                }
            }
        }
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::check_gradients;
    use gradus_data::seeded_rng;
    use proptest::prelude::*;
    use rand::Rng as _;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn batch_norm_gradients_match_finite_differences(
            channels in 1usize..4, spatial in 1usize..5, n in 1usize..4, seed: u64,
        ) {
            // At least 3 values a channel, spread out: a batch's σ well above ε.
            prop_assume!(n * spatial >= 3);
            let mut layer = BatchNorm::new(channels, spatial);
            let mut rng = seeded_rng(seed);
            let x: Vec<f32> = (0..n * channels * spatial).map(|i| (i % 7) as f32 * 0.3 + rng.random_range(-0.1f32..0.1)).collect();
            check_gradients(&mut layer, &x, n, 1e-3, seed);
        }
    }

    /// PyTorch 2.15, torch.nn.BatchNorm2d(2) on x = sin(0.7·i) (i = 0 … 23)
    /// shaped (3, 2, 2, 2), γ = (1.5, −0.5), β = (0.1, 0.2): the training
    /// output's first row, and the running statistics after that one step.
    /// Made by bench/reference/torch_batchnorm.py.
    #[test]
    // PyTorch's values are pasted as printed.
    #[allow(clippy::excessive_precision)]
    fn batch_norm_matches_pytorch_in_training_and_at_inference() {
        let x: Vec<f32> = (0..24).map(|i| (0.7 * i as f64).sin() as f32).collect();
        let mut layer = BatchNorm::new(2, 4);
        let mut params = vec![1.5, -0.5, 0.1, 0.2, 0.0, 0.0, 1.0, 1.0];
        let mut out = vec![0.0; 24];
        layer.forward(&params, &x, 3, &mut out, &mut seeded_rng(0));
        layer.update_buffers(&mut params);
        let want_out = [-0.40160349, 1.0731125, 1.8542465, 1.574419, -0.055730272, 0.44476706, 0.82485765, 0.90577906];
        for (a, b) in out[..8].iter().zip(want_out) {
            assert!((a - b).abs() < 1e-5, "{:?} vs {want_out:?}", &out[..8]);
        }
        let want_running = [0.021912141, -0.0015408335, 0.94683921, 0.95120054];
        for (a, b) in params[4..].iter().zip(want_running) {
            assert!((a - b).abs() < 1e-5, "{:?} vs {want_running:?}", &params[4..]);
        }
        // Inference reads the running statistics.
        let mut predicted = vec![0.0; 24];
        layer.predict(&params, &x, 3, &mut predicted, &mut Vec::new());
        let want_eval = [0.06622187, 1.0593002, 1.5853182, 1.3968815, 0.027474167, 0.37904355, 0.64603442, 0.70287687];
        for (a, b) in predicted[..8].iter().zip(want_eval) {
            assert!((a - b).abs() < 1e-5, "{:?} vs {want_eval:?}", &predicted[..8]);
        }
    }
}
