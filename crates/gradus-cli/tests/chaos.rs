//! One study, many workers, and a driver that kills them: 4 `gradus run` and
//! 2 `gradus tune` processes share a study of 200 trials while a random
//! worker is SIGKILLed (and started again) every second or so and — on
//! PostgreSQL — the workers' database connections are ended every 300 ms.
//! Afterwards every value a worker reported is stored once and as reported,
//! trial numbers are unique, nothing is left running, every trial of a
//! killed worker that did not finish was failed as "worker lost", and one
//! final model was made, by one process.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

#[cfg(feature = "postgres")]
#[path = "../../gradus-store/tests/common/pg.rs"]
mod pg;

const TRIALS: usize = 200;
/// The most the whole test may take.
const LIMIT: Duration = Duration::from_secs(240);

/// A worker process, with the JSON lines it printed and whether it was killed.
struct Worker {
    kind: &'static str,
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    killed: bool,
    /// Its stdout and stderr, for messages.
    stdout_text: Arc<Mutex<String>>,
}

fn start(kind: &'static str, dir: &Path, storage: &str) -> Worker {
    let gradus = env!("CARGO_BIN_EXE_gradus");
    let mut command = Command::new(gradus);
    let beat = ["--heartbeat", "0.5", "--grace", "3"];
    match kind {
        "tune" => {
            command.args(["tune", "--data", "builtin:iris", "--trials", &TRIALS.to_string(), "--jobs", "1"]).args([
                "--epochs",
                "30",
                "--valid-fraction",
                "0.3",
                "--ensemble",
                "2",
                "--storage",
                storage,
                "--study",
                "chaos",
                "--out",
                "model.gradus",
                "--json",
            ])
        }
        // A command that computes its value from the trial's parameter (passed
        // in the environment), so that a mix-up would show.
        _ => command.args(["run", "--study", "chaos", "--trials", &TRIALS.to_string(), "--storage", storage]).args([
            "--",
            "sh",
            "-c",
            "sleep 0.4; echo \"5.$GRADUS_TRIAL\"",
        ]),
    };
    command.args(beat).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout_text = Arc::new(Mutex::new(String::new()));
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let t = stdout_text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            t.lock().unwrap().push_str(&format!("stderr: {line}\n"));
        }
    });
    let (l, t) = (lines.clone(), stdout_text.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            t.lock().unwrap().push_str(&format!("{line}\n"));
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                l.lock().unwrap().push(v);
            }
        }
    });
    Worker { kind, child, lines, killed: false, stdout_text }
}

fn gradus_json(dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A random number below `n` (the test needs no quality, only variety).
fn below(n: usize, state: &mut u64) -> usize {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % n as u64) as usize
}

/// Runs the workers under attack until the study's trials are all finished
/// and every worker has ended; `end_connections` ends the workers' database
/// connections (PostgreSQL). Checks what the module docs promise.
fn chaos(storage: &str, end_connections: Option<&dyn Fn() -> u64>) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // The first tune worker creates the study (with its space); the run
    // workers need it to exist.
    let mut workers = vec![start("tune", dir.path(), storage)];
    let made = || {
        let out = Command::new(env!("CARGO_BIN_EXE_gradus"))
            .args(["studies", "--storage", storage, "--json"])
            .output()
            .unwrap();
        out.status.success() && !out.stdout.is_empty()
    };
    while !made() {
        assert!(started.elapsed() < Duration::from_secs(30), "the study was never made");
        std::thread::sleep(Duration::from_millis(50));
    }
    workers.push(start("tune", dir.path(), storage));
    for _ in 0..4 {
        workers.push(start("run", dir.path(), storage));
    }
    let trials = || gradus_json(dir.path(), &["trials", "--study", "chaos", "--storage", storage, "--format", "json"]);
    let finished = |ts: &[Value]| ts.iter().filter(|t| t["state"] != "running" && t["state"] != "waiting").count();
    let (mut rng, mut kills, mut ended) = (0x9e37_79b9_7f4a_7c15u64, 0, 0);
    let mut last_kill = Instant::now();
    // Attack while trials remain; then stop, and let every worker end.
    while finished(&trials()) < TRIALS {
        assert!(started.elapsed() < LIMIT, "the study did not finish under attack in {LIMIT:?}");
        if let Some(end) = end_connections {
            ended += end();
        }
        if last_kill.elapsed() >= Duration::from_millis(1000) {
            last_kill = Instant::now();
            let live: Vec<usize> = (0..workers.len()).filter(|&i| !workers[i].killed).collect();
            let i = live[below(live.len(), &mut rng)];
            if workers[i].child.try_wait().unwrap().is_none() {
                workers[i].child.kill().unwrap();
                workers[i].child.wait().unwrap();
                workers[i].killed = true;
                kills += 1;
                let kind = workers[i].kind;
                workers.push(start(kind, dir.path(), storage));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for w in workers.iter_mut().filter(|w| !w.killed) {
        loop {
            if let Some(status) = w.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let text = w.stdout_text.lock().unwrap().clone();
                let text = text.lines().filter(|l| !l.starts_with('{')).collect::<Vec<_>>().join("\n");
                assert!(status.success(), "a {} worker exited with {status}: {text}", w.kind);
                break;
            }
            assert!(started.elapsed() < LIMIT + Duration::from_secs(60), "a {} worker did not end", w.kind);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    std::thread::sleep(Duration::from_millis(200)); // the readers drain the pipes
    assert!(kills >= 3, "only {kills} workers were killed");
    if end_connections.is_some() {
        assert!(ended >= 10, "only {ended} connections were ended");
    }

    // Trial numbers unique, 0 .. 200, none left running or waiting.
    let stored = trials();
    let numbers: Vec<u64> = stored.iter().map(|t| t["trial"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..TRIALS as u64).collect::<Vec<_>>());
    assert_eq!(finished(&stored), TRIALS, "trials left unfinished");
    let by_number: BTreeMap<u64, &Value> = stored.iter().map(|t| (t["trial"].as_u64().unwrap(), t)).collect();

    // Every value a worker reported is stored as reported, and no trial was
    // reported twice.
    let mut reported = BTreeSet::new();
    for w in &workers {
        for line in w
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.get("trial").is_some() && (l.get("event").is_none() || l["event"] == "trial"))
        {
            let n = line["trial"].as_u64().unwrap();
            assert!(reported.insert(n), "trial {n} reported twice");
            let t = by_number[&n];
            assert_eq!((&t["state"], &t["value"]), (&line["state"], &line["value"]), "trial {n}");
            if w.kind == "run" && line["state"] == "complete" {
                assert_eq!(line["value"].as_f64().unwrap(), format!("5.{n}").parse::<f64>().unwrap(), "trial {n}");
            }
        }
    }
    // A trial no worker reported was failed as "worker lost", or finished
    // by a worker killed before it could say; and a kill did land mid-trial.
    let killed: BTreeSet<u64> = workers.iter().filter(|w| w.killed).map(|w| u64::from(w.child.id())).collect();
    let mut lost = 0;
    for n in numbers.iter().filter(|n| !reported.contains(n)) {
        let t = by_number[n];
        let reason = t["fail_reason"].as_str().unwrap_or("");
        let by_killed = t["worker"]["pid"].as_u64().is_some_and(|pid| killed.contains(&pid));
        if t["state"] == "fail" && reason.starts_with("worker lost") {
            lost += 1;
            assert!(by_killed || t["worker"].is_null(), "trial {n} failed as lost, yet its worker lives: {t}");
        } else {
            assert!(by_killed, "trial {n}: finished by a live worker that did not say: {t}");
        }
    }
    assert!(lost > 0, "no kill landed during a trial");

    // One final model, made by one process; every other tune worker said who.
    let model = dir.path().join("model.gradus");
    assert!(model.exists(), "no final model");
    let made: Vec<&Worker> = workers
        .iter()
        .filter(|w| !w.killed && w.lines.lock().unwrap().iter().any(|l| l["event"] == "summary"))
        .collect();
    assert_eq!(made.len(), 1, "final models made by {} processes", made.len());
    for w in workers.iter().filter(|w| !w.killed && w.kind == "tune") {
        let lines = w.lines.lock().unwrap();
        let last = lines.last().unwrap_or_else(|| panic!("a tune worker said nothing"));
        assert!(last["event"] == "summary" || last["event"] == "finalised_elsewhere", "{last}");
    }
    let predictions = PathBuf::from(dir.path()).join("p.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_gradus"))
        .args(["predict", "--model", "model.gradus", "--data", "builtin:iris", "--out"])
        .arg(&predictions)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "the final model does not predict: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!(
        "{TRIALS} trials in {:.0} s: {kills} workers killed, {ended} connections ended, {} trials failed as worker lost",
        started.elapsed().as_secs_f64(),
        lost
    );
}

#[test]
fn six_workers_on_sqlite_survive_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("chaos.db").display());
    chaos(&url, None);
}

#[cfg(feature = "postgres")]
#[test]
fn six_workers_on_postgres_survive_being_killed_and_losing_their_connections() {
    let db = pg::TestDb::new();
    let mut admin = db.client();
    let end = move || -> u64 {
        let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'gradus'";
        admin.query(sql, &[]).map_or(0, |rows| rows.len() as u64)
    };
    let end = std::sync::Mutex::new(end);
    chaos(db.url(), Some(&|| (end.lock().unwrap())()));
}
