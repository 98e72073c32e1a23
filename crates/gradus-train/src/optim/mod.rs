//! Optimizers: one update rule each, as a plain loop over the flat parameter
//! and gradient slices. State (momentum, moments, step count) lives inside.
//!
//! [`OptimizerConfig`] is the serialisable, validated description; `build`
//! turns it into a ready [`Optimizer`] for a given number of parameters.

mod adam;
mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// One update rule.
pub trait Optimizer: Send {
    /// Updates `params` in place from `grad` with learning rate `lr`.
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32);
}

/// Which optimizer to use and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Full-batch gradient descent: `p ← p − lr·g` on the whole training set.
    Gd,
    /// Mini-batch stochastic gradient descent with (heavy-ball) momentum.
    Sgd { momentum: f32 },
    /// Adam (Kingma & Ba, 2015).
    Adam { beta1: f32, beta2: f32, eps: f32 },
}

impl OptimizerConfig {
    /// Adam with PyTorch's defaults (β₁ 0.9, β₂ 0.999, ε 1e-8).
    pub fn adam() -> Self {
        OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }

    /// The name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Gd => "gd",
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
        }
    }

    /// Whether this optimizer always uses the whole training set per step.
    pub fn is_full_batch(&self) -> bool {
        matches!(self, OptimizerConfig::Gd)
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let unit = |name, v: f32| {
            if (0.0..1.0).contains(&v) { Ok(()) } else { Err(TrainError::invalid(name, v, "must be in [0, 1)")) }
        };
        match *self {
            OptimizerConfig::Gd => Ok(()),
            OptimizerConfig::Sgd { momentum } => unit("momentum", momentum),
            OptimizerConfig::Adam { beta1, beta2, eps } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if eps > 0.0 && eps.is_finite() {
                    Ok(())
                } else {
                    Err(TrainError::invalid("eps", eps, "must be a finite number > 0"))
                }
            }
        }
    }

    /// A fresh optimizer for `n_params` parameters.
    pub fn build(&self, n_params: usize) -> Result<Box<dyn Optimizer>, TrainError> {
        self.validate()?;
        Ok(match *self {
            OptimizerConfig::Gd => Box::new(Sgd::new(n_params, 0.0)),
            OptimizerConfig::Sgd { momentum } => Box::new(Sgd::new(n_params, momentum)),
            OptimizerConfig::Adam { beta1, beta2, eps } => Box::new(Adam::new(n_params, beta1, beta2, eps)),
        })
    }
}
