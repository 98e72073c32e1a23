//! End-to-end behaviour of the training engine on real and synthetic data.

use gradus_data::synthetic::{classic_linear, noisy_linear};
use gradus_data::{Dataset, LoadOptions, Scaler, load};
use gradus_train::{
    Control, EpochRecord, Init, LinearModel, Loss, Metrics, Model, NoObserver, Observer, OptimizerConfig, StepLog,
    Termination, TrainConfig, Trainer, evaluate,
};

fn gd(lr: f32, epochs: usize) -> TrainConfig {
    TrainConfig { optimizer: OptimizerConfig::Gd, lr, epochs, batch_size: None, tol: 0.0, ..TrainConfig::default() }
}

#[test]
fn classic_example_converges_to_theta_2_with_monotonically_falling_loss() {
    // Data (x, 2x) for x = 1..5, model y = θx (no intercept), GD with lr 0.01 from θ = 0.
    let data = classic_linear(5);
    let mut model = LinearModel::new(1, 1, false);
    let report = Trainer::new(gd(0.01, 200)).unwrap().fit(&mut model, Loss::Mse, &data, None, &mut NoObserver).unwrap();
    let theta = model.weights()[0];
    assert!((theta - 2.0).abs() < 1e-3, "θ = {theta}");
    assert_eq!(report.history[0].train_loss, 44.0, "the loss at θ = 0 is mean((2x)²) = 4·11");
    for pair in report.history.windows(2) {
        assert!(
            pair[1].train_loss <= pair[0].train_loss,
            "loss rose at epoch {}: {} -> {}",
            pair[1].epoch,
            pair[0].train_loss,
            pair[1].train_loss
        );
    }
}

/// Least squares with an intercept, solved in f64 from the normal equations
/// [X 1]ᵀ[X 1] β = [X 1]ᵀ y by Gaussian elimination with partial pivoting.
fn least_squares(data: &Dataset) -> Vec<f64> {
    let gradus_data::Target::Real(y) = &data.y else { panic!("regression data") };
    let d = data.n_features() + 1;
    let mut a = vec![vec![0.0f64; d + 1]; d];
    for (i, &yi) in y.iter().enumerate() {
        let row: Vec<f64> = data.x.row(i).iter().map(|&v| v as f64).chain([1.0]).collect();
        for (r, equation) in a.iter_mut().enumerate() {
            for (c, v) in equation[..d].iter_mut().enumerate() {
                *v += row[r] * row[c];
            }
            equation[d] += row[r] * yi as f64;
        }
    }
    for col in 0..d {
        let pivot = (col..d).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).unwrap();
        a.swap(col, pivot);
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * p;
                }
            }
        }
    }
    (0..d).map(|r| a[r][d] / a[r][r]).collect()
}

#[test]
fn linear_regression_matches_the_closed_form_least_squares_solution() {
    let problem = noisy_linear(500, 5, 0.5, 11).unwrap();
    let exact = least_squares(&problem.data);
    let mut model = LinearModel::new(5, 1, true);
    let report =
        Trainer::new(gd(0.1, 3000)).unwrap().fit(&mut model, Loss::Mse, &problem.data, None, &mut NoObserver).unwrap();
    let got: Vec<f64> = model.params().iter().map(|&p| p as f64).collect();
    let err = got.iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let norm = exact.iter().map(|b| b * b).sum::<f64>().sqrt();
    assert!(err / norm < 1e-3, "relative error {} ({got:?} vs {exact:?}; {report:?})", err / norm);
}

/// A stratified split holding out 25% for testing, standardised on the
/// training part only.
fn held_out(name: &str, seed: u64) -> (Dataset, Dataset) {
    let options = LoadOptions { target_kind: gradus_data::TargetKind::Classes, ..LoadOptions::default() };
    let data = load(name, &options).unwrap();
    let split = data.split(0.0, 0.25, seed).unwrap();
    let (mut train, mut test) = (data.subset(&split.train), data.subset(&split.test));
    let scaler = Scaler::standard(&train.x).unwrap();
    scaler.transform(&mut train.x).unwrap();
    scaler.transform(&mut test.x).unwrap();
    (train, test)
}

fn held_out_accuracy(name: &str, model: &mut LinearModel, loss: Loss, config: TrainConfig) -> f64 {
    let (train, test) = held_out(name, 0);
    Trainer::new(config).unwrap().fit(model, loss, &train, None, &mut NoObserver).unwrap();
    match evaluate(model, loss, &test).unwrap() {
        Metrics::Classification { accuracy, .. } => accuracy,
        m => panic!("{m:?}"),
    }
}

#[test]
fn logistic_regression_on_breast_cancer_reaches_95_percent_held_out() {
    let config = TrainConfig { lr: 0.01, epochs: 100, l2: 1e-3, ..TrainConfig::default() };
    let acc = held_out_accuracy(
        "builtin:breast_cancer",
        &mut LinearModel::new(30, 1, true),
        Loss::BinaryCrossEntropy,
        config,
    );
    eprintln!("breast_cancer logistic regression: held-out accuracy {acc:.4}");
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

#[test]
fn softmax_regression_on_digits_reaches_93_percent_held_out() {
    let config = TrainConfig { lr: 0.01, epochs: 60, l2: 1e-3, ..TrainConfig::default() };
    let acc =
        held_out_accuracy("builtin:digits", &mut LinearModel::new(64, 10, true), Loss::SoftmaxCrossEntropy, config);
    eprintln!("digits softmax regression: held-out accuracy {acc:.4}");
    assert!(acc >= 0.93, "held-out accuracy {acc}");
}

fn train_sgd(seed: u64) -> Vec<f32> {
    let (train, _) = held_out("builtin:iris", 1);
    let mut model = LinearModel::new(4, 3, true).with_init(Init::Uniform);
    let config = TrainConfig {
        optimizer: OptimizerConfig::sgd(0.9),
        lr: 0.05,
        epochs: 20,
        batch_size: Some(8),
        seed,
        ..TrainConfig::default()
    };
    Trainer::new(config).unwrap().fit(&mut model, Loss::SoftmaxCrossEntropy, &train, None, &mut NoObserver).unwrap();
    model.params().to_vec()
}

#[test]
fn the_same_seed_gives_bit_identical_parameters() {
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    assert_eq!(bits(train_sgd(42)), bits(train_sgd(42)));
    assert_ne!(bits(train_sgd(42)), bits(train_sgd(43)), "the seed must matter");
}

#[test]
fn a_too_large_learning_rate_ends_in_diverged_not_a_panic() {
    let data = classic_linear(5);
    let mut model = LinearModel::new(1, 1, false);
    let report = Trainer::new(gd(1.0, 1000)).unwrap().fit(&mut model, Loss::Mse, &data, None, &mut NoObserver).unwrap();
    assert_eq!(report.termination, Termination::Diverged);
    assert!(report.epochs < 1000, "{report:?}");
}

#[test]
fn tol_stops_training_once_the_loss_stops_changing() {
    let data = classic_linear(5);
    let mut model = LinearModel::new(1, 1, false);
    let config = TrainConfig { tol: 1e-9, ..gd(0.01, 10_000) };
    let report = Trainer::new(config).unwrap().fit(&mut model, Loss::Mse, &data, None, &mut NoObserver).unwrap();
    assert_eq!(report.termination, Termination::Converged);
    assert!(report.epochs < 10_000);
    assert!((model.weights()[0] - 2.0).abs() < 1e-3);
}

#[test]
fn max_iter_caps_the_number_of_steps() {
    let data = classic_linear(5);
    let config = TrainConfig { max_iter: Some(7), ..gd(0.01, 100) };
    let report = Trainer::new(config)
        .unwrap()
        .fit(&mut LinearModel::new(1, 1, false), Loss::Mse, &data, None, &mut NoObserver)
        .unwrap();
    assert_eq!((report.termination, report.steps), (Termination::MaxIterations, 7));
}

#[derive(Default)]
struct Recorder {
    steps: Vec<usize>,
    epochs: Vec<EpochRecord>,
    stop_after: usize,
}

impl Observer for Recorder {
    fn on_step(&mut self, log: &StepLog) {
        self.steps.push(log.step);
    }
    fn on_epoch(&mut self, record: &EpochRecord) -> Control {
        self.epochs.push(*record);
        if self.epochs.len() == self.stop_after { Control::Stop(Termination::Pruned) } else { Control::Continue }
    }
}

#[test]
fn the_observer_sees_logs_and_epochs_and_can_stop_training() {
    let (train, valid) = held_out("builtin:iris", 2);
    let mut model = LinearModel::new(4, 3, true);
    let config = TrainConfig { batch_size: Some(10), log_every: 5, lr: 0.01, ..TrainConfig::default() };
    let mut observer = Recorder { stop_after: 3, ..Recorder::default() };
    let report = Trainer::new(config)
        .unwrap()
        .fit(&mut model, Loss::SoftmaxCrossEntropy, &train, Some(&valid), &mut observer)
        .unwrap();
    // 111 training rows (39 of 150 held out, 13 per class) in batches of 10
    // → 12 steps an epoch, 36 in 3 epochs.
    assert_eq!(report.termination, Termination::Pruned);
    assert_eq!((report.epochs, report.steps), (3, 36));
    assert_eq!(observer.steps, (0..36).step_by(5).collect::<Vec<_>>());
    assert!(observer.epochs.iter().all(|e| e.valid_loss.is_some_and(f64::is_finite)));
    assert!(observer.epochs.iter().all(|e| e.valid_score.is_none()), "no metric asked for");
}

#[test]
fn a_run_the_observer_stops_keeps_the_stopping_epoch_when_it_is_the_best() {
    let (train, valid) = held_out("builtin:iris", 2);
    let mut model = LinearModel::new(4, 3, true);
    let config =
        TrainConfig { lr: 0.01, early_stopping: Some(gradus_train::EarlyStopping::new(50)), ..TrainConfig::default() };
    let mut observer = Recorder { stop_after: 3, ..Recorder::default() };
    Trainer::new(config)
        .unwrap()
        .fit(&mut model, Loss::SoftmaxCrossEntropy, &train, Some(&valid), &mut observer)
        .unwrap();
    let losses: Vec<f64> = observer.epochs.iter().map(|e| e.valid_loss.unwrap()).collect();
    assert!(losses[2] < losses[1] && losses[1] < losses[0], "still improving: {losses:?}");
    let Metrics::Classification { log_loss, .. } = evaluate(&model, Loss::SoftmaxCrossEntropy, &valid).unwrap() else {
        panic!("classification metrics")
    };
    assert_eq!(log_loss, losses[2], "the weights of the last, best epoch, not of the one before");
}

#[test]
fn epochs_of_some_rows_take_the_same_steps_as_full_passes_cut_finer() {
    // 111 training rows in batches of 10: 12 batches a pass. Epochs of 40
    // rows are 4 batches, so 6 of them are the 2 passes of 2 full epochs,
    // drawn in the same shuffled orders: the same weights, bit for bit.
    let (train, valid) = held_out("builtin:iris", 2);
    let run = |epochs: usize, epoch_rows: Option<usize>| {
        let mut model = LinearModel::new(4, 3, true);
        let config = TrainConfig { batch_size: Some(10), lr: 0.05, epochs, epoch_rows, ..TrainConfig::default() };
        let mut observer = Recorder { stop_after: 0, ..Recorder::default() };
        let report = Trainer::new(config)
            .unwrap()
            .fit(&mut model, Loss::SoftmaxCrossEntropy, &train, Some(&valid), &mut observer)
            .unwrap();
        (model.params().to_vec(), report.steps, observer.epochs.len())
    };
    let (full, full_steps, full_epochs) = run(2, None);
    let (cut, cut_steps, cut_epochs) = run(6, Some(40));
    assert_eq!((full_steps, full_epochs), (24, 2));
    assert_eq!((cut_steps, cut_epochs), (24, 6), "4 steps an epoch");
    assert_eq!(full, cut);
    // As many rows as the table, or more, is a full pass.
    assert_eq!(run(2, Some(111)).0, full);
    assert_eq!(run(2, Some(5000)).0, full);
    let err = Trainer::new(TrainConfig { epoch_rows: Some(0), ..TrainConfig::default() }).unwrap_err();
    assert!(err.to_string().contains("epoch rows 0"), "{err}");
}

#[test]
fn a_monitored_metric_is_measured_on_the_validation_rows_after_every_epoch() {
    let (train, valid) = held_out("builtin:breast_cancer", 1);
    let mut model = LinearModel::new(30, 1, true);
    let config =
        TrainConfig { lr: 0.01, epochs: 4, monitor: Some(gradus_train::Metric::RocAuc), ..TrainConfig::default() };
    let mut observer = Recorder { stop_after: 0, ..Recorder::default() };
    Trainer::new(config)
        .unwrap()
        .fit(&mut model, Loss::BinaryCrossEntropy, &train, Some(&valid), &mut observer)
        .unwrap();
    assert_eq!(observer.epochs.len(), 4);
    // The last epoch's score is the model's validation AUC as it stands.
    let Metrics::Classification { roc_auc, log_loss, .. } = evaluate(&model, Loss::BinaryCrossEntropy, &valid).unwrap()
    else {
        panic!("classification metrics")
    };
    let last = observer.epochs[3];
    assert_eq!(last.valid_score, roc_auc);
    assert_eq!(last.valid_loss, Some(log_loss), "the loss is still the loss");
    assert!(observer.epochs.iter().all(|e| e.valid_score.is_some_and(|s| s > 0.9 && s <= 1.0)));
}

#[test]
fn invalid_hyperparameters_are_rejected_with_their_name() {
    let cases = [
        (TrainConfig { lr: 0.0, ..TrainConfig::default() }, "invalid lr 0"),
        (TrainConfig { lr: -1.0, ..TrainConfig::default() }, "invalid lr -1"),
        (TrainConfig { epochs: 0, ..TrainConfig::default() }, "invalid epochs 0"),
        (TrainConfig { batch_size: Some(0), ..TrainConfig::default() }, "invalid batch size 0"),
        (TrainConfig { l2: -0.5, ..TrainConfig::default() }, "invalid l2 -0.5"),
        (TrainConfig { optimizer: OptimizerConfig::sgd(1.0), ..TrainConfig::default() }, "invalid momentum 1"),
    ];
    for (config, expected) in cases {
        let err = Trainer::new(config).unwrap_err().to_string();
        assert!(err.starts_with(expected), "got {err:?}, expected {expected:?}");
    }
}

#[test]
fn data_that_does_not_fit_the_model_is_an_error_not_a_panic() {
    let data = classic_linear(5);
    let trainer = Trainer::new(gd(0.01, 1)).unwrap();
    let err = trainer.fit(&mut LinearModel::new(2, 1, true), Loss::Mse, &data, None, &mut NoObserver).unwrap_err();
    assert!(err.to_string().contains("1 features, the model takes 2"), "{err}");
    let err = trainer
        .fit(&mut LinearModel::new(1, 1, true), Loss::BinaryCrossEntropy, &data, None, &mut NoObserver)
        .unwrap_err();
    assert!(err.to_string().contains("needs a class target"), "{err}");
}

/// scikit-learn's optimum for L2-regularised logistic regression on all of
/// breast_cancer, standardised. Its objective `½‖w‖² + C·Σ log-loss` has the
/// same minimiser as ours, `mean log-loss + l2/2·‖w‖²`, with `l2 = 1/(C·n)`.
/// Numbers from `bench/reference/sklearn_lbfgs_logistic.py` (scikit-learn 1.9.1):
///   C=1.0: log_loss=0.05339185780994301 objective=0.06636018622475447
///   C=0.1: log_loss=0.08317214718417594 objective=0.11647032110386811
#[test]
fn lbfgs_logistic_regression_matches_scikit_learn_within_1e_5() {
    let options = LoadOptions { target_kind: gradus_data::TargetKind::Classes, ..LoadOptions::default() };
    let mut data = load("builtin:breast_cancer", &options).unwrap();
    Scaler::standard(&data.x).unwrap().transform(&mut data.x).unwrap();
    let n = data.n_samples() as f32;
    for (c, want_log_loss, want_objective) in
        [(1.0f32, 0.05339185780994301, 0.06636018622475447), (0.1, 0.08317214718417594, 0.11647032110386811)]
    {
        let mut model = LinearModel::new(30, 1, true);
        let config = TrainConfig {
            optimizer: OptimizerConfig::lbfgs(),
            epochs: 500,
            l2: 1.0 / (c * n),
            tol: 1e-10,
            ..TrainConfig::default()
        };
        let report = Trainer::new(config)
            .unwrap()
            .fit(&mut model, Loss::BinaryCrossEntropy, &data, None, &mut NoObserver)
            .unwrap();
        let Metrics::Classification { log_loss, .. } = evaluate(&model, Loss::BinaryCrossEntropy, &data).unwrap()
        else {
            panic!("classification")
        };
        eprintln!(
            "C={c}: log-loss {log_loss} (sklearn {want_log_loss}), objective {} after {} iterations ({})",
            report.final_loss, report.epochs, report.termination
        );
        assert!((log_loss - want_log_loss).abs() < 1e-5, "C={c}: log-loss {log_loss} vs {want_log_loss}");
        assert!(
            (report.final_loss - want_objective).abs() < 1e-5,
            "C={c}: objective {} vs {want_objective}",
            report.final_loss
        );
    }
}

/// The same with `class_weight="balanced"` (weights n / (2·n_c): 0.797 for
/// benign, 1.342 for malignant), from the same script:
///   C=1.0: log_loss=0.055261967325121696 objective=0.07136984034860848
/// (the log-loss unweighted, the objective weighted).
#[test]
fn class_weighted_lbfgs_logistic_regression_matches_scikit_learn_within_1e_5() {
    let options = LoadOptions { target_kind: gradus_data::TargetKind::Classes, ..LoadOptions::default() };
    let mut data = load("builtin:breast_cancer", &options).unwrap();
    Scaler::standard(&data.x).unwrap().transform(&mut data.x).unwrap();
    let n = data.n_samples() as f32;
    let labels = data.y.labels().unwrap();
    let malignant = labels.iter().filter(|&&l| l == 1).count() as f32;
    let weights = vec![n / (2.0 * (n - malignant)), n / (2.0 * malignant)];
    assert!((weights[0] - 0.796_918_8).abs() < 1e-6 && (weights[1] - 1.341_981).abs() < 1e-6, "{weights:?}");
    let mut model = LinearModel::new(30, 1, true);
    let config = TrainConfig {
        optimizer: OptimizerConfig::lbfgs(),
        epochs: 500,
        l2: 1.0 / n,
        tol: 1e-10,
        class_weights: Some(weights),
        ..TrainConfig::default()
    };
    let report =
        Trainer::new(config).unwrap().fit(&mut model, Loss::BinaryCrossEntropy, &data, None, &mut NoObserver).unwrap();
    let Metrics::Classification { log_loss, .. } = evaluate(&model, Loss::BinaryCrossEntropy, &data).unwrap() else {
        panic!("classification")
    };
    assert!((log_loss - 0.055_261_967_325_121_696).abs() < 1e-5, "log-loss {log_loss}");
    assert!((report.final_loss - 0.071_369_840_348_608_48).abs() < 1e-5, "objective {}", report.final_loss);
    // Weights that do not fit the classes are an error, not a panic.
    let config = TrainConfig { class_weights: Some(vec![1.0]), ..TrainConfig::default() };
    let err = Trainer::new(config)
        .unwrap()
        .fit(&mut LinearModel::new(30, 1, true), Loss::BinaryCrossEntropy, &data, None, &mut NoObserver)
        .unwrap_err();
    assert!(err.to_string().contains("2 finite numbers > 0, one per class"), "{err}");
}

#[test]
fn the_scheduled_learning_rate_is_the_one_the_optimizer_uses() {
    // Classic example, GD from θ = 0, lr 0.01 halved every epoch. The gradient
    // of mean((θx − 2x)²) over x = 1..5 is 22(θ − 2), so
    // θ1 = 0 − 0.01·22·(−2) = 0.44
    // θ2 = 0.44 − 0.005·22·(0.44 − 2) = 0.6116
    // θ3 = 0.6116 − 0.0025·22·(0.6116 − 2) = 0.687962
    let data = classic_linear(5);
    let mut model = LinearModel::new(1, 1, false);
    let config = TrainConfig { schedule: gradus_train::Schedule::Exponential { gamma: 0.5 }, ..gd(0.01, 3) };
    let report = Trainer::new(config).unwrap().fit(&mut model, Loss::Mse, &data, None, &mut NoObserver).unwrap();
    assert_eq!(report.history.iter().map(|e| e.lr).collect::<Vec<_>>(), [0.01, 0.005, 0.0025]);
    assert!((model.weights()[0] - 0.687962).abs() < 1e-5, "θ3 = {}", model.weights()[0]);
}

#[test]
fn an_epoch_cut_short_by_max_iter_reports_the_mean_of_the_rows_it_saw() {
    let (train, _) = held_out("builtin:iris", 2);
    let config = TrainConfig { batch_size: Some(10), max_iter: Some(1), ..TrainConfig::default() };
    let report = Trainer::new(config)
        .unwrap()
        .fit(&mut LinearModel::new(4, 3, true), Loss::SoftmaxCrossEntropy, &train, None, &mut NoObserver)
        .unwrap();
    // One batch from zero weights: the loss is ln 3, not a tenth of it.
    assert!((report.history[0].train_loss - 3f64.ln()).abs() < 1e-6, "{:?}", report.history);
}

#[test]
fn clipping_a_huge_but_finite_gradient_still_moves_the_weights() {
    // Features near 1e21 give gradients whose squared norm overflows f32.
    let mut data = classic_linear(5);
    data.x.as_mut_slice().iter_mut().for_each(|v| *v *= 1e21);
    let mut model = LinearModel::new(1, 1, false);
    let config = TrainConfig { clip_norm: Some(1.0), tol: 0.0, ..gd(1e-22, 3) };
    Trainer::new(config).unwrap().fit(&mut model, Loss::Mse, &data, None, &mut NoObserver).unwrap();
    assert!(model.weights()[0] > 0.0, "θ moved towards 2e-21·… : {}", model.weights()[0]);
}
