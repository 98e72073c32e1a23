//! The sampler gradus uses when none is named.
//!
//! Evidence (`bench/sampler_quality.py`, BENCHMARKS.md): at a budget of 50
//! trials the Gaussian-process sampler has the best average rank of every
//! gradus and Optuna sampler over the 11-function suite, mixed
//! integer/categorical spaces included. Its cost grows with the cube of the
//! number of trials, so past `gp_trials` complete trials the study continues
//! with multivariate TPE, whose cost grows linearly.

use std::collections::BTreeMap;

use super::{GpSampler, Sampler, TpeSampler};
use crate::{Distribution, FrozenTrial, StudyView};

pub struct AutoSampler {
    gp: GpSampler,
    tpe: TpeSampler,
    /// Complete trials after which TPE takes over from the GP.
    pub gp_trials: usize,
}

impl AutoSampler {
    pub fn new(seed: u64) -> Self {
        Self { gp: GpSampler::new(seed), tpe: TpeSampler::new(seed), gp_trials: 100 }
    }

    fn current(&self, view: &StudyView) -> &dyn Sampler {
        if view.complete().count() < self.gp_trials { &self.gp } else { &self.tpe }
    }
}

impl Sampler for AutoSampler {
    fn sample_relative(&self, view: &StudyView, trial: &FrozenTrial) -> BTreeMap<String, f64> {
        self.current(view).sample_relative(view, trial)
    }

    fn sample_independent(
        &self,
        view: &StudyView,
        trial: &FrozenTrial,
        name: &str,
        distribution: &Distribution,
    ) -> f64 {
        self.current(view).sample_independent(view, trial, name, distribution)
    }
}
