//! Reading datasets from CSV files (plain or gzip'd) and from `builtin:NAME`.
//!
//! The first row is a header. Every column but the target must hold finite
//! numbers; the target is numeric (regression) or holds class labels, which are
//! mapped to indices in sorted order (numerically when they are all numbers),
//! and the mapping is kept in [`Target::Classes`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::table::{CsvFile, ReadOptions, Table, Values};
use crate::text_encoding::TextEncoding;
use crate::{DataError, Dataset, Encoding, Target};

/// How to read the target column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetKind {
    /// Class labels when any value is not a number, or when every value is
    /// a whole number and there are at most [`MAX_AUTO_CLASSES`] distinct
    /// ones; a regression target otherwise.
    #[default]
    Auto,
    /// A real-valued target; a value that is not a finite number is an error.
    Real,
    /// Class labels (numbers or strings); fewer than two classes is an error.
    Classes,
}

/// The most distinct whole-number values [`TargetKind::Auto`] reads as classes.
pub const MAX_AUTO_CLASSES: usize = 20;

/// Options for [`load`], [`load_csv`] and [`parse_csv`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The target column's name; `None` takes the last column.
    pub target: Option<String>,
    pub target_kind: TargetKind,
}

/// Loads `builtin:NAME`, an IDX images file with its labels beside it (see
/// [`crate::load_idx`]; `options` do not apply) or a CSV file (gzip'd or
/// not) at a path.
pub fn load(source: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
    match source.strip_prefix("builtin:") {
        Some(name) => crate::load_builtin(name, options),
        None if crate::is_idx_images(source) => {
            if let Some(target) = options.target.as_ref().filter(|t| *t != "label") {
                return Err(DataError::invalid(
                    "target",
                    format!("{source}: an IDX images file has one target, its labels ('label'), not '{target}'"),
                ));
            }
            Ok(crate::load_idx(Path::new(source))?.0)
        }
        None => load_csv(source, options),
    }
}

/// Loads a CSV file with a header row; gzip is detected from the content.
pub fn load_csv(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    let source = path.display().to_string();
    // The text goes once the table is read: the two are never held with the matrix.
    // Checked as UTF-8 first: a byte that is not is an error naming its line and byte.
    let (table, target_col) = read_labelled(&read_source(&source, TextEncoding::Utf8)?, &source, options)?;
    labelled_dataset(&table, &source, target_col, options)
}

/// The labelled rows of a CSV file or built-in dataset as a model that reads
/// raw columns through `encoding` sees them: those columns encoded, and the
/// target column `target` (rows whose target is missing left out, as in
/// training). Other columns are ignored; `format`'s character encoding
/// and delimiter say how to read the file.
pub fn load_encoded(
    source: &str,
    encoding: &Encoding,
    target: &str,
    kind: TargetKind,
    format: &ReadOptions,
) -> Result<Dataset, DataError> {
    // An IDX file's labels are its one target, whatever the model calls
    // its own (`digit` for a model of builtin:mnist_5k): they are read as it.
    if crate::is_idx_images(source) {
        let mut data = load(source, &LoadOptions { target: None, target_kind: kind })?;
        data.target_name = target.into();
        return Ok(data);
    }
    let mut options = encoding.read_options();
    options.as_text.push(target.into());
    // The text goes once the table is read: the two are never held with the matrix.
    let (mut table, target_col) = {
        let text = read_source(source, format.encoding)?;
        let file = CsvFile::open_with(&text, source, format.delimiter)?;
        let mut columns = feature_columns(&file, source, &encoding.input_columns())?;
        let target_col = target_column(&file, source, Some(target))?;
        columns.push(target_col);
        (file.read(&columns, &options)?, target_col)
    };
    let Some(Values::Text { codes, .. }) = table.column(target).map(|c| &c.values) else {
        unreachable!("the target is read as text")
    };
    // Rows whose target is missing are left out (a list of the others is
    // made only when there are some).
    if codes.contains(&crate::table::MISSING) {
        let keep: Vec<usize> = (0..codes.len()).filter(|&i| codes[i] != crate::table::MISSING).collect();
        table = table.select_rows(&keep);
    }
    let expansion = crate::Expansion::of(encoding);
    Ok(Dataset {
        name: source.into(),
        x: match &expansion {
            Some(_) => encoding.transform_stored(&table, None)?,
            None => encoding.transform(&table)?,
        },
        y: build_target(target_cells(&table, target), source, target_col, target, kind)?,
        encoding: encoding.clone(),
        target_name: target.into(),
        expansion: expansion.map(std::sync::Arc::new),
        sparse: encoding.transform_text(&table, None)?,
    })
}

/// Reads the columns `names` of a CSV file or built-in dataset as a typed
/// table, ignoring every other column; a missing one is an error.
pub fn load_table(source: &str, names: &[String], options: &ReadOptions) -> Result<Table, DataError> {
    let text = read_source(source, options.encoding)?;
    let file = CsvFile::open_with(&text, source, options.delimiter)?;
    file.read(&feature_columns(&file, source, names)?, options)
}

/// Parses CSV text; `source` names it in errors and becomes the dataset's name.
pub fn parse_csv(text: &[u8], source: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
    let (table, target_col) = read_labelled(text, source, options)?;
    labelled_dataset(&table, source, target_col, options)
}

/// Every column of a CSV text (the target's as text), and the target's index.
fn read_labelled(text: &[u8], source: &str, options: &LoadOptions) -> Result<(Table, usize), DataError> {
    let file = CsvFile::open(text, source)?;
    let target_col = target_column(&file, source, options.target.as_deref())?;
    let header = file.header();
    let target_name = header[target_col].clone();
    if header.len() < 2 {
        return Err(DataError::NoFeatures { path: source.into(), name: target_name });
    }
    let all: Vec<usize> = (0..header.len()).collect();
    let table = file.read(&all, &ReadOptions { as_text: vec![target_name], ..ReadOptions::default() })?;
    Ok((table, target_col))
}

/// The numeric dataset of a table that [`read_labelled`] read.
fn labelled_dataset(
    table: &Table,
    source: &str,
    target_col: usize,
    options: &LoadOptions,
) -> Result<Dataset, DataError> {
    let target_name = table.columns[target_col].name.clone();
    let feature_names: Vec<String> =
        table.columns.iter().filter(|c| c.name != target_name).map(|c| c.name.clone()).collect();
    Ok(Dataset {
        name: source.into(),
        x: table.numeric_matrix(&feature_names)?,
        y: build_target(target_cells(table, &target_name), source, target_col, &target_name, options.target_kind)?,
        encoding: Encoding::numbers(&feature_names),
        target_name,
        expansion: None,
        sparse: None,
    })
}

/// The header indices of the columns `names`; a missing one is an error.
fn feature_columns(file: &CsvFile<'_>, source: &str, names: &[String]) -> Result<Vec<usize>, DataError> {
    names
        .iter()
        .map(|name| {
            file.position(name).ok_or_else(|| DataError::MissingFeature { path: source.into(), name: name.clone() })
        })
        .collect()
}

/// The index of the target column: `name`, or the last column.
pub(crate) fn target_column(file: &CsvFile<'_>, source: &str, name: Option<&str>) -> Result<usize, DataError> {
    match name {
        None => Ok(file.header().len() - 1),
        Some(name) => file.position(name).ok_or_else(|| DataError::UnknownTarget {
            path: source.into(),
            name: name.into(),
            available: file.header().join(", "),
        }),
    }
}

/// The cells of the target column `name`, read as text.
fn target_cells<'a>(table: &'a Table, name: &str) -> TargetCells<'a> {
    let Some(Values::Text { codes, levels }) = table.column(name).map(|c| &c.values) else {
        unreachable!("the target is read as text")
    };
    TargetCells { levels, codes, lines: &table.lines }
}

/// The (decompressed) CSV text of `builtin:NAME` or a file, as UTF-8.
pub(crate) fn read_source(source: &str, encoding: TextEncoding) -> Result<Vec<u8>, DataError> {
    let bytes = match source.strip_prefix("builtin:") {
        Some(name) => return crate::builtin::builtin_text(name),
        None => crate::memory::read_file(std::path::Path::new(source))?,
    };
    Ok(match encoding.decode(&bytes, source)? {
        std::borrow::Cow::Borrowed(_) => bytes,
        std::borrow::Cow::Owned(decoded) => decoded,
    })
}

/// Returns the bytes themselves, or their gunzipped content when they start
/// with the gzip magic number.
pub(crate) fn decompress(bytes: &[u8]) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| std::io::Error::new(e.kind(), format!("not a valid gzip file: {e}")))?;
        Ok(out.into())
    } else {
        Ok(bytes.into())
    }
}

fn parse_number(field: &str, path: &str, line: u64, col: usize, name: &str) -> Result<f32, DataError> {
    match field.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(DataError::NotFinite {
            path: path.into(),
            line,
            column: col + 1,
            name: name.into(),
            value: field.into(),
        }),
        Err(_) => Err(DataError::NotANumber {
            path: path.into(),
            line,
            column: col + 1,
            name: name.into(),
            value: field.into(),
        }),
    }
}

pub(crate) fn build_target(
    cells: TargetCells<'_>,
    path: &str,
    col: usize,
    name: &str,
    kind: TargetKind,
) -> Result<Target, DataError> {
    // Everything is worked out once per distinct text, then looked up per row.
    let TargetCells { levels, codes, lines } = cells;
    // The texts in the order rows first hold them, and the first row of each.
    let mut first_row: Vec<Option<usize>> = vec![None; levels.len()];
    let mut order = Vec::new();
    for (row, &c) in codes.iter().enumerate() {
        if first_row[c as usize].is_none() {
            first_row[c as usize] = Some(row);
            order.push(c as usize);
        }
    }
    let error_at = |level: usize| {
        let row = first_row[level].expect("a level that occurs");
        let text = &levels[level];
        parse_number(text, path, lines[row].into(), col, name).expect_err("a text that is not a finite number")
    };
    let parsed: Vec<Option<f32>> = levels.iter().map(|v| v.parse::<f32>().ok()).collect();
    let numeric = order.iter().all(|&l| parsed[l].is_some());
    let as_real = || {
        // The first row, in file order, whose text is not a finite number.
        let bad = codes.iter().map(|&c| c as usize).find(|&l| !parsed[l].is_some_and(f32::is_finite));
        match bad {
            Some(level) => Err(error_at(level)),
            None => Ok(Target::Real(codes.iter().map(|&c| parsed[c as usize].expect("checked")).collect())),
        }
    };
    let few_whole_numbers = numeric && {
        let values = order.iter().map(|&l| parsed[l].expect("numeric"));
        values.clone().all(|v| v.fract() == 0.0)
            && values.map(f32::to_bits).collect::<std::collections::BTreeSet<_>>().len() <= MAX_AUTO_CLASSES
    };
    match kind {
        TargetKind::Real => as_real(),
        TargetKind::Auto if numeric && !few_whole_numbers => as_real(),
        TargetKind::Auto | TargetKind::Classes => {
            // Labels that are all numbers are classes by value ("1" and "1.0"
            // are one class) in numeric order ("2" < "10"); other labels are
            // classes by text in text order. Both orders match scikit-learn's
            // LabelEncoder. A class is named by its first spelling.
            if numeric
                && let Some(level) =
                    codes.iter().map(|&c| c as usize).find(|&l| !parsed[l].expect("numeric").is_finite())
            {
                return Err(error_at(level));
            }
            // Order-preserving text keys for finite floats (+0 and −0 are one value).
            let key = |l: usize| match numeric {
                true => format!("{:020}", sortable_bits(parsed[l].expect("numeric") + 0.0)),
                false => levels[l].clone(),
            };
            let keys: Vec<String> =
                (0..levels.len()).map(|l| if first_row[l].is_some() { key(l) } else { String::new() }).collect();
            let mut first_spelling: BTreeMap<&str, &str> = BTreeMap::new();
            for &l in &order {
                first_spelling.entry(keys[l].as_str()).or_insert(levels[l].as_str());
            }
            if first_spelling.len() < 2 {
                return Err(DataError::OneClass {
                    path: path.into(),
                    name: name.into(),
                    class: first_spelling.values().next().map_or_else(String::new, |c| c.to_string()),
                });
            }
            let index: BTreeMap<&str, u32> = first_spelling.keys().enumerate().map(|(i, k)| (*k, i as u32)).collect();
            let class_of: Vec<u32> = keys
                .iter()
                .enumerate()
                .map(|(l, k)| if first_row[l].is_some() { index[k.as_str()] } else { 0 })
                .collect();
            let labels = codes.iter().map(|&c| class_of[c as usize]).collect();
            let classes = first_spelling.values().map(|c| c.to_string()).collect();
            Ok(Target::Classes { labels, classes })
        }
    }
}

/// A target column's cells as read: its distinct texts, and for each row
/// which one it holds and the line it is on (no cell missing).
pub(crate) struct TargetCells<'a> {
    pub levels: &'a [String],
    pub codes: &'a [u32],
    pub lines: &'a [u32],
}

/// A u64 whose order is the numeric order of the finite f32 `v`.
fn sortable_bits(v: f32) -> u64 {
    let bits = v.to_bits();
    (if bits >> 31 == 1 { !bits } else { bits | (1 << 31) }) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
        parse_csv(text.as_bytes(), "t.csv", options)
    }

    #[test]
    fn the_last_column_is_the_default_target_and_strings_become_sorted_classes() {
        let d = parse("a,b,label\n1,2,dog\n3,4,cat\n5,6,dog\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.feature_names(), ["a", "b"]);
        assert_eq!(d.x.as_slice(), &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(d.y, Target::Classes { labels: vec![1, 0, 1], classes: vec!["cat".into(), "dog".into()] });
    }

    #[test]
    fn a_named_target_column_is_taken_out_of_the_features() {
        let opts = LoadOptions { target: Some("y".into()), ..Default::default() };
        let d = parse("y,a,b\n1.5,2,3\n2.5,4,5\n", &opts).unwrap();
        assert_eq!(d.feature_names(), ["a", "b"]);
        assert_eq!(d.y, Target::Real(vec![1.5, 2.5]));
    }

    #[test]
    fn numeric_classes_sort_numerically() {
        let opts = LoadOptions { target_kind: TargetKind::Classes, ..Default::default() };
        let d = parse("a,y\n0,10\n1,2\n2,10\n", &opts).unwrap();
        assert_eq!(d.y, Target::Classes { labels: vec![1, 0, 1], classes: vec!["2".into(), "10".into()] });
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let cases = [
            ("a,b\n1,2\n3\n", "t.csv:3: row has 1 fields but the header has 2"),
            ("a,b\n1,2\nx,3\n", "t.csv:3:1: value 'x' in column 'a' is not a number"),
            ("a,b\n1,2\n3,4\nNaN,1\n", "t.csv:4:1: value 'NaN' in column 'a' is not finite"),
            ("a,b\n1,2\ninf,1\n", "t.csv:3:1: value 'inf' in column 'a' is not finite"),
            ("a,b,c\n1,,2\n", "t.csv:2:2: value '' in column 'b' is not a number"),
            ("", "t.csv: the file is empty"),
            ("a,b\n", "t.csv: the header has no data rows"),
            ("a,b\n1,x\n2,x\n", "target column 'b' has only one class ('x')"),
        ];
        for (text, expected) in cases {
            let err = parse(text, &LoadOptions::default()).unwrap_err().to_string();
            assert!(err.contains(expected), "for {text:?}: got {err:?}, expected {expected:?}");
        }
    }

    #[test]
    fn auto_reads_few_whole_numbers_as_classes_and_the_rest_as_real() {
        let d = parse("a,y\n1,0\n2,2\n3,1\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.y.labels(), Some(&[0u32, 2, 1][..]));
        let d = parse("a,y\n1,0.5\n2,2\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.y, Target::Real(vec![0.5, 2.0]));
        let many: String = (0..25).map(|i| format!("{i},{i}\n")).collect();
        let d = parse(&format!("a,y\n{many}"), &LoadOptions::default()).unwrap();
        assert!(matches!(d.y, Target::Real(_)));
    }

    #[test]
    fn numeric_labels_are_classes_by_value() {
        let opts = LoadOptions { target_kind: TargetKind::Classes, ..Default::default() };
        let d = parse("a,y\n0,1\n1,1.0\n2,-2\n3,0\n4,-0\n", &opts).unwrap();
        assert_eq!(
            d.y,
            Target::Classes { labels: vec![2, 2, 0, 1, 1], classes: vec!["-2".into(), "0".into(), "1".into()] }
        );
    }

    #[test]
    fn duplicate_column_names_and_a_bare_byte_order_mark_are_rejected() {
        let err = parse("a,a,y\n1,2,3\n", &LoadOptions::default()).unwrap_err().to_string();
        assert_eq!(err, "t.csv: column name 'a' appears twice (columns 1 and 2)");
        let err = parse_csv(b"\xef\xbb\xbf", "t.csv", &LoadOptions::default()).unwrap_err().to_string();
        assert_eq!(err, "t.csv: the file is empty (expected a header row and data rows)");
    }

    #[test]
    fn whitespace_only_lines_are_skipped_by_every_loader() {
        let d = parse("a,y\n1,2\n   \n3,4\n", &LoadOptions::default()).unwrap();
        assert_eq!(d.n_samples(), 2);
    }

    #[test]
    fn a_real_target_must_be_numeric() {
        let opts = LoadOptions { target_kind: TargetKind::Real, ..Default::default() };
        let err = parse("a,y\n1,2\n2,cat\n", &opts).unwrap_err().to_string();
        assert_eq!(err, "t.csv:3:2: value 'cat' in column 'y' is not a number");
    }

    #[test]
    fn unknown_target_lists_the_columns() {
        let opts = LoadOptions { target: Some("z".into()), ..Default::default() };
        let err = parse("a,b\n1,2\n", &opts).unwrap_err().to_string();
        assert_eq!(err, "t.csv: no column named 'z' to use as the target (columns: a, b)");
    }
}
