//! A [`Storage`] in one SQLite file, for studies that must outlive the process
//! that runs them or that several processes work on at once.
//!
//! Point every worker of a study — on one machine — at the same file: each
//! process opens its own [`SqliteStorage`], and SQLite's locking makes every
//! storage method one atomic transaction. The file is in WAL mode, so readers
//! never wait for the writer, and writers wait (up to [`BUSY_TIMEOUT`]) for
//! each other instead of failing with "database is locked". WAL needs a local
//! file system (not NFS or another network file system, which SQLite's
//! locking does not reach across machines); opening fails where SQLite
//! cannot switch to WAL.
//!
//! Reopening a file resumes its studies. The file records its schema version;
//! an older file is upgraded on open, and a file written by a newer gradus is
//! refused rather than misread.
//!
//! # Layout
//!
//! | table | holds |
//! | --- | --- |
//! | `schema_version` | the one version number of the layout |
//! | `studies` | name, direction, settings (JSON) |
//! | `trials` | number within its study, state, value, fixed parameters (JSON), times, and `seq` |
//! | `params` | per trial and name: distribution and value, both JSON |
//! | `intermediate` | per trial and step: the reported value (NULL for NaN) |
//! | `attrs` | per trial and name: a value the objective recorded (JSON) |
//! | `study_attrs` | per study and name: a value set for the whole study (JSON), such as which process finalises it |
//! | `counter` | one row: the last `seq` handed out |
//!
//! Every change to a trial takes the next number from `counter` and stores it
//! in the trial's `seq`; [`Storage::trials_since`] returns the trials whose
//! `seq` is above the cursor, and the counter as the new cursor. Writes are
//! serialised by SQLite's write lock, so they commit in `seq` order and a
//! reader never sees a `seq` before one that is still to commit.
//!
//! Ids of studies and trials are never reused, even after a study is deleted
//! (`AUTOINCREMENT`), so a stale id held by another process cannot reach a
//! newer study's trials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gradus_tune::{
    Direction, Distribution, FAIL_REASON, FrozenTrial, Storage, StudyRecord, StudySummary, TrialState, TrialsSince,
    TuneError, WORKER_LOST, now,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Params, Transaction, TransactionBehavior, params};
use serde_json::Value;

use crate::common::{self, TrialRow, TrialSet, key, nan_as_null, to_json, unsigned};

/// How long a write waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

/// The schema of version 1, created in a new file.
const SCHEMA_V1: &str = "
CREATE TABLE studies (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')),
    settings  TEXT NOT NULL                      -- JSON
);
CREATE TABLE trials (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id     INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('waiting', 'running', 'complete', 'pruned', 'fail')),
    value        REAL,                           -- set for complete trials only
    fixed_params TEXT NOT NULL,                  -- JSON object
    started_at   REAL,                           -- seconds since the Unix epoch
    finished_at  REAL,
    heartbeat_at REAL,
    seq          INTEGER NOT NULL,               -- `counter.seq` at its last change
    UNIQUE (study_id, number)
);
CREATE INDEX trials_by_state ON trials (study_id, state, number);
CREATE INDEX trials_by_seq ON trials (study_id, seq);
CREATE TABLE params (
    trial_id     INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    distribution TEXT NOT NULL,                  -- JSON
    value        TEXT NOT NULL,                  -- JSON
    PRIMARY KEY (trial_id, name)
) WITHOUT ROWID;
CREATE TABLE intermediate (
    trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    step     INTEGER NOT NULL,
    value    REAL,                               -- NULL stands for NaN
    PRIMARY KEY (trial_id, step)
) WITHOUT ROWID;
CREATE TABLE counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO counter (id, seq) VALUES (1, 0);
";

/// The upgrades, in order: `MIGRATIONS[i]` turns version `i + 1` into
/// `i + 2`. To change the schema, append a step here (and change nothing
/// above): files of every older version are upgraded on open, in one
/// transaction with the version update.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE attrs (
    trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,                      -- JSON
    PRIMARY KEY (trial_id, name)
) WITHOUT ROWID;
",
    "
CREATE TABLE study_attrs (
    study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,                      -- JSON
    PRIMARY KEY (study_id, name)
) WITHOUT ROWID;
",
];

/// A [`Storage`] in an SQLite file; see the [module docs](self).
pub struct SqliteStorage {
    /// One connection per storage; rusqlite's is `Send` but not `Sync`.
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// Why an operation failed, before it is turned into a [`TuneError`] that
/// names the file.
type Failure = common::Failure<rusqlite::Error>;

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Db(e)
    }
}

/// The error to return, naming the file; a lock held too long says so.
fn into_tune(e: Failure, path: &Path, what: &str) -> TuneError {
    match e {
        Failure::Db(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => TuneError::Storage(format!(
            "{}: {what}: {e} (waited {} s for another connection to release it)",
            path.display(),
            BUSY_TIMEOUT.as_secs()
        )),
        e => e.into_tune(&path.display().to_string(), what),
    }
}

type Result<T, E = Failure> = std::result::Result<T, E>;

impl SqliteStorage {
    /// Opens the study database at `path`, creating it if absent and
    /// upgrading an older schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TuneError> {
        let path = path.as_ref().to_path_buf();
        let fail = |what: &str, e: Failure| common::open_failed(into_tune(e, &path, what));
        let mut conn = Connection::open(&path).map_err(|e| fail("open", e.into()))?;
        retry_while_busy(|| configure(&conn)).map_err(|e| fail("configure", e))?;
        retry_while_busy(|| migrate(&mut conn)).map_err(|e| fail("schema", e))?;
        Ok(Self { conn: Mutex::new(conn), path })
    }

    /// The file this storage is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a transaction drops it, which rolls it back, so a
        // poisoned connection is still consistent.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in a write transaction, begun `IMMEDIATE` so that it holds
    /// the write lock from its first read: what it checks cannot change
    /// before it writes.
    fn write<T>(&self, what: &str, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T, TuneError> {
        self.transaction(TransactionBehavior::Immediate, what, f)
    }

    /// Runs `f` in a read transaction: a consistent snapshot.
    fn read<T>(&self, what: &str, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T, TuneError> {
        self.transaction(TransactionBehavior::Deferred, what, f)
    }

    fn transaction<T>(
        &self,
        behavior: TransactionBehavior,
        what: &str,
        f: impl FnOnce(&Transaction) -> Result<T>,
    ) -> Result<T, TuneError> {
        let mut conn = self.lock();
        let run = || {
            let tx = conn.transaction_with_behavior(behavior)?;
            let out = f(&tx)?; // an error drops `tx`, which rolls it back
            tx.commit()?;
            Ok(out)
        };
        run().map_err(|e: Failure| into_tune(e, &self.path, what))
    }
}

/// Runs `f` again while another connection holds a lock that it needs, for
/// up to [`BUSY_TIMEOUT`]. Opening needs it: when several processes open a
/// new file at once, switching it to WAL mode fails with "database is locked"
/// at once, without waiting through the busy timeout.
fn retry_while_busy<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(Failure::Db(e))
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            done => return done,
        }
    }
}

fn configure(conn: &Connection) -> Result<()> {
    // First, so that everything after it waits for other processes' locks.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Failure::Refused(format!(
            "cannot use WAL mode (journal mode is '{mode}'); a study database must be a file on a local file system"
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Creates the schema in a new file, or checks and upgrades an existing one.
fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: Option<i64> = tx.query_row("SELECT MAX(version) FROM schema_version", [], |row| row.get(0))?;
    match found {
        None => {
            let others: i64 = tx.query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' AND name != 'schema_version'",
                [],
                |row| row.get(0),
            )?;
            if others > 0 {
                return Err(Failure::Refused(common::FOREIGN_TABLES.into()));
            }
            tx.execute_batch(SCHEMA_V1)?;
            for step in MIGRATIONS {
                tx.execute_batch(step)?;
            }
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [SCHEMA_VERSION])?;
        }
        Some(v) => {
            for step in &MIGRATIONS[common::pending_migrations(v, SCHEMA_VERSION)?..] {
                tx.execute_batch(step)?;
            }
            if v < SCHEMA_VERSION {
                tx.execute("UPDATE schema_version SET version = ?1", [SCHEMA_VERSION])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// The id of study `study`, or `UnknownStudy` naming it `#id` (as the
/// in-memory storage does).
fn study_key(tx: &Transaction, study: u64) -> Result<i64> {
    let unknown = || Failure::Tune(common::unknown_study(study));
    let id = key(study).ok_or_else(unknown)?;
    let found = tx.prepare_cached("SELECT 1 FROM studies WHERE id = ?1")?.query_row([id], |_| Ok(())).optional()?;
    found.map(|()| id).ok_or_else(unknown)
}

/// Takes the next change number.
fn next_seq(tx: &Transaction) -> Result<i64> {
    Ok(tx.prepare_cached("UPDATE counter SET seq = seq + 1 RETURNING seq")?.query_row([], |row| row.get(0))?)
}

/// The number after every trial of `study`.
fn next_number(tx: &Transaction, study: i64) -> Result<i64> {
    Ok(tx
        .prepare_cached("SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?1")?
        .query_row([study], |row| row.get(0))?)
}

/// The key of trial `trial_id`, checked to exist and not be finished (the
/// errors of the in-memory storage).
fn unfinished_trial(tx: &Transaction, trial_id: u64) -> Result<i64> {
    let id = key(trial_id).ok_or_else(|| common::unknown_trial(trial_id))?;
    let row = tx
        .prepare_cached("SELECT number, state, value FROM trials WHERE id = ?1")?
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    common::check_unfinished(trial_id, row)?;
    Ok(id)
}

/// Starts the oldest waiting trial of `study` numbered below `below`, if
/// any; returns its key.
fn claim_waiting(tx: &Transaction, study: i64, below: i64) -> Result<Option<i64>> {
    let waiting: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM trials WHERE study_id = ?1 AND state = 'waiting' AND number < ?2 ORDER BY number LIMIT 1",
        )?
        .query_row([study, below], |row| row.get(0))
        .optional()?;
    if let Some(id) = waiting {
        let seq = next_seq(tx)?;
        tx.prepare_cached("UPDATE trials SET state = 'running', started_at = ?2, seq = ?3 WHERE id = ?1")?
            .execute(params![id, now(), seq])?;
    }
    Ok(waiting)
}

/// The trials that `filter` (an SQL condition on `trials t`, with `args`)
/// selects, in order of id, with their parameters and intermediate values.
fn load_trials<P: Params + Copy>(tx: &Transaction, filter: &str, args: P) -> Result<Vec<FrozenTrial>> {
    let mut trials = TrialSet::default();
    let mut stmt = tx.prepare_cached(&common::trials_query(filter))?;
    let mut rows = stmt.query(args)?;
    while let Some(row) = rows.next()? {
        trials.push(TrialRow {
            id: row.get(0)?,
            number: row.get(1)?,
            state: row.get(2)?,
            value: row.get(3)?,
            fixed_params: row.get(4)?,
            started_at: row.get(5)?,
            finished_at: row.get(6)?,
            heartbeat_at: row.get(7)?,
        })?;
    }
    if trials.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = tx.prepare_cached(&common::params_query(filter))?;
    let mut rows = stmt.query(args)?;
    while let Some(row) = rows.next()? {
        trials.add_param(row.get(0)?, row.get(1)?, &row.get::<_, String>(2)?, &row.get::<_, String>(3)?)?;
    }
    let mut stmt = tx.prepare_cached(&common::intermediate_query(filter))?;
    let mut rows = stmt.query(args)?;
    while let Some(row) = rows.next()? {
        trials.add_intermediate(row.get(0)?, row.get(1)?, row.get(2)?)?;
    }
    let mut stmt = tx.prepare_cached(&common::attrs_query(filter))?;
    let mut rows = stmt.query(args)?;
    while let Some(row) = rows.next()? {
        trials.add_attr(row.get(0)?, row.get(1)?, &row.get::<_, String>(2)?)?;
    }
    Ok(trials.into_vec())
}

/// The trial with key `id`, which the caller knows to exist.
fn load_trial(tx: &Transaction, id: i64) -> Result<FrozenTrial> {
    load_trials(tx, "t.id = ?1", (id,))?.pop().ok_or_else(|| Failure::Corrupt(format!("trial #{id} vanished")))
}

impl Storage for SqliteStorage {
    fn create_study(&self, name: &str, direction: Direction, settings: &Value) -> Result<StudyRecord, TuneError> {
        self.write("create study", |tx| {
            let exists =
                tx.prepare_cached("SELECT 1 FROM studies WHERE name = ?1")?.query_row([name], |_| Ok(())).optional()?;
            if exists.is_some() {
                return Err(TuneError::StudyExists(name.into()).into());
            }
            tx.prepare_cached("INSERT INTO studies (name, direction, settings) VALUES (?1, ?2, ?3)")?
                .execute(params![name, direction.name(), to_json(settings)?])?;
            let id = unsigned(tx.last_insert_rowid(), "study id")?;
            Ok(StudyRecord { id, name: name.into(), direction, settings: settings.clone() })
        })
    }

    fn load_study(&self, name: &str) -> Result<StudyRecord, TuneError> {
        self.read("load study", |tx| {
            let row: Option<(i64, String, String)> = tx
                .prepare_cached("SELECT id, direction, settings FROM studies WHERE name = ?1")?
                .query_row([name], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()?;
            let (id, direction, settings) = row.ok_or_else(|| TuneError::UnknownStudy(name.into()))?;
            Ok(common::study_record(id, name, &direction, &settings)?)
        })
    }

    fn list_studies(&self) -> Result<Vec<StudySummary>, TuneError> {
        self.read("list studies", |tx| {
            // `value` is set on complete trials only, so MIN and MAX are over those.
            let mut stmt = tx.prepare_cached(
                "SELECT s.name, s.direction, COUNT(t.id), MIN(t.value), MAX(t.value)
                 FROM studies s LEFT JOIN trials t ON t.study_id = s.id
                 GROUP BY s.id ORDER BY s.id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let direction: String = row.get(1)?;
                out.push(common::study_summary(row.get(0)?, &direction, row.get(2)?, row.get(3)?, row.get(4)?)?);
            }
            Ok(out)
        })
    }

    fn delete_study(&self, name: &str) -> Result<(), TuneError> {
        self.write("delete study", |tx| {
            // Its trials, parameters and intermediate values go with it (ON DELETE CASCADE).
            match tx.prepare_cached("DELETE FROM studies WHERE name = ?1")?.execute([name])? {
                0 => Err(TuneError::UnknownStudy(name.into()).into()),
                _ => Ok(()),
            }
        })
    }

    fn enqueue_trial(&self, study: u64, params: &BTreeMap<String, Value>) -> Result<u64, TuneError> {
        self.write("enqueue trial", |tx| {
            let study = study_key(tx, study)?;
            let (seq, number) = (next_seq(tx)?, next_number(tx, study)?);
            tx.prepare_cached(
                "INSERT INTO trials (study_id, number, state, fixed_params, seq) VALUES (?1, ?2, 'waiting', ?3, ?4)",
            )?
            .execute(params![study, number, to_json(params)?, seq])?;
            Ok(unsigned(number, "trial number")?)
        })
    }

    fn start_trial_within(
        &self,
        study: u64,
        budget: u64,
        waiting_only: bool,
    ) -> Result<Option<FrozenTrial>, TuneError> {
        let budget = i64::try_from(budget).unwrap_or(i64::MAX);
        self.write("create trial", |tx| {
            let study = study_key(tx, study)?;
            if let Some(id) = claim_waiting(tx, study, budget)? {
                return load_trial(tx, id).map(Some);
            }
            let number = next_number(tx, study)?;
            if waiting_only || number >= budget {
                return Ok(None);
            }
            let seq = next_seq(tx)?;
            tx.prepare_cached(
                "INSERT INTO trials (study_id, number, state, fixed_params, started_at, seq)
                 VALUES (?1, ?2, 'running', '{}', ?3, ?4)",
            )?
            .execute(params![study, number, now(), seq])?;
            load_trial(tx, tx.last_insert_rowid()).map(Some)
        })
    }

    fn claim_waiting_trial(&self, study: u64) -> Result<Option<FrozenTrial>, TuneError> {
        self.write("claim waiting trial", |tx| {
            let study = study_key(tx, study)?;
            claim_waiting(tx, study, i64::MAX)?.map(|id| load_trial(tx, id)).transpose()
        })
    }

    fn set_param(
        &self,
        trial_id: u64,
        name: &str,
        distribution: &Distribution,
        value: &Value,
    ) -> Result<(), TuneError> {
        distribution.to_internal(name, value)?;
        self.write("set parameter", |tx| {
            let id = unfinished_trial(tx, trial_id)?;
            let seq = next_seq(tx)?;
            tx.prepare_cached("UPDATE trials SET seq = ?2 WHERE id = ?1")?.execute([id, seq])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO params (trial_id, name, distribution, value) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, name, to_json(distribution)?, to_json(value)?])?;
            Ok(())
        })
    }

    fn report(&self, trial_id: u64, step: u64, value: f64) -> Result<(), TuneError> {
        let step = common::step_key(step)?;
        self.write("report", |tx| {
            let id = unfinished_trial(tx, trial_id)?;
            let seq = next_seq(tx)?;
            tx.prepare_cached("UPDATE trials SET seq = ?2 WHERE id = ?1")?.execute([id, seq])?;
            // SQLite has no NaN: it is stored as NULL (and read back as NaN).
            let value = nan_as_null(value);
            tx.prepare_cached("INSERT OR REPLACE INTO intermediate (trial_id, step, value) VALUES (?1, ?2, ?3)")?
                .execute(params![id, step, value])?;
            Ok(())
        })
    }

    fn set_attr(&self, trial_id: u64, name: &str, value: &Value) -> Result<(), TuneError> {
        self.write("set attribute", |tx| {
            let id = unfinished_trial(tx, trial_id)?;
            let seq = next_seq(tx)?;
            tx.prepare_cached("UPDATE trials SET seq = ?2 WHERE id = ?1")?.execute([id, seq])?;
            tx.prepare_cached("INSERT OR REPLACE INTO attrs (trial_id, name, value) VALUES (?1, ?2, ?3)")?
                .execute(params![id, name, to_json(value)?])?;
            Ok(())
        })
    }

    fn heartbeat(&self, trial_id: u64) -> Result<(), TuneError> {
        self.write("heartbeat", |tx| {
            let id = unfinished_trial(tx, trial_id)?;
            let seq = next_seq(tx)?;
            tx.prepare_cached("UPDATE trials SET heartbeat_at = ?2, seq = ?3 WHERE id = ?1")?.execute(params![
                id,
                now(),
                seq
            ])?;
            Ok(())
        })
    }

    fn finish_trial(&self, trial_id: u64, state: TrialState) -> Result<FrozenTrial, TuneError> {
        state.check_final(trial_id)?;
        self.write("finish trial", |tx| {
            let id = unfinished_trial(tx, trial_id)?;
            let seq = next_seq(tx)?;
            tx.prepare_cached("UPDATE trials SET state = ?2, value = ?3, finished_at = ?4, seq = ?5 WHERE id = ?1")?
                .execute(params![id, state.name(), state.value(), now(), seq])?;
            load_trial(tx, id)
        })
    }

    fn trial(&self, study: u64, number: u64) -> Result<FrozenTrial, TuneError> {
        self.read("load trial", |tx| {
            let study_id = study_key(tx, study)?;
            let found = match key(number) {
                Some(n) => load_trials(tx, "t.study_id = ?1 AND t.number = ?2", (study_id, n))?.pop(),
                None => None,
            };
            match found {
                Some(trial) => Ok(trial),
                None => {
                    let name: String = tx
                        .prepare_cached("SELECT name FROM studies WHERE id = ?1")?
                        .query_row([study_id], |row| row.get(0))?;
                    Err(TuneError::UnknownTrial { study: name, trial: number }.into())
                }
            }
        })
    }

    fn trials_since(&self, study: u64, cursor: u64) -> Result<TrialsSince, TuneError> {
        self.read("list trials", |tx| {
            let study = study_key(tx, study)?;
            let now_at: i64 = tx.prepare_cached("SELECT seq FROM counter")?.query_row([], |row| row.get(0))?;
            let after = key(cursor).unwrap_or(i64::MAX);
            let trials = load_trials(tx, "t.study_id = ?1 AND t.seq > ?2", (study, after))?;
            Ok(TrialsSince { trials, cursor: unsigned(now_at, "change counter")? })
        })
    }

    fn fail_stale_trials(&self, study: u64, max_age: f64) -> Result<Vec<u64>, TuneError> {
        self.write("fail stale trials", |tx| {
            let study = study_key(tx, study)?;
            let now = now();
            let stale: Vec<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT id, number FROM trials
                     WHERE study_id = ?1 AND state = 'running' AND COALESCE(heartbeat_at, started_at, 0.0) < ?2
                     ORDER BY id",
                )?
                .query_map(params![study, now - max_age], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut numbers = Vec::with_capacity(stale.len());
            for (id, number) in stale {
                let seq = next_seq(tx)?;
                tx.prepare_cached("UPDATE trials SET state = 'fail', finished_at = ?2, seq = ?3 WHERE id = ?1")?
                    .execute(params![id, now, seq])?;
                tx.prepare_cached("INSERT OR REPLACE INTO attrs (trial_id, name, value) VALUES (?1, ?2, ?3)")?
                    .execute(params![id, FAIL_REASON, to_json(&Value::from(WORKER_LOST))?])?;
                numbers.push(unsigned(number, "trial number")?);
            }
            Ok(numbers)
        })
    }

    fn study_attr(&self, study: u64, name: &str) -> Result<Option<Value>, TuneError> {
        self.read("load study attribute", |tx| {
            let study = study_key(tx, study)?;
            study_attr(tx, study, name)
        })
    }

    fn swap_study_attr(
        &self,
        study: u64,
        name: &str,
        expected: Option<&Value>,
        new: &Value,
    ) -> Result<Option<Value>, TuneError> {
        self.write("set study attribute", |tx| {
            let study = study_key(tx, study)?;
            let current = study_attr(tx, study, name)?;
            if current.as_ref() != expected {
                return Ok(current);
            }
            tx.prepare_cached("INSERT OR REPLACE INTO study_attrs (study_id, name, value) VALUES (?1, ?2, ?3)")?
                .execute(params![study, name, to_json(new)?])?;
            Ok(Some(new.clone()))
        })
    }
}

/// The attribute `name` of the study with key `study`.
fn study_attr(tx: &Transaction, study: i64, name: &str) -> Result<Option<Value>> {
    let text: Option<String> = tx
        .prepare_cached("SELECT value FROM study_attrs WHERE study_id = ?1 AND name = ?2")?
        .query_row(params![study, name], |row| row.get(0))
        .optional()?;
    Ok(text.map(|t| common::from_json(&t, "study attribute")).transpose()?)
}
