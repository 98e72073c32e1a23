//! A dense, row-major `f32` matrix: the storage format of every feature table.

use serde::{Deserialize, Serialize};

/// A dense row-major matrix of `f32` (one row per sample).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// A borrowed view of a row-major matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl Matrix {
    /// Reorders the rows in place: row `j` becomes the row that was at
    /// `order(j)`, `order` being a permutation of the row numbers.
    pub fn permute_rows(&mut self, order: impl Fn(usize) -> usize) {
        permute_rows(&mut self.data, self.cols, order)
    }

    /// A `rows` x `cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// Wraps row-major `data`; `None` when its length is not `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Option<Self> {
        (data.len() == rows * cols).then_some(Self { rows, cols, data })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major values.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn view(&self) -> MatRef<'_> {
        MatRef { data: &self.data, rows: self.rows, cols: self.cols }
    }

    /// A new matrix holding the rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut out = Matrix::zeros(0, self.cols);
        self.gather_rows_into(indices, &mut out);
        out
    }

    /// Cuts the matrix into consecutive parts of `rows` rows each (which must
    /// add up to its row count), in place: the first part keeps this
    /// allocation, later ones are copied out of it.
    pub fn split_rows(self, rows: &[usize]) -> Vec<Matrix> {
        assert_eq!(rows.iter().sum::<usize>(), self.rows, "the parts add up to the rows");
        let cols = self.cols;
        crate::dataset::cut(self.data, &rows.iter().map(|r| r * cols).collect::<Vec<_>>())
            .into_iter()
            .zip(rows)
            .map(|(data, &rows)| Matrix { rows, cols, data })
            .collect()
    }

    /// Makes this a `rows` x `cols` matrix of zeros, reusing its allocation.
    pub fn reset(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.clear();
        self.data.resize(rows * cols, 0.0);
    }

    /// Copies the rows at `indices` into `out`, reusing its allocation.
    pub fn gather_rows_into(&self, indices: &[usize], out: &mut Matrix) {
        out.rows = indices.len();
        out.cols = self.cols;
        out.data.clear();
        out.data.reserve(indices.len() * self.cols);
        for &i in indices {
            out.data.extend_from_slice(self.row(i));
        }
    }
}

/// Reorders the rows of `width` values of `data` in place so that row `j`
/// becomes the row that was at `order(j)`, where `order` is a permutation of
/// the row numbers. Follows each cycle of the permutation with one row of
/// scratch and a bit per row, so that a dataset of millions of rows can be
/// split without a second copy of it.
pub(crate) fn permute_rows<T: Copy>(data: &mut [T], width: usize, order: impl Fn(usize) -> usize) {
    let n = data.len().checked_div(width).unwrap_or(0);
    let mut done = vec![0u64; n.div_ceil(64)];
    let mut scratch: Vec<T> = Vec::with_capacity(width);
    for start in 0..n {
        if done[start / 64] >> (start % 64) & 1 == 1 {
            continue;
        }
        scratch.clear();
        scratch.extend_from_slice(&data[start * width..(start + 1) * width]);
        let mut j = start;
        loop {
            done[j / 64] |= 1 << (j % 64);
            let from = order(j);
            assert!(from < n, "row {from} of a permutation of {n}");
            if from == start {
                data[j * width..(j + 1) * width].copy_from_slice(&scratch);
                break;
            }
            data.copy_within(from * width..(from + 1) * width, j * width);
            j = from;
        }
    }
}

impl<'a> MatRef<'a> {
    /// A view of row-major `data`; `None` when its length is not `rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Option<Self> {
        (data.len() == rows * cols).then_some(Self { data, rows, cols })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_rows_copies_the_requested_rows_in_order() {
        let m = Matrix::from_vec(3, 2, vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let s = m.select_rows(&[2, 0]);
        assert_eq!((s.rows(), s.cols()), (2, 2));
        assert_eq!(s.as_slice(), &[5., 6., 1., 2.]);
    }

    #[test]
    fn from_vec_rejects_a_wrong_length() {
        assert!(Matrix::from_vec(2, 2, vec![1.0; 3]).is_none());
        assert!(MatRef::new(&[1.0; 3], 1, 2).is_none());
    }
}
