//! Losses over a model's raw outputs, each returning the mean loss and its
//! gradient with respect to those outputs.
//!
//! The classification losses take logits and are computed in the numerically
//! stable forms: binary cross-entropy as `max(z,0) − z·y + ln(1 + e^−|z|)`, and
//! softmax cross-entropy through log-sum-exp with the maximum subtracted.
//! Sums are accumulated in f64.

use gradus_data::{Target, TargetKind};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// A training loss (the mean over samples).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean squared error over all outputs, as PyTorch's `MSELoss`.
    Mse,
    /// Mean absolute error, as `L1Loss` (gradient 0 at zero error).
    Mae,
    /// `½d²` for |d| < δ, else `δ(|d| − ½δ)`, averaged; PyTorch's `HuberLoss`.
    Huber { delta: f32 },
    /// Binary cross-entropy on one logit per sample, as `BCEWithLogitsLoss`.
    BinaryCrossEntropy,
    /// Cross-entropy of the softmax of k logits, as `CrossEntropyLoss`.
    SoftmaxCrossEntropy,
}

/// Borrowed targets, one per sample.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    Real(&'a [f32]),
    Classes(&'a [u32]),
    /// Class labels with a weight per class: each sample's loss and
    /// gradient count its class's weight (scikit-learn's `class_weight`);
    /// the mean is still over the samples.
    Weighted(&'a [u32], &'a [f32]),
    /// Probabilities to match instead of labels (knowledge distillation,
    /// Hinton et al. 2015: a teacher's predictions): for softmax
    /// cross-entropy a row of k per sample, summing to 1 (PyTorch's
    /// `CrossEntropyLoss` with class-probability targets); for binary
    /// cross-entropy the positive class's probability, one per sample
    /// (`BCEWithLogitsLoss` with a target in [0, 1]). The loss is then
    /// `−Σ p·log q`, its gradient `q − p`: at a one-hot row, the labels'.
    /// The second field is the values a row holds (k, or 1).
    Soft(&'a [f32], usize),
}

impl<'a> From<&'a Target> for Targets<'a> {
    fn from(t: &'a Target) -> Self {
        match t {
            Target::Real(v) => Targets::Real(v),
            Target::Classes { labels, .. } => Targets::Classes(labels),
        }
    }
}

impl<'a> Targets<'a> {
    /// The targets of the rows in `range`.
    pub fn rows(&self, range: std::ops::Range<usize>) -> Targets<'a> {
        match *self {
            Targets::Real(v) => Targets::Real(&v[range]),
            Targets::Classes(v) => Targets::Classes(&v[range]),
            Targets::Weighted(v, w) => Targets::Weighted(&v[range], w),
            Targets::Soft(p, k) => Targets::Soft(&p[range.start * k..range.end * k], k),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Targets::Real(v) => v.len(),
            Targets::Classes(v) | Targets::Weighted(v, _) => v.len(),
            Targets::Soft(p, k) => p.len() / (*k).max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Loss {
    /// The loss's name in messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mean squared error",
            Loss::Mae => "mean absolute error",
            Loss::Huber { .. } => "Huber",
            Loss::BinaryCrossEntropy => "binary cross-entropy",
            Loss::SoftmaxCrossEntropy => "softmax cross-entropy",
        }
    }

    /// How a data file's target column must be read for this loss.
    pub fn target_kind(self) -> TargetKind {
        match self {
            Loss::Mse | Loss::Mae | Loss::Huber { .. } => TargetKind::Real,
            Loss::BinaryCrossEntropy | Loss::SoftmaxCrossEntropy => TargetKind::Classes,
        }
    }

    /// Checks that a model with `n_outputs` outputs can be trained with this
    /// loss on `target`.
    pub fn check(self, n_outputs: usize, target: &Target) -> Result<(), TrainError> {
        let mismatch = |m: String| Err(TrainError::Mismatch(m));
        match (self, target) {
            (Loss::Huber { delta }, _) if !(delta > 0.0 && delta.is_finite()) => {
                Err(TrainError::invalid("huber delta", delta, "must be a finite number > 0"))
            }
            (Loss::Mse | Loss::Mae | Loss::Huber { .. }, Target::Real(_)) if n_outputs == 1 => Ok(()),
            (Loss::Mse | Loss::Mae | Loss::Huber { .. }, Target::Real(_)) => {
                mismatch(format!("a regression loss on one target needs 1 output, the model has {n_outputs}"))
            }
            (Loss::Mse | Loss::Mae | Loss::Huber { .. }, Target::Classes { .. }) => {
                mismatch(format!("{} needs a real-valued target, this one holds class labels", self.name()))
            }
            (_, Target::Real(_)) => mismatch(format!("{} needs a class target, this one is real-valued", self.name())),
            (Loss::BinaryCrossEntropy, Target::Classes { classes, .. }) if classes.len() != 2 || n_outputs != 1 => {
                mismatch(format!(
                    "binary cross-entropy needs 2 classes and 1 output; the target has {} classes, the model {n_outputs} outputs",
                    classes.len()
                ))
            }
            (Loss::SoftmaxCrossEntropy, Target::Classes { classes, .. }) if classes.len() != n_outputs => {
                mismatch(format!(
                    "softmax cross-entropy needs one output per class; the target has {} classes, the model {n_outputs} outputs",
                    classes.len()
                ))
            }
            _ => Ok(()),
        }
    }

    /// The mean loss of `outputs` (n x k, row-major) against `y`.
    pub fn value(self, outputs: &[f32], k: usize, y: Targets) -> f64 {
        self.compute(outputs, k, y, None)
    }

    /// The mean loss, with d(loss)/d(outputs) written into `grad`.
    ///
    /// # Panics
    /// When the shapes disagree or the loss does not fit the target type;
    /// [`Loss::check`] rules both out beforehand.
    pub fn value_and_grad(self, outputs: &[f32], k: usize, y: Targets, grad: &mut [f32]) -> f64 {
        self.compute(outputs, k, y, Some(grad))
    }

    fn compute(self, out: &[f32], k: usize, y: Targets, mut grad: Option<&mut [f32]>) -> f64 {
        if let Targets::Soft(p, width) = y {
            assert!(p.len() == out.len() && width == k, "soft targets have the outputs' shape");
        }
        let n = y.len();
        assert_eq!(out.len(), n * k, "outputs are n x k");
        if let Some(g) = &grad {
            assert_eq!(g.len(), out.len(), "gradient has the outputs' shape");
        }
        let mut total = 0.0f64;
        // Sample i's class weight (1 without weights).
        let weight = |i: usize| match y {
            Targets::Weighted(labels, w) => w[labels[i] as usize],
            _ => 1.0,
        };
        match (self, y) {
            (Loss::Mse, Targets::Real(y)) => {
                let scale = 2.0 / (n * k) as f32;
                for (i, row) in out.chunks_exact(k).enumerate() {
                    for (j, &o) in row.iter().enumerate() {
                        let d = o - y[i];
                        total += (d as f64) * (d as f64);
                        if let Some(g) = grad.as_deref_mut() {
                            g[i * k + j] = scale * d;
                        }
                    }
                }
                total / (n * k) as f64
            }
            (Loss::Mae, Targets::Real(y)) => {
                let scale = 1.0 / (n * k) as f32;
                for (i, row) in out.chunks_exact(k).enumerate() {
                    for (j, &o) in row.iter().enumerate() {
                        let d = o - y[i];
                        total += d.abs() as f64;
                        if let Some(g) = grad.as_deref_mut() {
                            g[i * k + j] = if d > 0.0 {
                                scale
                            } else if d < 0.0 {
                                -scale
                            } else {
                                0.0
                            };
                        }
                    }
                }
                total / (n * k) as f64
            }
            (Loss::Huber { delta }, Targets::Real(y)) => {
                let scale = 1.0 / (n * k) as f32;
                for (i, row) in out.chunks_exact(k).enumerate() {
                    for (j, &o) in row.iter().enumerate() {
                        let d = o - y[i];
                        let (value, slope) = if d.abs() < delta {
                            (0.5 * (d as f64).powi(2), d)
                        } else {
                            (delta as f64 * (d.abs() as f64 - 0.5 * delta as f64), delta * d.signum())
                        };
                        total += value;
                        if let Some(g) = grad.as_deref_mut() {
                            g[i * k + j] = scale * slope;
                        }
                    }
                }
                total / (n * k) as f64
            }
            (Loss::BinaryCrossEntropy, Targets::Classes(y) | Targets::Weighted(y, _)) => {
                assert_eq!(k, 1, "binary cross-entropy takes one logit");
                let inv_n = 1.0 / n as f32;
                for (i, &z) in out.iter().enumerate() {
                    let t = y[i] as f32;
                    let w = weight(i);
                    let z64 = z as f64;
                    total += w as f64 * (z64.max(0.0) - z64 * t as f64 + (-z64.abs()).exp().ln_1p());
                    if let Some(g) = grad.as_deref_mut() {
                        g[i] = (sigmoid(z) - t) * inv_n * w;
                    }
                }
                total / n as f64
            }
            (Loss::SoftmaxCrossEntropy, Targets::Classes(y) | Targets::Weighted(y, _)) => {
                let inv_n = 1.0 / n as f32;
                let with_grad = grad.is_some();
                let mut exps = vec![0.0f32; if with_grad { 0 } else { k }];
                for (i, row) in out.chunks_exact(k).enumerate() {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    // exp(z − max) ≤ 1 is safe in f32; each is computed once and
                    // kept in the gradient buffer (or a scratch row).
                    let e = match grad.as_deref_mut() {
                        Some(g) => &mut g[i * k..(i + 1) * k],
                        None => &mut exps[..],
                    };
                    let mut sum = 0.0f64;
                    for (ej, &z) in e.iter_mut().zip(row) {
                        *ej = (z - max).exp();
                        sum += *ej as f64;
                    }
                    let c = y[i] as usize;
                    let w = weight(i);
                    total += w as f64 * (max as f64 + sum.ln() - row[c] as f64);
                    if with_grad {
                        let scale = (1.0 / sum) as f32 * inv_n * w;
                        e.iter_mut().for_each(|ej| *ej *= scale);
                        e[c] -= inv_n * w;
                    }
                }
                total / n as f64
            }
            (Loss::BinaryCrossEntropy, Targets::Soft(p, _)) => {
                assert_eq!(k, 1, "binary cross-entropy takes one logit");
                let inv_n = 1.0 / n as f32;
                for (i, &z) in out.iter().enumerate() {
                    let (t, z64) = (p[i] as f64, z as f64);
                    total += z64.max(0.0) - z64 * t + (-z64.abs()).exp().ln_1p();
                    if let Some(g) = grad.as_deref_mut() {
                        g[i] = (sigmoid(z) - p[i]) * inv_n;
                    }
                }
                total / n as f64
            }
            (Loss::SoftmaxCrossEntropy, Targets::Soft(p, _)) => {
                let inv_n = 1.0 / n as f32;
                for (i, row) in out.chunks_exact(k).enumerate() {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f64 = row.iter().map(|&z| ((z - max) as f64).exp()).sum();
                    let log_sum = max as f64 + sum.ln();
                    let target = &p[i * k..(i + 1) * k];
                    // −Σ p_j log q_j = Σ p_j (log Σ e^z − z_j), with Σ p_j = 1.
                    total += target.iter().zip(row).map(|(&t, &z)| t as f64 * (log_sum - z as f64)).sum::<f64>();
                    if let Some(g) = grad.as_deref_mut() {
                        for j in 0..k {
                            let q = ((row[j] as f64 - log_sum).exp()) as f32;
                            g[i * k + j] = (q - target[j]) * inv_n;
                        }
                    }
                }
                total / n as f64
            }
            (loss, _) => panic!("{loss:?} does not fit this target type (Loss::check rules this out)"),
        }
    }
}

pub(crate) fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Central differences of `loss` at `out`, in f64 around f32 outputs.
    fn numeric_grad(loss: Loss, out: &[f32], k: usize, y: Targets, h: f32) -> Vec<f32> {
        (0..out.len())
            .map(|i| {
                let mut plus = out.to_vec();
                let mut minus = out.to_vec();
                plus[i] += h;
                minus[i] -= h;
                let dh = (plus[i] - minus[i]) as f64;
                ((loss.value(&plus, k, y) - loss.value(&minus, k, y)) / dh) as f32
            })
            .collect()
    }

    fn assert_close(analytic: &[f32], numeric: &[f32]) {
        let diff: f32 = analytic.iter().zip(numeric).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
        let norm: f32 = analytic.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-3);
        assert!(diff / norm < 1e-3, "relative error {} ({analytic:?} vs {numeric:?})", diff / norm);
    }

    proptest! {
        #[test]
        fn mse_gradient_matches_finite_differences(
            v in prop::collection::vec((-5.0f32..5.0, -5.0f32..5.0), 1..12)
        ) {
            let (out, y): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let mut g = vec![0.0; out.len()];
            Loss::Mse.value_and_grad(&out, 1, Targets::Real(&y), &mut g);
            assert_close(&g, &numeric_grad(Loss::Mse, &out, 1, Targets::Real(&y), 1e-2));
        }

        #[test]
        fn mae_and_huber_gradients_match_finite_differences(
            v in prop::collection::vec((-5.0f32..5.0, -5.0f32..5.0), 1..12),
            delta in 0.1f32..3.0,
        ) {
            // Central differences are wrong within h of a kink: zero error for
            // MAE, |error| = δ where Huber turns from quadratic to linear.
            prop_assume!(v.iter().all(|(o, y)| (o - y).abs() > 0.05 && ((o - y).abs() - delta).abs() > 0.05));
            let (out, y): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            for loss in [Loss::Mae, Loss::Huber { delta }] {
                let mut g = vec![0.0; out.len()];
                loss.value_and_grad(&out, 1, Targets::Real(&y), &mut g);
                assert_close(&g, &numeric_grad(loss, &out, 1, Targets::Real(&y), 1e-2));
            }
        }

        #[test]
        fn binary_cross_entropy_gradient_matches_finite_differences(
            v in prop::collection::vec((-8.0f32..8.0, 0u32..2), 1..12)
        ) {
            let (out, y): (Vec<f32>, Vec<u32>) = v.into_iter().unzip();
            let mut g = vec![0.0; out.len()];
            let loss = Loss::BinaryCrossEntropy;
            loss.value_and_grad(&out, 1, Targets::Classes(&y), &mut g);
            assert_close(&g, &numeric_grad(loss, &out, 1, Targets::Classes(&y), 1e-2));
        }

        #[test]
        fn softmax_cross_entropy_gradient_matches_finite_differences(
            k in 2usize..6,
            rows in prop::collection::vec((prop::collection::vec(-8.0f32..8.0, 6), 0u32..6), 1..8)
        ) {
            let out: Vec<f32> = rows.iter().flat_map(|(r, _)| r[..k].to_vec()).collect();
            let y: Vec<u32> = rows.iter().map(|(_, c)| c % k as u32).collect();
            let mut g = vec![0.0; out.len()];
            let loss = Loss::SoftmaxCrossEntropy;
            loss.value_and_grad(&out, k, Targets::Classes(&y), &mut g);
            assert_close(&g, &numeric_grad(loss, &out, k, Targets::Classes(&y), 1e-2));
        }

        #[test]
        fn class_weighted_gradients_match_finite_differences(
            rows in prop::collection::vec((prop::collection::vec(-8.0f32..8.0, 3), 0u32..3), 1..8),
            w in prop::collection::vec(0.1f32..5.0, 3)
        ) {
            let y: Vec<u32> = rows.iter().map(|(_, c)| *c).collect();
            let out: Vec<f32> = rows.iter().flat_map(|(r, _)| r.clone()).collect();
            let t = Targets::Weighted(&y, &w);
            let mut g = vec![0.0; out.len()];
            Loss::SoftmaxCrossEntropy.value_and_grad(&out, 3, t, &mut g);
            assert_close(&g, &numeric_grad(Loss::SoftmaxCrossEntropy, &out, 3, t, 1e-2));
            let binary: Vec<u32> = y.iter().map(|c| c % 2).collect();
            let logits: Vec<f32> = rows.iter().map(|(r, _)| r[0]).collect();
            let t = Targets::Weighted(&binary, &w[..2]);
            let mut g = vec![0.0; logits.len()];
            Loss::BinaryCrossEntropy.value_and_grad(&logits, 1, t, &mut g);
            assert_close(&g, &numeric_grad(Loss::BinaryCrossEntropy, &logits, 1, t, 1e-2));
        }
    }

    proptest! {
        #[test]
        fn soft_target_gradients_match_finite_differences(
            k in 2usize..6,
            rows in prop::collection::vec((prop::collection::vec(-8.0f32..8.0, 6), prop::collection::vec(0.01f32..1.0, 6)), 1..8)
        ) {
            let out: Vec<f32> = rows.iter().flat_map(|(r, _)| r[..k].to_vec()).collect();
            let p: Vec<f32> = rows
                .iter()
                .flat_map(|(_, w)| {
                    let sum: f32 = w[..k].iter().sum();
                    w[..k].iter().map(move |v| v / sum)
                })
                .collect();
            // A step of 1e-3: at 1e-2 the central difference's own error
            // (h²/6 of the third derivative, ~2e-6) exceeded the tolerance
            // on gradients of 5e-4 (logits 7.53 and 6.57 against targets
            // 0.72 and 0.28); the loss is taken in f64, so a small step costs nothing.
            let mut g = vec![0.0; out.len()];
            Loss::SoftmaxCrossEntropy.value_and_grad(&out, k, Targets::Soft(&p, k), &mut g);
            assert_close(&g, &numeric_grad(Loss::SoftmaxCrossEntropy, &out, k, Targets::Soft(&p, k), 1e-3));
            let logits: Vec<f32> = rows.iter().map(|(r, _)| r[0]).collect();
            let positive: Vec<f32> = rows.iter().map(|(_, w)| w[0]).collect();
            let mut g = vec![0.0; logits.len()];
            Loss::BinaryCrossEntropy.value_and_grad(&logits, 1, Targets::Soft(&positive, 1), &mut g);
            assert_close(&g, &numeric_grad(Loss::BinaryCrossEntropy, &logits, 1, Targets::Soft(&positive, 1), 1e-2));
        }
    }

    #[test]
    fn one_hot_soft_targets_are_the_labels() {
        let out = [0.3f32, -1.2, 2.0, 0.1, 0.0, -0.5];
        let labels = [2u32, 0];
        let one_hot = [0.0f32, 0.0, 1.0, 1.0, 0.0, 0.0];
        let (mut a, mut b) = (vec![0.0; 6], vec![0.0; 6]);
        let hard = Loss::SoftmaxCrossEntropy.value_and_grad(&out, 3, Targets::Classes(&labels), &mut a);
        let soft = Loss::SoftmaxCrossEntropy.value_and_grad(&out, 3, Targets::Soft(&one_hot, 3), &mut b);
        assert!((hard - soft).abs() < 1e-6, "{hard} vs {soft}");
        a.iter().zip(&b).for_each(|(x, y)| assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}"));
        // PyTorch: F.cross_entropy(torch.tensor([[0.3, -1.2, 2.0]]), torch.tensor([[0.2, 0.3, 0.5]]))
        // = 0.2·2.0011 + 0.3·3.5011 + 0.5·0.3011 = 1.6011 (log-sum-exp 2.3011).
        let soft = Loss::SoftmaxCrossEntropy.value(&out[..3], 3, Targets::Soft(&[0.2, 0.3, 0.5], 3));
        let lse = (0.3f64.exp() + (-1.2f64).exp() + 2.0f64.exp()).ln();
        let expected = 0.2 * (lse - 0.3) + 0.3 * (lse + 1.2) + 0.5 * (lse - 2.0);
        assert!((soft - expected).abs() < 1e-6, "{soft} vs {expected}");
        // Binary: a target of 0.25 on logit 0 gives ln 2.
        let bce = Loss::BinaryCrossEntropy.value(&[0.0], 1, Targets::Soft(&[0.25], 1));
        assert!((bce - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn class_weights_scale_each_samples_loss_and_weights_of_one_change_nothing() {
        // Logits 0: each sample's binary cross-entropy is ln 2; weights 3 (class 0) and 1 (class 1).
        let y = [0u32, 1, 1];
        let weighted = Loss::BinaryCrossEntropy.value(&[0.0; 3], 1, Targets::Weighted(&y, &[3.0, 1.0]));
        assert!((weighted - 5.0 / 3.0 * 2f64.ln()).abs() < 1e-12, "{weighted}");
        let out = [0.3f32, -1.2, 2.0, 0.1, 0.0, -0.5];
        let labels = [2u32, 0];
        let (mut a, mut b) = (vec![0.0; 6], vec![0.0; 6]);
        let plain = Loss::SoftmaxCrossEntropy.value_and_grad(&out, 3, Targets::Classes(&labels), &mut a);
        let ones = Loss::SoftmaxCrossEntropy.value_and_grad(&out, 3, Targets::Weighted(&labels, &[1.0; 3]), &mut b);
        assert_eq!((plain, a), (ones, b), "bit for bit");
    }

    #[test]
    fn losses_match_closed_forms() {
        // MSE of (1 - 3)^2 and (2 - 2)^2 is 2.
        assert_eq!(Loss::Mse.value(&[1.0, 2.0], 1, Targets::Real(&[3.0, 2.0])), 2.0);
        // MAE of |1 − 3| and |2 − 2| is 1; Huber(δ=1) of errors −2 and 0.5 is
        // (1·(2 − 0.5) + 0.5·0.25)/2 = 0.8125 (torch.nn.HuberLoss gives the same).
        assert_eq!(Loss::Mae.value(&[1.0, 2.0], 1, Targets::Real(&[3.0, 2.0])), 1.0);
        let huber = Loss::Huber { delta: 1.0 }.value(&[1.0, 2.5], 1, Targets::Real(&[3.0, 2.0]));
        assert!((huber - 0.8125).abs() < 1e-12, "{huber}");
        // BCE of logit 0 is ln 2 whatever the label.
        let bce = Loss::BinaryCrossEntropy.value(&[0.0, 0.0], 1, Targets::Classes(&[0, 1]));
        assert!((bce - std::f64::consts::LN_2).abs() < 1e-12);
        // Uniform logits over 4 classes give ln 4.
        let ce = Loss::SoftmaxCrossEntropy.value(&[1.0; 4], 4, Targets::Classes(&[2]));
        assert!((ce - 4f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn classification_losses_stay_finite_for_huge_logits() {
        let bce = Loss::BinaryCrossEntropy.value(&[1e4, -1e4], 1, Targets::Classes(&[0, 1]));
        assert!((bce - 1e4).abs() < 1e-6, "{bce}");
        let mut g = [0.0; 3];
        let ce = Loss::SoftmaxCrossEntropy.value_and_grad(&[1e4, 0.0, -1e4], 3, Targets::Classes(&[1]), &mut g);
        assert!((ce - 1e4).abs() < 1e-6 && g.iter().all(|v| v.is_finite()), "{ce} {g:?}");
    }

    #[test]
    fn check_rejects_targets_that_do_not_fit() {
        let real = Target::Real(vec![1.0]);
        let three = Target::Classes { labels: vec![0, 1, 2], classes: vec!["a".into(), "b".into(), "c".into()] };
        assert!(Loss::Mse.check(1, &real).is_ok());
        assert!(Loss::Mse.check(1, &three).is_err());
        assert!(Loss::BinaryCrossEntropy.check(1, &three).is_err());
        assert!(Loss::BinaryCrossEntropy.check(1, &real).is_err());
        assert!(Loss::SoftmaxCrossEntropy.check(3, &three).is_ok());
        assert!(Loss::SoftmaxCrossEntropy.check(2, &three).is_err());
    }
}
