//! A [`Storage`] in a PostgreSQL database, for studies whose workers run on
//! several machines (an SQLite file serves the workers of one machine only).
//!
//! Point every worker at the same database with a URL such as
//! `postgres://user:password@host:5432/dbname`; each process opens its own
//! [`PostgresStorage`] (one connection), and every storage method is one
//! transaction. The tables are made on first open, in the first schema of the
//! connection's `search_path` (`public` unless the URL's
//! `options=-csearch_path%3DNAME` says otherwise), which must be empty of
//! other tables: give gradus a database or schema of its own. The connection
//! is unencrypted (this build has no TLS); keep it on a trusted network.
//!
//! The layout, change counter and schema versioning are the SQLite back end's
//! (see [its docs](crate::sqlite)): `schema_version`, `studies`, `trials`,
//! `params`, `intermediate`, `attrs`, `study_attrs` and `counter`, with JSON text for settings,
//! distributions, parameter and attribute values, DOUBLE PRECISION (exact `f64`) for
//! values and times, and NULL for a NaN intermediate value.
//!
//! # Concurrency
//!
//! Every write transaction first locks the one row of `counter`
//! (`SELECT ... FOR UPDATE`), so writes are serialised across processes as
//! SQLite's write lock serialises them: what a write checks (the study
//! exists, the trial is unfinished, the next trial number) cannot change
//! before it commits, and change numbers are taken in commit order, so
//! [`Storage::trials_since`] never skips a change. Claiming a waiting trial
//! also selects it `FOR UPDATE SKIP LOCKED`. Reads run in one `REPEATABLE
//! READ` snapshot and take no locks. A write waits up to [`LOCK_TIMEOUT`] for
//! the lock; one aborted by a deadlock or serialization failure is retried.
//! Creating the tables is guarded by a transaction-level advisory lock, so
//! processes that open a new database at once do not race.
//!
//! # Lost connections
//!
//! A connection that is lost (the server restarted, an administrator ended
//! it, the network failed) is opened again, at once, then after 50 ms and
//! twice as long each time up to 5 s, for up to [`RECONNECT_WINDOW`]; the call then
//! runs its transaction again. A write lost at its commit may have taken
//! effect: every write transaction first takes its transaction id
//! (`txid_current()`), and after reconnecting asks the server
//! (`txid_status`) whether it committed. If it did, the call returns what
//! the transaction returned; if not, it runs again. So a finished trial's
//! value is stored exactly once, however the connection is lost, as long as
//! the server is back within the window.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::postgres::error::SqlState;
use ::postgres::types::{FromSql, ToSql};
use ::postgres::{Client, Config, NoTls, Row, SimpleQueryMessage, Statement};
use gradus_tune::{
    Direction, Distribution, FAIL_REASON, FrozenTrial, Storage, StudyRecord, StudySummary, TrialState, TrialsSince,
    TuneError, WORKER_LOST, now,
};
use serde_json::Value;

use crate::common::{self, TrialRow, TrialSet, key, nan_as_null, to_json, unsigned};

/// How long a statement waits for another connection's lock before failing.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a call keeps trying to reach a server it lost (see
/// [`PostgresStorage::with_reconnect_window`]).
pub const RECONNECT_WINDOW: Duration = Duration::from_secs(120);

/// How long connecting waits, unless the URL's `connect_timeout` says.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

/// The schema of version 1, created in an empty schema.
const SCHEMA_V1: &str = "
CREATE TABLE studies (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')),
    settings  TEXT NOT NULL                      -- JSON
);
CREATE TABLE trials (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    study_id     BIGINT NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
    number       BIGINT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('waiting', 'running', 'complete', 'pruned', 'fail')),
    value        DOUBLE PRECISION,               -- set for complete trials only
    fixed_params TEXT NOT NULL,                  -- JSON object
    started_at   DOUBLE PRECISION,               -- seconds since the Unix epoch
    finished_at  DOUBLE PRECISION,
    heartbeat_at DOUBLE PRECISION,
    seq          BIGINT NOT NULL,                -- `counter.seq` at its last change
    UNIQUE (study_id, number)
);
CREATE INDEX trials_by_state ON trials (study_id, state, number);
CREATE INDEX trials_by_seq ON trials (study_id, seq);
CREATE TABLE params (
    trial_id     BIGINT NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    distribution TEXT NOT NULL,                  -- JSON
    value        TEXT NOT NULL,                  -- JSON
    PRIMARY KEY (trial_id, name)
);
CREATE TABLE intermediate (
    trial_id BIGINT NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    step     BIGINT NOT NULL,
    value    DOUBLE PRECISION,                   -- NULL stands for NaN, as in SQLite
    PRIMARY KEY (trial_id, step)
);
CREATE TABLE counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO counter (id, seq) VALUES (1, 0);
";

/// The upgrades, in order: `MIGRATIONS[i]` turns version `i + 1` into
/// `i + 2`, in one transaction with the version update (as in SQLite).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE attrs (
    trial_id BIGINT NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (trial_id, name)
);
",
    "
CREATE TABLE study_attrs (
    study_id BIGINT NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (study_id, name)
);
",
];

/// The advisory lock that creating and upgrading the tables holds ("gradus").
const SCHEMA_LOCK: i64 = 0x6772_6164_7573;

/// How often a write aborted by a deadlock or serialization failure is tried again.
const RETRIES: u32 = 10;

/// A [`Storage`] in a PostgreSQL database; see the [module docs](self).
pub struct PostgresStorage {
    conn: Mutex<Connection>,
    config: Config,
    /// The URL without its password, for messages.
    url: String,
    reconnect_window: Duration,
    reconnects: AtomicU64,
}

struct Connection {
    client: Client,
    /// Prepared statements by SQL text: each is parsed once per connection.
    statements: HashMap<String, Statement>,
    /// Whether a call found the connection lost, which the client may not
    /// have noticed yet.
    lost: bool,
    /// Set by [`PostgresStorage::lose_connection_at_next_commit`].
    lose_at_commit: Option<bool>,
}

impl Connection {
    fn new(client: Client) -> Self {
        Self { client, statements: HashMap::new(), lost: false, lose_at_commit: None }
    }
}

/// A driver error with its causes (the driver's own message is only the kind,
/// such as "db error").
pub(crate) struct PgError(::postgres::Error);

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(&self.0);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        if let Some(code) = self.0.code() {
            write!(f, " (SQLSTATE {})", code.code())?;
        }
        Ok(())
    }
}

type Failure = common::Failure<PgError>;

impl From<::postgres::Error> for Failure {
    fn from(e: ::postgres::Error) -> Self {
        Failure::Db(PgError(e))
    }
}

type Result<T, E = Failure> = std::result::Result<T, E>;

/// The error to return, naming the database; a lock held too long says so.
fn into_tune(e: Failure, url: &str, what: &str) -> TuneError {
    match e {
        Failure::Db(e) if e.0.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => TuneError::Storage(format!(
            "{url}: {what}: {e} (waited {} s for another connection to release it)",
            LOCK_TIMEOUT.as_secs()
        )),
        e => e.into_tune(url, what),
    }
}

/// Whether the connection is gone: closed, broken, or ended by the server
/// (a FATAL error, such as when an administrator or a restart ends it).
fn connection_lost(e: &Failure) -> bool {
    let Failure::Db(PgError(e)) = e else { return false };
    e.is_closed()
        || std::error::Error::source(e).is_some_and(|cause| cause.is::<std::io::Error>())
        || e.as_db_error().is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"))
}

/// Whether the server answered and then ended the connection as it was
/// being made: an administrator ended it, the server is shutting down after
/// a crash, or it is starting up. Worth trying again, unlike a refused
/// connection or a bad address.
fn ended_by_server(e: &Failure) -> bool {
    let Failure::Db(PgError(e)) = e else { return false };
    e.code().is_some_and(|c| {
        *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CRASH_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW
    })
}

/// Whether a connection failed because the server has no database of the name asked for.
fn missing_database(e: &Failure) -> bool {
    let Failure::Db(PgError(e)) = e else { return false };
    e.code() == Some(&SqlState::INVALID_CATALOG_NAME)
}

/// Whether the server aborted a transaction that may simply be run again.
fn retryable(e: &Failure) -> bool {
    let Failure::Db(PgError(e)) = e else { return false };
    e.code().is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

impl PostgresStorage {
    /// Connects to the database at `url` and makes the tables if it has none
    /// yet (upgrading an older schema).
    pub fn open(url: &str) -> Result<Self, TuneError> {
        Self::connect(url, true)
    }

    /// Connects to a database that already has the tables (upgrading an
    /// older schema); one without them is refused rather than set up, so that
    /// a mistyped URL changes nothing.
    pub fn open_existing(url: &str) -> Result<Self, TuneError> {
        Self::connect(url, false)
    }

    fn connect(url: &str, create: bool) -> Result<Self, TuneError> {
        let shown = redact(url);
        let fail = |what: &str, e: Failure| common::open_failed(into_tune(e, &shown, what));
        let mut config: Config = url.parse().map_err(|e: ::postgres::Error| fail("parse URL", e.into()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("gradus");
        }
        // A connection the server ends as it is made (as pg_terminate_backend
        // does) is made again; one refused, or to a wrong address, fails at once.
        let since = Instant::now();
        let mut made = connect(&config);
        while made.as_ref().is_err_and(ended_by_server) && since.elapsed() < RECONNECT_WINDOW {
            std::thread::sleep(Duration::from_millis(50));
            made = connect(&config);
        }
        let mut client = made.map_err(|e| {
            if !missing_database(&e) {
                return fail("connect", e);
            }
            // The URL names a database the server does not have: the
            // input's fault (exit 2), not the server's. (Its name defaults
            // to the user's, as in libpq.)
            let name = config.get_dbname().or(config.get_user()).unwrap_or("?");
            TuneError::InvalidArgument {
                name: "--storage",
                reason: format!("{shown}: the server has no database '{name}' (create it first: createdb {name})"),
            }
        })?;
        // A connection lost while the tables are checked is opened again (a
        // server that answered once is there); one never made fails at once.
        let since = Instant::now();
        loop {
            match migrate(&mut client, create) {
                Ok(()) => break,
                Err(e) if connection_lost(&e) && since.elapsed() < RECONNECT_WINDOW => {
                    std::thread::sleep(Duration::from_millis(50));
                    if let Ok(again) = connect(&config) {
                        client = again;
                    }
                }
                Err(e) => return Err(fail("schema", e)),
            }
        }
        Ok(Self {
            conn: Mutex::new(Connection::new(client)),
            config,
            url: shown,
            reconnect_window: RECONNECT_WINDOW,
            reconnects: AtomicU64::new(0),
        })
    }

    /// The URL of the database, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How long a call keeps reconnecting to a server it lost before it
    /// fails ([`RECONNECT_WINDOW`] unless set).
    pub fn with_reconnect_window(mut self, window: Duration) -> Self {
        self.reconnect_window = window;
        self
    }

    /// How many times a lost connection was opened again.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Makes the next write transaction behave as if the connection broke
    /// at its commit: after the commit took effect (`committed`), or before.
    /// For tests of what a call does when it cannot tell whether its commit
    /// landed, which a real server shows only by chance.
    #[doc(hidden)]
    pub fn lose_connection_at_next_commit(&self, committed: bool) {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).lose_at_commit = Some(committed);
    }

    /// The connection, opened again if it was lost.
    fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        // A panic inside a transaction leaves the connection marked lost
        // (see `attempt`), so a poisoned one is opened again, not reused.
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.lost || conn.client.is_closed() {
            *conn = Connection::new(connect(&self.config)?);
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        Ok(conn)
    }

    /// Runs `f` in a write transaction that holds the write lock (the
    /// counter row) from its start; see the [module docs](self).
    fn write<T>(&self, what: &str, f: impl FnMut(&mut Tx) -> Result<T>) -> Result<T, TuneError> {
        self.transaction(what, false, f)
    }

    /// Runs `f` in a read-only transaction: a consistent snapshot.
    fn read<T>(&self, what: &str, f: impl FnMut(&mut Tx) -> Result<T>) -> Result<T, TuneError> {
        self.transaction(what, true, f)
    }

    /// Runs `f` in a transaction until it commits. A lost connection is
    /// opened again, waiting longer each time, for up to the reconnect
    /// window; then the transaction runs again, unless it was lost at its
    /// commit and the server says that commit took effect, when its result
    /// stands. So a call neither fails because the server went away for a
    /// while nor does its work twice.
    fn transaction<T>(
        &self,
        what: &str,
        read_only: bool,
        mut f: impl FnMut(&mut Tx) -> Result<T>,
    ) -> Result<T, TuneError> {
        let fail = |e| into_tune(e, &self.url, what);
        let since = Instant::now();
        // The first try again is at once (a server that ended one connection
        // usually takes the next), then after 50 ms, 100 ms, ...
        let mut pause = Duration::ZERO;
        let mut wait = |e: Failure| -> Result<(), TuneError> {
            if since.elapsed() + pause > self.reconnect_window {
                return Err(match fail(e) {
                    TuneError::Storage(msg) => TuneError::Storage(format!(
                        "{msg} (the connection was lost; reconnecting failed for {:.0} s)",
                        since.elapsed().as_secs_f64()
                    )),
                    other => other,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
            Ok(())
        };
        // The transaction lost at its commit, and what it returned.
        let mut in_doubt: Option<(i64, T)> = None;
        loop {
            if let Some((xid, _)) = &in_doubt {
                match self.outcome(*xid) {
                    Ok(Some(true)) => return Ok(in_doubt.take().map(|(_, out)| out).expect("in doubt")),
                    Ok(Some(false)) => in_doubt = None,
                    // Still in progress (the server has not yet noticed the
                    // connection is gone), or the server is still away.
                    Ok(None) => wait(Failure::Refused("the server has not yet ended a lost transaction".into()))?,
                    Err(e) if connection_lost(&e) => wait(e)?,
                    Err(e) => return Err(fail(e)),
                }
                continue;
            }
            match self.attempt(read_only, &mut f) {
                Ok(out) => return Ok(out),
                Err(Attempt::Failed(e)) => return Err(fail(e)),
                Err(Attempt::Lost(e)) => wait(e)?,
                Err(Attempt::LostAtCommit(xid, out)) => in_doubt = Some((xid, out)),
            }
        }
    }

    /// Whether transaction `xid` committed (`None` while the server still
    /// runs it).
    fn outcome(&self, xid: i64) -> Result<Option<bool>> {
        let mut conn = self.lock()?;
        let found = conn.client.query_one("SELECT txid_status($1)", &[&xid]);
        let status: Option<String> = found.map_err(|e| lost(&mut conn, e.into()))?.try_get(0)?;
        match status.as_deref() {
            Some("committed") => Ok(Some(true)),
            Some("aborted") => Ok(Some(false)),
            Some("in progress") => Ok(None),
            other => {
                Err(Failure::Refused(format!("the server cannot tell whether transaction {xid} committed ({other:?})")))
            }
        }
    }

    /// Runs `f` in one transaction, trying again after a deadlock or a
    /// serialization failure.
    fn attempt<T>(&self, read_only: bool, f: &mut impl FnMut(&mut Tx) -> Result<T>) -> Result<T, Attempt<T>> {
        let mut conn = self.lock().map_err(Attempt::classify)?;
        let mut retries = 0;
        loop {
            let Connection { client, statements, lost, lose_at_commit } = &mut *conn;
            // BEGIN and, for a write, the write lock and the transaction's id
            // (by which to ask whether it committed should the connection be
            // lost), in one round trip. Until it ends, the connection counts
            // as lost: a panic in `f` leaves it inside the transaction, and
            // the next call then opens a new one (the server rolls back).
            *lost = true;
            let begun = match read_only {
                true => client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").map(|()| Ok(0)),
                false => client.simple_query("BEGIN; SELECT txid_current() FROM counter WHERE id = 1 FOR UPDATE").map(
                    |messages| {
                        let xid = messages.iter().find_map(|m| match m {
                            SimpleQueryMessage::Row(row) => row.get(0).and_then(|x| x.parse::<i64>().ok()),
                            _ => None,
                        });
                        xid.ok_or_else(|| Failure::Corrupt("the counter row is missing".into()))
                    },
                ),
            };
            let body = match begun {
                Ok(xid) => {
                    xid.and_then(|xid| Ok((xid, f(&mut Tx { client: &mut *client, statements: &mut *statements })?)))
                }
                Err(e) => Err(e.into()),
            };
            let (xid, out) = match body {
                Ok(done) => done,
                Err(e) => {
                    // Roll back now: an aborted transaction keeps its locks until then.
                    // (Failing to means the connection is gone, which `e` tells better.)
                    if client.batch_execute("ROLLBACK").is_ok() {
                        *lost = false;
                    }
                    if retry(&e, &mut retries) {
                        continue;
                    }
                    return Err(Attempt::classify(e));
                }
            };
            let committed = match lose_at_commit.take() {
                None => client.batch_execute("COMMIT"),
                Some(took_effect) => {
                    let _ = client.batch_execute(if took_effect { "COMMIT" } else { "ROLLBACK" });
                    return Err(Attempt::LostAtCommit(xid, out));
                }
            };
            if committed.is_ok() {
                *lost = false;
            }
            return match committed.map_err(Failure::from) {
                Ok(()) => Ok(out),
                Err(e) if connection_lost(&e) => {
                    *lost = true;
                    Err(if read_only { Attempt::Lost(e) } else { Attempt::LostAtCommit(xid, out) })
                }
                Err(e) if retry(&e, &mut retries) => continue,
                Err(e) => Err(Attempt::Failed(e)),
            };
        }
    }
}

/// How one try of a transaction ended, when it did not commit.
enum Attempt<T> {
    /// A failure that trying again would not mend.
    Failed(Failure),
    /// The connection was lost before the commit was sent: nothing took effect.
    Lost(Failure),
    /// The connection was lost at the commit of write transaction `.0`,
    /// whose result was `.1`: whether it took effect is for the server to say.
    LostAtCommit(i64, T),
}

impl<T> Attempt<T> {
    /// A failure before the commit: lost if the connection is gone, else final.
    fn classify(e: Failure) -> Self {
        match connection_lost(&e) {
            true => Attempt::Lost(e),
            false => Attempt::Failed(e),
        }
    }
}

/// Whether to run a transaction aborted by `e` again — a deadlock or a
/// serialization failure, at most [`RETRIES`] times — after a short pause.
fn retry(e: &Failure, retries: &mut u32) -> bool {
    if !retryable(e) || *retries >= RETRIES {
        return false;
    }
    *retries += 1;
    std::thread::sleep(Duration::from_millis(2 << (*retries).min(6)));
    true
}

/// Marks the connection lost when `e` says so, and passes `e` on.
fn lost(conn: &mut Connection, e: Failure) -> Failure {
    if connection_lost(&e) {
        conn.lost = true;
    }
    e
}

/// Opens a connection and sets the lock timeout.
fn connect(config: &Config) -> Result<Client> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!("SET lock_timeout = {}", LOCK_TIMEOUT.as_millis()))?;
    Ok(client)
}

/// `url` with its password (in the user info or a `password` parameter)
/// replaced by `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(start) = url.find("://").map(|i| i + 3) {
        // The user info ends at the last '@' before the query (a password
        // may hold a '/').
        let end = url[start..].find('?').map_or(url.len(), |i| start + i);
        if let Some(at) = url[start..end].rfind('@').map(|i| start + i)
            && let Some(colon) = url[start..at].find(':').map(|i| start + i)
        {
            out = format!("{}***{}", &url[..=colon], &url[at..]);
        }
    }
    // `password=...` in the query or in a `key=value` connection string.
    let mut from = 0;
    while let Some(i) = out[from..].find("password=").map(|i| from + i + "password=".len()) {
        let rest = &out[i..];
        let len = if let Some(quoted) = rest.strip_prefix('\'') {
            quoted.find('\'').map_or(rest.len(), |j| j + 2)
        } else {
            rest.find(['&', ' ']).unwrap_or(rest.len())
        };
        out.replace_range(i..i + len, "***");
        from = i + 3;
    }
    out
}

/// Makes the tables in an empty schema, or checks and upgrades existing ones.
fn migrate(client: &mut Client, create: bool) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let schema: Option<String> = tx.query_one("SELECT current_schema()::text", &[])?.try_get(0)?;
    let Some(schema) = schema else {
        return Err(Failure::Refused("its search_path names no schema that exists, to make the tables in".into()));
    };
    let tables: Vec<String> = tx
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1", &[&schema])?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let versioned = tables.iter().any(|t| t == "schema_version");
    let found: Option<i64> = match versioned {
        true => tx.query_one("SELECT MAX(version) FROM schema_version", &[])?.try_get(0)?,
        false => None,
    };
    match found {
        None => {
            if tables.iter().any(|t| t != "schema_version") {
                return Err(Failure::Refused(format!("schema '{schema}': {}", common::FOREIGN_TABLES)));
            }
            if !create {
                return Err(Failure::Refused(format!("no study tables in schema '{schema}' (create a study first)")));
            }
            tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
            tx.batch_execute(SCHEMA_V1)?;
            for step in MIGRATIONS {
                tx.batch_execute(step)?;
            }
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&SCHEMA_VERSION])?;
        }
        Some(v) => {
            for step in &MIGRATIONS[common::pending_migrations(v, SCHEMA_VERSION)?..] {
                tx.batch_execute(step)?;
            }
            if v < SCHEMA_VERSION {
                tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

type Args<'a> = [&'a (dyn ToSql + Sync)];

/// A transaction whose statements are prepared once per connection.
struct Tx<'a> {
    client: &'a mut Client,
    statements: &'a mut HashMap<String, Statement>,
}

impl Tx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, args: &Args) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query(&statement, args)?)
    }

    fn query_opt(&mut self, sql: &str, args: &Args) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_opt(&statement, args)?)
    }

    fn query_one(&mut self, sql: &str, args: &Args) -> Result<Row> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_one(&statement, args)?)
    }

    /// The first column of the one row that `sql` returns.
    fn value<T: for<'r> FromSql<'r>>(&mut self, sql: &str, args: &Args) -> Result<T> {
        Ok(self.query_one(sql, args)?.try_get(0)?)
    }

    fn execute(&mut self, sql: &str, args: &Args) -> Result<u64> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, args)?)
    }
}

/// The id of study `study`, or `UnknownStudy` naming it `#id`.
fn study_key(tx: &mut Tx, study: u64) -> Result<i64> {
    let id = key(study).ok_or_else(|| common::unknown_study(study))?;
    match tx.query_opt("SELECT 1 FROM studies WHERE id = $1", &[&id])? {
        Some(_) => Ok(id),
        None => Err(common::unknown_study(study).into()),
    }
}

/// A CTE that takes the next change number (the caller holds the counter's
/// lock), to use as `(SELECT seq FROM s)` in the statement it heads: one
/// round trip for the change and its number.
const NEXT_SEQ: &str = "WITH s AS (UPDATE counter SET seq = seq + 1 WHERE id = 1 RETURNING seq)";

/// A CTE, after [`NEXT_SEQ`], that marks trial `$1` changed if it is
/// unfinished, as `u (id)`: an INSERT from `u` then writes nothing for a
/// trial that is missing or finished.
const TOUCH_UNFINISHED: &str = "u AS (UPDATE trials SET seq = (SELECT seq FROM s)
    WHERE id = $1 AND state IN ('waiting', 'running') RETURNING id)";

/// Takes the next change number.
fn next_seq(tx: &mut Tx) -> Result<i64> {
    tx.value("UPDATE counter SET seq = seq + 1 WHERE id = 1 RETURNING seq", &[])
}

/// The error for trial `trial_id`, which a write to an unfinished trial
/// found no row for: it does not exist, or it is finished.
fn not_unfinished(tx: &mut Tx, trial_id: u64) -> Failure {
    let mut lookup = || -> Result<Option<(i64, String, Option<f64>)>> {
        let Some(id) = key(trial_id) else { return Ok(None) };
        let row = tx.query_opt("SELECT number, state, value FROM trials WHERE id = $1", &[&id])?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).transpose()
    };
    match lookup().map(|row| common::check_unfinished(trial_id, row)) {
        Err(e) => e,
        Ok(Err(e)) => e.into(),
        Ok(Ok(())) => Failure::Corrupt(format!("trial #{trial_id} is unfinished, yet the write found no row")),
    }
}

/// Runs `sql` — a write to trial `$1` that changes nothing unless it is
/// unfinished, with the change number from [`NEXT_SEQ`] — and fails as the
/// in-memory storage does when it changed nothing.
fn write_unfinished(tx: &mut Tx, trial_id: u64, sql: &str, args: &Args) -> Result<i64> {
    let id = key(trial_id).ok_or_else(|| common::unknown_trial(trial_id))?;
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![&id];
    all.extend_from_slice(args);
    match tx.execute(sql, &all)? {
        0 => Err(not_unfinished(tx, trial_id)),
        _ => Ok(id),
    }
}

/// Claims the oldest waiting trial of `study` numbered below `below`, if
/// any. A trial that another transaction has locked is passed over.
fn claim_waiting(tx: &mut Tx, study: i64, below: i64) -> Result<Option<FrozenTrial>> {
    let sql = format!(
        "{NEXT_SEQ}, c AS (SELECT id FROM trials WHERE study_id = $1 AND state = 'waiting' AND number < $2
                           ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE trials t SET state = 'running', started_at = $3, seq = (SELECT seq FROM s)
         WHERE t.id = (SELECT id FROM c) RETURNING {TRIAL_COLUMNS}"
    );
    tx.query_opt(&sql, &[&study, &below, &now()])?.map(|row| trial_of(&row)).transpose()
}

/// A trial's columns, for a `SELECT` from (or a `RETURNING` of) `trials t`,
/// with its parameters, intermediate values and attributes as JSON arrays
/// (an intermediate value as text, which keeps -0, infinities and every
/// digit): a whole trial in one round trip. [`push_trial`] reads them.
const TRIAL_COLUMNS: &str =
    "t.id, t.number, t.state, t.value, t.fixed_params, t.started_at, t.finished_at, t.heartbeat_at,
    (SELECT json_agg(json_build_array(p.name, p.distribution, p.value))::text FROM params p WHERE p.trial_id = t.id),
    (SELECT json_agg(json_build_array(i.step, i.value::text))::text FROM intermediate i WHERE i.trial_id = t.id),
    (SELECT json_agg(json_build_array(a.name, a.value))::text FROM attrs a WHERE a.trial_id = t.id)";

/// Adds the trial in a row of [`TRIAL_COLUMNS`] to `trials`.
fn push_trial(trials: &mut TrialSet, row: &Row) -> Result<()> {
    let id: i64 = row.try_get(0)?;
    trials.push(TrialRow {
        id,
        number: row.try_get(1)?,
        state: row.try_get(2)?,
        value: row.try_get(3)?,
        fixed_params: row.try_get(4)?,
        started_at: row.try_get(5)?,
        finished_at: row.try_get(6)?,
        heartbeat_at: row.try_get(7)?,
    })?;
    let list = |i: usize| -> Result<Option<String>> { Ok(row.try_get(i)?) };
    if let Some(params) = list(8)? {
        for (name, distribution, value) in common::from_json::<Vec<(String, String, String)>>(&params, "parameters")? {
            trials.add_param(id, name, &distribution, &value)?;
        }
    }
    if let Some(steps) = list(9)? {
        for (step, value) in common::from_json::<Vec<(i64, Option<String>)>>(&steps, "intermediate values")? {
            let value = value
                .map(|v| v.parse::<f64>().map_err(|_| Failure::Corrupt(format!("intermediate value {v:?}"))))
                .transpose()?;
            trials.add_intermediate(id, step, value)?;
        }
    }
    if let Some(attrs) = list(10)? {
        for (name, value) in common::from_json::<Vec<(String, String)>>(&attrs, "attributes")? {
            trials.add_attr(id, name, &value)?;
        }
    }
    Ok(())
}

/// The trial in a row of [`TRIAL_COLUMNS`].
fn trial_of(row: &Row) -> Result<FrozenTrial> {
    let mut trials = TrialSet::default();
    push_trial(&mut trials, row)?;
    trials.into_vec().pop().ok_or_else(|| Failure::Corrupt("a trial row that held no trial".into()))
}

/// The trials that `filter` (an SQL condition on `trials t`, with `args`)
/// selects, in order of id, whole (one query).
fn load_trials(tx: &mut Tx, filter: &str, args: &Args) -> Result<Vec<FrozenTrial>> {
    let mut trials = TrialSet::default();
    for row in tx.query(&format!("SELECT {TRIAL_COLUMNS} FROM trials t WHERE {filter} ORDER BY t.id"), args)? {
        push_trial(&mut trials, &row)?;
    }
    Ok(trials.into_vec())
}

impl Storage for PostgresStorage {
    fn create_study(&self, name: &str, direction: Direction, settings: &Value) -> Result<StudyRecord, TuneError> {
        self.write("create study", |tx| {
            if tx.query_opt("SELECT 1 FROM studies WHERE name = $1", &[&name])?.is_some() {
                return Err(TuneError::StudyExists(name.into()).into());
            }
            let id: i64 = tx.value(
                "INSERT INTO studies (name, direction, settings) VALUES ($1, $2, $3) RETURNING id",
                &[&name, &direction.name(), &to_json(settings)?],
            )?;
            Ok(StudyRecord { id: unsigned(id, "study id")?, name: name.into(), direction, settings: settings.clone() })
        })
    }

    fn load_study(&self, name: &str) -> Result<StudyRecord, TuneError> {
        self.read("load study", |tx| {
            let row = tx.query_opt("SELECT id, direction, settings FROM studies WHERE name = $1", &[&name])?;
            let row = row.ok_or_else(|| TuneError::UnknownStudy(name.into()))?;
            Ok(common::study_record(row.try_get(0)?, name, row.try_get(1)?, row.try_get(2)?)?)
        })
    }

    fn list_studies(&self) -> Result<Vec<StudySummary>, TuneError> {
        self.read("list studies", |tx| {
            let rows = tx.query(
                "SELECT s.name, s.direction, COUNT(t.id), MIN(t.value), MAX(t.value)
                 FROM studies s LEFT JOIN trials t ON t.study_id = s.id
                 GROUP BY s.id ORDER BY s.id",
                &[],
            )?;
            let summary = |row: &Row| -> Result<StudySummary> {
                Ok(common::study_summary(
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    row.try_get(4)?,
                )?)
            };
            rows.iter().map(summary).collect()
        })
    }

    fn delete_study(&self, name: &str) -> Result<(), TuneError> {
        self.write("delete study", |tx| {
            // Its trials, parameters and intermediate values go with it (ON DELETE CASCADE).
            match tx.execute("DELETE FROM studies WHERE name = $1", &[&name])? {
                0 => Err(TuneError::UnknownStudy(name.into()).into()),
                _ => Ok(()),
            }
        })
    }

    fn enqueue_trial(&self, study: u64, params: &BTreeMap<String, Value>) -> Result<u64, TuneError> {
        self.write("enqueue trial", |tx| {
            let study = study_key(tx, study)?;
            let sql = format!(
                "{NEXT_SEQ} INSERT INTO trials (study_id, number, state, fixed_params, seq)
                 SELECT $1, COALESCE(MAX(number) + 1, 0), 'waiting', $2::text, (SELECT seq FROM s)
                 FROM trials WHERE study_id = $1 RETURNING number"
            );
            let number: i64 = tx.value(&sql, &[&study, &to_json(params)?])?;
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
            // The study is looked up only when no trial came of it (a
            // trial's row names its study, which must exist).
            let key = key(study).ok_or_else(|| common::unknown_study(study))?;
            if let Some(trial) = claim_waiting(tx, key, budget)? {
                return Ok(Some(trial));
            }
            if waiting_only {
                study_key(tx, study)?;
                return Ok(None);
            }
            // Numbered after every trial (the counter's lock makes creators
            // count one at a time), if that is below the budget; a new trial
            // has nothing but its row, so it is not read back.
            let started = now();
            let sql = format!(
                "{NEXT_SEQ}, n AS (SELECT COALESCE(MAX(number) + 1, 0) AS number FROM trials WHERE study_id = $1)
                 INSERT INTO trials (study_id, number, state, fixed_params, started_at, seq)
                 SELECT $1, n.number, 'running', '{{}}', $3, (SELECT seq FROM s) FROM n WHERE n.number < $2
                 RETURNING id, number"
            );
            let inserted = tx.query_opt(&sql, &[&key, &budget, &started]).map_err(|e| match e {
                Failure::Db(PgError(e)) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                    common::unknown_study(study).into()
                }
                e => e,
            })?;
            let Some(row) = inserted else {
                study_key(tx, study)?;
                return Ok(None);
            };
            let (id, number): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            let mut trial =
                FrozenTrial::new(unsigned(id, "trial id")?, unsigned(number, "trial number")?, TrialState::Running);
            trial.started_at = Some(started);
            Ok(Some(trial))
        })
    }

    fn claim_waiting_trial(&self, study: u64) -> Result<Option<FrozenTrial>, TuneError> {
        self.write("claim waiting trial", |tx| {
            let key = study_key(tx, study)?;
            claim_waiting(tx, key, i64::MAX)
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
            let sql = format!(
                "{NEXT_SEQ}, {TOUCH_UNFINISHED}
                 INSERT INTO params (trial_id, name, distribution, value) SELECT id, $2::text, $3::text, $4::text FROM u
                 ON CONFLICT (trial_id, name) DO UPDATE SET distribution = EXCLUDED.distribution, value = EXCLUDED.value"
            );
            write_unfinished(tx, trial_id, &sql, &[&name, &to_json(distribution)?, &to_json(value)?])?;
            Ok(())
        })
    }

    fn report(&self, trial_id: u64, step: u64, value: f64) -> Result<(), TuneError> {
        let step = common::step_key(step)?;
        self.write("report", |tx| {
            // PostgreSQL has NaN, but NaN is stored as NULL as in SQLite.
            let sql = format!(
                "{NEXT_SEQ}, {TOUCH_UNFINISHED}
                 INSERT INTO intermediate (trial_id, step, value) SELECT id, $2::bigint, $3::double precision FROM u
                 ON CONFLICT (trial_id, step) DO UPDATE SET value = EXCLUDED.value"
            );
            write_unfinished(tx, trial_id, &sql, &[&step, &nan_as_null(value)])?;
            Ok(())
        })
    }

    fn set_attr(&self, trial_id: u64, name: &str, value: &Value) -> Result<(), TuneError> {
        self.write("set attribute", |tx| {
            let sql = format!(
                "{NEXT_SEQ}, {TOUCH_UNFINISHED}
                 INSERT INTO attrs (trial_id, name, value) SELECT id, $2::text, $3::text FROM u
                 ON CONFLICT (trial_id, name) DO UPDATE SET value = EXCLUDED.value"
            );
            write_unfinished(tx, trial_id, &sql, &[&name, &to_json(value)?])?;
            Ok(())
        })
    }

    fn heartbeat(&self, trial_id: u64) -> Result<(), TuneError> {
        self.write("heartbeat", |tx| {
            let sql = format!(
                "{NEXT_SEQ} UPDATE trials SET heartbeat_at = $2, seq = (SELECT seq FROM s)
                 WHERE id = $1 AND state IN ('waiting', 'running')"
            );
            write_unfinished(tx, trial_id, &sql, &[&now()])?;
            Ok(())
        })
    }

    fn finish_trial(&self, trial_id: u64, state: TrialState) -> Result<FrozenTrial, TuneError> {
        state.check_final(trial_id)?;
        self.write("finish trial", |tx| {
            let sql = format!(
                "{NEXT_SEQ} UPDATE trials t SET state = $2, value = $3, finished_at = $4, seq = (SELECT seq FROM s)
                 WHERE t.id = $1 AND t.state IN ('waiting', 'running') RETURNING {TRIAL_COLUMNS}"
            );
            let id = key(trial_id).ok_or_else(|| common::unknown_trial(trial_id))?;
            match tx.query_opt(&sql, &[&id, &state.name(), &state.value(), &now()])? {
                Some(row) => trial_of(&row),
                None => Err(not_unfinished(tx, trial_id)),
            }
        })
    }

    fn trial(&self, study: u64, number: u64) -> Result<FrozenTrial, TuneError> {
        self.read("load trial", |tx| {
            let study_id = study_key(tx, study)?;
            let found = match key(number) {
                Some(n) => load_trials(tx, "t.study_id = $1 AND t.number = $2", &[&study_id, &n])?.pop(),
                None => None,
            };
            match found {
                Some(trial) => Ok(trial),
                None => {
                    let name: String = tx.value("SELECT name FROM studies WHERE id = $1", &[&study_id])?;
                    Err(TuneError::UnknownTrial { study: name, trial: number }.into())
                }
            }
        })
    }

    fn trials_since(&self, study: u64, cursor: u64) -> Result<TrialsSince, TuneError> {
        self.read("list trials", |tx| {
            let id = key(study).ok_or_else(|| common::unknown_study(study))?;
            // The study's existence and the change counter, in one round trip.
            let row = tx.query_one(
                "SELECT EXISTS (SELECT 1 FROM studies WHERE id = $1), (SELECT seq FROM counter WHERE id = 1)",
                &[&id],
            )?;
            if !row.try_get::<_, bool>(0)? {
                return Err(common::unknown_study(study).into());
            }
            let (study, now_at): (i64, i64) = (id, row.try_get(1)?);
            let after = key(cursor).unwrap_or(i64::MAX);
            let trials = load_trials(tx, "t.study_id = $1 AND t.seq > $2", &[&study, &after])?;
            Ok(TrialsSince { trials, cursor: unsigned(now_at, "change counter")? })
        })
    }

    fn fail_stale_trials(&self, study: u64, max_age: f64) -> Result<Vec<u64>, TuneError> {
        self.write("fail stale trials", |tx| {
            let study = study_key(tx, study)?;
            let now = now();
            let stale = tx.query(
                "SELECT id, number FROM trials
                 WHERE study_id = $1 AND state = 'running' AND COALESCE(heartbeat_at, started_at, 0.0) < $2
                 ORDER BY id",
                &[&study, &(now - max_age)],
            )?;
            let mut numbers = Vec::with_capacity(stale.len());
            for row in stale {
                let (id, number): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                let seq = next_seq(tx)?;
                tx.execute(
                    "UPDATE trials SET state = 'fail', finished_at = $2, seq = $3 WHERE id = $1",
                    &[&id, &now, &seq],
                )?;
                tx.execute(
                    "INSERT INTO attrs (trial_id, name, value) VALUES ($1, $2, $3)
                     ON CONFLICT (trial_id, name) DO UPDATE SET value = EXCLUDED.value",
                    &[&id, &FAIL_REASON, &to_json(&Value::from(WORKER_LOST))?],
                )?;
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
            tx.execute(
                "INSERT INTO study_attrs (study_id, name, value) VALUES ($1, $2, $3)
                 ON CONFLICT (study_id, name) DO UPDATE SET value = EXCLUDED.value",
                &[&study, &name, &to_json(new)?],
            )?;
            Ok(Some(new.clone()))
        })
    }
}

/// The attribute `name` of the study with key `study`.
fn study_attr(tx: &mut Tx, study: i64, name: &str) -> Result<Option<Value>> {
    let row = tx.query_opt("SELECT value FROM study_attrs WHERE study_id = $1 AND name = $2", &[&study, &name])?;
    let text: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
    Ok(text.map(|t| common::from_json(&t, "study attribute")).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_left_out_of_urls() {
        assert_eq!(redact("postgres://u:secret@db.example:5432/g"), "postgres://u:***@db.example:5432/g");
        assert_eq!(
            redact("postgresql://u@h/g?password=secret&sslmode=disable"),
            "postgresql://u@h/g?password=***&sslmode=disable"
        );
        assert_eq!(redact("host=h user=u password='se cret' dbname=g"), "host=h user=u password=*** dbname=g");
        assert_eq!(redact("postgres://u:p@ss@h/g"), "postgres://u:***@h/g");
        assert_eq!(redact("postgres://h:5432/g"), "postgres://h:5432/g");
    }
}
