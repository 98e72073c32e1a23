//! The `gradus` command line: clap definitions and output formatting only;
//! all logic lives in the library crates.
//!
//! Exit codes: 0 success, 1 a run that failed (training diverged, output could
//! not be written), 2 bad input (arguments, data or model files, hyperparameters).

mod compress;
mod datasets;
mod explain;
mod inspect;
mod plot;
mod predict;
mod progress;
mod study;
mod text_args;
mod train;
mod tune;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gradus", version, about = "Find good models: train them, and tune their hyperparameters")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find the best model for a dataset: tune the hyperparameters, retrain the best, test it, save it.
    Tune(Box<tune::TuneArgs>),
    /// Train a model on a dataset, print its loss curve and metrics, optionally save it.
    Train(Box<train::TrainArgs>),
    /// Predict with a saved model, writing one CSV row per input row.
    Predict(predict::PredictArgs),
    /// Score a saved model on a labelled dataset.
    Evaluate(predict::EvaluateArgs),
    /// Make a saved model smaller and faster (distil it into one network, or prune its weights), with a table of the figures before and after.
    Compress(Box<compress::CompressArgs>),
    /// Explain a saved model: permutation importance, partial dependence, saliency maps, n-gram effects.
    Explain(Box<explain::ExplainArgs>),
    /// Show what a model file holds: task, classes, input columns and their transforms, members, provenance.
    Inspect(inspect::InspectArgs),
    /// List the built-in datasets with their shape and task.
    Datasets(datasets::DatasetsArgs),
    /// Create or delete a hyperparameter study.
    #[command(subcommand)]
    Study(study::StudyCommand),
    /// Start a trial of a study and print its parameters as JSON.
    Ask(study::AskArgs),
    /// Report a trial's result.
    Tell(study::TellArgs),
    /// Run an external command for each trial of a study.
    Run(study::RunArgs),
    /// List the studies in a storage.
    Studies(study::StudiesArgs),
    /// List a study's trials.
    Trials(study::TrialsArgs),
    /// Print a study's best trial as JSON.
    Best(study::BestArgs),
    /// Draw a study as an SVG: its history, learning curves, value distribution, timeline or importances.
    Plot(plot::PlotArgs),
    /// Show which hyperparameters mattered in a study (fANOVA and PED-ANOVA, over five seeds).
    Importance(plot::ImportanceArgs),
    /// Write a study's report: one self-contained HTML file with every plot and table.
    Report(plot::ReportArgs),
    /// Serve a read-only web dashboard of the storage's studies, updated live.
    #[cfg(feature = "dashboard")]
    Dashboard(plot::DashboardArgs),
}

/// A run that went wrong through no fault of its input (exit code 1).
#[derive(Debug)]
pub struct RunFailed(pub String);

impl std::fmt::Display for RunFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunFailed {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tune(args) => tune::run(*args),
        Command::Train(args) => train::run(*args),
        Command::Predict(args) => predict::run_predict(args),
        Command::Evaluate(args) => predict::run_evaluate(args),
        Command::Compress(args) => compress::run(*args),
        Command::Explain(args) => explain::run(*args),
        Command::Inspect(args) => inspect::run(args),
        Command::Datasets(args) => datasets::run(args),
        Command::Study(command) => study::run_study(command),
        Command::Ask(args) => study::run_ask(args),
        Command::Tell(args) => study::run_tell(args),
        Command::Run(args) => study::run_run(args),
        Command::Studies(args) => study::run_studies(args),
        Command::Trials(args) => study::run_trials(args),
        Command::Best(args) => study::run_best(args),
        Command::Plot(args) => plot::run(args),
        Command::Importance(args) => plot::run_importance(args),
        Command::Report(args) => plot::run_report(args),
        #[cfg(feature = "dashboard")]
        Command::Dashboard(args) => plot::run_dashboard(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`gradus predict ... | head`) is the reader's choice, not a failure.
        Err(err)
            if err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            let failed = err.downcast_ref::<RunFailed>().is_some()
                || matches!(
                    err.downcast_ref::<gradus::pipeline::PipelineError>(),
                    Some(gradus::pipeline::PipelineError::Diverged(_))
                )
                || err.downcast_ref::<std::io::Error>().is_some()
                || err.downcast_ref::<gradus::train::ModelFileError>().is_some_and(|e| e.is_write_failure())
                || matches!(err.downcast_ref::<gradus::tune::TuneError>(), Some(gradus::tune::TuneError::Storage(_)))
                || dashboard_failed(&err);
            ExitCode::from(if failed { 1 } else { 2 })
        }
    }
}

/// Whether the dashboard's server failed once it had started (not a bad
/// `--bind`, which is the user's to fix).
fn dashboard_failed(err: &anyhow::Error) -> bool {
    #[cfg(feature = "dashboard")]
    {
        err.downcast_ref::<gradus::report::dashboard::DashboardError>().is_some_and(|e| !e.is_bad_request())
    }
    #[cfg(not(feature = "dashboard"))]
    {
        let _ = err;
        false
    }
}

/// `println!` that returns write errors (a closed pipe) instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// Checks, before any work, that `--out` can be written: not a directory,
/// in a directory that exists and takes a new file (tried with an empty
/// probe file, removed at once), and writable if it exists. A symlink is
/// checked at its target; a device or FIFO (`/dev/null`, `/dev/stdout`) is
/// written in place and needs no probe. The error names the path; the file
/// itself is written only at the end.
pub fn check_out_path(path: &std::path::Path) -> anyhow::Result<()> {
    use gradus::data::output::{OutputTarget, output_target};
    let shown = path.display();
    let target = match output_target(path) {
        Ok(OutputTarget::Replace(target)) => target,
        Ok(OutputTarget::InPlace(_)) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
            anyhow::bail!("--out {shown}: is a directory; give a file path")
        }
        Err(e) => anyhow::bail!("--out {shown}: {e}"),
    };
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        anyhow::bail!("--out {shown}: the directory '{}' does not exist", parent.display());
    }
    let probe = parent.join(format!(".gradus-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| anyhow::anyhow!("--out {shown}: cannot write in '{}': {e}", parent.display()))?;
    let _ = std::fs::remove_file(&probe);
    if target.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .map_err(|e| anyhow::anyhow!("--out {shown}: cannot write it: {e}"))?;
    }
    Ok(())
}

/// `--encoding`'s parser: a name [`gradus::data::TextEncoding`] knows.
pub fn parse_encoding(name: &str) -> Result<gradus::data::TextEncoding, String> {
    name.parse().map_err(|e: gradus::data::DataError| e.to_string())
}

/// `--model`'s parser for one family: the names [`Family`] knows, listed in `--help`.
pub fn family_parser() -> impl clap::builder::TypedValueParser<Value = gradus::pipeline::Family> {
    use clap::builder::TypedValueParser;
    use gradus::pipeline::Family;
    clap::builder::PossibleValuesParser::new(Family::ALL.map(Family::name))
        .map(|name| Family::from_name(&name).expect("one of the names listed"))
}

/// `--scale`'s parser: the names [`gradus::data::Scaling`] knows, listed in `--help`.
pub fn scaling_parser() -> impl clap::builder::TypedValueParser<Value = gradus::data::Scaling> {
    use clap::builder::TypedValueParser;
    use gradus::data::Scaling;
    clap::builder::PossibleValuesParser::new(Scaling::ALL.map(Scaling::name))
        .map(|name| Scaling::from_name(&name).expect("one of the names listed"))
}

/// `--image-size`'s parser: `HxW` (such as `28x28`), or one side for a square.
pub fn parse_image_size(text: &str) -> Result<[usize; 2], String> {
    let side = |t: &str| t.trim().parse::<usize>().ok().filter(|&v| v >= 1);
    let parsed = match text.split_once(['x', 'X']) {
        Some((h, w)) => side(h).zip(side(w)).map(|(h, w)| [h, w]),
        None => side(text).map(|s| [s, s]),
    };
    parsed.ok_or_else(|| format!("'{text}' is not a size: give HxW (such as 28x28) or one side, each at least 1"))
}

/// `--delimiter`'s parser: one ASCII character, or `tab`.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() && text != "\"" && text != "\n" => Ok(text.as_bytes()[0]),
        _ => Err(format!("'{text}' is not one character (e.g. ',', ';', '|', or tab)")),
    }
}

/// Four decimals, or scientific notation for values too small or large for that.
pub fn num(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) { format!("{v:.4e}") } else { format!("{v:.4}") }
}

/// A hyperparameter's value for people: text without quotes, whole numbers
/// as they are, other numbers to four significant digits (`1e-6`, not
/// `1.0000000000000004e-6`; `0.003142`, `0.25`).
pub fn param_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_f64() => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if v == 0.0 || !v.is_finite() {
                return format!("{v}");
            }
            let trim = |s: String| {
                if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
            };
            if !(1e-3..1e6).contains(&v.abs()) {
                let text = format!("{v:.3e}");
                let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
                format!("{}e{exponent}", trim(mantissa.to_string()))
            } else {
                let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
                trim(format!("{v:.decimals$}"))
            }
        }
        other => other.to_string(),
    }
}

/// The headline metrics on one line.
pub fn metrics_line(m: &gradus::train::Metrics) -> String {
    use gradus::train::Metrics;
    match m {
        Metrics::Regression { mse, rmse, mae, r2 } => {
            format!("mse {}  rmse {}  mae {}  r2 {r2:.4}", num(*mse), num(*rmse), num(*mae))
        }
        Metrics::Classification { accuracy, balanced_accuracy, log_loss, macro_f1, roc_auc, pr_auc, .. } => {
            let auc = roc_auc.map_or(String::new(), |a| format!("  roc_auc {a:.4}"));
            let ap = pr_auc.map_or(String::new(), |a| format!("  pr_auc {a:.4}"));
            format!(
                "accuracy {accuracy:.4}  balanced_accuracy {balanced_accuracy:.4}  log_loss {}  macro_f1 {macro_f1:.4}{auc}{ap}",
                num(*log_loss)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_print_at_four_significant_digits() {
        use serde_json::json;
        for (value, text) in [
            (json!(1.0000000000000004e-6), "1e-6"),
            (json!(0.0031415926), "0.003142"),
            (json!(0.25), "0.25"),
            (json!(123.456789), "123.5"),
            (json!(2.5e7), "2.5e7"),
            (json!(64), "64"),
            (json!("adam"), "adam"),
            (json!(true), "true"),
        ] {
            assert_eq!(super::param_text(&value), text, "{value}");
        }
    }
}
