//! A table's piecewise-linear bins are computed a batch at a time, never
//! held for every row (`gradus::data::Expansion`). Training on such rows must
//! be training on the materialised inputs: the same scaler, the same steps,
//! the same model file to the byte, for mini-batch and full-batch
//! optimizers, linear models and MLPs, with validation and test rows
//! predicted a block at a time.

use gradus::autotune::hold_out;
use gradus::data::{RawOptions, Scaling, load_raw};
use gradus::pipeline::{ModelChoice, TrainJob};
use gradus::train::{Activation, NoObserver, OptimizerConfig, TrainConfig, WeightInit};

#[test]
fn training_on_expanded_rows_is_training_on_the_materialised_inputs() {
    let mut text = String::from("a,b,c,y\n");
    for i in 0..900u32 {
        let a = if i % 13 == 0 { "NA".to_string() } else { format!("{:.2}", (i * 37 % 101) as f32 / 3.0) };
        let b = ["red", "green", "blue"][(i % 3) as usize];
        let c = (i * 7919 % 1000) as f32 * 0.25;
        let y = if (i * 37 % 101) > 50 || (b == "red" && c > 100.0) { "yes" } else { "no" };
        text.push_str(&format!("{a},{b},{c},{y}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, &text).unwrap();
    let raw =
        load_raw(path.to_str().unwrap(), &RawOptions { target: Some("y".into()), ..RawOptions::default() }).unwrap();
    let (tuning, test) = hold_out(&raw, 0.2, 1).unwrap();
    let expansion = tuning.expansion.as_ref().expect("a table of two numeric columns has bins");
    assert!(tuning.x.cols() < expansion.width(), "the bins are not stored");
    assert_eq!(tuning.n_features(), tuning.encoding.n_outputs());
    let materialised = tuning.clone().materialised();
    assert!(materialised.expansion.is_none() && materialised.x.cols() == tuning.n_features());

    let mlp = ModelChoice::Mlp {
        hidden: vec![8],
        activation: Activation::Relu,
        dropout: 0.0,
        init: WeightInit::Auto,
        periodic: None,
    };
    for (model, optimizer, scaling) in [
        (ModelChoice::Logistic, OptimizerConfig::adam(), Scaling::Standard),
        (ModelChoice::Logistic, OptimizerConfig::lbfgs(), Scaling::MinMax),
        (mlp.clone(), OptimizerConfig::sgd(0.9), Scaling::Standard),
        (mlp, OptimizerConfig::lbfgs(), Scaling::Global),
    ] {
        let job = TrainJob {
            model,
            loss: None,
            scaling,
            valid_fraction: 0.25,
            balanced: false,
            train_metrics: true,
            config: TrainConfig { lr: 0.05, epochs: 4, optimizer, batch_size: Some(64), ..TrainConfig::default() },
        };
        let what = format!("{:?}, {}", job.model, job.config.optimizer.name());
        let lazy = job.run(&tuning, &mut NoObserver).unwrap();
        let whole = job.run(&materialised, &mut NoObserver).unwrap();
        assert_eq!(lazy.saved.to_bytes().unwrap(), whole.saved.to_bytes().unwrap(), "{what}");
        assert_eq!(format!("{:?}", lazy.valid_metrics), format!("{:?}", whole.valid_metrics), "{what}");
        assert_eq!(format!("{:?}", lazy.train_metrics), format!("{:?}", whole.train_metrics), "{what}");
        // Test rows, scored a block at a time from stored rows or whole.
        let model = gradus::train::Ensemble::from(lazy.saved);
        let by_blocks = model.outputs_of(test.clone()).unwrap();
        let at_once = model.outputs(test.clone().materialised().x).unwrap();
        assert_eq!(by_blocks, at_once, "{what}");
        assert_eq!(
            format!("{:?}", model.evaluate(test.clone()).unwrap()),
            format!("{:?}", model.evaluate(test.clone().materialised()).unwrap()),
            "{what}"
        );
    }
}
