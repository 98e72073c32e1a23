//! Declared search spaces, read from JSON or TOML:
//!
//! ```json
//! {"lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": true},
//!  "layers": {"type": "int", "low": 1, "high": 4},
//!  "opt": {"type": "categorical", "choices": ["sgd", "adam"]}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Distribution, TuneError};

/// Named distributions, in name order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SearchSpace(pub BTreeMap<String, Distribution>);

impl SearchSpace {
    /// Parses JSON (text starting with `{`) or TOML; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, TuneError> {
        let invalid = |reason: String| TuneError::InvalidSpace { source_name: source.into(), reason };
        let space: SearchSpace = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| invalid(format!("line {}, column {}: {e}", e.line(), e.column())))?
        } else {
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim().replace('\n', " ")))?
        };
        if space.0.is_empty() {
            return Err(invalid("the space has no parameters".into()));
        }
        for (name, dist) in &space.0 {
            dist.validate(name).map_err(|e| invalid(e.to_string()))?;
        }
        Ok(space)
    }

    /// Reads a space file (JSON or TOML).
    pub fn load(path: &str) -> Result<Self, TuneError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TuneError::InvalidSpace { source_name: path.into(), reason: e.to_string() })?;
        Self::parse(&text, path)
    }

    /// The number of grid points, when every distribution is finite
    /// (counted, not listed; at most `u64::MAX`).
    pub fn grid_size(&self) -> Option<u64> {
        self.0.values().map(Distribution::grid_len).try_fold(1u64, |acc, n| Some(acc.saturating_mul(n?)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Distribution)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_toml_spaces_parse_alike() {
        let json = r#"{"lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": true},
                       "layers": {"type": "int", "low": 1, "high": 4},
                       "opt": {"type": "categorical", "choices": ["sgd", "adam"]}}"#;
        let toml = r#"
            lr = { type = "float", low = 1e-5, high = 0.1, log = true }
            layers = { type = "int", low = 1, high = 4 }
            opt = { type = "categorical", choices = ["sgd", "adam"] }
        "#;
        let a = SearchSpace::parse(json, "s.json").unwrap();
        assert_eq!(a, SearchSpace::parse(toml, "s.toml").unwrap());
        assert_eq!(a.0["layers"], Distribution::int(1, 4));
        assert_eq!(a.grid_size(), None, "lr is continuous");
    }

    #[test]
    fn bad_spaces_name_the_file_and_the_fault() {
        let cases = [
            (
                r#"{"lr": {"type": "float", "low": 1, "high": 0}}"#,
                "s.json: parameter 'lr': low (1) is greater than high (0)",
            ),
            (r#"{"lr": {"type": "float", "low": 0, "high": 1, "log": true}}"#, "needs low > 0"),
            (r#"{"opt": {"type": "categorical", "choices": []}}"#, "at least one choice"),
            (r#"{"lr": {"type": "gaussian", "low": 0}}"#, "s.json: line 1, column"),
            (r#"{"lr": "#, "s.json: line 1"),
            ("{}", "the space has no parameters"),
        ];
        for (text, expected) in cases {
            let err = SearchSpace::parse(text, "s.json").unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
