//! The model file carries the whole preparation: predictions from raw CSV
//! rows read back through the saved encoding are, bit for bit, those the
//! tuning pipeline computed for the same rows — with the MLP's periodic
//! embeddings of the numbers and learned embedding of a column of many
//! levels, or without.

use gradus::autotune::hold_out;
use gradus::data::{RawOptions, Scaling, load_raw, load_table};
use gradus::pipeline::{ModelChoice, Periodic, TrainJob};
use gradus::train::{Activation, Ensemble, NoObserver, TrainConfig, WeightInit};

#[test]
fn predicting_from_raw_rows_reproduces_the_pipelines_outputs_bit_for_bit() {
    let mut text = String::from("num,cat,flag,day,shop,y\n");
    for i in 0..720u32 {
        let num = if i % 11 == 0 { "NA".to_string() } else { format!("{:.3}", (i * 37 % 101) as f32 / 7.0) };
        let cat = ["a", "b", "c", "?", "rare"][if i % 41 == 0 { 4 } else { (i % 4) as usize }];
        let flag = if i % 3 == 0 { "true" } else { "false" };
        let day = if i % 23 == 0 { String::new() } else { format!("{:02}/{:02}/2021", 1 + i % 28, 1 + i % 12) };
        let y = if (i * 37 % 101) % 3 == 0 || cat == "a" { "p" } else { "q" };
        text.push_str(&format!("{num}, {cat},{flag},{day},s{},{y}\n", i * 7 % 60));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, &text).unwrap();
    let source = path.to_str().unwrap();
    let raw = load_raw(source, &RawOptions { target: Some("y".into()), ..RawOptions::default() }).unwrap();
    let (tuning, test) = hold_out(&raw, 0.25, 3).unwrap();
    for periodic in [None, Some(Periodic::with_sigma(2.0))] {
        let job = TrainJob {
            model: ModelChoice::Mlp {
                hidden: vec![8],
                activation: Activation::Tanh,
                dropout: 0.0,
                init: WeightInit::Auto,
                periodic,
            },
            loss: None,
            scaling: Scaling::Standard,
            valid_fraction: 0.0,
            balanced: false,
            train_metrics: false,
            config: TrainConfig { lr: 0.01, epochs: 5, ..TrainConfig::default() },
        };
        let model = Ensemble::from(job.run(&tuning, &mut NoObserver).unwrap().saved);
        let about = model.describe();
        assert!(about.contains("16-value embeddings of 1 categorical column"), "{about}");
        assert_eq!(about.contains("periodic embeddings of 1 numeric column"), periodic.is_some(), "{about}");
        check(&model, &test, &raw, &text, dir.path());
    }
}

/// Checks that `model`'s outputs on the `test` rows are those it gives when
/// the same rows are read back as raw CSV through its saved encoding.
fn check(
    model: &Ensemble,
    test: &gradus::data::Dataset,
    raw: &gradus::data::RawData,
    text: &str,
    dir: &std::path::Path,
) {
    // What `gradus tune` scores the test rows with.
    let by_pipeline = model.outputs_of(test.clone()).unwrap();

    // The same rows as raw CSV lines, read back through the model file's encoding.
    let split = raw.split(0.0, 0.25, 3).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = String::from(lines[0]);
    rows.push('\n');
    for &i in &split.test {
        rows.push_str(lines[raw.table.lines[i] as usize - 1]);
        rows.push('\n');
    }
    let rows_path = dir.join("rows.csv");
    std::fs::write(&rows_path, rows).unwrap();
    let bytes = model.to_bytes().unwrap();
    let loaded = Ensemble::from_bytes(&bytes, "m.gradus").unwrap();
    let encoding = loaded.preprocessing().encoding();
    let table = load_table(rows_path.to_str().unwrap(), &encoding.input_columns(), &encoding.read_options()).unwrap();
    let by_file = loaded.outputs(encoding.transform(&table).unwrap()).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(by_file.len(), test.n_samples());
    assert_eq!(bits(&by_file), bits(&by_pipeline));
}
