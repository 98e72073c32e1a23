//! Several processes share one study: the test binary runs itself three
//! times as a child (`child_worker`, selected by an environment variable);
//! the children race to create the database and the study, then each creates
//! and finishes 100 trials. Once for an SQLite file, and once for a
//! PostgreSQL database (with the `postgres` feature).

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gradus_tune::{Direction, TrialState, TuneError};
use serde_json::json;

/// The storage URL a child works on; unset in the parent.
const CHILD_STORAGE: &str = "GRADUS_STORE_CHILD_STORAGE";
/// When the children start, in milliseconds since the Unix epoch, so that
/// they run at the same time.
const CHILD_START: &str = "GRADUS_STORE_CHILD_START";
const CHILDREN: u64 = 3;
const TRIALS_PER_CHILD: u64 = 100;

fn millis_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The child's work; does nothing when run as an ordinary test.
#[test]
fn child_worker() {
    let Ok(url) = std::env::var(CHILD_STORAGE) else { return };
    let start: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    std::thread::sleep(Duration::from_millis(start.saturating_sub(millis_now())));

    let s = gradus_store::open(&url, true).unwrap_or_else(|e| panic!("open: {e}"));
    let study = match s.create_study("shared", Direction::Minimize, &json!(null)) {
        Ok(study) => study.id,
        Err(TuneError::StudyExists(_)) => s.load_study("shared").unwrap_or_else(|e| panic!("load study: {e}")).id,
        Err(e) => panic!("create study: {e}"),
    };
    let mut numbers = Vec::new();
    for _ in 0..TRIALS_PER_CHILD {
        let t = s.create_trial(study).unwrap_or_else(|e| panic!("create trial: {e}"));
        s.finish_trial(t.id, TrialState::Complete(t.number as f64))
            .unwrap_or_else(|e| panic!("finish trial {}: {e}", t.number));
        numbers.push(t.number);
        if t.number % 2 == 0 {
            // Half the time, "evaluate the objective" so that the others get the lock.
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    // How often another process took the next number: evidence that the children overlapped.
    let interleaved = numbers.windows(2).filter(|w| w[1] != w[0] + 1).count();
    println!("child {} finished {TRIALS_PER_CHILD} trials, interleaved {interleaved} times", std::process::id());
}

/// Runs the children on the storage at `url`, then checks that every trial
/// number was handed out exactly once.
fn children_share(url: &str) {
    let start = millis_now() + 500;
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
                .env(CHILD_STORAGE, url)
                .env(CHILD_START, start.to_string())
                .output_async()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "child {i} failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed") && stdout.contains("finished"), "child {i} did not run:\n{stdout}");
        assert!(!format!("{stdout}{stderr}").contains("locked"), "child {i}:\n{stdout}\n{stderr}");
        if let Some(line) = stdout.lines().find(|l| l.contains("interleaved")) {
            println!("{line}");
        }
    }

    let s = gradus_store::open(url, false).unwrap();
    let study = s.load_study("shared").unwrap().id;
    let trials = s.trials_since(study, 0).unwrap().trials;
    let mut numbers: Vec<u64> = trials.iter().map(|t| t.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..CHILDREN * TRIALS_PER_CHILD).collect::<Vec<_>>());
    for t in &trials {
        assert_eq!(t.state, TrialState::Complete(t.number as f64), "trial {}", t.number);
    }
    assert_eq!(s.list_studies().unwrap()[0].n_trials, CHILDREN * TRIALS_PER_CHILD);
}

#[test]
fn processes_sharing_a_file_never_get_the_same_trial() {
    if std::env::var_os(CHILD_STORAGE).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    children_share(&format!("sqlite:{}", dir.path().join("shared.db").display()));
}

#[cfg(feature = "postgres")]
#[test]
fn processes_sharing_a_postgres_database_never_get_the_same_trial() {
    if std::env::var_os(CHILD_STORAGE).is_some() {
        return;
    }
    let db = common::pg::TestDb::new();
    children_share(db.url());
}

/// `Command::spawn` with the output captured.
trait SpawnPiped {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}
