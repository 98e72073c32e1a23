//! Layers: the steps a [`crate::Network`] is a list of. Each computes a
//! batch's outputs from its inputs (forward) and, given the loss's gradient
//! with respect to its outputs, the gradient of its parameters and of its
//! inputs (backward), each pass hand-written. A layer owns no parameters:
//! it reads its slice of the network's flat buffer (so an optimizer sees one
//! vector) and keeps only the buffers its backward pass needs. Batches are
//! row-major, one row of [`Layer::input_width`] values per sample.
//!
//! Dense layers run over faer GEMMs; activations and dropout are
//! element-wise loops the compiler vectorises.

use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef as FaerRef, Par};
use gradus_data::Rng;
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

use crate::Activation;
use crate::model::rescale_output_layer;
use crate::quant::QuantizedDense;

/// One step of a network. See the module docs.
pub(crate) trait Layer: std::fmt::Debug + Send + Sync {
    /// Its kind, as parameter names show it (`dense` in `dense.0.weight`).
    fn kind(&self) -> &'static str;
    /// Values per row it reads.
    fn input_width(&self) -> usize;
    /// Values per row it writes.
    fn output_width(&self) -> usize;
    /// How many parameters it reads: the length of its slice.
    fn n_params(&self) -> usize {
        0
    }
    /// Its parameter blocks within its slice: a name (`weight`), a shape
    /// and a range; together they cover the slice once.
    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        Vec::new()
    }
    /// The ranges of its slice a weight penalty applies to (not biases).
    fn penalised(&self) -> Vec<Range<usize>> {
        Vec::new()
    }
    /// The ranges of its slice that are state, not weights — a batch norm's
    /// running statistics — which no optimizer step may change; they are
    /// kept in the slice so that they are saved, restored and averaged
    /// with the weights. See [`Self::update_buffers`].
    fn frozen(&self) -> Vec<Range<usize>> {
        Vec::new()
    }
    /// After a training forward pass, updates the state in its slice (see
    /// [`Self::frozen`]) from what that pass saw.
    fn update_buffers(&mut self, _params: &mut [f32]) {}
    /// Sets its initial parameters, drawing from `rng`.
    fn init(&self, _params: &mut [f32], _rng: &mut Rng) {}
    /// The training forward pass over `n` rows of `input` into `out`
    /// (`n` × output width); `rng` serves what is random in training (dropout).
    fn forward(&mut self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], rng: &mut Rng);
    /// The backward pass after [`Self::forward`] on the same `input`: on
    /// entry `delta` holds dLoss/d(outputs), `n` × output width; writes
    /// dLoss/d(params) into `grad` (its slice) and, when `input_grad`,
    /// leaves dLoss/d(inputs) in `delta` (`scratch` is a spare buffer the
    /// layer may swap with it).
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &mut self,
        params: &[f32],
        input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        grad: &mut [f32],
        input_grad: bool,
    );
    /// The inference forward pass (no dropout, no augmentation) over `n`
    /// rows of `input` into `out` (`n` × output width); `scratch` is a
    /// buffer the caller keeps between calls, for the layer's work.
    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], scratch: &mut Vec<f32>);
    /// Maps each output j through `z·scale[j] + shift[j]` by rewriting its
    /// parameters; `false` when it cannot (it has none that would).
    fn rescale_outputs(&self, _params: &mut [f32], _scale: &[f32], _shift: &[f32]) -> bool {
        false
    }
    /// Its int8 form for prediction (see [`crate::quant`]) given its
    /// parameters and the range each of its inputs takes; `None` for a layer that
    /// has none (only dense layers do).
    fn quantized(&self, _params: &[f32], _ranges: Vec<[f32; 2]>) -> Option<QuantizedDense> {
        None
    }
    /// Itself predicting in int8 with `q` (its [`Self::quantized`] form, or
    /// a file's); `None` for a layer with no int8 form or a `q` of another shape.
    fn with_int8(&self, _q: QuantizedDense) -> Option<Box<dyn Layer>> {
        None
    }
    /// Its int8 weights, when it predicts with them.
    fn int8(&self) -> Option<&QuantizedDense> {
        None
    }
    /// For a layer predicting in int8: the f32 weights (its `weight`
    /// block) the int8 ones stand for.
    fn dequantized_weights(&self) -> Option<Vec<f32>> {
        None
    }
    /// Whether [`Self::predict`] copies its input unchanged (dropout at
    /// inference): a network skips the pass.
    fn predicts_identity(&self) -> bool {
        false
    }
    /// The activation it applies, for an activation layer.
    fn activation(&self) -> Option<Activation> {
        None
    }
    fn boxed_clone(&self) -> Box<dyn Layer>;
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

/// How a dense layer's weights are drawn (biases start at zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DenseInit {
    /// He (Kaiming) normal, N(0, 2/fan_in) — He et al. 2015.
    He,
    /// Xavier (Glorot) uniform, U(±√(6/(fan_in+fan_out))) — Glorot & Bengio 2010.
    Xavier,
}

impl DenseInit {
    /// He for ReLU and GELU, Xavier for tanh and sigmoid.
    pub fn auto(activation: Activation) -> Self {
        if matches!(activation, Activation::Relu | Activation::Gelu) { DenseInit::He } else { DenseInit::Xavier }
    }
}

/// A fully connected layer, `Z = A·W + b`: its slice is `W` (fan_in ×
/// fan_out, row-major) then `b`.
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    fan_in: usize,
    fan_out: usize,
    init: DenseInit,
    /// Whether to skip the input columns that are zero in every row of a
    /// batch (pixels blank in every image of it): set for a network's first
    /// layer, whose inputs are data.
    pub skip_zero_columns: bool,
    /// The last forward pass's packed inputs, when it packed them.
    pub sparse_input: SparseInput,
    packed: bool,
}

/// Work buffers for skipping the all-zero input columns of a batch. A zero
/// column contributes exactly nothing to `X·W` and its row of `Xᵀ·dZ` is
/// exactly zero, so dropping it changes no result, only the work.
#[derive(Clone, Debug, Default)]
pub(crate) struct SparseInput {
    pub active: Vec<usize>,
    x: Vec<f32>,
    w: Vec<f32>,
    grad_w: Vec<f32>,
}

/// The share of a batch's columns that must be all zero before packing pays.
const MIN_ZERO_COLUMNS: f64 = 0.1;

impl Dense {
    pub fn new(fan_in: usize, fan_out: usize, init: DenseInit) -> Self {
        Self { fan_in, fan_out, init, skip_zero_columns: false, sparse_input: SparseInput::default(), packed: false }
    }

    fn weights(&self) -> Range<usize> {
        0..self.fan_in * self.fan_out
    }

    fn bias(&self) -> Range<usize> {
        self.fan_in * self.fan_out..(self.fan_in + 1) * self.fan_out
    }

    /// Packs the inputs and weights down to the columns of `x` that are not
    /// all zero, when enough are; returns whether it did.
    fn pack_active_inputs(&mut self, params: &[f32], x: &[f32], n: usize) -> bool {
        let d = self.fan_in;
        let mut nonzero = vec![false; d];
        for row in x.chunks_exact(d).take(n) {
            for (flag, &v) in nonzero.iter_mut().zip(row) {
                *flag |= v != 0.0;
            }
        }
        let sp = &mut self.sparse_input;
        sp.active.clear();
        sp.active.extend((0..d).filter(|&j| nonzero[j]));
        if (d - sp.active.len()) as f64 <= MIN_ZERO_COLUMNS * d as f64 {
            return false;
        }
        let fan_out = self.fan_out;
        sp.x.clear();
        for row in x.chunks_exact(d).take(n) {
            sp.x.extend(sp.active.iter().map(|&j| row[j]));
        }
        let w = &params[0..d * fan_out];
        sp.w.clear();
        for &j in &sp.active {
            sp.w.extend_from_slice(&w[j * fan_out..(j + 1) * fan_out]);
        }
        true
    }
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn input_width(&self) -> usize {
        self.fan_in
    }

    fn output_width(&self) -> usize {
        self.fan_out
    }

    fn n_params(&self) -> usize {
        (self.fan_in + 1) * self.fan_out
    }

    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        vec![("weight", vec![self.fan_in, self.fan_out], self.weights()), ("bias", vec![self.fan_out], self.bias())]
    }

    fn penalised(&self) -> Vec<Range<usize>> {
        vec![self.weights()]
    }

    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let (fan_in, fan_out) = (self.fan_in as f32, self.fan_out as f32);
        let weights = &mut params[self.weights()];
        match self.init {
            DenseInit::He => {
                let std = (2.0 / fan_in).sqrt();
                for w in weights {
                    let e: f32 = StandardNormal.sample(rng);
                    *w = std * e;
                }
            }
            DenseInit::Xavier => {
                let bound = (6.0 / (fan_in + fan_out)).sqrt();
                for w in weights {
                    *w = rng.random_range(-bound..=bound);
                }
            }
        }
        params[self.bias()].fill(0.0);
    }

    fn forward(&mut self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        self.packed = self.skip_zero_columns && self.pack_active_inputs(params, input, n);
        let bias = &params[self.bias()];
        if self.packed {
            affine(&self.sparse_input.x, n, &self.sparse_input.w, bias, out);
        } else {
            affine(input, n, &params[self.weights()], bias, out);
        }
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
        let (fan_in, fan_out) = (self.fan_in, self.fan_out);
        let d = FaerRef::from_row_major_slice(&delta[..n * fan_out], n, fan_out);
        if self.packed {
            // Only the active columns' rows of dW = Xᵀ·dZ are non-zero.
            let sp = &mut self.sparse_input;
            let n_active = sp.active.len();
            sp.grad_w.resize(n_active * fan_out, 0.0);
            let xa = FaerRef::from_row_major_slice(&sp.x, n, n_active);
            let gwa = MatMut::from_row_major_slice_mut(&mut sp.grad_w, n_active, fan_out);
            matmul(gwa, Accum::Replace, xa.transpose(), d, 1.0f32, Par::Seq);
            gradus_optim::clear_upper_state();
            let gw = &mut grad[0..fan_in * fan_out];
            gw.fill(0.0);
            for (row, &j) in sp.grad_w.chunks_exact(fan_out).zip(&sp.active) {
                gw[j * fan_out..(j + 1) * fan_out].copy_from_slice(row);
            }
        } else {
            let a_in = FaerRef::from_row_major_slice(&input[..n * fan_in], n, fan_in);
            let gw = MatMut::from_row_major_slice_mut(&mut grad[0..fan_in * fan_out], fan_in, fan_out);
            matmul(gw, Accum::Replace, a_in.transpose(), d, 1.0f32, Par::Seq);
            gradus_optim::clear_upper_state();
        }
        sum_rows(&delta[..n * fan_out], &mut grad[self.bias()]);
        if input_grad {
            // dA = dZ·Wᵀ.
            scratch.resize(n * fan_in, 0.0);
            let w = FaerRef::from_row_major_slice(&params[self.weights()], fan_in, fan_out);
            let da = MatMut::from_row_major_slice_mut(&mut scratch[..n * fan_in], n, fan_in);
            matmul(da, Accum::Replace, d, w.transpose(), 1.0f32, Par::Seq);
            gradus_optim::clear_upper_state();
            std::mem::swap(delta, scratch);
        }
    }

    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        affine(input, n, &params[self.weights()], &params[self.bias()], out);
    }

    fn rescale_outputs(&self, params: &mut [f32], scale: &[f32], shift: &[f32]) -> bool {
        let (w, b) = params.split_at_mut(self.bias().start);
        rescale_output_layer(w, b, scale, shift);
        true
    }

    fn quantized(&self, params: &[f32], ranges: Vec<[f32; 2]>) -> Option<QuantizedDense> {
        Some(QuantizedDense::new(&params[self.weights()], self.fan_in, self.fan_out, ranges))
    }

    fn with_int8(&self, q: QuantizedDense) -> Option<Box<dyn Layer>> {
        ((q.fan_in, q.fan_out) == (self.fan_in, self.fan_out)).then(|| Box::new(Int8Dense { q }) as Box<dyn Layer>)
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// A layer's `forward` and `backward` for a layer that only predicts (an
/// int8 one): the forward pass is the prediction, and a network holding
/// one is not trained (the trainer refuses it).
macro_rules! prediction_only {
    () => {
        fn forward(&mut self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
            self.predict(params, input, n, out, &mut Vec::new());
        }

        fn backward(
            &mut self,
            _params: &[f32],
            _input: &[f32],
            _n: usize,
            _delta: &mut Vec<f32>,
            _scratch: &mut Vec<f32>,
            _grad: &mut [f32],
            _input_grad: bool,
        ) {
            unreachable!("an int8 network is not trained (the trainer refuses it)")
        }
    };
}
pub(crate) use prediction_only;

/// A dense layer that predicts in int8 ([`QuantizedDense`]): its slice
/// keeps the f32 layout (the weights as the int8 ones stand for, q·s, then
/// the bias), so the parameters and their names are a dense layer's. It is
/// for prediction: a network holding one is not trained
/// ([`crate::Model::is_quantized`]).
#[derive(Clone, Debug)]
pub(crate) struct Int8Dense {
    pub q: QuantizedDense,
}

impl Int8Dense {
    fn weights(&self) -> Range<usize> {
        0..self.q.fan_in * self.q.fan_out
    }

    fn bias(&self) -> Range<usize> {
        self.q.fan_in * self.q.fan_out..(self.q.fan_in + 1) * self.q.fan_out
    }
}

impl Layer for Int8Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn input_width(&self) -> usize {
        self.q.fan_in
    }

    fn output_width(&self) -> usize {
        self.q.fan_out
    }

    fn n_params(&self) -> usize {
        (self.q.fan_in + 1) * self.q.fan_out
    }

    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        vec![
            ("weight", vec![self.q.fan_in, self.q.fan_out], self.weights()),
            ("bias", vec![self.q.fan_out], self.bias()),
        ]
    }

    fn penalised(&self) -> Vec<Range<usize>> {
        vec![self.weights()]
    }

    crate::layer::prediction_only!();

    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        self.q.forward(input, n, &params[self.bias()], out);
    }

    fn int8(&self) -> Option<&QuantizedDense> {
        Some(&self.q)
    }

    fn dequantized_weights(&self) -> Option<Vec<f32>> {
        Some(self.q.dequantized())
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// An activation applied to every value (see [`Activation`]); its
/// derivative is taken from its input, the pre-activation.
#[derive(Clone, Debug)]
pub(crate) struct ActivationLayer {
    pub activation: Activation,
    width: usize,
}

impl ActivationLayer {
    pub fn new(activation: Activation, width: usize) -> Self {
        Self { activation, width }
    }
}

impl Layer for ActivationLayer {
    fn kind(&self) -> &'static str {
        self.activation.name()
    }

    fn input_width(&self) -> usize {
        self.width
    }

    fn output_width(&self) -> usize {
        self.width
    }

    fn forward(&mut self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        self.activation.apply_slice(&input[..n * self.width], out);
    }

    fn backward(
        &mut self,
        _params: &[f32],
        input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        _scratch: &mut Vec<f32>,
        _grad: &mut [f32],
        _input_grad: bool,
    ) {
        self.activation.backprop_slice(&input[..n * self.width], &mut delta[..n * self.width]);
    }

    fn predict(&self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        self.activation.apply_slice(&input[..n * self.width], out);
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// Inverted dropout: in training, each value is zeroed with probability
/// `p` and the rest scaled by 1/(1−p); at inference, the identity.
#[derive(Clone, Debug)]
pub(crate) struct Dropout {
    p: f32,
    width: usize,
    /// The last forward pass's factor for each value (0 or 1/(1−p)).
    mask: Vec<f32>,
}

impl Dropout {
    pub fn new(p: f32, width: usize) -> Self {
        Self { p, width, mask: Vec::new() }
    }
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "dropout"
    }

    fn input_width(&self) -> usize {
        self.width
    }

    fn output_width(&self) -> usize {
        self.width
    }

    fn forward(&mut self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], rng: &mut Rng) {
        let len = n * self.width;
        out[..len].copy_from_slice(&input[..len]);
        self.mask.resize(len, 0.0);
        dropout(rng.random(), self.p, &mut out[..len], &mut self.mask);
    }

    fn backward(
        &mut self,
        _params: &[f32],
        _input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        _scratch: &mut Vec<f32>,
        _grad: &mut [f32],
        _input_grad: bool,
    ) {
        delta[..n * self.width].iter_mut().zip(&self.mask).for_each(|(v, m)| *v *= m);
    }

    fn predict(&self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        out[..n * self.width].copy_from_slice(&input[..n * self.width]);
    }

    fn predicts_identity(&self) -> bool {
        true
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// `z = input·w + b` with `input` n x fan_in, `w` fan_in x fan_out, both row-major.
fn affine(input: &[f32], n: usize, w: &[f32], bias: &[f32], z: &mut [f32]) {
    let fan_out = bias.len();
    let fan_in = w.len() / fan_out;
    let a = FaerRef::from_row_major_slice(&input[..n * fan_in], n, fan_in);
    let w = FaerRef::from_row_major_slice(w, fan_in, fan_out);
    matmul(MatMut::from_row_major_slice_mut(&mut z[..n * fan_out], n, fan_out), Accum::Replace, a, w, 1.0f32, Par::Seq);
    gradus_optim::clear_upper_state();
    add_bias(&mut z[..n * fan_out], bias);
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
    pub(crate) fn dropout(key: u32, p: f32, a: &mut [f32], mask: &mut [f32]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use gradus_data::seeded_rng;

    #[test]
    fn skipping_all_zero_input_columns_changes_no_result() {
        // Half the input columns are zero in every row, so the packed path runs.
        let (n, fan_in, fan_out) = (8, 6, 5);
        let mut rng = seeded_rng(9);
        let mut packed = Dense::new(fan_in, fan_out, DenseInit::He);
        packed.skip_zero_columns = true;
        let mut plain = Dense::new(fan_in, fan_out, DenseInit::He);
        let mut params = vec![0.0; packed.n_params()];
        packed.init(&mut params, &mut rng);
        params[packed.bias()].iter_mut().for_each(|b| *b = rng.random_range(-1.0f32..1.0));
        let x: Vec<f32> =
            (0..n * fan_in).map(|i| if i % fan_in < 3 { 0.0 } else { rng.random_range(-1.0f32..1.0) }).collect();
        let d_out: Vec<f32> = (0..n * fan_out).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mut run = |layer: &mut Dense| {
            let mut out = vec![0.0; n * fan_out];
            layer.forward(&params, &x, n, &mut out, &mut rng);
            let (mut delta, mut scratch) = (d_out.clone(), Vec::new());
            let mut grad = vec![0.0; layer.n_params()];
            layer.backward(&params, &x, n, &mut delta, &mut scratch, &mut grad, true);
            (out, grad, delta)
        };
        let (out_p, grad_p, d_in_p) = run(&mut packed);
        assert_eq!(packed.sparse_input.active, [3, 4, 5], "the packed path ran");
        let (out, grad, d_in) = run(&mut plain);
        for (p, q) in out_p.iter().chain(&grad_p).chain(&d_in_p).zip(out.iter().chain(&grad).chain(&d_in)) {
            assert!((p - q).abs() < 1e-6, "{p} vs {q}");
        }
        assert!(grad_p.iter().zip(0..).all(|(&g, i)| i / fan_out >= 3 || i >= fan_in * fan_out || g == 0.0));
    }
}
