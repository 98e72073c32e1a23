//! The PostgreSQL storage passes the conformance suite and the checks of
//! every database storage, each in a database of its own; and what it adds:
//! its schema is versioned, foreign or missing tables are refused, and
//! failures name the database.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Mutex;

use common::pg::{TestDb, server_url, with_dbname};
use gradus_store::PostgresStorage;
use gradus_store::postgres::SCHEMA_VERSION;
use gradus_tune::{Direction, Storage, conformance};
use serde_json::json;

#[test]
fn postgres_storage_conforms() {
    // A fresh, empty database for every check, dropped at the end.
    let dbs = Mutex::new(Vec::new());
    conformance::run(&|| {
        let db = TestDb::new();
        let s = PostgresStorage::open(db.url()).unwrap();
        dbs.lock().unwrap().push(db);
        Box::new(s)
    });
    assert!(dbs.lock().unwrap().len() >= 7, "every check had its own database");
}

#[test]
fn reopening_a_database_resumes_its_studies() {
    let db = TestDb::new();
    common::reopening_resumes_the_studies(&|| Box::new(PostgresStorage::open(db.url()).unwrap()));
}

/// A storage in a new database of its own, and that database.
fn fresh() -> (TestDb, PostgresStorage) {
    let db = TestDb::new();
    let s = PostgresStorage::open(db.url()).unwrap();
    (db, s)
}

#[test]
fn values_come_back_exactly() {
    let (_db, s) = fresh();
    common::values_come_back_exactly(&s);
    // Unlike SQLite's REAL, DOUBLE PRECISION keeps the sign of zero.
    let study = s.create_study("zero", Direction::Minimize, &json!(null)).unwrap().id;
    let t = s.create_trial(study).unwrap();
    s.report(t.id, 0, -0.0).unwrap();
    assert!(s.trial(study, t.number).unwrap().intermediate[&0].is_sign_negative());
}

#[test]
fn errors_match_the_in_memory_storage() {
    common::errors_match_the_in_memory_storage(&fresh().1);
}

#[test]
fn deleting_a_study_deletes_its_trials_and_never_reuses_ids() {
    common::deleting_a_study_deletes_its_trials_and_never_reuses_ids(&fresh().1);
}

#[test]
fn only_open_makes_the_tables() {
    let db = TestDb::new();
    let msg = common::storage_error(PostgresStorage::open_existing(db.url()));
    assert!(msg.contains(db.url()) && msg.contains("create a study first"), "{msg}");
    let tables: i64 =
        db.client().query_one("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'", &[]).unwrap().get(0);
    assert_eq!(tables, 0, "refusing left nothing behind");
    let s = PostgresStorage::open(db.url()).unwrap();
    s.create_study("s", Direction::Minimize, &json!(null)).unwrap();
    drop(s);
    let s = PostgresStorage::open_existing(db.url()).unwrap();
    assert_eq!(s.list_studies().unwrap().len(), 1);
    // `gradus_store::open` keeps the same rule.
    assert!(gradus_store::open(db.url(), false).unwrap().load_study("s").is_ok());
}

#[test]
fn processes_opening_a_new_database_at_once_make_the_tables_once() {
    let db = TestDb::new();
    let opened: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4).map(|_| scope.spawn(|| PostgresStorage::open(db.url()))).collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for s in opened {
        s.unwrap_or_else(|e| panic!("{e}")).list_studies().unwrap();
    }
    let versions: i64 = db.client().query_one("SELECT COUNT(*) FROM schema_version", &[]).unwrap().get(0);
    assert_eq!(versions, 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let db = TestDb::new();
    drop(PostgresStorage::open(db.url()).unwrap());
    db.client().execute("UPDATE schema_version SET version = $1", &[&(SCHEMA_VERSION + 1)]).unwrap();
    let msg = common::storage_error(PostgresStorage::open(db.url()));
    assert!(msg.contains(db.url()) && msg.contains(&format!("schema version {}", SCHEMA_VERSION + 1)), "{msg}");
    assert!(msg.contains("newer"), "{msg}");
}

#[test]
fn databases_that_are_not_study_databases_are_refused_by_name() {
    let db = TestDb::new();
    db.client().batch_execute("CREATE TABLE things (x INTEGER)").unwrap();
    let msg = common::storage_error(PostgresStorage::open(db.url()));
    assert!(msg.contains(db.url()) && msg.contains("not a gradus study database"), "{msg}");

    // Another schema of the same database is a place of its own.
    db.client().batch_execute("CREATE SCHEMA gradus").unwrap();
    let url = format!("{}?options=-csearch_path%3Dgradus", db.url());
    let s = PostgresStorage::open(&url).unwrap();
    s.create_study("s", Direction::Minimize, &json!(null)).unwrap();
    let in_schema: i64 = db.client().query_one("SELECT COUNT(*) FROM gradus.studies", &[]).unwrap().get(0);
    assert_eq!(in_schema, 1);

    let url = format!("{}?options=-csearch_path%3Dno_such_schema", db.url());
    let msg = common::storage_error(PostgresStorage::open(&url));
    assert!(msg.contains("no schema"), "{msg}");

    // A database the server does not have is a mistake in the URL (the CLI exits 2), named with the fix.
    let missing = with_dbname(&server_url(), "gradus_no_such_database");
    match PostgresStorage::open(&missing) {
        Err(gradus_tune::TuneError::InvalidArgument { name: "--storage", reason }) => {
            assert!(reason.contains(&missing) && reason.contains("no database 'gradus_no_such_database'"), "{reason}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a database that does not exist"),
    }
}

#[test]
fn a_lost_connection_is_opened_again() {
    let db = TestDb::new();
    let s = PostgresStorage::open(db.url()).unwrap();
    let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
    // End the storage's connection, as a server restart would, and wait until it is gone.
    let mut admin = db.client();
    let others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    admin.execute(&format!("SELECT pg_terminate_backend(pid) {others}"), &[]).unwrap();
    while admin.query_one(&format!("SELECT COUNT(*) {others}"), &[]).unwrap().get::<_, i64>(0) > 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The call that finds the connection gone fails (its outcome is unknown),
    // naming the database; the next one connects again.
    let err = s.create_trial(study).expect_err("the connection was ended").to_string();
    assert!(err.contains(db.url()) && err.contains("create trial"), "{err}");
    assert_eq!(s.create_trial(study).unwrap().number, 0);
}
