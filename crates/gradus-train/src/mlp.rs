//! The multi-layer perceptron: a [`Network`] of Dense layers with an
//! activation (and optional dropout) between them and a linear output
//! layer. Parameters are laid out layer by layer as `[W₁, b₁, W₂, b₂, ...]`,
//! each `W` fan_in x fan_out row-major so that a layer computes `Z = A·W + b`.

use serde::{Deserialize, Serialize};

use crate::category::{CategoryEmbedding, CategorySpec};
use crate::layer::{ActivationLayer, Dense, DenseInit, Dropout, Layer};
use crate::periodic::{PeriodicEmbedding, PeriodicSpec};
use crate::{Activation, Network, TrainError};

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
/// | `periodic` | periodic embeddings of numeric inputs before the first layer | none, or a [`PeriodicSpec`] |
/// | `categories` | learned embeddings of one-hot blocks, after those | none, or a [`CategorySpec`] |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub n_inputs: usize,
    pub hidden: Vec<usize>,
    pub n_outputs: usize,
    pub activation: Activation,
    pub dropout: f32,
    pub init: WeightInit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<PeriodicSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<CategorySpec>,
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
        if let Some(periodic) = &self.periodic {
            periodic.validate(self.n_inputs)?;
        }
        if let Some(categories) = &self.categories {
            categories.validate(self.n_inputs)?;
        }
        Ok(())
    }

    /// The Dense layers' widths from input (the inputs and any embeddings)
    /// to output.
    pub fn widths(&self) -> Vec<usize> {
        let mut first = self.n_inputs + self.periodic.as_ref().map_or(0, PeriodicSpec::added_width);
        if let Some(categories) = &self.categories {
            first = categories.output_width(first);
        }
        std::iter::once(first).chain(self.hidden.iter().copied()).chain([self.n_outputs]).collect()
    }
}

/// Dense layers of `widths` (inputs, hidden widths, outputs) onto
/// `layers`, each hidden one followed by `activation` and, when `dropout`
/// is positive, dropout; with `data_first`, the first reads data and skips
/// a batch's all-zero columns.
pub(crate) fn push_dense_stack(
    layers: &mut Vec<Box<dyn Layer>>,
    widths: &[usize],
    init: DenseInit,
    activation: Activation,
    dropout: f32,
    data_first: bool,
) {
    for (i, pair) in widths.windows(2).enumerate() {
        let mut dense = Dense::new(pair[0], pair[1], init);
        dense.skip_zero_columns = data_first && i == 0;
        layers.push(Box::new(dense));
        if i + 2 < widths.len() {
            layers.push(Box::new(ActivationLayer::new(activation, pair[1])));
            if dropout > 0.0 {
                layers.push(Box::new(Dropout::new(dropout, pair[1])));
            }
        }
    }
}

impl Network {
    /// The MLP `spec` describes, its parameters unset.
    pub fn mlp(spec: &MlpSpec) -> Result<Network, TrainError> {
        spec.validate()?;
        let init = match spec.init {
            WeightInit::He => DenseInit::He,
            WeightInit::Xavier => DenseInit::Xavier,
            WeightInit::Auto => DenseInit::auto(spec.activation),
        };
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        let mut width = spec.n_inputs;
        if let Some(periodic) = &spec.periodic {
            layers.push(Box::new(PeriodicEmbedding::new(periodic.clone(), width)));
            width += periodic.added_width();
        }
        // The periodic embeddings come after the inputs, which keep their places.
        if let Some(categories) = &spec.categories {
            layers.push(Box::new(CategoryEmbedding::new(categories.clone(), width)));
        }
        // The first Dense layer reads the data, whose columns may be blank.
        push_dense_stack(&mut layers, &spec.widths(), init, spec.activation, spec.dropout, true);
        Ok(Network::new(layers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::dropout;
    use crate::{Loss, Model, Penalty, Targets, regularised_loss_and_grad};
    use gradus_data::{MatRef, seeded_rng};
    use proptest::prelude::*;
    use rand::Rng as _;

    fn spec(hidden: Vec<usize>, k: usize, activation: Activation, dropout: f32) -> MlpSpec {
        MlpSpec {
            n_inputs: 3,
            hidden,
            n_outputs: k,
            activation,
            dropout,
            init: WeightInit::Auto,
            periodic: None,
            categories: None,
        }
    }

    /// Checks the analytic gradient of the regularised objective against
    /// central differences. Each evaluation runs on a clone of the model, so
    /// dropout draws the same mask every time.
    /// Returns false (and checks nothing) when a ReLU unit sits so close to
    /// its kink that a difference step could cross it.
    fn check(spec: MlpSpec, loss: Loss, n: usize, seed: u64, l2: f32) -> bool {
        let mut rng = seeded_rng(seed);
        let mut model = Network::mlp(&spec).unwrap();
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
            regularised_loss_and_grad(&mut m, x.into(), y, loss, penalty, grad)
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
            probe.forward_backward(x.into(), y, loss, &mut scratch);
            let out = probe.outputs().last().expect("an output layer");
            let delta = if let Loss::Huber { delta } = loss { delta } else { 0.0 };
            if out.iter().zip(t).any(|(o, t)| ((o - t).abs() - delta).abs() < 0.05) {
                return false;
            }
        }
        if spec.activation == Activation::Relu {
            let mut probe = model.clone();
            regularised_loss_and_grad(&mut probe, x.into(), y, loss, penalty, &mut grad);
            // The pre-activations: every dense layer's outputs but the last's.
            let layers = probe.layers().len();
            let mut hidden_z = probe.layers().iter().zip(probe.outputs()).take(layers - 1);
            if hidden_z.any(|(layer, z)| layer.kind() == "dense" && z.iter().any(|z| z.abs() < 0.05)) {
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
        let mut model = Network::mlp(&spec(vec![4, 3], 2, Activation::Tanh, 0.0)).unwrap();
        model.init_params(&mut seeded_rng(3));
        let x = [0.5, -1.0, 2.0, 1.5, 0.0, -0.5];
        let x = MatRef::new(&x, 2, 3).unwrap();
        let mut out = [0.0; 4];
        model.predict(x.into(), &mut out);
        let mut grad = vec![0.0; model.params().len()];
        model.forward_backward(x.into(), Targets::Classes(&[0, 1]), Loss::SoftmaxCrossEntropy, &mut grad);
        assert_eq!(out.as_slice(), model.outputs().last().unwrap().as_slice());
    }

    #[test]
    fn layout_and_penalties_cover_every_layer() {
        let model = Network::mlp(&spec(vec![4, 2], 1, Activation::Relu, 0.0)).unwrap();
        // 3·4+4, 4·2+2, 2·1+1
        assert_eq!(model.params().len(), 16 + 10 + 3);
        assert_eq!(model.penalised(), &[0..12, 16..24, 26..28]);
    }

    #[test]
    fn rescale_outputs_maps_predictions_through_scale_and_shift() {
        let mut model = Network::mlp(&spec(vec![4], 1, Activation::Gelu, 0.0)).unwrap();
        model.init_params(&mut seeded_rng(5));
        let x = [0.5, -1.0, 2.0, 1.5, 0.0, -0.5];
        let x = MatRef::new(&x, 2, 3).unwrap();
        let (mut before, mut after) = ([0.0; 2], [0.0; 2]);
        model.predict(x.into(), &mut before);
        model.rescale_outputs(&[3.0], &[-2.0]);
        model.predict(x.into(), &mut after);
        for (a, b) in after.iter().zip(before) {
            assert!((a - (3.0 * b - 2.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn invalid_specs_are_rejected() {
        assert!(Network::mlp(&spec(vec![4, 0], 1, Activation::Relu, 0.0)).is_err());
        assert!(Network::mlp(&spec(vec![4], 1, Activation::Relu, 1.0)).is_err());
        assert!(Network::mlp(&MlpSpec { n_inputs: 0, ..spec(vec![], 1, Activation::Relu, 0.0) }).is_err());
    }
}
