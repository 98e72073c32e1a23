//! Seeded splits of row indices: train/valid/test (stratified for
//! classification) and k-fold cross-validation folds.

use rand::seq::SliceRandom;

use crate::{DataError, seeded_rng};

/// Row indices of a train/valid/test split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

/// Row indices of one cross-validation fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
}

/// Splits `0..n` into train, valid and test parts of the given fractions.
///
/// With `labels`, each class is split separately (stratified), so every part
/// keeps the class proportions. The same `seed` gives the same split.
pub fn train_valid_test_split(
    n: usize,
    labels: Option<&[u32]>,
    valid_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<Split, DataError> {
    for (name, f) in [("valid fraction", valid_fraction), ("test fraction", test_fraction)] {
        if !(0.0..1.0).contains(&f) {
            return Err(DataError::invalid(name, format!("{f} is not in [0, 1)")));
        }
    }
    if valid_fraction + test_fraction >= 1.0 {
        return Err(DataError::invalid(
            "split",
            format!("valid ({valid_fraction}) and test ({test_fraction}) fractions leave no training rows"),
        ));
    }
    if n == 0 {
        return Err(DataError::invalid("split", "there are no rows to split"));
    }
    let mut rng = seeded_rng(seed);
    let groups: Vec<Vec<usize>> = match labels {
        None => vec![(0..n).collect()],
        Some(labels) => {
            if labels.len() != n {
                return Err(DataError::invalid("split", format!("{} labels for {n} rows", labels.len())));
            }
            let n_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
            let mut groups = vec![Vec::new(); n_classes];
            for (i, &c) in labels.iter().enumerate() {
                groups[c as usize].push(i);
            }
            groups
        }
    };
    let mut split = Split { train: Vec::new(), valid: Vec::new(), test: Vec::new() };
    for mut group in groups {
        group.shuffle(&mut rng);
        let len = group.len() as f64;
        let n_test = (test_fraction * len).round() as usize;
        let n_valid = ((valid_fraction * len).round() as usize).min(group.len() - n_test.min(group.len()));
        let n_test = n_test.min(group.len());
        split.test.extend_from_slice(&group[..n_test]);
        split.valid.extend_from_slice(&group[n_test..n_test + n_valid]);
        split.train.extend_from_slice(&group[n_test + n_valid..]);
    }
    if split.train.is_empty() {
        return Err(DataError::invalid("split", format!("{n} rows leave no training rows")));
    }
    for part in [&mut split.train, &mut split.valid, &mut split.test] {
        part.shuffle(&mut rng);
    }
    Ok(split)
}

/// `k` shuffled folds of `0..n`; each row is in exactly one validation part.
pub fn kfold(n: usize, k: usize, seed: u64) -> Result<Vec<Fold>, DataError> {
    check_k(n, k)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut seeded_rng(seed));
    let mut assignment = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        assignment[i] = pos % k;
    }
    Ok(folds_from_assignment(&assignment, k))
}

/// `k` folds that keep each class's proportion in every validation part.
pub fn stratified_kfold(labels: &[u32], k: usize, seed: u64) -> Result<Vec<Fold>, DataError> {
    check_k(labels.len(), k)?;
    let mut rng = seeded_rng(seed);
    let n_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut assignment = vec![0; labels.len()];
    // Deal each class's shuffled rows round-robin, continuing where the previous
    // class stopped so that fold sizes differ by at most one.
    let mut next = 0;
    for class in 0..n_classes as u32 {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rows.shuffle(&mut rng);
        for i in rows {
            assignment[i] = next;
            next = (next + 1) % k;
        }
    }
    Ok(folds_from_assignment(&assignment, k))
}

fn check_k(n: usize, k: usize) -> Result<(), DataError> {
    if k < 2 || k > n {
        return Err(DataError::invalid("k", format!("{k} folds need 2 <= k <= {n} (the number of rows)")));
    }
    Ok(())
}

fn folds_from_assignment(assignment: &[usize], k: usize) -> Vec<Fold> {
    (0..k)
        .map(|f| {
            let (valid, train) = (0..assignment.len()).partition(|&i| assignment[i] == f);
            Fold { train, valid }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    #[test]
    fn split_is_a_seeded_partition_with_the_requested_sizes() {
        let s = train_valid_test_split(100, None, 0.2, 0.1, 3).unwrap();
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (70, 20, 10));
        let all = sorted([s.train.clone(), s.valid.clone(), s.test.clone()].concat());
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(s, train_valid_test_split(100, None, 0.2, 0.1, 3).unwrap());
        assert_ne!(s, train_valid_test_split(100, None, 0.2, 0.1, 4).unwrap());
    }

    #[test]
    fn stratified_split_keeps_class_proportions() {
        let labels: Vec<u32> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let s = train_valid_test_split(100, Some(&labels), 0.25, 0.0, 0).unwrap();
        let ones = s.valid.iter().filter(|&&i| labels[i] == 1).count();
        assert_eq!((s.valid.len(), ones), (25, 5));
    }

    #[test]
    fn bad_fractions_are_rejected() {
        assert!(train_valid_test_split(10, None, 0.6, 0.4, 0).is_err());
        assert!(train_valid_test_split(10, None, -0.1, 0.0, 0).is_err());
        assert!(train_valid_test_split(0, None, 0.1, 0.0, 0).is_err());
    }

    #[test]
    fn kfold_puts_every_row_in_exactly_one_validation_fold() {
        let labels: Vec<u32> = (0..23).map(|i| (i % 3) as u32).collect();
        for folds in [kfold(23, 5, 1).unwrap(), stratified_kfold(&labels, 5, 1).unwrap()] {
            assert_eq!(folds.len(), 5);
            let valid = sorted(folds.iter().flat_map(|f| f.valid.clone()).collect());
            assert_eq!(valid, (0..23).collect::<Vec<_>>());
            for f in &folds {
                assert!((4..=5).contains(&f.valid.len()));
                assert_eq!(f.train.len() + f.valid.len(), 23);
                assert!(f.train.iter().all(|i| !f.valid.contains(i)));
            }
        }
        assert!(kfold(3, 4, 0).is_err());
        assert!(kfold(3, 1, 0).is_err());
    }

    #[test]
    fn stratified_folds_keep_class_counts_balanced() {
        let labels: Vec<u32> = (0..50).map(|i| if i < 40 { 0 } else { 1 }).collect();
        for f in stratified_kfold(&labels, 5, 9).unwrap() {
            let ones = f.valid.iter().filter(|&&i| labels[i] == 1).count();
            assert_eq!((f.valid.len(), ones), (10, 2));
        }
    }
}
