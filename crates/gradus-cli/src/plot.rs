//! Pictures of a study: `gradus plot` (one SVG), `gradus importance` (a
//! table) and `gradus report` (one HTML file holding them all).

use clap::{Args, ValueEnum};
use gradus::report::{PlotKind, ReportError};

use crate::study::StorageArg;

/// The plots `gradus plot` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlotArg {
    /// Each complete trial's value by trial number, with the best so far.
    History,
    /// Each trial's reported values by step (learning curves); a cross where a trial was pruned.
    Intermediate,
    /// The share of complete trials at or below each value.
    Edf,
    /// Each trial as a bar in time, one lane per worker (process and thread).
    Timeline,
    /// Each hyperparameter's importance by fANOVA and PED-ANOVA, with its spread over seeds.
    Importance,
    /// One panel per hyperparameter: each complete trial's value against it.
    Slice,
    /// Parallel coordinates: each complete trial a line across the value and the hyperparameters.
    Parallel,
    /// The two most important numeric hyperparameters: the predicted value over their ranges, the trials on top.
    Contour,
}

impl PlotArg {
    fn kind(self) -> PlotKind {
        match self {
            PlotArg::History => PlotKind::History,
            PlotArg::Intermediate => PlotKind::Intermediate,
            PlotArg::Edf => PlotKind::Edf,
            PlotArg::Timeline => PlotKind::Timeline,
            PlotArg::Importance => PlotKind::Importance,
            PlotArg::Slice => PlotKind::Slice,
            PlotArg::Parallel => PlotKind::Parallel,
            PlotArg::Contour => PlotKind::Contour,
        }
    }
}

#[derive(Args)]
pub struct PlotArgs {
    /// What to draw.
    #[arg(value_enum)]
    kind: PlotArg,
    #[arg(long)]
    study: String,
    #[command(flatten)]
    storage: StorageArg,
    /// Write the SVG here.
    #[arg(long, value_name = "FILE")]
    out: std::path::PathBuf,
}

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    crate::check_out_path(&args.out)?;
    let storage = args.storage.open(false)?;
    let svg = gradus::report::plot(storage.as_ref(), &args.study, args.kind.kind()).map_err(error)?;
    write(&args.out, &svg)
}

/// A report error as the CLI exits on it: a storage that fails is a failed
/// run (exit 1, as elsewhere); an unknown or empty study, bad input (2).
fn error(e: ReportError) -> anyhow::Error {
    match e {
        ReportError::Storage(e) => e.into(),
        e => e.into(),
    }
}

fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    gradus::data::output::write_file(path, |sink| sink.write_all(text.as_bytes()))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// The HTML report of study `name`.
pub fn report_html(storage: &dyn gradus::tune::Storage, name: &str) -> anyhow::Result<String> {
    gradus::report::report(storage, name).map_err(error)
}

#[derive(Args)]
pub struct ReportArgs {
    #[arg(long)]
    study: String,
    #[command(flatten)]
    storage: StorageArg,
    /// Write the HTML file here.
    #[arg(long, value_name = "FILE")]
    out: std::path::PathBuf,
}

/// `gradus report`: the study in one self-contained HTML file.
pub fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    crate::check_out_path(&args.out)?;
    let storage = args.storage.open(false)?;
    write(&args.out, &report_html(storage.as_ref(), &args.study)?)
}

#[derive(Args)]
pub struct ImportanceArgs {
    #[arg(long)]
    study: String,
    #[command(flatten)]
    storage: StorageArg,
    /// One JSON object per hyperparameter instead of a table.
    #[arg(long)]
    json: bool,
}

/// `gradus importance`: each hyperparameter's importance by fANOVA and
/// PED-ANOVA (the mean and standard deviation over five seeds).
pub fn run_importance(args: ImportanceArgs) -> anyhow::Result<()> {
    use gradus::report::importance::{IMPORTANCE_SEEDS, Method, importances};
    let storage = args.storage.open(false)?;
    let study = gradus::report::StudyTrials::load(storage.as_ref(), &args.study).map_err(error)?;
    let fanova = importances(&study, Method::Fanova, &IMPORTANCE_SEEDS).map_err(error)?;
    let ped = importances(&study, Method::PedAnova, &IMPORTANCE_SEEDS).map_err(error)?;
    if !args.json {
        crate::outln!("{:<24} {:>17} {:>17}", "hyperparameter", "fANOVA", "PED-ANOVA");
    }
    for f in &fanova {
        let p = ped.iter().find(|p| p.param == f.param).expect("both methods read the same parameters");
        if args.json {
            let line = serde_json::json!({
                "param": f.param,
                "fanova": f.mean, "fanova_sd": f.spread,
                "ped_anova": p.mean, "ped_anova_sd": p.spread,
            });
            crate::outln!("{line}");
        } else {
            crate::outln!("{:<24} {:>8.4} ± {:<6.4} {:>8.4} ± {:<6.4}", f.param, f.mean, f.spread, p.mean, p.spread);
        }
    }
    Ok(())
}

#[cfg(feature = "dashboard")]
#[derive(Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    storage: StorageArg,
    /// The address to listen on (loopback by default: give 0.0.0.0:PORT
    /// to let other machines in; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    bind: std::net::SocketAddr,
}

/// `gradus dashboard`: serves the storage's studies until stopped.
#[cfg(feature = "dashboard")]
pub fn run_dashboard(args: DashboardArgs) -> anyhow::Result<()> {
    let storage = args.storage.open(false)?;
    gradus::report::dashboard::run(storage, args.bind, |addr| {
        // The line a script waits for (the port, when 0 was asked).
        println!("dashboard at http://{addr}/ (Ctrl-C stops it)");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}
