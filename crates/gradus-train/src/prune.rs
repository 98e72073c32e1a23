//! Magnitude pruning: the smallest weights of a model set to zero, and a
//! [`Masked`] model that keeps them at zero while the rest are fine-tuned.
//!
//! Weights are those an L2 penalty applies to ([`Model::penalised`]: dense
//! and convolution kernels, embeddings; never biases or a batch norm's
//! parameters), pruned by magnitude across all of them at once (global
//! magnitude pruning: a layer keeps as many as its weights' sizes earn).

use std::ops::Range;

use gradus_data::{Inputs, Rng};

use crate::model::NamedParams;
use crate::{Loss, Model, Targets, TrainError};

/// The positions in `model`'s parameters of its `sparsity` share of
/// weights of least magnitude (ties broken by position), ascending; weights
/// already zero count first. An error unless 0 < sparsity < 1.
pub fn magnitude_mask(model: &dyn Model, sparsity: f64) -> Result<Vec<usize>, TrainError> {
    if !(sparsity > 0.0 && sparsity < 1.0) {
        return Err(TrainError::invalid(
            "sparsity",
            sparsity,
            "must be between 0 and 1 (the share of weights set to 0)",
        ));
    }
    let params = model.params();
    let mut weights: Vec<usize> = model.penalised().iter().flat_map(Range::clone).collect();
    let k = (sparsity * weights.len() as f64).round() as usize;
    if k == 0 {
        return Ok(Vec::new());
    }
    weights.select_nth_unstable_by(k - 1, |&a, &b| params[a].abs().total_cmp(&params[b].abs()).then(a.cmp(&b)));
    let mut pruned = weights[..k].to_vec();
    pruned.sort_unstable();
    Ok(pruned)
}

/// The share of `model`'s weights (see the module docs) that are zero.
pub fn sparsity(model: &dyn Model) -> f64 {
    let params = model.params();
    let (zero, all) = model
        .penalised()
        .iter()
        .flat_map(Range::clone)
        .fold((0usize, 0usize), |(z, a), i| (z + usize::from(params[i] == 0.0), a + 1));
    if all == 0 { 0.0 } else { zero as f64 / all as f64 }
}

/// A model whose parameters at `pruned` stay zero: they are zeroed when it
/// is made, and their gradient is zero at every step, so an optimizer
/// (Adam's moments included, from a fresh start) never moves them. Its
/// [`Model::init_params`] keeps the weights it was given: training it
/// fine-tunes them.
pub struct Masked<'a> {
    inner: &'a mut dyn Model,
    pruned: Vec<usize>,
}

impl<'a> Masked<'a> {
    pub fn new(inner: &'a mut dyn Model, pruned: Vec<usize>) -> Self {
        let params = inner.params_mut();
        for &i in &pruned {
            params[i] = 0.0;
        }
        Self { inner, pruned }
    }
}

impl Model for Masked<'_> {
    fn n_inputs(&self) -> usize {
        self.inner.n_inputs()
    }

    fn n_sparse_inputs(&self) -> usize {
        self.inner.n_sparse_inputs()
    }

    fn n_outputs(&self) -> usize {
        self.inner.n_outputs()
    }

    fn params(&self) -> &[f32] {
        self.inner.params()
    }

    fn params_mut(&mut self) -> &mut [f32] {
        self.inner.params_mut()
    }

    fn penalised(&self) -> &[Range<usize>] {
        self.inner.penalised()
    }

    fn frozen(&self) -> &[Range<usize>] {
        self.inner.frozen()
    }

    /// Dense: a sparse model's own ranges would not hold the mask.
    fn sparse_grad(&self) -> Option<&[Range<usize>]> {
        None
    }

    fn is_quantized(&self) -> bool {
        self.inner.is_quantized()
    }

    fn init_params(&mut self, _rng: &mut Rng) {}

    fn forward_backward(&mut self, x: Inputs, y: Targets, loss: Loss, grad: &mut [f32]) -> f64 {
        if self.inner.sparse_grad().is_some() {
            // Only the ranges it names hold this step's gradient.
            grad.iter_mut().for_each(|g| *g = 0.0);
        }
        let value = self.inner.forward_backward(x, y, loss, grad);
        for &i in &self.pruned {
            grad[i] = 0.0;
        }
        value
    }

    fn predict(&self, x: Inputs, out: &mut [f32]) {
        self.inner.predict(x, out);
    }

    fn named_params(&self) -> Vec<NamedParams> {
        self.inner.named_params()
    }

    fn rescale_outputs(&mut self, scale: &[f32], shift: &[f32]) {
        self.inner.rescale_outputs(scale, shift);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LinearModel, NoObserver, TrainConfig, Trainer};
    use gradus_data::{Dataset, Matrix, Target, seeded_rng};
    use rand::Rng as _;

    #[test]
    fn the_smallest_weights_go_and_biases_stay() {
        let mut model = LinearModel::new(3, 2, true);
        model.params_mut().copy_from_slice(&[0.5, -0.1, 3.0, 0.0, -2.0, 0.2, 9e-9, 1e-9]);
        // Six weights; half of them: 0.0, -0.1, 0.2 (the biases are not weights).
        assert_eq!(magnitude_mask(&model, 0.5).unwrap(), [1, 3, 5]);
        assert_eq!(magnitude_mask(&model, 0.01).unwrap(), Vec::<usize>::new(), "a share that rounds to none");
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(magnitude_mask(&model, bad).is_err(), "{bad}");
        }
        assert!((sparsity(&model) - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn fine_tuning_keeps_the_pruned_weights_at_zero_and_the_rest_learn() {
        let mut rng = seeded_rng(2);
        let n = 300;
        let x: Vec<f32> = (0..n * 4).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        // y = 2·x0 − x1 (x2, x3 unused).
        let y: Vec<f32> = x.chunks_exact(4).map(|r| 2.0 * r[0] - r[1]).collect();
        let names: Vec<String> = (0..4).map(|j| format!("x{j}")).collect();
        let data = Dataset::numeric("d", Matrix::from_vec(n, 4, x).unwrap(), Target::Real(y), &names, "y");
        let mut model = LinearModel::new(4, 1, true);
        model.params_mut().copy_from_slice(&[0.3, -0.2, 0.01, -0.02, 0.0]);
        let pruned = magnitude_mask(&model, 0.5).unwrap();
        assert_eq!(pruned, [2, 3]);
        let config = TrainConfig { epochs: 200, lr: 0.05, ..TrainConfig::default() };
        let mut masked = Masked::new(&mut model, pruned);
        Trainer::new(config).unwrap().fit(&mut masked, Loss::Mse, &data, None, &mut NoObserver).unwrap();
        let w = model.params();
        assert_eq!(&w[2..4], [0.0, 0.0]);
        assert!((w[0] - 2.0).abs() < 1e-2 && (w[1] + 1.0).abs() < 1e-2, "{w:?}");
        assert_eq!(sparsity(&model), 0.5);
    }
}
