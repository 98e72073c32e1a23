//! Seeded synthetic datasets: the classic `y = 2x` line, noisy linear
//! regression with known coefficients, and Gaussian-blob classification
//! (like scikit-learn's `make_blobs`).

use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

use crate::{DataError, Dataset, Encoding, Matrix, Target, seeded_rng};

/// The classic first example: x = 1..=n, y = 2x, one feature.
pub fn classic_linear(n: usize) -> Dataset {
    let x: Vec<f32> = (1..=n).map(|i| i as f32).collect();
    let y = x.iter().map(|v| 2.0 * v).collect();
    Dataset {
        name: "synthetic:classic_linear".into(),
        x: Matrix::from_vec(n, 1, x).expect("n x 1"),
        y: Target::Real(y),
        encoding: Encoding::numbers(&["x".into()]),
        target_name: "y".into(),
        expansion: None,
        sparse: None,
    }
}

/// A regression problem with known true coefficients.
#[derive(Clone, Debug)]
pub struct LinearProblem {
    pub data: Dataset,
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// `n` rows of `d` standard-normal features, `y = x·w + b + noise·ε` with
/// w, b and ε standard normal.
pub fn noisy_linear(n: usize, d: usize, noise: f32, seed: u64) -> Result<LinearProblem, DataError> {
    if n == 0 || d == 0 {
        return Err(DataError::invalid("noisy_linear", "needs n >= 1 and d >= 1"));
    }
    if !(noise >= 0.0 && noise.is_finite()) {
        return Err(DataError::invalid("noise", format!("{noise} must be a finite number >= 0")));
    }
    let mut rng = seeded_rng(seed);
    let mut normal = || -> f32 { StandardNormal.sample(&mut rng) };
    let weights: Vec<f32> = (0..d).map(|_| normal()).collect();
    let bias = normal();
    let x: Vec<f32> = (0..n * d).map(|_| normal()).collect();
    let y = x
        .chunks(d)
        .map(|row| row.iter().zip(&weights).map(|(a, b)| a * b).sum::<f32>() + bias + noise * normal())
        .collect();
    Ok(LinearProblem {
        data: Dataset {
            name: "synthetic:noisy_linear".into(),
            x: Matrix::from_vec(n, d, x).expect("n x d"),
            y: Target::Real(y),
            encoding: Encoding::numbers(&(0..d).map(|j| format!("x{j}")).collect::<Vec<_>>()),
            target_name: "y".into(),
            expansion: None,
            sparse: None,
        },
        weights,
        bias,
    })
}

/// `n` points in `d` dimensions around `n_classes` centres drawn uniformly
/// from [-10, 10]^d, with standard deviation `cluster_std`; classes are
/// balanced (row i belongs to class i mod n_classes).
pub fn blobs(n: usize, n_classes: usize, d: usize, cluster_std: f32, seed: u64) -> Result<Dataset, DataError> {
    if n_classes < 2 || n < n_classes || d == 0 {
        return Err(DataError::invalid("blobs", "needs n >= n_classes >= 2 and d >= 1"));
    }
    if !(cluster_std > 0.0 && cluster_std.is_finite()) {
        return Err(DataError::invalid("cluster_std", format!("{cluster_std} must be a finite number > 0")));
    }
    let mut rng = seeded_rng(seed);
    let centres: Vec<f32> = (0..n_classes * d).map(|_| rng.random_range(-10.0..10.0)).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % n_classes) as u32).collect();
    let mut x = Vec::with_capacity(n * d);
    for &c in &labels {
        for j in 0..d {
            let e: f32 = StandardNormal.sample(&mut rng);
            x.push(centres[c as usize * d + j] + cluster_std * e);
        }
    }
    Ok(Dataset {
        name: "synthetic:blobs".into(),
        x: Matrix::from_vec(n, d, x).expect("n x d"),
        y: Target::Classes { labels, classes: (0..n_classes).map(|c| c.to_string()).collect() },
        encoding: Encoding::numbers(&(0..d).map(|j| format!("x{j}")).collect::<Vec<_>>()),
        target_name: "class".into(),
        expansion: None,
        sparse: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_linear_is_the_line_y_equals_2x() {
        let d = classic_linear(5);
        assert_eq!(d.x.as_slice(), &[1., 2., 3., 4., 5.]);
        assert_eq!(d.y, Target::Real(vec![2., 4., 6., 8., 10.]));
    }

    #[test]
    fn generators_are_reproducible_from_the_seed() {
        let a = noisy_linear(20, 3, 0.1, 5).unwrap();
        let b = noisy_linear(20, 3, 0.1, 5).unwrap();
        assert_eq!(a.data, b.data);
        assert_ne!(a.data, noisy_linear(20, 3, 0.1, 6).unwrap().data);
        assert_eq!(blobs(30, 3, 2, 1.0, 1).unwrap(), blobs(30, 3, 2, 1.0, 1).unwrap());
    }

    #[test]
    fn noiseless_linear_data_is_exactly_linear() {
        let p = noisy_linear(10, 2, 0.0, 0).unwrap();
        let Target::Real(y) = &p.data.y else { unreachable!() };
        for (i, yi) in y.iter().enumerate() {
            let row = p.data.x.row(i);
            let pred = row[0] * p.weights[0] + row[1] * p.weights[1] + p.bias;
            assert!((pred - yi).abs() < 1e-5);
        }
    }

    #[test]
    fn blobs_are_balanced_and_bad_arguments_are_rejected() {
        let d = blobs(30, 3, 2, 1.0, 1).unwrap();
        let labels = d.y.labels().unwrap();
        assert_eq!((0..3).map(|c| labels.iter().filter(|&&l| l == c).count()).collect::<Vec<_>>(), [10, 10, 10]);
        assert!(blobs(30, 1, 2, 1.0, 1).is_err());
        assert!(blobs(30, 3, 2, 0.0, 1).is_err());
        assert!(noisy_linear(0, 2, 0.1, 0).is_err());
    }
}
