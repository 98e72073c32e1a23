//! The tuning commands: `study create`, `ask`, `tell`, `run`, `studies`,
//! `trials`, `best`. Studies live in a storage named by URL
//! (`sqlite:PATH`, default `sqlite:gradus.db`, or `postgres://...`).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use gradus::tune::{
    Direction, FrozenTrial, PrunerSpec, SamplerSpec, Schedule, SearchSpace, Storage, Study, StudySettings, TrialFailure,
};
use serde_json::{Value, json};

use crate::outln;

/// Where studies are stored.
#[derive(Args, Clone)]
pub struct StorageArg {
    /// The storage: sqlite:PATH (one file, safe for several processes) or
    /// postgres://USER@HOST/DBNAME (a database shared across machines).
    #[arg(long, default_value = "sqlite:gradus.db", value_name = "URL")]
    storage: String,
}

impl StorageArg {
    /// Opens an existing storage; only `study create` may create one.
    pub(crate) fn open(&self, create: bool) -> anyhow::Result<Arc<dyn Storage>> {
        Ok(gradus::store::open(&self.storage, create)?)
    }
}

/// How a process running trials shows it is alive, and how long others wait
/// before they fail its trials as dead.
#[derive(Args, Clone)]
pub struct HeartbeatArg {
    /// Seconds between heartbeats of each running trial.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    heartbeat: f64,
    /// Seconds without a heartbeat before another process fails a running
    /// trial as "worker lost" (a trial of an ended process on the same
    /// machine is failed at once).
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    grace: f64,
}

impl HeartbeatArg {
    /// The interval and the grace, checked (call before touching the storage).
    pub(crate) fn durations(&self) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
        let seconds = |name: &str, v: f64| {
            std::time::Duration::try_from_secs_f64(v)
                .map_err(|_| anyhow::anyhow!("--{name} {v} is not a number of seconds"))
        };
        let (every, grace) = (seconds("heartbeat", self.heartbeat)?, seconds("grace", self.grace)?);
        gradus::tune::check_heartbeat(every, grace)?;
        Ok((every, grace))
    }

    /// `study` with these settings.
    pub(crate) fn apply(&self, study: Study) -> anyhow::Result<Study> {
        let (every, grace) = self.durations()?;
        Ok(study.with_heartbeat(every, grace)?)
    }
}

#[derive(Subcommand)]
pub enum StudyCommand {
    /// Create a study.
    Create(CreateArgs),
    /// Delete a study and its trials.
    Delete {
        #[arg(long)]
        study: String,
        #[command(flatten)]
        storage: StorageArg,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    #[arg(long)]
    study: String,
    #[arg(long, value_enum)]
    direction: DirectionArg,
    /// The search space: a JSON or TOML file, or inline JSON.
    #[arg(long, value_name = "FILE|JSON")]
    space: Option<String>,
    /// auto: GP for the first 100 trials, then TPE (see BENCHMARKS.md).
    #[arg(long, value_enum, default_value = "auto")]
    sampler: SamplerArg,
    #[arg(long, value_enum, default_value = "none")]
    pruner: PrunerArg,
    /// Seeds the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    storage: StorageArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum DirectionArg {
    Minimize,
    Maximize,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SamplerArg {
    Auto,
    Random,
    Grid,
    Sobol,
    Tpe,
    Cmaes,
    Gp,
}

/// How trials are handed to threads (`--schedule`).
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ScheduleArg {
    /// Each trial waits for the earlier trials it must see, so a seed gives
    /// the same study every run at a given --jobs.
    Ordered,
    /// Each trial starts as soon as a thread is free: no waiting, but the
    /// study varies from run to run with more than one thread.
    Greedy,
}

impl From<ScheduleArg> for Schedule {
    fn from(arg: ScheduleArg) -> Self {
        match arg {
            ScheduleArg::Ordered => Schedule::Ordered,
            ScheduleArg::Greedy => Schedule::Greedy,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PrunerArg {
    None,
    Median,
    Asha,
    Hyperband,
}

impl SamplerArg {
    pub(crate) fn spec(self, seed: u64) -> SamplerSpec {
        match self {
            SamplerArg::Auto => SamplerSpec::Auto { seed },
            SamplerArg::Random => SamplerSpec::Random { seed },
            SamplerArg::Grid => SamplerSpec::Grid { seed },
            SamplerArg::Sobol => SamplerSpec::Sobol { seed },
            SamplerArg::Tpe => SamplerSpec::Tpe { seed },
            SamplerArg::Cmaes => SamplerSpec::Cmaes { seed },
            SamplerArg::Gp => SamplerSpec::Gp { seed },
        }
    }
}

impl PrunerArg {
    /// The pruner, with Hyperband's brackets spanning `max_resource` steps,
    /// no judgement before step `warmup` (0: from the first report; the
    /// median pruner's warm-up, the first rung of ASHA and Hyperband, which
    /// is at least 1), and ASHA waiting for `n_startup_trials` complete
    /// trials (the median pruner waits for 5).
    pub(crate) fn spec(self, warmup: u64, max_resource: u64, n_startup_trials: usize) -> PrunerSpec {
        let min_resource = warmup.max(1);
        match self {
            PrunerArg::None => PrunerSpec::None,
            PrunerArg::Median => PrunerSpec::Median { n_warmup_steps: warmup },
            PrunerArg::Asha => PrunerSpec::Asha { min_resource, reduction_factor: 3, n_startup_trials },
            PrunerArg::Hyperband => PrunerSpec::Hyperband {
                min_resource,
                max_resource: max_resource.max(min_resource),
                reduction_factor: 3,
            },
        }
    }
}

/// A space given inline (`{...}`) or as a file.
pub(crate) fn read_space(arg: &str) -> anyhow::Result<SearchSpace> {
    Ok(if arg.trim_start().starts_with('{') { SearchSpace::parse(arg, "--space")? } else { SearchSpace::load(arg)? })
}

pub fn run_study(command: StudyCommand) -> anyhow::Result<()> {
    match command {
        StudyCommand::Create(args) => {
            let space = args.space.as_deref().map(read_space).transpose()?;
            let settings = StudySettings {
                sampler: args.sampler.spec(args.seed),
                pruner: args.pruner.spec(0, 81, 0),
                space,
                objective: None,
            };
            // Build the plug-ins before touching the storage: a bad space
            // or a grid without one leaves no half-made study behind.
            settings.sampler()?;
            settings.pruner()?;
            let direction = match args.direction {
                DirectionArg::Minimize => Direction::Minimize,
                DirectionArg::Maximize => Direction::Maximize,
            };
            let storage = args.storage.open(true)?;
            let study = Study::create_with_settings(storage, &args.study, direction, &settings)?;
            outln!("{}", json!({"study": study.name(), "direction": direction, "settings": settings}));
        }
        StudyCommand::Delete { study, storage } => {
            storage.open(false)?.delete_study(&study)?;
            outln!("{}", json!({"deleted": study}));
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct AskArgs {
    #[arg(long)]
    study: String,
    /// The space to suggest from [default: the study's own].
    #[arg(long, value_name = "FILE|JSON")]
    space: Option<String>,
    #[command(flatten)]
    storage: StorageArg,
}

/// Starts a trial and suggests every parameter of the space. What the
/// caller got wrong — a waiting trial's fixed value that the space does
/// not hold — is found before any trial starts, so the storage is left as
/// it was; a failure after that fails the trial it started, with the
/// reason, rather than leaving it running with no parameters.
fn ask_params(study: &Study, space: &SearchSpace) -> anyhow::Result<(u64, BTreeMap<String, Value>)> {
    for waiting in study.trials()?.iter().filter(|t| t.state == gradus::tune::TrialState::Waiting) {
        for (name, value) in &waiting.fixed_params {
            if let Some(d) = space.0.get(name) {
                d.to_internal(name, value).with_context(|| {
                    format!("trial {} waits with {name} = {value}, which this space does not hold", waiting.number)
                })?;
            }
        }
    }
    let mut trial = study.ask()?;
    for (name, dist) in space.iter() {
        if let Err(e) = trial.suggest(name, dist.clone()) {
            let number = trial.number();
            study.tell(trial, Err(TrialFailure::Failed(e.to_string())))?;
            return Err(anyhow::Error::from(e).context(format!("trial {number} failed")));
        }
    }
    Ok((trial.number(), trial.params().clone()))
}

fn study_space(settings: &StudySettings, given: Option<&str>) -> anyhow::Result<SearchSpace> {
    match (given, &settings.space) {
        (Some(arg), _) => read_space(arg),
        (None, Some(space)) => Ok(space.clone()),
        (None, None) => bail!("the study has no declared space; give one with --space"),
    }
}

pub fn run_ask(args: AskArgs) -> anyhow::Result<()> {
    let (study, settings) = Study::open(args.storage.open(false)?, &args.study)?;
    let space = study_space(&settings, args.space.as_deref())?;
    let (number, params) = ask_params(&study, &space)?;
    outln!("{}", json!({"trial": number, "params": params}));
    Ok(())
}

#[derive(Args)]
pub struct TellArgs {
    #[arg(long)]
    study: String,
    #[arg(long)]
    trial: u64,
    /// The objective's value (completes the trial).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "state", required_unless_present = "state")]
    value: Option<f64>,
    /// End the trial without a value.
    #[arg(long, value_enum)]
    state: Option<TellState>,
    #[command(flatten)]
    storage: StorageArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum TellState {
    Fail,
    Pruned,
}

pub fn run_tell(args: TellArgs) -> anyhow::Result<()> {
    let (study, _) = Study::open(args.storage.open(false)?, &args.study)?;
    let result = match (args.value, args.state) {
        (Some(v), _) => Ok(v),
        (None, Some(TellState::Pruned)) => Err(TrialFailure::Pruned),
        (None, _) => Err(TrialFailure::Failed("told failed".into())),
    };
    let trial = study.tell_number(args.trial, result)?;
    outln!("{}", trial_json(&trial));
    Ok(())
}

#[derive(Args)]
pub struct RunArgs {
    #[arg(long)]
    study: String,
    /// The study's trials, counting those already in it and those of other
    /// processes running on it: trials start while it has fewer.
    #[arg(long)]
    trials: u64,
    /// Trials at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// ordered: a trial waits for the earlier ones it must see (reproducible
    /// for a seeded sampler and a deterministic command); greedy: none waits.
    #[arg(long, value_enum, default_value = "ordered")]
    schedule: ScheduleArg,
    /// Read the objective from the first capture group (or the match) of
    /// this regex in the command's output [default: the last number printed].
    #[arg(long, value_name = "REGEX")]
    metric_regex: Option<String>,
    #[command(flatten)]
    storage: StorageArg,
    #[command(flatten)]
    heartbeat: HeartbeatArg,
    /// The command; `{name}` in an argument is replaced by parameter `name`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The commands `run` starts: each in a process group of its own, so that
/// ending it ends what it started too, and (on Linux) killed when `run`
/// dies, even by SIGKILL.
mod children {
    use std::process::Command;

    #[cfg(unix)]
    pub fn contain(command: &mut Command) {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe, as code between fork and exec must be.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }

    #[cfg(not(unix))]
    pub fn contain(_command: &mut Command) {}

    /// Ends the process group of child `id` (SIGTERM).
    #[cfg(unix)]
    pub fn end(id: u32) {
        if let Ok(group) = libc::pid_t::try_from(id) {
            // SAFETY: killpg only sends a signal; a group that is gone is an error we ignore.
            unsafe {
                libc::killpg(group, libc::SIGTERM);
            }
        }
    }

    #[cfg(not(unix))]
    pub fn end(_id: u32) {}
}

/// The command's arguments with `{name}` replaced by the trial's values.
fn substitute(command: &[String], params: &BTreeMap<String, Value>) -> Vec<String> {
    command
        .iter()
        .map(|arg| {
            params.iter().fold(arg.clone(), |a, (name, value)| a.replace(&format!("{{{name}}}"), &plain_text(value)))
        })
        .collect()
}

/// A parameter's value as a command sees it: a string as it is, anything else as JSON.
fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The environment variable that holds parameter `name`: `GRADUS_PARAM_`
/// and the name in capitals, any character but a letter or digit as `_`.
fn param_env_name(name: &str) -> String {
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("GRADUS_PARAM_{name}")
}

/// A parameter substituted into the script of a `-c` argument (`bash -c
/// '... {lr} ...'`), where a value with shell syntax would run as code.
fn substituted_into_script(command: &[String], space: &SearchSpace) -> Option<String> {
    let script = command.iter().skip_while(|a| a.as_str() != "-c").nth(1)?;
    space.0.keys().find(|name| script.contains(&format!("{{{name}}}"))).cloned()
}

/// The objective value in a command's output.
fn read_metric(output: &str, regex: Option<&regex::Regex>) -> Option<f64> {
    match regex {
        Some(re) => {
            let caps = re.captures_iter(output).last()?;
            caps.get(1).or_else(|| caps.get(0))?.as_str().trim().parse().ok()
        }
        None => output
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '=' || c == ':')
            .rev()
            .find_map(|token| token.parse::<f64>().ok()),
    }
}

pub fn run_run(args: RunArgs) -> anyhow::Result<()> {
    let regex = args.metric_regex.as_deref().map(regex::Regex::new).transpose().context("invalid --metric-regex")?;
    if args.jobs == 0 {
        bail!("invalid --jobs 0: must be at least 1");
    }
    args.heartbeat.durations()?;
    let (study, settings) = Study::open(args.storage.open(false)?, &args.study)?;
    let study = args.heartbeat.apply(study.with_schedule(args.schedule.into()).with_budget(args.trials))?;
    let space = study_space(&settings, None)?;
    let unknown: Vec<&str> = args
        .command
        .iter()
        .flat_map(|a| a.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)))
        .filter(|name| !name.is_empty() && !space.0.contains_key(*name))
        .collect();
    if let Some(name) = unknown.first() {
        let known = space.0.keys().cloned().collect::<Vec<_>>().join(", ");
        bail!("the command names {{{name}}}, which the study's space does not have (it has: {known})");
    }
    // A first Ctrl-C or SIGTERM interrupts (see below); a second exits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone())?;
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let running: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
    if let Some(name) = substituted_into_script(&args.command, &space) {
        eprintln!(
            "warning: {{{name}}} is substituted into a shell script (-c): a value holding shell syntax would run as \
             code. Read the parameter from the environment instead (\"${}\"), or from the JSON file \
             $GRADUS_PARAMS_FILE.",
            param_env_name(&name)
        );
    }
    let objective = |trial: &mut gradus::tune::Trial<'_>| -> Result<f64, TrialFailure> {
        for (name, dist) in space.iter() {
            trial.suggest(name, dist.clone())?;
        }
        let argv = substitute(&args.command, trial.params());
        // The parameters, safe from any shell: each in the environment, and
        // all in a JSON file, removed when the command ends.
        let file = std::env::temp_dir().join(format!("gradus-params-{}-{}.json", std::process::id(), trial.number()));
        std::fs::write(&file, json!(trial.params()).to_string())
            .map_err(|e| TrialFailure::Failed(format!("cannot write {}: {e}", file.display())))?;
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).env("GRADUS_PARAMS_FILE", &file).env("GRADUS_TRIAL", trial.number().to_string());
        for (name, value) in trial.params() {
            command.env(param_env_name(name), plain_text(value));
        }
        children::contain(&mut command);
        let output =
            command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().and_then(
                |child| {
                    let id = child.id();
                    running.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                    let output = child.wait_with_output();
                    running.lock().unwrap_or_else(|e| e.into_inner()).retain(|&c| c != id);
                    output
                },
            );
        let _ = std::fs::remove_file(&file);
        let output = output.map_err(|e| TrialFailure::Failed(format!("cannot run '{}': {e}", argv[0])))?;
        if interrupted.load(Ordering::SeqCst) {
            return Err(TrialFailure::Failed("interrupted".into()));
        }
        // The child's stderr is the user's to see, and its end says why it failed.
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), &output.stderr);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
            let said = if tail.is_empty() { String::new() } else { format!(": {tail}") };
            return Err(TrialFailure::Failed(format!("'{}' exited with {}{said}", argv[0], output.status)));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        read_metric(&stdout, regex.as_ref())
            .ok_or_else(|| TrialFailure::Failed("no objective value in the output".into()))
    };
    let printed = std::sync::Mutex::new(Ok::<(), std::io::Error>(()));
    let finished = std::sync::Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Ctrl-C or SIGTERM: end the commands running (their whole process
        // groups), record their trials failed ("interrupted"), start no more.
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if interrupted.load(Ordering::SeqCst) {
                    study.stop();
                    running.lock().unwrap_or_else(|e| e.into_inner()).iter().for_each(|&id| children::end(id));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        let result = study.optimize_with_callback(objective, args.trials, None, args.jobs, |_, trial| {
            use std::io::Write;
            finished.lock().unwrap_or_else(|e| e.into_inner()).push(trial.clone());
            let mut status = printed.lock().unwrap_or_else(|e| e.into_inner());
            if status.is_ok() {
                *status = writeln!(std::io::stdout().lock(), "{}", trial_json(trial));
            }
        });
        done.store(true, Ordering::SeqCst);
        Ok(result?)
    })?;
    printed.into_inner().unwrap_or_else(|e| e.into_inner())?;
    if interrupted.load(Ordering::SeqCst) {
        return Err(
            crate::RunFailed("interrupted: the running commands were ended and their trials failed".into()).into()
        );
    }
    // Trials ran and none completed: a failure, with the reasons.
    let finished = finished.into_inner().unwrap_or_else(|e| e.into_inner());
    if !finished.is_empty() && finished.iter().all(|t| t.value().is_none()) {
        let mut reasons: Vec<&str> = finished.iter().filter_map(FrozenTrial::fail_reason).collect();
        reasons.dedup();
        return Err(crate::RunFailed(format!(
            "none of the {} trials this run started completed: {}",
            finished.len(),
            reasons.first().copied().unwrap_or("pruned")
        ))
        .into());
    }
    Ok(())
}

/// One trial as a JSON object (the line format of `run`, `tell`, `trials`).
fn trial_json(t: &FrozenTrial) -> Value {
    let mut line = json!({
        "trial": t.number,
        "state": t.state.name(),
        "value": t.value(),
        "params": t.params,
        "duration": t.duration(),
    });
    if let Some(reason) = t.fail_reason() {
        line["fail_reason"] = reason.into();
    }
    // Which process ran it ({"host", "pid"}), where known.
    if let Some(worker) = t.attrs.get(gradus::tune::WORKER) {
        line["worker"] = worker.clone();
    }
    line
}

#[derive(Args)]
pub struct StudiesArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    storage: StorageArg,
}

pub fn run_studies(args: StudiesArgs) -> anyhow::Result<()> {
    let studies = args.storage.open(false)?.list_studies()?;
    if !args.json {
        outln!("{:<24} {:<9} {:>7} {:>14}", "study", "direction", "trials", "best");
    }
    for s in studies {
        if args.json {
            outln!(
                "{}",
                json!({"study": s.name, "direction": s.direction, "trials": s.n_trials, "best": s.best_value})
            );
        } else {
            let best = s.best_value.map_or("-".into(), |v| format!("{v:.6}"));
            outln!("{:<24} {:<9} {:>7} {:>14}", s.name, s.direction.name(), s.n_trials, best);
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct TrialsArgs {
    #[arg(long)]
    study: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    storage: StorageArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

pub fn run_trials(args: TrialsArgs) -> anyhow::Result<()> {
    let (study, _) = Study::open(args.storage.open(false)?, &args.study)?;
    let trials = study.trials()?;
    let names: Vec<String> = trials
        .iter()
        .flat_map(|t| t.params.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let cell = |t: &FrozenTrial, name: &str| match t.params.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    match args.format {
        Format::Json => {
            for t in &trials {
                outln!("{}", trial_json(t));
            }
        }
        Format::Csv => {
            // The csv writer quotes every field that needs it, the parameter
            // names in the header too.
            let mut out = csv::Writer::from_writer(Vec::new());
            let header = ["trial", "state", "value", "duration"].into_iter().map(str::to_string);
            out.write_record(header.chain(names.iter().cloned()).chain(["fail_reason".to_string()]))?;
            for t in &trials {
                let value = t.value().map_or(String::new(), |v| v.to_string());
                let duration = t.duration().map_or(String::new(), |d| format!("{d:.3}"));
                let fixed = [t.number.to_string(), t.state.name().to_string(), value, duration];
                let reason = t.fail_reason().unwrap_or_default().to_string();
                out.write_record(fixed.into_iter().chain(names.iter().map(|n| cell(t, n))).chain([reason]))?;
            }
            let text = out.into_inner().map_err(|e| anyhow::anyhow!("writing the trials: {e}"))?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &text)?;
        }
        Format::Table => {
            let mut header = format!("{:>6}  {:<9} {:>14}", "trial", "state", "value");
            for n in &names {
                header.push_str(&format!("  {n:>12}"));
            }
            let reasons = trials.iter().any(|t| t.fail_reason().is_some());
            outln!("{header}{}", if reasons { "  why it failed" } else { "" });
            for t in &trials {
                let value = t.value().map_or("-".into(), |v| format!("{v:.6}"));
                let mut line = format!("{:>6}  {:<9} {value:>14}", t.number, t.state.name());
                for n in &names {
                    // Four significant digits here; CSV and JSON keep every digit.
                    let text = t.params.get(n).map_or(String::new(), crate::param_text);
                    line.push_str(&format!("  {text:>12}"));
                }
                if let Some(reason) = t.fail_reason() {
                    line.push_str(&format!("  {reason}"));
                }
                outln!("{}", line.trim_end());
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct BestArgs {
    #[arg(long)]
    study: String,
    #[command(flatten)]
    storage: StorageArg,
}

pub fn run_best(args: BestArgs) -> anyhow::Result<()> {
    let (study, _) = Study::open(args.storage.open(false)?, &args.study)?;
    match study.best_trial()? {
        Some(t) => outln!("{}", trial_json(&t)),
        None => bail!("study '{}' has no complete trial yet", args.study),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_is_the_last_number_or_the_regex_capture() {
        assert_eq!(read_metric("epoch 1 loss 0.5\nepoch 2 loss 0.25\n", None), Some(0.25));
        assert_eq!(read_metric("val_loss=0.125, done", None), Some(0.125));
        assert_eq!(read_metric("nothing here", None), None);
        let re = regex::Regex::new(r"acc (\S+)").unwrap();
        assert_eq!(read_metric("acc 0.9 loss 0.1\nacc 0.95 loss 0.05\n", Some(&re)), Some(0.95));
    }

    #[test]
    fn placeholders_take_the_trials_values() {
        let params = BTreeMap::from([("lr".to_string(), json!(0.01)), ("opt".to_string(), json!("adam"))]);
        let argv = substitute(&["train".into(), "--lr={lr}".into(), "{opt}".into(), "{other}".into()], &params);
        assert_eq!(argv, ["train", "--lr=0.01", "adam", "{other}"]);
    }
}
