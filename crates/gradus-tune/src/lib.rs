//! The tuning engine: the outer search, over hyperparameters.
//!
//! A [`Study`] tunes any objective — a Rust closure, an external command, or a
//! caller using ask/tell — by asking a [`Sampler`] for parameters, letting a
//! [`Pruner`] stop unpromising trials from their intermediate values, and
//! recording everything in a [`Storage`]. The split is Optuna's (sampler,
//! pruner and storage are independent plug-ins joined by study and trial), with
//! a narrower storage interface.
//!
//! This crate knows nothing about training: an objective is just a function
//! from a [`Trial`] to a number.
//!
//! ```
//! use gradus_tune::{Direction, Study, samplers::RandomSampler};
//!
//! let study = Study::in_memory("quadratic", Direction::Minimize, Box::new(RandomSampler::new(7))).unwrap();
//! study
//!     .optimize(|trial| {
//!         let x = trial.suggest_float("x", -10.0, 10.0)?;
//!         Ok((x - 2.0).powi(2))
//!     }, 200, None, 1)
//!     .unwrap();
//! let best = study.best_trial().unwrap().unwrap();
//! assert!((best.params["x"].as_f64().unwrap() - 2.0).abs() < 0.5);
//! ```

mod distribution;
mod error;
pub mod pruners;
mod role;
pub mod samplers;
mod settings;
mod space;
mod storage;
mod study;
pub mod testfns;
mod trial;

pub use distribution::{Distribution, MAX_EXACT_INT};
pub use error::TuneError;
pub use pruners::Pruner;
pub use role::{Claimed, HeldRole, Holder};
pub use samplers::Sampler;
pub use settings::{PrunerSpec, SamplerSpec, StudySettings};
pub use space::SearchSpace;
pub use storage::{InMemoryStorage, Storage, StudyRecord, StudySummary, TrialsSince, conformance};
pub use study::{Schedule, Study, StudyView, TrialFailure, WORKER, check_heartbeat, ordered_lag};
pub use trial::{Direction, FAIL_REASON, FrozenTrial, Trial, TrialState, WORKER_LOST, now};
