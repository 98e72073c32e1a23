//! Times prediction with saved models on the rows of a CSV (read once,
//! repeated to 20,000 rows): milliseconds per 1,000 rows, the median of
//! `passes` passes, for each model given — a profiling target for
//! `gradus compress`'s timing without the reading and training around it.
//!
//! Run: cargo run --release -p gradus-train --example predict_time -- DATA.csv MODEL... [--passes N]
use std::time::Instant;

use gradus_data::{ReadOptions, load_encoded};
use gradus_train::Ensemble;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let passes = args.iter().position(|a| a == "--passes").map_or(15, |i| args[i + 1].parse().expect("a number"));
    let paths: Vec<&String> = args.iter().take_while(|a| *a != "--passes").collect();
    let (data, models) = paths.split_first().expect("DATA.csv MODEL...");
    for path in models {
        let model = Ensemble::load(path).expect("a model file");
        let prep = model.preprocessing();
        let rows =
            load_encoded(data, prep.encoding(), &prep.target_name, model.loss().target_kind(), &ReadOptions::default())
                .expect("the rows");
        let n = rows.n_samples();
        let repeated: Vec<usize> = (0..20_000usize.div_ceil(n) * n).map(|i| i % n).collect();
        let timed = rows.subset(&repeated);
        let mut times: Vec<f64> = (0..passes)
            .map(|_| {
                let rows = timed.clone();
                let started = Instant::now();
                model.outputs_of(rows).expect("outputs");
                started.elapsed().as_secs_f64() * 1e6 / repeated.len() as f64
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!("{path}: {:.3} ms per 1,000 rows (median of {passes})", times[passes / 2]);
    }
}
