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
use gradus_tune::{Direction, Storage, TrialState, conformance};
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

/// Ends every connection to `db` but `admin`'s own.
fn terminate_others(admin: &mut postgres::Client) -> u64 {
    let others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    admin.query(&format!("SELECT pg_terminate_backend(pid) {others}"), &[]).unwrap().len() as u64
}

#[test]
fn a_lost_connection_is_opened_again_and_the_call_goes_on() {
    let db = TestDb::new();
    let s = PostgresStorage::open(db.url()).unwrap();
    let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
    // End the storage's connection, as a server restart would, and wait until it is gone.
    let mut admin = db.client();
    assert_eq!(terminate_others(&mut admin), 1);
    let others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    while admin.query_one(&format!("SELECT COUNT(*) {others}"), &[]).unwrap().get::<_, i64>(0) > 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The call that finds the connection gone connects again and succeeds.
    assert_eq!(s.create_trial(study).unwrap().number, 0);
    assert_eq!(s.reconnects(), 1);
    assert_eq!(s.create_trial(study).unwrap().number, 1);
}

#[test]
fn a_write_lost_at_its_commit_takes_effect_exactly_once() {
    let db = TestDb::new();
    let s = PostgresStorage::open(db.url()).unwrap();
    let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
    for took_effect in [true, false] {
        // Creating a trial: one trial, whether or not the lost commit landed.
        s.lose_connection_at_next_commit(took_effect);
        let t = s.create_trial(study).unwrap();
        // Finishing it: its value stored once, and the call succeeds (a
        // second finish would fail: the trial is finished).
        s.report(t.id, 0, 1.5).unwrap();
        s.lose_connection_at_next_commit(took_effect);
        let done = s.finish_trial(t.id, TrialState::Complete(2.5)).unwrap();
        assert_eq!(done.state, TrialState::Complete(2.5));
    }
    let trials = s.trials_since(study, 0).unwrap().trials;
    assert_eq!(trials.iter().map(|t| (t.number, t.value())).collect::<Vec<_>>(), [(0, Some(2.5)), (1, Some(2.5))]);
    assert_eq!(s.reconnects(), 4);
}

#[test]
fn ask_and_tell_lose_nothing_while_connections_are_ended() {
    // One thread ends the storage's connection again and again while the
    // other runs 100 trials: every value is stored once, numbers are unique.
    let db = TestDb::new();
    let s = PostgresStorage::open(db.url()).unwrap();
    let study = s.create_study("s", Direction::Minimize, &json!(null)).unwrap().id;
    let done = std::sync::atomic::AtomicBool::new(false);
    let kills = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            let mut admin = db.client();
            let mut kills = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                kills += terminate_others(&mut admin);
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            kills
        });
        for i in 0..100u32 {
            let t = s.create_trial(study).unwrap();
            s.report(t.id, 0, f64::from(i)).unwrap();
            s.set_attr(t.id, "i", &json!(i)).unwrap();
            s.finish_trial(t.id, TrialState::Complete(f64::from(i) / 2.0)).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        killer.join().unwrap()
    });
    eprintln!("{kills} connections ended, {} reconnects", s.reconnects());
    let trials = s.trials_since(study, 0).unwrap().trials;
    assert_eq!(trials.len(), 100, "no trial made twice");
    for (i, t) in trials.iter().enumerate() {
        assert_eq!((t.number, t.value(), &t.attrs["i"]), (i as u64, Some(i as f64 / 2.0), &json!(i)));
    }
    assert!(kills >= 10 && s.reconnects() >= 10, "{kills} connections ended, {} reconnects", s.reconnects());
}
