//! The `gradus` command line: clap definitions and output formatting only;
//! all logic lives in the library crates.
//!
//! Exit codes: 0 success, 1 a run that failed (training diverged, output could
//! not be written), 2 bad input (arguments, data files, hyperparameters).

mod datasets;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gradus", version, about = "Train models with gradient-based optimizers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a dataset and print its loss curve and metrics.
    Train(train::TrainArgs),
    /// List the built-in datasets with their shape and task.
    Datasets(datasets::DatasetsArgs),
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
        Command::Train(args) => train::run(args),
        Command::Datasets(args) => datasets::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let failed = err.downcast_ref::<RunFailed>().is_some() || err.downcast_ref::<std::io::Error>().is_some();
            ExitCode::from(if failed { 1 } else { 2 })
        }
    }
}
