//! The typed raw table: a CSV file read into columns that keep what each
//! cell was — a number, a piece of text, or missing — before anything is
//! encoded for a model.
//!
//! Reading takes two passes over the (decompressed) text. The first finds
//! which columns hold a number in every present cell; the second stores
//! those as `f32` and every other column as text, dictionary-encoded (one
//! `u32` code per cell and each distinct value once), so a text column
//! keeps the exact spelling of every value — `01` stays `01` — and a wide
//! numeric table costs what its numbers do.
//!
//! Which cells count as missing is the caller's choice ([`ReadOptions`]).
//! This module never guesses what a column means: that is
//! [`crate::kinds`]'s job, and turning columns into model inputs is
//! [`crate::encode`]'s.

use std::collections::HashMap;

use crate::DataError;

/// The code of a missing cell in [`Values::Text`].
pub const MISSING: u32 = u32::MAX;

/// The cells read as missing unless the caller says otherwise: the common
/// spellings of "no value" in exported tables (pandas reads most of them so).
pub const DEFAULT_NA_VALUES: &[&str] = &["", "NA", "N/A", "n/a", "?", "null", "NULL", "NaN", "nan", "None"];

/// What the cells of one column hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Every present cell is a finite number; `NaN` marks a missing cell.
    Numbers(Vec<f32>),
    /// Text, dictionary-encoded: `levels[codes[i]]` is row i's value, in
    /// the order first seen; [`MISSING`] marks a missing cell.
    Text { codes: Vec<u32>, levels: Vec<String> },
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Text { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of missing cells.
    pub fn n_missing(&self) -> usize {
        match self {
            Values::Numbers(v) => v.iter().filter(|x| x.is_nan()).count(),
            Values::Text { codes, .. } => codes.iter().filter(|&&c| c == MISSING).count(),
        }
    }

    /// The rows at `indices`, in that order (text keeps its whole dictionary).
    fn select(&self, indices: &[usize]) -> Values {
        match self {
            Values::Numbers(v) => Values::Numbers(indices.iter().map(|&i| v[i]).collect()),
            Values::Text { codes, levels } => {
                Values::Text { codes: indices.iter().map(|&i| codes[i]).collect(), levels: levels.clone() }
            }
        }
    }
}

/// One column of a [`Table`].
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    /// Its 1-based position in the file, for error messages.
    pub position: usize,
    pub values: Values,
}

impl Column {
    /// The cells at `indices`, in that order, as a new column.
    pub fn select_rows(&self, indices: &[usize]) -> Column {
        Column { name: self.name.clone(), position: self.position, values: self.values.select(indices) }
    }
}

/// Columns read from one file, all of one length.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Where it came from, as errors name it.
    pub source: String,
    pub columns: Vec<Column>,
    /// The line of the file each row starts on (the header is line 1); 4
    /// bytes a row, so a file is read up to line 4,294,967,295.
    pub lines: Vec<u32>,
}

impl Table {
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The rows at `indices`, in that order, as a new table.
    pub fn select_rows(&self, indices: &[usize]) -> Table {
        Table {
            source: self.source.clone(),
            columns: self.columns.iter().map(|c| c.select_rows(indices)).collect(),
            lines: indices.iter().map(|&i| self.lines[i]).collect(),
        }
    }

    /// The columns `names`, in that order, as a row-major matrix of finite
    /// numbers; the first cell (in file order) that is not one is an error
    /// naming its line and column.
    pub fn numeric_matrix(&self, names: &[String]) -> Result<crate::Matrix, DataError> {
        let columns: Vec<&Column> = names
            .iter()
            .map(|n| {
                self.column(n).ok_or_else(|| DataError::MissingFeature { path: self.source.clone(), name: n.clone() })
            })
            .collect::<Result<_, _>>()?;
        // The first bad cell in reading order: the lowest row, then the leftmost column.
        let bad = columns
            .iter()
            .filter_map(|c| self.first_non_number(c).map(|(row, value)| (row, c.position, c, value)))
            .min_by_key(|(row, position, _, _)| (*row, *position));
        if let Some((row, _, column, value)) = bad {
            return Err(not_a_number(&self.source, self.lines[row].into(), column, value));
        }
        let (rows, width) = (self.n_rows(), columns.len());
        let mut x = vec![0.0f32; rows * width];
        for (j, c) in columns.iter().enumerate() {
            let Values::Numbers(v) = &c.values else { unreachable!("checked above") };
            for (i, &value) in v.iter().enumerate() {
                x[i * width + j] = value;
            }
        }
        Ok(crate::Matrix::from_vec(rows, width, x).expect("rows x columns"))
    }

    /// The first row of `column` whose cell is not a finite number, with
    /// the cell's text.
    fn first_non_number<'a>(&self, column: &'a Column) -> Option<(usize, &'a str)> {
        match &column.values {
            Values::Numbers(v) => v.iter().position(|x| x.is_nan()).map(|row| (row, "")),
            Values::Text { codes, levels } => codes.iter().enumerate().find_map(|(row, &code)| {
                let text = if code == MISSING { "" } else { levels[code as usize].as_str() };
                parse_finite(text).is_none().then_some((row, text))
            }),
        }
    }
}

/// A number error for `value` at `line` of `column`: "not finite" for NaN
/// and infinities, "not a number" otherwise.
pub(crate) fn not_a_number(path: &str, line: u64, column: &Column, value: &str) -> DataError {
    let non_finite = value_is_non_finite(value);
    let (path, name, value, column) = (path.to_string(), column.name.clone(), value.to_string(), column.position);
    if non_finite {
        DataError::NotFinite { path, line, column, name, value }
    } else {
        DataError::NotANumber { path, line, column, name, value }
    }
}

fn value_is_non_finite(text: &str) -> bool {
    text.parse::<f32>().is_ok_and(|v| !v.is_finite())
}

/// `text` as a finite f32, if it is one.
pub(crate) fn parse_finite(text: &str) -> Option<f32> {
    text.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// How [`CsvFile::read`] reads cells.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Cells (after trimming) read as missing. Empty: none is, and an empty
    /// cell is text like any other.
    pub na_values: Vec<String>,
    /// Columns kept as text even when every cell is a number (class labels,
    /// categories given by name).
    pub as_text: Vec<String>,
    /// The file's character encoding.
    pub encoding: crate::TextEncoding,
    /// The delimiter; `None`: sniffed from the header.
    pub delimiter: Option<u8>,
}

impl ReadOptions {
    /// The [`DEFAULT_NA_VALUES`] as missing.
    pub fn with_default_na() -> Self {
        Self { na_values: DEFAULT_NA_VALUES.iter().map(|s| s.to_string()).collect(), ..Self::default() }
    }

    fn is_na(&self, cell: &str) -> bool {
        self.na_values.iter().any(|m| m == cell)
    }
}

/// A CSV text opened at its header: the one place that reads rows, so every
/// loader treats blank lines, ragged rows, duplicate names and quoting alike.
pub struct CsvFile<'a> {
    source: &'a str,
    text: &'a [u8],
    header: Vec<String>,
    delimiter: u8,
}

/// The delimiters [`sniff_delimiter`] chooses among, comma first.
pub const DELIMITERS: &[u8] = b",;\t|";

/// The delimiter of a CSV text, sniffed from its header line: the one of
/// comma, semicolon, tab and pipe that occurs most often there outside
/// quotes (a comma on a tie, or when none does).
pub fn sniff_delimiter(text: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in text {
        if b == b'\n' && !quoted {
            break;
        }
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
            counts[i] += 1;
        }
    }
    let best = (0..4).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).expect("four");
    DELIMITERS[best]
}

impl<'a> CsvFile<'a> {
    /// Reads the header, the delimiter sniffed from it (see
    /// [`sniff_delimiter`]); an empty file, a blank header or a name that
    /// appears twice is an error.
    pub fn open(text: &'a [u8], source: &'a str) -> Result<Self, DataError> {
        Self::open_with(text, source, None)
    }

    /// [`Self::open`] with the delimiter given, or sniffed when `None`.
    pub fn open_with(text: &'a [u8], source: &'a str, delimiter: Option<u8>) -> Result<Self, DataError> {
        let empty = || DataError::Empty { path: source.into() };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Err(empty());
        }
        let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(text));
        let header: Vec<String> = reader(text, delimiter)
            .headers()
            .map_err(|e| malformed(source, e, &mut LineCounter::new(text)))?
            .iter()
            .map(str::to_owned)
            .collect();
        // A byte-order mark alone, or a blank header, leaves no column names.
        if header.iter().all(String::is_empty) {
            return Err(empty());
        }
        for (i, name) in header.iter().enumerate() {
            if let Some(j) = header[..i].iter().position(|h| h == name) {
                return Err(DataError::DuplicateColumn {
                    path: source.into(),
                    name: name.clone(),
                    first: j + 1,
                    second: i + 1,
                });
            }
        }
        Ok(Self { source, text, header, delimiter })
    }

    /// The column names, in file order.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The index of the column `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Reads the columns at `selected` (header indices, in that order) of
    /// every row; blank lines are skipped, a ragged row is an error, and a
    /// file with no data rows is one too.
    pub fn read(&self, selected: &[usize], options: &ReadOptions) -> Result<Table, DataError> {
        // Pass 1: which selected columns hold a finite number in every present cell.
        let mut numeric: Vec<bool> = selected.iter().map(|&c| !options.as_text.contains(&self.header[c])).collect();
        let mut rows = 0usize;
        self.for_each_row(|record, _| {
            for (k, &c) in selected.iter().enumerate() {
                if numeric[k] {
                    let cell = &record[c];
                    numeric[k] = options.is_na(cell) || parse_finite(cell).is_some();
                }
            }
            rows += 1;
            Ok(())
        })?;
        if rows == 0 {
            return Err(DataError::NoRows { path: self.source.into() });
        }
        // Pass 2: store them.
        let mut builders: Vec<Builder> =
            numeric.iter().map(|&n| if n { Builder::numbers(rows) } else { Builder::text(rows) }).collect();
        let mut lines = Vec::with_capacity(rows);
        self.for_each_row(|record, line| {
            lines.push(u32::try_from(line).map_err(|_| DataError::Malformed {
                path: self.source.into(),
                line,
                message: format!("files of more than {} lines are not supported", u32::MAX),
            })?);
            for (b, &c) in builders.iter_mut().zip(selected) {
                let cell = &record[c];
                b.push(cell, options.is_na(cell));
            }
            Ok(())
        })?;
        let columns = builders
            .into_iter()
            .zip(selected)
            .map(|(b, &c)| Column { name: self.header[c].clone(), position: c + 1, values: b.finish() })
            .collect();
        Ok(Table { source: self.source.into(), columns, lines })
    }

    /// Calls `f` with each non-blank row of the right width and its line.
    fn for_each_row(
        &self,
        mut f: impl FnMut(&csv::StringRecord, u64) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        let (source, width) = (self.source, self.header.len());
        let mut reader = reader(self.text, self.delimiter);
        let mut record = csv::StringRecord::new();
        let mut lines = LineCounter::new(self.text);
        while reader.read_record(&mut record).map_err(|e| malformed(source, e, &mut lines))? {
            let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
            if record.iter().all(str::is_empty) && record.len() <= 1 {
                continue;
            }
            if record.len() != width {
                return Err(DataError::Ragged { path: source.into(), line, expected: width, found: record.len() });
            }
            f(&record, line)?;
        }
        Ok(())
    }
}

fn reader(text: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(delimiter)
        .from_reader(text)
}

fn malformed(source: &str, e: csv::Error, lines: &mut LineCounter) -> DataError {
    let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
    DataError::Malformed { path: source.into(), line, message: e.to_string() }
}

/// The line (from 1) a byte offset of a text falls on, counting `\n`s
/// (a CRLF file's lines as an editor shows them; the csv crate's own line
/// count runs one short on every CRLF line after the first). Offsets asked
/// in order cost one pass over the text in all.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self { text, byte: 0, line: 1 }
    }

    /// The line of the first byte at or after `byte` that is not a line
    /// end: a record's position is where its reading began, before the
    /// blank lines the reader skipped.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut byte = usize::try_from(byte).unwrap_or(usize::MAX).min(self.text.len());
        while self.text.get(byte).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            byte += 1;
        }
        if byte < self.byte {
            (self.byte, self.line) = (0, 1);
        }
        self.line += self.text[self.byte..byte].iter().filter(|&&b| b == b'\n').count() as u64;
        self.byte = byte;
        self.line
    }
}

/// A column being read.
enum Builder {
    Numbers(Vec<f32>),
    Text { codes: Vec<u32>, levels: Vec<String>, index: HashMap<String, u32> },
}

impl Builder {
    fn numbers(rows: usize) -> Self {
        Builder::Numbers(Vec::with_capacity(rows))
    }

    fn text(rows: usize) -> Self {
        Builder::Text { codes: Vec::with_capacity(rows), levels: Vec::new(), index: HashMap::new() }
    }

    fn push(&mut self, cell: &str, missing: bool) {
        match self {
            Builder::Numbers(v) => v.push(if missing { f32::NAN } else { parse_finite(cell).expect("pass 1 checked") }),
            Builder::Text { codes, levels, index } => codes.push(if missing {
                MISSING
            } else if let Some(&code) = index.get(cell) {
                code
            } else {
                let code = levels.len() as u32;
                levels.push(cell.to_owned());
                index.insert(cell.to_owned(), code);
                code
            }),
        }
    }

    fn finish(self) -> Values {
        match self {
            Builder::Numbers(v) => Values::Numbers(v),
            Builder::Text { codes, levels, .. } => Values::Text { codes, levels },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, options: &ReadOptions) -> Table {
        let file = CsvFile::open(text.as_bytes(), "t.csv").unwrap();
        let all: Vec<usize> = (0..file.header().len()).collect();
        file.read(&all, options).unwrap()
    }

    #[test]
    fn numeric_columns_are_numbers_and_the_rest_text_with_exact_spellings() {
        let t = read("a,b,c\n1,01,x\n2.5,2,y\n", &ReadOptions::default());
        assert_eq!(t.columns[0].values, Values::Numbers(vec![1.0, 2.5]));
        assert_eq!(t.columns[1].values, Values::Numbers(vec![1.0, 2.0]));
        assert_eq!(t.columns[2].values, Values::Text { codes: vec![0, 1], levels: vec!["x".into(), "y".into()] });
        assert_eq!(t.lines, vec![2, 3]);
        // A letter anywhere keeps the column text, spelled as written.
        let t = read("a\n01\n1\nq\n01\n", &ReadOptions::default());
        assert_eq!(
            t.columns[0].values,
            Values::Text { codes: vec![0, 1, 2, 0], levels: vec!["01".into(), "1".into(), "q".into()] }
        );
        // Asked for as text, numbers stay text.
        let t = read("a\n01\n1\n", &ReadOptions { as_text: vec!["a".into()], ..Default::default() });
        assert_eq!(t.columns[0].values, Values::Text { codes: vec![0, 1], levels: vec!["01".into(), "1".into()] });
    }

    #[test]
    fn na_markers_are_missing_only_when_asked() {
        let text = "a,b\n1,x\n,?\nNA,y\n";
        let t = read(text, &ReadOptions::with_default_na());
        assert!(matches!(&t.columns[0].values, Values::Numbers(v) if v[0] == 1.0 && v[1].is_nan() && v[2].is_nan()));
        assert_eq!(
            t.columns[1].values,
            Values::Text { codes: vec![0, MISSING, 1], levels: vec!["x".into(), "y".into()] }
        );
        assert_eq!(t.columns[0].values.n_missing(), 2);
        let t = read(text, &ReadOptions::default());
        assert!(matches!(&t.columns[0].values, Values::Text { levels, .. } if levels == &["1", "", "NA"]));
    }

    #[test]
    fn the_delimiter_is_sniffed_from_the_header_outside_quotes() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2;3\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n1,5\t2\n"), b'\t');
        assert_eq!(sniff_delimiter(b"\"x,y\"|b|c\n"), b'|');
        assert_eq!(sniff_delimiter(b"a\n1\n"), b',');
        let t = read("name\tsize\n\"a, b\"\t2\n", &ReadOptions::default());
        assert_eq!(t.columns.len(), 2);
        assert_eq!(t.columns[0].values, Values::Text { codes: vec![0], levels: vec!["a, b".into()] });
    }

    #[test]
    fn the_numeric_matrix_names_the_first_bad_cell_in_reading_order() {
        let t = read("a,b\n1,2\n3,x\ny,4\n", &ReadOptions::default());
        let err = t.numeric_matrix(&["a".into(), "b".into()]).unwrap_err().to_string();
        assert_eq!(err, "t.csv:3:2: value 'x' in column 'b' is not a number");
        let t = read("a,b\n1,2\n3,inf\n", &ReadOptions::default());
        let err = t.numeric_matrix(&["b".into(), "a".into()]).unwrap_err().to_string();
        assert!(err.starts_with("t.csv:3:2: value 'inf' in column 'b' is not finite"), "{err}");
        let x = read("a,b\n1,2\n3,4\n", &ReadOptions::default()).numeric_matrix(&["b".into(), "a".into()]).unwrap();
        assert_eq!(x.as_slice(), &[2.0, 1.0, 4.0, 3.0]);
    }

    #[test]
    fn lines_are_counted_as_an_editor_shows_them_in_crlf_files_too() {
        // CRLF line ends, a BOM, a quoted field spanning lines 3-4 (CR/LF
        // inside quotes) and a blank line: each row starts on the line an
        // editor numbers it.
        for end in ["\n", "\r\n"] {
            let text = ["\u{feff}a,b", "1,x", "2,\"two", "lines\"", "", "3,y", "q,z", ""].join(end);
            let t = read(&text, &ReadOptions::default());
            assert_eq!(t.lines, vec![2, 3, 6, 7], "line ends {end:?}");
            let err = t.numeric_matrix(&["a".into()]).unwrap_err().to_string();
            assert!(err.starts_with("t.csv:7:1: value 'q'"), "line ends {end:?}: {err}");
            let ragged = ["a,b", "1,2", "3,4", "5", ""].join(end);
            let file = CsvFile::open(ragged.as_bytes(), "t.csv").unwrap();
            let err = file.read(&[0, 1], &ReadOptions::default()).unwrap_err().to_string();
            assert!(err.starts_with("t.csv:4"), "line ends {end:?}: {err}");
        }
    }
}
