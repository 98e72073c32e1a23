//! Periodic embeddings of numeric inputs, the "PLR" embeddings of
//! Gorishniy, Rubachev and Babenko 2022 ("On Embeddings for Numerical
//! Features in Tabular Deep Learning"): each embedded input v becomes
//! ReLU(W·[sin(2π·c·v), cos(2π·c·v)] + b), with k frequencies c and a d × 2k
//! linear map (W, b) of its own, all three learned. An MLP sees every input
//! as it is, followed by the embeddings, so the first Dense layer can use
//! a numeric column's value, its piecewise-linear bins and its embedding
//! alike. The frequencies start from N(0, σ²): σ sets how finely the
//! embedding can resolve a column (on standardised inputs) and is tuned.

use std::f32::consts::TAU;
use std::ops::Range;

use gradus_data::Rng;
use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::layer::Layer;

/// Which inputs an MLP embeds, and how.
///
/// | field | meaning | range |
/// |---|---|---|
/// | `columns` | the inputs embedded (each a numeric column's value), in order | distinct, each < the MLP's inputs |
/// | `frequencies` | k, frequencies per input | ≥ 1 |
/// | `dim` | d, values of each input's embedding | ≥ 1 |
/// | `sigma` | σ, the standard deviation of the initial frequencies | > 0 |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeriodicSpec {
    pub columns: Vec<usize>,
    pub frequencies: usize,
    pub dim: usize,
    pub sigma: f32,
}

impl PeriodicSpec {
    /// Checks it against an MLP of `n_inputs` inputs.
    pub fn validate(&self, n_inputs: usize) -> Result<(), TrainError> {
        if self.columns.is_empty() {
            return Err(TrainError::Mismatch("periodic embeddings need at least one numeric input to embed".into()));
        }
        if let Some(&bad) = self.columns.iter().find(|&&c| c >= n_inputs) {
            return Err(TrainError::Mismatch(format!(
                "periodic embeddings: input {bad} does not exist (the model has {n_inputs} inputs)"
            )));
        }
        let mut sorted = self.columns.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|p| p[0] == p[1]) {
            return Err(TrainError::Mismatch("periodic embeddings: an input is embedded twice".into()));
        }
        if self.frequencies == 0 {
            return Err(TrainError::invalid("periodic frequencies", 0, "must be at least 1"));
        }
        if self.dim == 0 {
            return Err(TrainError::invalid("periodic embedding dim", 0, "must be at least 1"));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(TrainError::invalid("periodic sigma", self.sigma, "must be a positive number"));
        }
        Ok(())
    }

    /// The parameters: frequencies, weights and biases for each input.
    pub fn n_params(&self) -> usize {
        self.columns.len() * (self.frequencies + 2 * self.frequencies * self.dim + self.dim)
    }

    /// Values the embeddings add to each row.
    pub fn added_width(&self) -> usize {
        self.columns.len() * self.dim
    }
}

/// The layer: each row's inputs, then each embedded input's d values. Its
/// slice is the frequencies (m × k), the weights (m × 2k × d, the 2k
/// rows sin₁…sinₖ, cos₁…cosₖ) and the biases (m × d), for m embedded inputs.
#[derive(Clone, Debug)]
pub(crate) struct PeriodicEmbedding {
    spec: PeriodicSpec,
    width: usize,
    /// The last forward pass's sines and cosines (n × m × 2k) and
    /// pre-activations (n × m × d).
    features: Vec<f32>,
    pre: Vec<f32>,
}

impl PeriodicEmbedding {
    pub fn new(spec: PeriodicSpec, width: usize) -> Self {
        Self { spec, width, features: Vec::new(), pre: Vec::new() }
    }

    fn m(&self) -> usize {
        self.spec.columns.len()
    }

    fn frequencies(&self) -> Range<usize> {
        0..self.m() * self.spec.frequencies
    }

    fn weights(&self) -> Range<usize> {
        let start = self.frequencies().end;
        start..start + self.m() * 2 * self.spec.frequencies * self.spec.dim
    }

    fn biases(&self) -> Range<usize> {
        let start = self.weights().end;
        start..start + self.m() * self.spec.dim
    }

    /// One row: `x` to `out`, with input j's sines and cosines in
    /// `features[j·2k..]` and pre-activations in `pre[j·d..]`.
    fn embed_row(&self, params: &[f32], x: &[f32], out: &mut [f32], features: &mut [f32], pre: &mut [f32]) {
        let (k, d, w) = (self.spec.frequencies, self.spec.dim, self.width);
        let (c, weights, biases) = (&params[self.frequencies()], &params[self.weights()], &params[self.biases()]);
        out[..w].copy_from_slice(&x[..w]);
        for (j, &column) in self.spec.columns.iter().enumerate() {
            let v = x[column];
            let f = &mut features[j * 2 * k..(j + 1) * 2 * k];
            for i in 0..k {
                let (s, co) = (TAU * c[j * k + i] * v).sin_cos();
                f[i] = s;
                f[k + i] = co;
            }
            let z = &mut pre[j * d..(j + 1) * d];
            z.copy_from_slice(&biases[j * d..(j + 1) * d]);
            for (fi, row) in f.iter().zip(weights[j * 2 * k * d..(j + 1) * 2 * k * d].chunks_exact(d)) {
                for (zz, ww) in z.iter_mut().zip(row) {
                    *zz += fi * ww;
                }
            }
            for (o, &zz) in out[w + j * d..w + (j + 1) * d].iter_mut().zip(z.iter()) {
                *o = zz.max(0.0);
            }
        }
    }
}

impl Layer for PeriodicEmbedding {
    fn kind(&self) -> &'static str {
        "periodic"
    }

    fn input_width(&self) -> usize {
        self.width
    }

    fn output_width(&self) -> usize {
        self.width + self.spec.added_width()
    }

    fn n_params(&self) -> usize {
        self.spec.n_params()
    }

    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        let (m, k, d) = (self.m(), self.spec.frequencies, self.spec.dim);
        vec![
            ("frequency", vec![m, k], self.frequencies()),
            ("weight", vec![m, 2 * k, d], self.weights()),
            ("bias", vec![m, d], self.biases()),
        ]
    }

    fn penalised(&self) -> Vec<Range<usize>> {
        vec![self.weights()]
    }

    /// Frequencies from N(0, σ²); weights and biases from U(±1/√(2k)),
    /// PyTorch's default for a linear layer of 2k inputs.
    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let normal = Normal::new(0.0f32, self.spec.sigma).expect("σ checked positive");
        for c in &mut params[self.frequencies()] {
            *c = normal.sample(rng);
        }
        let bound = 1.0 / ((2 * self.spec.frequencies) as f32).sqrt();
        for p in &mut params[self.weights().start..self.biases().end] {
            *p = rng.random_range(-bound..=bound);
        }
    }

    fn forward(&mut self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        let (m, k, d, ow) = (self.m(), self.spec.frequencies, self.spec.dim, self.output_width());
        let (mut features, mut pre) = (std::mem::take(&mut self.features), std::mem::take(&mut self.pre));
        features.resize(n * m * 2 * k, 0.0);
        pre.resize(n * m * d, 0.0);
        for row in 0..n {
            self.embed_row(
                params,
                &input[row * self.width..(row + 1) * self.width],
                &mut out[row * ow..(row + 1) * ow],
                &mut features[row * m * 2 * k..(row + 1) * m * 2 * k],
                &mut pre[row * m * d..(row + 1) * m * d],
            );
        }
        (self.features, self.pre) = (features, pre);
    }

    fn backward(
        &mut self,
        params: &[f32],
        input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        grad: &mut [f32],
        input_grad: bool,
    ) {
        let (m, k, d, w, ow) = (self.m(), self.spec.frequencies, self.spec.dim, self.width, self.output_width());
        let (frequencies, weights, biases) = (self.frequencies(), self.weights(), self.biases());
        let (c, wts) = (&params[frequencies.clone()], &params[weights.clone()]);
        grad.fill(0.0);
        if input_grad {
            scratch.resize(n * w, 0.0);
        }
        let (mut dz, mut df) = (vec![0.0f32; d], vec![0.0f32; 2 * k]);
        for row in 0..n {
            let x = &input[row * w..(row + 1) * w];
            let delta_row = &delta[row * ow..(row + 1) * ow];
            if input_grad {
                scratch[row * w..(row + 1) * w].copy_from_slice(&delta_row[..w]);
            }
            for (j, &column) in self.spec.columns.iter().enumerate() {
                let v = x[column];
                let f = &self.features[(row * m + j) * 2 * k..(row * m + j + 1) * 2 * k];
                let z = &self.pre[(row * m + j) * d..(row * m + j + 1) * d];
                for ((g, &zz), &dout) in dz.iter_mut().zip(z).zip(&delta_row[w + j * d..w + (j + 1) * d]) {
                    *g = if zz > 0.0 { dout } else { 0.0 };
                }
                for (gb, g) in grad[biases.start + j * d..biases.start + (j + 1) * d].iter_mut().zip(&dz) {
                    *gb += g;
                }
                let block = j * 2 * k * d..(j + 1) * 2 * k * d;
                let gw = &mut grad[weights.start + block.start..weights.start + block.end];
                for (((gw_row, w_row), &fi), dfi) in
                    gw.chunks_exact_mut(d).zip(wts[block].chunks_exact(d)).zip(f).zip(df.iter_mut())
                {
                    let mut s = 0.0;
                    for ((gwv, &wv), &g) in gw_row.iter_mut().zip(w_row).zip(&dz) {
                        *gwv += fi * g;
                        s += wv * g;
                    }
                    *dfi = s;
                }
                // d sin(t)/dt = cos(t), d cos(t)/dt = −sin(t), t = 2π·c·v.
                let mut dv = 0.0;
                for i in 0..k {
                    let dt = df[i] * f[k + i] - df[k + i] * f[i];
                    grad[frequencies.start + j * k + i] += dt * TAU * v;
                    dv += dt * TAU * c[j * k + i];
                }
                if input_grad {
                    scratch[row * w + column] += dv;
                }
            }
        }
        if input_grad {
            std::mem::swap(delta, scratch);
        }
    }

    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], scratch: &mut Vec<f32>) {
        let (m, k, d, ow) = (self.m(), self.spec.frequencies, self.spec.dim, self.output_width());
        scratch.resize(m * (2 * k + d), 0.0);
        let (features, pre) = scratch.split_at_mut(m * 2 * k);
        for row in 0..n {
            self.embed_row(
                params,
                &input[row * self.width..(row + 1) * self.width],
                &mut out[row * ow..(row + 1) * ow],
                features,
                pre,
            );
        }
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradus_data::seeded_rng;
    use proptest::prelude::*;

    /// The layer's outputs in f64, straight from the definition.
    fn reference(spec: &PeriodicSpec, width: usize, params: &[f64], x: &[f64]) -> Vec<f64> {
        let (m, k, d) = (spec.columns.len(), spec.frequencies, spec.dim);
        let (c, rest) = params.split_at(m * k);
        let (wts, b) = rest.split_at(m * 2 * k * d);
        let mut out = Vec::new();
        for row in x.chunks(width) {
            out.extend_from_slice(row);
            for (j, &col) in spec.columns.iter().enumerate() {
                let t: Vec<f64> = (0..k).map(|i| std::f64::consts::TAU * c[j * k + i] * row[col]).collect();
                let f: Vec<f64> = t.iter().map(|t| t.sin()).chain(t.iter().map(|t| t.cos())).collect();
                for o in 0..d {
                    let z = b[j * d + o] + (0..2 * k).map(|r| f[r] * wts[(j * 2 * k + r) * d + o]).sum::<f64>();
                    out.push(z.max(0.0));
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Forward matches the f64 definition; backward (every parameter and
        /// input) matches central differences of it, taken in f64 with a
        /// small step, away from the ReLU's kink.
        #[test]
        fn periodic_embedding_matches_its_definition_and_finite_differences(
            width in 1usize..5, pick in proptest::collection::vec(any::<bool>(), 4), k in 1usize..4,
            d in 1usize..4, n in 1usize..3, seed: u64,
        ) {
            let columns: Vec<usize> = (0..width).filter(|&c| pick[c]).collect();
            prop_assume!(!columns.is_empty());
            let spec = PeriodicSpec { columns, frequencies: k, dim: d, sigma: 0.5 };
            spec.validate(width).unwrap();
            let mut layer = PeriodicEmbedding::new(spec.clone(), width);
            let mut rng = seeded_rng(seed);
            let mut params = vec![0.0f32; layer.n_params()];
            layer.init(&mut params, &mut rng);
            let x: Vec<f32> = (0..n * width).map(|_| rng.random_range(-1.5f32..1.5)).collect();
            let r: Vec<f32> = (0..n * layer.output_width()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let wide = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
            let (p64, x64) = (wide(&params), wide(&x));
            let want = reference(&spec, width, &p64, &x64);
            let mut out = vec![0.0f32; n * layer.output_width()];
            layer.forward(&params, &x, n, &mut out, &mut rng);
            // No pre-activation within reach of the ReLU's kink (a step of h moves one by far less).
            prop_assume!(layer.pre.iter().all(|z| z.abs() > 1e-3));
            for (a, b) in out.iter().zip(&want) {
                prop_assert!((f64::from(*a) - b).abs() < 1e-5, "forward {a} vs {b}");
            }
            let mut predicted = vec![0.0f32; out.len()];
            layer.predict(&params, &x, n, &mut predicted, &mut Vec::new());
            prop_assert_eq!(&predicted, &out);

            let (mut delta, mut scratch) = (r.clone(), Vec::new());
            let mut grad = vec![f32::NAN; layer.n_params()];
            layer.backward(&params, &x, n, &mut delta, &mut scratch, &mut grad, true);
            let value = |p: &[f64], x: &[f64]| -> f64 {
                reference(&spec, width, p, x).iter().zip(&r).map(|(o, r)| o * f64::from(*r)).sum()
            };
            let h = 1e-6;
            let mut numeric = Vec::new();
            for i in 0..p64.len() {
                let (mut plus, mut minus) = (p64.clone(), p64.clone());
                plus[i] += h;
                minus[i] -= h;
                numeric.push((value(&plus, &x64) - value(&minus, &x64)) / (2.0 * h));
            }
            for i in 0..x64.len() {
                let (mut plus, mut minus) = (x64.clone(), x64.clone());
                plus[i] += h;
                minus[i] -= h;
                numeric.push((value(&p64, &plus) - value(&p64, &minus)) / (2.0 * h));
            }
            let analytic: Vec<f32> = grad.iter().chain(&delta).copied().collect();
            prop_assert_eq!(analytic.len(), numeric.len());
            for (i, (a, b)) in analytic.iter().zip(&numeric).enumerate() {
                prop_assert!((f64::from(*a) - b).abs() <= 1e-4 * (1.0 + b.abs()), "gradient {}: {} vs {}", i, a, b);
            }
        }
    }

    #[test]
    fn a_bad_spec_is_refused_naming_what_is_wrong() {
        let spec = PeriodicSpec { columns: vec![0, 2], frequencies: 4, dim: 2, sigma: 1.0 };
        assert!(spec.validate(3).is_ok());
        for (bad, says) in [
            (PeriodicSpec { columns: vec![3], ..spec.clone() }, "input 3 does not exist"),
            (PeriodicSpec { columns: vec![1, 1], ..spec.clone() }, "embedded twice"),
            (PeriodicSpec { columns: vec![], ..spec.clone() }, "at least one numeric input"),
            (PeriodicSpec { frequencies: 0, ..spec.clone() }, "frequencies"),
            (PeriodicSpec { dim: 0, ..spec.clone() }, "dim"),
            (PeriodicSpec { sigma: 0.0, ..spec.clone() }, "sigma"),
        ] {
            let err = bad.validate(3).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
