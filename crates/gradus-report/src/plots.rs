//! The plots of a study, each an SVG [`Chart`] of its trials as the
//! storage holds them: the optimisation history, the intermediate values
//! (learning curves), the empirical distribution of values, and the
//! timeline of trials per worker.

use std::collections::BTreeMap;

use gradus_tune::{Direction, Distribution, FrozenTrial, TrialState, WORKER};

use crate::importance::{IMPORTANCE_SEEDS, Method, importances, pair_surface};
use crate::svg::{BLUE, Chart, GREEN, GREY, Mark, ORANGE, RED, Scale, band, number, viridis};
use crate::{ReportError, StudyTrials};

/// A plot `gradus plot` can draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    History,
    Intermediate,
    Edf,
    Timeline,
    Importance,
    Slice,
    Parallel,
    Contour,
}

impl PlotKind {
    pub const ALL: [PlotKind; 8] = [
        PlotKind::History,
        PlotKind::Intermediate,
        PlotKind::Edf,
        PlotKind::Timeline,
        PlotKind::Importance,
        PlotKind::Slice,
        PlotKind::Parallel,
        PlotKind::Contour,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PlotKind::History => "history",
            PlotKind::Intermediate => "intermediate",
            PlotKind::Edf => "edf",
            PlotKind::Timeline => "timeline",
            PlotKind::Importance => "importance",
            PlotKind::Slice => "slice",
            PlotKind::Parallel => "parallel",
            PlotKind::Contour => "contour",
        }
    }

    /// The picture of `study` as an SVG document; an error when the study
    /// has nothing to show.
    pub fn svg(self, study: &StudyTrials) -> Result<String, ReportError> {
        let chart = match self {
            PlotKind::History => history(study)?,
            PlotKind::Intermediate => intermediate(study)?,
            PlotKind::Edf => edf(study)?,
            PlotKind::Timeline => timeline(study)?,
            PlotKind::Importance => importance(study)?,
            PlotKind::Slice => return Ok(crate::svg::grid(&slices(study)?, 2)),
            PlotKind::Parallel => parallel(study)?,
            PlotKind::Contour => contour(study)?,
        };
        Ok(chart.to_svg())
    }
}

/// The complete trials and their values, in trial order; an error naming
/// the study when there are none.
fn complete(study: &StudyTrials) -> Result<Vec<(&FrozenTrial, f64)>, ReportError> {
    let done: Vec<(&FrozenTrial, f64)> = study.trials.iter().filter_map(|t| t.value().map(|v| (t, v))).collect();
    if done.is_empty() {
        return Err(ReportError::Empty { study: study.name.clone(), what: "no complete trial".into() });
    }
    Ok(done)
}

/// A trial's tooltip: its number, state or value, and its parameters.
fn describe(trial: &FrozenTrial) -> String {
    let state = match trial.state {
        TrialState::Complete(v) => format!("value {}", number(v)),
        TrialState::Pruned => format!("pruned after step {}", trial.intermediate.keys().last().copied().unwrap_or(0)),
        TrialState::Fail => format!("failed: {}", trial.fail_reason().unwrap_or("no reason recorded")),
        TrialState::Running => "running".into(),
        TrialState::Waiting => "waiting".into(),
    };
    let params: Vec<String> = trial.params.iter().map(|(k, v)| format!("{k} = {}", show(v))).collect();
    format!("trial {}: {state}\n{}", trial.number, params.join("\n"))
}

/// A parameter value as a tooltip shows it.
fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), number),
        other => other.to_string(),
    }
}

/// A value axis over `values`: log when all are positive and they span more
/// than two decades, linear otherwise.
fn value_scale(values: &[f64]) -> Scale {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (low, high) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    if low > 0.0 && high / low > 100.0 { Scale::log_over(finite) } else { Scale::linear_over(finite) }
}

/// What the state counts say about the trials a plot leaves out.
fn counts_note(study: &StudyTrials) -> String {
    let count = |f: fn(&TrialState) -> bool| study.trials.iter().filter(|t| f(&t.state)).count();
    let (complete, pruned, failed, running) = (
        count(|s| matches!(s, TrialState::Complete(_))),
        count(|s| *s == TrialState::Pruned),
        count(|s| *s == TrialState::Fail),
        count(|s| matches!(s, TrialState::Running | TrialState::Waiting)),
    );
    format!("{} trials: {complete} complete, {pruned} pruned, {failed} failed, {running} running", study.trials.len())
}

/// Each complete trial's value by its number, and the best value so far.
pub fn history(study: &StudyTrials) -> Result<Chart, ReportError> {
    let done = complete(study)?;
    let xs: Vec<f64> = done.iter().map(|(t, _)| t.number as f64).collect();
    let ys: Vec<f64> = done.iter().map(|(_, v)| *v).collect();
    let mut best = Vec::with_capacity(ys.len());
    for &v in &ys {
        let better = |b: f64| match study.direction {
            Direction::Minimize => v < b,
            Direction::Maximize => v > b,
        };
        let last = best.last().copied();
        best.push(match last {
            Some(b) if !better(b) => b,
            _ => v,
        });
    }
    let last = study.trials.iter().map(|t| t.number).max().unwrap_or(0) as f64;
    let mut chart = Chart::new(
        &format!("Optimisation history of {}", study.name),
        "trial",
        &format!("objective value ({})", direction_word(study.direction)),
        Scale::linear_over([0.0, last]),
        value_scale(&ys),
    );
    chart.note = Some(counts_note(study));
    let tips = done.iter().map(|(t, _)| describe(t)).collect();
    // The best line runs on to the last trial.
    let (mut bx, mut by) = (xs.clone(), best);
    bx.push(last);
    by.push(*by.last().expect("a complete trial"));
    chart.marks.push(Mark::Line { xs: bx, ys: by, colour: RED, step: true, tip: Some("best so far".into()) });
    chart.marks.push(Mark::Points { xs, ys, colour: BLUE, tips });
    chart.legend = vec![("objective value".into(), BLUE), ("best so far".into(), RED)];
    Ok(chart)
}

fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Minimize => "lower is better",
        Direction::Maximize => "higher is better",
    }
}

/// The colour of a trial's state.
fn state_colour(state: &TrialState) -> &'static str {
    match state {
        TrialState::Complete(_) => BLUE,
        TrialState::Pruned => ORANGE,
        TrialState::Fail => GREY,
        TrialState::Running | TrialState::Waiting => GREEN,
    }
}

fn state_legend() -> Vec<(String, &'static str)> {
    vec![("complete".into(), BLUE), ("pruned".into(), ORANGE), ("failed".into(), GREY), ("running".into(), GREEN)]
}

/// Each trial's reported values by step (its learning curve); a pruned
/// trial ends with a cross at the step it was stopped.
pub fn intermediate(study: &StudyTrials) -> Result<Chart, ReportError> {
    let reporting: Vec<&FrozenTrial> = study.trials.iter().filter(|t| !t.intermediate.is_empty()).collect();
    if reporting.is_empty() {
        return Err(ReportError::Empty {
            study: study.name.clone(),
            what: "no trial reported an intermediate value".into(),
        });
    }
    let values: Vec<f64> = reporting.iter().flat_map(|t| t.intermediate.values().copied()).collect();
    let steps = reporting.iter().flat_map(|t| t.intermediate.keys().map(|&s| s as f64));
    let mut chart = Chart::new(
        &format!("Intermediate values of {}", study.name),
        "step",
        &format!("reported value ({})", direction_word(study.direction)),
        Scale::linear_over(steps.chain([0.0])),
        value_scale(&values),
    );
    chart.note = Some(counts_note(study));
    let (mut cx, mut cy, mut ctips) = (Vec::new(), Vec::new(), Vec::new());
    for t in &reporting {
        let xs: Vec<f64> = t.intermediate.keys().map(|&s| s as f64).collect();
        let ys: Vec<f64> = t.intermediate.values().copied().collect();
        if t.state == TrialState::Pruned {
            cx.push(*xs.last().expect("reported"));
            cy.push(*ys.last().expect("reported"));
            ctips.push(describe(t));
        }
        chart.marks.push(Mark::Line { xs, ys, colour: state_colour(&t.state), step: false, tip: Some(describe(t)) });
    }
    chart.marks.push(Mark::Crosses { xs: cx, ys: cy, colour: RED, tips: ctips });
    chart.legend = state_legend();
    chart.legend.push(("where pruned (x)".into(), RED));
    Ok(chart)
}

/// The empirical distribution of the complete trials' values: the share of
/// them at or below each value.
pub fn edf(study: &StudyTrials) -> Result<Chart, ReportError> {
    let mut values: Vec<f64> = complete(study)?.into_iter().map(|(_, v)| v).filter(|v| v.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let mut chart = Chart::new(
        &format!("Empirical distribution of the values of {}", study.name),
        &format!("objective value ({})", direction_word(study.direction)),
        "share of complete trials at or below",
        value_scale(&values),
        Scale::Linear { low: 0.0, high: 1.02 },
    );
    chart.note = Some(counts_note(study));
    let ys: Vec<f64> = (1..=values.len()).map(|i| i as f64 / n).collect();
    let (mut xs, mut steps) = (vec![values[0]], vec![0.0]);
    xs.extend(&values);
    steps.extend(&ys);
    chart.marks.push(Mark::Line { xs, ys: steps, colour: BLUE, step: true, tip: None });
    Ok(chart)
}

/// Each trial as a bar from its start to its end (now, for a running one),
/// one lane per worker (process and thread), coloured by state.
pub fn timeline(study: &StudyTrials) -> Result<Chart, ReportError> {
    let timed: Vec<&FrozenTrial> = study.trials.iter().filter(|t| t.started_at.is_some()).collect();
    if timed.is_empty() {
        return Err(ReportError::Empty { study: study.name.clone(), what: "no trial has started".into() });
    }
    let lane_of = |t: &FrozenTrial| -> String {
        t.attrs.get(WORKER).map_or("unknown worker".into(), |w| {
            let host = w["host"].as_str().unwrap_or("?");
            let pid = w["pid"].as_u64().map_or("?".into(), |p| p.to_string());
            match w["slot"].as_u64() {
                Some(slot) => format!("{host}:{pid}/{slot}"),
                None => format!("{host}:{pid}"),
            }
        })
    };
    let mut lanes: Vec<String> = timed.iter().map(|t| lane_of(t)).collect();
    lanes.sort();
    lanes.dedup();
    let start = timed.iter().filter_map(|t| t.started_at).fold(f64::INFINITY, f64::min);
    let now = gradus_tune::now();
    let end_of = |t: &FrozenTrial| t.finished_at.or(t.heartbeat_at).unwrap_or(now).max(t.started_at.unwrap_or(now));
    let last = timed.iter().map(|t| end_of(t)).fold(start, f64::max);
    let mut chart = Chart::new(
        &format!("Timeline of {}", study.name),
        "seconds since the first trial started",
        "worker (host:process/thread)",
        Scale::linear_over([0.0, last - start]),
        Scale::Bands(lanes.clone()),
    );
    chart.note = Some(counts_note(study));
    let (mut rects, mut colours, mut tips) = (Vec::new(), Vec::new(), Vec::new());
    for t in &timed {
        let lane = lanes.iter().position(|l| *l == lane_of(t)).expect("every lane was listed");
        let (low, high) = band(lane);
        let (a, b) = (t.started_at.unwrap_or(start) - start, end_of(t) - start);
        rects.push([a, low, b, high]);
        colours.push(state_colour(&t.state).to_string());
        tips.push(format!("{}\n{:.1} s", describe(t), b - a));
    }
    chart.marks.push(Mark::Rects { rects, colours, tips });
    chart.legend = state_legend();
    Ok(chart)
}

/// Each parameter's importance by fANOVA and by PED-ANOVA (the mean over
/// [`IMPORTANCE_SEEDS`] seeds, a line across ± one standard deviation),
/// the most important at the top.
pub fn importance(study: &StudyTrials) -> Result<Chart, ReportError> {
    let fanova = importances(study, Method::Fanova, &IMPORTANCE_SEEDS)?;
    let ped = importances(study, Method::PedAnova, &IMPORTANCE_SEEDS)?;
    // Bottom to top: the least important by fANOVA first.
    let names: Vec<String> = fanova.iter().rev().map(|i| i.param.clone()).collect();
    let top = fanova.iter().chain(&ped).map(|i| i.mean + i.spread).fold(0.0f64, f64::max);
    let mut chart = Chart::new(
        &format!("Hyperparameter importance in {}", study.name),
        "importance (share of the explained variation; each method sums to 1)",
        "hyperparameter",
        Scale::Linear { low: 0.0, high: (top * 1.05).max(0.05) },
        Scale::Bands(names.clone()),
    );
    let n = study.trials.iter().filter(|t| t.value().is_some_and(f64::is_finite)).count();
    chart.note = Some(format!(
        "{n} complete trials; mean of {} seeds, the line spans ± one standard deviation",
        IMPORTANCE_SEEDS.len()
    ));
    for (found, colour, offset) in [(&fanova, BLUE, 0.0), (&ped, ORANGE, -0.4)] {
        let (mut rects, mut tips) = (Vec::new(), Vec::new());
        let method = if offset == 0.0 { Method::Fanova } else { Method::PedAnova };
        for i in found.iter() {
            let at = names.iter().position(|n| *n == i.param).expect("both methods read the same parameters") as f64;
            rects.push([0.0, at + offset, i.mean, at + offset + 0.4]);
            tips.push(format!("{} by {}: {} ± {}", i.param, method.name(), number(i.mean), number(i.spread)));
            let y = at + offset + 0.2;
            chart.marks.push(Mark::Line {
                xs: vec![(i.mean - i.spread).max(0.0), i.mean + i.spread],
                ys: vec![y, y],
                colour: "#333333",
                step: false,
                tip: None,
            });
        }
        let colours = vec![colour.to_string(); rects.len()];
        chart.marks.insert(0, Mark::Rects { rects, colours, tips });
    }
    chart.legend = vec![(Method::Fanova.name().into(), BLUE), (Method::PedAnova.name().into(), ORANGE)];
    Ok(chart)
}

/// A parameter's axis: log for a log distribution, one band per choice
/// for a categorical, linear otherwise; and where a trial's value falls on it.
fn param_axis(d: &Distribution, values: &[f64]) -> Scale {
    match d {
        Distribution::Categorical { choices } => Scale::Bands(choices.iter().map(show).collect()),
        Distribution::Float { log: true, .. } | Distribution::Int { log: true, .. } => {
            Scale::log_over(values.iter().copied())
        }
        _ => Scale::linear_over(values.iter().copied()),
    }
}

/// The parameters of the complete trials (any of them), by name, with the
/// distribution the first trial that has each gave it.
fn params_of(done: &[(&FrozenTrial, f64)]) -> BTreeMap<String, Distribution> {
    let mut params = BTreeMap::new();
    for (t, _) in done {
        for (name, d) in &t.distributions {
            params.entry(name.clone()).or_insert_with(|| d.clone());
        }
    }
    params
}

/// One chart per parameter: each complete trial's value against the
/// parameter's value (the trials that have it).
pub fn slices(study: &StudyTrials) -> Result<Vec<Chart>, ReportError> {
    let done = complete(study)?;
    let params = params_of(&done);
    if params.is_empty() {
        return Err(ReportError::Empty { study: study.name.clone(), what: "no parameter".into() });
    }
    let all_values: Vec<f64> = done.iter().map(|(_, v)| *v).collect();
    let mut charts = Vec::new();
    for (name, d) in &params {
        let having: Vec<(&FrozenTrial, f64, f64)> = done
            .iter()
            .filter(|(t, _)| t.distributions.get(name) == Some(d))
            .filter_map(|(t, v)| t.internal(name).map(|x| (*t, x, *v)))
            .collect();
        let xs: Vec<f64> = having.iter().map(|h| h.1).collect();
        let mut chart = Chart::new(
            &format!("{name} in {}", study.name),
            name,
            &format!("objective value ({})", direction_word(study.direction)),
            param_axis(d, &xs),
            value_scale(&all_values),
        );
        chart.note = Some(format!("{} of {} complete trials have it", having.len(), done.len()));
        chart.marks.push(Mark::Points {
            xs,
            ys: having.iter().map(|h| h.2).collect(),
            colour: BLUE,
            // Short: one panel per parameter, so a study's every trial is in each.
            tips: having
                .iter()
                .map(|h| format!("trial {}: value {}, {name} = {}", h.0.number, number(h.2), show(&h.0.params[name])))
                .collect(),
        });
        charts.push(chart);
    }
    Ok(charts)
}

/// Parallel coordinates: one vertical axis for the value and one per
/// parameter every complete trial has, each trial a line across them; the
/// best tenth drawn dark over the others.
pub fn parallel(study: &StudyTrials) -> Result<Chart, ReportError> {
    let done = complete(study)?;
    let shared: Vec<(String, Distribution)> = params_of(&done)
        .into_iter()
        .filter(|(name, d)| done.iter().all(|(t, _)| t.distributions.get(name) == Some(d)))
        .collect();
    let mut axes = vec!["objective value".to_string()];
    axes.extend(shared.iter().map(|(n, _)| n.clone()));
    let mut chart = Chart::new(
        &format!("Parallel coordinates of {}", study.name),
        "",
        "each axis: lowest (bottom) to highest (top)",
        Scale::Bands(axes.clone()),
        Scale::Linear { low: -0.08, high: 1.08 },
    );
    chart.y_ticks = false;
    chart.note = Some(format!(
        "{} complete trials; the best tenth dark; parameters only some trials have are left out",
        done.len()
    ));
    // Each trial's position on each axis, from 0 to 1, and each axis' end labels.
    let mut columns: Vec<Vec<f64>> = Vec::new();
    // (axis, height, text) of each word written on the axes.
    let mut words: Vec<(f64, f64, String)> = Vec::new();
    let end_labels = |words: &mut Vec<(f64, f64, String)>, k: usize, low: String, high: String| {
        words.push((k as f64, -0.07, low));
        words.push((k as f64, 1.03, high));
    };
    let values: Vec<f64> = done.iter().map(|(_, v)| *v).collect();
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    columns.push(values.iter().map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }).collect());
    end_labels(&mut words, 0, number(lo), number(hi));
    for (k, (name, d)) in shared.iter().enumerate() {
        let xs: Vec<f64> = done.iter().map(|(t, _)| t.internal(name).unwrap_or(f64::NAN)).collect();
        let (column, low, high) = match d {
            Distribution::Categorical { choices } => {
                let n = (choices.len() - 1).max(1) as f64;
                let names = choices.iter().map(show).collect::<Vec<_>>();
                // Every choice named at its height.
                for (i, c) in names.iter().enumerate().skip(1).take(names.len().saturating_sub(2)) {
                    words.push(((k + 1) as f64, i as f64 / n, c.clone()));
                }
                (xs.iter().map(|x| x / n).collect(), names[0].clone(), names[names.len() - 1].clone())
            }
            Distribution::Float { low, high, log: true, .. } => {
                let (a, b) = (low.ln(), high.ln());
                (xs.iter().map(|x| (x.ln() - a) / (b - a)).collect(), number(*low), number(*high))
            }
            Distribution::Int { low, high, log: true, .. } => {
                let (a, b) = ((*low as f64).max(0.5).ln(), (*high as f64).ln());
                (
                    xs.iter().map(|x| (x.max(0.5).ln() - a) / (b - a).max(1e-12)).collect(),
                    low.to_string(),
                    high.to_string(),
                )
            }
            Distribution::Float { low, high, .. } => {
                (xs.iter().map(|x| (x - low) / (high - low).max(1e-300)).collect(), number(*low), number(*high))
            }
            Distribution::Int { low, high, .. } => (
                xs.iter().map(|x| (x - *low as f64) / ((high - low) as f64).max(1.0)).collect(),
                low.to_string(),
                high.to_string(),
            ),
        };
        columns.push(column);
        end_labels(&mut words, k + 1, low, high);
    }
    // The axes themselves.
    for k in 0..axes.len() {
        chart.marks.push(Mark::Line {
            xs: vec![k as f64; 2],
            ys: vec![0.0, 1.0],
            colour: GREY,
            step: false,
            tip: None,
        });
    }
    let mut order: Vec<usize> = (0..done.len()).collect();
    order.sort_by(|&a, &b| match study.direction {
        Direction::Minimize => values[a].total_cmp(&values[b]),
        Direction::Maximize => values[b].total_cmp(&values[a]),
    });
    let best = (done.len() as f64 * 0.1).ceil() as usize;
    let line = |i: usize| ((0..axes.len()).map(|k| k as f64).collect(), columns.iter().map(|c| c[i]).collect());
    let (good, rest) = order.split_at(best.min(order.len()));
    chart.marks.push(Mark::Polylines {
        lines: rest.iter().map(|&i| line(i)).collect(),
        colour: GREY,
        opacity: 0.35,
        tips: rest.iter().map(|&i| describe(done[i].0)).collect(),
    });
    chart.marks.push(Mark::Polylines {
        lines: good.iter().map(|&i| line(i)).collect(),
        colour: BLUE,
        opacity: 0.9,
        tips: good.iter().map(|&i| describe(done[i].0)).collect(),
    });
    chart.marks.push(Mark::Texts {
        xs: words.iter().map(|w| w.0).collect(),
        ys: words.iter().map(|w| w.1).collect(),
        texts: words.into_iter().map(|w| w.2).collect(),
    });
    chart.legend = vec![("best tenth".into(), BLUE), ("the others".into(), GREY)];
    Ok(chart)
}

/// The two most important numeric hyperparameters (by fANOVA): the
/// forest's prediction over their ranges, the others averaged out, as
/// coloured cells (viridis: dark is low), with the trials on top.
pub fn contour(study: &StudyTrials) -> Result<Chart, ReportError> {
    const STEPS: usize = 40;
    let ([a, b], xs, ys, values) = pair_surface(study, STEPS)?;
    let (lo, hi) = values.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let dist = |name: &str| study.trials.iter().find_map(|t| t.distributions.get(name).cloned());
    let log = |name: &str| {
        matches!(dist(name), Some(Distribution::Float { log: true, .. } | Distribution::Int { log: true, .. }))
    };
    let scale = |name: &str, axis: &[f64]| {
        let (l, h) = (axis[0], axis[axis.len() - 1]);
        if log(name) { Scale::Log { low: l, high: h } } else { Scale::Linear { low: l, high: h } }
    };
    let mut chart = Chart::new(&format!("{a} and {b} in {}", study.name), &a, &b, scale(&a, &xs), scale(&b, &ys));
    chart.note = Some(format!(
        "fANOVA's two most important numeric parameters; colour: predicted value, {} (dark) to {} (yellow), the rest averaged out",
        number(lo),
        number(hi)
    ));
    // Each grid point's cell: halfway to its neighbours (in log space on a log axis).
    let edges = |axis: &[f64], log: bool| -> Vec<f64> {
        let t = |v: f64| if log { v.ln() } else { v };
        let u = |v: f64| if log { v.exp() } else { v };
        let mut e = vec![axis[0]];
        e.extend(axis.windows(2).map(|w| u((t(w[0]) + t(w[1])) / 2.0)));
        e.push(axis[axis.len() - 1]);
        e
    };
    let (ex, ey) = (edges(&xs, log(&a)), edges(&ys, log(&b)));
    let (mut rects, mut colours, mut tips) = (Vec::new(), Vec::new(), Vec::new());
    for (j, row) in values.iter().enumerate() {
        for (i, &v) in row.iter().enumerate() {
            rects.push([ex[i], ey[j], ex[i + 1], ey[j + 1]]);
            colours.push(viridis(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }));
            tips.push(format!("{a} = {}, {b} = {}: predicted {}", number(xs[i]), number(ys[j]), number(v)));
        }
    }
    chart.marks.push(Mark::Rects { rects, colours, tips });
    let placed: Vec<(&FrozenTrial, f64, f64)> =
        complete(study)?.into_iter().filter_map(|(t, _)| Some((t, t.internal(&a)?, t.internal(&b)?))).collect();
    chart.marks.push(Mark::Points {
        xs: placed.iter().map(|p| p.1).collect(),
        ys: placed.iter().map(|p| p.2).collect(),
        colour: RED,
        tips: placed.iter().map(|p| describe(p.0)).collect(),
    });
    chart.legend = vec![("trials".into(), RED)];
    Ok(chart)
}

/// A training run's loss curve (for `gradus train`; the numbers only,
/// nothing of training): the batch loss at each logged step, and each
/// epoch's mean training loss and validation loss at the step it ended.
pub fn loss_curve(title: &str, steps: &[(f64, f64)], epochs: &[(f64, f64, Option<f64>)]) -> Chart {
    let values: Vec<f64> =
        steps.iter().map(|s| s.1).chain(epochs.iter().map(|e| e.1)).chain(epochs.iter().filter_map(|e| e.2)).collect();
    let last = steps.iter().map(|s| s.0).chain(epochs.iter().map(|e| e.0)).fold(0.0, f64::max);
    let mut chart = Chart::new(title, "step", "loss", Scale::linear_over([0.0, last]), value_scale(&values));
    let has_valid = epochs.iter().any(|e| e.2.is_some());
    chart.note = Some(format!("{} epochs, {} steps", epochs.len(), last));
    chart.marks.push(Mark::Line {
        xs: steps.iter().map(|s| s.0).collect(),
        ys: steps.iter().map(|s| s.1).collect(),
        colour: GREY,
        step: false,
        tip: Some("batch loss".into()),
    });
    chart.marks.push(Mark::Line {
        xs: epochs.iter().map(|e| e.0).collect(),
        ys: epochs.iter().map(|e| e.1).collect(),
        colour: BLUE,
        step: false,
        tip: Some("epoch mean training loss".into()),
    });
    chart.legend = vec![("batch loss".into(), GREY), ("epoch training loss".into(), BLUE)];
    if has_valid {
        let valid: Vec<(f64, f64)> = epochs.iter().filter_map(|e| e.2.map(|v| (e.0, v))).collect();
        chart.marks.push(Mark::Line {
            xs: valid.iter().map(|v| v.0).collect(),
            ys: valid.iter().map(|v| v.1).collect(),
            colour: ORANGE,
            step: false,
            tip: Some("validation loss".into()),
        });
        chart.legend.push(("validation loss".into(), ORANGE));
    }
    chart
}

#[cfg(test)]
mod tests {
    use gradus_tune::{Distribution, InMemoryStorage, Storage};
    use serde_json::json;

    use super::*;

    /// A study of six trials: four complete (values 5, 3, 4, 1), one pruned
    /// at step 2, one failed, with learning curves and workers.
    fn study(direction: Direction) -> (InMemoryStorage, StudyTrials) {
        let s = InMemoryStorage::new();
        let id = s.create_study("s", direction, &json!({})).unwrap().id;
        let lr = Distribution::log_float(1e-7, 1.0);
        for (i, end) in [Some(5.0), Some(3.0), None, Some(4.0), Some(1.0), Some(f64::NAN)].into_iter().enumerate() {
            let t = s.create_trial(id).unwrap();
            s.set_param(t.id, "lr", &lr, &json!(10f64.powi(-(i as i32) - 1))).unwrap();
            s.set_attr(t.id, WORKER, &json!({"host": "h", "pid": 7, "slot": i % 2})).unwrap();
            for step in 1..=3 {
                if end.is_none() && step == 3 {
                    break;
                }
                s.report(t.id, step, 10.0 - step as f64 - i as f64).unwrap();
            }
            let state = match end {
                Some(v) if v.is_nan() => TrialState::Fail,
                Some(v) => TrialState::Complete(v),
                None => TrialState::Pruned,
            };
            s.finish_trial(t.id, state).unwrap();
        }
        let trials = StudyTrials::load(&s, "s").unwrap();
        (s, trials)
    }

    fn study_fixture(direction: Direction) -> (InMemoryStorage, StudyTrials) {
        study(direction)
    }

    fn parsed(chart: &Chart) -> (String, Vec<String>) {
        let svg = chart.to_svg();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        let texts = doc.descendants().filter_map(|n| n.text()).map(str::to_string).collect();
        (svg, texts)
    }

    #[test]
    fn the_history_shows_each_complete_value_and_the_best_so_far_either_way() {
        for (direction, best) in
            [(Direction::Minimize, [5.0, 3.0, 3.0, 1.0, 1.0]), (Direction::Maximize, [5.0, 5.0, 5.0, 5.0, 5.0])]
        {
            let (_, study) = study(direction);
            let chart = history(&study).unwrap();
            let Mark::Line { xs, ys, .. } = &chart.marks[0] else { panic!("the best line first") };
            assert_eq!(xs, &[0.0, 1.0, 3.0, 4.0, 5.0], "trial numbers, then the last trial");
            assert_eq!(ys, &best);
            let (svg, texts) = parsed(&chart);
            assert!(texts.iter().any(|t| t == "Optimisation history of s"), "{texts:?}");
            assert!(texts.iter().any(|t| t == "trial") && texts.iter().any(|t| t.starts_with("objective value")));
            assert!(texts.iter().any(|t| t == "6 trials: 4 complete, 1 pruned, 1 failed, 0 running"), "{texts:?}");
            assert_eq!(svg.matches("<circle").count(), 4);
        }
    }

    #[test]
    fn learning_curves_mark_where_a_trial_was_pruned() {
        let (_, study) = study(Direction::Minimize);
        let chart = intermediate(&study).unwrap();
        let crosses: Vec<&Mark> = chart.marks.iter().filter(|m| matches!(m, Mark::Crosses { .. })).collect();
        let Mark::Crosses { xs, ys, .. } = crosses[0] else { unreachable!() };
        // Trial 2 reported steps 1 and 2: 10 - 1 - 2, 10 - 2 - 2.
        assert_eq!((xs.as_slice(), ys.as_slice()), (&[2.0][..], &[6.0][..]));
        let (_, texts) = parsed(&chart);
        assert!(texts.iter().any(|t| t == "step") && texts.iter().any(|t| t.starts_with("reported value")));
        assert!(texts.iter().any(|t| t.starts_with("trial 2: pruned after step 2")), "{texts:?}");
    }

    #[test]
    fn the_edf_and_timeline_draw_every_trial_they_count() {
        let (_, study) = study(Direction::Minimize);
        let chart = edf(&study).unwrap();
        let Mark::Line { xs, ys, .. } = &chart.marks[0] else { panic!() };
        assert_eq!((xs.as_slice(), ys.as_slice()), (&[1.0, 1.0, 3.0, 4.0, 5.0][..], &[0.0, 0.25, 0.5, 0.75, 1.0][..]));
        parsed(&chart);
        let chart = timeline(&study).unwrap();
        assert_eq!(chart.y, Scale::Bands(vec!["h:7/0".into(), "h:7/1".into()]));
        let (svg, texts) = parsed(&chart);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let bars = doc.descendants().filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("rects"));
        assert_eq!(bars.map(|g| g.children().filter(|c| c.has_tag_name("rect")).count()).sum::<usize>(), 6);
        assert!(texts.iter().any(|t| t == "seconds since the first trial started"), "{texts:?}");
        // One parameter, two methods: two bars, each a whole.
        let chart = importance(&study).unwrap();
        let (svg, texts) = parsed(&chart);
        assert!(texts.iter().any(|t| t == "Hyperparameter importance in s") && texts.iter().any(|t| t == "lr"));
        assert_eq!(svg.matches("lr by fANOVA: 1 ± 0").count() + svg.matches("lr by PED-ANOVA: 1 ± 0").count(), 2);
    }

    #[test]
    fn slices_and_parallel_coordinates_place_every_complete_trial() {
        let (_, study) = study(Direction::Minimize);
        let charts = slices(&study).unwrap();
        assert_eq!(charts.len(), 1, "one parameter, one panel");
        let Mark::Points { xs, ys, .. } = &charts[0].marks[0] else { panic!() };
        // lr = 10^-(i+1) for the complete trials 0, 1, 3, 4.
        assert_eq!(ys, &[5.0, 3.0, 4.0, 1.0]);
        assert!(xs.iter().zip([1e-1, 1e-2, 1e-4, 1e-5]).all(|(x, want)| (x - want).abs() < 1e-15), "{xs:?}");
        assert!(matches!(charts[0].x, Scale::Log { .. }));
        let grid = crate::svg::grid(&charts, 2);
        roxmltree::Document::parse(&grid).unwrap();
        let chart = parallel(&study).unwrap();
        let lines: Vec<usize> = chart
            .marks
            .iter()
            .filter_map(|m| match m {
                Mark::Polylines { lines, .. } => Some(lines.len()),
                _ => None,
            })
            .collect();
        assert_eq!(lines, [3, 1], "the others, then the best tenth (one of four)");
        let (_, texts) = parsed(&chart);
        for word in ["objective value", "lr", "1.00e-7", "1", "5"] {
            assert!(texts.iter().any(|t| t == word), "{word}: {texts:?}");
        }
    }

    #[test]
    fn the_contour_shows_the_two_parameters_that_matter_and_where_the_value_is_low() {
        // f = 4·a² + b² + 0·c over [-1, 1]³, 200 trials on a scrambled lattice.
        let trials = (0..200u64)
            .map(|i| {
                let u = |k: u64| ((i * k + 17) % 200) as f64 / 199.0 * 2.0 - 1.0;
                let (a, b, c) = (u(37), u(61), u(89));
                let mut t = FrozenTrial::new(i, i, TrialState::Complete(4.0 * a * a + b * b));
                for (name, v) in [("a", a), ("b", b), ("c", c)] {
                    t.params.insert(name.into(), json!(v));
                    t.distributions.insert(name.into(), Distribution::float(-1.0, 1.0));
                }
                t
            })
            .collect();
        let study = StudyTrials { name: "bowl".into(), direction: Direction::Minimize, trials };
        let chart = contour(&study).unwrap();
        assert_eq!((chart.x_label.as_str(), chart.y_label.as_str()), ("a", "b"));
        let Mark::Rects { rects, colours, .. } = &chart.marks[0] else { panic!() };
        assert_eq!(rects.len(), 40 * 40);
        // Darkest (lowest) near the middle, brightest (highest) at a's ends.
        let darkest = colours.iter().enumerate().min_by_key(|(_, c)| luminance(c)).unwrap().0;
        let brightest = colours.iter().enumerate().max_by_key(|(_, c)| luminance(c)).unwrap().0;
        let centre = |k: usize| [(rects[k][0] + rects[k][2]) / 2.0, (rects[k][1] + rects[k][3]) / 2.0];
        let (lo, hi) = (centre(darkest), centre(brightest));
        assert!(lo[0].abs() < 0.3 && lo[1].abs() < 0.5, "{lo:?}");
        assert!(hi[0].abs() > 0.7, "{hi:?}");
        parsed(&chart);
        // One numeric parameter only: nothing to draw.
        let (_, one) = study_fixture(Direction::Minimize);
        assert_eq!(contour(&one).unwrap_err().to_string(), "study 's' has fewer than two numeric parameters to show");
    }

    #[test]
    fn a_loss_curve_draws_the_batches_the_epochs_and_the_validation() {
        let steps: Vec<(f64, f64)> = (0..50).map(|i| (i as f64 * 4.0, 2.0 / (1.0 + i as f64))).collect();
        let epochs = vec![(50.0, 0.9, Some(1.0)), (100.0, 0.5, Some(0.7)), (200.0, 0.2, None)];
        let chart = loss_curve("Training loss on x", &steps, &epochs);
        let lines: Vec<usize> = chart
            .marks
            .iter()
            .map(|m| match m {
                Mark::Line { xs, .. } => xs.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(lines, [50, 3, 2], "the batches, the epochs, the epochs with a validation loss");
        let (_, texts) = parsed(&chart);
        for word in ["Training loss on x", "step", "loss", "validation loss", "3 epochs, 200 steps"] {
            assert!(texts.iter().any(|t| t == word), "{word}: {texts:?}");
        }
    }

    /// A colour's brightness, roughly (viridis runs dark to bright).
    fn luminance(hex: &str) -> u32 {
        let v = u32::from_str_radix(&hex[1..], 16).unwrap();
        2 * (v >> 16) + 7 * ((v >> 8) & 255) + (v & 255)
    }

    #[test]
    fn a_study_with_nothing_to_show_is_an_error_naming_it() {
        let s = InMemoryStorage::new();
        s.create_study("empty", Direction::Minimize, &json!({})).unwrap();
        for kind in PlotKind::ALL {
            let err = crate::plot(&s, "empty", kind).unwrap_err();
            assert!(err.is_bad_request() && err.to_string() == "study 'empty' has no trials to show", "{err}");
        }
        let err = crate::plot(&s, "nope", PlotKind::History).unwrap_err();
        assert!(err.is_bad_request() && err.to_string().contains("no study named 'nope'"), "{err}");
        // Trials, none complete: the history and distribution say so.
        let id = s.load_study("empty").unwrap().id;
        let t = s.create_trial(id).unwrap();
        s.finish_trial(t.id, TrialState::Pruned).unwrap();
        let err = crate::plot(&s, "empty", PlotKind::History).unwrap_err();
        assert_eq!(err.to_string(), "study 'empty' has no complete trial to show");
        let err = crate::plot(&s, "empty", PlotKind::Intermediate).unwrap_err();
        assert_eq!(err.to_string(), "study 'empty' has no trial reported an intermediate value to show");
    }
}
