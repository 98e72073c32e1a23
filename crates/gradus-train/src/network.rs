//! A network: a list of [`Layer`]s, each reading the previous one's
//! outputs, on the flat-parameter [`Model`] trait. Parameters are laid out
//! layer by layer, each layer's slice as the layer defines it; work buffers
//! (each layer's outputs, the back-propagated deltas) are kept between steps
//! and only grow when the batch size does.

use std::ops::Range;

use gradus_data::{Inputs, MatRef, Rng, seeded_rng};
use rand::Rng as _;

use crate::layer::Layer;
use crate::model::NamedParams;
use crate::{Loss, Model, Targets, TrainError};

/// The most values a layer's outputs hold at once in [`Model::predict`]:
/// 16M, 64 MB.
const PREDICT_VALUES: usize = 16 << 20;

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
            return Err(TrainError::Mismatch("int8 quantisation applies to dense layers; the model has none".into()));
        }
        self.set_int8_layers(quantized)
    }

    fn int8_layers(&self) -> Vec<crate::quant::QuantizedDense> {
        self.layers.iter().filter_map(|l| l.int8().cloned()).collect()
    }

    fn set_int8_layers(&mut self, layers: Vec<crate::quant::QuantizedDense>) -> Result<(), TrainError> {
        let dense: Vec<usize> = (0..self.layers.len()).filter(|&l| self.layers[l].kind() == "dense").collect();
        if dense.len() != layers.len() {
            return Err(TrainError::Mismatch(format!("{} int8 layers for {} dense ones", layers.len(), dense.len())));
        }
        for (l, q) in dense.into_iter().zip(layers) {
            let (fan_in, fan_out) = (self.layers[l].input_width(), self.layers[l].output_width());
            if (q.fan_in, q.fan_out) != (fan_in, fan_out) {
                return Err(TrainError::Mismatch(format!(
                    "an int8 layer of {}x{} for a dense one of {fan_in}x{fan_out}",
                    q.fan_in, q.fan_out
                )));
            }
            let start = self.slices[l].start;
            self.params[start..start + fan_in * fan_out].copy_from_slice(&q.dequantized());
            self.layers[l] = Box::new(crate::layer::Int8Dense { q });
        }
        Ok(())
    }

    fn predict(&self, x: Inputs, out: &mut [f32]) {
        let x = x.dense_only();
        let n = x.rows();
        assert_eq!(x.cols(), self.n_inputs(), "x has one column per model input");
        assert_eq!(out.len(), n * self.n_outputs(), "out is n x n_outputs");
        // Rows go through in chunks whose widest layer holds at most
        // PREDICT_VALUES values (a conv layer's outputs on 10,000 images
        // would take gigabytes); rows are independent, so this changes no output.
        let widest = self.layers.iter().map(|l| l.output_width()).max().unwrap_or(1).max(self.n_inputs());
        let chunk = (PREDICT_VALUES / widest).max(1);
        let (d, k) = (self.n_inputs(), self.n_outputs());
        // Each layer reads `current` and writes `next` (the last writes `out`);
        // the buffers are kept across chunks.
        let (mut current, mut next, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        let last = self.layers.len() - 1;
        for first in (0..n).step_by(chunk) {
            let m = chunk.min(n - first);
            for (l, (layer, slice)) in self.layers.iter().zip(&self.slices).enumerate() {
                let input: &[f32] = if l == 0 { &x.as_slice()[first * d..(first + m) * d] } else { &current };
                let params = &self.params[slice.clone()];
                if l == last {
                    layer.predict(params, input, m, &mut out[first * k..(first + m) * k], &mut scratch);
                } else {
                    next.resize(m * layer.output_width(), 0.0);
                    layer.predict(params, input, m, &mut next, &mut scratch);
                    std::mem::swap(&mut current, &mut next);
                }
            }
        }
    }
}
