//! The convolutional network: stages of [`Conv2d`] → activation → optional
//! [`MaxPool2d`] over images (one per row, `C×H×W` channel-major), then the
//! flattened features through Dense layers as in an MLP. [`CnnSpec`] is
//! the one description of such a network: it is what the model file stores
//! (so the input shape travels with the model), what the CLI builds from its
//! flags, and what works out every layer's shape.

use gradus_data::six_digits;
use serde::{Deserialize, Serialize};

use crate::augment::{Augment, Augmentation};
use crate::batchnorm::BatchNorm;
use crate::conv::{AvgPool2d, Conv2d, GlobalAvgPool, MaxPool2d, Shape, output_side};
use crate::layer::{ActivationLayer, DenseInit, Layer};
use crate::{Activation, Network, TrainError};

/// How a stage pools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Each window's maximum.
    #[default]
    Max,
    /// Each window's mean.
    Avg,
}

/// One stage: a convolution with `channels` outputs and a `kernel × kernel`
/// window moved by `stride` over the input padded by `padding`, the
/// activation, then (for `pool` > 1) `pooling` over `pool × pool` windows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvStage {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub pool: usize,
    #[serde(default)]
    pub pooling: Pooling,
}

impl ConvStage {
    /// A stride-1 convolution padded to keep the image's size (for an odd
    /// kernel), then `pool × pool` max pooling.
    pub fn same(channels: usize, kernel: usize, pool: usize) -> Self {
        Self { channels, kernel, stride: 1, padding: kernel / 2, pool, pooling: Pooling::Max }
    }

    /// `32k5-pool2` or `64k3s2p1`: channels, kernel, stride and padding
    /// when not 1 and 0, pooling when there is any.
    fn describe(&self) -> String {
        let mut s = format!("{}k{}", self.channels, self.kernel);
        if self.stride != 1 {
            s += &format!("s{}", self.stride);
        }
        if self.padding != 0 {
            s += &format!("p{}", self.padding);
        }
        if self.pool > 1 {
            s += &format!("-{}{}", if self.pooling == Pooling::Avg { "avgpool" } else { "pool" }, self.pool);
        }
        s
    }
}

/// The architecture of a convolutional network.
///
/// | field | meaning | range |
/// |---|---|---|
/// | `input` | channels, height, width of each image | each ≥ 1 |
/// | `conv` | the convolution stages, in order | ≥ 1 stage, each kernel fitting its input |
/// | `global_pool` | each channel averaged over the image after the stages (so the Dense layers see C values) | |
/// | `hidden` | widths of the Dense layers after them | each ≥ 1 |
/// | `n_outputs` | 1 for regression and binary, k for k classes | ≥ 1 |
/// | `activation` | after every convolution and hidden Dense layer | relu, tanh, sigmoid, gelu |
/// | `dropout` | on each hidden Dense layer's units in training | [0, 1) |
/// | `augment` | random shifts, rotations and mirrors of training images (see [`Augment`]) | off by default |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnSpec {
    pub input: Shape,
    pub conv: Vec<ConvStage>,
    #[serde(default)]
    pub global_pool: bool,
    pub hidden: Vec<usize>,
    pub n_outputs: usize,
    pub activation: Activation,
    pub dropout: f32,
    #[serde(default, skip_serializing_if = "is_off")]
    pub augment: Augment,
    /// Batch normalisation after each convolution, before its activation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch_norm: bool,
}

fn is_off(augment: &Augment) -> bool {
    !augment.is_active()
}

impl CnnSpec {
    /// The default network, LeNet-like: two stages of 5×5 convolutions
    /// (32 then 64 channels, padded to keep the size) each followed by 2×2
    /// max pooling, one hidden Dense layer of 128 ReLU units with dropout
    /// 0.25, and the output layer.
    pub fn lenet(input: Shape, n_outputs: usize) -> Self {
        Self {
            input,
            conv: vec![ConvStage::same(32, 5, 2), ConvStage::same(64, 5, 2)],
            global_pool: false,
            hidden: vec![128],
            n_outputs,
            activation: Activation::Relu,
            dropout: 0.25,
            augment: Augment::default(),
            batch_norm: false,
        }
    }

    /// Each stage's output shape (after its pooling), or an error naming the
    /// stage whose kernel or pooling window does not fit its input.
    pub fn stage_shapes(&self) -> Result<Vec<Shape>, TrainError> {
        if self.input.contains(&0) {
            return Err(TrainError::Mismatch(format!("an image shape needs every side ≥ 1; got {:?}", self.input)));
        }
        if self.conv.is_empty() {
            return Err(TrainError::Mismatch("a CNN needs at least one convolution stage".into()));
        }
        let mut shape = self.input;
        let mut shapes = Vec::with_capacity(self.conv.len());
        for (i, stage) in self.conv.iter().enumerate() {
            let [_, h, w] = shape;
            let fail = |what: String| {
                TrainError::Mismatch(format!("convolution stage {} ({}): {what}", i + 1, stage.describe()))
            };
            if stage.channels == 0 || stage.kernel == 0 || stage.stride == 0 {
                return Err(fail("channels, kernel and stride must be at least 1".into()));
            }
            // A kernel wider than the image itself sees mostly padding: refused,
            // though PyTorch would pad its way to an output.
            let (Some(oh), Some(ow)) = (
                output_side(h, stage.kernel, stage.stride, stage.padding).filter(|_| stage.kernel <= h),
                output_side(w, stage.kernel, stage.stride, stage.padding).filter(|_| stage.kernel <= w),
            ) else {
                return Err(fail(format!("the {0}x{0} kernel is larger than its {h}x{w} input", stage.kernel)));
            };
            shape = [stage.channels, oh, ow];
            if stage.pool > 1 {
                let (Some(ph), Some(pw)) =
                    (output_side(oh, stage.pool, stage.pool, 0), output_side(ow, stage.pool, stage.pool, 0))
                else {
                    return Err(fail(format!(
                        "the {0}x{0} pooling window is larger than its {oh}x{ow} input",
                        stage.pool
                    )));
                };
                shape = [stage.channels, ph, pw];
            }
            shapes.push(shape);
        }
        Ok(shapes)
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        self.stage_shapes()?;
        if self.n_outputs == 0 {
            return Err(TrainError::Mismatch("a CNN needs at least one output".into()));
        }
        if self.hidden.contains(&0) {
            return Err(TrainError::invalid("hidden layer width", 0, "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(TrainError::invalid("dropout", self.dropout, "must be in [0, 1)"));
        }
        self.augment.validate()
    }

    /// The widths of the Dense layers' inputs and outputs: the flattened
    /// last stage, the hidden widths, the outputs.
    pub fn dense_widths(&self) -> Result<Vec<usize>, TrainError> {
        let last = *self.stage_shapes()?.last().expect("at least one stage");
        let flat = if self.global_pool { last[0] } else { last.iter().product() };
        Ok(std::iter::once(flat).chain(self.hidden.iter().copied()).chain([self.n_outputs]).collect())
    }

    /// How many parameters each layer with any has, in order, or an error
    /// when the spec is invalid or a count overflows.
    pub fn param_counts(&self) -> Result<Vec<usize>, TrainError> {
        self.validate()?;
        let overflow = || TrainError::Mismatch(format!("the network {} has too many parameters", self.describe()));
        let mut counts = Vec::new();
        let mut channels = self.input[0];
        for stage in &self.conv {
            let weights = channels.checked_mul(stage.kernel * stage.kernel).and_then(|p| p.checked_mul(stage.channels));
            counts.push(weights.and_then(|w| w.checked_add(stage.channels)).ok_or_else(overflow)?);
            if self.batch_norm {
                counts.push(4 * stage.channels);
            }
            channels = stage.channels;
        }
        for pair in self.dense_widths()?.windows(2) {
            counts.push(pair[0].checked_add(1).and_then(|i| i.checked_mul(pair[1])).ok_or_else(overflow)?);
        }
        Ok(counts)
    }

    /// A short human description, such as `CNN 1x28x28 32k5p2-pool2 64k5p2-pool2 128 10 relu`.
    pub fn describe(&self) -> String {
        let [c, h, w] = self.input;
        let stages: Vec<String> = self.conv.iter().map(ConvStage::describe).collect();
        let dense: Vec<String> = self.hidden.iter().chain([&self.n_outputs]).map(usize::to_string).collect();
        let dropout =
            if self.dropout > 0.0 { format!(", dropout {}", six_digits(self.dropout)) } else { String::new() };
        let global = if self.global_pool { " gap" } else { "" };
        let bn = if self.batch_norm { ", batch norm" } else { "" };
        let a = self.augment;
        let augment = match (a.shift > 0.0, a.rotate > 0.0, a.flip) {
            (false, false, false) => String::new(),
            _ => format!(
                ", augment{}{}{}",
                if a.shift > 0.0 { format!(" shift {}", six_digits(a.shift)) } else { String::new() },
                if a.rotate > 0.0 { format!(" rotate {}", six_digits(a.rotate)) } else { String::new() },
                if a.flip { " flip" } else { "" }
            ),
        };
        format!(
            "CNN {c}x{h}x{w} {}{global} {} {}{bn}{dropout}{augment}",
            stages.join(" "),
            dense.join("-"),
            self.activation.name()
        )
    }
}

impl Network {
    /// The CNN `spec` describes, its parameters unset.
    pub fn cnn(spec: &CnnSpec) -> Result<Network, TrainError> {
        spec.validate()?;
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        let mut shape = spec.input;
        if spec.augment.is_active() {
            layers.push(Box::new(Augmentation::new(shape, spec.augment)));
        }
        for stage in &spec.conv {
            let conv = Conv2d::new(shape, stage.channels, stage.kernel, stage.stride, stage.padding)
                .expect("validated: the kernel fits");
            shape = conv.output_shape();
            layers.push(Box::new(conv));
            if spec.batch_norm {
                layers.push(Box::new(BatchNorm::new(shape[0], shape[1] * shape[2])));
            }
            // ReLU keeps the order of values, so it commutes with max
            // pooling, outputs and gradients alike (a window's maximum is
            // ≤ 0 exactly when all its ReLU outputs are 0): after the pool
            // it runs on a quarter of the values.
            let relu_after_pool =
                stage.pool > 1 && stage.pooling == Pooling::Max && spec.activation == Activation::Relu;
            if !relu_after_pool {
                layers.push(Box::new(ActivationLayer::new(spec.activation, shape.iter().product())));
            }
            if stage.pool > 1 && stage.pooling == Pooling::Max {
                let pool = MaxPool2d::new(shape, stage.pool, stage.pool).expect("validated: the window fits");
                shape = pool.output_shape();
                layers.push(Box::new(pool));
            } else if stage.pool > 1 {
                let pool = AvgPool2d::new(shape, stage.pool, stage.pool).expect("validated: the window fits");
                shape = pool.output_shape();
                layers.push(Box::new(pool));
            }
            if relu_after_pool {
                layers.push(Box::new(ActivationLayer::new(spec.activation, shape.iter().product())));
            }
        }
        if spec.global_pool {
            layers.push(Box::new(GlobalAvgPool::new(shape)));
        }
        let init = DenseInit::auto(spec.activation);
        crate::mlp::push_dense_stack(&mut layers, &spec.dense_widths()?, init, spec.activation, spec.dropout, false);
        Ok(Network::new(layers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Loss, Model, Penalty, Targets, regularised_loss_and_grad};
    use gradus_data::{MatRef, seeded_rng};
    use rand::Rng as _;

    fn small(activation: Activation, dropout: f32) -> CnnSpec {
        CnnSpec {
            input: [2, 7, 6],
            conv: vec![
                ConvStage { channels: 3, kernel: 3, stride: 1, padding: 1, pool: 2, pooling: Pooling::Max },
                ConvStage { channels: 2, kernel: 2, stride: 1, padding: 0, pool: 2, pooling: Pooling::Avg },
            ],
            global_pool: false,
            hidden: vec![5],
            n_outputs: 3,
            activation,
            dropout,
            augment: Augment::default(),
            batch_norm: false,
        }
    }

    #[test]
    fn shapes_parameters_and_names_follow_the_spec() {
        let spec = CnnSpec::lenet([1, 28, 28], 10);
        assert_eq!(spec.stage_shapes().unwrap(), [[32, 14, 14], [64, 7, 7]]);
        // PyTorch: Conv2d(1, 32, 5) 832, Conv2d(32, 64, 5) 51264, Linear(3136, 128) 401536, Linear(128, 10) 1290.
        assert_eq!(spec.param_counts().unwrap(), [832, 51_264, 401_536, 1_290]);
        let net = Network::cnn(&spec).unwrap();
        assert_eq!(net.params().len(), 832 + 51_264 + 401_536 + 1_290);
        let names: Vec<String> = net.named_params().into_iter().map(|p| format!("{} {:?}", p.name, p.shape)).collect();
        assert_eq!(
            names,
            [
                "conv.0.weight [32, 1, 5, 5]",
                "conv.0.bias [32]",
                "conv.1.weight [64, 32, 5, 5]",
                "conv.1.bias [64]",
                "dense.0.weight [3136, 128]",
                "dense.0.bias [128]",
                "dense.1.weight [128, 10]",
                "dense.1.bias [10]"
            ]
        );
        assert_eq!(spec.describe(), "CNN 1x28x28 32k5p2-pool2 64k5p2-pool2 128-10 relu, dropout 0.25");
        // A tuned value without its float noise.
        let tuned =
            CnnSpec { dropout: 0.427_359_97, augment: Augment { shift: 1.819_585, ..Augment::default() }, ..spec };
        assert!(tuned.describe().ends_with("relu, dropout 0.42736, augment shift 1.81958"), "{}", tuned.describe());
    }

    #[test]
    fn a_kernel_or_window_that_does_not_fit_is_an_error_naming_its_stage() {
        // 8x8 → 4x4 → 2x2 → 1x1 after three stages' pooling.
        let mut spec = CnnSpec::lenet([1, 8, 8], 10);
        spec.conv = vec![ConvStage::same(4, 3, 2), ConvStage::same(4, 3, 2), ConvStage::same(8, 1, 2)];
        assert!(spec.validate().is_ok());
        spec.conv.push(ConvStage::same(8, 1, 2));
        let err = spec.validate().unwrap_err().to_string();
        assert!(
            err.contains("stage 4 (8k1-pool2)") && err.contains("2x2 pooling window is larger than its 1x1"),
            "{err}"
        );
        let spec = CnnSpec { conv: vec![ConvStage { kernel: 9, padding: 0, ..ConvStage::same(4, 9, 1) }], ..spec };
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("stage 1 (4k9)") && err.contains("9x9 kernel is larger than its 8x8 input"), "{err}");
        // Even when padding would make room for it.
        let spec = CnnSpec { conv: vec![ConvStage::same(4, 9, 1)], ..spec };
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("9x9 kernel is larger than its 8x8 input"), "{err}");
    }

    #[test]
    fn relu_after_max_pooling_gives_what_relu_before_it_gives() {
        // The conventional order, conv → ReLU → max pool, built by hand.
        let spec = CnnSpec {
            conv: vec![ConvStage::same(3, 3, 2), ConvStage { pooling: Pooling::Avg, ..ConvStage::same(2, 3, 2) }],
            ..small(Activation::Relu, 0.0)
        };
        let conventional = |batch_norm: bool| {
            let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(Conv2d::new([2, 7, 6], 3, 3, 1, 1).unwrap())];
            if batch_norm {
                layers.push(Box::new(BatchNorm::new(3, 42)));
            }
            layers.push(Box::new(ActivationLayer::new(Activation::Relu, 126)));
            layers.push(Box::new(MaxPool2d::new([3, 7, 6], 2, 2).unwrap()));
            layers.push(Box::new(Conv2d::new([3, 3, 3], 2, 3, 1, 1).unwrap()));
            if batch_norm {
                layers.push(Box::new(BatchNorm::new(2, 9)));
            }
            layers.push(Box::new(ActivationLayer::new(Activation::Relu, 18)));
            layers.push(Box::new(AvgPool2d::new([2, 3, 3], 2, 2).unwrap()));
            crate::mlp::push_dense_stack(
                &mut layers,
                &[2, 5, 3],
                DenseInit::auto(Activation::Relu),
                Activation::Relu,
                0.0,
                false,
            );
            Network::new(layers)
        };
        for batch_norm in [false, true] {
            let mut fused = Network::cnn(&CnnSpec { batch_norm, ..spec.clone() }).unwrap();
            let mut rng = seeded_rng(7);
            fused.init_params(&mut rng);
            let mut plain = conventional(batch_norm);
            assert_eq!(plain.params().len(), fused.params().len());
            plain.params_mut().copy_from_slice(fused.params());
            // Negative inputs and biases leave whole windows ≤ 0.
            let n = 5;
            let x: Vec<f32> = (0..n * 84).map(|_| rng.random_range(-1.0f32..0.6)).collect();
            let x = MatRef::new(&x, n, 84).unwrap();
            let labels = [0, 2, 1, 1, 0];
            let (mut g1, mut g2) = (vec![0.0; fused.params().len()], vec![0.0; fused.params().len()]);
            let l1 = fused.forward_backward(x.into(), Targets::Classes(&labels), Loss::SoftmaxCrossEntropy, &mut g1);
            let l2 = plain.forward_backward(x.into(), Targets::Classes(&labels), Loss::SoftmaxCrossEntropy, &mut g2);
            assert_eq!(l1, l2);
            assert_eq!(g1, g2);
            assert!(g1.contains(&0.0) && g1.iter().any(|&g| g != 0.0));
            let (mut p1, mut p2) = (vec![0.0; n * 3], vec![0.0; n * 3]);
            fused.predict(x.into(), &mut p1);
            plain.predict(x.into(), &mut p2);
            assert_eq!(p1, p2);
        }
    }

    #[test]
    fn network_gradients_match_finite_differences() {
        for (seed, (activation, dropout)) in
            [(Activation::Tanh, 0.0), (Activation::Gelu, 0.3), (Activation::Sigmoid, 0.0)].into_iter().enumerate()
        {
            let spec = small(activation, dropout);
            let mut rng = seeded_rng(seed as u64);
            let mut model = Network::cnn(&spec).unwrap();
            model.init_params(&mut rng);
            let n = 3;
            let x: Vec<f32> = (0..n * 84).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let x = MatRef::new(&x, n, 84).unwrap();
            let labels = [0, 2, 1];
            let penalty = Penalty { l1: 0.0, l2: 0.1 };
            let eval = |params: &[f32], grad: &mut [f32]| {
                // A clone draws the same dropout mask every time.
                let mut m = model.clone();
                m.params_mut().copy_from_slice(params);
                regularised_loss_and_grad(
                    &mut m,
                    x.into(),
                    Targets::Classes(&labels),
                    Loss::SoftmaxCrossEntropy,
                    penalty,
                    grad,
                )
            };
            let params = model.params().to_vec();
            let mut grad = vec![0.0; params.len()];
            eval(&params, &mut grad);
            let mut scratch = grad.clone();
            // Small enough that no window's maximum changes hands.
            let h = 2e-3f32;
            for i in 0..params.len() {
                let mut p = params.clone();
                p[i] += h;
                let plus = eval(&p, &mut scratch);
                p[i] -= 2.0 * h;
                let numeric = ((plus - eval(&p, &mut scratch)) / (2.0 * h as f64)) as f32;
                assert!(
                    (grad[i] - numeric).abs() < 2e-3 * (1.0 + numeric.abs()),
                    "{activation:?}: parameter {i}: analytic {}, numeric {numeric}",
                    grad[i]
                );
            }
        }
    }
}
