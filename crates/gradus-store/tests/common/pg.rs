//! A fresh PostgreSQL database for each test, made through the server that
//! `GRADUS_TEST_POSTGRES` names (by default the local one CI runs) and
//! dropped afterwards, so that tests run in parallel and again and again.
//! Without a server the tests fail, saying so: they are never skipped.

use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::{Client, NoTls};

/// The variable naming the server: a URL whose user may create databases.
pub const SERVER_VAR: &str = "GRADUS_TEST_POSTGRES";
pub const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the server's administration database.
pub fn server_url() -> String {
    std::env::var(SERVER_VAR).unwrap_or_else(|_| DEFAULT_SERVER.to_string())
}

/// `url` with its database name replaced by `dbname`.
pub fn with_dbname(url: &str, dbname: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let query = url[start..].find('?').map_or(url.len(), |i| start + i);
    let path = url[start..query].find('/').map_or(query, |i| start + i);
    format!("{}/{dbname}{}", &url[..path], &url[query..])
}

fn admin() -> Client {
    let url = server_url();
    Client::connect(&url, NoTls).unwrap_or_else(|e| {
        let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
        panic!(
            "these tests need PostgreSQL, and it is not reachable at {url} ({e}{cause}); start it, or set \
             {SERVER_VAR} to the URL of a server whose user may create databases"
        )
    })
}

/// A database of its own, dropped with this value.
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("gradus_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let mut admin = admin();
        // One left by an earlier run of a process with the same id would be in the way.
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("create {name}: {e:?}"));
        let url = with_dbname(&server_url(), &name);
        Self { name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection of its own to this database, to look behind the storage.
    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // WITH (FORCE) closes connections that a failed test left open.
        let dropped = Client::connect(&server_url(), NoTls)
            .and_then(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)));
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
