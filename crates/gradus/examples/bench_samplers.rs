//! The gradus side of `bench/sampler_quality.py`: one study of a sampler on a
//! test function from `gradus::tune::testfns`, printed as one JSON line.
//!
//! ```text
//! bench_samplers SAMPLER FUNCTION BUDGET SEED [--batch N]
//! bench_samplers list     # the suite, one JSON line per function
//! bench_samplers serve    # reads "FUNCTION x0 x1 ..." lines, writes f(x) per line
//! bench_samplers cost SAMPLER TRIALS PARAMS ASKS   # ms per ask+tell after TRIALS finished trials
//! ```
//!
//! A study runs BUDGET sequential trials; with `--batch N` it runs BUDGET / N
//! rounds of N `ask`s, every parameter suggested, then N `tell`s, so each
//! round's later asks see the earlier ones as pending (running) trials.
//! Regret is the best value minus the known minimum; `log10_regret` is
//! log₁₀ max(regret, 10⁻¹²). `serve` lets the Python side evaluate exactly
//! these functions for Optuna's samplers.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Instant;

use gradus::tune::pruners::NopPruner;
use gradus::tune::samplers::{AutoSampler, CmaEsSampler, GpSampler, RandomSampler, SobolSampler, TpeSampler};
use gradus::tune::testfns::{self, ParamKind, TestFunction};
use gradus::tune::{Direction, InMemoryStorage, Sampler, SearchSpace, Storage, Study, Trial, TuneError};
use serde_json::json;

/// The samplers this benchmark knows, by name.
const SAMPLERS: &[&str] = &["random", "sobol", "tpe", "tpe-indep", "cmaes", "gp", "auto"];

/// Builds a sampler by name: add new samplers here (and to [`SAMPLERS`]).
fn build_sampler(name: &str, seed: u64, space: &SearchSpace) -> Result<Box<dyn Sampler>, String> {
    Ok(match name {
        "random" => Box::new(RandomSampler::new(seed)),
        "sobol" => Box::new(SobolSampler::new(seed, Some(space))),
        // Multivariate with constant liar, as Optuna 5's TPESampler(seed).
        "tpe" => Box::new(TpeSampler::new(seed)),
        // The independent TPE, as Optuna's TPESampler(seed, multivariate=False).
        "tpe-indep" => Box::new(TpeSampler::new(seed).multivariate(false)),
        "cmaes" => Box::new(CmaEsSampler::new(seed)),
        "gp" => Box::new(GpSampler::new(seed)),
        // The default: GP for the first 100 trials, then TPE.
        "auto" => Box::new(AutoSampler::new(seed)),
        _ => return Err(format!("unknown sampler '{name}' (known: {})", SAMPLERS.join(", "))),
    })
}

/// Suggests every parameter of `f` with the call its kind needs; returns the
/// point as `f` takes it (categoricals as indices).
fn suggest_point(trial: &mut Trial<'_>, f: &TestFunction) -> Result<Vec<f64>, TuneError> {
    let mut x = Vec::with_capacity(f.dim());
    for (i, kind) in f.kinds.iter().enumerate() {
        let name = TestFunction::param_name(i);
        let (low, high) = f.bounds[i];
        x.push(match kind {
            ParamKind::Float => trial.suggest_float(&name, low, high)?,
            ParamKind::LogFloat => trial.suggest_float_log(&name, low, high)?,
            ParamKind::Int => trial.suggest_int(&name, low as i64, high as i64)? as f64,
            ParamKind::Categorical(choices) => {
                let choice = trial.suggest_categorical(&name, choices)?;
                choices.iter().position(|c| *c == choice).expect("a listed choice") as f64
            }
        });
    }
    Ok(x)
}

fn run(sampler_name: &str, function: &str, budget: u64, seed: u64, batch: Option<u64>) -> Result<(), String> {
    let f = testfns::by_name(function).ok_or_else(|| format!("unknown function '{function}'"))?;
    let sampler = build_sampler(sampler_name, seed, &f.space())?;
    let study = Study::in_memory(&format!("{function}-{sampler_name}-{seed}"), Direction::Minimize, sampler)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    match batch {
        None => study
            .optimize(|trial| Ok(f.eval(&suggest_point(trial, &f)?)), budget, None, 1)
            .map_err(|e| e.to_string())?,
        Some(size) => {
            for _ in 0..budget / size {
                let mut pending = Vec::with_capacity(size as usize);
                for _ in 0..size {
                    let mut trial = study.ask().map_err(|e| e.to_string())?;
                    let x = suggest_point(&mut trial, &f).map_err(|e| e.to_string())?;
                    pending.push((trial, x));
                }
                for (trial, x) in pending {
                    study.tell(trial, Ok(f.eval(&x))).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let trials = study.trials().map_err(|e| e.to_string())?;
    let best = study.best_value().map_err(|e| e.to_string())?.ok_or("no complete trial")?;
    let regret = f.regret(best);
    let line = json!({
        "sampler": sampler_name,
        "function": function,
        "budget": budget,
        "seed": seed,
        "batch": batch.unwrap_or(1),
        "trials": trials.len(),
        "best": best,
        "regret": regret,
        "log10_regret": regret.max(1e-12).log10(),
        "seconds": seconds,
    });
    println!("{line}");
    Ok(())
}

/// The cost of one ask+tell once the study holds `history` finished trials
/// over `params` floats in [-5, 5] (the sphere, values from a random
/// sampler, filled in directly): the median and mean milliseconds of `asks`
/// cycles of ask, suggest every parameter, tell. One JSON line.
fn cost(sampler_name: &str, history: u64, params: usize, asks: u64) -> Result<(), String> {
    let names: Vec<String> = (0..params).map(TestFunction::param_name).collect();
    let sphere = |trial: &mut Trial<'_>| -> Result<f64, TuneError> {
        let mut sum = 0.0;
        for name in &names {
            let x = trial.suggest_float(name, -5.0, 5.0)?;
            sum += x * x;
        }
        Ok(sum)
    };
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let fill = Study::create(
        storage.clone(),
        "cost",
        Direction::Minimize,
        Box::new(RandomSampler::new(0)),
        Box::new(NopPruner),
        &serde_json::Value::Null,
    )
    .map_err(|e| e.to_string())?;
    fill.optimize(|trial| Ok(sphere(trial)?), history, None, 1).map_err(|e| e.to_string())?;
    let space = SearchSpace::default();
    let study = Study::load(storage, "cost", build_sampler(sampler_name, 0, &space)?, Box::new(NopPruner))
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(asks as usize);
    for _ in 0..asks {
        let start = Instant::now();
        let mut trial = study.ask().map_err(|e| e.to_string())?;
        let value = sphere(&mut trial).map_err(|e| e.to_string())?;
        study.tell(trial, Ok(value)).map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let line = json!({"sampler": sampler_name, "history": history, "params": params, "asks": asks,
                      "median_ms": median, "mean_ms": mean});
    println!("{line}");
    Ok(())
}

/// One JSON line per suite function: its domain, kinds and minimum.
fn list() {
    let mut out = std::io::stdout().lock();
    for f in testfns::suite() {
        let params: Vec<_> = (0..f.dim())
            .map(|i| {
                let mut p = json!({"name": TestFunction::param_name(i), "kind": f.kinds[i].name(),
                                   "low": f.bounds[i].0, "high": f.bounds[i].1});
                if let ParamKind::Categorical(choices) = f.kinds[i] {
                    p["choices"] = json!(choices);
                }
                p
            })
            .collect();
        let line = json!({"name": f.name, "dim": f.dim(), "min_value": f.min_value, "continuous": f.is_continuous(),
                          "minimiser": f.minimiser, "params": params});
        if writeln!(out, "{line}").is_err() {
            break; // the reader closed the pipe
        }
    }
}

/// Evaluates "FUNCTION x0 x1 ..." lines from stdin, one value per line on
/// stdout (flushed), `error: ...` for a bad line.
fn serve() {
    let mut out = std::io::stdout().lock();
    let mut cache: Option<TestFunction> = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        if cache.as_ref().is_none_or(|f| f.name != name) {
            cache = testfns::by_name(name);
        }
        let x: Result<Vec<f64>, _> = words.map(str::parse::<f64>).collect();
        let reply = match (&cache, x) {
            (None, _) => format!("error: unknown function '{name}'"),
            (_, Err(e)) => format!("error: {e}"),
            (Some(f), Ok(x)) if x.len() != f.dim() => format!("error: {name} takes {} values", f.dim()),
            // `{:?}` prints the shortest text that parses back to the same f64.
            (Some(f), Ok(x)) => format!("{:?}", f.eval(&x)),
        };
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_samplers SAMPLER FUNCTION BUDGET SEED [--batch N] | list | serve | cost SAMPLER TRIALS PARAMS ASKS";
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["list"] => {
            list();
            Ok(())
        }
        ["serve"] => {
            serve();
            Ok(())
        }
        ["cost", sampler, history, params, asks] => {
            let parse =
                |what: &str, s: &str| s.parse::<u64>().map_err(|_| format!("{what} must be a whole number, got '{s}'"));
            match (parse("TRIALS", history), parse("PARAMS", params), parse("ASKS", asks)) {
                (Ok(history), Ok(params), Ok(asks)) => cost(sampler, history, params as usize, asks),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        [sampler, function, budget, seed, rest @ ..] => {
            let parse =
                |what: &str, s: &str| s.parse::<u64>().map_err(|_| format!("{what} must be a whole number, got '{s}'"));
            let batch = match rest {
                [] => Ok(None),
                ["--batch", n] => parse("the batch size", n).and_then(|n| {
                    if n == 0 { Err("the batch size must be at least 1".to_string()) } else { Ok(Some(n)) }
                }),
                _ => Err(usage.to_string()),
            };
            match (parse("BUDGET", budget), parse("SEED", seed), batch) {
                (Ok(budget), Ok(seed), Ok(batch)) => run(sampler, function, budget, seed, batch),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        _ => Err(usage.to_string()),
    };
    if let Err(e) = result {
        eprintln!("bench_samplers: {e}");
        std::process::exit(2);
    }
}
