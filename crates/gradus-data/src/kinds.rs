//! What each column of a raw [`Table`] is: its [`ColumnKind`], inferred
//! from the values with the reason kept, so a user can see why a column
//! was read as it was and override it.
//!
//! The rules, in order (missing cells are left out of every count):
//! - no value, or one value on every row: constant (dropped);
//! - numbers: numeric, unless they are whole numbers counting up by one
//!   from row to row (a row number: an identifier);
//! - text that is two boolean words (true/false, yes/no, y/n, t/f): boolean;
//! - text that all parses as dates (ISO 8601, or day/month/year): date-time;
//! - text with a distinct value on every row: free text when the values
//!   are long (30 characters or more on average), an identifier otherwise;
//! - long text of many values (over a quarter of them distinct): free
//!   text (reviews repeat: half of a Chinese review corpus's are repeats);
//! - any other text: categorical.

use serde::{Deserialize, Serialize};

use crate::dates::DateOrder;
use crate::table::{Column, MISSING, Values};

/// What a column holds, and so how it is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
    Boolean,
    DateTime,
    /// Free text: tokens and their n-grams, hashed into sparse inputs.
    Text,
    /// A distinct value on every row (left out).
    Identifier,
    /// One value, or none (left out).
    Constant,
}

impl ColumnKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [ColumnKind; 7] = [
        ColumnKind::Numeric,
        ColumnKind::Categorical,
        ColumnKind::Boolean,
        ColumnKind::DateTime,
        ColumnKind::Text,
        ColumnKind::Identifier,
        ColumnKind::Constant,
    ];

    /// Its one spelling: in the column table, in JSON, and in `--columns` files.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Boolean => "boolean",
            ColumnKind::DateTime => "date_time",
            ColumnKind::Text => "text",
            ColumnKind::Identifier => "identifier",
            ColumnKind::Constant => "constant",
        }
    }

    /// The kind spelled `name`, if any.
    pub fn parse(name: &str) -> Option<ColumnKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether columns of this kind become model inputs.
    pub fn is_used(self) -> bool {
        !matches!(self, ColumnKind::Identifier | ColumnKind::Constant)
    }
}

/// A column's kind, why, and the counts a user reads it by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub column: String,
    pub kind: ColumnKind,
    pub reason: String,
    pub missing: usize,
    pub distinct: usize,
}

/// The fewest rows before "a distinct value on every row" means an identifier.
const MIN_ROWS_FOR_IDENTIFIER: usize = 20;
/// The mean length from which text of many values is free text, in
/// columns of fixed-width type: a Chinese or Japanese character (which says
/// as much as a short word) counts two.
const TEXT_MEAN_LENGTH: f64 = 30.0;

/// The words read as booleans (lowercased), true first.
const BOOLEAN_PAIRS: &[(&str, &str)] = &[("true", "false"), ("yes", "no"), ("y", "n"), ("t", "f")];

/// Infers `column`'s kind from its values.
pub fn infer_kind(column: &Column) -> ColumnInfo {
    let missing = column.values.n_missing();
    let present = column.values.len() - missing;
    let info =
        |kind, reason: String, distinct| ColumnInfo { column: column.name.clone(), kind, reason, missing, distinct };
    match &column.values {
        Values::Numbers(v) => {
            let mut sorted: Vec<f32> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            sorted.sort_by(f32::total_cmp);
            sorted.dedup();
            let distinct = sorted.len();
            if let Some(c) = constant(distinct, missing, || format!("{}", sorted[0])) {
                return info(ColumnKind::Constant, c, distinct);
            }
            let counts_up = missing == 0
                && present >= MIN_ROWS_FOR_IDENTIFIER
                && v.windows(2).all(|w| w[1] - w[0] == 1.0)
                && v.iter().all(|x| x.fract() == 0.0);
            if counts_up {
                return info(ColumnKind::Identifier, "whole numbers counting up by one: a row number".into(), distinct);
            }
            info(ColumnKind::Numeric, "numbers".into(), distinct)
        }
        Values::Text { codes, levels } => {
            let mut used = vec![false; levels.len()];
            codes.iter().filter(|&&c| c != MISSING).for_each(|&c| used[c as usize] = true);
            let present_levels: Vec<&str> =
                levels.iter().zip(&used).filter(|(_, u)| **u).map(|(l, _)| l.as_str()).collect();
            let distinct = present_levels.len();
            if let Some(c) = constant(distinct, missing, || present_levels[0].to_string()) {
                return info(ColumnKind::Constant, c, distinct);
            }
            if let Some(truth) = boolean_true(&present_levels) {
                let reason = format!("two words, '{truth}' and its opposite (any case)");
                return info(ColumnKind::Boolean, reason, distinct);
            }
            if let Some(order) = DateOrder::of(&present_levels) {
                return info(ColumnKind::DateTime, format!("dates ({})", order.describe()), distinct);
            }
            let mean_length = codes
                .iter()
                .filter(|&&c| c != MISSING)
                .map(|&c| {
                    levels[c as usize].chars().map(|ch| 1 + crate::text::is_wide(ch) as usize).sum::<usize>() as f64
                })
                .sum::<f64>()
                / present.max(1) as f64;
            let long = mean_length >= TEXT_MEAN_LENGTH;
            if distinct == present && present >= MIN_ROWS_FOR_IDENTIFIER {
                return if long {
                    info(
                        ColumnKind::Text,
                        format!("a distinct value on every row, {mean_length:.0} characters on average"),
                        distinct,
                    )
                } else {
                    info(ColumnKind::Identifier, "a distinct value on every row".into(), distinct)
                };
            }
            if long && distinct * 4 > present {
                let reason = format!("{distinct} distinct values of {present}, {mean_length:.0} characters on average");
                return info(ColumnKind::Text, reason, distinct);
            }
            info(ColumnKind::Categorical, format!("text, {distinct} distinct values"), distinct)
        }
    }
}

/// The reason a column with `distinct` values and `missing` cells is
/// constant, if it is: a single value with no missing cell, or none.
/// (One value and some missing cells still says something: present or not.)
fn constant(distinct: usize, missing: usize, value: impl FnOnce() -> String) -> Option<String> {
    match (distinct, missing) {
        (0, _) => Some("every value is missing".into()),
        (1, 0) => Some(format!("'{}' on every row", value())),
        _ => None,
    }
}

/// The boolean pair (true, false) whose true word is `truth` (lowercase).
pub(crate) fn boolean_pair(truth: &str) -> Option<(&'static str, &'static str)> {
    BOOLEAN_PAIRS.iter().find(|(t, _)| *t == truth).copied()
}

/// When `levels` are, without case, the two words of a boolean pair, the
/// one that means true (lowercase).
pub(crate) fn boolean_true(levels: &[&str]) -> Option<&'static str> {
    let mut lower: Vec<String> = levels.iter().map(|l| l.to_lowercase()).collect();
    lower.sort();
    lower.dedup();
    let [a, b] = lower.as_slice() else { return None };
    BOOLEAN_PAIRS.iter().find(|(t, f)| (a == t && b == f) || (a == f && b == t)).map(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{CsvFile, ReadOptions};

    fn kinds(text: &str) -> Vec<(ColumnKind, String)> {
        let file = CsvFile::open(text.as_bytes(), "t.csv").unwrap();
        let all: Vec<usize> = (0..file.header().len()).collect();
        let table = file.read(&all, &ReadOptions::with_default_na()).unwrap();
        table.columns.iter().map(infer_kind).map(|i| (i.kind, i.reason)).collect()
    }

    #[test]
    fn each_kind_is_inferred_with_its_reason() {
        let mut text = String::from("num,cat,flag,when,id,row,note,same,empty\n");
        for i in 0..25 {
            text.push_str(&format!(
                "{},{},{},2024-01-{:02},u{i},{i},this is a long free text comment number {i},x,\n",
                i as f32 * 0.5,
                ["red", "blue", "green"][i % 3],
                ["Yes", "No"][i % 2],
                i + 1,
            ));
        }
        let got = kinds(&text);
        let want = [
            (ColumnKind::Numeric, "numbers"),
            (ColumnKind::Categorical, "text, 3 distinct values"),
            (ColumnKind::Boolean, "two words, 'yes' and its opposite (any case)"),
            (ColumnKind::DateTime, "dates (ISO 8601)"),
            (ColumnKind::Identifier, "a distinct value on every row"),
            (ColumnKind::Identifier, "whole numbers counting up by one: a row number"),
            (ColumnKind::Text, "a distinct value on every row, 42 characters on average"),
            (ColumnKind::Constant, "'x' on every row"),
            (ColumnKind::Constant, "every value is missing"),
        ];
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!((g.0, g.1.as_str()), w, "column {i}");
        }
    }

    #[test]
    fn long_text_a_quarter_distinct_is_free_text_and_long_repeated_labels_are_categories() {
        let mut text = String::from("review,label\n");
        for i in 0..400 {
            // 120 distinct reviews of 40 characters or more among 400 rows.
            text.push_str(&format!("this product was fine and arrived in time {},{}\n", i % 120, i % 2));
        }
        assert_eq!(kinds(&text)[0].0, ColumnKind::Text);
        let mut text = String::from("office,label\n");
        for i in 0..400 {
            text.push_str(&format!("regional headquarters of the northern district {},{}\n", i % 50, i % 2));
        }
        assert_eq!(kinds(&text)[0].0, ColumnKind::Categorical);
    }

    #[test]
    fn one_value_with_missing_cells_is_not_constant() {
        let got = kinds("a,b\nx,1\n,\nx,1\n");
        assert_eq!(got[0].0, ColumnKind::Categorical);
        assert_eq!(got[1].0, ColumnKind::Numeric);
    }
}
