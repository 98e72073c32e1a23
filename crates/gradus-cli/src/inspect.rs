//! `gradus inspect`: what a model file holds — the task and classes, the
//! raw columns it reads and how each becomes inputs, its members'
//! architectures and weights, and, for a tuned model, where it came from:
//! the data's fingerprint, each member's trial and hyperparameters, and
//! the metrics at save time.

use std::path::PathBuf;

use clap::Args;
use gradus::train::Ensemble;
use serde_json::{Value, json};

use crate::{outln, param_text};

#[derive(Args)]
pub struct InspectArgs {
    /// A model file saved by `gradus tune --out` or `gradus train --out`.
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// A text model: the N n-grams that move its prediction most towards
    /// each class (for a real target, up and down), by what each alone adds
    /// to the logit; it needs a vocabulary (the default text features).
    #[arg(long, value_name = "N")]
    top_features: Option<usize>,
}

/// One n-gram's pull towards a class.
struct Pull {
    column: String,
    ngram: String,
    score: f32,
}

/// For each class (or direction, for a real target), the `n` n-grams of
/// `model`'s most weighted member that raise its logit most.
fn top_features(model: &Ensemble, n: usize) -> anyhow::Result<Vec<(String, Vec<Pull>)>> {
    let (member, _) =
        model.members().iter().zip(model.weights()).max_by(|a, b| a.1.total_cmp(b.1)).expect("a model has a member");
    let gradus::train::Architecture::Text(spec) = &member.spec.architecture else {
        anyhow::bail!("--top-features reads a text model; this one is {}", member.spec.architecture.describe());
    };
    let encoding = member.spec.preprocessing.encoding();
    if let Some(t) = encoding.text.iter().find(|t| t.vocabulary.is_none()) {
        anyhow::bail!(
            "--top-features needs each input's n-gram, which a vocabulary keeps; column '{}' was read with \
             --text-features hashing",
            t.column
        );
    }
    // Input i of the sparse block: (column, n-gram).
    let names: Vec<(&str, &str)> = encoding
        .text
        .iter()
        .flat_map(|t| (0..t.width()).map(move |i| (t.column.as_str(), t.ngram(i).unwrap_or("?"))))
        .collect();
    let scores = spec.input_scores(member.model.params());
    let k = spec.n_outputs;
    let top = |sign: f32, c: usize| {
        let mut order: Vec<usize> = (0..names.len()).collect();
        let key = |i: usize| sign * scores[i * k + c];
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
        order
            .into_iter()
            .take(n)
            .map(|i| Pull { column: names[i].0.to_string(), ngram: names[i].1.to_string(), score: key(i) })
            .collect::<Vec<_>>()
    };
    Ok(match &member.spec.preprocessing.classes {
        Some(classes) if k == 1 => vec![(classes[1].clone(), top(1.0, 0)), (classes[0].clone(), top(-1.0, 0))],
        Some(classes) => classes.iter().enumerate().map(|(c, name)| (name.clone(), top(1.0, c))).collect(),
        None => vec![("up".into(), top(1.0, 0)), ("down".into(), top(-1.0, 0))],
    })
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let model = Ensemble::load(&args.model)?;
    let top = args.top_features.map(|n| top_features(&model, n)).transpose()?;
    let prep = model.preprocessing();
    let encoding = prep.encoding();
    let task = match &prep.classes {
        None => "regression".to_string(),
        Some(c) if c.len() == 2 => "binary".to_string(),
        Some(c) => format!("multiclass ({} classes)", c.len()),
    };
    let total: f64 = model.weights().iter().sum();
    let about = model.about().cloned().unwrap_or(Value::Null);
    let members_about = about["members"].as_array().cloned().unwrap_or_default();
    if args.json {
        outln!(
            "{}",
            json!({
                "model": args.model.display().to_string(),
                "task": task,
                "target": prep.target_name,
                "classes": prep.classes,
                "loss": model.loss(),
                "na_values": encoding.na_values,
                "inputs": encoding.n_outputs(),
                "columns": encoding.columns.iter().map(|c| json!({
                    "column": c.column(), "becomes": c.describe(), "encoder": c,
                })).collect::<Vec<_>>(),
                "sparse_inputs": encoding.n_sparse_outputs(),
                "text_columns": encoding.text.iter().map(|t| json!({
                    "column": t.column, "becomes": t.describe(), "encoder": t,
                })).collect::<Vec<_>>(),
                "members": model.members().iter().zip(model.weights()).map(|(m, w)| json!({
                    "weight": w / total,
                    "architecture": m.spec.architecture,
                    "describe": m.spec.architecture.describe(),
                    "scaled": m.spec.preprocessing.scaler().is_some(),
                    "compression": m.spec.compression,
                })).collect::<Vec<_>>(),
                "about": about,
                "top_features": top.as_ref().map(|top| top.iter().map(|(class, pulls)| json!({
                    "class": class,
                    "ngrams": pulls.iter().map(|p| json!({"column": p.column, "ngram": p.ngram, "score": p.score})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>()),
            })
        );
        return Ok(());
    }
    outln!(
        "model    {} ({})",
        args.model.display(),
        if model.members().len() == 1 {
            "one model".to_string()
        } else {
            format!("an ensemble of {}", model.members().len())
        }
    );
    let classes = prep.classes.as_ref().map_or(String::new(), |c| format!(", classes {}", c.join(", ")));
    outln!("task     {task}: target '{}'{classes}; loss {:?}", prep.target_name, model.loss());
    let sparse = match encoding.n_sparse_outputs() {
        0 => String::new(),
        n => format!(" and {n} sparse (text n-grams)"),
    };
    outln!(
        "inputs   {} raw columns → {} model inputs{sparse}",
        encoding.columns.len() + encoding.text.len(),
        encoding.n_outputs()
    );
    if !encoding.na_values.is_empty() {
        let shown: Vec<String> = encoding.na_values.iter().map(|v| format!("'{v}'")).collect();
        outln!("missing  cells read as missing: {}", shown.join(", "));
    }
    let names = encoding.input_columns();
    let width = names.iter().map(|c| c.chars().count()).max().unwrap_or(6);
    for c in &encoding.columns {
        outln!("  {:<width$}  {}", c.column(), c.describe());
    }
    for t in &encoding.text {
        outln!("  {:<width$}  {}", t.column, t.describe());
    }
    outln!("members  weight  architecture");
    for (i, (m, w)) in model.members().iter().zip(model.weights()).enumerate() {
        // An older model file has no "retrained": every member was.
        let trial = members_about.get(i).and_then(|a| a["trial"].as_u64()).map_or(String::new(), |t| {
            let as_trained = members_about[i]["retrained"] == Value::Bool(false);
            format!("trial {t}{}: ", if as_trained { " (as trained in the trial)" } else { "" })
        });
        outln!("  {:>6.3}  {trial}{}", w / total, m.spec.architecture.describe());
        for c in &m.spec.compression {
            outln!("          {}", c.describe());
        }
        if let Some(params) = members_about.get(i).and_then(|a| a["params"].as_object()) {
            let text: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", param_text(v))).collect();
            outln!("          {}", text.join(" "));
        }
    }
    if let Some(from) = about["compressed"].as_str() {
        // `gradus compress`'s record: what it was made from, and the figures.
        outln!(
            "made by  {} from {from} on {} (seed {})",
            about["made_by"].as_str().unwrap_or("?"),
            about["data"].as_str().unwrap_or("?"),
            about["seed"]
        );
        let held_out = about["held_out"].as_str().unwrap_or("?");
        for (name, key) in [("before", "before"), ("after", "after")] {
            let f = &about[key];
            let metrics = f["metrics"].as_object().map_or(String::new(), |m| {
                m.iter().filter_map(|(k, v)| v.as_f64().map(|v| format!("{k} {v:.4}"))).collect::<Vec<_>>().join("  ")
            });
            outln!(
                "{name:<8} {} bytes, {:.3} ms per 1,000 rows, on {held_out}: {metrics}",
                f["bytes"],
                f["ms_per_1000_rows"].as_f64().unwrap_or(f64::NAN)
            );
        }
    } else if about.is_object() {
        outln!(
            "made by  {} on {} (study '{}', seed {})",
            about["made_by"].as_str().unwrap_or("?"),
            about["data"].as_str().unwrap_or("?"),
            about["study"].as_str().unwrap_or("?"),
            about["seed"]
        );
        outln!("fitted   {}", about["objective"].as_str().unwrap_or("?"));
        for (name, key) in [("validation", "valid_metrics"), ("test", "test_metrics")] {
            if let Some(m) = about[key].as_object() {
                // As `gradus tune` printed them, less the confusion matrix.
                let parts: Vec<String> =
                    m.iter().filter_map(|(k, v)| v.as_f64().map(|v| format!("{k} {v:.4}"))).collect();
                outln!("{name:<8} {}", parts.join("  "));
            }
        }
    }
    if let Some(top) = top {
        outln!("top n-grams, by what each alone adds to the logit:");
        let several = encoding.text.len() > 1;
        for (class, pulls) in top {
            let shown: Vec<String> = pulls
                .iter()
                .map(|p| {
                    let column = if several { format!("{}: ", p.column) } else { String::new() };
                    format!("{column}{} ({:+.3})", p.ngram, p.score)
                })
                .collect();
            outln!("  {class}: {}", shown.join(", "));
        }
    }
    Ok(())
}
