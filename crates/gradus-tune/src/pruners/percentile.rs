//! The percentile and median pruners (Optuna's): stop a trial whose best
//! value so far is worse than a percentile of the other complete trials'
//! values at the same step.

use super::Pruner;
use crate::{Direction, FrozenTrial, StudyView, TuneError};

/// Prunes at step s when the trial's best value so far is worse than the
/// `percentile`-th best of the complete trials' values at s.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `percentile` | 50 | in (0, 100); 25 keeps the top quarter |
/// | `n_startup_trials` | 5 | no pruning until this many trials are complete |
/// | `n_warmup_steps` | 0 | no pruning before this step |
/// | `interval_steps` | 1 | check every this many steps after the warm-up |
/// | `n_min_trials` | 1 | trials with a value at s needed to compare |
#[derive(Clone, Debug)]
pub struct PercentilePruner {
    pub percentile: f64,
    pub n_startup_trials: usize,
    pub n_warmup_steps: u64,
    pub interval_steps: u64,
    pub n_min_trials: usize,
}

impl PercentilePruner {
    pub fn new(percentile: f64) -> Result<Self, TuneError> {
        if !(percentile > 0.0 && percentile < 100.0) {
            return Err(TuneError::InvalidArgument {
                name: "percentile",
                reason: format!("{percentile} is not in (0, 100)"),
            });
        }
        Ok(Self { percentile, n_startup_trials: 5, n_warmup_steps: 0, interval_steps: 1, n_min_trials: 1 })
    }
}

/// The percentile pruner at 50.
pub struct MedianPruner;

impl MedianPruner {
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> PercentilePruner {
        PercentilePruner::new(50.0).expect("50 is a valid percentile")
    }
}

/// The `q`-th percentile of `values` by linear interpolation (numpy's default).
fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = q / 100.0 * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    values[lo] + (values[hi] - values[lo]) * (rank - lo as f64)
}

impl Pruner for PercentilePruner {
    fn prune(&self, view: &StudyView, trial: &FrozenTrial) -> bool {
        let Some(&step) = trial.intermediate.keys().next_back() else { return false };
        if view.complete().count() < self.n_startup_trials || step < self.n_warmup_steps {
            return false;
        }
        if !(step - self.n_warmup_steps).is_multiple_of(self.interval_steps.max(1)) {
            return false;
        }
        let Some(best) = trial.best_intermediate(view.direction) else { return true };
        let mut others: Vec<f64> = view
            .complete()
            .filter(|t| t.number != trial.number)
            .filter_map(|t| t.intermediate.get(&step).copied())
            .filter(|v| !v.is_nan())
            .collect();
        if others.len() < self.n_min_trials.max(1) {
            return false;
        }
        match view.direction {
            Direction::Minimize => best > percentile(&mut others, self.percentile),
            Direction::Maximize => best < percentile(&mut others, 100.0 - self.percentile),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pruners::testing::{stops_at, view};

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 50) = 2.5, ([1, 2, 3, 4], 25) = 1.75
        assert_eq!(percentile(&mut [4.0, 1.0, 3.0, 2.0], 50.0), 2.5);
        assert_eq!(percentile(&mut [4.0, 1.0, 3.0, 2.0], 25.0), 1.75);
    }

    #[test]
    fn median_pruner_stops_trials_worse_than_the_median() {
        // Five finished loss curves; the median at each step is the middle one.
        let finished: [&[f64]; 5] = [
            &[1.0, 0.8, 0.6, 0.5],
            &[1.0, 0.7, 0.5, 0.4],
            &[1.0, 0.6, 0.4, 0.3],
            &[1.0, 0.9, 0.8, 0.7],
            &[1.0, 0.5, 0.3, 0.2],
        ];
        let v = view(Direction::Minimize, &finished);
        let median = MedianPruner::new();
        let cases: [(&str, &[f64], Option<u64>); 5] = [
            ("at the median is kept", &[1.0, 0.7, 0.5, 0.4], None),
            ("better than all is kept", &[0.9, 0.4, 0.2, 0.1], None),
            ("worse from step 1 stops at 1", &[1.0, 0.75, 0.5, 0.4], Some(1)),
            ("worse only at step 2 stops at 2", &[1.0, 0.7, 0.55, 0.5], Some(2)),
            ("a NaN-only trial is pruned", &[f64::NAN], Some(0)),
        ];
        for (what, curve, expected) in cases {
            assert_eq!(stops_at(&median, &v, curve), expected, "{what}");
        }
        // The best value so far counts, not the latest: after 0.5 at step 1,
        // a 0.9 at step 2 still compares as 0.5, level with the median, and is kept.
        assert_eq!(stops_at(&median, &v, &[1.0, 0.5, 0.9]), None, "the best so far is compared");
    }

    #[test]
    fn warm_up_startup_interval_and_direction_are_respected() {
        let finished: [&[f64]; 5] = [&[0.5, 0.5, 0.5, 0.5]; 5];
        let worse: &[f64] = &[0.9, 0.9, 0.9, 0.9];
        let table: [(&str, PercentilePruner, Option<u64>); 4] = [
            ("plain", MedianPruner::new(), Some(0)),
            ("warm-up 2", PercentilePruner { n_warmup_steps: 2, ..MedianPruner::new() }, Some(2)),
            (
                "interval 3 after warm-up 1",
                PercentilePruner { n_warmup_steps: 1, interval_steps: 3, ..MedianPruner::new() },
                Some(1),
            ),
            ("needs 6 finished trials", PercentilePruner { n_startup_trials: 6, ..MedianPruner::new() }, None),
        ];
        for (what, pruner, expected) in table {
            assert_eq!(stops_at(&pruner, &view(Direction::Minimize, &finished), worse), expected, "{what}");
        }
        // Maximising: low accuracy is the bad side.
        let v = view(Direction::Maximize, &[&[0.6, 0.8], &[0.7, 0.9], &[0.5, 0.85], &[0.6, 0.8], &[0.6, 0.8]]);
        assert_eq!(stops_at(&MedianPruner::new(), &v, &[0.7, 0.7]), Some(1));
        assert_eq!(stops_at(&MedianPruner::new(), &v, &[0.7, 0.95]), None);
        assert!(PercentilePruner::new(100.0).is_err());
    }
}
