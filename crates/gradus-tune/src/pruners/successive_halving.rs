//! Asynchronous successive halving (ASHA; Li et al., "A System for Massively
//! Parallel Hyperparameter Tuning", MLSys 2020) and Hyperband (Li et al.,
//! "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
//! Optimization", JMLR 2018), after Optuna's pruners.
//!
//! Rung k sits at step `min_resource · η^(s + k)` (s the minimum early-stopping
//! rate). A trial arriving at a rung continues only if its value there is in
//! the best 1/η of every trial that has reached that rung so far; it is judged
//! once, on arrival — which is what makes the halving asynchronous.

use super::Pruner;
use crate::{Direction, FrozenTrial, StudyView, TuneError};

/// | setting | default | meaning |
/// |---|---|---|
/// | `min_resource` | 1 | the first rung's step, ≥ 1 |
/// | `reduction_factor` (η) | 4 | keep the best 1/η at each rung, ≥ 2 |
/// | `min_early_stopping_rate` (s) | 0 | skip the first s rungs |
/// | `n_startup_trials` | 0 | no pruning until this many trials are complete |
///
/// `n_startup_trials` is not Optuna's: a rung that three trials have reached
/// keeps only the best of them, so the first trials — often the sound
/// defaults a search starts from — are judged against almost nothing. A few
/// complete trials first give every rung a baseline that ran to the end.
#[derive(Clone, Debug)]
pub struct SuccessiveHalvingPruner {
    pub min_resource: u64,
    pub reduction_factor: u64,
    pub min_early_stopping_rate: u32,
    pub n_startup_trials: usize,
    /// Hyperband's bracket: only trials of the same bracket compete.
    bracket: Option<(usize, Vec<u64>)>,
}

impl SuccessiveHalvingPruner {
    pub fn new(min_resource: u64, reduction_factor: u64, min_early_stopping_rate: u32) -> Result<Self, TuneError> {
        if min_resource == 0 {
            return Err(TuneError::InvalidArgument { name: "min_resource", reason: "must be at least 1".into() });
        }
        if reduction_factor < 2 {
            return Err(TuneError::InvalidArgument { name: "reduction_factor", reason: "must be at least 2".into() });
        }
        Ok(Self { min_resource, reduction_factor, min_early_stopping_rate, n_startup_trials: 0, bracket: None })
    }

    /// The step of rung `k`, or None past u64.
    fn rung_step(&self, k: u32) -> Option<u64> {
        self.reduction_factor.checked_pow(self.min_early_stopping_rate + k)?.checked_mul(self.min_resource)
    }

    fn competes(&self, t: &FrozenTrial) -> bool {
        match &self.bracket {
            None => true,
            Some((bracket, budgets)) => bracket_of(t.number, budgets) == *bracket,
        }
    }
}

/// A trial's value at `step`: the last one it reported at or before it.
fn value_at(trial: &FrozenTrial, step: u64) -> Option<f64> {
    trial.intermediate.range(..=step).next_back().map(|(_, &v)| v)
}

impl Pruner for SuccessiveHalvingPruner {
    fn prune(&self, view: &StudyView, trial: &FrozenTrial) -> bool {
        let mut steps = trial.intermediate.keys().rev();
        let Some(&step) = steps.next() else { return false };
        let previous = steps.next().copied();
        // The highest rung reached, judged only on the report that reached it.
        let mut rung = None;
        for k in 0.. {
            match self.rung_step(k) {
                Some(r) if r <= step => rung = Some(r),
                _ => break,
            }
        }
        let Some(rung_step) = rung else { return false };
        if previous.is_some_and(|p| p >= rung_step) || view.complete().count() < self.n_startup_trials {
            return false;
        }
        let Some(value) = value_at(trial, rung_step).filter(|v| !v.is_nan()) else { return true };
        let mut competing: Vec<f64> = view
            .trials
            .iter()
            .filter(|t| t.number != trial.number && self.competes(t))
            .filter(|t| t.intermediate.keys().next_back().is_some_and(|&s| s >= rung_step))
            .filter_map(|t| value_at(t, rung_step))
            .filter(|v| !v.is_nan())
            .collect();
        competing.push(value);
        // Keep the best ⌊n/η⌋ (at least the single best).
        let keep = (competing.len() / self.reduction_factor as usize).max(1);
        match view.direction {
            Direction::Minimize => competing.sort_by(f64::total_cmp),
            Direction::Maximize => competing.sort_by(|a, b| b.total_cmp(a)),
        }
        let threshold = competing[keep - 1];
        match view.direction {
            Direction::Minimize => value > threshold,
            Direction::Maximize => value < threshold,
        }
    }
}

/// Hyperband: several successive-halving brackets with different minimum
/// early-stopping rates, trials spread over them in proportion to each
/// bracket's budget (by a hash of the trial number, so every process agrees).
#[derive(Clone, Debug)]
pub struct HyperbandPruner {
    brackets: Vec<SuccessiveHalvingPruner>,
}

impl HyperbandPruner {
    /// Brackets for resources from `min_resource` to `max_resource` (steps).
    pub fn new(min_resource: u64, max_resource: u64, reduction_factor: u64) -> Result<Self, TuneError> {
        if max_resource < min_resource {
            return Err(TuneError::InvalidArgument {
                name: "max_resource",
                reason: "must be at least min_resource".into(),
            });
        }
        SuccessiveHalvingPruner::new(min_resource, reduction_factor, 0)?;
        let ratio = max_resource as f64 / min_resource as f64;
        let n = (ratio.ln() / (reduction_factor as f64).ln()).floor() as usize + 1;
        // Optuna's allocation: bracket i gets n·η^(n−1−i)/(n−i) trial slots.
        let budgets: Vec<u64> = (0..n)
            .map(|i| ((n as f64) * (reduction_factor as f64).powi((n - 1 - i) as i32) / (n - i) as f64).ceil() as u64)
            .collect();
        let brackets = (0..n)
            .map(|i| SuccessiveHalvingPruner {
                bracket: Some((i, budgets.clone())),
                ..SuccessiveHalvingPruner::new(min_resource, reduction_factor, i as u32).expect("checked above")
            })
            .collect();
        Ok(Self { brackets })
    }

    pub fn n_brackets(&self) -> usize {
        self.brackets.len()
    }
}

fn bracket_of(number: u64, budgets: &[u64]) -> usize {
    let total: u64 = budgets.iter().sum();
    let mut slot = crate::samplers::stable_hash(&[&number.to_le_bytes()]) % total;
    for (i, &b) in budgets.iter().enumerate() {
        if slot < b {
            return i;
        }
        slot -= b;
    }
    budgets.len() - 1
}

impl Pruner for HyperbandPruner {
    fn prune(&self, view: &StudyView, trial: &FrozenTrial) -> bool {
        let Some((_, budgets)) = &self.brackets[0].bracket else { return false };
        self.brackets[bracket_of(trial.number, budgets)].prune(view, trial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrialState;
    use crate::pruners::testing::{stops_at, trial, view};

    #[test]
    fn asha_keeps_the_best_quarter_at_each_rung() {
        // η = 4, rungs at steps 1, 4, 16. Eight finished curves, flat per trial.
        let flat: Vec<Vec<f64>> = (1..=8).map(|v| vec![v as f64 * 0.1; 20]).collect();
        let curves: Vec<&[f64]> = flat.iter().map(Vec::as_slice).collect();
        let v = view(Direction::Minimize, &curves);
        let asha = SuccessiveHalvingPruner::new(1, 4, 0).unwrap();
        let cases: [(&str, Vec<f64>, Option<u64>); 4] = [
            // With itself, 9 values compete at rung 1: keep ⌊9/4⌋ = 2, the best 0.1 and 0.2.
            ("best so far is never stopped", vec![0.05; 20], None),
            ("second best survives", vec![0.15; 20], None),
            ("third best stops at the first rung", vec![0.25; 20], Some(1)),
            // Good at step 1, bad by step 4: judged again on reaching rung 4.
            ("a trial that falls behind stops at the next rung", [vec![0.05; 4], vec![0.9; 16]].concat(), Some(4)),
        ];
        for (what, curve, expected) in cases {
            assert_eq!(stops_at(&asha, &v, &curve), expected, "{what}");
        }
        // Rung arrivals are judged once: a trial already past a rung is left alone there.
        let running = trial(9, TrialState::Running, &[0.9, 0.9, 0.9]);
        assert!(!asha.prune(&v, &running), "step 2 reaches no new rung");
    }

    #[test]
    fn asha_with_few_trials_keeps_the_single_best_and_respects_min_early_stopping_rate() {
        let v = view(Direction::Maximize, &[&[0.5, 0.6, 0.7, 0.8, 0.8]]);
        let asha = SuccessiveHalvingPruner::new(1, 2, 0).unwrap();
        assert_eq!(stops_at(&asha, &v, &[0.5, 0.5, 0.5, 0.5, 0.5]), Some(1), "worse than the only other one");
        assert_eq!(stops_at(&asha, &v, &[0.5, 0.7, 0.8, 0.9, 0.9]), None);
        let late = SuccessiveHalvingPruner::new(1, 2, 2).unwrap();
        assert_eq!(stops_at(&late, &v, &[0.5, 0.5, 0.5, 0.5, 0.5]), Some(4), "the first rung is at 1·2² = 4");
    }

    #[test]
    fn asha_waits_for_its_startup_trials() {
        // Two complete trials, both better than the newcomer at rung 1.
        let v = view(Direction::Minimize, &[&[0.1, 0.1, 0.1], &[0.2, 0.2, 0.2]]);
        let mut asha = SuccessiveHalvingPruner::new(1, 2, 0).unwrap();
        assert_eq!(stops_at(&asha, &v, &[0.9, 0.9, 0.9]), Some(1), "Optuna's default: no startup");
        asha.n_startup_trials = 3;
        assert_eq!(stops_at(&asha, &v, &[0.9, 0.9, 0.9]), None, "two complete trials of three");
        asha.n_startup_trials = 2;
        assert_eq!(stops_at(&asha, &v, &[0.9, 0.9, 0.9]), Some(1));
    }

    #[test]
    fn hyperband_judges_each_trial_at_the_first_rung_of_its_bracket() {
        // Forty finished trials, all good (0.1 throughout 30 steps); a bad
        // trial is stopped at the first rung of its bracket: step 3^b.
        let good = vec![0.1; 30];
        let v = view(Direction::Minimize, &vec![good.as_slice(); 40]);
        let hb = HyperbandPruner::new(1, 27, 3).unwrap();
        let Some((_, budgets)) = &hb.brackets[0].bracket else { panic!() };
        let bad = vec![0.9; 30];
        let mut seen = [false; 4];
        for number in 40..200 {
            let bracket = bracket_of(number, budgets);
            let first_stop = (1..=bad.len()).find(|&n| hb.prune(&v, &trial(number, TrialState::Running, &bad[..n])));
            // Only trials of the same bracket compete, so whether the 40 good
            // ones share it decides; when none does, the bad trial is alone and kept.
            let rivals = (0..40).filter(|&n| bracket_of(n, budgets) == bracket).count();
            let expected = (rivals > 0).then(|| 3usize.pow(bracket as u32) + 1);
            assert_eq!(first_stop, expected, "trial {number} in bracket {bracket}");
            seen[bracket] = true;
        }
        assert!(seen.iter().all(|&s| s), "every bracket was exercised");
    }

    #[test]
    fn hyperband_spreads_trials_over_brackets_by_budget() {
        let hb = HyperbandPruner::new(1, 27, 3).unwrap();
        assert_eq!(hb.n_brackets(), 4);
        let Some((_, budgets)) = &hb.brackets[0].bracket else { panic!() };
        // n = 4, η = 3: ⌈4·27/4⌉, ⌈4·9/3⌉, ⌈4·3/2⌉, ⌈4·1/1⌉
        assert_eq!(budgets, &[27, 12, 6, 4]);
        let mut counts = [0; 4];
        for n in 0..4900 {
            counts[bracket_of(n, budgets)] += 1;
        }
        for (c, b) in counts.iter().zip(budgets) {
            let share = *c as f64 / 4900.0;
            assert!((share - *b as f64 / 49.0).abs() < 0.03, "{counts:?}");
        }
        assert!(HyperbandPruner::new(10, 1, 3).is_err());
        assert!(SuccessiveHalvingPruner::new(1, 1, 0).is_err());
    }
}
