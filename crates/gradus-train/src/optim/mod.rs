//! Optimizers: one update rule each, as a plain loop over the flat parameter
//! and gradient slices. State (momentum, moments, step count) lives inside.
//!
//! [`OptimizerConfig`] is the serialisable, validated description; `build`
//! turns it into a ready [`Optimizer`] for a given number of parameters.
//! L-BFGS is different in kind — it needs to re-evaluate the objective during
//! its line search — so it lives in [`crate::lbfgs`] and the trainer drives it.

mod adagrad;
mod adam;
mod rmsprop;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// One first-order update rule.
pub trait Optimizer: Send {
    /// Updates `params` in place from `grad` with learning rate `lr`.
    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32);

    /// A step given that `grad` is zero outside `ranges` (a sparse model's
    /// touched rows, see [`crate::Model::sparse_grad`]): only the
    /// parameters in `ranges` move, at a cost proportional to them. Where
    /// the rule keeps no state of its own (SGD without momentum) or state
    /// that a zero gradient leaves as it is (Adagrad), this is exactly
    /// [`Self::step`]; otherwise it is the *lazy* variant (TensorFlow's
    /// LazyAdam): untouched parameters keep their state, which does not
    /// decay in the steps that skip them. The default is `step` itself.
    fn step_ranges(&mut self, params: &mut [f32], grad: &[f32], lr: f32, ranges: &[Range<usize>]) {
        let _ = ranges;
        self.step(params, grad, lr);
    }
}

/// Which optimizer to use and its settings (defaults are PyTorch's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Full-batch gradient descent: `p ← p − lr·g` on the whole training set.
    Gd,
    /// Mini-batch SGD with optional heavy-ball or Nesterov momentum.
    Sgd { momentum: f32, nesterov: bool },
    /// Adagrad (ε 1e-10).
    Adagrad { eps: f32 },
    /// RMSProp (α 0.99, ε 1e-8).
    Rmsprop { alpha: f32, eps: f32, momentum: f32 },
    /// Adam (β₁ 0.9, β₂ 0.999, ε 1e-8).
    Adam { beta1: f32, beta2: f32, eps: f32 },
    /// AdamW: Adam with decoupled weight decay (λ 0.01).
    Adamw { beta1: f32, beta2: f32, eps: f32, weight_decay: f32 },
    /// Full-batch L-BFGS with a strong-Wolfe line search; `lr` is not used.
    Lbfgs { history: usize },
}

impl OptimizerConfig {
    pub fn sgd(momentum: f32) -> Self {
        OptimizerConfig::Sgd { momentum, nesterov: false }
    }

    pub fn adagrad() -> Self {
        OptimizerConfig::Adagrad { eps: 1e-10 }
    }

    pub fn rmsprop() -> Self {
        OptimizerConfig::Rmsprop { alpha: 0.99, eps: 1e-8, momentum: 0.0 }
    }

    pub fn adam() -> Self {
        OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }

    pub fn adamw(weight_decay: f32) -> Self {
        OptimizerConfig::Adamw { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay }
    }

    pub fn lbfgs() -> Self {
        OptimizerConfig::Lbfgs { history: 10 }
    }

    /// The name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Gd => "gd",
            OptimizerConfig::Sgd { nesterov: true, .. } => "nesterov",
            OptimizerConfig::Sgd { momentum, .. } if *momentum > 0.0 => "momentum",
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adagrad { .. } => "adagrad",
            OptimizerConfig::Rmsprop { .. } => "rmsprop",
            OptimizerConfig::Adam { .. } => "adam",
            OptimizerConfig::Adamw { .. } => "adamw",
            OptimizerConfig::Lbfgs { .. } => "lbfgs",
        }
    }

    /// Whether this optimizer always uses the whole training set per step.
    pub fn is_full_batch(&self) -> bool {
        matches!(self, OptimizerConfig::Gd | OptimizerConfig::Lbfgs { .. })
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let unit = |name, v: f32| {
            if (0.0..1.0).contains(&v) { Ok(()) } else { Err(TrainError::invalid(name, v, "must be in [0, 1)")) }
        };
        let positive = |name, v: f32| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(TrainError::invalid(name, v, "must be a finite number > 0"))
            }
        };
        match *self {
            OptimizerConfig::Gd => Ok(()),
            OptimizerConfig::Sgd { momentum, nesterov } => {
                unit("momentum", momentum)?;
                if nesterov && momentum == 0.0 {
                    return Err(TrainError::invalid("momentum", 0, "Nesterov momentum needs momentum > 0"));
                }
                Ok(())
            }
            OptimizerConfig::Adagrad { eps } => positive("eps", eps),
            OptimizerConfig::Rmsprop { alpha, eps, momentum } => {
                unit("alpha", alpha)?;
                unit("momentum", momentum)?;
                positive("eps", eps)
            }
            OptimizerConfig::Adam { beta1, beta2, eps } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                positive("eps", eps)
            }
            OptimizerConfig::Adamw { beta1, beta2, eps, weight_decay } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                positive("eps", eps)?;
                if weight_decay >= 0.0 && weight_decay.is_finite() {
                    Ok(())
                } else {
                    Err(TrainError::invalid("weight decay", weight_decay, "must be a finite number >= 0"))
                }
            }
            OptimizerConfig::Lbfgs { history } => {
                if history == 0 {
                    Err(TrainError::invalid("lbfgs history", 0, "must be at least 1"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// A fresh first-order optimizer for `n_params` parameters; `None` for
    /// L-BFGS, which the trainer runs itself.
    pub fn build(&self, n_params: usize) -> Result<Option<Box<dyn Optimizer>>, TrainError> {
        self.validate()?;
        Ok(Some(match *self {
            OptimizerConfig::Gd => Box::new(Sgd::new(n_params, 0.0, false)),
            OptimizerConfig::Sgd { momentum, nesterov } => Box::new(Sgd::new(n_params, momentum, nesterov)),
            OptimizerConfig::Adagrad { eps } => Box::new(Adagrad::new(n_params, eps)),
            OptimizerConfig::Rmsprop { alpha, eps, momentum } => Box::new(RmsProp::new(n_params, alpha, eps, momentum)),
            OptimizerConfig::Adam { beta1, beta2, eps } => Box::new(Adam::new(n_params, beta1, beta2, eps)),
            OptimizerConfig::Adamw { beta1, beta2, eps, weight_decay } => {
                Box::new(Adam::with_weight_decay(n_params, beta1, beta2, eps, weight_decay))
            }
            OptimizerConfig::Lbfgs { .. } => return Ok(None),
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Three steps on one parameter from `p0`, the gradient given by `grad(p)`.
    pub fn first_three_steps(opt: &mut dyn Optimizer, p0: f32, lr: f32, mut grad: impl FnMut(f32) -> f32) -> [f32; 3] {
        let mut p = [p0];
        let mut out = [0.0; 3];
        for o in &mut out {
            let g = [grad(p[0])];
            opt.step(&mut p, &g, lr);
            *o = p[0];
        }
        out
    }

    pub fn assert_steps(got: [f32; 3], want: [f32; 3]) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 2e-6, "got {got:?}, hand-computed {want:?}");
        }
    }

    #[test]
    fn a_step_over_ranges_moves_only_them_exactly_or_lazily_as_documented() {
        let configs = [
            OptimizerConfig::sgd(0.0),
            OptimizerConfig::sgd(0.9),
            OptimizerConfig::adagrad(),
            OptimizerConfig::rmsprop(),
            OptimizerConfig::Rmsprop { alpha: 0.99, eps: 1e-8, momentum: 0.5 },
            OptimizerConfig::adam(),
            OptimizerConfig::adamw(0.1),
        ];
        // Parameters 0..8; steps touch 1..3 and 5..7, then 0..8 whole.
        let ranges = [1..3, 5..7];
        let grads = |s: usize| -> Vec<f32> { (0..8).map(|i| ((i * 7 + s * 3) % 5) as f32 - 2.0).collect() };
        for config in configs {
            let (mut dense, mut sparse) = (config.build(8).unwrap().unwrap(), config.build(8).unwrap().unwrap());
            let mut p_dense: Vec<f32> = (0..8).map(|i| i as f32).collect();
            let mut p_sparse = p_dense.clone();
            for s in 0..3 {
                let mut g = grads(s);
                for (i, g) in g.iter_mut().enumerate() {
                    if !ranges.iter().any(|r| r.contains(&i)) {
                        *g = 0.0;
                    }
                }
                dense.step(&mut p_dense, &g, 0.1);
                sparse.step_ranges(&mut p_sparse, &g, 0.1, &ranges);
                for i in [0, 3, 4, 7] {
                    assert_eq!(p_sparse[i], i as f32, "{config:?}: an untouched parameter moved");
                }
            }
            // Exact where a zero gradient leaves the state as it is.
            let exact = matches!(config, OptimizerConfig::Sgd { momentum: 0.0, .. } | OptimizerConfig::Adagrad { .. });
            if exact {
                assert_eq!(p_sparse, p_dense, "{config:?}");
            }
            // Over every parameter, the same arithmetic as a dense step.
            let (mut a, mut b) = (config.build(8).unwrap().unwrap(), config.build(8).unwrap().unwrap());
            let (mut pa, mut pb) = (p_dense.clone(), p_dense.clone());
            for s in 0..3 {
                a.step(&mut pa, &grads(s), 0.1);
                b.step_ranges(&mut pb, &grads(s), 0.1, &[0..4, 4..8]);
            }
            assert_eq!(pa, pb, "{config:?}");
        }
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        let bad = [
            OptimizerConfig::sgd(1.0),
            OptimizerConfig::Sgd { momentum: 0.0, nesterov: true },
            OptimizerConfig::Adagrad { eps: 0.0 },
            OptimizerConfig::Rmsprop { alpha: 1.5, eps: 1e-8, momentum: 0.0 },
            OptimizerConfig::Adam { beta1: 0.9, beta2: 1.0, eps: 1e-8 },
            OptimizerConfig::adamw(-1.0),
            OptimizerConfig::Lbfgs { history: 0 },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    #[test]
    fn configs_round_trip_through_json() {
        let config = OptimizerConfig::adamw(0.05);
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(text, r#"{"name":"adamw","beta1":0.9,"beta2":0.999,"eps":1e-8,"weight_decay":0.05}"#);
        assert_eq!(serde_json::from_str::<OptimizerConfig>(&text).unwrap(), config);
    }
}
