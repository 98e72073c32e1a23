//! Model inputs computed from stored rows as they are needed, so that what
//! an encoding derives from a number — its piecewise-linear bins, up to 48
//! inputs where the file has one value — is never held for every row.
//!
//! A [`Dataset`](crate::Dataset) with an [`Expansion`] stores each row as its
//! encoding's inputs without the bins ([`Encoding::transform_stored`]); the
//! expansion writes the full inputs of any rows on demand — each numeric
//! value followed by its bins, in [`Encoding::output_names`] order — and
//! applies a scaler fitted on the full inputs. The values are those
//! [`Encoding::transform`] and [`Scaler::transform`] give, to the bit.

use crate::{ColumnEncoder, DataError, Encoding, Matrix, Scaler};

/// Rows expanded at a time where a whole dataset's inputs are needed
/// (predictions, metrics): 65,536 rows of 100 inputs take 26 MB.
pub const BLOCK_ROWS: usize = 65_536;

/// Where one model input comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    /// A stored value as it is.
    Stored(usize),
    /// The piecewise-linear bin [lo, hi] of a stored value:
    /// min(1, max(0, (v − lo) / (hi − lo))).
    Bin { stored: usize, lo: f32, hi: f32 },
}

/// How stored rows become model inputs (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    stored_width: usize,
    sources: Vec<Source>,
    scaler: Option<Scaler>,
}

impl Expansion {
    /// The expansion of rows stored by `encoding` without their bins;
    /// `None` when the encoding has no bins (its rows are stored whole).
    pub fn of(encoding: &Encoding) -> Option<Self> {
        if !encoding.has_bins() {
            return None;
        }
        let mut sources = Vec::with_capacity(encoding.n_outputs());
        let mut stored = 0;
        for encoder in &encoding.columns {
            let kept = encoder.stored_width();
            sources.extend((stored..stored + kept).map(Source::Stored));
            if let ColumnEncoder::Number { bins, .. } = encoder {
                sources.extend(bins.windows(2).map(|e| Source::Bin { stored, lo: e[0], hi: e[1] }));
            }
            stored += kept;
        }
        debug_assert_eq!(sources.len(), encoding.n_outputs());
        Some(Self { stored_width: stored, sources, scaler: None })
    }

    /// The same expansion followed by `scaler` (fitted on the full inputs).
    pub fn with_scaler(&self, scaler: Option<Scaler>) -> Self {
        Self { scaler, ..self.clone() }
    }

    /// The scaler the full inputs go through, if any.
    pub fn scaler(&self) -> Option<&Scaler> {
        self.scaler.as_ref()
    }

    /// Values stored per row.
    pub fn stored_width(&self) -> usize {
        self.stored_width
    }

    /// Model inputs per row.
    pub fn width(&self) -> usize {
        self.sources.len()
    }

    /// Writes the model inputs of one stored row into `out`, unscaled.
    fn write_unscaled(&self, stored: &[f32], out: &mut [f32]) {
        for (o, source) in out.iter_mut().zip(&self.sources) {
            *o = match *source {
                Source::Stored(j) => stored[j],
                Source::Bin { stored: j, lo, hi } => ((stored[j] - lo) / (hi - lo)).clamp(0.0, 1.0),
            };
        }
    }

    /// Writes the model inputs of one stored row into `out` (the scaler's
    /// arithmetic: f64, then rounded to f32).
    fn write(&self, stored: &[f32], out: &mut [f32]) {
        self.write_unscaled(stored, out);
        if let Some(s) = &self.scaler {
            for ((v, m), sc) in out.iter_mut().zip(&s.offset).zip(&s.scale) {
                *v = ((*v as f64 - m) / sc) as f32;
            }
        }
    }

    /// The model inputs of `x`'s rows at `rows` (stored rows), into `out`,
    /// reusing its allocation.
    pub fn gather(&self, x: &Matrix, rows: impl ExactSizeIterator<Item = usize>, out: &mut Matrix) {
        let width = self.width();
        out.reset(rows.len(), width);
        for (o, i) in out.as_mut_slice().chunks_exact_mut(width).zip(rows) {
            self.write(x.row(i), o);
        }
    }

    /// Checks that every stored row scales to finite inputs, with the error
    /// [`Scaler::transform`] gives on the full inputs (its row and input).
    pub fn check(&self, x: &Matrix) -> Result<(), DataError> {
        let Some(scaler) = &self.scaler else { return Ok(()) };
        let mut row = vec![0.0f32; self.width()];
        for i in 0..x.rows() {
            self.write_unscaled(x.row(i), &mut row);
            for (j, ((v, m), s)) in row.iter().zip(&scaler.offset).zip(&scaler.scale).enumerate() {
                if !(((*v as f64 - m) / s) as f32).is_finite() {
                    return Err(DataError::invalid(
                        "scaler",
                        format!("row {}, feature column {}: {} is out of range once scaled", i + 1, j + 1, v),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The unscaled model inputs of every row of `x`, a row at a time, for
    /// fitting a scaler on them (see [`crate::Rows`]).
    pub fn unscaled<'a>(&'a self, x: &'a Matrix) -> Expanded<'a> {
        Expanded { x, expansion: self }
    }
}

/// Rows a scaler can be fitted on, visited in order without holding them all.
pub trait Rows {
    fn n_rows(&self) -> usize;
    fn n_cols(&self) -> usize;
    /// Calls `f` with each row, first to last.
    fn for_each_row(&self, f: &mut dyn FnMut(&[f32]));
}

impl Rows for Matrix {
    fn n_rows(&self) -> usize {
        self.rows()
    }
    fn n_cols(&self) -> usize {
        self.cols()
    }
    fn for_each_row(&self, f: &mut dyn FnMut(&[f32])) {
        (0..self.rows()).for_each(|i| f(self.row(i)));
    }
}

/// Stored rows seen as their unscaled model inputs (see [`Expansion::unscaled`]).
pub struct Expanded<'a> {
    x: &'a Matrix,
    expansion: &'a Expansion,
}

impl Rows for Expanded<'_> {
    fn n_rows(&self) -> usize {
        self.x.rows()
    }
    fn n_cols(&self) -> usize {
        self.expansion.width()
    }
    fn for_each_row(&self, f: &mut dyn FnMut(&[f32])) {
        let mut row = vec![0.0f32; self.expansion.width()];
        for i in 0..self.x.rows() {
            self.expansion.write_unscaled(self.x.row(i), &mut row);
            f(&row);
        }
    }
}
