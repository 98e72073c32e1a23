//! The in-memory dataset: features, target and the names that describe them.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::{DataError, Encoding, Expansion, Matrix, SparseRows, Split};

/// What is being predicted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// A real-valued target (regression).
    Real(Vec<f32>),
    /// Class indices `0..classes.len()`; `classes[i]` is the original label of class `i`.
    Classes { labels: Vec<u32>, classes: Vec<String> },
}

/// The learning task a target defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Regression,
    Binary,
    Multiclass { n_classes: usize },
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Task::Regression => write!(f, "regression"),
            Task::Binary => write!(f, "binary"),
            Task::Multiclass { n_classes } => write!(f, "multiclass ({n_classes} classes)"),
        }
    }
}

impl Target {
    pub fn len(&self) -> usize {
        match self {
            Target::Real(v) => v.len(),
            Target::Classes { labels, .. } => labels.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn task(&self) -> Task {
        match self {
            Target::Real(_) => Task::Regression,
            Target::Classes { classes, .. } if classes.len() <= 2 => Task::Binary,
            Target::Classes { classes, .. } => Task::Multiclass { n_classes: classes.len() },
        }
    }

    /// The class index of each sample, for a classification target.
    pub fn labels(&self) -> Option<&[u32]> {
        match self {
            Target::Classes { labels, .. } => Some(labels),
            Target::Real(_) => None,
        }
    }

    /// The same labels indexed by `classes` (a model's class list) instead of
    /// this target's own; a label the list lacks is an error naming it.
    pub fn remap_classes(&self, classes: &[String], source: &str, column: &str) -> Result<Target, DataError> {
        let Target::Classes { labels, classes: own } = self else {
            return Err(DataError::invalid(
                "target",
                format!("{source}: column '{column}' holds numbers, not classes"),
            ));
        };
        let mapping = own
            .iter()
            .map(|name| {
                classes.iter().position(|c| c == name).map(|i| i as u32).ok_or_else(|| {
                    DataError::invalid(
                        "target",
                        format!(
                            "{source}: label '{name}' in column '{column}' is not one of the model's classes ({})",
                            classes.join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        Ok(Target::Classes { labels: labels.iter().map(|&l| mapping[l as usize]).collect(), classes: classes.to_vec() })
    }

    /// The target restricted to `indices` (the class list is kept whole).
    pub fn select(&self, indices: &[usize]) -> Target {
        match self {
            Target::Real(v) => Target::Real(indices.iter().map(|&i| v[i]).collect()),
            Target::Classes { labels, classes } => {
                Target::Classes { labels: indices.iter().map(|&i| labels[i]).collect(), classes: classes.clone() }
            }
        }
    }
}

/// A table of numeric features with one target column: what a model
/// trains on. (Not serialisable: stored rows mean nothing without their
/// expansion, and nothing needs to write a dataset.)
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Where it came from (`builtin:iris`, a path, `synthetic:blobs`).
    pub name: String,
    pub x: Matrix,
    pub y: Target,
    /// How `x`'s columns were made from the raw table's: its
    /// [`Encoding::output_names`] name them.
    pub encoding: Encoding,
    pub target_name: String,
    /// With an expansion, `x` stores each row without what the expansion
    /// computes as needed (a table's piecewise-linear bins), and the model
    /// inputs are [`Self::gather_inputs`]'s; without, `x` is the inputs.
    pub expansion: Option<Arc<Expansion>>,
    /// The rows' sparse inputs beside `x` (text features), row for row.
    pub sparse: Option<SparseRows>,
}

impl Dataset {
    /// These rows with each text column read through a narrower vocabulary
    /// (see [`Encoding::narrow_text`]): the n-grams it drops dropped, and
    /// each column's part of a row brought to unit length again — what
    /// encoding the rows with the narrower vocabulary gives.
    pub fn narrow_text(&self, longest: usize, most: usize) -> Result<Dataset, DataError> {
        let (encoding, map) = self.encoding.narrow_text(longest, most)?;
        let Some(sparse) = &self.sparse else {
            return Err(DataError::invalid("text_ngrams", format!("{}: the rows have no text", self.name)));
        };
        // Where each text column's inputs end.
        let ends: Vec<u32> = encoding
            .text
            .iter()
            .scan(0u32, |offset, t| {
                *offset += t.width() as u32;
                Some(*offset)
            })
            .collect();
        let mut out = SparseRows::new(encoding.n_sparse_outputs());
        let mut entries = Vec::new();
        for i in 0..sparse.rows() {
            let (ids, values) = sparse.row(i);
            entries.clear();
            entries.extend(ids.iter().zip(values).filter_map(|(&id, &v)| {
                let to = map[id as usize];
                (to != u32::MAX).then_some((to, v))
            }));
            let mut start = 0;
            for &end in &ends {
                let stop = start + entries[start..].iter().take_while(|e| e.0 < end).count();
                let part = &mut entries[start..stop];
                let norm = part.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
                if norm > 0.0 {
                    part.iter_mut().for_each(|e| e.1 /= norm);
                }
                start = stop;
            }
            out.push_row(&mut entries);
        }
        Ok(Dataset {
            name: self.name.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            encoding,
            target_name: self.target_name.clone(),
            expansion: self.expansion.clone(),
            sparse: Some(out),
        })
    }

    /// A dataset whose features are the numeric columns `feature_names`, as they are.
    pub fn numeric(
        name: impl Into<String>,
        x: Matrix,
        y: Target,
        feature_names: &[String],
        target_name: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            x,
            y,
            encoding: Encoding::numbers(feature_names),
            target_name: target_name.into(),
            expansion: None,
            sparse: None,
        }
    }

    /// The names of `x`'s columns.
    pub fn feature_names(&self) -> Vec<String> {
        self.encoding.output_names()
    }

    pub fn n_samples(&self) -> usize {
        self.x.rows()
    }

    /// The model inputs per row (more than `x` stores with an expansion).
    pub fn n_features(&self) -> usize {
        self.expansion.as_ref().map_or(self.x.cols(), |e| e.width())
    }

    /// The model inputs of the rows at `rows`, into `out` (reusing its
    /// allocation): `x`'s rows, or their expansion.
    pub fn gather_inputs(&self, rows: &[usize], out: &mut Matrix) {
        match &self.expansion {
            None => self.x.gather_rows_into(rows, out),
            Some(e) => e.gather(&self.x, rows.iter().copied(), out),
        }
    }

    /// The sparse inputs of the rows at `rows`, into `out`; none when the
    /// dataset has no sparse inputs.
    pub fn gather_sparse(&self, rows: &[usize], out: &mut SparseRows) -> bool {
        match &self.sparse {
            None => false,
            Some(s) => {
                s.gather_rows_into(rows.iter().copied(), out);
                true
            }
        }
    }

    /// The number of sparse inputs per row (0 without them).
    pub fn n_sparse_features(&self) -> usize {
        self.sparse.as_ref().map_or(0, SparseRows::cols)
    }

    /// The model inputs of rows `range`, into `out` (see [`Self::gather_inputs`]).
    pub fn block_inputs(&self, range: std::ops::Range<usize>, out: &mut Matrix) {
        match &self.expansion {
            None => {
                let rows: Vec<usize> = range.collect();
                self.x.gather_rows_into(&rows, out)
            }
            Some(e) => e.gather(&self.x, range, out),
        }
    }

    /// Every row's model inputs as one matrix: `x` itself, or its
    /// expansion (held whole: for full-batch training only).
    pub fn dense_inputs(&self) -> std::borrow::Cow<'_, Matrix> {
        match &self.expansion {
            None => std::borrow::Cow::Borrowed(&self.x),
            Some(e) => {
                let mut out = Matrix::zeros(0, e.width());
                e.gather(&self.x, 0..self.x.rows(), &mut out);
                std::borrow::Cow::Owned(out)
            }
        }
    }

    /// The dataset with its model inputs held whole and no expansion.
    pub fn materialised(self) -> Dataset {
        match &self.expansion {
            None => self,
            Some(_) => Dataset { x: self.dense_inputs().into_owned(), expansion: None, ..self },
        }
    }

    pub fn task(&self) -> Task {
        self.y.task()
    }

    /// The rows at `indices`, in that order, as a new dataset.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            x: self.x.select_rows(indices),
            y: self.y.select(indices),
            encoding: self.encoding.clone(),
            target_name: self.target_name.clone(),
            expansion: self.expansion.clone(),
            sparse: self.sparse.as_ref().map(|s| s.select_rows(indices)),
        }
    }

    /// The feature columns named `names`, in that order (a model's feature
    /// order), as plain numbers; a missing name is an error.
    pub fn select_features(&self, names: &[String]) -> Result<Dataset, DataError> {
        if self.expansion.is_some() {
            return self.clone().materialised().select_features(names);
        }
        let own = self.feature_names();
        let columns = names
            .iter()
            .map(|name| {
                own.iter()
                    .position(|f| f == name)
                    .ok_or_else(|| DataError::MissingFeature { path: self.name.clone(), name: name.clone() })
            })
            .collect::<Result<Vec<usize>, _>>()?;
        if columns.iter().copied().eq(0..self.n_features()) && self.encoding.is_plain_numbers() {
            return Ok(self.clone());
        }
        let mut values = Vec::with_capacity(self.n_samples() * columns.len());
        for i in 0..self.n_samples() {
            let row = self.x.row(i);
            values.extend(columns.iter().map(|&c| row[c]));
        }
        Ok(Dataset {
            name: self.name.clone(),
            x: Matrix::from_vec(self.n_samples(), columns.len(), values).expect("n x selected"),
            y: self.y.clone(),
            encoding: Encoding::numbers(names),
            target_name: self.target_name.clone(),
            expansion: None,
            sparse: self.sparse.clone(),
        })
    }

    /// The train, validation and test rows of `split` (which holds every
    /// row once), each in the split's order, as [`Self::subset`] would give
    /// them, made by reordering these rows in place rather than copying them:
    /// the peak is one dataset, not two.
    pub fn into_split(mut self, split: &Split) -> [Dataset; 3] {
        let parts = [&split.train, &split.valid, &split.test];
        let sizes = parts.map(|p| p.len());
        assert_eq!(sizes.iter().sum::<usize>(), self.n_samples(), "a split holds every row once");
        let order = |j: usize| {
            if j < sizes[0] {
                split.train[j]
            } else if j < sizes[0] + sizes[1] {
                split.valid[j - sizes[0]]
            } else {
                split.test[j - sizes[0] - sizes[1]]
            }
        };
        self.x.permute_rows(order);
        let targets: Vec<Target> = match self.y {
            Target::Real(mut v) => {
                crate::matrix::permute_rows(&mut v, 1, order);
                cut(v, &sizes).into_iter().map(Target::Real).collect()
            }
            Target::Classes { mut labels, classes } => {
                crate::matrix::permute_rows(&mut labels, 1, order);
                cut(labels, &sizes)
                    .into_iter()
                    .map(|labels| Target::Classes { labels, classes: classes.clone() })
                    .collect()
            }
        };
        let xs = self.x.split_rows(&sizes);
        let sparse = parts.map(|rows| self.sparse.as_ref().map(|s| s.select_rows(rows)));
        let mut parts = xs.into_iter().zip(targets).zip(sparse).map(|((x, y), sparse)| Dataset {
            name: self.name.clone(),
            x,
            y,
            encoding: self.encoding.clone(),
            target_name: self.target_name.clone(),
            expansion: self.expansion.clone(),
            sparse,
        });
        [(); 3].map(|()| parts.next().expect("three parts"))
    }

    /// A seeded train/valid/test split of the rows, stratified by class for a
    /// classification target. See [`crate::train_valid_test_split`].
    pub fn split(&self, valid_fraction: f64, test_fraction: f64, seed: u64) -> Result<Split, DataError> {
        crate::train_valid_test_split(self.n_samples(), self.y.labels(), valid_fraction, test_fraction, seed)
    }
}

/// `v` cut into consecutive parts of `sizes` (which add up to its length):
/// the first keeps its allocation, shrunk (which for a large one gives the
/// rest back without copying), the others are copied out of it.
pub(crate) fn cut<T>(mut v: Vec<T>, sizes: &[usize]) -> Vec<Vec<T>> {
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(sizes.len());
    for &n in sizes.iter().skip(1).rev() {
        parts.push(v.split_off(v.len() - n));
    }
    v.shrink_to_fit();
    parts.push(v);
    parts.reverse();
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_split_gives_the_rows_subset_gives_for_every_part() {
        for (n, valid, test, seed) in [(3, 0.0, 0.0, 1), (10, 0.3, 0.2, 2), (257, 0.2, 0.0, 3), (1000, 0.25, 0.25, 4)] {
            let blobs = crate::synthetic::blobs(n, 3, 4, 1.0, seed).unwrap();
            let regression = Dataset {
                y: Target::Real((0..n).map(|i| i as f32 * 0.5).collect()),
                ..crate::synthetic::blobs(n, 2, 3, 1.0, seed).unwrap()
            };
            for data in [blobs, regression] {
                let split = data.split(valid, test, seed).unwrap();
                let want = [&split.train, &split.valid, &split.test].map(|rows| data.subset(rows));
                assert_eq!(data.into_split(&split), want, "n {n}, valid {valid}, test {test}");
            }
        }
    }
}
