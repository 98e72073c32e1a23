//! Fitted encodings: how the columns of a raw [`Table`] become the numeric
//! inputs of a model, fitted on the training rows and then applied
//! unchanged to validation, test and prediction rows.
//!
//! An [`Encoding`] is a list of column encoders, each reading one raw
//! column by name and writing one or more model inputs. It is stored in the
//! model file, so `predict` turns new raw rows into inputs exactly as
//! training did. It never fails on a value training did not see unless
//! the value cannot mean anything to the encoder (text where numbers were
//! read): that is an error naming the file, line and column.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::dates::{self, DateOrder};
use crate::kinds::{ColumnInfo, ColumnKind};
use crate::table::{Column, MISSING, ReadOptions, Table, Values, not_a_number, parse_finite};
use crate::text::{TextEncoder, TextScratch};
use crate::{DataError, Matrix, SparseRows};

/// How one raw column becomes model inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encode", rename_all = "snake_case")]
pub enum ColumnEncoder {
    /// A numeric column as it is. A missing cell takes `fill` (the training
    /// rows' median), and with `indicator` (training rows had missing
    /// cells) an input follows that is 1 where the cell was missing; with no
    /// `fill`, a missing cell is an error. With `bins` (edges e₀ < e₁ < …
    /// at quantiles of the training rows), one more input per bin follows:
    /// the piecewise-linear encoding of Gorishniy et al. 2022 ("On
    /// Embeddings for Numerical Features in Tabular Deep Learning"),
    /// min(1, max(0, (x − eₖ) / (eₖ₊₁ − eₖ))), which lets a linear model
    /// bend its response to the column and an MLP start from one that can.
    Number {
        column: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<f32>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        indicator: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bins: Vec<f32>,
    },
    /// One input per level, 1 where the cell holds it. With `other`, one
    /// more for the levels too rare to keep in training and for those never
    /// seen there; with `missing`, one for missing cells. Without them, such
    /// a cell is all zeros.
    ///
    /// With `embedded`, the column has more levels than one-hot suits
    /// ([`HighCardinality::Embed`]): an MLP reads these inputs through a
    /// learned embedding of its own.
    OneHot {
        column: String,
        levels: Vec<String>,
        other: bool,
        missing: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        embedded: bool,
    },
    /// The hashing trick for a column of many levels
    /// ([`HighCardinality::Hash`]): one input per bucket, 1 in the bucket
    /// FNV-1a of the cell's text falls in, every level kept (colliding
    /// where two share a bucket), none stored; with `missing`, one more
    /// input for a missing cell.
    Hashed { column: String, buckets: usize, missing: bool },
    /// 1 where the cell is `true_value` (lowercase; compared without case),
    /// 0 where it is its opposite; with `missing`, an input that is 1 where
    /// the cell was missing. Any other word is an error, not a guess.
    Boolean { column: String, true_value: String, missing: bool },
    /// Year, month, day of the week (0 = Monday), hour (with `hour`) and
    /// days since 1970-01-01; a missing cell takes `fill` (the training
    /// rows' medians) and with `missing` an input that is 1 there.
    Date { column: String, order: DateOrder, hour: bool, fill: Vec<f32>, missing: bool },
}

impl ColumnEncoder {
    /// The raw column it reads.
    pub fn column(&self) -> &str {
        match self {
            ColumnEncoder::Number { column, .. }
            | ColumnEncoder::OneHot { column, .. }
            | ColumnEncoder::Boolean { column, .. }
            | ColumnEncoder::Date { column, .. }
            | ColumnEncoder::Hashed { column, .. } => column,
        }
    }

    /// The names of the inputs it writes, in order.
    pub fn output_names(&self) -> Vec<String> {
        let flag = |on: bool, column: &str| on.then(|| format!("{column}_missing"));
        match self {
            ColumnEncoder::Number { column, indicator, bins, .. } => std::iter::once(column.clone())
                .chain(flag(*indicator, column))
                .chain((1..bins.len()).map(|k| format!("{column}.bin{k}")))
                .collect(),
            ColumnEncoder::Hashed { column, buckets, missing } => (0..*buckets)
                .map(|b| format!("{column}#{b}"))
                .chain(missing.then(|| format!("{column}=<missing>")))
                .collect(),
            ColumnEncoder::OneHot { column, levels, other, missing, .. } => levels
                .iter()
                .map(|l| format!("{column}={l}"))
                .chain(other.then(|| format!("{column}=<other>")))
                .chain(missing.then(|| format!("{column}=<missing>")))
                .collect(),
            ColumnEncoder::Boolean { column, missing, .. } => {
                std::iter::once(column.clone()).chain(flag(*missing, column)).collect()
            }
            ColumnEncoder::Date { column, hour, missing, .. } => DATE_PARTS
                .iter()
                .filter(|p| *hour || **p != "hour")
                .map(|p| format!("{column}.{p}"))
                .chain(flag(*missing, column))
                .collect(),
        }
    }

    /// How many inputs it writes: [`Self::output_names`]' length.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoder::Number { indicator, bins, .. } => 1 + usize::from(*indicator) + bins.len().saturating_sub(1),
            ColumnEncoder::OneHot { levels, other, missing, .. } => {
                levels.len() + usize::from(*other) + usize::from(*missing)
            }
            ColumnEncoder::Boolean { missing, .. } => 1 + usize::from(*missing),
            ColumnEncoder::Date { fill, missing, .. } => fill.len() + usize::from(*missing),
            ColumnEncoder::Hashed { buckets, missing, .. } => buckets + usize::from(*missing),
        }
    }

    /// How many of its inputs a row stores when its bins are computed as
    /// needed (see [`crate::Expansion`]): all but the bins.
    pub fn stored_width(&self) -> usize {
        match self {
            ColumnEncoder::Number { indicator, .. } => 1 + usize::from(*indicator),
            other => other.width(),
        }
    }

    /// What it does, in a few words: `number, missing → median 38 + flag`,
    /// `one-hot: 8 levels + other + missing`.
    pub fn describe(&self) -> String {
        match self {
            ColumnEncoder::Number { fill: None, .. } => "number".into(),
            // A fill is kept for every column (a missing cell at predict
            // time); it is news only where training rows had missing cells.
            ColumnEncoder::Number { fill: Some(f), indicator, bins, .. } => format!(
                "number{}{}",
                match bins.len() {
                    0 => String::new(),
                    n => format!(" + {} piecewise-linear bins", n - 1),
                },
                if *indicator { format!(", missing → median {} + flag", six_digits(*f)) } else { String::new() }
            ),
            ColumnEncoder::OneHot { levels, other, missing, embedded, .. } => format!(
                "one-hot: {} level{}{}{}{}",
                levels.len(),
                if levels.len() == 1 { "" } else { "s" },
                if *other { " + other" } else { "" },
                if *missing { " + missing" } else { "" },
                if *embedded { ", embedded by MLPs" } else { "" }
            ),
            ColumnEncoder::Hashed { buckets, missing, .. } => {
                format!("hashed into {buckets} buckets{}", if *missing { " + missing" } else { "" })
            }
            ColumnEncoder::Boolean { true_value, missing, .. } => {
                format!("1 for '{true_value}', else 0{}", if *missing { ", missing flag" } else { "" })
            }
            ColumnEncoder::Date { hour, missing, .. } => format!(
                "year, month, weekday{}, days since 1970{}",
                if *hour { ", hour" } else { "" },
                if *missing { ", missing → medians + flag" } else { "" }
            ),
        }
    }

    /// Whether the raw column must be read as text, whatever its cells look like.
    pub fn reads_text(&self) -> bool {
        matches!(
            self,
            ColumnEncoder::OneHot { .. }
                | ColumnEncoder::Boolean { .. }
                | ColumnEncoder::Date { .. }
                | ColumnEncoder::Hashed { .. }
        )
    }

    /// Writes this encoder's inputs for every row of `column` into `x`
    /// (row-major, `width` wide) starting at input `first`.
    /// `lines` gives each row's line in `source` (for errors).
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        source: &str,
        lines: &dyn Fn(usize) -> u32,
        column: &Column,
        x: &mut [f32],
        width: usize,
        first: usize,
        with_bins: bool,
    ) -> Result<(), DataError> {
        let rows = column.values.len();
        let line = |row: usize| u64::from(lines(row));
        match self {
            ColumnEncoder::Number { fill, indicator, bins, .. } => {
                let at_bins = first + 1 + usize::from(*indicator);
                for row in 0..rows {
                    let value = match cell(column, row) {
                        Cell::Number(v) => Some(v),
                        Cell::Missing => None,
                        Cell::Text(t) => {
                            Some(parse_finite(t).ok_or_else(|| not_a_number(source, line(row), column, t))?)
                        }
                    };
                    let v = match (value, fill) {
                        (Some(v), _) => v,
                        (None, Some(f)) => *f,
                        (None, None) => return Err(not_a_number(source, line(row), column, "")),
                    };
                    x[row * width + first] = v;
                    if *indicator {
                        x[row * width + first + 1] = if value.is_none() { 1.0 } else { 0.0 };
                    }
                    for (k, edge) in bins.windows(2).enumerate().filter(|_| with_bins) {
                        x[row * width + at_bins + k] = ((v - edge[0]) / (edge[1] - edge[0])).clamp(0.0, 1.0);
                    }
                }
            }
            ColumnEncoder::OneHot { levels, other, missing, .. } => {
                let index: HashMap<&str, usize> = levels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
                let (other_at, missing_at) = (levels.len(), levels.len() + usize::from(*other));
                for row in 0..rows {
                    let hot = match cell(column, row) {
                        Cell::Missing => missing.then_some(missing_at),
                        Cell::Text(t) => index.get(t).copied().or(other.then_some(other_at)),
                        Cell::Number(v) => index.get(format!("{v}").as_str()).copied().or(other.then_some(other_at)),
                    };
                    if let Some(k) = hot {
                        x[row * width + first + k] = 1.0;
                    }
                }
            }
            ColumnEncoder::Hashed { buckets, missing, .. } => {
                for row in 0..rows {
                    let hot = match cell(column, row) {
                        Cell::Missing => missing.then_some(*buckets),
                        Cell::Text(t) => Some(bucket(t, *buckets)),
                        Cell::Number(v) => Some(bucket(&format!("{v}"), *buckets)),
                    };
                    if let Some(k) = hot {
                        x[row * width + first + k] = 1.0;
                    }
                }
            }
            ColumnEncoder::Boolean { true_value, missing, .. } => {
                let (truth, falsity) = crate::kinds::boolean_pair(&true_value.to_lowercase()).ok_or_else(|| {
                    DataError::invalid("model", format!("'{true_value}' is not a boolean word (the file is damaged)"))
                })?;
                for row in 0..rows {
                    let word = match cell(column, row) {
                        Cell::Missing => None,
                        Cell::Text(t) => Some(t.to_lowercase()),
                        Cell::Number(v) => Some(format!("{v}")),
                    };
                    let (value, absent) = match word.as_deref() {
                        None => (0.0, 1.0),
                        Some(w) if w == truth => (1.0, 0.0),
                        Some(w) if w == falsity => (0.0, 0.0),
                        Some(_) => {
                            return Err(DataError::NotBoolean {
                                path: source.to_string(),
                                line: line(row),
                                column: column.position,
                                name: column.name.clone(),
                                value: cell_text(column, row),
                                truth,
                                falsity,
                            });
                        }
                    };
                    x[row * width + first] = value;
                    if *missing {
                        x[row * width + first + 1] = absent;
                    }
                }
            }
            ColumnEncoder::Date { order, hour, fill, missing, .. } => {
                let n_parts = fill.len();
                for row in 0..rows {
                    let out = &mut x[row * width + first..row * width + first + n_parts + usize::from(*missing)];
                    let text = match cell(column, row) {
                        Cell::Missing => None,
                        Cell::Text(t) => Some(std::borrow::Cow::Borrowed(t)),
                        Cell::Number(v) => Some(std::borrow::Cow::Owned(format!("{v}"))),
                    };
                    match text {
                        None => {
                            out[..n_parts].copy_from_slice(fill);
                            if *missing {
                                out[n_parts] = 1.0;
                            }
                        }
                        Some(t) => {
                            let date = dates::parse(&t, *order).ok_or_else(|| DataError::NotADate {
                                path: source.to_string(),
                                line: line(row),
                                column: column.position,
                                name: column.name.clone(),
                                value: t.to_string(),
                                form: order.describe(),
                            })?;
                            out[..n_parts].copy_from_slice(&date_parts(&date, *hour));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Fits the encoder for a column of `kind` on the training rows of
    /// `column`, a numeric one with up to `bins` piecewise-linear bins;
    /// `None` for kinds that are left out.
    pub fn fit(
        column: &Column,
        kind: ColumnKind,
        bins: usize,
        high_cardinality: HighCardinality,
        source: &str,
    ) -> Result<Option<Self>, DataError> {
        let name = column.name.clone();
        let n_missing = column.values.n_missing();
        Ok(Some(match kind {
            ColumnKind::Numeric => {
                let Values::Numbers(v) = &column.values else {
                    return Err(DataError::invalid(
                        "column kind",
                        format!("{source}: column '{name}' holds text, so it cannot be numeric"),
                    ));
                };
                let mut present: Vec<f32> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                let fill = Some(median(&mut present));
                ColumnEncoder::Number {
                    column: name,
                    fill,
                    indicator: n_missing > 0,
                    bins: quantile_edges(&present, bins),
                }
            }
            ColumnKind::Categorical => {
                let counts = level_counts(column);
                let mut by_count: Vec<(&String, usize)> = counts.iter().map(|(l, c)| (l, *c)).collect();
                by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let frequent = by_count.iter().filter(|(_, c)| *c >= MIN_LEVEL_COUNT).count();
                let many = frequent > MAX_LEVELS;
                if many && high_cardinality == HighCardinality::Hash {
                    return Ok(Some(ColumnEncoder::Hashed {
                        column: name,
                        buckets: HASH_BUCKETS,
                        missing: n_missing > 0,
                    }));
                }
                let embedded = many && high_cardinality == HighCardinality::Embed;
                let all = many && high_cardinality == HighCardinality::OneHot;
                let mut levels: Vec<String> = by_count
                    .iter()
                    .filter(|(_, c)| *c >= MIN_LEVEL_COUNT)
                    .take(if embedded || all { MAX_EMBEDDED_LEVELS } else { MAX_LEVELS })
                    .map(|(l, _)| (*l).clone())
                    .collect();
                let other = levels.len() < by_count.len();
                levels.sort();
                ColumnEncoder::OneHot { column: name, levels, other, missing: n_missing > 0, embedded }
            }
            ColumnKind::Boolean => {
                let counts = level_counts(column);
                let levels: Vec<&str> = counts.keys().map(String::as_str).collect();
                let true_value = crate::kinds::boolean_true(&levels).ok_or_else(|| {
                    DataError::invalid(
                        "column kind",
                        format!("{source}: column '{name}' does not hold two boolean words"),
                    )
                })?;
                ColumnEncoder::Boolean {
                    column: name.clone(),
                    true_value: true_value.to_string(),
                    missing: n_missing > 0,
                }
            }
            ColumnKind::DateTime => {
                let Values::Text { codes, levels } = &column.values else {
                    return Err(DataError::invalid(
                        "column kind",
                        format!("{source}: column '{name}' holds numbers, not dates"),
                    ));
                };
                let counts = level_counts(column);
                let present: Vec<&str> = counts.keys().map(String::as_str).collect();
                let order = DateOrder::of(&present).ok_or_else(|| {
                    DataError::invalid(
                        "column kind",
                        format!("{source}: column '{name}' does not hold dates of one form"),
                    )
                })?;
                let parsed: Vec<dates::DateTime> = codes
                    .iter()
                    .filter(|&&c| c != MISSING)
                    .map(|&c| dates::parse(&levels[c as usize], order).expect("checked by DateOrder::of"))
                    .collect();
                let hour = parsed.iter().any(|d| d.seconds != 0);
                let mut parts: Vec<Vec<f32>> = vec![Vec::with_capacity(parsed.len()); if hour { 5 } else { 4 }];
                for d in &parsed {
                    for (p, v) in parts.iter_mut().zip(date_parts(d, hour)) {
                        p.push(v);
                    }
                }
                let fill = parts.iter_mut().map(|p| median(p)).collect();
                ColumnEncoder::Date { column: name, order, hour, fill, missing: n_missing > 0 }
            }
            ColumnKind::Text | ColumnKind::Identifier | ColumnKind::Constant => return Ok(None),
        }))
    }
}

/// The distinct edges of `bins` equal-count bins of sorted `values`: the
/// 0th, 1/bins-th, … 1st quantiles, repeats removed. Fewer than two bins
/// (three edges) are no bins: a column of two values is a 0/1 already.
fn quantile_edges(sorted: &[f32], bins: usize) -> Vec<f32> {
    if bins < 2 || sorted.is_empty() {
        return Vec::new();
    }
    let last = sorted.len() - 1;
    let mut edges: Vec<f32> = (0..=bins).map(|k| sorted[(k * last + bins / 2) / bins]).collect();
    edges.dedup();
    if edges.len() < 3 { Vec::new() } else { edges }
}

/// The inputs a date becomes, in order.
const DATE_PARTS: &[&str] = &["year", "month", "weekday", "hour", "days"];

fn date_parts(d: &dates::DateTime, hour: bool) -> Vec<f32> {
    let mut parts = vec![d.year as f32, d.month as f32, d.weekday() as f32];
    if hour {
        parts.push((d.seconds / 3600) as f32);
    }
    parts.push(d.days_since_epoch() as f32);
    parts
}

/// Levels seen in fewer training rows than this go to the `other` input.
pub const MIN_LEVEL_COUNT: usize = 5;
/// At most this many levels get an input of their own (the most frequent):
/// a column with more such levels has a high cardinality.
pub const MAX_LEVELS: usize = 50;
/// At most this many levels of a column an MLP embeds.
pub const MAX_EMBEDDED_LEVELS: usize = 1000;
/// The buckets a hashed column's levels fall in.
pub const HASH_BUCKETS: usize = 128;

/// What becomes of a categorical column with more than [`MAX_LEVELS`]
/// levels seen [`MIN_LEVEL_COUNT`] times or more in training.
///
/// Measured with `bench/high_cardinality.py` (BENCHMARKS.md; a seeded
/// table with columns of 600 and 200 levels, three seeds): keeping every
/// frequent level, embedded or one-hot, scored a test ROC AUC of 0.796 to
/// 0.799, hashing 0.775 to 0.779 and the 50 most frequent 0.769 to 0.771.
/// Embedding and one-hot tie (within 0.002 on every seed, either way), and
/// [`Self::Embed`] is the default: an MLP's first layer then holds 16
/// weights per level, not one per hidden unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HighCardinality {
    /// One-hot of the [`MAX_LEVELS`] most frequent levels, the rest in `other`.
    Other,
    /// Every level hashed into [`HASH_BUCKETS`] buckets.
    Hash,
    /// One-hot of up to [`MAX_EMBEDDED_LEVELS`] levels, which an MLP reads
    /// through a learned embedding (linear models read the one-hot).
    #[default]
    Embed,
    /// One-hot of up to [`MAX_EMBEDDED_LEVELS`] levels, read as they are.
    OneHot,
}

impl HighCardinality {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "other" => Some(Self::Other),
            "hash" => Some(Self::Hash),
            "embed" => Some(Self::Embed),
            "onehot" => Some(Self::OneHot),
            _ => None,
        }
    }
}

/// The bucket of `text` among `buckets`: FNV-1a, stable across runs and machines.
fn bucket(text: &str, buckets: usize) -> usize {
    (crate::fnv1a(text.as_bytes()) % buckets as u64) as usize
}

/// How often each present level occurs.
fn level_counts(column: &Column) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    match &column.values {
        Values::Text { codes, levels } => {
            let mut by_code = vec![0usize; levels.len()];
            codes.iter().filter(|&&c| c != MISSING).for_each(|&c| by_code[c as usize] += 1);
            for (l, c) in levels.iter().zip(by_code) {
                if c > 0 {
                    counts.insert(l.clone(), c);
                }
            }
        }
        Values::Numbers(v) => {
            for x in v.iter().filter(|x| !x.is_nan()) {
                *counts.entry(format!("{x}")).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// The median (the mean of the middle two for an even count); 0 for none.
fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { ((f64::from(values[n / 2 - 1]) + f64::from(values[n / 2])) / 2.0) as f32 }
}

/// A present cell's text (numbers as they print), or `None` when missing.
pub(crate) fn cell_str(column: &Column, row: usize) -> Option<std::borrow::Cow<'_, str>> {
    match cell(column, row) {
        Cell::Missing => None,
        Cell::Text(t) => Some(std::borrow::Cow::Borrowed(t)),
        Cell::Number(_) => Some(std::borrow::Cow::Owned(cell_text(column, row))),
    }
}

/// One cell, as read.
enum Cell<'a> {
    Number(f32),
    Text(&'a str),
    Missing,
}

/// A present cell's text, as read (numbers as they print).
fn cell_text(column: &Column, row: usize) -> String {
    match cell(column, row) {
        Cell::Number(v) => format!("{v}"),
        Cell::Text(t) => t.to_string(),
        Cell::Missing => String::new(),
    }
}

fn cell(column: &Column, row: usize) -> Cell<'_> {
    match &column.values {
        Values::Numbers(v) if v[row].is_nan() => Cell::Missing,
        Values::Numbers(v) => Cell::Number(v[row]),
        Values::Text { codes, .. } if codes[row] == MISSING => Cell::Missing,
        Values::Text { codes, levels } => Cell::Text(&levels[codes[row] as usize]),
    }
}

/// The column encoders of a model's inputs, in input order, and the cells
/// read as missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    pub columns: Vec<ColumnEncoder>,
    /// The free-text columns, each into its own block of sparse inputs
    /// (n-grams), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<TextEncoder>,
    /// The cells (after trimming) read as missing when rows are read for
    /// this encoding: those training read so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub na_values: Vec<String>,
}

impl Encoding {
    /// Every column `names` a number, taken as it is: the encoding of an
    /// all-numeric table.
    pub fn numbers(names: &[String]) -> Self {
        Self {
            columns: names
                .iter()
                .map(|n| ColumnEncoder::Number { column: n.clone(), fill: None, indicator: false, bins: Vec::new() })
                .collect(),
            text: Vec::new(),
            na_values: Vec::new(),
        }
    }

    /// Fits an encoder for each column of `table` that `kinds` (one per
    /// column, in order) says to use, numeric ones with up to `bins`
    /// piecewise-linear bins; `na_values` are the cells `table` was read
    /// with as missing.
    pub fn fit(
        table: &Table,
        kinds: &[ColumnInfo],
        bins: usize,
        high_cardinality: HighCardinality,
        na_values: &[String],
    ) -> Result<Self, DataError> {
        Self::fit_rows(table, None, kinds, bins, high_cardinality, na_values)
    }

    /// [`Self::fit`] on the rows at `rows` of `table` (all, for `None`),
    /// copying one column's cells at a time rather than the whole table.
    pub fn fit_rows(
        table: &Table,
        rows: Option<&[usize]>,
        kinds: &[ColumnInfo],
        bins: usize,
        high_cardinality: HighCardinality,
        na_values: &[String],
    ) -> Result<Self, DataError> {
        let mut columns = Vec::new();
        for info in kinds {
            let column = table
                .column(&info.column)
                .ok_or_else(|| DataError::MissingFeature { path: table.source.clone(), name: info.column.clone() })?;
            let selected = rows.map(|rows| column.select_rows(rows));
            let column = selected.as_ref().unwrap_or(column);
            columns.extend(ColumnEncoder::fit(column, info.kind, bins, high_cardinality, &table.source)?);
        }
        Ok(Self { columns, text: Vec::new(), na_values: na_values.to_vec() })
    }

    /// The raw columns read, in order: the dense inputs' then the text's.
    pub fn input_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| c.column())
            .chain(self.text.iter().map(|t| t.column.as_str()))
            .map(String::from)
            .collect()
    }

    /// The sparse inputs per row: the text columns' buckets, summed.
    pub fn n_sparse_outputs(&self) -> usize {
        self.text.iter().map(TextEncoder::width).sum()
    }

    /// This encoding with each text column's vocabulary narrowed to its
    /// n-grams of at most `longest` tokens, the `most` in most rows (see
    /// [`TextEncoder::narrowed`]), and for each of its sparse inputs the
    /// narrower encoding's (`u32::MAX` where it has none).
    pub fn narrow_text(&self, longest: usize, most: usize) -> Result<(Encoding, Vec<u32>), DataError> {
        let mut out = self.clone();
        let mut map = Vec::with_capacity(self.n_sparse_outputs());
        let mut offset = 0u32;
        for narrowed in out.text.iter_mut() {
            let (narrow, own) = narrowed.narrowed(longest, most)?;
            map.extend(own.iter().map(|&i| if i == u32::MAX { i } else { i + offset }));
            offset += narrow.width() as u32;
            *narrowed = narrow;
        }
        Ok((out, map))
    }

    /// The sparse inputs of the rows at `rows` of `table` (all, for
    /// `None`): each text column's features in its own block of columns, in
    /// order; `None` without text columns. A missing cell has no features.
    pub fn transform_text(&self, table: &Table, rows: Option<&[usize]>) -> Result<Option<SparseRows>, DataError> {
        if self.text.is_empty() {
            return Ok(None);
        }
        let columns = self
            .text
            .iter()
            .map(|t| {
                table
                    .column(&t.column)
                    .ok_or_else(|| DataError::MissingFeature { path: table.source.clone(), name: t.column.clone() })
            })
            .collect::<Result<Vec<&Column>, _>>()?;
        let n = rows.map_or(table.n_rows(), <[usize]>::len);
        let mut out = SparseRows::new(self.n_sparse_outputs());
        let (mut scratch, mut entries) = (TextScratch::default(), Vec::new());
        for i in 0..n {
            let row = rows.map_or(i, |rows| rows[i]);
            entries.clear();
            let mut offset = 0u32;
            for (encoder, column) in self.text.iter().zip(&columns) {
                if let Some(text) = cell_str(column, row) {
                    encoder.features(&text, offset, &mut scratch, &mut entries);
                }
                offset += encoder.width() as u32;
            }
            out.push_row(&mut entries);
        }
        Ok(Some(out))
    }

    /// How to read raw rows for this encoding: its missing-value markers,
    /// and its categorical, boolean and date columns as text.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            na_values: self.na_values.clone(),
            as_text: self
                .columns
                .iter()
                .filter(|c| c.reads_text())
                .map(|c| c.column())
                .chain(self.text.iter().map(|t| t.column.as_str()))
                .map(String::from)
                .collect(),
            encoding: crate::TextEncoding::Utf8,
            delimiter: None,
        }
    }

    /// The model inputs' names, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.columns.iter().flat_map(ColumnEncoder::output_names).collect()
    }

    /// The number of model inputs.
    pub fn n_outputs(&self) -> usize {
        self.columns.iter().map(ColumnEncoder::width).sum()
    }

    /// The inputs that hold a numeric column's value (not its missing flag
    /// or its bins), in order.
    pub fn numeric_inputs(&self) -> Vec<usize> {
        let mut first = 0;
        let mut inputs = Vec::new();
        for encoder in &self.columns {
            if matches!(encoder, ColumnEncoder::Number { .. }) {
                inputs.push(first);
            }
            first += encoder.width();
        }
        inputs
    }

    /// The one-hot blocks an MLP embeds: each embedded column's first input
    /// and number of inputs, in order.
    pub fn embedded_blocks(&self) -> Vec<[usize; 2]> {
        let mut first = 0;
        let mut blocks = Vec::new();
        for encoder in &self.columns {
            if matches!(encoder, ColumnEncoder::OneHot { embedded: true, .. }) {
                blocks.push([first, encoder.width()]);
            }
            first += encoder.width();
        }
        blocks
    }

    /// Whether some numeric column has piecewise-linear bins: a table of a
    /// few numeric columns, not pixels (see [`crate::RawData::fit_encoding`]).
    pub fn has_bins(&self) -> bool {
        self.columns.iter().any(|c| matches!(c, ColumnEncoder::Number { bins, .. } if !bins.is_empty()))
    }

    /// Whether every encoder passes a numeric column through as it is, but
    /// for filling a missing cell (no flag, no bins): the encoding `gradus
    /// tune` fits on images' pixels. Plain numeric rows picked by name are
    /// then encoded so, once [`Self::fill_missing`] fills their gaps.
    pub fn passes_numbers_through(&self) -> bool {
        self.columns
            .iter()
            .all(|c| matches!(c, ColumnEncoder::Number { indicator: false, bins, .. } if bins.is_empty()))
    }

    /// Fills the missing (NaN) values of `x`, whose columns are this
    /// encoding's inputs (see [`Self::passes_numbers_through`]), with each
    /// column's fill; a column with none keeps them.
    pub fn fill_missing(&self, x: &mut Matrix) {
        let width = x.cols();
        let fills: Vec<Option<f32>> = self
            .columns
            .iter()
            .map(|c| match c {
                ColumnEncoder::Number { fill, .. } => *fill,
                _ => None,
            })
            .collect();
        if width != fills.len() || fills.iter().all(Option::is_none) {
            return;
        }
        for row in x.as_mut_slice().chunks_exact_mut(width) {
            for (v, fill) in row.iter_mut().zip(&fills) {
                if let (true, Some(f)) = (v.is_nan(), fill) {
                    *v = *f;
                }
            }
        }
    }

    /// Whether every encoder passes a numeric column through unchanged.
    pub fn is_plain_numbers(&self) -> bool {
        self.na_values.is_empty()
            && self.columns.iter().all(
                |c| matches!(c, ColumnEncoder::Number { fill: None, indicator: false, bins, .. } if bins.is_empty()),
            )
    }

    /// The model inputs for every row of `table`; a column the encoding
    /// reads that the table lacks is an error naming it.
    pub fn transform(&self, table: &Table) -> Result<Matrix, DataError> {
        self.write_rows(table, None, true)
    }

    /// The values a row stores when its bins are computed as needed (see
    /// [`crate::Expansion`]): [`Self::transform`]'s inputs but the bins,
    /// for the rows at `rows` of `table` (all, for `None`), copying one
    /// column's cells at a time rather than the whole table.
    pub fn transform_stored(&self, table: &Table, rows: Option<&[usize]>) -> Result<Matrix, DataError> {
        self.write_rows(table, rows, false)
    }

    /// [`Self::transform`] of the rows at `rows` of `table`, one column
    /// copied at a time.
    pub fn transform_rows(&self, table: &Table, rows: &[usize]) -> Result<Matrix, DataError> {
        self.write_rows(table, Some(rows), true)
    }

    fn write_rows(&self, table: &Table, rows: Option<&[usize]>, with_bins: bool) -> Result<Matrix, DataError> {
        let width_of = |e: &ColumnEncoder| if with_bins { e.width() } else { e.stored_width() };
        let width: usize = self.columns.iter().map(width_of).sum();
        // The selected rows' cells a column at a time; their lines looked up for errors.
        let n = rows.map_or(table.n_rows(), <[usize]>::len);
        let line = |row: usize| table.lines[rows.map_or(row, |rows| rows[row])];
        let mut x = vec![0.0f32; n * width];
        let mut first = 0;
        for encoder in &self.columns {
            debug_assert_eq!(encoder.width(), encoder.output_names().len(), "{encoder:?}");
            let column = table.column(encoder.column()).ok_or_else(|| DataError::MissingFeature {
                path: table.source.clone(),
                name: encoder.column().to_string(),
            })?;
            let picked = rows.map(|rows| column.select_rows(rows));
            encoder.write(&table.source, &line, picked.as_ref().unwrap_or(column), &mut x, width, first, with_bins)?;
            first += width_of(encoder);
        }
        Ok(Matrix::from_vec(n, width, x).expect("rows x inputs"))
    }
}

/// `v` to six significant digits, without the float noise of its last
/// bits (`0.4035`, not `0.40350002`): how a fitted or tuned value is shown.
pub fn six_digits(v: f32) -> String {
    let v = f64::from(v);
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let decimals = (5 - v.abs().log10().floor() as i32).max(0);
    let scale = 10f64.powi(decimals);
    ((v * scale).round() / scale).to_string()
}

#[cfg(test)]
mod six_digit_tests {
    #[test]
    fn six_significant_digits_drop_float_noise() {
        for (v, want) in
            [(0.403_500_02f32, "0.4035"), (123_456.7, "123457"), (-2.5e-7, "-0.00000025"), (0.0, "0"), (1.0, "1")]
        {
            assert_eq!(super::six_digits(v), want, "{v}");
        }
    }
}
