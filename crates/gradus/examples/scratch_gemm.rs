use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use std::time::Instant;
fn main() {
    for (m, k, n) in [(32, 64, 128), (32, 128, 10), (64, 32, 128), (128, 32, 64), (128, 784, 256)] {
        let a = Mat::<f32>::from_fn(m, k, |r, c| ((r + c) % 7) as f32);
        let b = Mat::<f32>::from_fn(k, n, |r, c| ((r + c) % 5) as f32);
        let mut c = Mat::<f32>::zeros(m, n);
        let iters = 20000 / (1 + m * k * n / 100000);
        let t = Instant::now();
        for _ in 0..iters {
            matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, Par::Seq);
        }
        let dt = t.elapsed().as_secs_f64() / iters as f64;
        println!("{m}x{k}x{n}: {:.2} us, {:.1} GFLOP/s", dt * 1e6, 2.0 * (m * k * n) as f64 / dt / 1e9);
    }
}
