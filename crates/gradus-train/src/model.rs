//! The [`Model`] trait (flat parameters, hand-written backward pass) and the
//! linear model family: linear regression (MSE), logistic regression (binary
//! cross-entropy) and softmax regression (softmax cross-entropy) are one
//! [`LinearModel`] `Z = X·W + b` paired with three losses.

use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, Par};
use gradus_data::{Inputs, MatRef, Rng, Scaler};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::quant::{InputCode, QuantizedDense};
use crate::{Loss, Targets};

/// A named block of parameters (a layer's weight or bias), as
/// PyTorch's `named_parameters`: model files store each under its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedParams {
    pub name: String,
    pub shape: Vec<usize>,
    pub range: Range<usize>,
}

/// A differentiable model whose parameters live in one flat `f32` buffer.
pub trait Model: Send {
    /// The dense inputs per row.
    fn n_inputs(&self) -> usize;
    /// The sparse inputs per row ([`Inputs::sparse`]'s width); 0 for a
    /// model that reads dense inputs only.
    fn n_sparse_inputs(&self) -> usize {
        0
    }
    fn n_outputs(&self) -> usize;
    fn params(&self) -> &[f32];
    fn params_mut(&mut self) -> &mut [f32];
    /// The parameter ranges an L2 penalty applies to (weights, not biases).
    fn penalised(&self) -> &[Range<usize>];
    /// The ranges of the parameters that are state, not weights (a batch
    /// norm's running statistics): the model updates them itself in
    /// training and no optimizer step may change them.
    fn frozen(&self) -> &[Range<usize>] {
        &[]
    }
    /// For a model with sparse inputs, the parameter ranges the last
    /// [`Model::forward_backward`] wrote a gradient into (the embedding rows
    /// of the features its batch held, and the dense layers): the gradient
    /// is zero everywhere else, so the trainer reads and steps these ranges
    /// only ([`crate::Optimizer::step_ranges`]). `None`: the gradient is
    /// dense.
    fn sparse_grad(&self) -> Option<&[Range<usize>]> {
        None
    }
    /// Sets the initial parameters, drawing any randomness from `rng`.
    fn init_params(&mut self, rng: &mut Rng);
    /// The mean `loss` on `(x, y)`; writes d(loss)/d(params) into `grad`,
    /// which has the length of [`Model::params`].
    fn forward_backward(&mut self, x: Inputs, y: Targets, loss: Loss, grad: &mut [f32]) -> f64;
    /// Raw outputs, `x.rows()` x `n_outputs` row-major: predictions for
    /// regression, logits for classification.
    fn predict(&self, x: Inputs, out: &mut [f32]);
    /// The parameter blocks, covering [`Model::params`] exactly once.
    fn named_params(&self) -> Vec<NamedParams>;
    /// Rewrites the output layer so that each output j becomes
    /// `z_j · scale[j] + shift[j]`: a model trained on a standardised target
    /// then predicts in the target's own units.
    ///
    /// # Panics
    /// When the slices do not have one entry per output, or the output layer
    /// has no bias to shift.
    fn rescale_outputs(&mut self, scale: &[f32], shift: &[f32]);
    /// Whether it predicts in int8 ([`Self::quantize`]): such a model is
    /// not trained.
    fn is_quantized(&self) -> bool {
        false
    }
    /// Makes each dense and conv layer predict in int8 (see [`crate::quant`]), its
    /// inputs' range calibrated on the rows of `calibration` (inputs as
    /// [`Self::predict`] reads them); an error for a model with neither.
    fn quantize(&mut self, _calibration: MatRef) -> Result<(), crate::TrainError> {
        Err(crate::TrainError::Mismatch(
            "int8 quantisation applies to MLPs and CNNs (their dense and conv layers)".into(),
        ))
    }
    /// The input code of the model's first layer for rows not yet put
    /// through `scaler`, the scaler folded in (see
    /// [`QuantizedDense::unscaled_code`]): for an int8 model whose inputs
    /// go straight into an int8 layer. Rows coded so
    /// ([`InputCode::encode`]) are what [`Self::predict_codes`] reads: no
    /// scaled copy of them is made, and models that code alike share one
    /// coding.
    fn unscaled_code(&self, _scaler: &Scaler) -> Option<InputCode> {
        None
    }
    /// [`Self::predict`] of `n` rows coded by [`Self::unscaled_code`]'s code.
    ///
    /// # Panics
    /// For a model without such a code.
    fn predict_codes(&self, _codes: &[u8], _n: usize, _out: &mut [f32]) {
        panic!("the model reads no codes (it has no unscaled_code)")
    }
    /// Its int8 layers, in order (none unless quantised).
    fn int8_layers(&self) -> Vec<QuantizedDense> {
        Vec::new()
    }
    /// Makes its dense layers, in order, predict with these int8 layers (as
    /// a file holds them), their weights set to what those stand for.
    fn set_int8_layers(&mut self, _layers: Vec<QuantizedDense>) -> Result<(), crate::TrainError> {
        Err(crate::TrainError::Mismatch("int8 layers apply to MLPs and CNNs (their dense and conv layers)".into()))
    }
}

/// Scales the columns of a fan_in x k weight block and maps its bias through
/// `b·scale + shift`.
pub(crate) fn rescale_output_layer(w: &mut [f32], b: &mut [f32], scale: &[f32], shift: &[f32]) {
    let k = b.len();
    assert!(scale.len() == k && shift.len() == k, "one scale and shift per output");
    for row in w.chunks_exact_mut(k) {
        for (v, s) in row.iter_mut().zip(scale) {
            *v *= s;
        }
    }
    for ((v, s), t) in b.iter_mut().zip(scale).zip(shift) {
        *v = *v * s + t;
    }
}

/// Penalties on a model's weights (never its biases).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Penalty {
    /// `l1 · ‖w‖₁` (lasso); its gradient is `l1 · sign(w)`.
    pub l1: f32,
    /// `l2/2 · ‖w‖²` (ridge); PyTorch's `weight_decay = l2` for plain SGD.
    pub l2: f32,
}

/// The model's mean loss plus the [`Penalty`] over its penalised parameters,
/// with the gradient of both in `grad`: the objective the trainer minimises.
pub fn regularised_loss_and_grad(
    model: &mut dyn Model,
    x: Inputs,
    y: Targets,
    loss: Loss,
    penalty: Penalty,
    grad: &mut [f32],
) -> f64 {
    let mut value = model.forward_backward(x, y, loss, grad);
    let Penalty { l1, l2 } = penalty;
    if l1 != 0.0 || l2 != 0.0 {
        let (mut sum_abs, mut sum_sq) = (0.0f64, 0.0f64);
        for range in model.penalised() {
            let (a, q) = add_penalty(&mut grad[range.clone()], &model.params()[range.clone()], l1, l2);
            sum_abs += a;
            sum_sq += q;
        }
        value += l1 as f64 * sum_abs + 0.5 * l2 as f64 * sum_sq;
    }
    value
}

/// Interleaved partial sums in [`add_penalty`]: enough independent f64
/// additions in flight to hide their latency, in a fixed order.
const PENALTY_LANES: usize = 16;

crate::simd::multiversion! {
    /// Adds the penalty's gradient `l2·w + l1·sign(w)` to `grad` and returns
    /// (Σ|w|, Σw²) in f64, summed over [`PENALTY_LANES`] interleaved partial
    /// sums. One serial f64 sum was latency-bound: a pass over an MLP's
    /// weights took as long as Adam's update. The order is fixed, so every
    /// instruction set gives the same bits.
    fn add_penalty(grad: &mut [f32], w: &[f32], l1: f32, l2: f32) -> (f64, f64) {
        let n = grad.len().min(w.len());
        let (grad, w) = (&mut grad[..n], &w[..n]);
        let sign = |x: f32| ((x > 0.0) as i32 - (x < 0.0) as i32) as f32;
        let (mut abs, mut sq) = ([0.0f64; PENALTY_LANES], [0.0f64; PENALTY_LANES]);
        let whole = n - n % PENALTY_LANES;
        for (g, w) in grad[..whole].chunks_exact_mut(PENALTY_LANES).zip(w[..whole].chunks_exact(PENALTY_LANES)) {
            for k in 0..PENALTY_LANES {
                abs[k] += w[k].abs() as f64;
                sq[k] += (w[k] as f64) * (w[k] as f64);
                g[k] += l2 * w[k] + l1 * sign(w[k]);
            }
        }
        for (k, (g, &w)) in grad[whole..].iter_mut().zip(&w[whole..]).enumerate() {
            abs[k] += w.abs() as f64;
            sq[k] += (w as f64) * (w as f64);
            *g += l2 * w + l1 * sign(w);
        }
        (abs.iter().sum(), sq.iter().sum())
    }
}

/// How a linear model's parameters start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// All zeros, as scikit-learn does for convex linear models.
    #[default]
    Zeros,
    /// Uniform in ±1/√n_inputs, PyTorch's default for `nn.Linear`.
    Uniform,
}

/// The size of the row blocks [`LinearModel`] streams through (fits in L2).
const BLOCK_BYTES: usize = 128 * 1024;

/// `Z = X·W + b`: `W` is n_inputs x n_outputs (row-major), `b` has n_outputs
/// entries (absent without an intercept). Parameters are `[W..., b...]`.
#[derive(Clone, Debug)]
pub struct LinearModel {
    n_inputs: usize,
    n_outputs: usize,
    fit_intercept: bool,
    init: Init,
    params: Vec<f32>,
    penalised: [Range<usize>; 1],
    /// Work buffers for the outputs and their gradient, resized per batch.
    z: Vec<f32>,
    dz: Vec<f32>,
    /// Its weights in int8, when it predicts with them ([`Model::quantize`]).
    int8: Option<QuantizedDense>,
}

impl LinearModel {
    pub fn new(n_inputs: usize, n_outputs: usize, fit_intercept: bool) -> Self {
        let n_weights = n_inputs * n_outputs;
        Self {
            n_inputs,
            n_outputs,
            fit_intercept,
            init: Init::Zeros,
            params: vec![0.0; n_weights + if fit_intercept { n_outputs } else { 0 }],
            // One range: the weights, which precede the intercepts.
            #[allow(clippy::single_range_in_vec_init)]
            penalised: [0..n_weights],
            z: Vec::new(),
            dz: Vec::new(),
            int8: None,
        }
    }

    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// The weights, n_inputs x n_outputs row-major.
    pub fn weights(&self) -> &[f32] {
        &self.params[..self.n_inputs * self.n_outputs]
    }

    /// The intercepts (empty without one).
    pub fn intercept(&self) -> &[f32] {
        &self.params[self.n_inputs * self.n_outputs..]
    }

    /// The bias an int8 model adds: the intercept, or zeros.
    fn int8_bias(&self) -> Vec<f32> {
        let n_weights = self.n_inputs * self.n_outputs;
        if self.fit_intercept { self.params[n_weights..].to_vec() } else { vec![0.0; self.n_outputs] }
    }

    fn outputs_into(&self, x: MatRef, z: &mut [f32]) {
        let (n, d, k) = (x.rows(), self.n_inputs, self.n_outputs);
        assert_eq!(x.cols(), d, "x has one column per model input");
        let xf = faer::MatRef::from_row_major_slice(x.as_slice(), n, d);
        let w = faer::MatRef::from_row_major_slice(self.weights(), d, k);
        let zf = MatMut::from_row_major_slice_mut(z, n, k);
        matmul(zf, Accum::Replace, xf, w, 1.0f32, Par::Seq);
        gradus_optim::clear_upper_state();
        if self.fit_intercept {
            for row in z.chunks_exact_mut(k) {
                for (v, b) in row.iter_mut().zip(self.intercept()) {
                    *v += b;
                }
            }
        }
    }
}

impl Model for LinearModel {
    fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    fn n_outputs(&self) -> usize {
        self.n_outputs
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
        match self.init {
            Init::Zeros => self.params.fill(0.0),
            Init::Uniform => {
                let bound = 1.0 / (self.n_inputs.max(1) as f32).sqrt();
                for p in &mut self.params {
                    *p = rng.random_range(-bound..=bound);
                }
            }
        }
    }

    /// Works through `x` in blocks of rows small enough to stay in cache, so
    /// that each block is read from memory once for both `Z = X·W` and
    /// `dW += Xᵀ·dZ` — on a large full batch (L-BFGS, GD) this halves the
    /// memory traffic that bounds the step.
    fn forward_backward(&mut self, x: Inputs, y: Targets, loss: Loss, grad: &mut [f32]) -> f64 {
        let x = x.dense_only();
        let (n, d, k) = (x.rows(), self.n_inputs, self.n_outputs);
        assert_eq!(grad.len(), self.params.len(), "gradient has the parameters' shape");
        let block = (BLOCK_BYTES / (4 * d.max(1))).max(64).min(n.max(1));
        let mut z = std::mem::take(&mut self.z);
        let mut dz = std::mem::take(&mut self.dz);
        z.resize(block * k, 0.0);
        dz.resize(block * k, 0.0);
        let (grad_w, grad_b) = grad.split_at_mut(d * k);
        grad_w.fill(0.0);
        grad_b.fill(0.0);
        let mut value = 0.0;
        for start in (0..n).step_by(block) {
            let rows = block.min(n - start);
            let xb = MatRef::new(&x.as_slice()[start * d..(start + rows) * d], rows, d).expect("a block of rows");
            let (zb, dzb) = (&mut z[..rows * k], &mut dz[..rows * k]);
            self.outputs_into(xb, zb);
            // The loss is a mean over the block: reweight it to a share of the mean over all rows.
            let share = rows as f32 / n as f32;
            value += share as f64 * loss.value_and_grad(zb, k, y.rows(start..start + rows), dzb);
            dzb.iter_mut().for_each(|v| *v *= share);
            let xf = faer::MatRef::from_row_major_slice(xb.as_slice(), rows, d);
            let dzf = faer::MatRef::from_row_major_slice(dzb, rows, k);
            let gw = MatMut::from_row_major_slice_mut(grad_w, d, k);
            matmul(gw, Accum::Add, xf.transpose(), dzf, 1.0f32, Par::Seq);
            gradus_optim::clear_upper_state();
            if self.fit_intercept {
                for row in dzb.chunks_exact(k) {
                    for (g, v) in grad_b.iter_mut().zip(row) {
                        *g += v;
                    }
                }
            }
        }
        self.z = z;
        self.dz = dz;
        value
    }

    fn predict(&self, x: Inputs, out: &mut [f32]) {
        let x = x.dense_only();
        assert_eq!(out.len(), x.rows() * self.n_outputs, "out is n x n_outputs");
        match &self.int8 {
            Some(q) => q.forward(x.as_slice(), x.rows(), &self.int8_bias(), out),
            None => self.outputs_into(x, out),
        }
    }

    fn unscaled_code(&self, scaler: &Scaler) -> Option<InputCode> {
        self.int8.as_ref()?.unscaled_code(&scaler.offset, &scaler.scale)
    }

    fn predict_codes(&self, codes: &[u8], n: usize, out: &mut [f32]) {
        let q = self.int8.as_ref().expect("an int8 model reads codes");
        assert_eq!(out.len(), n * self.n_outputs, "out is n x n_outputs");
        q.forward_codes(codes, n, &self.int8_bias(), out);
    }

    fn is_quantized(&self) -> bool {
        self.int8.is_some()
    }

    fn quantize(&mut self, calibration: MatRef) -> Result<(), crate::TrainError> {
        if self.int8.is_some() {
            return Err(crate::TrainError::Mismatch("the model is in int8 already".into()));
        }
        if calibration.rows() == 0 || calibration.cols() != self.n_inputs {
            return Err(crate::TrainError::Mismatch(format!(
                "calibrating int8 needs rows of {} inputs; got {} of {}",
                self.n_inputs,
                calibration.rows(),
                calibration.cols()
            )));
        }
        let ranges = crate::quant::column_ranges(calibration.as_slice(), self.n_inputs);
        let n_weights = self.n_inputs * self.n_outputs;
        let q = QuantizedDense::new(&self.params[..n_weights], self.n_inputs, self.n_outputs, ranges);
        self.set_int8_layers(vec![q])
    }

    fn int8_layers(&self) -> Vec<QuantizedDense> {
        self.int8.iter().cloned().collect()
    }

    fn set_int8_layers(&mut self, layers: Vec<QuantizedDense>) -> Result<(), crate::TrainError> {
        let [q] = <[_; 1]>::try_from(layers).map_err(|l: Vec<_>| {
            crate::TrainError::Mismatch(format!("{} int8 layers for a linear model's one", l.len()))
        })?;
        if (q.fan_in, q.fan_out) != (self.n_inputs, self.n_outputs) {
            return Err(crate::TrainError::Mismatch(format!(
                "an int8 layer of {}x{} for a linear model of {}x{}",
                q.fan_in, q.fan_out, self.n_inputs, self.n_outputs
            )));
        }
        self.params[..self.n_inputs * self.n_outputs].copy_from_slice(&q.dequantized());
        self.int8 = Some(q);
        Ok(())
    }

    fn named_params(&self) -> Vec<NamedParams> {
        let n_weights = self.n_inputs * self.n_outputs;
        let mut blocks = vec![NamedParams {
            name: "linear.weight".into(),
            shape: vec![self.n_inputs, self.n_outputs],
            range: 0..n_weights,
        }];
        if self.fit_intercept {
            blocks.push(NamedParams {
                name: "linear.bias".into(),
                shape: vec![self.n_outputs],
                range: n_weights..self.params.len(),
            });
        }
        blocks
    }

    fn rescale_outputs(&mut self, scale: &[f32], shift: &[f32]) {
        assert!(self.fit_intercept, "shifting outputs needs an intercept");
        let (w, b) = self.params.split_at_mut(self.n_inputs * self.n_outputs);
        rescale_output_layer(w, b, scale, shift);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gradus_data::seeded_rng;
    use proptest::prelude::*;

    #[test]
    fn the_penalty_pass_matches_its_definition() {
        // 37 weights: two whole blocks of 16 and a tail, zeros among them.
        let w: Vec<f32> = (0..37).map(|i| if i % 5 == 0 { 0.0 } else { (i as f32 - 18.0) * 0.25 }).collect();
        let mut grad = vec![1.0f32; 37];
        let (abs, sq) = add_penalty(&mut grad, &w, 0.5, 0.1);
        let want_abs: f64 = w.iter().map(|&x| x.abs() as f64).sum();
        let want_sq: f64 = w.iter().map(|&x| (x as f64).powi(2)).sum();
        assert!((abs - want_abs).abs() < 1e-12 && (sq - want_sq).abs() < 1e-12, "{abs} {sq}");
        for (g, &x) in grad.iter().zip(&w) {
            let sign = if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            };
            assert_eq!(*g, 1.0 + (0.1 * x + 0.5 * sign), "the gradient at w = {x}");
        }
    }

    /// Central differences of the regularised objective in each parameter.
    fn numeric_grad(model: &mut LinearModel, x: MatRef, y: Targets, loss: Loss, l2: Penalty) -> Vec<f32> {
        let mut scratch = vec![0.0; model.params().len()];
        let h = 1e-2f32;
        (0..model.params().len())
            .map(|i| {
                let p = model.params()[i];
                model.params_mut()[i] = p + h;
                let plus = regularised_loss_and_grad(model, x.into(), y, loss, l2, &mut scratch);
                model.params_mut()[i] = p - h;
                let minus = regularised_loss_and_grad(model, x.into(), y, loss, l2, &mut scratch);
                model.params_mut()[i] = p;
                ((plus - minus) / (2.0 * h as f64)) as f32
            })
            .collect()
    }

    fn check_gradient(loss: Loss, k: usize, n: usize, d: usize, seed: u64, l2: f32, intercept: bool) {
        // An L1 term too, whose kink at w = 0 the random weights stay away from.
        let l2 = Penalty { l1: l2 * 0.5, l2 };
        let mut rng = seeded_rng(seed);
        let x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-2.0..2.0)).collect();
        let x = MatRef::new(&x, n, d).unwrap();
        let real: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
        let n_classes = if loss == Loss::BinaryCrossEntropy { 2 } else { k as u32 };
        let classes: Vec<u32> = (0..n).map(|_| rng.random_range(0..n_classes)).collect();
        let y = if loss == Loss::Mse { Targets::Real(&real) } else { Targets::Classes(&classes) };
        let mut model = LinearModel::new(d, k, intercept).with_init(Init::Uniform);
        model.init_params(&mut rng);
        keep_weights_off_the_l1_kink(&mut model);
        let mut grad = vec![0.0; model.params().len()];
        let objective = regularised_loss_and_grad(&mut model, x.into(), y, loss, l2, &mut grad);
        let numeric = numeric_grad(&mut model, x, y, loss, l2);
        let diff: f32 = grad.iter().zip(&numeric).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
        // The floor is the central difference's own error for a near-zero
        // gradient: the objective sums f32 outputs, so (plus − minus) / 2h
        // carries about |objective| · 6e-8 / 0.02 ≈ |objective| · 3e-6 of
        // rounding per parameter. A floor of 1e-3 · 1e-2 alone asked for
        // 1e-5 and failed where the objective is near 1 with a near-zero
        // gradient (n = 3, one weight), or near 10 (a mean squared error of
        // targets up to 3): see proptest-regressions/model.txt.
        let norm: f32 = grad.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-2);
        let rounding = 1e-5 * (objective.abs().max(1.0) as f32) * (grad.len() as f32).sqrt();
        assert!(diff < 1e-3 * norm + rounding, "{loss:?}: relative error {}: {grad:?} vs {numeric:?}", diff / norm);
    }

    /// Moves weights within 0.02 of zero to ±0.05, so that a difference step
    /// never crosses the L1 penalty's kink.
    pub(crate) fn keep_weights_off_the_l1_kink(model: &mut dyn Model) {
        for range in model.penalised().to_vec() {
            for w in &mut model.params_mut()[range] {
                if w.abs() < 0.02 {
                    *w = if *w < 0.0 { -0.05 } else { 0.05 };
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn linear_regression_gradient_matches_finite_differences(
            n in 1usize..20, d in 1usize..6, seed: u64, l2 in 0.0f32..1.0, intercept: bool
        ) {
            check_gradient(Loss::Mse, 1, n, d, seed, l2, intercept);
        }

        #[test]
        fn logistic_regression_gradient_matches_finite_differences(
            n in 1usize..20, d in 1usize..6, seed: u64, l2 in 0.0f32..1.0, intercept: bool
        ) {
            check_gradient(Loss::BinaryCrossEntropy, 1, n, d, seed, l2, intercept);
        }

        #[test]
        fn softmax_regression_gradient_matches_finite_differences(
            k in 2usize..5, n in 1usize..20, d in 1usize..6, seed: u64, l2 in 0.0f32..1.0, intercept: bool
        ) {
            check_gradient(Loss::SoftmaxCrossEntropy, k, n, d, seed, l2, intercept);
        }
    }

    #[test]
    fn predict_computes_x_w_plus_b() {
        let mut m = LinearModel::new(2, 1, true);
        m.params_mut().copy_from_slice(&[2.0, -1.0, 0.5]);
        let x = [1.0, 1.0, 3.0, 2.0];
        let mut out = [0.0; 2];
        m.predict(MatRef::new(&x, 2, 2).unwrap().into(), &mut out);
        assert_eq!(out, [1.5, 4.5]);
    }

    #[test]
    fn rescale_outputs_maps_each_prediction_through_scale_and_shift() {
        let mut m = LinearModel::new(2, 2, true);
        m.params_mut().copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 0.5, -0.5]);
        let x = [1.0, -2.0, 0.5, 3.0];
        let x = MatRef::new(&x, 2, 2).unwrap();
        let mut before = [0.0; 4];
        m.predict(x.into(), &mut before);
        m.rescale_outputs(&[10.0, 0.5], &[100.0, -1.0]);
        let mut after = [0.0; 4];
        m.predict(x.into(), &mut after);
        for (i, (a, b)) in after.iter().zip(before).enumerate() {
            let (s, t) = if i % 2 == 0 { (10.0, 100.0) } else { (0.5, -1.0) };
            assert!((a - (b * s + t)).abs() < 1e-5, "output {i}: {a} vs {}", b * s + t);
        }
    }

    #[test]
    fn streaming_row_blocks_gives_the_full_batch_gradient() {
        // 600 features put 64 rows in a block, so 150 rows take three blocks;
        // the reference is the textbook softmax-regression gradient in f64.
        let (n, d, k) = (150, 600, 3);
        let mut rng = seeded_rng(4);
        let x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        let mut model = LinearModel::new(d, k, true).with_init(Init::Uniform);
        model.init_params(&mut rng);
        let mut grad = vec![0.0; model.params().len()];
        let value = model.forward_backward(
            MatRef::new(&x, n, d).unwrap().into(),
            Targets::Classes(&labels),
            Loss::SoftmaxCrossEntropy,
            &mut grad,
        );
        let (w, b) = model.params().split_at(d * k);
        let mut want = vec![0.0f64; d * k + k];
        let mut want_value = 0.0;
        for i in 0..n {
            let z: Vec<f64> = (0..k)
                .map(|c| b[c] as f64 + (0..d).map(|j| x[i * d + j] as f64 * w[j * k + c] as f64).sum::<f64>())
                .collect();
            let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
            want_value += (lse - z[labels[i] as usize]) / n as f64;
            for c in 0..k {
                let dz = ((z[c] - lse).exp() - f64::from(labels[i] as usize == c)) / n as f64;
                for j in 0..d {
                    want[j * k + c] += x[i * d + j] as f64 * dz;
                }
                want[d * k + c] += dz;
            }
        }
        assert!((value - want_value).abs() < 1e-5, "{value} vs {want_value}");
        for (g, w) in grad.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn named_params_cover_the_parameters_once() {
        let m = LinearModel::new(3, 2, true);
        let blocks = m.named_params();
        assert_eq!(blocks.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["linear.weight", "linear.bias"]);
        assert_eq!((blocks[0].range.clone(), blocks[1].range.clone()), (0..6, 6..8));
        assert_eq!(blocks[0].shape, [3, 2]);
    }

    #[test]
    fn the_intercept_is_not_penalised() {
        let m = LinearModel::new(3, 2, true);
        assert_eq!(m.params().len(), 8);
        assert_eq!(m.penalised(), std::slice::from_ref(&(0..6)));
    }
}
