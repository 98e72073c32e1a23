//! The gradus side of `bench/train_speed.py`: times training the way the
//! script times PyTorch and scikit-learn, and prints one JSON object.
//!
//! ```text
//! bench_train mlp DATASET HIDDEN BATCH EPOCHS SCALING [ACTIVATION DROPOUT]  # e.g. mlp digits 128 32 10 standard
//! bench_train gemm DATASET HIDDEN BATCH                 # GEMM peak for the same shapes
//! bench_train logreg X.f32 Y.u8 ROWS COLS L2 TARGET     # L-BFGS until the objective ≤ TARGET
//! ```
//! Run it in release mode; it is single-threaded (faer with `Par::Seq`).

use std::time::Instant;

use gradus::data::{Dataset, LoadOptions, Matrix, Scaling, Target, load};
use gradus::train::{
    Activation, Control, EpochRecord, Loss, MlpSpec, Model, Network, Observer, OptimizerConfig, Preprocessing,
    Termination, TrainConfig, Trainer, WeightInit,
};

/// Records the wall time of each epoch, and stops once the training
/// objective reaches `target`.
struct Clock {
    start: Instant,
    last: Instant,
    epoch_seconds: Vec<f64>,
    target: f64,
    reached: Option<(f64, usize)>,
}

impl Clock {
    fn new(target: f64) -> Self {
        let now = Instant::now();
        Self { start: now, last: now, epoch_seconds: Vec::new(), target, reached: None }
    }
}

impl Observer for Clock {
    fn on_epoch(&mut self, record: &EpochRecord) -> Control {
        let now = Instant::now();
        self.epoch_seconds.push((now - self.last).as_secs_f64());
        self.last = now;
        if record.train_loss <= self.target {
            self.reached = Some(((now - self.start).as_secs_f64(), record.epoch + 1));
            return Control::Stop(Termination::Interrupted);
        }
        Control::Continue
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The training part (80%, seed 0) of a built-in dataset, scaled.
fn training_rows(name: &str, scaling: Scaling) -> Dataset {
    let data = load(&format!("builtin:{name}"), &LoadOptions::default()).expect("a built-in dataset");
    let split = data.split(0.2, 0.0, 0).expect("a split");
    let train = data.subset(&split.train);
    Preprocessing::fit(&train, scaling).unwrap().apply(&train).unwrap()
}

fn spec(n_inputs: usize, hidden: &[usize], n_outputs: usize) -> MlpSpec {
    MlpSpec {
        n_inputs,
        hidden: hidden.to_vec(),
        n_outputs,
        activation: Activation::Relu,
        dropout: 0.0,
        init: WeightInit::Auto,
        periodic: None,
        categories: None,
    }
}

fn activation(name: &str) -> Activation {
    match name {
        "tanh" => Activation::Tanh,
        "gelu" => Activation::Gelu,
        "sigmoid" => Activation::Sigmoid,
        _ => Activation::Relu,
    }
}

fn n_classes(d: &Dataset) -> usize {
    match &d.y {
        Target::Classes { classes, .. } => classes.len(),
        Target::Real(_) => 1,
    }
}

fn mlp(args: &[String]) {
    let hidden: Vec<usize> = args[1].split(',').map(|w| w.parse().unwrap()).collect();
    let (batch, epochs): (usize, usize) = (args[2].parse().unwrap(), args[3].parse().unwrap());
    let scaling = if args[4] == "minmax" { Scaling::MinMax } else { Scaling::Standard };
    let train = training_rows(&args[0], scaling);
    let mut spec = spec(train.n_features(), &hidden, n_classes(&train));
    if let [act, dropout] = &args[5..] {
        spec.activation = activation(act);
        spec.dropout = dropout.parse().unwrap();
    }
    let mut model = Network::mlp(&spec).unwrap();
    let config = TrainConfig {
        optimizer: OptimizerConfig::adam(),
        lr: 1e-3,
        epochs,
        batch_size: Some(batch),
        tol: 0.0,
        ..TrainConfig::default()
    };
    let mut clock = Clock::new(f64::NEG_INFINITY);
    let report =
        Trainer::new(config).unwrap().fit(&mut model, Loss::SoftmaxCrossEntropy, &train, None, &mut clock).unwrap();
    let widths: Vec<usize> = std::iter::once(train.n_features()).chain(hidden).chain([n_classes(&train)]).collect();
    let macs: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
    let first = widths[0] * widths[1];
    // Forward 2·MACs, backward 4·MACs less the input gradient of the first layer.
    let flops = train.n_samples() as f64 * (6 * macs - 2 * first) as f64;
    println!(
        "{{\"rows\": {}, \"epochs\": {}, \"median_epoch_seconds\": {}, \"epoch_seconds\": {:?}, \"final_loss\": {}, \"gflops_per_epoch\": {}}}",
        train.n_samples(),
        report.epochs,
        median(&clock.epoch_seconds),
        clock.epoch_seconds,
        report.final_loss,
        flops / 1e9
    );
}

/// Times faer's single-threaded GEMMs on the shapes of one training step
/// (forward Z = A·W, backward dW = Aᵀ·dZ and dA = dZ·Wᵀ) and reports the
/// GFLOP/s they reach: the ceiling for a training step built on them.
fn gemm(args: &[String]) {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, Mat, Par};
    let train = training_rows(&args[0], Scaling::Standard);
    let hidden: Vec<usize> = args[1].split(',').map(|w| w.parse().unwrap()).collect();
    let batch: usize = args[2].parse().unwrap();
    let widths: Vec<usize> = std::iter::once(train.n_features()).chain(hidden).chain([n_classes(&train)]).collect();
    let layers: Vec<_> = widths
        .windows(2)
        .map(|w| {
            let (i, o) = (w[0], w[1]);
            (
                Mat::<f32>::from_fn(batch, i, |r, c| ((r + c) % 7) as f32 * 0.1),
                Mat::<f32>::from_fn(i, o, |r, c| ((r * 3 + c) % 5) as f32 * 0.1),
                Mat::<f32>::zeros(batch, o),
                Mat::<f32>::zeros(i, o),
                Mat::<f32>::zeros(batch, i),
            )
        })
        .collect();
    let mut layers = layers;
    let mut best = f64::INFINITY;
    let mut flops = 0.0;
    for _ in 0..20 {
        let start = Instant::now();
        flops = 0.0;
        for _ in 0..10 {
            for (l, (a, wt, z, gw, da)) in layers.iter_mut().enumerate() {
                let (i, o) = (wt.nrows(), wt.ncols());
                matmul(z.as_mut(), Accum::Replace, a.as_ref(), wt.as_ref(), 1.0, Par::Seq);
                matmul(gw.as_mut(), Accum::Replace, a.as_ref().transpose(), z.as_ref(), 1.0, Par::Seq);
                flops += 4.0 * (batch * i * o) as f64;
                if l > 0 {
                    matmul(da.as_mut(), Accum::Replace, z.as_ref(), wt.as_ref().transpose(), 1.0, Par::Seq);
                    flops += 2.0 * (batch * i * o) as f64;
                }
                std::hint::black_box((&*z, &*gw, &*da));
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("{{\"gemm_gflops\": {}}}", flops / best / 1e9);
}

fn logreg(args: &[String]) {
    let (rows, cols): (usize, usize) = (args[2].parse().unwrap(), args[3].parse().unwrap());
    let (l2, target): (f32, f64) = (args[4].parse().unwrap(), args[5].parse().unwrap());
    let x: Vec<f32> =
        std::fs::read(&args[0]).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let labels: Vec<u32> = std::fs::read(&args[1]).unwrap().into_iter().map(u32::from).collect();
    let names: Vec<String> = (0..cols).map(|j| format!("x{j}")).collect();
    let data = Dataset::numeric(
        "synthetic",
        Matrix::from_vec(rows, cols, x).unwrap(),
        Target::Classes { labels, classes: vec!["0".into(), "1".into()] },
        &names,
        "y",
    );
    let mut model = gradus::train::LinearModel::new(cols, 1, true);
    let config =
        TrainConfig { optimizer: OptimizerConfig::lbfgs(), epochs: 1000, l2, tol: 0.0, ..TrainConfig::default() };
    let mut clock = Clock::new(target);
    let start = Instant::now();
    let report =
        Trainer::new(config).unwrap().fit(&mut model, Loss::BinaryCrossEntropy, &data, None, &mut clock).unwrap();
    let total = start.elapsed().as_secs_f64();
    let (seconds, iterations) = clock.reached.map_or((f64::NAN, report.epochs), |r| r);
    let log_loss = {
        let mut out = vec![0.0; rows];
        model.predict(data.x.view().into(), &mut out);
        Loss::BinaryCrossEntropy.value(&out, 1, (&data.y).into())
    };
    println!(
        "{{\"seconds_to_target\": {seconds}, \"iterations\": {iterations}, \"reached\": {}, \"objective\": {}, \"log_loss\": {log_loss}, \"total_seconds\": {total}}}",
        clock.reached.is_some(),
        report.final_loss
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("mlp") if args.len() == 6 || args.len() == 8 => mlp(&args[1..]),
        Some("gemm") if args.len() == 4 => gemm(&args[1..]),
        Some("logreg") if args.len() == 7 => logreg(&args[1..]),
        _ => {
            eprintln!(
                "usage: bench_train mlp DATASET HIDDEN BATCH EPOCHS SCALING [ACTIVATION DROPOUT] | gemm DATASET HIDDEN BATCH | logreg X Y ROWS COLS L2 TARGET"
            );
            std::process::exit(2);
        }
    }
}
