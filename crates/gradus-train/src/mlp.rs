//! The multi-layer perceptron: Dense layers with an activation (and optional
//! dropout) between them, a linear output layer, and a hand-written backward
//! pass over faer GEMMs. Work buffers are kept between steps and only grow
//! when the batch size does.
//!
//! Parameters are laid out layer by layer as `[W₁, b₁, W₂, b₂, ...]`, each
//! `W` fan_in x fan_out row-major so that a layer computes `Z = A·W + b`.

use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef as FaerRef, Par};
use gradus_data::{MatRef, Rng, seeded_rng};
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::model::{NamedParams, rescale_output_layer};
use crate::{Activation, Loss, Model, Targets, TrainError};

/// How weights are initialised (biases start at zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    /// He for ReLU and GELU, Xavier for tanh and sigmoid.
    #[default]
    Auto,
    /// He (Kaiming) normal, N(0, 2/fan_in) — He et al. 2015.
    He,
    /// Xavier (Glorot) uniform, U(±√(6/(fan_in+fan_out))) — Glorot & Bengio 2010.
    Xavier,
}

/// The architecture of an MLP.
///
/// | field | meaning | range |
/// |---|---|---|
/// | `n_inputs` | features | ≥ 1 |
/// | `hidden` | width of each hidden layer; empty is a linear model | each ≥ 1 |
/// | `n_outputs` | 1 for regression and binary, k for k classes | ≥ 1 |
/// | `activation` | between hidden layers | relu, tanh, sigmoid, gelu |
/// | `dropout` | probability of zeroing a hidden unit in training | [0, 1) |
/// | `init` | weight initialisation | auto, he, xavier |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub n_inputs: usize,
    pub hidden: Vec<usize>,
    pub n_outputs: usize,
    pub activation: Activation,
    pub dropout: f32,
    pub init: WeightInit,
}

impl MlpSpec {
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.n_inputs == 0 || self.n_outputs == 0 {
            return Err(TrainError::Mismatch("an MLP needs at least one input and one output".into()));
        }
        if self.hidden.contains(&0) {
            return Err(TrainError::invalid("hidden layer width", 0, "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(TrainError::invalid("dropout", self.dropout, "must be in [0, 1)"));
        }
        Ok(())
    }

    /// Layer widths from input to output.
    pub fn widths(&self) -> Vec<usize> {
        std::iter::once(self.n_inputs).chain(self.hidden.iter().copied()).chain([self.n_outputs]).collect()
    }
}

/// Where one Dense layer's parameters sit in the flat buffer.
#[derive(Clone, Debug)]
struct Layer {
    fan_in: usize,
    fan_out: usize,
    w: Range<usize>,
    b: Range<usize>,
}

/// A multi-layer perceptron on the flat-parameter [`Model`] trait.
#[derive(Clone, Debug)]
pub struct Mlp {
    spec: MlpSpec,
    layers: Vec<Layer>,
    params: Vec<f32>,
    penalised: Vec<Range<usize>>,
    dropout_rng: Rng,
    /// Per layer: pre-activations Z (n x fan_out).
    z: Vec<Vec<f32>>,
    /// Per hidden layer: activations after dropout (n x fan_out).
    a: Vec<Vec<f32>>,
    /// Per hidden layer: the dropout scale of each unit (0 or 1/(1−p)).
    mask: Vec<Vec<f32>>,
    /// Back-propagated deltas, two buffers used in turn.
    delta: [Vec<f32>; 2],
    /// The first layer's inputs when a batch has all-zero columns (pixels
    /// that are blank in every image of it): the columns that are not, and
    /// the packed inputs, weights and weight gradient restricted to them.
    sparse_input: SparseInput,
    /// Whether to skip all-zero input columns (always, but for tests).
    pack_inputs: bool,
}

/// Work buffers for skipping the all-zero input columns of a batch. A zero
/// column contributes exactly nothing to `X·W` and its row of `Xᵀ·dZ` is
/// exactly zero, so dropping it changes no result, only the work.
#[derive(Clone, Debug, Default)]
struct SparseInput {
    active: Vec<usize>,
    x: Vec<f32>,
    w: Vec<f32>,
    grad_w: Vec<f32>,
}

/// The share of a batch's columns that must be all zero before packing pays.
const MIN_ZERO_COLUMNS: f64 = 0.1;

impl Mlp {
    pub fn new(spec: MlpSpec) -> Result<Self, TrainError> {
        spec.validate()?;
        let dims = spec.widths();
        let mut layers = Vec::new();
        let mut offset = 0;
        for pair in dims.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let w = offset..offset + fan_in * fan_out;
            let b = w.end..w.end + fan_out;
            offset = b.end;
            layers.push(Layer { fan_in, fan_out, w, b });
        }
        let hidden = layers.len() - 1;
        Ok(Self {
            penalised: layers.iter().map(|l| l.w.clone()).collect(),
            params: vec![0.0; offset],
            layers,
            spec,
            dropout_rng: seeded_rng(0),
            z: Vec::new(),
            a: vec![Vec::new(); hidden],
            mask: vec![Vec::new(); hidden],
            delta: [Vec::new(), Vec::new()],
            sparse_input: SparseInput::default(),
            pack_inputs: true,
        })
    }

    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    /// Z = A·W + b for layer `l`, into `z` (n x fan_out).
    fn dense(&self, l: usize, input: &[f32], n: usize, z: &mut [f32]) {
        let layer = &self.layers[l];
        affine(input, n, &self.params[layer.w.clone()], &self.params[layer.b.clone()], z);
    }

    /// Packs the first layer's inputs and weights down to the columns of `x`
    /// that are not all zero, when enough are; returns whether it did.
    fn pack_active_inputs(&mut self, x: MatRef) -> bool {
        if !self.pack_inputs {
            return false;
        }
        let (n, d) = (x.rows(), x.cols());
        let mut nonzero = vec![false; d];
        for i in 0..n {
            for (flag, &v) in nonzero.iter_mut().zip(x.row(i)) {
                *flag |= v != 0.0;
            }
        }
        let sp = &mut self.sparse_input;
        sp.active.clear();
        sp.active.extend((0..d).filter(|&j| nonzero[j]));
        if (d - sp.active.len()) as f64 <= MIN_ZERO_COLUMNS * d as f64 {
            return false;
        }
        let fan_out = self.layers[0].fan_out;
        sp.x.clear();
        for i in 0..n {
            let row = x.row(i);
            sp.x.extend(sp.active.iter().map(|&j| row[j]));
        }
        let w = &self.params[self.layers[0].w.clone()];
        sp.w.clear();
        for &j in &sp.active {
            sp.w.extend_from_slice(&w[j * fan_out..(j + 1) * fan_out]);
        }
        true
    }
}

/// `z = input·w + b` with `input` n x fan_in, `w` fan_in x fan_out, both row-major.
fn affine(input: &[f32], n: usize, w: &[f32], bias: &[f32], z: &mut [f32]) {
    let fan_out = bias.len();
    let fan_in = w.len() / fan_out;
    let a = FaerRef::from_row_major_slice(input, n, fan_in);
    let w = FaerRef::from_row_major_slice(w, fan_in, fan_out);
    matmul(MatMut::from_row_major_slice_mut(z, n, fan_out), Accum::Replace, a, w, 1.0f32, Par::Seq);
    gradus_optim::clear_upper_state();
    add_bias(z, bias);
}

crate::simd::multiversion! {
    /// Inverted dropout: zeroes each of `a` with probability `p` and scales
    /// the rest by 1/(1−p), keeping each unit's factor in `mask` for the
    /// backward pass. Unit i is dropped when a hash of (`key`, i) falls
    /// below p·2³²: a counter-based stream, so the loop vectorises, where
    /// drawing every unit's number from the ChaCha generator did not. The
    /// hash is Wellons' `lowbias32`, a bijection of u32 with full avalanche;
    /// `key` comes fresh from the model's seeded generator at every call.
    #[allow(clippy::needless_range_loop)]
    fn dropout(key: u32, p: f32, a: &mut [f32], mask: &mut [f32]) {
        let keep = 1.0 / (1.0 - p);
        let threshold = (f64::from(p) * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32;
        let mask = &mut mask[..a.len()];
        for i in 0..a.len() {
            let mut h = key ^ (i as u32).wrapping_mul(0x9e37_79b9);
            h ^= h >> 16;
            h = h.wrapping_mul(0x7feb_352d);
            h ^= h >> 15;
            h = h.wrapping_mul(0x846c_a68b);
            h ^= h >> 16;
            mask[i] = if h < threshold { 0.0 } else { keep };
            a[i] *= mask[i];
        }
    }
}

crate::simd::multiversion! {
    /// Adds `bias` to every row of the row-major `z`.
    fn add_bias(z: &mut [f32], bias: &[f32]) {
        let k = bias.len();
        for row in z.chunks_exact_mut(k) {
            let row = &mut row[..k];
            for j in 0..k {
                row[j] += bias[j];
            }
        }
    }
}

crate::simd::multiversion! {
    /// Sums the rows of the row-major `delta` into `out` (a bias gradient).
    fn sum_rows(delta: &[f32], out: &mut [f32]) {
        let k = out.len();
        out.fill(0.0);
        for row in delta.chunks_exact(k) {
            let row = &row[..k];
            for j in 0..k {
                out[j] += row[j];
            }
        }
    }
}

impl Model for Mlp {
    fn n_inputs(&self) -> usize {
        self.spec.n_inputs
    }

    fn n_outputs(&self) -> usize {
        self.spec.n_outputs
    }

    fn params(&self) -> &[f32] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    fn penalised(&self) -> &[Range<usize>] {
        &self.penalised
    }

    fn init_params(&mut self, rng: &mut Rng) {
        let he = match self.spec.init {
            WeightInit::He => true,
            WeightInit::Xavier => false,
            WeightInit::Auto => matches!(self.spec.activation, Activation::Relu | Activation::Gelu),
        };
        for layer in &self.layers {
            let (fan_in, fan_out) = (layer.fan_in as f32, layer.fan_out as f32);
            let weights = &mut self.params[layer.w.clone()];
            if he {
                let std = (2.0 / fan_in).sqrt();
                for w in weights {
                    let e: f32 = StandardNormal.sample(rng);
                    *w = std * e;
                }
            } else {
                let bound = (6.0 / (fan_in + fan_out)).sqrt();
                for w in weights {
                    *w = rng.random_range(-bound..=bound);
                }
            }
            self.params[layer.b.clone()].fill(0.0);
        }
        self.dropout_rng = seeded_rng(rng.random());
    }

    fn forward_backward(&mut self, x: MatRef, y: Targets, loss: Loss, grad: &mut [f32]) -> f64 {
        let n = x.rows();
        let n_layers = self.layers.len();
        assert_eq!(x.cols(), self.spec.n_inputs, "x has one column per model input");
        assert_eq!(grad.len(), self.params.len(), "gradient has the parameters' shape");
        let act = self.spec.activation;
        let p = self.spec.dropout;

        // Forward, keeping Z of every layer and the (dropped-out) activations.
        let mut z = std::mem::take(&mut self.z);
        z.resize(n_layers, Vec::new());
        let mut a = std::mem::take(&mut self.a);
        let packed = self.pack_active_inputs(x);
        for l in 0..n_layers {
            let width = self.layers[l].fan_out;
            z[l].resize(n * width, 0.0);
            if l == 0 && packed {
                let bias = &self.params[self.layers[0].b.clone()];
                affine(&self.sparse_input.x, n, &self.sparse_input.w, bias, &mut z[0]);
            } else {
                let input: &[f32] = if l == 0 { x.as_slice() } else { &a[l - 1] };
                self.dense(l, input, n, &mut z[l]);
            }
            if l + 1 < n_layers {
                a[l].resize(n * width, 0.0);
                act.apply_slice(&z[l], &mut a[l]);
                if p > 0.0 {
                    let mask = &mut self.mask[l];
                    mask.resize(n * width, 0.0);
                    dropout(self.dropout_rng.random(), p, &mut a[l], mask);
                }
            }
        }

        // Backward: delta holds dLoss/dZ of the current layer.
        let k = self.spec.n_outputs;
        let [mut delta, mut next] = std::mem::take(&mut self.delta);
        delta.resize(n * k, 0.0);
        let value = loss.value_and_grad(&z[n_layers - 1], k, y, &mut delta);
        for l in (0..n_layers).rev() {
            let layer = &self.layers[l];
            let input: &[f32] = if l == 0 { x.as_slice() } else { &a[l - 1] };
            let a_in = FaerRef::from_row_major_slice(input, n, layer.fan_in);
            let d = FaerRef::from_row_major_slice(&delta[..n * layer.fan_out], n, layer.fan_out);
            if l == 0 && packed {
                // Only the active columns' rows of dW = Xᵀ·dZ are non-zero.
                let sp = &mut self.sparse_input;
                let n_active = sp.active.len();
                sp.grad_w.resize(n_active * layer.fan_out, 0.0);
                let xa = FaerRef::from_row_major_slice(&sp.x, n, n_active);
                let gwa = MatMut::from_row_major_slice_mut(&mut sp.grad_w, n_active, layer.fan_out);
                matmul(gwa, Accum::Replace, xa.transpose(), d, 1.0f32, Par::Seq);
                gradus_optim::clear_upper_state();
                let gw = &mut grad[layer.w.clone()];
                gw.fill(0.0);
                for (row, &j) in sp.grad_w.chunks_exact(layer.fan_out).zip(&sp.active) {
                    gw[j * layer.fan_out..(j + 1) * layer.fan_out].copy_from_slice(row);
                }
            } else {
                let gw = MatMut::from_row_major_slice_mut(&mut grad[layer.w.clone()], layer.fan_in, layer.fan_out);
                matmul(gw, Accum::Replace, a_in.transpose(), d, 1.0f32, Par::Seq);
                gradus_optim::clear_upper_state();
            }
            let gb = &mut grad[layer.b.clone()];
            sum_rows(&delta[..n * layer.fan_out], gb);
            if l > 0 {
                // dA = delta·Wᵀ, then through dropout and the activation.
                next.resize(n * layer.fan_in, 0.0);
                let w = FaerRef::from_row_major_slice(&self.params[layer.w.clone()], layer.fan_in, layer.fan_out);
                let da = MatMut::from_row_major_slice_mut(&mut next[..n * layer.fan_in], n, layer.fan_in);
                matmul(da, Accum::Replace, d, w.transpose(), 1.0f32, Par::Seq);
                gradus_optim::clear_upper_state();
                let da = &mut next[..n * layer.fan_in];
                if p > 0.0 {
                    da.iter_mut().zip(&self.mask[l - 1]).for_each(|(v, m)| *v *= m);
                }
                act.backprop_slice(&z[l - 1], da);
                std::mem::swap(&mut delta, &mut next);
            }
        }
        self.z = z;
        self.a = a;
        self.delta = [delta, next];
        value
    }

    fn named_params(&self) -> Vec<NamedParams> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(l, layer)| {
                [
                    NamedParams {
                        name: format!("dense.{l}.weight"),
                        shape: vec![layer.fan_in, layer.fan_out],
                        range: layer.w.clone(),
                    },
                    NamedParams { name: format!("dense.{l}.bias"), shape: vec![layer.fan_out], range: layer.b.clone() },
                ]
            })
            .collect()
    }

    fn rescale_outputs(&mut self, scale: &[f32], shift: &[f32]) {
        let last = self.layers.last().expect("an MLP has an output layer").clone();
        let (head, b) = self.params.split_at_mut(last.b.start);
        rescale_output_layer(&mut head[last.w.clone()], &mut b[..last.fan_out], scale, shift);
    }

    fn predict(&self, x: MatRef, out: &mut [f32]) {
        let n = x.rows();
        assert_eq!(x.cols(), self.spec.n_inputs, "x has one column per model input");
        assert_eq!(out.len(), n * self.spec.n_outputs, "out is n x n_outputs");
        let n_layers = self.layers.len();
        let mut input = x.as_slice().to_vec();
        for l in 0..n_layers {
            if l + 1 == n_layers {
                self.dense(l, &input, n, out);
            } else {
                let mut z = vec![0.0; n * self.layers[l].fan_out];
                self.dense(l, &input, n, &mut z);
                self.spec.activation.apply_in_place(&mut z);
                input = z;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Penalty, regularised_loss_and_grad};
    use proptest::prelude::*;

    fn spec(hidden: Vec<usize>, k: usize, activation: Activation, dropout: f32) -> MlpSpec {
        MlpSpec { n_inputs: 3, hidden, n_outputs: k, activation, dropout, init: WeightInit::Auto }
    }

    /// Checks the analytic gradient of the regularised objective against
    /// central differences. Each evaluation runs on a clone of the model, so
    /// dropout draws the same mask every time.
    /// Returns false (and checks nothing) when a ReLU unit sits so close to
    /// its kink that a difference step could cross it.
    fn check(spec: MlpSpec, loss: Loss, n: usize, seed: u64, l2: f32) -> bool {
        let mut rng = seeded_rng(seed);
        let mut model = Mlp::new(spec.clone()).unwrap();
        model.init_params(&mut rng);
        crate::model::tests::keep_weights_off_the_l1_kink(&mut model);
        let penalty = Penalty { l1: l2 * 0.5, l2 };
        let x: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-2.0..2.0)).collect();
        let x = MatRef::new(&x, n, 3).unwrap();
        let real: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        let classes = if loss == Loss::BinaryCrossEntropy { 2 } else { spec.n_outputs as u32 };
        let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes)).collect();
        let y = if matches!(loss, Loss::BinaryCrossEntropy | Loss::SoftmaxCrossEntropy) {
            Targets::Classes(&labels)
        } else {
            Targets::Real(&real)
        };
        let eval = |params: &[f32], grad: &mut [f32]| {
            let mut m = model.clone();
            m.params_mut().copy_from_slice(params);
            regularised_loss_and_grad(&mut m, x, y, loss, penalty, grad)
        };
        let params = model.params().to_vec();
        let mut grad = vec![0.0; params.len()];
        eval(&params, &mut grad);
        // MAE and Huber have kinks (zero error; |error| = δ): differences
        // across them are meaningless, so such draws are skipped.
        if let (Loss::Mae | Loss::Huber { .. }, Targets::Real(t)) = (loss, y) {
            // The training forward pass on a clone draws the same dropout mask.
            let mut probe = model.clone();
            let mut scratch = vec![0.0; probe.params().len()];
            probe.forward_backward(x, y, loss, &mut scratch);
            let out = probe.z.last().expect("an output layer");
            let delta = if let Loss::Huber { delta } = loss { delta } else { 0.0 };
            if out.iter().zip(t).any(|(o, t)| ((o - t).abs() - delta).abs() < 0.05) {
                return false;
            }
        }
        if spec.activation == Activation::Relu {
            let mut probe = model.clone();
            regularised_loss_and_grad(&mut probe, x, y, loss, penalty, &mut grad);
            let hidden_z = &probe.z[..probe.z.len() - 1];
            if hidden_z.iter().flatten().any(|z| z.abs() < 0.05) {
                return false;
            }
        }
        let mut scratch = grad.clone();
        // A small step keeps ReLU units from crossing their kink; smooth
        // activations take a larger one, where f32 rounding matters less.
        let h = if spec.activation == Activation::Relu { 2e-3f32 } else { 1e-2 };
        let mut central = |i: usize, h: f32| {
            let mut p = params.clone();
            p[i] = params[i] + h;
            let plus = eval(&p, &mut scratch);
            p[i] = params[i] - h;
            let minus = eval(&p, &mut scratch);
            (plus - minus) / (2.0 * h as f64)
        };
        // Richardson extrapolation of central differences at h and h/2 cancels
        // the h² error term, which deep smooth networks make noticeable.
        let numeric: Vec<f32> =
            (0..params.len()).map(|i| ((4.0 * central(i, h / 2.0) - central(i, h)) / 3.0) as f32).collect();
        let diff: f32 = grad.iter().zip(&numeric).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
        // Relative to the gradient's norm, floored at 1e-2: below that the f32
        // forward pass's rounding (about 1e-5 absolute here) dominates.
        let norm: f32 = grad.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-2);
        assert!(diff / norm < 1e-3, "{spec:?} {loss:?}: relative error {}: {grad:?} vs {numeric:?}", diff / norm);
        true
    }

    fn any_activation() -> impl Strategy<Value = Activation> {
        // ReLU's kink makes central differences wrong when a unit sits within h
        // of zero; the smooth activations are checked everywhere and ReLU
        // below on inputs where that is rare.
        prop_oneof![Just(Activation::Tanh), Just(Activation::Sigmoid), Just(Activation::Gelu)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn smooth_mlp_gradients_match_finite_differences(
            hidden in prop::collection::vec(1usize..6, 0..3),
            act in any_activation(),
            dropout in prop_oneof![Just(0.0f32), 0.1f32..0.5],
            loss_pick in 0usize..5,
            n in 1usize..8,
            seed: u64,
            l2 in prop_oneof![Just(0.0f32), 0.0f32..0.5],
        ) {
            let (loss, k) = [
                (Loss::Mse, 1),
                (Loss::BinaryCrossEntropy, 1),
                (Loss::SoftmaxCrossEntropy, 3),
                (Loss::Huber { delta: 0.7 }, 1),
                (Loss::Mae, 1),
            ][loss_pick];
            // A draw on a loss's kink is rejected (and replaced) rather than passed.
            prop_assume!(check(spec(hidden, k, act, dropout), loss, n, seed, l2));
        }
    }

    #[test]
    fn relu_mlp_gradients_match_finite_differences() {
        let mut checked = 0;
        for seed in 0..60 {
            checked +=
                check(spec(vec![5, 4], 3, Activation::Relu, 0.0), Loss::SoftmaxCrossEntropy, 4, seed, 0.1) as u32;
            checked += check(spec(vec![6], 1, Activation::Relu, 0.3), Loss::Mse, 4, seed, 0.0) as u32;
        }
        assert!(checked >= 30, "only {checked} of 120 draws were away from the ReLU kink");
    }

    #[test]
    fn dropout_drops_independently_at_the_requested_rate() {
        let n = 200_000;
        for p in [0.1f32, 0.3, 0.5] {
            let mut a = vec![1.0f32; n];
            let mut mask = vec![0.0; n];
            dropout(12345, p, &mut a, &mut mask);
            let dropped: Vec<bool> = mask.iter().map(|&m| m == 0.0).collect();
            let rate = dropped.iter().filter(|&&d| d).count() as f64 / n as f64;
            // The binomial standard error at n = 2e5 is at most 0.0011.
            assert!((rate - p as f64).abs() < 0.006, "p = {p}: dropped {rate}");
            let both = dropped.windows(2).filter(|w| w[0] && w[1]).count() as f64 / (n - 1) as f64;
            assert!((both - (p * p) as f64).abs() < 0.006, "p = {p}: neighbours both dropped {both}");
            let keep = 1.0 / (1.0 - p);
            assert!(mask.iter().zip(&a).all(|(&m, &v)| (m == 0.0 || m == keep) && v == m));
            // Another key, another mask.
            let mut other = vec![0.0; n];
            dropout(54321, p, &mut vec![1.0; n], &mut other);
            let same = mask.iter().zip(&other).filter(|(x, y)| (**x == 0.0) == (**y == 0.0)).count() as f64;
            let expected = (p * p + (1.0 - p) * (1.0 - p)) as f64;
            assert!((same / n as f64 - expected).abs() < 0.006, "p = {p}: masks agree on {same}");
        }
    }

    #[test]
    fn predict_without_dropout_matches_the_training_forward_pass() {
        let mut model = Mlp::new(spec(vec![4, 3], 2, Activation::Tanh, 0.0)).unwrap();
        model.init_params(&mut seeded_rng(3));
        let x = [0.5, -1.0, 2.0, 1.5, 0.0, -0.5];
        let x = MatRef::new(&x, 2, 3).unwrap();
        let mut out = [0.0; 4];
        model.predict(x, &mut out);
        let mut grad = vec![0.0; model.params().len()];
        model.forward_backward(x, Targets::Classes(&[0, 1]), Loss::SoftmaxCrossEntropy, &mut grad);
        assert_eq!(out.as_slice(), model.z.last().unwrap().as_slice());
    }

    #[test]
    fn skipping_all_zero_input_columns_changes_no_gradient() {
        // Half the input columns are zero in every row, so the packed path runs.
        let spec = MlpSpec { n_inputs: 6, ..spec(vec![5], 3, Activation::Relu, 0.0) };
        let mut rng = seeded_rng(9);
        let mut model = Mlp::new(spec).unwrap();
        model.init_params(&mut rng);
        let x: Vec<f32> = (0..8 * 6).map(|i| if i % 6 < 3 { 0.0 } else { rng.random_range(-1.0f32..1.0) }).collect();
        let x = MatRef::new(&x, 8, 6).unwrap();
        let y = Targets::Classes(&[0, 1, 2, 0, 1, 2, 0, 1]);
        let mut dense = model.clone();
        dense.pack_inputs = false;
        let mut packed_grad = vec![0.0; model.params().len()];
        let packed_loss = model.forward_backward(x, y, Loss::SoftmaxCrossEntropy, &mut packed_grad);
        assert_eq!(model.sparse_input.active, [3, 4, 5], "the packed path ran");
        let mut dense_grad = vec![0.0; dense.params().len()];
        let dense_loss = dense.forward_backward(x, y, Loss::SoftmaxCrossEntropy, &mut dense_grad);
        assert!((packed_loss - dense_loss).abs() < 1e-6, "{packed_loss} vs {dense_loss}");
        for (p, d) in packed_grad.iter().zip(&dense_grad) {
            assert!((p - d).abs() < 1e-6, "{packed_grad:?} vs {dense_grad:?}");
        }
        assert!(packed_grad[..3 * 5].iter().all(|&g| g == 0.0), "zero columns get zero weight gradient");
    }

    #[test]
    fn layout_and_penalties_cover_every_layer() {
        let model = Mlp::new(spec(vec![4, 2], 1, Activation::Relu, 0.0)).unwrap();
        // 3·4+4, 4·2+2, 2·1+1
        assert_eq!(model.params().len(), 16 + 10 + 3);
        assert_eq!(model.penalised(), &[0..12, 16..24, 26..28]);
    }

    #[test]
    fn rescale_outputs_maps_predictions_through_scale_and_shift() {
        let mut model = Mlp::new(spec(vec![4], 1, Activation::Gelu, 0.0)).unwrap();
        model.init_params(&mut seeded_rng(5));
        let x = [0.5, -1.0, 2.0, 1.5, 0.0, -0.5];
        let x = MatRef::new(&x, 2, 3).unwrap();
        let (mut before, mut after) = ([0.0; 2], [0.0; 2]);
        model.predict(x, &mut before);
        model.rescale_outputs(&[3.0], &[-2.0]);
        model.predict(x, &mut after);
        for (a, b) in after.iter().zip(before) {
            assert!((a - (3.0 * b - 2.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn invalid_specs_are_rejected() {
        assert!(Mlp::new(spec(vec![4, 0], 1, Activation::Relu, 0.0)).is_err());
        assert!(Mlp::new(spec(vec![4], 1, Activation::Relu, 1.0)).is_err());
        assert!(Mlp::new(MlpSpec { n_inputs: 0, ..spec(vec![], 1, Activation::Relu, 0.0) }).is_err());
    }
}
