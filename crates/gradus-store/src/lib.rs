//! Database back ends of `gradus-tune`'s [`Storage`](gradus_tune::Storage):
//! studies that outlive a process and that several processes share.
//!
//! - [`SqliteStorage`]: one SQLite file, for the workers of one machine.
//!
//! [`open`] turns a storage URL (`sqlite:PATH`) into a storage.

mod common;
pub mod sqlite;

use std::sync::Arc;

use gradus_tune::{Storage, TuneError};
pub use sqlite::SqliteStorage;

/// Opens the storage a URL names: `sqlite:PATH`. Unless `create`, the
/// database must already exist (so that a mistyped path or a command other
/// than creating a study never leaves a new file behind).
pub fn open(url: &str, create: bool) -> Result<Arc<dyn Storage>, TuneError> {
    let invalid = |reason: String| TuneError::InvalidArgument { name: "storage", reason };
    match url.split_once(':') {
        Some(("sqlite", path)) if !path.is_empty() => {
            if !create && !std::path::Path::new(path).exists() {
                return Err(invalid(format!("no study database at '{path}' (create a study first)")));
            }
            Ok(Arc::new(SqliteStorage::open(path)?))
        }
        _ => Err(invalid(format!("'{url}' is not a storage URL (expected sqlite:PATH)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_back_end_and_only_create_makes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let url = format!("sqlite:{}", path.display());
        let err = open(&url, false).err().unwrap().to_string();
        assert!(err.contains("no study database at"), "{err}");
        assert!(!path.exists(), "no file is left behind");
        open(&url, true).unwrap();
        assert!(path.exists());
        open(&url, false).unwrap();
        assert!(open("postgres://x", false).is_err());
        assert!(open("gradus.db", false).err().unwrap().to_string().contains("not a storage URL"));
    }
}
