//! Sampler behaviour on simple functions: each model-based sampler finds the
//! optimum region within a budget, better than random search.

use gradus_tune::samplers::{RandomSampler, TpeSampler};
use gradus_tune::{Direction, Sampler, Study};

/// Branin's minimum value, 0.397887 (at (−π, 12.275), (π, 2.275), (9.42478, 2.475)).
const BRANIN_MIN: f64 = 0.397887;

fn branin(x: f64, y: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let (a, b, c, r, s, t) = (1.0, 5.1 / (4.0 * pi * pi), 5.0 / pi, 6.0, 10.0, 1.0 / (8.0 * pi));
    a * (y - b * x * x + c * x - r).powi(2) + s * (1.0 - t) * x.cos() + s
}

fn best_on(
    sampler: Box<dyn Sampler>,
    budget: u64,
    objective: fn(&mut gradus_tune::Trial<'_>) -> Result<f64, gradus_tune::TrialFailure>,
) -> f64 {
    let study = Study::in_memory("s", Direction::Minimize, sampler).unwrap();
    study.optimize(objective, budget, None, 1).unwrap();
    study.best_trial().unwrap().unwrap().value().unwrap()
}

fn sphere(t: &mut gradus_tune::Trial<'_>) -> Result<f64, gradus_tune::TrialFailure> {
    let mut sum = 0.0;
    for i in 0..4 {
        let x = t.suggest_float(&format!("x{i}"), -5.0, 5.0)?;
        sum += (x - 1.0).powi(2);
    }
    Ok(sum)
}

fn branin_objective(t: &mut gradus_tune::Trial<'_>) -> Result<f64, gradus_tune::TrialFailure> {
    Ok(branin(t.suggest_float("x", -5.0, 10.0)?, t.suggest_float("y", 0.0, 15.0)?))
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn tpe_finds_the_sphere_minimum_region_better_than_random() {
    let tpe = mean((0..5).map(|s| best_on(Box::new(TpeSampler::new(s)), 100, sphere)));
    let random = mean((0..5).map(|s| best_on(Box::new(RandomSampler::new(s)), 100, sphere)));
    assert!(tpe < 1.0, "TPE's mean best {tpe}");
    assert!(tpe < random / 2.0, "TPE {tpe} vs random {random}");
}

#[test]
fn tpe_finds_branins_minimum_region() {
    let tpe = mean((0..5).map(|s| best_on(Box::new(TpeSampler::new(s)), 100, branin_objective)));
    let random = mean((0..5).map(|s| best_on(Box::new(RandomSampler::new(s)), 100, branin_objective)));
    assert!(tpe - BRANIN_MIN < 0.5, "TPE's mean best {tpe}");
    assert!(tpe < random, "TPE {tpe} vs random {random}");
}

#[test]
fn tpe_respects_int_log_and_categorical_spaces() {
    let study = Study::in_memory("s", Direction::Minimize, Box::new(TpeSampler::new(1))).unwrap();
    study
        .optimize(
            |t| {
                let lr = t.suggest_float_log("lr", 1e-5, 1e-1)?;
                let layers = t.suggest_int("layers", 1, 8)?;
                let opt = t.suggest_categorical("opt", &["sgd", "adam", "rmsprop"])?;
                assert!((1e-5..=1e-1).contains(&lr) && (1..=8).contains(&layers));
                Ok((lr.log10() + 3.0).powi(2) + (layers as f64 - 3.0).powi(2) + if opt == "adam" { 0.0 } else { 2.0 })
            },
            80,
            None,
            1,
        )
        .unwrap();
    let trials = study.trials().unwrap();
    // Log-uniform exploration: the startup trials span several decades of lr.
    let decades: std::collections::BTreeSet<i64> =
        trials[..10].iter().map(|t| t.params["lr"].as_f64().unwrap().log10().floor() as i64).collect();
    assert!(decades.len() >= 3, "{decades:?}");
    let best = study.best_trial().unwrap().unwrap();
    let lr = best.params["lr"].as_f64().unwrap();
    assert!(
        (lr.log10() + 3.0).abs() < 0.5 && best.params["layers"] == 3,
        "found the continuous optimum region: {best:?}"
    );
}

#[test]
fn tpe_learns_the_best_categorical_choice() {
    let study = Study::in_memory("s", Direction::Maximize, Box::new(TpeSampler::new(2))).unwrap();
    let score = |c: &str| match c {
        "a" => 0.1,
        "b" => 0.5,
        "c" => 0.9,
        _ => 0.3,
    };
    study.optimize(|t| Ok(score(&t.suggest_categorical("c", &["a", "b", "c", "d"])?)), 60, None, 1).unwrap();
    let late_c = study.trials().unwrap()[30..].iter().filter(|t| t.params["c"] == "c").count();
    assert!(late_c >= 20, "the best choice dominates late trials: {late_c} of 30");
}

#[test]
fn constant_liar_spreads_eight_pending_asks() {
    // After 20 complete trials, 8 workers ask at once (nobody tells).
    let spread = |liar: bool| {
        let sampler = TpeSampler::new(5).constant_liar(liar);
        let study = Study::in_memory("s", Direction::Minimize, Box::new(sampler)).unwrap();
        study.optimize(branin_objective, 20, None, 1).unwrap();
        let mut points = Vec::new();
        let mut pending = Vec::new();
        for _ in 0..8 {
            let mut t = study.ask().unwrap();
            points.push((
                t.suggest_float("x", -5.0, 10.0).unwrap() / 15.0,
                t.suggest_float("y", 0.0, 15.0).unwrap() / 15.0,
            ));
            pending.push(t);
        }
        let mut total = 0.0;
        for (i, a) in points.iter().enumerate() {
            let nearest = points
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, b)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min);
            total += nearest;
        }
        total / 8.0
    };
    let (with, without) = (spread(true), spread(false));
    assert!(with > without, "mean nearest-neighbour distance with the liar {with} vs without {without}");
}

#[test]
fn seeded_tpe_is_reproducible() {
    let run = || {
        let study = Study::in_memory("s", Direction::Minimize, Box::new(TpeSampler::new(9))).unwrap();
        study.optimize(branin_objective, 30, None, 1).unwrap();
        study.trials().unwrap().into_iter().map(|t| t.params).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn cmaes_finds_the_sphere_minimum_with_a_larger_budget() {
    use gradus_tune::samplers::CmaEsSampler;
    let cma = mean((0..3).map(|s| best_on(Box::new(CmaEsSampler::new(s)), 300, sphere)));
    let random = mean((0..3).map(|s| best_on(Box::new(RandomSampler::new(s)), 300, sphere)));
    assert!(cma < 0.05, "CMA-ES's mean best {cma}");
    assert!(cma < random / 10.0, "CMA-ES {cma} vs random {random}");
}

#[test]
fn cmaes_is_reproducible_and_draws_categoricals_at_random() {
    use gradus_tune::samplers::CmaEsSampler;
    let run = || {
        let study = Study::in_memory("s", Direction::Minimize, Box::new(CmaEsSampler::new(4))).unwrap();
        study
            .optimize(
                |t| {
                    let c = t.suggest_categorical("c", &["a", "b"])?;
                    Ok(branin(t.suggest_float("x", -5.0, 10.0)?, t.suggest_float("y", 0.0, 15.0)?)
                        + f64::from(c == "a"))
                },
                60,
                None,
                1,
            )
            .unwrap();
        study.trials().unwrap().into_iter().map(|t| t.params).collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert!(a.iter().any(|p| p["c"] == "a") && a.iter().any(|p| p["c"] == "b"));
}

#[test]
fn gp_finds_branins_minimum_region_on_a_small_budget() {
    use gradus_tune::samplers::GpSampler;
    let start = std::time::Instant::now();
    let gp = mean((0..3).map(|s| best_on(Box::new(GpSampler::new(s)), 40, branin_objective)));
    let random = mean((0..3).map(|s| best_on(Box::new(RandomSampler::new(s)), 40, branin_objective)));
    eprintln!("GP mean best {gp} (random {random}) in {:.1?}", start.elapsed());
    assert!(gp - BRANIN_MIN < 0.2, "GP's mean best {gp}");
    assert!(gp < random, "GP {gp} vs random {random}");
}

#[test]
fn gp_spreads_pending_asks_and_handles_int_and_categorical_parameters() {
    use gradus_tune::samplers::GpSampler;
    let study = Study::in_memory("s", Direction::Minimize, Box::new(GpSampler::new(1))).unwrap();
    study
        .optimize(
            |t| {
                let n = t.suggest_int("n", 1, 20)?;
                let c = t.suggest_categorical("c", &["x", "y", "z"])?;
                let lr = t.suggest_float_log("lr", 1e-4, 1.0)?;
                Ok((n as f64 - 7.0).powi(2) / 10.0 + (lr.log10() + 2.0).powi(2) + if c == "y" { 0.0 } else { 1.0 })
            },
            30,
            None,
            1,
        )
        .unwrap();
    let best = study.best_trial().unwrap().unwrap();
    assert!(best.value().unwrap() < 1.0, "{best:?}");
    let mut asked = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..4 {
        let mut t = study.ask().unwrap();
        asked.push((
            t.suggest_int("n", 1, 20).unwrap(),
            t.suggest_categorical("c", &["x", "y", "z"]).unwrap(),
            t.suggest_float_log("lr", 1e-4, 1.0).unwrap().to_bits(),
        ));
        pending.push(t);
    }
    let mut distinct = asked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "four pending asks, four different points: {asked:?}");
}

#[test]
fn gp_learns_from_pruned_trials_where_not_to_look() {
    // x > 0.5 is a poor region: its trials report a high loss and are
    // pruned, never completing. The GP must steer away from it all the same.
    let study = Study::in_memory("s", Direction::Minimize, Box::new(gradus_tune::samplers::GpSampler::new(3))).unwrap();
    study
        .optimize(
            |t| {
                let x = t.suggest_float("x", 0.0, 1.0)?;
                let y = t.suggest_float("y", 0.0, 1.0)?;
                if x > 0.5 {
                    t.report(1, 10.0 + x)?;
                    return Err(gradus_tune::TrialFailure::Pruned);
                }
                Ok((x - 0.3).powi(2) + (y - 0.6).powi(2))
            },
            40,
            None,
            1,
        )
        .unwrap();
    let late_in_poor_region =
        study.trials().unwrap().iter().skip(15).filter(|t| t.params["x"].as_f64().unwrap() > 0.5).count();
    assert!(late_in_poor_region <= 5, "{late_in_poor_region} of the last 25 trials went to the pruned region");
}

#[test]
fn tpe_proposes_the_same_trials_when_only_trials_outside_its_best_group_are_pruned() {
    // TPE reads a study by rank: the best 10% of the finished trials (by
    // value among the complete ones) against the rest, pruned ones among the
    // rest. So in a fixed space, stopping trials that would never have been
    // among the best leaves every later proposal as it was: the pruner saves
    // their epochs and moves nothing (BENCHMARKS.md, "Pruning"). Pruned
    // trials' values would count only if too few trials were complete to
    // fill the best group, and in a conditional space the joint parameters
    // are those every complete trial has, which pruning can change.
    let run = |prune_poor: bool, n_jobs: usize| {
        let study = Study::in_memory("s", Direction::Minimize, Box::new(TpeSampler::new(11))).unwrap();
        study
            .optimize(
                |t| {
                    let x = t.suggest_float("x", 0.0, 1.0)?;
                    let y = t.suggest_float("y", 0.0, 1.0)?;
                    let end = x + 0.1 * (y - 0.5).powi(2);
                    for step in 1..=3u64 {
                        t.report(step, end + 1.0 / step as f64)?;
                        if prune_poor && x > 0.7 {
                            return Err(gradus_tune::TrialFailure::Pruned);
                        }
                    }
                    Ok(end)
                },
                60,
                None,
                n_jobs,
            )
            .unwrap();
        study.trials().unwrap()
    };
    for n_jobs in [1, 2] {
        let (full, pruned) = (run(false, n_jobs), run(true, n_jobs));
        let poor = |t: &gradus_tune::FrozenTrial| t.params["x"].as_f64().unwrap() > 0.7;
        // The premise: no trial stopped here ever ranks among the best 10%
        // of the complete trials before it in the unpruned study.
        for n in 10..full.len() {
            let mut before: Vec<&gradus_tune::FrozenTrial> = full[..n].iter().collect();
            before.sort_by(|a, b| a.value().unwrap().total_cmp(&b.value().unwrap()));
            assert!(!before[..n.div_ceil(10)].iter().any(|t| poor(t)), "a poor trial among the best before trial {n}");
        }
        let stopped = pruned.iter().filter(|t| t.state == gradus_tune::TrialState::Pruned).count();
        assert!(stopped >= 3, "only {stopped} trials pruned: the test needs some");
        let params = |s: &[gradus_tune::FrozenTrial]| s.iter().map(|t| t.params.clone()).collect::<Vec<_>>();
        assert_eq!(params(&full), params(&pruned), "n_jobs = {n_jobs}");
    }
}

/// The widest ranges a space accepts, and ranges past them refused.
#[test]
fn every_sampler_stays_inside_the_widest_ranges_a_space_accepts() {
    use gradus_tune::samplers::{CmaEsSampler, GpSampler, SobolSampler};
    use gradus_tune::{Distribution, MAX_EXACT_INT, SearchSpace};
    let space: Vec<(&str, Distribution)> = vec![
        ("all", Distribution::Int { low: -MAX_EXACT_INT, high: MAX_EXACT_INT, log: false, step: 1 }),
        ("upper", Distribution::Int { low: 0, high: MAX_EXACT_INT, log: false, step: 1 }),
        ("big_log", Distribution::Int { low: 1, high: MAX_EXACT_INT, log: true, step: 1 }),
        ("stepped", Distribution::Int { low: -MAX_EXACT_INT, high: MAX_EXACT_INT, log: false, step: 7 }),
        ("wide", Distribution::float(-8e307, 8e307)),
        ("fine", Distribution::Float { low: -1e300, high: 1e300, log: false, step: Some(1e285) }),
        ("tiny_to_huge", Distribution::log_float(1e-300, 1e300)),
    ];
    let declared = SearchSpace(space.iter().map(|(n, d)| (n.to_string(), d.clone())).collect());
    let samplers: Vec<(&str, Box<dyn Sampler>)> = vec![
        ("random", Box::new(RandomSampler::new(1))),
        ("sobol", Box::new(SobolSampler::new(1, Some(&declared)))),
        ("tpe", Box::new(TpeSampler::new(1))),
        ("gp", Box::new(GpSampler::new(1))),
        ("cmaes", Box::new(CmaEsSampler::new(1))),
    ];
    for (name, sampler) in samplers {
        let study = Study::in_memory("s", Direction::Minimize, sampler).unwrap();
        let space = space.clone();
        let name = name.to_string();
        study
            .optimize(
                move |t| {
                    let mut sum = 0.0;
                    for (param, d) in &space {
                        let v = t.suggest(param, d.clone()).inspect_err(|e| eprintln!("{name}: {param}: {e}"))?;
                        let internal = d.to_internal(param, &v);
                        if !internal.as_ref().is_ok_and(|&i| d.contains(i)) {
                            eprintln!("{name}: {param}: {v} is outside {d:?}: {internal:?}");
                            return Err(gradus_tune::TrialFailure::Failed(format!("{param}: {v}")));
                        }
                        let internal = internal.unwrap_or_default();
                        sum += (internal / 1e300).abs();
                    }
                    Ok(sum)
                },
                24,
                None,
                1,
            )
            .unwrap();
        let complete = study.trials().unwrap().iter().filter(|t| t.value().is_some()).count();
        assert_eq!(complete, 24, "every trial in range");
    }
    // Past them: refused with the reason, never sampled wrongly.
    let full = Distribution::Int { low: i64::MIN, high: i64::MAX, log: false, step: 1 };
    assert!(full.validate("n").unwrap_err().to_string().contains("2^53"));
    let err = Distribution::float(-1e308, 1e308).validate("x").unwrap_err().to_string();
    assert!(err.contains("wider than a float can hold"), "{err}");
    let fine = Distribution::Float { low: -1e300, high: 1e300, log: false, step: Some(1e-300) };
    assert!(fine.validate("x").unwrap_err().to_string().contains("more than 2^53 levels"));
}

#[test]
fn a_grid_too_large_is_refused_by_counting_not_by_building_it() {
    use gradus_tune::samplers::GridSampler;
    use gradus_tune::{Distribution, SearchSpace};
    let grid = |low: i64, high: i64| {
        GridSampler::new(
            SearchSpace([("n".to_string(), Distribution::Int { low, high, log: false, step: 1 })].into()),
            0,
        )
    };
    // Two trillion points (16 TB as a list) and a hundred million: refused at once.
    let started = std::time::Instant::now();
    let err = grid(-1_000_000_000_000, 1_000_000_000_000).unwrap_err().to_string();
    assert!(err.contains("2000000000001 points is too many"), "{err}");
    let err = grid(0, 100_000_000).unwrap_err().to_string();
    assert!(err.contains("100000001 points is too many"), "{err}");
    assert!(started.elapsed().as_secs_f64() < 1.0, "counted, not listed");
    assert_eq!(grid(0, 9).unwrap().len(), 10);
}
