//! gradus: find good models. This facade re-exports the data layer
//! ([`data`]), the training engine ([`train`]), the tuning engine ([`tune`]),
//! the study storages ([`store`]) and the pictures of studies ([`report`]), and holds the pipelines that join
//! them: [`pipeline::TrainJob`] turns a dataset and a model choice into a
//! trained, saveable model with its metrics, and [`autotune::TuneJob`] runs
//! a study over training jobs to find the best one.

pub mod autotune;
pub mod compress;
pub mod pipeline;

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;

pub use gradus_data as data;
pub use gradus_report as report;
pub use gradus_store as store;
pub use gradus_train as train;
pub use gradus_tune as tune;
