//! Reading datasets from CSV files (plain or gzip'd) and from `builtin:NAME`.
//!
//! The first row is a header. Every column but the target must hold finite
//! numbers; the target is numeric (regression) or holds class labels, which are
//! mapped to indices in sorted order (numerically when they are all numbers),
//! and the mapping is kept in [`Target::Classes`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::{DataError, Dataset, Matrix, Target};

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

/// Loads `builtin:NAME` or a CSV file (gzip'd or not) at a path.
pub fn load(source: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
    match source.strip_prefix("builtin:") {
        Some(name) => crate::load_builtin(name, options),
        None => load_csv(source, options),
    }
}

/// Reads the columns `names` (in that order) of a CSV file or built-in
/// dataset as a feature matrix, ignoring every other column: the rows a
/// trained model predicts for.
pub fn load_features(source: &str, names: &[String]) -> Result<Matrix, DataError> {
    let text;
    let bytes: &[u8] = match source.strip_prefix("builtin:") {
        Some(name) => {
            text = crate::builtin::builtin_text(name)?;
            &text
        }
        None => {
            let io_error = |error| DataError::Io { path: source.into(), error };
            text = decompress(&std::fs::read(source).map_err(io_error)?).map_err(io_error)?.into_owned();
            &text
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty { path: source.into() });
    }
    let mut reader = csv_reader(bytes);
    let malformed = |e: csv::Error| DataError::Malformed {
        path: source.into(),
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    };
    let header: Vec<String> = reader.headers().map_err(malformed)?.iter().map(str::to_owned).collect();
    let columns = names
        .iter()
        .map(|name| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| DataError::MissingFeature { path: source.into(), name: name.clone() })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let mut values = Vec::new();
    let mut rows = 0;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(malformed)? {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            return Err(DataError::Ragged { path: source.into(), line, expected: header.len(), found: record.len() });
        }
        for &c in &columns {
            values.push(parse_number(&record[c], source, line, c, &header[c])?);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::NoRows { path: source.into() });
    }
    Ok(Matrix::from_vec(rows, names.len(), values).expect("rows x names"))
}

fn csv_reader(text: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(text)
}

/// Loads a CSV file with a header row; gzip is detected from the content.
pub fn load_csv(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    let io_error = |error| DataError::Io { path: path.to_path_buf(), error };
    let bytes = std::fs::read(path).map_err(io_error)?;
    let text = decompress(&bytes).map_err(io_error)?;
    parse_csv(&text, &path.display().to_string(), options)
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

/// Parses CSV text; `source` names it in errors and becomes the dataset's name.
pub fn parse_csv(text: &[u8], source: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty { path: source.into() });
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(text);
    let malformed = |e: csv::Error| DataError::Malformed {
        path: source.into(),
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    };
    let header: Vec<String> = reader.headers().map_err(malformed)?.iter().map(str::to_owned).collect();
    let target_col = match &options.target {
        None => header.len() - 1,
        Some(name) => header.iter().position(|h| h == name).ok_or_else(|| DataError::UnknownTarget {
            path: source.into(),
            name: name.clone(),
            available: header.join(", "),
        })?,
    };
    if header.len() < 2 {
        return Err(DataError::NoFeatures { path: source.into(), name: header[target_col].clone() });
    }

    let n_features = header.len() - 1;
    let mut features = Vec::new();
    let mut raw_target: Vec<(String, u64)> = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(malformed)? {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        if record.len() != header.len() {
            return Err(DataError::Ragged { path: source.into(), line, expected: header.len(), found: record.len() });
        }
        for (col, field) in record.iter().enumerate() {
            if col == target_col {
                raw_target.push((field.to_owned(), line));
            } else {
                features.push(parse_number(field, source, line, col, &header[col])?);
            }
        }
    }
    if raw_target.is_empty() {
        return Err(DataError::NoRows { path: source.into() });
    }

    let target_name = header[target_col].clone();
    let y = build_target(raw_target, source, target_col, &target_name, options.target_kind)?;
    let mut feature_names = header;
    feature_names.remove(target_col);
    let rows = y.len();
    Ok(Dataset {
        name: source.into(),
        x: Matrix::from_vec(rows, n_features, features).expect("one value per feature per row"),
        y,
        feature_names,
        target_name,
    })
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

fn build_target(
    raw: Vec<(String, u64)>,
    path: &str,
    col: usize,
    name: &str,
    kind: TargetKind,
) -> Result<Target, DataError> {
    let numeric: Option<Vec<f32>> = raw.iter().map(|(v, _)| v.parse::<f32>().ok()).collect();
    let as_real = || {
        raw.iter()
            .map(|(v, line)| parse_number(v, path, *line, col, name))
            .collect::<Result<Vec<f32>, _>>()
            .map(Target::Real)
    };
    let few_whole_numbers = numeric.as_ref().is_some_and(|values| {
        values.iter().all(|v| v.fract() == 0.0)
            && values.iter().map(|v| v.to_bits()).collect::<std::collections::BTreeSet<_>>().len() <= MAX_AUTO_CLASSES
    });
    match kind {
        TargetKind::Real => as_real(),
        TargetKind::Auto if numeric.is_some() && !few_whole_numbers => as_real(),
        TargetKind::Auto | TargetKind::Classes => {
            // Sort class labels numerically when they are all numbers ("2" < "10"),
            // else as strings; both orders match scikit-learn's LabelEncoder.
            let mut classes: Vec<String> =
                raw.iter().map(|(v, _)| v.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            if let Some(values) = &numeric {
                if let Some((v, line)) = raw.iter().zip(values).find(|(_, x)| !x.is_finite()).map(|(r, _)| r) {
                    return Err(DataError::NotFinite {
                        path: path.into(),
                        line: *line,
                        column: col + 1,
                        name: name.into(),
                        value: v.clone(),
                    });
                }
                classes.sort_by(|a, b| a.parse::<f32>().unwrap().total_cmp(&b.parse::<f32>().unwrap()));
            }
            if classes.len() < 2 {
                return Err(DataError::OneClass {
                    path: path.into(),
                    name: name.into(),
                    class: classes.pop().unwrap_or_default(),
                });
            }
            let index: BTreeMap<&str, u32> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
            let labels = raw.iter().map(|(v, _)| index[v.as_str()]).collect();
            Ok(Target::Classes { labels, classes })
        }
    }
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
        assert_eq!(d.feature_names, ["a", "b"]);
        assert_eq!(d.x.as_slice(), &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(d.y, Target::Classes { labels: vec![1, 0, 1], classes: vec!["cat".into(), "dog".into()] });
    }

    #[test]
    fn a_named_target_column_is_taken_out_of_the_features() {
        let opts = LoadOptions { target: Some("y".into()), ..Default::default() };
        let d = parse("y,a,b\n1.5,2,3\n2.5,4,5\n", &opts).unwrap();
        assert_eq!(d.feature_names, ["a", "b"]);
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
