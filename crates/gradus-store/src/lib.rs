//! Database back ends of `gradus-tune`'s [`Storage`](gradus_tune::Storage):
//! studies that outlive a process and that several processes share.
//!
//! - [`SqliteStorage`]: one SQLite file, for the workers of one machine.
//! - `PostgresStorage` (with the `postgres` feature): a PostgreSQL database,
//!   for workers on several machines.
//!
//! [`open`] turns a storage URL (`sqlite:PATH`, `postgres://...`) into a storage.

mod common;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

#[cfg(feature = "postgres")]
pub use crate::postgres::PostgresStorage;
use gradus_tune::{Storage, TuneError};
pub use sqlite::SqliteStorage;

/// Opens the storage a URL names: `sqlite:PATH`, or
/// `postgres://[USER[:PASSWORD]@]HOST[:PORT]/DBNAME[?...]` (also
/// `postgresql://`). Unless `create`, the database must already exist and, for
/// PostgreSQL, have the study tables (so that a mistyped URL or a command
/// other than creating a study never leaves a new file or tables behind).
pub fn open(url: &str, create: bool) -> Result<Arc<dyn Storage>, TuneError> {
    let invalid = |reason: String| TuneError::InvalidArgument { name: "storage", reason };
    match url.split_once(':') {
        Some(("sqlite", path)) if !path.is_empty() => {
            if !create && !std::path::Path::new(path).exists() {
                return Err(invalid(format!("no study database at '{path}' (create a study first)")));
            }
            Ok(Arc::new(SqliteStorage::open(path)?))
        }
        Some(("postgres" | "postgresql", rest)) if rest.starts_with("//") => open_postgres(url, create),
        _ => Err(invalid(format!("'{url}' is not a storage URL (expected sqlite:PATH or postgres://...)"))),
    }
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str, create: bool) -> Result<Arc<dyn Storage>, TuneError> {
    Ok(Arc::new(if create { PostgresStorage::open(url)? } else { PostgresStorage::open_existing(url)? }))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_url: &str, _create: bool) -> Result<Arc<dyn Storage>, TuneError> {
    Err(TuneError::InvalidArgument {
        name: "storage",
        reason: "this gradus was built without PostgreSQL support (rebuild with the `postgres` feature)".into(),
    })
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
        assert!(open("gradus.db", false).err().unwrap().to_string().contains("not a storage URL"));
        assert!(open("postgres:gradus", false).err().unwrap().to_string().contains("not a storage URL"));
    }

    /// The text of the error that opening `url` fails with.
    fn open_error(url: &str) -> String {
        open(url, true).err().expect("opening must fail").to_string()
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_urls_are_parsed_and_their_errors_name_them_without_the_password() {
        // Well-formed, so it gets as far as connecting (nothing listens on port 1).
        for scheme in ["postgres", "postgresql"] {
            let err = open_error(&format!("{scheme}://gradus:s3cret@127.0.0.1:1/studies?connect_timeout=5"));
            assert!(err.contains(&format!("{scheme}://gradus:***@127.0.0.1:1/studies")), "{err}");
            assert!(err.contains("connect") && err.contains("refused"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        let err = open_error("postgres://gradus:s3cret@127.0.0.1:notaport/studies");
        assert!(err.contains("invalid connection string") && err.contains("port"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = open_error("postgresql://127.0.0.1/studies?no_such_option=1");
        assert!(err.contains("unknown option `no_such_option`"), "{err}");
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_urls_say_that_support_was_left_out() {
        for url in ["postgres://127.0.0.1/studies", "postgresql://u:p@h/db"] {
            let err = open_error(url);
            assert!(err.contains("built without PostgreSQL support"), "{err}");
            assert!(!err.contains(":p@"), "{err}");
        }
    }
}
