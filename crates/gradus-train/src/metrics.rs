//! Evaluation metrics, computed on a model's raw outputs. Definitions follow
//! scikit-learn's (`r2_score`, `f1_score(average="macro")`, `roc_auc_score`,
//! `confusion_matrix`), and the tests below pin their values.

use gradus_data::{Dataset, Inputs, SparseRows, Target, Task};
use serde::Serialize;

use crate::{Loss, Model, TrainError};

/// The headline metrics of a model on one dataset.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Metrics {
    Regression {
        mse: f64,
        rmse: f64,
        mae: f64,
        r2: f64,
    },
    Classification {
        accuracy: f64,
        /// The mean recall over the classes that occur: what accuracy is
        /// when every class counts the same, whatever its size.
        balanced_accuracy: f64,
        log_loss: f64,
        macro_f1: f64,
        /// Binary targets only.
        #[serde(skip_serializing_if = "Option::is_none")]
        roc_auc: Option<f64>,
        /// The area under the precision-recall curve (average precision),
        /// binary targets only.
        #[serde(skip_serializing_if = "Option::is_none")]
        pr_auc: Option<f64>,
        /// `confusion[true class][predicted class]` counts; per-class
        /// precision, recall and F1 follow from it ([`class_scores`]).
        confusion: Vec<Vec<u64>>,
    },
}

/// What a search ranks models by (`gradus tune --metric`), one of
/// [`Metrics`]' headline numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LogLoss,
    Accuracy,
    BalancedAccuracy,
    MacroF1,
    /// Two classes only.
    RocAuc,
    /// Two classes only (average precision).
    PrAuc,
    Rmse,
    Mae,
    R2,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::LogLoss,
        Metric::Accuracy,
        Metric::BalancedAccuracy,
        Metric::MacroF1,
        Metric::RocAuc,
        Metric::PrAuc,
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
    ];

    /// Its name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Metric::LogLoss => "log_loss",
            Metric::Accuracy => "accuracy",
            Metric::BalancedAccuracy => "balanced_accuracy",
            Metric::MacroF1 => "macro_f1",
            Metric::RocAuc => "roc_auc",
            Metric::PrAuc => "pr_auc",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    /// The metric named `name`; `None` for a name no metric has.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether a larger value is better (accuracy) rather than a smaller one (a loss).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::LogLoss | Metric::Rmse | Metric::Mae)
    }

    /// The metric a task is ranked by unless told otherwise: log-loss for
    /// classes, RMSE for a real target, what the training losses minimise.
    pub fn default_for(task: Task) -> Metric {
        if task == Task::Regression { Metric::Rmse } else { Metric::LogLoss }
    }

    /// Whether this metric can rank models of `task`.
    pub fn fits(self, task: Task) -> bool {
        match self {
            Metric::Rmse | Metric::Mae | Metric::R2 => task == Task::Regression,
            Metric::RocAuc | Metric::PrAuc => task == Task::Binary,
            _ => task != Task::Regression,
        }
    }

    /// Why this metric cannot rank models of `task`, naming those that can;
    /// `None` when it fits.
    pub fn unfit_for(self, task: Task) -> Option<String> {
        if self.fits(task) {
            return None;
        }
        let fitting: Vec<&str> = Metric::ALL.into_iter().filter(|m| m.fits(task)).map(Metric::name).collect();
        let why = match (self, task) {
            (Metric::RocAuc | Metric::PrAuc, Task::Multiclass { .. }) => "is defined for two classes only".to_string(),
            _ => format!("does not fit a {task} target"),
        };
        Some(format!("--metric {self} {why}; use one of {}", fitting.join(", ")))
    }

    /// This metric's value among `metrics`; `None` when they lack it (a
    /// ROC AUC of one class, or metrics of the other kind of task).
    pub fn of(self, metrics: &Metrics) -> Option<f64> {
        match (self, metrics) {
            (Metric::LogLoss, Metrics::Classification { log_loss, .. }) => Some(*log_loss),
            (Metric::Accuracy, Metrics::Classification { accuracy, .. }) => Some(*accuracy),
            (Metric::BalancedAccuracy, Metrics::Classification { balanced_accuracy, .. }) => Some(*balanced_accuracy),
            (Metric::MacroF1, Metrics::Classification { macro_f1, .. }) => Some(*macro_f1),
            (Metric::RocAuc, Metrics::Classification { roc_auc, .. }) => *roc_auc,
            (Metric::PrAuc, Metrics::Classification { pr_auc, .. }) => *pr_auc,
            (Metric::Rmse, Metrics::Regression { rmse, .. }) => Some(*rmse),
            (Metric::Mae, Metrics::Regression { mae, .. }) => Some(*mae),
            (Metric::R2, Metrics::Regression { r2, .. }) => Some(*r2),
            _ => None,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One class's precision, recall, F1 and support (its true rows).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Each class's scores from a confusion matrix (`confusion[true][predicted]`);
/// a ratio with nothing to count is 0 (scikit-learn's `zero_division=0`).
pub fn class_scores(confusion: &[Vec<u64>]) -> Vec<ClassScores> {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    (0..confusion.len())
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let support: u64 = confusion[c].iter().sum();
            let predicted: f64 = confusion.iter().map(|row| row[c] as f64).sum();
            let (precision, recall) = (ratio(tp, predicted), ratio(tp, support as f64));
            ClassScores { precision, recall, f1: ratio(2.0 * tp, support as f64 + predicted), support }
        })
        .collect()
}

/// The mean recall over the classes with at least one true row
/// (scikit-learn's `balanced_accuracy_score`).
pub fn balanced_accuracy(confusion: &[Vec<u64>]) -> f64 {
    let recalls: Vec<f64> = class_scores(confusion).iter().filter(|s| s.support > 0).map(|s| s.recall).collect();
    if recalls.is_empty() { 0.0 } else { recalls.iter().sum::<f64>() / recalls.len() as f64 }
}

/// The average precision of `scores` for binary `labels` (1 is positive):
/// Σ (Rₙ − Rₙ₋₁) Pₙ over the distinct score thresholds, highest first —
/// scikit-learn's `average_precision_score`, the usual estimate of the area
/// under the precision-recall curve. `None` with no positive row.
pub fn average_precision(scores: &[f32], labels: &[u32]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let (mut tp, mut fp, mut recall, mut ap) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Every row tied at a score crosses the threshold together.
    for_each_tie(scores, labels, Order::Descending, |pos, neg| {
        (tp, fp) = (tp + pos, fp + neg);
        let now = tp / positives;
        ap += (now - recall) * tp / (tp + fp);
        recall = now;
    });
    Some(ap)
}

#[derive(Clone, Copy)]
enum Order {
    Ascending,
    Descending,
}

/// Calls `f` with the count of positive and of negative rows (label 1, and
/// any other) at each distinct score, in `order` of score. Sorts 4-byte row
/// numbers, the only memory it takes: the ranking metrics run on every row
/// of a dataset, which may be millions.
fn for_each_tie(scores: &[f32], labels: &[u32], order: Order, mut f: impl FnMut(f64, f64)) {
    let n = u32::try_from(scores.len()).expect("fewer than 2^32 rows (a table is read up to line 2^32 − 1)");
    let mut rows: Vec<u32> = (0..n).collect();
    match order {
        Order::Ascending => rows.sort_unstable_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize])),
        Order::Descending => rows.sort_unstable_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize])),
    }
    let mut i = 0;
    while i < rows.len() {
        let score = scores[rows[i] as usize];
        let (mut pos, mut neg) = (0.0, 0.0);
        while i < rows.len() && scores[rows[i] as usize] == score {
            if labels[rows[i] as usize] == 1 {
                pos += 1.0
            } else {
                neg += 1.0
            }
            i += 1;
        }
        f(pos, neg);
    }
}

/// Mean squared error.
pub fn mse(pred: &[f32], y: &[f32]) -> f64 {
    pred.iter().zip(y).map(|(p, t)| ((p - t) as f64).powi(2)).sum::<f64>() / y.len() as f64
}

/// Mean absolute error.
pub fn mae(pred: &[f32], y: &[f32]) -> f64 {
    pred.iter().zip(y).map(|(p, t)| ((p - t) as f64).abs()).sum::<f64>() / y.len() as f64
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

/// `confusion[true][predicted]` over `n_classes` classes.
pub fn confusion_matrix(predicted: &[u32], labels: &[u32], n_classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; n_classes]; n_classes];
    for (&p, &l) in predicted.iter().zip(labels) {
        m[l as usize][p as usize] += 1;
    }
    m
}

/// The unweighted mean of per-class F1 over the classes that occur in the
/// labels or the predictions; a class with no true or predicted positives
/// scores 0 (scikit-learn's `zero_division=0`).
pub fn macro_f1(confusion: &[Vec<u64>]) -> f64 {
    let k = confusion.len();
    let mut sum = 0.0;
    let mut present = 0;
    for c in 0..k {
        let tp = confusion[c][c] as f64;
        let support: u64 = confusion[c].iter().sum();
        let predicted: u64 = confusion.iter().map(|row| row[c]).sum();
        if support == 0 && predicted == 0 {
            continue;
        }
        present += 1;
        let denom = support as f64 + predicted as f64;
        sum += if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
    }
    if present == 0 { 0.0 } else { sum / present as f64 }
}

/// The area under the ROC curve of `scores` for binary `labels` (1 is the
/// positive class): the Mann–Whitney probability that a random positive
/// scores above a random negative, ties counting one half. `None` when only
/// one class is present.
pub fn roc_auc(scores: &[f32], labels: &[u32]) -> Option<f64> {
    let n_pos = labels.iter().filter(|&&l| l == 1).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    // The positives' rank sum (1-based ranks, averaged over ties).
    let (mut below, mut rank_sum) = (0.0f64, 0.0f64);
    for_each_tie(scores, labels, Order::Ascending, |pos, neg| {
        rank_sum += pos * (below + (pos + neg + 1.0) / 2.0);
        below += pos + neg;
    });
    Some((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
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

/// Class probabilities from logits: `[p(0), p(1)]` per row from one logit
/// (sigmoid), the softmax of k logits otherwise.
pub fn probabilities(logits: &[f32], k: usize) -> Vec<f32> {
    if k == 1 {
        logits
            .iter()
            .flat_map(|&z| {
                let p = crate::loss::sigmoid(z);
                [1.0 - p, p]
            })
            .collect()
    } else {
        let mut out = Vec::with_capacity(logits.len());
        // A row's exponentials, each taken once.
        let mut exps = vec![0.0f64; k];
        for row in logits.chunks_exact(k) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for (e, &z) in exps.iter_mut().zip(row) {
                *e = ((z - max) as f64).exp();
            }
            let sum: f64 = exps.iter().sum();
            out.extend(exps.iter().map(|&e| (e / sum) as f32));
        }
        out
    }
}

/// Every metric for `data`: MSE, RMSE, MAE and R² for regression; accuracy,
/// log-loss (the cross-entropy of the predicted probabilities), macro-F1,
/// ROC AUC (binary) and the confusion matrix for classification.
pub fn evaluate(model: &dyn Model, loss: Loss, data: &Dataset) -> Result<Metrics, TrainError> {
    if data.n_features() != model.n_inputs() || data.n_samples() == 0 {
        return Err(TrainError::Mismatch(format!(
            "cannot evaluate on {} rows of {} features with a model of {} inputs",
            data.n_samples(),
            data.n_features(),
            model.n_inputs()
        )));
    }
    let k = model.n_outputs();
    let out = predict_dataset(model, data);
    metrics_of_outputs(&out, k, loss, &data.y)
}

/// The model's outputs for every row of `data`, row after row. A dataset
/// that computes its inputs as needed (see [`Dataset::expansion`]) is
/// expanded a block of rows at a time, never whole.
pub fn predict_dataset(model: &dyn Model, data: &Dataset) -> Vec<f32> {
    use gradus_data::BLOCK_ROWS;
    let (n, k) = (data.n_samples(), model.n_outputs());
    let mut out = vec![0.0; n * k];
    match &data.expansion {
        None => model.predict(Inputs::new(data.x.view(), data.sparse.as_ref().map(SparseRows::view)), &mut out),
        Some(_) => {
            let mut block = gradus_data::Matrix::zeros(0, 0);
            for first in (0..n).step_by(BLOCK_ROWS) {
                let end = (first + BLOCK_ROWS).min(n);
                data.block_inputs(first..end, &mut block);
                let sparse = data.sparse.as_ref().map(|s| s.view().slice_rows(first..end));
                model.predict(Inputs::new(block.view(), sparse), &mut out[first * k..end * k]);
            }
        }
    }
    out
}

/// Every metric of values as an ensemble averages them (see
/// [`crate::SavedModel::averaged_values`]: class probabilities, one per
/// class row after row, or predictions) against `target`.
pub fn metrics_of_averaged(values: &[f64], target: &Target) -> Result<Metrics, TrainError> {
    let (loss, k) = match target {
        Target::Real(_) => (Loss::Mse, 1),
        Target::Classes { classes, .. } if classes.len() == 2 => (Loss::BinaryCrossEntropy, 1),
        Target::Classes { classes, .. } => (Loss::SoftmaxCrossEntropy, classes.len()),
    };
    let classes = target.labels().map(|_| values.len() / target.len().max(1));
    metrics_of_outputs(&logits_of_probabilities(values, classes, k), k, loss, target)
}

/// Outputs whose loss reads `mean` as it is (see [`metrics_of_averaged`]):
/// the predictions for a real target (`classes` None); for classes,
/// logits whose softmax (or sigmoid, for one output, `k` 1) is `mean` —
/// log-probabilities, or the log-odds.
pub(crate) fn logits_of_probabilities(mean: &[f64], classes: Option<usize>, k: usize) -> Vec<f32> {
    // Floored so that a class with no chance keeps a finite logit; a
    // comparison, not `max`, so NaN stays NaN.
    let p = |m: f64| if m < 1e-30 { 1e-30 } else { m };
    match classes {
        None => mean.iter().map(|&m| m as f32).collect(),
        Some(c) if k == 1 => mean.chunks_exact(c.max(1)).map(|row| (p(row[1]).ln() - p(row[0]).ln()) as f32).collect(),
        Some(_) => mean.iter().map(|&m| p(m).ln() as f32).collect(),
    }
}

/// [`evaluate`]'s metrics from outputs already computed (`k` per row: the
/// predictions, or the logits of `loss`) for targets `y`.
pub(crate) fn metrics_of_outputs(out: &[f32], k: usize, loss: Loss, y: &Target) -> Result<Metrics, TrainError> {
    loss.check(k, y)?;
    if out.len() != y.len() * k || y.is_empty() {
        return Err(TrainError::Mismatch(format!("{} outputs for {} rows of {k}", out.len(), y.len())));
    }
    Ok(match y {
        Target::Real(y) => {
            let mse = mse(out, y);
            Metrics::Regression { mse, rmse: mse.sqrt(), mae: mae(out, y), r2: r2(out, y) }
        }
        Target::Classes { labels, classes } => {
            let predicted = predicted_classes(out, k);
            let confusion = confusion_matrix(&predicted, labels, classes.len().max(k));
            // AUC needs only the ranking: rank the positive class's logit margin,
            // which (unlike a probability) does not saturate to ties at 1.0.
            let margin: Option<std::borrow::Cow<[f32]>> = match (classes.len(), k) {
                (2, 1) => Some(out.into()),
                (2, 2) => Some(out.chunks_exact(2).map(|z| z[1] - z[0]).collect::<Vec<_>>().into()),
                _ => None,
            };
            Metrics::Classification {
                accuracy: accuracy(&predicted, labels),
                balanced_accuracy: balanced_accuracy(&confusion),
                log_loss: loss.value(out, k, y.into()),
                macro_f1: macro_f1(&confusion),
                roc_auc: margin.as_ref().and_then(|m| roc_auc(m, labels)),
                pr_auc: margin.as_ref().and_then(|m| average_precision(m, labels)),
                confusion,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_metrics_match_hand_computed_values() {
        let y = [1.0, 2.0, 3.0];
        assert_eq!(mse(&[1.0, 2.0, 5.0], &y), 4.0 / 3.0);
        assert_eq!(mae(&[1.0, 2.0, 5.0], &y), 2.0 / 3.0);
        // SS_tot = 2, SS_res = 4 → R² = −1.
        assert_eq!(r2(&[1.0, 2.0, 5.0], &y), -1.0);
        assert_eq!(r2(&y, &y), 1.0);
        assert_eq!(r2(&[1.0, 1.0], &[2.0, 2.0]), 0.0);
    }

    #[test]
    fn classification_metrics_match_scikit_learn() {
        // from sklearn.metrics import *
        // y = [0, 1, 2, 2, 1, 0, 2]; p = [0, 2, 2, 2, 1, 1, 0]
        // accuracy_score(y, p) = 4/7; confusion_matrix(y, p) = [[1,1,0],[0,1,1],[1,0,2]]
        // f1_score(y, p, average="macro") = mean(0.5, 0.5, 0.6666667) = 0.5555556
        let y = [0, 1, 2, 2, 1, 0, 2];
        let p = [0, 2, 2, 2, 1, 1, 0];
        assert_eq!(accuracy(&p, &y), 4.0 / 7.0);
        let cm = confusion_matrix(&p, &y, 3);
        assert_eq!(cm, vec![vec![1, 1, 0], vec![0, 1, 1], vec![1, 0, 2]]);
        assert!((macro_f1(&cm) - 0.555_555_6).abs() < 1e-6, "{}", macro_f1(&cm));
        // A class that never occurs is left out of the mean.
        assert_eq!(macro_f1(&confusion_matrix(&[0, 1], &[0, 1], 3)), 1.0);
        assert_eq!(predicted_classes(&[0.5, -0.1, 0.0], 1), [1, 0, 0]);
        assert_eq!(predicted_classes(&[0.1, 0.7, 0.2, 3.0, 1.0, 2.0], 3), [1, 0]);
    }

    #[test]
    fn metrics_are_named_once_and_fit_their_tasks() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.name()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.name(), "one spelling in JSON too");
        }
        assert_eq!(Metric::parse("auc"), None);
        let multi = Task::Multiclass { n_classes: 3 };
        assert!(Metric::RocAuc.fits(Task::Binary) && !Metric::RocAuc.fits(multi));
        assert!(Metric::MacroF1.fits(multi) && !Metric::MacroF1.fits(Task::Regression));
        assert!(Metric::R2.fits(Task::Regression) && !Metric::R2.fits(Task::Binary));
        let why = Metric::Mae.unfit_for(Task::Binary).unwrap();
        assert!(why.contains("--metric mae does not fit a binary target") && why.contains("roc_auc"), "{why}");
        let why = Metric::PrAuc.unfit_for(multi).unwrap();
        assert!(why.contains("two classes") && !why.contains("roc_auc") && why.contains("macro_f1"), "{why}");
        assert_eq!(Metric::Accuracy.unfit_for(multi), None);
        assert!(Metric::Accuracy.higher_is_better() && !Metric::Mae.higher_is_better());
        assert_eq!(Metric::default_for(Task::Regression), Metric::Rmse);
        assert_eq!(Metric::default_for(multi), Metric::LogLoss);
    }

    #[test]
    fn metrics_of_averaged_probabilities_read_them_as_they_are() {
        // Two classes, probabilities (p0, p1) per row; labels 0, 1, 1, 0.
        let p1 = [0.2, 0.7, 0.4, 0.6];
        let values: Vec<f64> = p1.iter().flat_map(|&p| [1.0 - p, p]).collect();
        let y = Target::Classes { labels: vec![0, 1, 1, 0], classes: vec!["a".into(), "b".into()] };
        let m = metrics_of_averaged(&values, &y).unwrap();
        // log_loss([0,1,1,0], [.2,.7,.4,.6]) = -(ln .8 + ln .7 + ln .4 + ln .4) / 4
        // = 0.6030999897503131; roc_auc_score(...) = 3 of 4 pairs = 0.75
        assert!((Metric::LogLoss.of(&m).unwrap() - 0.603_099_989_750_313_1).abs() < 1e-6, "{m:?}");
        assert_eq!(Metric::RocAuc.of(&m), Some(0.75));
        assert_eq!(Metric::Accuracy.of(&m), Some(0.5));
        // Three classes: the argmax, and the log-loss of the true class.
        let values = [0.7, 0.2, 0.1, 0.1, 0.1, 0.8];
        let y = Target::Classes { labels: vec![0, 1], classes: vec!["a".into(), "b".into(), "c".into()] };
        let m = metrics_of_averaged(&values, &y).unwrap();
        assert_eq!(Metric::Accuracy.of(&m), Some(0.5));
        assert!((Metric::LogLoss.of(&m).unwrap() - (-(0.7f64.ln() + 0.1f64.ln()) / 2.0)).abs() < 1e-6);
        // Predictions of a real target.
        let m = metrics_of_averaged(&[1.0, 2.0, 5.0], &Target::Real(vec![1.0, 2.0, 3.0])).unwrap();
        assert_eq!(Metric::Mae.of(&m), Some(2.0 / 3.0));
        assert_eq!(Metric::R2.of(&m), Some(-1.0));
        assert_eq!(Metric::Accuracy.of(&m), None, "not a metric of this task");
    }

    #[test]
    fn balanced_accuracy_class_scores_and_average_precision_match_scikit_learn() {
        // y = [0, 1, 2, 2, 1, 0, 2]; p = [0, 2, 2, 2, 1, 1, 0]
        // balanced_accuracy_score(y, p) = 0.5555555555555555
        // precision_recall_fscore_support(y, p, zero_division=0) =
        //   ([0.5, 0.5, 0.6667], [0.5, 0.5, 0.6667], [0.5, 0.5, 0.6667], [2, 2, 3])
        let cm = confusion_matrix(&[0, 2, 2, 2, 1, 1, 0], &[0, 1, 2, 2, 1, 0, 2], 3);
        assert!((balanced_accuracy(&cm) - 0.555_555_555_555_555_5).abs() < 1e-15);
        let scores = class_scores(&cm);
        for (s, (want, support)) in scores.iter().zip([(0.5, 2), (0.5, 2), (2.0 / 3.0, 3)]) {
            assert!(
                (s.precision - want).abs() < 1e-12 && (s.recall - want).abs() < 1e-12 && (s.f1 - want).abs() < 1e-12
            );
            assert_eq!(s.support, support);
        }
        // A class with no true rows is left out of the balanced mean.
        assert_eq!(balanced_accuracy(&confusion_matrix(&[0, 1], &[0, 1], 3)), 1.0);
        // average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333333333333333
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
        assert!((ap - 0.833_333_333_333_333_3).abs() < 1e-12, "{ap}");
        // With ties: average_precision_score([0,1,0,1,1,0], [0.5,0.5,0.2,0.9,0.2,0.1]) = 0.7555555555555555
        let ap = average_precision(&[0.5, 0.5, 0.2, 0.9, 0.2, 0.1], &[0, 1, 0, 1, 1, 0]).unwrap();
        assert!((ap - 0.755_555_555_555_555_5).abs() < 1e-12, "{ap}");
        assert_eq!(average_precision(&[0.1, 0.2], &[0, 0]), None);
    }

    #[test]
    fn roc_auc_matches_scikit_learn() {
        // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]), Some(0.75));
        // Ties count one half: roc_auc_score([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) = 0.875
        assert_eq!(roc_auc(&[0.5, 0.5, 0.2, 0.9], &[0, 1, 0, 1]), Some(0.875));
        assert_eq!(roc_auc(&[0.1, 0.2], &[1, 1]), None);
    }

    #[test]
    fn roc_auc_is_the_share_of_positive_negative_pairs_ordered_right() {
        // Scores drawn from 7 values: many ties, each counting one half.
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let scores: Vec<f32> = (0..500).map(|_| (next() % 7) as f32).collect();
        let labels: Vec<u32> = scores.iter().map(|&s| u32::from(next() % 10 < 3 + s as u32)).collect();
        let (mut right, mut pairs) = (0.0, 0.0);
        for (i, &p) in scores.iter().enumerate().filter(|(i, _)| labels[*i] == 1) {
            for (_, &q) in scores.iter().enumerate().filter(|(j, _)| labels[*j] == 0 && *j != i) {
                pairs += 1.0;
                right += if p > q {
                    1.0
                } else if p == q {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let auc = roc_auc(&scores, &labels).unwrap();
        assert!((auc - right / pairs).abs() < 1e-12, "{auc} vs {}", right / pairs);
    }

    #[test]
    fn roc_auc_ranks_logits_that_would_saturate_as_probabilities() {
        // w = 1, b = 0 on x = 20..23: sigmoid rounds every logit to 1.0 in f32,
        // but the ranking is perfect.
        let mut model = crate::LinearModel::new(1, 1, true);
        model.params_mut().copy_from_slice(&[1.0, 0.0]);
        let data = Dataset::numeric(
            "t",
            gradus_data::Matrix::from_vec(4, 1, vec![20.0, 21.0, 22.0, 23.0]).unwrap(),
            Target::Classes { labels: vec![0, 0, 1, 1], classes: vec!["a".into(), "b".into()] },
            &["x".into()],
            "y",
        );
        let Metrics::Classification { roc_auc, .. } = evaluate(&model, Loss::BinaryCrossEntropy, &data).unwrap() else {
            panic!("classification")
        };
        assert_eq!(roc_auc, Some(1.0));
    }

    #[test]
    fn probabilities_sum_to_one() {
        let p = probabilities(&[0.0, 2.0], 1);
        assert_eq!(p[0..2], [0.5, 0.5]);
        assert!((p[3] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-7);
        let p = probabilities(&[1.0, 2.0, 3.0], 3);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
    }
}
