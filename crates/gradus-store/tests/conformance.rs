//! The SQLite storage passes the suite every `Storage` must pass.

use std::sync::atomic::{AtomicUsize, Ordering};

use gradus_store::SqliteStorage;
use gradus_tune::conformance;

#[test]
fn sqlite_storage_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    // A fresh, empty file for every check; `dir` outlives them all.
    conformance::run(&|| {
        let path = dir.path().join(format!("study-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        Box::new(SqliteStorage::open(path).unwrap())
    });
    assert!(n.load(Ordering::Relaxed) >= 7, "every check had its own file");
}
