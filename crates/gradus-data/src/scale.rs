//! Standardisation (zero mean, unit variance per feature), fitted on the
//! training rows only and then applied unchanged to validation and test rows.

use serde::{Deserialize, Serialize};

use crate::{DataError, Matrix};

/// Per-feature mean and scale, like scikit-learn's `StandardScaler`: the scale
/// is the population standard deviation, and 1 for a constant feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl StandardScaler {
    /// Fits the mean and scale of each column of `x` (accumulated in f64).
    pub fn fit(x: &Matrix) -> Result<Self, DataError> {
        if x.rows() == 0 {
            return Err(DataError::invalid("scaler", "cannot fit on zero rows"));
        }
        let n = x.rows() as f64;
        let mut sum = vec![0.0f64; x.cols()];
        let mut sum_sq = vec![0.0f64; x.cols()];
        for i in 0..x.rows() {
            for (j, &v) in x.row(i).iter().enumerate() {
                sum[j] += v as f64;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        for i in 0..x.rows() {
            for (j, &v) in x.row(i).iter().enumerate() {
                let d = v as f64 - mean[j];
                sum_sq[j] += d * d;
            }
        }
        let scale = sum_sq
            .iter()
            .map(|s| {
                let std = (s / n).sqrt();
                if std > 1e-12 { std as f32 } else { 1.0 }
            })
            .collect();
        Ok(Self { mean: mean.into_iter().map(|m| m as f32).collect(), scale })
    }

    /// Standardises `x` in place.
    pub fn transform(&self, x: &mut Matrix) -> Result<(), DataError> {
        if x.cols() != self.mean.len() {
            return Err(DataError::invalid(
                "scaler",
                format!("fitted on {} features, given {}", self.mean.len(), x.cols()),
            ));
        }
        for i in 0..x.rows() {
            for ((v, m), s) in x.row_mut(i).iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_columns_have_zero_mean_and_unit_variance() {
        let mut x = Matrix::from_vec(4, 2, vec![1., 5., 2., 5., 3., 5., 4., 5.]).unwrap();
        let s = StandardScaler::fit(&x).unwrap();
        assert_eq!(s.mean, [2.5, 5.0]);
        assert!((s.scale[0] - 1.25f32.sqrt()).abs() < 1e-6);
        assert_eq!(s.scale[1], 1.0, "a constant column keeps scale 1");
        s.transform(&mut x).unwrap();
        let col0: Vec<f32> = (0..4).map(|i| x.row(i)[0]).collect();
        assert!(col0.iter().sum::<f32>().abs() < 1e-6);
        assert!((col0.iter().map(|v| v * v).sum::<f32>() / 4.0 - 1.0).abs() < 1e-6);
        assert!((0..4).all(|i| x.row(i)[1] == 0.0));
    }

    #[test]
    fn transform_rejects_another_width() {
        let s = StandardScaler::fit(&Matrix::zeros(2, 3)).unwrap();
        assert!(s.transform(&mut Matrix::zeros(2, 2)).is_err());
    }
}
