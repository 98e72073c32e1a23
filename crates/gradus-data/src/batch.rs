//! Shuffled mini-batches of row indices.

use rand::seq::SliceRandom;

use crate::{DataError, Rng};

/// The row order of one epoch, cut into batches of `batch_size` (the last
/// batch may be smaller, as with PyTorch's `drop_last=False`). Row numbers
/// take 4 bytes (a table of 8.4M rows: 34 MB, not 67), so a dataset holds
/// at most 2³² rows.
#[derive(Clone, Debug)]
pub struct Batches {
    order: Vec<u32>,
    batch_size: usize,
}

impl Batches {
    pub fn new(n: usize, batch_size: usize) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::invalid("batch size", "must be at least 1"));
        }
        let n = u32::try_from(n)
            .map_err(|_| DataError::invalid("rows", format!("{n} rows are more than the 2^32 a dataset can hold")))?;
        Ok(Self { order: (0..n).collect(), batch_size })
    }

    /// Reorders the rows for the next epoch.
    pub fn shuffle(&mut self, rng: &mut Rng) {
        self.order.shuffle(rng);
    }

    pub fn iter(&self) -> std::slice::Chunks<'_, u32> {
        self.order.chunks(self.batch_size)
    }

    /// Batch `i` of the current order (the last may be smaller).
    ///
    /// # Panics
    /// When `i` is not below [`Self::len`].
    pub fn batch(&self, i: usize) -> &[u32] {
        let start = i * self.batch_size;
        assert!(start < self.order.len(), "batch {i} of {}", self.len());
        &self.order[start..(start + self.batch_size).min(self.order.len())]
    }

    /// The number of batches in an epoch.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_epoch_visits_every_row_once_in_a_seeded_order() {
        let mut b = Batches::new(10, 4).unwrap();
        assert_eq!(b.iter().map(<[u32]>::len).collect::<Vec<_>>(), [4, 4, 2]);
        assert_eq!(b.len(), 3);
        assert_eq!((b.batch(0), b.batch(2)), (&[0, 1, 2, 3][..], &[8, 9][..]));
        let mut rng = crate::seeded_rng(1);
        b.shuffle(&mut rng);
        let first: Vec<u32> = b.iter().flatten().copied().collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        // The order 8-byte row numbers took (and trained models kept).
        let mut wide: Vec<usize> = (0..10).collect();
        wide.shuffle(&mut crate::seeded_rng(1));
        assert_eq!(first.iter().map(|&r| r as usize).collect::<Vec<_>>(), wide);
        assert_ne!(first, sorted);
        let mut again = Batches::new(10, 4).unwrap();
        again.shuffle(&mut crate::seeded_rng(1));
        assert_eq!(again.iter().flatten().copied().collect::<Vec<_>>(), first);
        assert!(Batches::new(10, 0).is_err());
    }
}
