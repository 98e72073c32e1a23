//! The study commands, run as real processes on a real SQLite file.

use std::path::Path;
use std::process::{Command, Output};

fn gradus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().expect("the gradus binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const SPACE: &str =
    r#"{"x": {"type": "float", "low": -5, "high": 5}, "opt": {"type": "categorical", "choices": ["a", "b"]}}"#;

fn create(dir: &Path, study: &str, extra: &[&str]) {
    // Random sampling keeps these storage and concurrency tests quick.
    let mut args =
        vec!["study", "create", "--study", study, "--direction", "minimize", "--space", SPACE, "--sampler", "random"];
    args.extend_from_slice(extra);
    let out = gradus(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Everything the storage holds, as the CLI shows it.
fn snapshot(dir: &Path) -> String {
    let studies = stdout(&gradus(dir, &["studies", "--json"]));
    let trials = stdout(&gradus(dir, &["trials", "--study", "s", "--format", "json"]));
    format!("{studies}{trials}")
}

#[test]
fn ask_tell_best_and_listings() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), "s", &["--seed", "3"]);
    let asked = json_lines(&gradus(dir.path(), &["ask", "--study", "s"]));
    assert_eq!(asked[0]["trial"], 0);
    assert!(asked[0]["params"]["x"].is_f64() && asked[0]["params"]["opt"].is_string(), "{asked:?}");
    let told = json_lines(&gradus(dir.path(), &["tell", "--study", "s", "--trial", "0", "--value", "-1.5"]));
    assert_eq!((told[0]["state"].as_str(), told[0]["value"].as_f64()), (Some("complete"), Some(-1.5)));
    gradus(dir.path(), &["ask", "--study", "s"]);
    let out = gradus(dir.path(), &["tell", "--study", "s", "--trial", "1", "--state", "pruned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let best = json_lines(&gradus(dir.path(), &["best", "--study", "s"]));
    assert_eq!(best[0]["trial"], 0);
    let csv = stdout(&gradus(dir.path(), &["trials", "--study", "s", "--format", "csv"]));
    assert!(csv.starts_with("trial,state,value,duration,opt,x,fail_reason\n0,complete,-1.5,"), "{csv}");
    let studies = json_lines(&gradus(dir.path(), &["studies", "--json"]));
    assert_eq!((studies[0]["study"].as_str(), studies[0]["trials"].as_u64()), (Some("s"), Some(2)));
}

#[test]
fn csv_listings_quote_parameter_names_and_values_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let space = r#"{"a,b": {"type": "float", "low": 0, "high": 1},
        "say \"hi\"": {"type": "categorical", "choices": ["x,y", "plain"]}}"#;
    let args = ["study", "create", "--study", "s", "--direction", "minimize", "--space", space, "--sampler", "random"];
    assert!(gradus(dir.path(), &args).status.success());
    for _ in 0..3 {
        gradus(dir.path(), &["ask", "--study", "s"]);
    }
    let text = stdout(&gradus(dir.path(), &["trials", "--study", "s", "--format", "csv"]));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, ["trial", "state", "value", "duration", "a,b", "say \"hi\"", "fail_reason"], "{text}");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.len() == 7 && ["x,y", "plain"].contains(&&r[5])), "{text}");
}

#[test]
fn bad_input_exits_2_and_leaves_the_study_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // Before any study exists, a failed create leaves no database behind.
    std::fs::write(dir.path().join("bad.json"), r#"{"x": {"type": "float", "low": 1, "high": "#).unwrap();
    let out =
        gradus(dir.path(), &["study", "create", "--study", "s", "--direction", "minimize", "--space", "bad.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.json: (JSON) line 1"), "{}", stderr(&out));
    assert!(!dir.path().join("gradus.db").exists());

    create(dir.path(), "s", &[]);
    gradus(dir.path(), &["ask", "--study", "s"]);
    gradus(dir.path(), &["tell", "--study", "s", "--trial", "0", "--value", "1"]);
    gradus(dir.path(), &["ask", "--study", "s"]);
    let before = snapshot(dir.path());
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "study",
                "create",
                "--study",
                "t",
                "--direction",
                "minimize",
                "--space",
                r#"{"x": {"type": "float", "low": 2, "high": 1}}"#,
            ],
            "low (2) is greater than high (1)",
        ),
        (
            &[
                "study",
                "create",
                "--study",
                "t",
                "--direction",
                "minimize",
                "--space",
                r#"{"x": {"type": "float", "low": 0, "high": 1, "log": true}}"#,
            ],
            "needs low > 0",
        ),
        (
            &[
                "study",
                "create",
                "--study",
                "t",
                "--direction",
                "minimize",
                "--space",
                r#"{"c": {"type": "categorical", "choices": []}}"#,
            ],
            "at least one choice",
        ),
        (&["study", "create", "--study", "s", "--direction", "minimize"], "a study named 's' already exists"),
        (&["ask", "--study", "nope"], "no study named 'nope'"),
        (&["tell", "--study", "s", "--trial", "0", "--value", "2"], "trial 0 is already finished (complete)"),
        (&["tell", "--study", "s", "--trial", "1", "--value", "abc"], "invalid value 'abc'"),
        (&["tell", "--study", "s", "--trial", "1", "--value", "NaN"], "NaN is not a finite number"),
        (&["tell", "--study", "s", "--trial", "9", "--value", "1"], "no trial 9 in study 's'"),
    ];
    for (args, expected) in cases {
        let out = gradus(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
        assert_eq!(snapshot(dir.path()), before, "{args:?} changed the storage");
    }
    // An ask whose space does not hold a waiting trial's fixed value: found
    // before the trial is claimed, which stays waiting (it was left running
    // with no parameters).
    let grid = r#"{"x": {"type": "int", "low": 0, "high": 1}}"#;
    let args = ["study", "create", "--study", "g", "--direction", "minimize", "--sampler", "grid", "--space", grid];
    assert!(gradus(dir.path(), &args).status.success());
    let listing = || stdout(&gradus(dir.path(), &["trials", "--study", "g", "--format", "json"]));
    let before = listing();
    let out = gradus(dir.path(), &["ask", "--study", "g", "--space", r#"{"x": {"type": "int", "low": 5, "high": 6}}"#]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("waits with x = "), "{}", stderr(&out));
    assert_eq!(listing(), before, "no trial claimed or started");
    // A command that is not the storage's creator never makes a database.
    let out = gradus(dir.path(), &["studies", "--storage", "sqlite:other.db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("other.db").exists());
}

#[test]
fn run_reads_the_last_number_or_a_regex_and_fails_nonzero_exits() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), "s", &[]);
    let out = gradus(dir.path(), &["run", "--study", "s", "--trials", "4", "--", "echo", "loss", "{x}", "opt={opt}"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for line in json_lines(&out) {
        assert_eq!(line["state"], "complete");
        assert_eq!(line["value"], line["params"]["x"], "echo prints x last among numbers");
    }
    let out = gradus(
        dir.path(),
        &["run", "--study", "s", "--trials", "6", "--metric-regex", r"score (\S+) ", "--", "echo", "score 7 then {x}"],
    );
    assert!(json_lines(&out).iter().all(|l| l["value"] == 7.0), "{}", stdout(&out));
    // --trials counts the study's trials: 8 is 2 more.
    let out = gradus(dir.path(), &["run", "--study", "s", "--trials", "8", "--", "false"]);
    assert!(json_lines(&out).iter().all(|l| l["state"] == "fail"), "{}", stdout(&out));
    // Nothing completed: exit 1, saying why.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("none of the 2 trials this run started completed: 'false' exited with"));
    // The child's stderr reaches the user, and its last lines are the trial's failure reason.
    let args = ["run", "--study", "s", "--trials", "9", "--", "sh", "-c", "echo first >&2; echo boom {x} >&2; exit 3"];
    let out = gradus(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("boom"), "passed through: {}", stderr(&out));
    let reason = json_lines(&out)[0]["fail_reason"].as_str().unwrap().to_string();
    assert!(reason.starts_with("'sh' exited with exit status: 3: first | boom "), "{reason}");
    let stored = json_lines(&gradus(dir.path(), &["trials", "--study", "s", "--format", "json"]));
    assert_eq!(stored.last().unwrap()["fail_reason"], reason.as_str());
    let out = gradus(dir.path(), &["run", "--study", "s", "--trials", "1", "--", "echo", "{lr}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the command names {lr}, which the study's space does not have"), "{}", stderr(&out));
}

#[test]
fn run_passes_parameters_safely_in_the_environment_and_a_file_and_warns_of_shell_substitution() {
    let dir = tempfile::tempdir().unwrap();
    let space = r#"{"x": {"type": "float", "low": 1, "high": 2},
        "cmd": {"type": "categorical", "choices": ["$(touch pwned)"]}}"#;
    let args = ["study", "create", "--study", "s", "--direction", "minimize", "--space", space, "--sampler", "random"];
    assert!(gradus(dir.path(), &args).status.success());
    // From the environment: the value is data, never code.
    let script = r#"test "$GRADUS_PARAM_CMD" = '$(touch pwned)' && grep -q pwned "$GRADUS_PARAMS_FILE" && printf '%s\n' "$GRADUS_PARAM_X""#;
    let out = gradus(dir.path(), &["run", "--study", "s", "--trials", "2", "--", "sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    for line in json_lines(&out) {
        assert_eq!(line["state"], "complete", "{line}");
        assert_eq!(line["value"], line["params"]["x"]);
    }
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(!dir.path().join("pwned").exists());
    // Substituted into the script, it is code: the run warns before it starts.
    let out = gradus(dir.path(), &["run", "--study", "s", "--trials", "3", "--", "sh", "-c", "echo {cmd} {x}"]);
    assert!(
        stderr(&out).contains("warning: {cmd} is substituted into a shell script (-c)")
            && stderr(&out).contains("$GRADUS_PARAM_CMD"),
        "{}",
        stderr(&out)
    );
}

fn run_in_parallel(dir: &Path, processes: usize, trials: &str, command: &[&str]) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..processes)
        .map(|_| {
            let mut args = vec!["run", "--study", "s", "--trials", trials, "--"];
            args.extend_from_slice(command);
            Command::new(env!("CARGO_BIN_EXE_gradus"))
                .args(&args)
                .current_dir(dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut lines = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("locked"), "{}", stderr(&out));
        lines.extend(json_lines(&out));
    }
    lines
}

#[test]
fn three_processes_share_one_study_without_losing_or_repeating_a_trial() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), "s", &[]);
    // --trials is the study's: three processes asking for 300 run 300 between them.
    let reported = run_in_parallel(dir.path(), 3, "300", &["echo", "{x}"]);
    assert_eq!(reported.len(), 300);
    let trials = json_lines(&gradus(dir.path(), &["trials", "--study", "s", "--format", "json"]));
    let numbers: Vec<u64> = trials.iter().map(|t| t["trial"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..300).collect::<Vec<_>>(), "numbers 0..299, each once");
    assert!(trials.iter().all(|t| t["state"] == "complete" && t["value"] == t["params"]["x"]), "no lost result");
}

#[test]
fn three_processes_evaluate_every_grid_point_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let space =
        r#"{"a": {"type": "int", "low": 0, "high": 9}, "b": {"type": "categorical", "choices": ["x", "y", "z"]}}"#;
    let out = gradus(
        dir.path(),
        &["study", "create", "--study", "s", "--direction", "minimize", "--space", space, "--sampler", "grid"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    run_in_parallel(dir.path(), 3, "100", &["echo", "{a}", "{b}"]);
    let trials = json_lines(&gradus(dir.path(), &["trials", "--study", "s", "--format", "json"]));
    let mut points: Vec<String> = trials.iter().map(|t| t["params"].to_string()).collect();
    assert_eq!(points.len(), 30, "the three processes stop once the 30 points are taken");
    points.sort();
    points.dedup();
    assert_eq!(points.len(), 30, "each point once");
}

#[test]
fn a_restarted_process_fails_at_once_the_trials_of_a_killed_one_on_the_same_machine() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), "s", &[]);
    let mut killed = Command::new(env!("CARGO_BIN_EXE_gradus"))
        .args(["run", "--study", "s", "--trials", "1", "--", "sh", "-c", "sleep 20; echo 1"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || json_lines(&gradus(dir.path(), &["trials", "--study", "s", "--format", "json"]));
    let started = std::time::Instant::now();
    while running().first().is_none_or(|t| t["state"] != "running") {
        assert!(started.elapsed().as_secs() < 10, "the trial starts");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    // Long before the 120 s grace, the next process on this machine sees the worker gone.
    let out = gradus(dir.path(), &["run", "--study", "s", "--trials", "2", "--", "echo", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trials = running();
    assert_eq!(trials[0]["state"], "fail", "{trials:?}");
    let reason = trials[0]["fail_reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("worker lost (process {} on ", killed.id())), "{reason}");
    assert_eq!(trials[1]["state"], "complete");
    // The interval and the grace are settings, checked before anything runs.
    let out = gradus(dir.path(), &["run", "--study", "s", "--trials", "3", "--grace", "5", "--", "echo", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the grace (5 s) must be longer than the heartbeat interval (10 s)"));
    assert_eq!(running().len(), 2, "nothing ran");
}

/// Whether process `pid` is gone (or a zombie no one has reaped yet).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

/// Starts `run` on a command that writes its pid, starts a sleeper of its
/// own in the background and waits; returns `run`, the command's pid and
/// its sleeper's once its trial is running. The caller waits for `run`.
#[allow(clippy::zombie_processes)]
fn run_a_sleeper(dir: &Path) -> (std::process::Child, u32, u32) {
    let script = "sleep 30 & echo $! > grandchild.pid; echo $$ > sleeper.pid; wait; echo 1";
    let mut run = Command::new(env!("CARGO_BIN_EXE_gradus"))
        .args(["run", "--study", "s", "--trials", "3", "--", "sh", "-c", script])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("sleeper.pid"))
            && let Ok(pid) = text.trim().parse()
        {
            let grandchild = std::fs::read_to_string(dir.join("grandchild.pid")).unwrap().trim().parse().unwrap();
            return (run, pid, grandchild);
        }
        if started.elapsed().as_secs() >= 10 {
            let _ = run.kill();
            let _ = run.wait();
            panic!("the command did not start");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn interrupting_run_ends_its_commands_and_fails_their_trials_and_killing_it_kills_them() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), "s", &[]);
    let (run, sleeper, grandchild) = run_a_sleeper(dir.path());
    let interrupted = std::time::Instant::now();
    assert!(Command::new("kill").args(["-INT", &run.id().to_string()]).status().unwrap().success());
    let out = run.wait_with_output().unwrap();
    // The command sleeps 30 s: run ended it rather than waiting for it.
    assert!(interrupted.elapsed().as_secs() < 10, "run waited {:?} for its command", interrupted.elapsed());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(gone(sleeper), "the command was ended with run");
    let started = std::time::Instant::now();
    while !gone(grandchild) {
        assert!(
            started.elapsed().as_secs() < 5,
            "what the command started outlived it: its process group was not ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let trials = json_lines(&gradus(dir.path(), &["trials", "--study", "s", "--format", "json"]));
    assert_eq!(trials.len(), 1, "no trial started after the interrupt: {trials:?}");
    assert_eq!((trials[0]["state"].as_str(), trials[0]["fail_reason"].as_str()), (Some("fail"), Some("interrupted")));

    // SIGKILL leaves run no chance to act: the kernel ends the command.
    std::fs::remove_file(dir.path().join("sleeper.pid")).unwrap();
    let (mut run, sleeper, grandchild) = run_a_sleeper(dir.path());
    run.kill().unwrap();
    run.wait().unwrap();
    let started = std::time::Instant::now();
    while !gone(sleeper) {
        assert!(started.elapsed().as_secs() < 5, "the command outlived a killed run");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The kernel ends the command alone (PR_SET_PDEATHSIG); what it started is tidied here.
    let _ = Command::new("kill").arg(grandchild.to_string()).status();
}
