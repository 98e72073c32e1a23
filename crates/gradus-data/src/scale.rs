//! Feature scaling, fitted on the training rows only and then applied
//! unchanged to validation, test and prediction rows.

use serde::{Deserialize, Serialize};

use crate::{DataError, Matrix, Rows};

/// How features are scaled before training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Zero mean, unit variance per feature (scikit-learn's `StandardScaler`).
    #[default]
    Standard,
    /// Each feature's training range mapped to [0, 1] (`MinMaxScaler`); the
    /// better choice for pixels, where standardising rare pixels blows them up.
    MinMax,
    /// Every feature mapped by one shared range, the training rows' minimum
    /// and maximum over all features: pixels 0–255 become 0–1 alike, so an
    /// image keeps its look (what a convolution expects), where per-feature
    /// scaling would stretch each pixel by its own range.
    Global,
    /// Features as given.
    None,
}

impl Scaling {
    pub const ALL: [Scaling; 4] = [Scaling::Standard, Scaling::MinMax, Scaling::Global, Scaling::None];

    /// Its name, as flags, search spaces and summaries write it.
    pub fn name(self) -> &'static str {
        match self {
            Scaling::Standard => "standard",
            Scaling::MinMax => "minmax",
            Scaling::Global => "global",
            Scaling::None => "none",
        }
    }

    /// The scaling called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Scaling> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scaler this choice fits on `x`; `None` for [`Scaling::None`].
    pub fn fit(self, x: &Matrix) -> Result<Option<Scaler>, DataError> {
        self.fit_rows(x)
    }

    /// [`Self::fit`] on rows visited one at a time (a dataset's expanded
    /// inputs, never held whole); the same scaler to the bit.
    pub fn fit_rows(self, x: &dyn Rows) -> Result<Option<Scaler>, DataError> {
        match self {
            Scaling::Standard => Scaler::standard(x).map(Some),
            Scaling::MinMax => Scaler::min_max(x).map(Some),
            Scaling::Global => Scaler::global(x).map(Some),
            Scaling::None => Ok(None),
        }
    }
}

/// A per-feature affine map `x' = (x − offset) / scale`, kept and applied in
/// f64 so that features near f32's range neither overflow nor lose their
/// offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub offset: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Mean and population standard deviation per column (accumulated in
    /// f64); a constant column keeps scale 1, as in scikit-learn.
    pub fn standard(x: &dyn Rows) -> Result<Self, DataError> {
        check_rows(x)?;
        let n = x.n_rows() as f64;
        let mut sum = vec![0.0f64; x.n_cols()];
        x.for_each_row(&mut |row| {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
        });
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let mut sum_sq = vec![0.0f64; x.n_cols()];
        x.for_each_row(&mut |row| {
            for ((s, &v), m) in sum_sq.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        });
        let scale = sum_sq
            .iter()
            .map(|s| {
                let std = (s / n).sqrt();
                if std > 1e-12 { std } else { 1.0 }
            })
            .collect();
        Ok(Self { offset: mean, scale })
    }

    /// One minimum and range for every column (see [`Scaling::Global`]); a
    /// constant matrix keeps scale 1.
    pub fn global(x: &dyn Rows) -> Result<Self, DataError> {
        check_rows(x)?;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        x.for_each_row(&mut |row| {
            for &v in row {
                (lo, hi) = (lo.min(f64::from(v)), hi.max(f64::from(v)));
            }
        });
        let range = if hi - lo > 1e-12 { hi - lo } else { 1.0 };
        Ok(Self { offset: vec![lo; x.n_cols()], scale: vec![range; x.n_cols()] })
    }

    /// Minimum and range per column; a constant column keeps scale 1.
    pub fn min_max(x: &dyn Rows) -> Result<Self, DataError> {
        check_rows(x)?;
        let mut lo = vec![f64::INFINITY; x.n_cols()];
        let mut hi = vec![f64::NEG_INFINITY; x.n_cols()];
        x.for_each_row(&mut |row| {
            for ((l, h), &v) in lo.iter_mut().zip(&mut hi).zip(row) {
                *l = l.min(v as f64);
                *h = h.max(v as f64);
            }
        });
        let scale = lo.iter().zip(&hi).map(|(l, h)| if h > l { h - l } else { 1.0 }).collect();
        Ok(Self { offset: lo, scale })
    }

    /// Scales `x` in place; a value too large for f32 after scaling is an error.
    pub fn transform(&self, x: &mut Matrix) -> Result<(), DataError> {
        self.transform_block(x, 0)
    }

    /// [`Self::transform`] of rows that come `first_row` rows into a
    /// matrix (errors name the row there).
    pub fn transform_block(&self, x: &mut Matrix, first_row: usize) -> Result<(), DataError> {
        if x.cols() != self.offset.len() || x.cols() != self.scale.len() {
            return Err(DataError::invalid(
                "scaler",
                format!("fitted on {} features ({} scales), given {}", self.offset.len(), self.scale.len(), x.cols()),
            ));
        }
        // A row is scaled into `scaled` and checked before it replaces the
        // values (an error names the value as given); the loop has no
        // branch, so that it vectorises — two f64 divisions an instruction.
        let mut scaled = vec![0.0f32; x.cols()];
        for i in 0..x.rows() {
            let row = x.row_mut(i);
            for (((t, &v), m), s) in scaled.iter_mut().zip(row.iter()).zip(&self.offset).zip(&self.scale) {
                *t = ((v as f64 - m) / s) as f32;
            }
            if let Some(j) = scaled.iter().position(|t| !t.is_finite()) {
                return Err(DataError::invalid(
                    "scaler",
                    format!(
                        "row {}, feature column {}: {} is out of range once scaled",
                        first_row + i + 1,
                        j + 1,
                        row[j]
                    ),
                ));
            }
            row.copy_from_slice(&scaled);
        }
        Ok(())
    }
}

fn check_rows(x: &dyn Rows) -> Result<(), DataError> {
    if x.n_rows() == 0 {
        return Err(DataError::invalid("scaler", "cannot fit on zero rows"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_columns_have_zero_mean_and_unit_variance() {
        let mut x = Matrix::from_vec(4, 2, vec![1., 5., 2., 5., 3., 5., 4., 5.]).unwrap();
        let s = Scaler::standard(&x).unwrap();
        assert_eq!(s.offset, [2.5, 5.0]);
        assert!((s.scale[0] - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.scale[1], 1.0, "a constant column keeps scale 1");
        s.transform(&mut x).unwrap();
        let col0: Vec<f32> = (0..4).map(|i| x.row(i)[0]).collect();
        assert!(col0.iter().sum::<f32>().abs() < 1e-6);
        assert!((col0.iter().map(|v| v * v).sum::<f32>() / 4.0 - 1.0).abs() < 1e-6);
        assert!((0..4).all(|i| x.row(i)[1] == 0.0));
    }

    #[test]
    fn min_max_maps_the_training_range_to_the_unit_interval() {
        let mut x = Matrix::from_vec(3, 2, vec![2., 7., 4., 7., 6., 7.]).unwrap();
        let s = Scaling::MinMax.fit(&x).unwrap().unwrap();
        s.transform(&mut x).unwrap();
        assert_eq!(x.as_slice(), &[0.0, 0.0, 0.5, 0.0, 1.0, 0.0]);
        assert!(Scaling::None.fit(&x).unwrap().is_none());
    }

    #[test]
    fn features_at_the_edge_of_f32_scale_without_overflow() {
        let mut x = Matrix::from_vec(2, 1, vec![-3.4e38, 3.4e38]).unwrap();
        for scaling in [Scaling::Standard, Scaling::MinMax] {
            let mut y = x.clone();
            scaling.fit(&y).unwrap().unwrap().transform(&mut y).unwrap();
            assert!(y.as_slice().iter().all(|v| v.is_finite() && v.abs() <= 1.0), "{scaling:?}: {y:?}");
        }
        let tiny = Scaler { offset: vec![0.0], scale: vec![1e-30] };
        assert!(tiny.transform(&mut x).is_err(), "overflow is an error, not inf");
    }

    #[test]
    fn transform_rejects_another_width_and_fit_rejects_no_rows() {
        let s = Scaler::standard(&Matrix::zeros(2, 3)).unwrap();
        assert!(s.transform(&mut Matrix::zeros(2, 2)).is_err());
        assert!(Scaler::min_max(&Matrix::zeros(0, 3)).is_err());
    }
}
