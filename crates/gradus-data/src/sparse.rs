//! Sparse rows (compressed sparse row, CSR): the model inputs of text, where
//! each row holds a few dozen of 2¹⁸ or more possible features (hashed
//! n-grams). No dense matrix of the feature width is ever built from them.
//!
//! [`Inputs`] is what a model reads for a batch: dense rows, and beside
//! them, for text, the same rows' sparse features.

use serde::{Deserialize, Serialize};

use crate::MatRef;

/// Rows of (column, value) entries, CSR: row `i`'s entries are
/// `indices[indptr[i]..indptr[i + 1]]` with their `values`, columns
/// ascending and distinct within a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparseRows {
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

/// A borrowed view of [`SparseRows`] (or of a run of its rows).
#[derive(Clone, Copy, Debug)]
pub struct SparseRef<'a> {
    cols: usize,
    /// `rows + 1` offsets into `indices` and `values`; the first need not be 0.
    indptr: &'a [usize],
    indices: &'a [u32],
    values: &'a [f32],
}

impl SparseRows {
    /// No rows, `cols` columns.
    pub fn new(cols: usize) -> Self {
        Self { cols, indptr: vec![0], indices: Vec::new(), values: Vec::new() }
    }

    /// Appends a row from its entries, which are sorted by column and
    /// merged here (the values of a repeated column add up).
    ///
    /// # Panics
    /// When a column is not below [`Self::cols`].
    pub fn push_row(&mut self, entries: &mut [(u32, f32)]) {
        entries.sort_unstable_by_key(|e| e.0);
        let start = self.indices.len();
        for &(c, v) in entries.iter() {
            assert!((c as usize) < self.cols, "column {c} of {}", self.cols);
            if self.indices.len() > start && *self.indices.last().expect("a previous entry") == c {
                *self.values.last_mut().expect("a previous entry") += v;
            } else {
                self.indices.push(c);
                self.values.push(v);
            }
        }
        self.indptr.push(self.indices.len());
    }

    /// Appends the rows of `other`, which has the same columns.
    pub fn extend_rows(&mut self, other: SparseRef) {
        assert_eq!(self.cols, other.cols, "rows of the same width");
        for i in 0..other.rows() {
            let (c, v) = other.row(i);
            self.indices.extend_from_slice(c);
            self.values.extend_from_slice(v);
            self.indptr.push(self.indices.len());
        }
    }

    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The number of entries stored.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Row `i`'s columns and values.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        self.view().row(i)
    }

    pub fn view(&self) -> SparseRef<'_> {
        SparseRef { cols: self.cols, indptr: &self.indptr, indices: &self.indices, values: &self.values }
    }

    /// The rows at `rows`, in that order, into `out` (reusing its allocations).
    pub fn gather_rows_into(&self, rows: impl IntoIterator<Item = usize>, out: &mut SparseRows) {
        out.cols = self.cols;
        out.indptr.clear();
        out.indptr.push(0);
        out.indices.clear();
        out.values.clear();
        for i in rows {
            let (c, v) = self.row(i);
            out.indices.extend_from_slice(c);
            out.values.extend_from_slice(v);
            out.indptr.push(out.indices.len());
        }
    }

    /// A new matrix holding the rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> SparseRows {
        let mut out = SparseRows::new(self.cols);
        self.gather_rows_into(indices.iter().copied(), &mut out);
        out
    }

    /// The bytes its buffers hold.
    pub fn heap_bytes(&self) -> usize {
        self.indptr.len() * size_of::<usize>() + self.indices.len() * 4 + self.values.len() * 4
    }
}

impl<'a> SparseRef<'a> {
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`'s columns and values.
    pub fn row(&self, i: usize) -> (&'a [u32], &'a [f32]) {
        let (start, end) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[start..end], &self.values[start..end])
    }

    /// Rows `range` as a view.
    pub fn slice_rows(&self, range: std::ops::Range<usize>) -> SparseRef<'a> {
        SparseRef { indptr: &self.indptr[range.start..range.end + 1], ..*self }
    }
}

/// What a model reads for a batch of rows: the dense inputs and, for text,
/// the same rows' sparse inputs.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub dense: MatRef<'a>,
    pub sparse: Option<SparseRef<'a>>,
}

impl<'a> Inputs<'a> {
    /// Dense rows and, when given, the same rows' sparse inputs.
    ///
    /// # Panics
    /// When the two do not have the same number of rows.
    pub fn new(dense: MatRef<'a>, sparse: Option<SparseRef<'a>>) -> Self {
        if let Some(s) = &sparse {
            assert_eq!(s.rows(), dense.rows(), "dense and sparse inputs of the same rows");
        }
        Self { dense, sparse }
    }

    pub fn rows(&self) -> usize {
        self.dense.rows()
    }

    /// The dense rows, for a model that reads nothing else.
    ///
    /// # Panics
    /// When there are sparse inputs: a model that cannot read them must
    /// never be given them (the pipeline chooses a model that can).
    pub fn dense_only(&self) -> MatRef<'a> {
        assert!(self.sparse.is_none(), "this model reads dense inputs only, and was given sparse ones");
        self.dense
    }
}

impl<'a> From<MatRef<'a>> for Inputs<'a> {
    fn from(dense: MatRef<'a>) -> Self {
        Self { dense, sparse: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_stored_sorted_and_merged_and_gathered_in_any_order() {
        let mut m = SparseRows::new(10);
        m.push_row(&mut [(7, 1.0), (2, 0.5), (7, 2.0)]);
        m.push_row(&mut []);
        m.push_row(&mut [(9, -1.0)]);
        assert_eq!((m.rows(), m.cols(), m.nnz()), (3, 10, 3));
        assert_eq!(m.row(0), (&[2, 7][..], &[0.5, 3.0][..]));
        assert_eq!(m.row(1), (&[][..], &[][..]));
        let picked = m.select_rows(&[2, 0, 2]);
        assert_eq!(picked.rows(), 3);
        assert_eq!(picked.row(0), (&[9][..], &[-1.0][..]));
        assert_eq!(picked.row(1), m.row(0));
        let tail = m.view().slice_rows(1..3);
        assert_eq!((tail.rows(), tail.row(1)), (2, m.row(2)));
        let mut joined = SparseRows::new(10);
        joined.extend_rows(m.view().slice_rows(0..1));
        joined.extend_rows(tail);
        assert_eq!(joined, m);
    }
}
