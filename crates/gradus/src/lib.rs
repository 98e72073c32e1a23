//! gradus: find good models. This facade re-exports the data layer
//! ([`data`]) and the training engine ([`train`]), and holds the pipelines
//! that join them: [`pipeline::TrainJob`] turns a dataset and a model choice
//! into a trained, saveable model with its metrics.

pub mod pipeline;

pub use gradus_data as data;
pub use gradus_train as train;
