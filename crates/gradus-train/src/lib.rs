//! The training engine: the inner search, over a model's parameters.
//!
//! Every model keeps its parameters in one flat `Vec<f32>` and writes its
//! gradient into a buffer of the same shape ([`Model`]), so optimizers are
//! plain loops over slices ([`Optimizer`]). The [`Trainer`] owns the loop —
//! epochs, mini-batches, the L2 penalty, convergence and divergence checks,
//! and an [`Observer`] called after each epoch that may stop training.
//!
//! This crate knows nothing about hyperparameter tuning: a tuner reaches it
//! only through [`TrainConfig`] and the observer hook. It never prints.
//!
//! ```
//! use gradus_data::synthetic::classic_linear;
//! use gradus_train::{LinearModel, Loss, NoObserver, OptimizerConfig, TrainConfig, Trainer};
//!
//! let data = classic_linear(5); // y = 2x
//! let mut model = LinearModel::new(1, 1, false);
//! let config = TrainConfig {
//!     optimizer: OptimizerConfig::Gd,
//!     lr: 0.01,
//!     epochs: 500,
//!     batch_size: None,
//!     ..TrainConfig::default()
//! };
//! let report = Trainer::new(config).unwrap().fit(&mut model, Loss::Mse, &data, None, &mut NoObserver).unwrap();
//! assert!((model.weights()[0] - 2.0).abs() < 1e-3, "{report:?}");
//! ```

mod activation;
mod augment;
mod batchnorm;
mod category;
mod cnn;
mod conv;
mod error;
pub mod explain;
mod layer;
mod loss;
mod metrics;
mod mlp;
mod model;
pub mod model_file;
mod network;
mod optim;
mod periodic;
pub mod prune;
pub mod quant;
mod schedule;
mod simd;
mod text;
mod trainer;
mod vmath;

pub use activation::Activation;
pub use augment::Augment;
pub use category::CategorySpec;
pub use cnn::{CnnSpec, ConvStage, Pooling};
pub use conv::{Shape, output_side};
pub use error::TrainError;
pub use loss::{Loss, Targets};
pub use metrics::{
    ClassScores, Metric, Metrics, accuracy, average_precision, balanced_accuracy, class_scores, confusion_matrix,
    evaluate, macro_f1, mae, metrics_of_averaged, mse, predicted_classes, probabilities, r2, roc_auc,
};
pub use mlp::{MlpSpec, WeightInit};
pub use model::{Init, LinearModel, Model, NamedParams, Penalty, regularised_loss_and_grad};
pub use model_file::{Architecture, Compression, Ensemble, ModelFileError, ModelSpec, Preprocessing, SavedModel};
pub use network::Network;
pub use optim::{Adagrad, Adam, Optimizer, OptimizerConfig, RmsProp, Sgd};
pub use periodic::PeriodicSpec;
pub use schedule::{Schedule, Scheduler};
pub use text::{TextModel, TextSpec};
pub use trainer::{
    Control, EarlyStopping, EpochRecord, NoObserver, Observer, StepLog, Termination, TrainConfig, TrainReport, Trainer,
};
