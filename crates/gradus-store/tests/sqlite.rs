//! What the SQLite storage adds to the conformance suite: the file outlives
//! the process, its schema is versioned, and values come back exactly.

mod common;

use gradus_store::SqliteStorage;
use gradus_store::sqlite::SCHEMA_VERSION;
use rusqlite::Connection;

#[test]
fn reopening_a_file_resumes_its_studies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study.db");
    common::reopening_resumes_the_studies(&|| Box::new(SqliteStorage::open(&path).unwrap()));
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStorage::open(&path).unwrap());
    Connection::open(&path).unwrap().execute("UPDATE schema_version SET version = ?1", [SCHEMA_VERSION + 1]).unwrap();
    let msg = common::storage_error(SqliteStorage::open(&path));
    assert!(msg.contains("future.db") && msg.contains(&format!("schema version {}", SCHEMA_VERSION + 1)), "{msg}");
    assert!(msg.contains("newer"), "{msg}");
}

#[test]
fn a_version_1_file_is_upgraded_in_place_and_keeps_its_trials() {
    use gradus_tune::{Direction, Storage, TrialState};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let s = SqliteStorage::open(&path).unwrap();
    let study = s.create_study("s", Direction::Minimize, &serde_json::json!(null)).unwrap().id;
    let t = s.create_trial(study).unwrap();
    s.report(t.id, 1, 0.5).unwrap();
    drop(s);
    // Version 1 had no attribute tables.
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE attrs; DROP TABLE study_attrs; UPDATE schema_version SET version = 1")
        .unwrap();
    let s = SqliteStorage::open(&path).unwrap();
    let version: i64 =
        Connection::open(&path).unwrap().query_row("SELECT version FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    s.set_attr(t.id, "best_epochs", &serde_json::json!(1)).unwrap();
    s.finish_trial(t.id, TrialState::Complete(0.5)).unwrap();
    let kept = s.trial(study, 0).unwrap();
    assert_eq!((kept.intermediate.len(), kept.attrs["best_epochs"].as_u64()), (1, Some(1)));
}

#[test]
fn files_that_are_not_study_databases_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a database, just some text that is long enough to have a header").unwrap();
    let msg = common::storage_error(SqliteStorage::open(&text));
    assert!(msg.contains("notes.txt") && msg.contains("not a database"), "{msg}");

    let other = dir.path().join("other.db");
    Connection::open(&other).unwrap().execute_batch("CREATE TABLE things (x)").unwrap();
    let msg = common::storage_error(SqliteStorage::open(&other));
    assert!(msg.contains("other.db") && msg.contains("not a gradus study database"), "{msg}");

    let missing = dir.path().join("no/such/dir/study.db");
    let msg = common::storage_error(SqliteStorage::open(&missing));
    assert!(msg.contains("no/such/dir/study.db"), "{msg}");
}

/// A storage in a new file of its own, and the directory that holds it.
fn fresh(name: &str) -> (tempfile::TempDir, SqliteStorage) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(dir.path().join(name)).unwrap();
    (dir, s)
}

#[test]
fn values_come_back_exactly() {
    common::values_come_back_exactly(&fresh("exact.db").1);
}

#[test]
fn errors_match_the_in_memory_storage() {
    common::errors_match_the_in_memory_storage(&fresh("errors.db").1);
}

#[test]
fn deleting_a_study_deletes_its_trials_and_never_reuses_ids() {
    common::deleting_a_study_deletes_its_trials_and_never_reuses_ids(&fresh("delete.db").1);
}
