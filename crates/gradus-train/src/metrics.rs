//! Evaluation metrics, computed on a model's raw outputs.

use gradus_data::{Dataset, Target};
use serde::Serialize;

use crate::{Loss, Model, TrainError};

/// The headline metrics of a model on one dataset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Metrics {
    Regression { mse: f64, r2: f64 },
    Classification { accuracy: f64, log_loss: f64 },
}

/// Mean squared error.
pub fn mse(pred: &[f32], y: &[f32]) -> f64 {
    pred.iter().zip(y).map(|(p, t)| ((p - t) as f64).powi(2)).sum::<f64>() / y.len() as f64
}

/// The coefficient of determination, 1 − SS_res/SS_tot (scikit-learn's
/// `r2_score`: 1 for a perfect fit of a constant target, else 0 there).
pub fn r2(pred: &[f32], y: &[f32]) -> f64 {
    let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    let ss_res = mse(pred, y) * y.len() as f64;
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// The fraction of predicted classes equal to the labels.
pub fn accuracy(predicted: &[u32], labels: &[u32]) -> f64 {
    predicted.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

/// The class each row of logits predicts: logit > 0 for one output, else the
/// arg-max.
pub fn predicted_classes(logits: &[f32], k: usize) -> Vec<u32> {
    if k == 1 {
        logits.iter().map(|&z| u32::from(z > 0.0)).collect()
    } else {
        logits
            .chunks_exact(k)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (j, &z)| if z > best.1 { (j, z) } else { best })
                    .0 as u32
            })
            .collect()
    }
}

/// MSE and R² for regression; accuracy and log-loss (the cross-entropy of
/// the predicted probabilities) for classification.
pub fn evaluate(model: &dyn Model, loss: Loss, data: &Dataset) -> Result<Metrics, TrainError> {
    loss.check(model.n_outputs(), &data.y)?;
    if data.n_features() != model.n_inputs() || data.n_samples() == 0 {
        return Err(TrainError::Mismatch(format!(
            "cannot evaluate on {} rows of {} features with a model of {} inputs",
            data.n_samples(),
            data.n_features(),
            model.n_inputs()
        )));
    }
    let k = model.n_outputs();
    let mut out = vec![0.0; data.n_samples() * k];
    model.predict(data.x.view(), &mut out);
    Ok(match &data.y {
        Target::Real(y) => Metrics::Regression { mse: mse(&out, y), r2: r2(&out, y) },
        Target::Classes { labels, .. } => Metrics::Classification {
            accuracy: accuracy(&predicted_classes(&out, k), labels),
            log_loss: loss.value(&out, k, (&data.y).into()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let y = [1.0, 2.0, 3.0];
        assert_eq!(mse(&[1.0, 2.0, 5.0], &y), 4.0 / 3.0);
        // SS_tot = 2, SS_res = 4 → R² = −1.
        assert_eq!(r2(&[1.0, 2.0, 5.0], &y), -1.0);
        assert_eq!(r2(&y, &y), 1.0);
        assert_eq!(r2(&[1.0, 1.0], &[2.0, 2.0]), 0.0);
        assert_eq!(accuracy(&[0, 1, 2, 1], &[0, 1, 1, 1]), 0.75);
        assert_eq!(predicted_classes(&[0.5, -0.1, 0.0], 1), [1, 0, 0]);
        assert_eq!(predicted_classes(&[0.1, 0.7, 0.2, 3.0, 1.0, 2.0], 3), [1, 0]);
    }
}
