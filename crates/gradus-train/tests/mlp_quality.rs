//! MLP quality on the built-in datasets: held-out scores the issue requires
//! (digits ≥ 97% accuracy, mnist_5k ≥ 93%, diabetes R² ≥ 0.4).

use gradus_data::{Dataset, LoadOptions, Scaling, Target, load};
use gradus_train::{
    Activation, EarlyStopping, Loss, Metrics, MlpSpec, Model, Network, NoObserver, OptimizerConfig, Preprocessing,
    TrainConfig, Trainer, WeightInit, evaluate,
};

/// Train/valid/test parts (60/20/20, stratified for classes, seed 0), each
/// scaled with the training rows' statistics.
fn parts(name: &str, scaling: Scaling) -> (Dataset, Dataset, Dataset) {
    let data = load(name, &LoadOptions::default()).unwrap();
    let split = data.split(0.2, 0.2, 0).unwrap();
    let train = data.subset(&split.train);
    let prep = Preprocessing::fit(&train, scaling).unwrap();
    (
        prep.apply(&train).unwrap(),
        prep.apply(&data.subset(&split.valid)).unwrap(),
        prep.apply(&data.subset(&split.test)).unwrap(),
    )
}

fn mlp(n_inputs: usize, hidden: Vec<usize>, n_outputs: usize, dropout: f32) -> Network {
    Network::mlp(&MlpSpec {
        n_inputs,
        hidden,
        n_outputs,
        activation: Activation::Relu,
        dropout,
        init: WeightInit::Auto,
        periodic: None,
        categories: None,
    })
    .unwrap()
}

fn test_metrics(name: &str, scaling: Scaling, model: &mut Network, loss: Loss, config: TrainConfig) -> Metrics {
    let (train, valid, test) = parts(name, scaling);
    let start = std::time::Instant::now();
    let report = Trainer::new(config).unwrap().fit(model, loss, &train, Some(&valid), &mut NoObserver).unwrap();
    let metrics = evaluate(model, loss, &test).unwrap();
    eprintln!("{name}: {metrics:?} after {} epochs ({}) in {:.1?}", report.epochs, report.termination, start.elapsed());
    metrics
}

fn adamw(lr: f32, epochs: usize, batch: usize) -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerConfig::adamw(1e-4),
        lr,
        epochs,
        batch_size: Some(batch),
        early_stopping: Some(EarlyStopping { patience: 10, min_delta: 0.0, restore_best: true }),
        tol: 0.0,
        ..TrainConfig::default()
    }
}

#[test]
fn mlp_on_digits_reaches_97_percent_held_out() {
    let mut model = mlp(64, vec![128], 10, 0.1);
    match test_metrics("builtin:digits", Scaling::Standard, &mut model, Loss::SoftmaxCrossEntropy, adamw(1e-3, 100, 32))
    {
        Metrics::Classification { accuracy, .. } => assert!(accuracy >= 0.97, "held-out accuracy {accuracy}"),
        m => panic!("{m:?}"),
    }
}

#[test]
fn mlp_on_mnist_5k_reaches_93_percent_held_out() {
    let mut model = mlp(784, vec![256, 128], 10, 0.2);
    match test_metrics("builtin:mnist_5k", Scaling::MinMax, &mut model, Loss::SoftmaxCrossEntropy, adamw(1e-3, 40, 128))
    {
        Metrics::Classification { accuracy, .. } => assert!(accuracy >= 0.93, "held-out accuracy {accuracy}"),
        m => panic!("{m:?}"),
    }
}

#[test]
fn mlp_on_diabetes_reaches_r2_0_4_held_out() {
    let (mut train, valid, test) = parts("builtin:diabetes", Scaling::Standard);
    // Standardise the target on the training rows, then map the output layer
    // back so that the test metrics are in the target's own units.
    let Target::Real(y) = &mut train.y else { panic!("regression target") };
    let mean = y.iter().sum::<f32>() / y.len() as f32;
    let std = (y.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / y.len() as f32).sqrt();
    y.iter_mut().for_each(|v| *v = (*v - mean) / std);
    let mut valid_scaled = valid.clone();
    if let Target::Real(v) = &mut valid_scaled.y {
        v.iter_mut().for_each(|x| *x = (*x - mean) / std);
    }
    let mut model = mlp(10, vec![32], 1, 0.0);
    let config = TrainConfig { l2: 1e-3, ..adamw(1e-3, 300, 32) };
    Trainer::new(config).unwrap().fit(&mut model, Loss::Mse, &train, Some(&valid_scaled), &mut NoObserver).unwrap();
    model.rescale_outputs(&[std], &[mean]);
    match evaluate(&model, Loss::Mse, &test).unwrap() {
        Metrics::Regression { r2, .. } => {
            eprintln!("diabetes: test R² {r2:.4}");
            assert!(r2 >= 0.4, "held-out R² {r2}")
        }
        m => panic!("{m:?}"),
    }
}
