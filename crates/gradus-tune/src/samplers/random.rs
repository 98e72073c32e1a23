//! Uniform random sampling (in log space for log distributions).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Sampler, stable_hash};
use crate::{Distribution, FrozenTrial, StudyView};

/// Independent uniform draws, seeded per (seed, trial number, parameter):
/// the same seed gives the same parameters whatever the thread interleaving.
#[derive(Clone, Debug)]
pub struct RandomSampler {
    seed: u64,
}

impl RandomSampler {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }
}

impl Sampler for RandomSampler {
    fn sample_independent(
        &self,
        _view: &StudyView,
        trial: &FrozenTrial,
        name: &str,
        distribution: &Distribution,
    ) -> f64 {
        let key = stable_hash(&[&self.seed.to_le_bytes(), &trial.number.to_le_bytes(), name.as_bytes()]);
        distribution.from_unit(ChaCha8Rng::seed_from_u64(key).random::<f64>())
    }
}
