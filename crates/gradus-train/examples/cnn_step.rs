//! Times the default MNIST CNN's training step (forward and backward, batch
//! 64, random images) and prints milliseconds per step: a profiling target
//! without the data reading and metrics around `gradus train`.
//!
//! Run: cargo run --release -p gradus-train --example cnn_step [steps]
use std::time::Instant;

use gradus_data::{MatRef, seeded_rng};
use gradus_train::{CnnSpec, Loss, Model, Network, Targets};
use rand::Rng as _;

fn main() {
    let steps: usize = std::env::args().nth(1).map_or(200, |s| s.parse().expect("a number of steps"));
    let batch = 64;
    let spec = CnnSpec::lenet([1, 28, 28], 10);
    let mut net = Network::cnn(&spec).unwrap();
    let mut rng = seeded_rng(0);
    net.init_params(&mut rng);
    let x: Vec<f32> = (0..batch * 784).map(|_| rng.random_range(0.0f32..1.0)).collect();
    let y: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut grad = vec![0.0; net.params().len()];
    let mut times = Vec::new();
    for _ in 0..steps {
        let start = Instant::now();
        net.forward_backward(
            MatRef::new(&x, batch, 784).unwrap().into(),
            Targets::Classes(&y),
            Loss::SoftmaxCrossEntropy,
            &mut grad,
        );
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "default CNN, batch {batch}: {:.2} ms a step (median of {steps}); an epoch of 5,000 images ≈ {:.2} s",
        times[steps / 2],
        times[steps / 2] * 5000.0 / 64.0 / 1e3
    );
}
