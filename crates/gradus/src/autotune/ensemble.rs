//! Ensemble selection: which of the best trials a tuned model averages,
//! and with what weights (Caruana et al. 2004's greedy selection with
//! replacement, as auto-sklearn does it), over families as well as scores.

use gradus_data::Target;
use gradus_tune::{Direction, FrozenTrial};
use serde_json::Value;

/// What ensemble selection chose, and the validation values it compared
/// (see [`super::TuneJob::averaged_value`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// How often each candidate was picked: its weight, out of their sum.
    pub counts: Vec<usize>,
    /// The weighted mean's validation value.
    pub value: f64,
    /// The best single candidate's, which `value` is never worse than.
    pub single_value: f64,
}

/// The rounds of [`select_ensemble`]: weights are multiples of 1/25.
pub const ENSEMBLE_ROUNDS: usize = 25;

/// Greedy ensemble selection with replacement (Caruana, Niculescu-Mizil,
/// Crew and Ksikes 2004, "Ensemble Selection from Libraries of Models"):
/// for `rounds` rounds, add to the ensemble (the mean of its picks) the
/// candidate that lowers `loss` most, picks repeating; return how often
/// each candidate was picked in the best ensemble seen along the way. The
/// first round picks the best single candidate, so the result is never
/// worse than it; a candidate that does not help is never picked. Ties go
/// to the earlier candidate (the better trial).
pub fn select_ensemble(candidates: &[&[f64]], loss: &dyn Fn(&[f64]) -> f64, rounds: usize) -> Vec<usize> {
    let width = candidates.first().map_or(0, |c| c.len());
    let mut sum = vec![0.0f64; width];
    let mut counts = vec![0usize; candidates.len()];
    let (mut best, mut best_loss) = (counts.clone(), f64::INFINITY);
    let mut mean = vec![0.0f64; width];
    for round in 1..=rounds {
        let mut pick: Option<(usize, f64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            for ((m, s), v) in mean.iter_mut().zip(&sum).zip(c.iter()) {
                *m = (s + v) / round as f64;
            }
            let l = loss(&mean);
            if l.is_finite() && pick.is_none_or(|(_, b)| l < b) {
                pick = Some((i, l));
            }
        }
        let Some((i, l)) = pick else { break };
        sum.iter_mut().zip(candidates[i].iter()).for_each(|(s, v)| *s += v);
        counts[i] += 1;
        // Rounding alone (the same members in another count) is no gain.
        if l < best_loss - 1e-12 * best_loss.abs().max(1e-300) || best_loss.is_infinite() {
            (best, best_loss) = (counts.clone(), l);
        }
    }
    best
}

/// The loss of averaged values against `target`: the log-loss of class
/// probabilities (floored at 1e-15), or the mean squared error of predictions.
pub fn averaged_loss(values: &[f64], target: &Target) -> f64 {
    match target {
        Target::Classes { labels, classes } => {
            let k = classes.len();
            labels.iter().enumerate().map(|(i, &l)| -values[i * k + l as usize].max(1e-15).ln()).sum::<f64>()
                / labels.len() as f64
        }
        Target::Real(y) => {
            y.iter().zip(values).map(|(&t, &v)| (v - f64::from(t)).powi(2)).sum::<f64>() / y.len() as f64
        }
    }
}

/// The candidates for the final ensemble, best first: the `k` best complete
/// trials, and of each model family the search used, its best `k` / 2 that
/// are not among them — ensemble selection gains most from models that err
/// differently, and a family a little behind on its own may still help.
pub fn ensemble_candidates(trials: &[FrozenTrial], k: usize, direction: Direction) -> Vec<&FrozenTrial> {
    let mut chosen = best_trials(trials, k, direction);
    if k < 2 {
        return chosen;
    }
    fn family(t: &FrozenTrial) -> Option<&str> {
        t.params.get("model").and_then(Value::as_str)
    }
    let families: std::collections::BTreeSet<&str> = trials.iter().filter_map(family).collect();
    for name in families {
        for t in best_distinct(trials.iter().filter(|t| family(t) == Some(name)), k / 2, direction) {
            if chosen.iter().all(|c| c.number != t.number && c.params != t.params) {
                chosen.push(t);
            }
        }
    }
    chosen.sort_by(|a, b| best_first(a, b, direction));
    chosen
}

/// The `k` best complete trials (`direction`-wise), best first, skipping
/// any whose parameters repeat a better one's.
pub fn best_trials(trials: &[FrozenTrial], k: usize, direction: Direction) -> Vec<&FrozenTrial> {
    best_distinct(trials.iter(), k, direction)
}

/// Orders trials best first (`direction`-wise by value, then by number).
fn best_first(a: &FrozenTrial, b: &FrozenTrial, direction: Direction) -> std::cmp::Ordering {
    let (a_value, b_value) = (a.value().unwrap_or(f64::NAN), b.value().unwrap_or(f64::NAN));
    let by_value = match direction {
        Direction::Minimize => a_value.total_cmp(&b_value),
        Direction::Maximize => b_value.total_cmp(&a_value),
    };
    by_value.then(a.number.cmp(&b.number))
}

/// [`best_trials`] of any selection of a study's trials.
fn best_distinct<'a>(
    trials: impl Iterator<Item = &'a FrozenTrial>,
    k: usize,
    direction: Direction,
) -> Vec<&'a FrozenTrial> {
    let mut complete: Vec<&FrozenTrial> = trials.filter(|t| t.value().is_some_and(f64::is_finite)).collect();
    complete.sort_by(|a, b| best_first(a, b, direction));
    let mut chosen: Vec<&FrozenTrial> = Vec::with_capacity(k.min(complete.len()));
    for t in complete {
        if chosen.len() == k {
            break;
        }
        if chosen.iter().all(|c| c.params != t.params) {
            chosen.push(t);
        }
    }
    chosen
}
