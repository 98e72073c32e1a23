//! Data for gradus: the tables that training and tuning consume.
//!
//! This crate turns files and generators into a [`Dataset`] (a dense row-major
//! feature [`Matrix`] plus a [`Target`]) and provides the data plumbing every
//! training run needs: seeded train/valid/test splits (stratified for
//! classification), k-fold indices, a [`Scaler`] fitted on the training
//! part only, and shuffled mini-batches.
//!
//! It never trains anything and never prints: errors are typed ([`DataError`])
//! and name the file, line and column at fault.
//!
//! ```
//! use gradus_data::{load, LoadOptions, TargetKind};
//! let iris = load("builtin:iris", &LoadOptions::default()).unwrap();
//! assert_eq!((iris.n_samples(), iris.n_features()), (150, 4));
//! let split = iris.split(0.2, 0.0, 7).unwrap();
//! assert_eq!(split.train.len() + split.valid.len(), 150);
//! ```

mod batch;
mod builtin;
mod dataset;
mod dates;
mod encode;
mod error;
mod expand;
mod folder;
mod idx;
mod kinds;
mod load;
mod matrix;
pub mod memory;
pub mod output;
mod raw;
mod scale;
mod sparse;
mod split;
pub mod synthetic;
pub mod table;
mod text;
mod text_encoding;

pub use batch::Batches;
pub use builtin::{BUILTINS, BuiltinInfo, load_builtin};
pub use dataset::{Dataset, Target, Task};
pub use dates::DateOrder;
pub use encode::{
    ColumnEncoder, Encoding, HASH_BUCKETS, HighCardinality, MAX_EMBEDDED_LEVELS, MAX_LEVELS, MIN_LEVEL_COUNT,
    six_digits,
};
pub use error::DataError;
pub use expand::{BLOCK_ROWS, Expanded, Expansion, Rows};
pub use folder::{is_image_folder, load_image_files, load_image_folder};
pub use idx::{ImageShape, idx_image_shape, image_shape, is_idx_images, labels_path, load_idx, load_idx_images};
pub use kinds::{ColumnInfo, ColumnKind, infer_kind};
pub use load::{LoadOptions, MAX_AUTO_CLASSES, TargetKind, load, load_csv, load_encoded, load_table, parse_csv};
pub use matrix::{MatRef, Matrix};
pub use raw::{RawData, RawOptions, fnv1a, load_raw};
pub use scale::{Scaler, Scaling};
pub use sparse::{Inputs, SparseRef, SparseRows};
pub use split::{Fold, Split, kfold, stratified_kfold, train_valid_test_split};
pub use table::{Column, CsvFile, DEFAULT_NA_VALUES, MISSING, ReadOptions, Table, Values};
pub use text::{
    Analyzer, DEFAULT_MAX_FEATURES, DEFAULT_MIN_DF, DEFAULT_TEXT_BUCKETS, MAX_NGRAM, NgramRange, TextEncoder,
    TextOptions, TextScratch, Tokenizer, Vocabulary, check_text_buckets,
};
pub use text_encoding::{ENCODING_NAMES, TextEncoding};

/// The random number generator used for every seeded operation in gradus.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A generator seeded from `seed`: the same seed always gives the same stream.
pub fn seeded_rng(seed: u64) -> Rng {
    use rand::SeedableRng;
    Rng::seed_from_u64(seed)
}
