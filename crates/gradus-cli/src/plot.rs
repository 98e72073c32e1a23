//! `gradus plot`: one picture of a study, as an SVG file.

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
}

impl PlotArg {
    fn kind(self) -> PlotKind {
        match self {
            PlotArg::History => PlotKind::History,
            PlotArg::Intermediate => PlotKind::Intermediate,
            PlotArg::Edf => PlotKind::Edf,
            PlotArg::Timeline => PlotKind::Timeline,
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
    let svg = match gradus::report::plot(storage.as_ref(), &args.study, args.kind.kind()) {
        Ok(svg) => svg,
        // A storage that fails is a failed run (exit 1), as elsewhere.
        Err(ReportError::Storage(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    gradus::data::output::write_file(&args.out, |sink| sink.write_all(svg.as_bytes()))
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    Ok(())
}
