//! The arithmetic rate of the default CNN's convolutions against faer's
//! GEMM peak on this machine, one thread: a large square SGEMM gives the
//! peak; each convolution stage of the default MNIST network (as a network
//! of that one stage) runs its forward and backward passes on batches of
//! 64 images, and its GFLOP/s counts the three products a stage computes
//! (outputs, weight gradient, input gradient; the first stage has none of
//! the last).
//!
//! Run: cargo run --release -p gradus-train --example conv_flops

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use gradus_data::{MatRef, seeded_rng};
use gradus_train::{Activation, Augment, CnnSpec, ConvStage, Loss, Model, Network, Targets};
use rand::Rng as _;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = 1024;
    let a = Mat::<f32>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f32 * 0.1);
    let b = Mat::<f32>::from_fn(n, n, |i, j| ((i * 5 + j) % 13) as f32 * 0.1);
    let mut c = Mat::<f32>::zeros(n, n);
    let mut rates = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0f32, Par::Seq);
        rates.push(2.0 * (n * n * n) as f64 / start.elapsed().as_secs_f64() / 1e9);
    }
    let peak = median(rates);
    println!("faer SGEMM {n}x{n}x{n}, one thread: {peak:.1} GFLOP/s (median of 7)");

    let batch = 64;
    let mut rng = seeded_rng(0);
    // The default network's two stages: 1x28x28 -> 32 channels, then 32x14x14 -> 64, 5x5 kernels padded by 2.
    for (stage, input, channels, first) in [(1, [1, 28, 28], 32, true), (2, [32, 14, 14], 64, false)] {
        let spec = CnnSpec {
            input,
            conv: vec![ConvStage { pool: 1, ..ConvStage::same(channels, 5, 1) }],
            global_pool: true,
            hidden: vec![],
            n_outputs: 1,
            activation: Activation::Relu,
            dropout: 0.0,
            augment: Augment::default(),
            batch_norm: false,
        };
        let mut net = Network::cnn(&spec).unwrap();
        net.init_params(&mut rng);
        let width: usize = input.iter().product();
        let x: Vec<f32> = (0..batch * width).map(|_| rng.random_range(0.0f32..1.0)).collect();
        let y = vec![0.5f32; batch];
        let mut grad = vec![0.0; net.params().len()];
        let patch = input[0] * 25;
        let pixels = input[1] * input[2];
        let products = if first { 2 } else { 3 };
        let flops = (products * 2 * batch * channels * patch * pixels) as f64;
        let mut rates = Vec::new();
        for _ in 0..9 {
            let start = Instant::now();
            net.forward_backward(
                MatRef::new(&x, batch, width).unwrap().into(),
                Targets::Real(&y),
                Loss::Mse,
                &mut grad,
            );
            rates.push(flops / start.elapsed().as_secs_f64() / 1e9);
        }
        let rate = median(rates);
        println!(
            "stage {stage}: conv {}x{}x{} -> {channels}, 5x5, batch {batch}: {rate:.1} GFLOP/s ({:.0}% of the SGEMM peak)",
            input[0],
            input[1],
            input[2],
            100.0 * rate / peak
        );
    }
}
