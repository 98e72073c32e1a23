//! Scrambled Sobol quasi-random sampling (Owen-scrambled, after Burley,
//! "Practical Hash-based Owen Scrambling", JCGT 2020, via `sobol_burley`):
//! points that cover the space more evenly than random ones.

use super::Sampler;
use crate::{Distribution, FrozenTrial, SearchSpace, StudyView};

/// Trial n gets the n-th point of a scrambled Sobol sequence. With a declared
/// space, each parameter has its own Sobol dimension (its rank in the space);
/// otherwise (define-by-run) the k-th parameter a trial suggests takes
/// dimension k, which is stable as long as the objective suggests its
/// parameters in the same order.
#[derive(Clone, Debug)]
pub struct SobolSampler {
    seed: u32,
    names: Vec<String>,
}

/// The dimensions `sobol_burley` provides.
const DIMENSIONS: u64 = 256;

impl SobolSampler {
    pub fn new(seed: u64, space: Option<&SearchSpace>) -> Self {
        Self {
            seed: (seed ^ (seed >> 32)) as u32,
            names: space.map_or_else(Vec::new, |s| s.0.keys().cloned().collect()),
        }
    }

    fn dimension(&self, trial: &FrozenTrial, name: &str) -> u32 {
        let rank = self.names.iter().position(|n| n == name).unwrap_or(self.names.len() + trial.params.len());
        (rank as u64 % DIMENSIONS) as u32
    }
}

impl Sampler for SobolSampler {
    fn sample_independent(
        &self,
        _view: &StudyView,
        trial: &FrozenTrial,
        name: &str,
        distribution: &Distribution,
    ) -> f64 {
        let index = (trial.number % (1 << 32)) as u32;
        distribution.from_unit(sobol_burley::sample(index, self.dimension(trial, name), self.seed) as f64)
    }
}
