//! `gradus datasets`: the built-in datasets.

use clap::Args;
use gradus::data::BUILTINS;

#[derive(Args)]
pub struct DatasetsArgs {
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DatasetsArgs) -> anyhow::Result<()> {
    if !args.json {
        crate::outln!("{:<22} {:>6} {:>8}  {:<11} source", "name", "rows", "features", "task");
    }
    for b in BUILTINS {
        let name = format!("builtin:{}", b.name);
        if args.json {
            let row = serde_json::json!({
                "name": name, "rows": b.rows, "features": b.features, "task": b.task, "source": b.source,
            });
            crate::outln!("{row}");
        } else {
            crate::outln!("{name:<22} {:>6} {:>8}  {:<11} {}", b.rows, b.features, b.task, b.source);
        }
    }
    Ok(())
}
