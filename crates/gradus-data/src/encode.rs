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

use serde::{Deserialize, Serialize};

use crate::table::{Column, Table, Values};
use crate::{DataError, Matrix};

/// How one raw column becomes model inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encode", rename_all = "snake_case")]
pub enum ColumnEncoder {
    /// A numeric column, as it is.
    Number { column: String },
}

impl ColumnEncoder {
    /// The raw column it reads.
    pub fn column(&self) -> &str {
        match self {
            ColumnEncoder::Number { column } => column,
        }
    }

    /// The names of the inputs it writes, in order.
    pub fn output_names(&self) -> Vec<String> {
        match self {
            ColumnEncoder::Number { column } => vec![column.clone()],
        }
    }

    /// Whether the raw column must be read as text, whatever its cells look like.
    pub fn reads_text(&self) -> bool {
        false
    }

    /// Writes this encoder's inputs for every row of `column` into `x`
    /// (row-major, `width` wide) starting at input `first`.
    fn write(
        &self,
        table: &Table,
        column: &Column,
        x: &mut [f32],
        width: usize,
        first: usize,
    ) -> Result<(), DataError> {
        match self {
            ColumnEncoder::Number { .. } => {
                let Values::Numbers(values) = &column.values else {
                    return Err(table.numeric_matrix(std::slice::from_ref(&column.name)).expect_err("text cells"));
                };
                if let Some(row) = values.iter().position(|v| v.is_nan()) {
                    return Err(crate::table::not_a_number(&table.source, table.lines[row], column, ""));
                }
                for (i, &v) in values.iter().enumerate() {
                    x[i * width + first] = v;
                }
            }
        }
        Ok(())
    }
}

/// The column encoders of a model's inputs, in input order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    pub columns: Vec<ColumnEncoder>,
}

impl Encoding {
    /// Every column `names` a number, taken as it is: the encoding of an
    /// all-numeric table.
    pub fn numbers(names: &[String]) -> Self {
        Self { columns: names.iter().map(|n| ColumnEncoder::Number { column: n.clone() }).collect() }
    }

    /// The raw columns read, in order.
    pub fn input_columns(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.column().to_string()).collect()
    }

    /// The raw columns that must be read as text.
    pub fn text_columns(&self) -> Vec<String> {
        self.columns.iter().filter(|c| c.reads_text()).map(|c| c.column().to_string()).collect()
    }

    /// The model inputs' names, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.columns.iter().flat_map(ColumnEncoder::output_names).collect()
    }

    /// The number of model inputs.
    pub fn n_outputs(&self) -> usize {
        self.columns.iter().map(|c| c.output_names().len()).sum()
    }

    /// Whether every encoder passes a numeric column through unchanged.
    pub fn is_plain_numbers(&self) -> bool {
        self.columns.iter().all(|c| matches!(c, ColumnEncoder::Number { .. }))
    }

    /// The model inputs for every row of `table`; a column the encoding
    /// reads that the table lacks is an error naming it.
    pub fn transform(&self, table: &Table) -> Result<Matrix, DataError> {
        let widths: Vec<usize> = self.columns.iter().map(|c| c.output_names().len()).collect();
        let width: usize = widths.iter().sum();
        let mut x = vec![0.0f32; table.n_rows() * width];
        let mut first = 0;
        for (encoder, w) in self.columns.iter().zip(widths) {
            let column = table.column(encoder.column()).ok_or_else(|| DataError::MissingFeature {
                path: table.source.clone(),
                name: encoder.column().to_string(),
            })?;
            encoder.write(table, column, &mut x, width, first)?;
            first += w;
        }
        Ok(Matrix::from_vec(table.n_rows(), width, x).expect("rows x inputs"))
    }
}
