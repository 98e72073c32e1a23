//! Numerical optimisation routines that both of gradus's searches use: the
//! training engine runs L-BFGS over a model's weights, the tuning engine over
//! a Gaussian process's kernel hyperparameters. It knows neither. Also the
//! runtime SIMD dispatch both use for their hot loops ([`multiversion!`]).

pub mod lbfgs;
pub mod simd;
pub use simd::clear_upper_state;

pub use lbfgs::{IterationOutcome, Lbfgs, Objective};
