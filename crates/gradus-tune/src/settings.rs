//! A study's recipe — sampler, pruner and declared space — as data, stored
//! with the study so that any process reopening it builds the same plug-ins.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pruners::{HyperbandPruner, MedianPruner, NopPruner, PercentilePruner, SuccessiveHalvingPruner};
use crate::samplers::{AutoSampler, CmaEsSampler, GpSampler, GridSampler, RandomSampler, SobolSampler, TpeSampler};
use crate::{Direction, Pruner, Sampler, SearchSpace, Storage, Study, TuneError};

/// Which sampler, with its seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum SamplerSpec {
    Random {
        seed: u64,
    },
    /// Needs a declared space whose parameters are all finite.
    Grid {
        seed: u64,
    },
    Sobol {
        seed: u64,
    },
    /// Multivariate TPE with the constant liar.
    Tpe {
        seed: u64,
    },
    /// CMA-ES with IPOP restarts (continuous parameters).
    Cmaes {
        seed: u64,
    },
    /// Gaussian-process Bayesian optimisation with log EI.
    Gp {
        seed: u64,
    },
    /// The default: GP for the first 100 trials, then TPE.
    Auto {
        seed: u64,
    },
}

/// Which pruner, with its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum PrunerSpec {
    None,
    /// Stops a trial whose best value is worse than the median of the
    /// complete trials' at the same step, from step `n_warmup_steps` on.
    Median {
        #[serde(default)]
        n_warmup_steps: u64,
    },
    Percentile {
        percentile: f64,
        #[serde(default)]
        n_warmup_steps: u64,
    },
    /// Asynchronous successive halving.
    Asha {
        min_resource: u64,
        reduction_factor: u64,
        /// No pruning until this many trials are complete.
        #[serde(default)]
        n_startup_trials: usize,
    },
    Hyperband {
        min_resource: u64,
        max_resource: u64,
        reduction_factor: u64,
    },
}

/// Everything needed to rebuild a study's sampler and pruner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudySettings {
    pub sampler: SamplerSpec,
    pub pruner: PrunerSpec,
    /// The declared search space, if any (`ask` and `run` suggest from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<SearchSpace>,
    /// What the trials' values measure, as the caller names it (`gradus
    /// tune`: a hash of the data, the target and the task), so that a
    /// process measuring something else is not added to the study.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
}

impl StudySettings {
    pub fn sampler(&self) -> Result<Box<dyn Sampler>, TuneError> {
        Ok(match self.sampler {
            SamplerSpec::Random { seed } => Box::new(RandomSampler::new(seed)),
            SamplerSpec::Sobol { seed } => Box::new(SobolSampler::new(seed, self.space.as_ref())),
            SamplerSpec::Tpe { seed } => Box::new(TpeSampler::new(seed)),
            SamplerSpec::Cmaes { seed } => Box::new(CmaEsSampler::new(seed)),
            SamplerSpec::Gp { seed } => Box::new(GpSampler::new(seed)),
            SamplerSpec::Auto { seed } => Box::new(AutoSampler::new(seed)),
            SamplerSpec::Grid { seed } => {
                let space = self.space.clone().ok_or_else(|| TuneError::InvalidArgument {
                    name: "sampler",
                    reason: "grid search needs a declared space (--space)".into(),
                })?;
                Box::new(GridSampler::new(space, seed)?)
            }
        })
    }

    pub fn pruner(&self) -> Result<Box<dyn Pruner>, TuneError> {
        Ok(match self.pruner {
            PrunerSpec::None => Box::new(NopPruner),
            PrunerSpec::Median { n_warmup_steps } => {
                Box::new(PercentilePruner { n_warmup_steps, ..MedianPruner::new() })
            }
            PrunerSpec::Percentile { percentile, n_warmup_steps } => {
                Box::new(PercentilePruner { n_warmup_steps, ..PercentilePruner::new(percentile)? })
            }
            PrunerSpec::Asha { min_resource, reduction_factor, n_startup_trials } => {
                let mut asha = SuccessiveHalvingPruner::new(min_resource, reduction_factor, 0)?;
                asha.n_startup_trials = n_startup_trials;
                Box::new(asha)
            }
            PrunerSpec::Hyperband { min_resource, max_resource, reduction_factor } => {
                Box::new(HyperbandPruner::new(min_resource, max_resource, reduction_factor)?)
            }
        })
    }
}

impl Study {
    /// Creates a study whose sampler and pruner are built from `settings`,
    /// which are stored with it.
    pub fn create_with_settings(
        storage: Arc<dyn Storage>,
        name: &str,
        direction: Direction,
        settings: &StudySettings,
    ) -> Result<Self, TuneError> {
        let (sampler, pruner) = (settings.sampler()?, settings.pruner()?);
        let stored = serde_json::to_value(settings).expect("settings serialise");
        Study::create(storage, name, direction, sampler, pruner, &stored)
    }

    /// Opens a study created with [`Study::create_with_settings`].
    pub fn open(storage: Arc<dyn Storage>, name: &str) -> Result<(Self, StudySettings), TuneError> {
        let record = storage.load_study(name)?;
        let settings = Self::settings_of(&record.settings, name)?;
        let study = Study::load(storage, name, settings.sampler()?, settings.pruner()?)?;
        Ok((study, settings))
    }

    fn settings_of(value: &Value, name: &str) -> Result<StudySettings, TuneError> {
        serde_json::from_value(value.clone())
            .map_err(|e| TuneError::Storage(format!("study '{name}' has unreadable settings: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStorage;

    #[test]
    fn pruner_settings_stored_before_warm_ups_and_startups_still_load() {
        // Studies created before these fields existed stored only the names.
        let median: PrunerSpec = serde_json::from_str(r#"{"name": "median"}"#).unwrap();
        assert_eq!(median, PrunerSpec::Median { n_warmup_steps: 0 });
        let asha: PrunerSpec =
            serde_json::from_str(r#"{"name": "asha", "min_resource": 1, "reduction_factor": 3}"#).unwrap();
        assert_eq!(asha, PrunerSpec::Asha { min_resource: 1, reduction_factor: 3, n_startup_trials: 0 });
        let stored = serde_json::to_value(PrunerSpec::Median { n_warmup_steps: 10 }).unwrap();
        assert_eq!(stored, serde_json::json!({"name": "median", "n_warmup_steps": 10}));
    }

    #[test]
    fn a_study_reopens_with_the_sampler_and_pruner_it_was_created_with() {
        let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
        let space = SearchSpace::parse(r#"{"a": {"type": "int", "low": 0, "high": 2}}"#, "s").unwrap();
        let settings = StudySettings {
            sampler: SamplerSpec::Grid { seed: 1 },
            pruner: PrunerSpec::Asha { min_resource: 1, reduction_factor: 3, n_startup_trials: 0 },
            space: Some(space),
            objective: None,
        };
        Study::create_with_settings(storage.clone(), "g", Direction::Maximize, &settings).unwrap();
        let (study, reopened) = Study::open(storage, "g").unwrap();
        assert_eq!(reopened, settings);
        study.optimize(|t| Ok(t.suggest_int("a", 0, 2)? as f64), 100, None, 1).unwrap();
        assert_eq!(study.trials().unwrap().len(), 3, "the grid, enqueued once at creation, is exhausted");
    }

    #[test]
    fn grid_without_a_space_is_an_error() {
        let settings = StudySettings {
            sampler: SamplerSpec::Grid { seed: 0 },
            pruner: PrunerSpec::None,
            space: None,
            objective: None,
        };
        let err = settings.sampler().err().unwrap().to_string();
        assert!(err.contains("grid search needs a declared space"), "{err}");
    }
}
