//! The report of a study: one self-contained HTML file — every plot inline
//! as SVG, the importances and the trials as tables, no script, no style
//! sheet or font fetched — that reads offline and prints.

use std::fmt::Write as _;

use gradus_tune::{Direction, TrialState};

use crate::importance::{IMPORTANCE_SEEDS, Method, importances};
use crate::plots::PlotKind;
use crate::svg::{escape, number};
use crate::{ReportError, StudyTrials};

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1480px;color:#222}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}\
th{background:#f4f4f4}td.text{text-align:left}.note{color:#666}svg{max-width:100%;height:auto}\
section{page-break-inside:avoid}@media print{body{margin:0}h2{page-break-after:avoid}}";

/// The report of `study` (see the module docs); an error when it has no trials.
pub fn report(study: &StudyTrials) -> Result<String, ReportError> {
    if study.trials.is_empty() {
        return Err(ReportError::Empty { study: study.name.clone(), what: "no trials".into() });
    }
    let mut h = String::new();
    let title = format!("Study {}", study.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    let _ = write!(h, "<h1>{}</h1>", escape(&title));
    summary(study, &mut h);
    for (kind, heading) in [
        (PlotKind::History, "Optimisation history"),
        (PlotKind::Intermediate, "Intermediate values"),
        (PlotKind::Importance, "Hyperparameter importance"),
        (PlotKind::Parallel, "Parallel coordinates"),
        (PlotKind::Contour, "The two most important parameters"),
        (PlotKind::Slice, "Slices"),
        (PlotKind::Edf, "Distribution of values"),
        (PlotKind::Timeline, "Timeline"),
    ] {
        let _ = write!(h, "<section><h2>{heading}</h2>");
        match kind.svg(study) {
            Ok(svg) => h.push_str(&svg),
            // A picture with nothing to show says so; the others still draw.
            Err(e) => {
                let _ = write!(h, "<p class=\"note\">Not drawn: {}.</p>", escape(&e.to_string()));
            }
        }
        if kind == PlotKind::Importance {
            importance_table(study, &mut h);
        }
        h.push_str("</section>");
    }
    trials_table(study, &mut h);
    h.push_str("</body></html>\n");
    Ok(h)
}

fn summary(study: &StudyTrials, h: &mut String) {
    let count = |f: fn(&TrialState) -> bool| study.trials.iter().filter(|t| f(&t.state)).count();
    let _ = write!(
        h,
        "<p>{} trials: {} complete, {} pruned, {} failed, {} running. The objective is {}.</p>",
        study.trials.len(),
        count(|s| matches!(s, TrialState::Complete(_))),
        count(|s| *s == TrialState::Pruned),
        count(|s| *s == TrialState::Fail),
        count(|s| matches!(s, TrialState::Running | TrialState::Waiting)),
        match study.direction {
            Direction::Minimize => "minimised",
            Direction::Maximize => "maximised",
        }
    );
    let best =
        study.trials.iter().filter_map(|t| t.value().filter(|v| v.is_finite()).map(|v| (t, v))).reduce(|a, b| {
            let better = match study.direction {
                Direction::Minimize => b.1 < a.1,
                Direction::Maximize => b.1 > a.1,
            };
            if better { b } else { a }
        });
    if let Some((t, v)) = best {
        let params: Vec<String> =
            t.params.iter().map(|(k, p)| format!("{} = {}", escape(k), escape(&value_text(p)))).collect();
        let _ = write!(h, "<p>Best: trial {}, value {}: {}.</p>", t.number, number(v), params.join(", "));
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), number),
        other => other.to_string(),
    }
}

fn importance_table(study: &StudyTrials, h: &mut String) {
    let (Ok(fanova), Ok(ped)) = (
        importances(study, Method::Fanova, &IMPORTANCE_SEEDS),
        importances(study, Method::PedAnova, &IMPORTANCE_SEEDS),
    ) else {
        return;
    };
    h.push_str("<table><tr><th>hyperparameter</th><th>fANOVA</th><th>PED-ANOVA</th></tr>");
    for f in &fanova {
        let Some(p) = ped.iter().find(|p| p.param == f.param) else { continue };
        let _ = write!(
            h,
            "<tr><td class=\"text\">{}</td><td>{} ± {}</td><td>{} ± {}</td></tr>",
            escape(&f.param),
            number(f.mean),
            number(f.spread),
            number(p.mean),
            number(p.spread)
        );
    }
    let _ = write!(
        h,
        "</table><p class=\"note\">Mean ± standard deviation over {} seeds; each method's importances sum to 1.</p>",
        IMPORTANCE_SEEDS.len()
    );
}

fn trials_table(study: &StudyTrials, h: &mut String) {
    let mut names: Vec<&String> = study.trials.iter().flat_map(|t| t.params.keys()).collect();
    names.sort();
    names.dedup();
    h.push_str(
        "<section><h2>Trials</h2><table><tr><th>trial</th><th>state</th><th>value</th><th>seconds</th><th>steps</th>",
    );
    for n in &names {
        let _ = write!(h, "<th>{}</th>", escape(n));
    }
    h.push_str("<th>note</th></tr>");
    for t in &study.trials {
        let state = match t.state {
            TrialState::Complete(_) => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Fail => "failed",
            TrialState::Running => "running",
            TrialState::Waiting => "waiting",
        };
        let seconds = t.started_at.zip(t.finished_at).map_or(String::new(), |(a, b)| format!("{:.1}", b - a));
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"text\">{state}</td><td>{}</td><td>{seconds}</td><td>{}</td>",
            t.number,
            t.value().map_or(String::new(), number),
            t.intermediate.len()
        );
        for n in &names {
            let _ = write!(h, "<td>{}</td>", t.params.get(*n).map_or(String::new(), |v| escape(&value_text(v))));
        }
        let _ = write!(h, "<td class=\"text\">{}</td></tr>", escape(t.fail_reason().unwrap_or("")));
    }
    h.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use gradus_tune::{Distribution, FrozenTrial};
    use serde_json::json;

    use super::*;

    /// `n` trials of three parameters, each with `steps` reported values;
    /// every tenth pruned, every 50th failed.
    fn study(n: u64, steps: u64) -> StudyTrials {
        let trials = (0..n)
            .map(|i| {
                let mut t = FrozenTrial::new(i, i, TrialState::Complete(0.0));
                let (lr, width) = (10f64.powf(-4.0 + 3.0 * ((i * 7919) % 1000) as f64 / 1000.0), 16 + (i * 31) % 500);
                let opt = ["sgd", "adam", "rmsprop"][(i % 3) as usize];
                t.params = [("lr", json!(lr)), ("width", json!(width)), ("optimizer", json!(opt))]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                t.distributions.insert("lr".into(), Distribution::log_float(1e-4, 0.1));
                t.distributions.insert("width".into(), Distribution::Int { low: 16, high: 512, log: true, step: 1 });
                t.distributions.insert("optimizer".into(), Distribution::categorical(["sgd", "adam", "rmsprop"]));
                let value = (lr.log10() + 2.5).powi(2) + if opt == "adam" { 0.0 } else { 0.5 } + width as f64 / 1e4;
                for s in 1..=steps {
                    t.intermediate.insert(s, value + 1.0 / s as f64);
                }
                (t.started_at, t.finished_at) = (Some(1000.0 + i as f64), Some(1000.5 + i as f64));
                t.attrs.insert(gradus_tune::WORKER.into(), json!({"host": "h", "pid": 1, "slot": i % 2}));
                t.state = match i {
                    i if i % 50 == 49 => TrialState::Fail,
                    i if i % 10 == 9 => TrialState::Pruned,
                    _ => TrialState::Complete(value),
                };
                if t.state == TrialState::Fail {
                    t.attrs.insert(gradus_tune::FAIL_REASON.into(), json!("diverged at epoch 3 <loss inf>"));
                }
                t
            })
            .collect();
        StudyTrials { name: "big & <small>".into(), direction: Direction::Minimize, trials }
    }

    #[test]
    fn the_report_holds_every_plot_and_table_and_nothing_from_outside() {
        let html = report(&study(60, 20)).unwrap();
        for heading in ["Optimisation history", "Intermediate values", "Hyperparameter importance", "Slices", "Trials"]
        {
            assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
        }
        assert_eq!(html.matches("<svg ").count(), 8 + 3, "eight pictures, the slices three panels in one");
        assert!(html.contains("<title>Study big &amp; &lt;small&gt;</title>"));
        assert!(html.contains("diverged at epoch 3 &lt;loss inf&gt;"));
        // Self-contained: no script, no link, no address to fetch.
        for outside in ["<script", "<link", "src=", "href=", "url(http", "@import"] {
            assert!(!html.contains(outside), "{outside}");
        }
        // Well-formed XML once the doctype is dropped (every tag closed, every text escaped).
        let body = html.trim_start_matches("<!DOCTYPE html>\n").replace("<meta charset=\"utf-8\">", "");
        roxmltree::Document::parse(&body).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_thousand_trial_report_is_under_five_megabytes() {
        let html = report(&study(1000, 50)).unwrap();
        assert!(html.len() < 5 << 20, "{} bytes", html.len());
        eprintln!("a 1,000-trial report: {} bytes", html.len());
    }
}
