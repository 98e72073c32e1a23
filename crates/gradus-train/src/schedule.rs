//! Learning-rate schedules, applied once per epoch like PyTorch's
//! `lr_scheduler`s: constant, step decay, exponential decay, cosine annealing
//! (Loshchilov & Hutter 2017, without restarts) after a linear warm-up, and
//! reduce-on-plateau.

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// How the learning rate changes from epoch to epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Schedule {
    #[default]
    Constant,
    /// `lr · γ^⌊epoch / step_size⌋` (`StepLR`).
    Step { step_size: usize, gamma: f32 },
    /// `lr · γ^epoch` (`ExponentialLR`).
    Exponential { gamma: f32 },
    /// A linear ramp from `lr/warmup` to `lr` over the first `warmup` epochs,
    /// then a half cosine from `lr` down to `min_lr` at the last epoch.
    Cosine { warmup: usize, min_lr: f32 },
    /// Multiply by `factor` when the monitored loss has not improved by a
    /// relative `threshold` for more than `patience` epochs (`ReduceLROnPlateau`).
    ReduceOnPlateau { factor: f32, patience: usize, threshold: f32, min_lr: f32 },
}

impl Schedule {
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Step { .. } => "step",
            Schedule::Exponential { .. } => "exponential",
            Schedule::Cosine { .. } => "cosine",
            Schedule::ReduceOnPlateau { .. } => "plateau",
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let decay = |v: f32| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(TrainError::invalid("schedule gamma", v, "must be in (0, 1]"))
            }
        };
        let min_lr = |v: f32| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(TrainError::invalid("min lr", v, "must be a finite number >= 0"))
            }
        };
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma } => {
                if step_size == 0 {
                    return Err(TrainError::invalid("schedule step size", 0, "must be at least 1"));
                }
                decay(gamma)
            }
            Schedule::Exponential { gamma } => decay(gamma),
            Schedule::Cosine { min_lr: m, .. } => min_lr(m),
            Schedule::ReduceOnPlateau { factor, threshold, min_lr: m, .. } => {
                if !(factor > 0.0 && factor < 1.0) {
                    return Err(TrainError::invalid("plateau factor", factor, "must be in (0, 1)"));
                }
                if !(threshold >= 0.0 && threshold.is_finite()) {
                    return Err(TrainError::invalid("plateau threshold", threshold, "must be a finite number >= 0"));
                }
                min_lr(m)
            }
        }
    }
}

/// A schedule in motion: the learning rate of each epoch.
#[derive(Clone, Debug)]
pub struct Scheduler {
    schedule: Schedule,
    base_lr: f32,
    epochs: usize,
    /// Reduce-on-plateau state: current rate, best loss, epochs without improvement.
    plateau_lr: f32,
    best: f64,
    bad_epochs: usize,
}

impl Scheduler {
    pub fn new(schedule: Schedule, base_lr: f32, epochs: usize) -> Self {
        Self { schedule, base_lr, epochs, plateau_lr: base_lr, best: f64::INFINITY, bad_epochs: 0 }
    }

    /// The learning rate for `epoch` (0-based).
    pub fn lr(&self, epoch: usize) -> f32 {
        let lr = self.base_lr;
        match self.schedule {
            Schedule::Constant => lr,
            Schedule::Step { step_size, gamma } => lr * gamma.powi((epoch / step_size) as i32),
            Schedule::Exponential { gamma } => lr * gamma.powi(epoch as i32),
            Schedule::Cosine { warmup, min_lr } => {
                if epoch < warmup {
                    return lr * (epoch + 1) as f32 / warmup as f32;
                }
                let span = self.epochs.saturating_sub(warmup + 1).max(1) as f32;
                let progress = ((epoch - warmup) as f32 / span).min(1.0);
                min_lr + (lr - min_lr) * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos())
            }
            Schedule::ReduceOnPlateau { .. } => self.plateau_lr,
        }
    }

    /// Tells the scheduler the monitored loss at the end of an epoch.
    pub fn observe(&mut self, loss: f64) {
        if let Schedule::ReduceOnPlateau { factor, patience, threshold, min_lr } = self.schedule {
            if loss < self.best * (1.0 - threshold as f64) {
                self.best = loss;
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
                if self.bad_epochs > patience {
                    self.plateau_lr = (self.plateau_lr * factor).max(min_lr);
                    self.bad_epochs = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(schedule: Schedule, epochs: usize) -> Vec<f32> {
        let s = Scheduler::new(schedule, 1.0, epochs);
        (0..epochs).map(|e| s.lr(e)).collect()
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn fixed_schedules_give_the_documented_rates() {
        assert_close(&rates(Schedule::Constant, 3), &[1.0, 1.0, 1.0]);
        assert_close(&rates(Schedule::Step { step_size: 2, gamma: 0.5 }, 5), &[1.0, 1.0, 0.5, 0.5, 0.25]);
        assert_close(&rates(Schedule::Exponential { gamma: 0.9 }, 3), &[1.0, 0.9, 0.81]);
        // Warm-up 2 of 7 epochs: 0.5, 1; then cosine over epochs 2..6 (span 4)
        // from 1 to 0: (1 + cos(πk/4))/2 = 1, 0.8535534, 0.5, 0.1464466, 0.
        assert_close(
            &rates(Schedule::Cosine { warmup: 2, min_lr: 0.0 }, 7),
            &[0.5, 1.0, 1.0, 0.853_553_4, 0.5, 0.146_446_6, 0.0],
        );
    }

    #[test]
    fn plateau_cuts_the_rate_after_patience_epochs_without_improvement() {
        let mut s = Scheduler::new(
            Schedule::ReduceOnPlateau { factor: 0.5, patience: 1, threshold: 0.0, min_lr: 0.2 },
            1.0,
            10,
        );
        let mut seen = Vec::new();
        for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95] {
            s.observe(loss);
            seen.push(s.lr(0));
        }
        // Two epochs without improvement (more than patience 1) halve the rate,
        // which then stops at min_lr.
        assert_close(&seen, &[1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2]);
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(Schedule::Step { step_size: 0, gamma: 0.5 }.validate().is_err());
        assert!(Schedule::Exponential { gamma: 1.5 }.validate().is_err());
        assert!(
            Schedule::ReduceOnPlateau { factor: 1.0, patience: 1, threshold: 0.0, min_lr: 0.0 }.validate().is_err()
        );
    }
}
