//! Pruners: stopping unpromising trials early from their intermediate values.
//!
//! A pruner sees the study through a read-only [`StudyView`] and the trial
//! with every value it reported so far; `Trial::should_prune` asks it after a
//! report. A pruned trial keeps its intermediate values.

mod percentile;
mod successive_halving;

pub use percentile::{MedianPruner, PercentilePruner};
pub use successive_halving::{HyperbandPruner, SuccessiveHalvingPruner};

use crate::{FrozenTrial, StudyView};

pub trait Pruner: Send + Sync {
    /// Whether `trial` should stop now.
    fn prune(&self, view: &StudyView, trial: &FrozenTrial) -> bool;
}

/// Never prunes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NopPruner;

impl Pruner for NopPruner {
    fn prune(&self, _: &StudyView, _: &FrozenTrial) -> bool {
        false
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Hand-made learning curves for table-driven pruner tests.
    use std::sync::Arc;

    use crate::{Direction, FrozenTrial, StudyView, TrialState};

    pub fn trial(number: u64, state: TrialState, curve: &[f64]) -> FrozenTrial {
        FrozenTrial {
            intermediate: curve.iter().enumerate().map(|(s, &v)| (s as u64, v)).collect(),
            ..FrozenTrial::new(number, number, state)
        }
    }

    /// Finished trials with these curves (complete, valued at their last point).
    pub fn view(direction: Direction, curves: &[&[f64]]) -> StudyView {
        let trials = curves
            .iter()
            .enumerate()
            .map(|(i, c)| trial(i as u64, TrialState::Complete(*c.last().unwrap()), c))
            .collect();
        StudyView { direction, trials: Arc::new(trials) }
    }

    /// The first step at which `pruner` stops a new trial with `curve`
    /// (reporting one step at a time), or None.
    pub fn stops_at(pruner: &dyn super::Pruner, view: &StudyView, curve: &[f64]) -> Option<u64> {
        let number = view.trials.len() as u64;
        (1..=curve.len())
            .find(|&n| pruner.prune(view, &trial(number, TrialState::Running, &curve[..n])))
            .map(|n| n as u64 - 1)
    }
}
