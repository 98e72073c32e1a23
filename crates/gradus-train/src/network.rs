//! A network: a list of [`Layer`]s, each reading the previous one's
//! outputs, on the flat-parameter [`Model`] trait. Parameters are laid out
//! layer by layer, each layer's slice as the layer defines it; work buffers
//! (each layer's outputs, the back-propagated deltas) are kept between steps
//! and only grow when the batch size does.

use std::ops::Range;

use gradus_data::{Inputs, MatRef, Rng, Scaler, seeded_rng};
use rand::Rng as _;

use crate::layer::Layer;
use crate::model::NamedParams;
use crate::quant::InputCode;
use crate::{Activation, Loss, Model, Targets, TrainError};

/// The most values a layer's outputs hold at once in [`Model::predict`]:
/// 1M, 4 MB, so that a chunk of rows goes through every layer while its
/// activations stay in cache (at 16M, a CNN's moved through memory
/// between layers: prediction took 1.1x as long in f32, 1.3x in int8).
const PREDICT_VALUES: usize = 1 << 20;

/// [`Network`] prediction's work buffers (the layers' outputs and a
/// scratch), kept by each thread between calls: an ensemble predicts a
/// block of rows at a time with each member, and allocating and filling
/// them anew each time took a twentieth of a small MLP's prediction.
/// Buffers past [`KEPT_VALUES`] are freed rather than kept.
#[derive(Default)]
struct PredictBuffers([Vec<f32>; 3], [Vec<u8>; 2]);

thread_local! {
    static PREDICT_BUFFERS: std::cell::Cell<PredictBuffers> = std::cell::Cell::default();
}

/// The most values a kept prediction buffer holds (4 MB).
const KEPT_VALUES: usize = 1 << 20;

/// A feed-forward network of layers (see the module docs). Built from a
/// description such as [`crate::MlpSpec`].
#[derive(Clone, Debug)]
pub struct Network {
    layers: Vec<Box<dyn Layer>>,
    /// Each layer's slice of `params`.
    slices: Vec<Range<usize>>,
    params: Vec<f32>,
    penalised: Vec<Range<usize>>,
    frozen: Vec<Range<usize>>,
    /// Draws what is random in training (dropout), seeded by `init_params`.
    rng: Rng,
    /// Per layer: its outputs on the last training batch.
    outputs: Vec<Vec<f32>>,
    /// Back-propagated deltas: the current one and a spare.
    delta: [Vec<f32>; 2],
}

impl Network {
    /// A network of `layers` in order; each must read as many values as the
    /// one before it writes, and the last must be able to rescale its
    /// outputs (see [`Model::rescale_outputs`]).
    pub(crate) fn new(layers: Vec<Box<dyn Layer>>) -> Self {
        assert!(!layers.is_empty(), "a network has at least one layer");
        for pair in layers.windows(2) {
            assert_eq!(pair[0].output_width(), pair[1].input_width(), "consecutive layers agree on their width");
        }
        let mut slices = Vec::with_capacity(layers.len());
        let (mut penalised, mut frozen) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for layer in &layers {
            let slice = offset..offset + layer.n_params();
            penalised.extend(layer.penalised().into_iter().map(|r| r.start + offset..r.end + offset));
            frozen.extend(layer.frozen().into_iter().map(|r| r.start + offset..r.end + offset));
            offset = slice.end;
            slices.push(slice);
        }
        Self {
            outputs: vec![Vec::new(); layers.len()],
            layers,
            slices,
            params: vec![0.0; offset],
            penalised,
            frozen,
            rng: seeded_rng(0),
            delta: [Vec::new(), Vec::new()],
        }
    }

    /// The layers, in order.
    #[cfg(test)]
    pub(crate) fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Each layer's outputs on the last training batch.
    #[cfg(test)]
    pub(crate) fn outputs(&self) -> &[Vec<f32>] {
        &self.outputs
    }
}

impl Model for Network {
    fn n_inputs(&self) -> usize {
        self.layers[0].input_width()
    }

    fn n_outputs(&self) -> usize {
        self.layers.last().expect("a layer").output_width()
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

    fn frozen(&self) -> &[Range<usize>] {
        &self.frozen
    }

    fn init_params(&mut self, rng: &mut Rng) {
        for (layer, slice) in self.layers.iter().zip(&self.slices) {
            layer.init(&mut self.params[slice.clone()], rng);
        }
        self.rng = seeded_rng(rng.random());
    }

    fn forward_backward(&mut self, x: Inputs, y: Targets, loss: Loss, grad: &mut [f32]) -> f64 {
        let x = x.dense_only();
        let n = x.rows();
        assert_eq!(x.cols(), self.n_inputs(), "x has one column per model input");
        assert_eq!(grad.len(), self.params.len(), "gradient has the parameters' shape");
        let mut outputs = std::mem::take(&mut self.outputs);
        for l in 0..self.layers.len() {
            let (before, rest) = outputs.split_at_mut(l);
            let out = &mut rest[0];
            out.resize(n * self.layers[l].output_width(), 0.0);
            let input: &[f32] = if l == 0 { x.as_slice() } else { &before[l - 1] };
            self.layers[l].forward(&self.params[self.slices[l].clone()], input, n, out, &mut self.rng);
        }
        if !self.frozen.is_empty() {
            for (layer, slice) in self.layers.iter_mut().zip(&self.slices) {
                layer.update_buffers(&mut self.params[slice.clone()]);
            }
        }

        // Backward: delta holds dLoss/d(outputs) of the current layer.
        let k = self.n_outputs();
        let [mut delta, mut scratch] = std::mem::take(&mut self.delta);
        delta.resize(n * k, 0.0);
        let value = loss.value_and_grad(outputs.last().expect("a layer"), k, y, &mut delta);
        // Gradients flow back only as far as the first layer with parameters.
        let first_learned = self.slices.iter().position(|s| !s.is_empty()).unwrap_or(0);
        for l in (first_learned..self.layers.len()).rev() {
            let input: &[f32] = if l == 0 { x.as_slice() } else { &outputs[l - 1] };
            let slice = self.slices[l].clone();
            self.layers[l].backward(
                &self.params[slice.clone()],
                input,
                n,
                &mut delta,
                &mut scratch,
                &mut grad[slice],
                l > first_learned,
            );
        }
        self.outputs = outputs;
        self.delta = [delta, scratch];
        value
    }

    fn named_params(&self) -> Vec<NamedParams> {
        let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut named = Vec::new();
        for (layer, slice) in self.layers.iter().zip(&self.slices) {
            let blocks = layer.param_blocks();
            if blocks.is_empty() {
                continue;
            }
            let index = count.entry(layer.kind()).or_default();
            for (name, shape, range) in blocks {
                named.push(NamedParams {
                    name: format!("{}.{index}.{name}", layer.kind()),
                    shape,
                    range: range.start + slice.start..range.end + slice.start,
                });
            }
            *index += 1;
        }
        named
    }

    fn rescale_outputs(&mut self, scale: &[f32], shift: &[f32]) {
        let last = self.layers.len() - 1;
        let params = &mut self.params[self.slices[last].clone()];
        assert!(self.layers[last].rescale_outputs(params, scale, shift), "the output layer can rescale its outputs");
    }

    fn is_quantized(&self) -> bool {
        self.layers.iter().any(|l| l.int8().is_some())
    }

    fn quantize(&mut self, calibration: MatRef) -> Result<(), TrainError> {
        if self.is_quantized() {
            return Err(TrainError::Mismatch("the model is in int8 already".into()));
        }
        if calibration.rows() == 0 || calibration.cols() != self.n_inputs() {
            return Err(TrainError::Mismatch(format!(
                "calibrating int8 needs rows of {} inputs; got {} of {}",
                self.n_inputs(),
                calibration.rows(),
                calibration.cols()
            )));
        }
        // Each layer's inputs on the calibration rows: their range.
        let n = calibration.rows();
        let mut current = calibration.as_slice().to_vec();
        let mut scratch = Vec::new();
        let mut quantized = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let ranges = crate::quant::column_ranges(&current, layer.input_width());
            let params = &self.params[self.slices[l].clone()];
            if let Some(q) = layer.quantized(params, ranges) {
                quantized.push(q);
            }
            let mut next = vec![0.0; n * layer.output_width()];
            layer.predict(params, &current, n, &mut next, &mut scratch);
            current = next;
        }
        if quantized.is_empty() {
            return Err(TrainError::Mismatch(
                "int8 quantisation applies to dense and conv layers; the model has none".into(),
            ));
        }
        self.set_int8_layers(quantized)
    }

    fn int8_layers(&self) -> Vec<crate::quant::QuantizedDense> {
        self.layers.iter().filter_map(|l| l.int8().cloned()).collect()
    }

    /// Its dense and conv layers, in order, take the int8 layers given; a
    /// file from before convolutions were quantised gives the dense layers' alone.
    fn set_int8_layers(&mut self, layers: Vec<crate::quant::QuantizedDense>) -> Result<(), TrainError> {
        let kinds = |kinds: &[&str]| -> Vec<usize> {
            (0..self.layers.len()).filter(|&l| kinds.contains(&self.layers[l].kind())).collect()
        };
        let (all, dense) = (kinds(&["dense", "conv"]), kinds(&["dense"]));
        let targets = if layers.len() == all.len() { all } else { dense };
        if targets.len() != layers.len() {
            return Err(TrainError::Mismatch(format!(
                "{} int8 layers for {} dense and conv ones",
                layers.len(),
                self.layers.iter().filter(|l| ["dense", "conv"].contains(&l.kind())).count()
            )));
        }
        for (l, q) in targets.into_iter().zip(layers) {
            let shape = (q.fan_in, q.fan_out);
            let int8 = self.layers[l].with_int8(q).ok_or_else(|| {
                TrainError::Mismatch(format!(
                    "an int8 layer of {}x{} for a {} layer of {} inputs and {} outputs",
                    shape.0,
                    shape.1,
                    self.layers[l].kind(),
                    self.layers[l].input_width(),
                    self.layers[l].output_width()
                ))
            })?;
            let weights = int8.param_blocks().into_iter().find(|b| b.0 == "weight").expect("a weight").2;
            let start = self.slices[l].start;
            let dequantized = int8.dequantized_weights().expect("an int8 layer's weights");
            self.params[start + weights.start..start + weights.end].copy_from_slice(&dequantized);
            self.layers[l] = int8;
        }
        Ok(())
    }

    fn predict(&self, x: Inputs, out: &mut [f32]) {
        self.predict_from(Rows::Values(x.dense_only()), out);
    }

    fn unscaled_code(&self, scaler: &Scaler) -> Option<InputCode> {
        let first = self.layers.first().filter(|l| l.kind() == "dense")?;
        first.int8()?.unscaled_code(&scaler.offset, &scaler.scale)
    }

    fn predict_codes(&self, codes: &[u8], n: usize, out: &mut [f32]) {
        assert!(self.layers[0].int8().is_some(), "the model's first layer reads codes");
        self.predict_from(Rows::Codes(codes, n), out);
    }
}

/// What [`Network::predict_from`] does with a layer (see [`Network::prediction_plan`]).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// Nothing: it changes nothing at inference.
    Skip,
    /// Its outputs, as values.
    Values,
    /// Its outputs coded for the int8 layer at this index, which reads them next.
    Codes(usize),
}

/// The values of rows given as values.
fn x_values<'a>(x: Rows<'a>) -> &'a [f32] {
    match x {
        Rows::Values(x) => x.as_slice(),
        Rows::Codes(..) => unreachable!("rows given as codes are read as codes"),
    }
}

/// The rows [`Network::predict_from`] predicts.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// Model inputs.
    Values(MatRef<'a>),
    /// `n` rows of u8 codes for the first (int8) layer, a row's width
    /// rounded up to four (see [`InputCode::encode`]).
    Codes(&'a [u8], usize),
}

impl Network {
    /// [`Model::predict`] and [`Model::predict_codes`].
    fn predict_from(&self, x: Rows, out: &mut [f32]) {
        let (n, d) = match x {
            Rows::Values(x) => {
                assert_eq!(x.cols(), self.n_inputs(), "x has one column per model input");
                (x.rows(), x.cols())
            }
            Rows::Codes(codes, n) => {
                let stride = self.n_inputs().div_ceil(4) * 4;
                assert_eq!(codes.len(), n * stride, "codes are n x inputs rounded up to 4");
                (n, stride)
            }
        };
        assert_eq!(out.len(), n * self.n_outputs(), "out is n x n_outputs");
        // Rows go through in chunks whose widest layer holds at most
        // PREDICT_VALUES values (a conv layer's outputs on 10,000 images
        // would take gigabytes); rows are independent, so this changes no output.
        let widest = self.layers.iter().map(|l| l.output_width()).max().unwrap_or(1).max(self.n_inputs());
        let chunk = (PREDICT_VALUES / widest).max(1);
        let k = self.n_outputs();
        let plan = self.prediction_plan();
        // Each layer reads `current` and writes `next` (the last writes
        // `out`), or, between int8 dense layers, reads `coded` and writes
        // `coding`; the buffers are kept across chunks, and across calls
        // (see [`PredictBuffers`]).
        let PredictBuffers([mut current, mut next, mut scratch], [mut coded, mut coding]) = PREDICT_BUFFERS.take();
        let last = self.layers.len() - 1;
        /// What the next layer reads.
        #[derive(Clone, Copy, PartialEq)]
        enum Reads {
            Rows,
            Values,
            Codes,
        }
        for first in (0..n).step_by(chunk) {
            let m = chunk.min(n - first);
            let mut reads = Reads::Rows;
            // The values of `current` the layer reads (the buffers only
            // grow: filling them anew for each layer took a tenth of the time).
            let mut current_len = 0;
            for (l, (layer, slice)) in self.layers.iter().zip(&self.slices).enumerate() {
                let params = &self.params[slice.clone()];
                let int8 = || {
                    let q = layer.int8().expect("an int8 layer reads codes");
                    let bias = layer.param_blocks().into_iter().find(|b| b.0 == "bias").expect("a bias").2;
                    (q, &params[bias])
                };
                // The codes this layer reads, when it reads codes.
                let codes: Option<&[u8]> = match (reads, x) {
                    (Reads::Rows, Rows::Codes(codes, _)) => Some(&codes[first * d..(first + m) * d]),
                    (Reads::Codes, _) => Some(&coded),
                    _ => None,
                };
                match plan[l] {
                    Step::Skip => continue,
                    Step::Codes(to) => {
                        let (q, bias) = int8();
                        let code = self.layers[to].int8().expect("an int8 layer").code();
                        match codes {
                            Some(codes) => q.forward_codes_coded(codes, m, bias, code, &mut coding),
                            None => {
                                let input = match reads {
                                    Reads::Rows => &x_values(x)[first * d..(first + m) * d],
                                    _ => &current[..current_len],
                                };
                                let mut own = Vec::new();
                                q.code().encode(input, &mut own);
                                q.forward_codes_coded(&own, m, bias, code, &mut coding);
                            }
                        }
                        std::mem::swap(&mut coded, &mut coding);
                        reads = Reads::Codes;
                    }
                    Step::Values => {
                        let len = m * layer.output_width();
                        let dest = if l == last {
                            &mut out[first * k..(first + m) * k]
                        } else {
                            if next.len() < len {
                                next.resize(len, 0.0);
                            }
                            &mut next[..len]
                        };
                        match (codes, reads) {
                            (Some(codes), _) => {
                                let (q, bias) = int8();
                                q.forward_codes(codes, m, bias, dest);
                            }
                            (None, Reads::Rows) => {
                                layer.predict(params, &x_values(x)[first * d..(first + m) * d], m, dest, &mut scratch)
                            }
                            (None, _) => layer.predict(params, &current[..current_len], m, dest, &mut scratch),
                        }
                        if l != last {
                            std::mem::swap(&mut current, &mut next);
                            current_len = len;
                        }
                        reads = Reads::Values;
                    }
                }
            }
        }
        let kept = |v: Vec<f32>| if v.capacity() <= KEPT_VALUES { v } else { Vec::new() };
        let kept_codes = |v: Vec<u8>| if v.capacity() <= 4 * KEPT_VALUES { v } else { Vec::new() };
        PREDICT_BUFFERS
            .set(PredictBuffers([kept(current), kept(next), kept(scratch)], [kept_codes(coded), kept_codes(coding)]));
    }

    /// What prediction does with each layer. It skips those that change
    /// nothing there: dropout (the identity at inference), and a ReLU whose
    /// outputs go (past any dropout) into an int8 layer whose input code
    /// takes negatives to 0 (see
    /// [`crate::quant::QuantizedDense::absorbs_relu`]). An int8 dense
    /// layer whose outputs go (so) into another writes that one's codes.
    /// The last layer writes values.
    fn prediction_plan(&self) -> Vec<Step> {
        let last = self.layers.len() - 1;
        let mut plan = vec![Step::Values; self.layers.len()];
        // The next layer run after each, walking back from the last.
        let mut next_run = last;
        for l in (0..last).rev() {
            let (layer, next) = (&self.layers[l], &self.layers[next_run]);
            let relu_absorbed =
                layer.activation() == Some(Activation::Relu) && next.int8().is_some_and(|q| q.absorbs_relu());
            let int8_dense = |layer: &dyn Layer| layer.kind() == "dense" && layer.int8().is_some();
            plan[l] = if layer.predicts_identity() || relu_absorbed {
                Step::Skip
            } else if int8_dense(layer.as_ref()) && int8_dense(next.as_ref()) {
                Step::Codes(next_run)
            } else {
                Step::Values
            };
            if plan[l] != Step::Skip {
                next_run = l;
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MlpSpec, WeightInit};

    /// An int8 MLP's prediction — ReLUs skipped where the next code clamps
    /// at 0, dropout skipped, int8 layers writing the next one's codes,
    /// the scaler folded into the first code — is bit for bit each layer's
    /// own prediction in turn (after scaling), for every activation.
    #[test]
    fn int8_prediction_shortcuts_change_no_output() {
        for activation in [Activation::Relu, Activation::Gelu, Activation::Tanh] {
            let spec = MlpSpec {
                n_inputs: 7,
                hidden: vec![20, 33, 18],
                n_outputs: 3,
                activation,
                dropout: 0.2,
                init: WeightInit::Auto,
                periodic: None,
                categories: None,
            };
            let mut net = Network::mlp(&spec).unwrap();
            net.init_params(&mut seeded_rng(1));
            let mut rng = seeded_rng(2);
            let n = 300;
            let raw: Vec<f32> = (0..n * 7).map(|_| rng.random_range(-3.0f32..8.0)).collect();
            let scaler = Scaler { offset: vec![2.5; 7], scale: vec![3.0; 7] };
            let scaled: Vec<f32> = raw.iter().map(|&v| ((f64::from(v) - 2.5) / 3.0) as f32).collect();
            net.quantize(MatRef::new(&scaled, n, 7).unwrap()).unwrap();

            let mut current = scaled.clone();
            for (layer, slice) in net.layers.iter().zip(&net.slices) {
                let mut next = vec![0.0; n * layer.output_width()];
                layer.predict(&net.params[slice.clone()], &current, n, &mut next, &mut Vec::new());
                current = next;
            }
            let mut got = vec![0.0; n * 3];
            net.predict(MatRef::new(&scaled, n, 7).unwrap().into(), &mut got);
            assert_eq!(got, current, "{activation:?}");
            assert!(net.prediction_plan().contains(&Step::Skip));

            // The scaler folded into the first layer's code: the codes of
            // values within f32's error of a half code may differ by one.
            let code = net.unscaled_code(&scaler).expect("an int8 first layer folds a scaler");
            let mut codes = Vec::new();
            code.encode(&raw, &mut codes);
            let mut folded = vec![0.0; n * 3];
            net.predict_codes(&codes, n, &mut folded);
            let differ = folded.iter().zip(&current).filter(|(a, b)| (*a - *b).abs() > 1e-3).count();
            assert!(differ <= n * 3 / 100, "{activation:?}: {differ} outputs differ");
        }
    }
}
