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
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct SearchSpace(pub BTreeMap<String, Distribution>);

/// A map of names to distributions in which a name given twice is an
/// error, in JSON as in TOML (a plain map keeps the last silently).
impl<'de> Deserialize<'de> for SearchSpace {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = SearchSpace;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of parameter names to distributions")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SearchSpace, A::Error> {
                let mut space = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let distribution: Distribution = map.next_value()?;
                    if space.insert(name.clone(), distribution).is_some() {
                        return Err(serde::de::Error::custom(format!("parameter '{name}' is given twice")));
                    }
                }
                Ok(SearchSpace(space))
            }
        }
        deserializer.deserialize_map(Names)
    }
}

/// Whether a space is JSON: by its file's extension, or else by its text —
/// an object, or an array (which TOML, whose `[name]` headers also open
/// with a bracket, never follows with these).
fn is_json(text: &str, source: &str) -> bool {
    if source.ends_with(".json") {
        return true;
    }
    if source.ends_with(".toml") {
        return false;
    }
    let text = text.trim_start();
    text.starts_with('{')
        || text.strip_prefix('[').is_some_and(|rest| {
            rest.trim_start().starts_with(|c: char| matches!(c, '{' | '[' | ']' | '"' | '-') || c.is_ascii_digit())
        })
}

impl SearchSpace {
    /// Parses JSON or TOML (see [`is_json`]); `source` names it in errors,
    /// with the format it was read as. A parameter given twice, or a field
    /// a distribution does not have, is an error in either.
    pub fn parse(text: &str, source: &str) -> Result<Self, TuneError> {
        let invalid = |reason: String| TuneError::InvalidSpace { source_name: source.into(), reason };
        let space: SearchSpace = if is_json(text, source) {
            serde_json::from_str(text).map_err(|e| {
                // serde_json ends its message with the place, given first here.
                let message = e.to_string();
                let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m);
                invalid(format!("(JSON) line {}, column {}: {message}", e.line(), e.column()))
            })?
        } else {
            toml::from_str(text).map_err(|e| invalid(format!("(TOML) {}", e.to_string().trim().replace('\n', " "))))?
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
    fn twice_given_names_and_unknown_fields_are_refused_alike_naming_the_format_read() {
        let err = |text: &str, source: &str| SearchSpace::parse(text, source).unwrap_err().to_string();
        let x = r#"{"type": "float", "low": 0, "high": 1}"#;
        let e = err(&format!(r#"{{"x": {x}, "x": {x}}}"#), "s.json");
        assert!(e.contains("s.json: (JSON) line 1") && e.ends_with("parameter 'x' is given twice"), "{e}");
        let e = err("[x]\ntype = \"int\"\nlow = 0\nhigh = 1\n[x]\ntype = \"int\"\nlow = 0\nhigh = 2\n", "s.toml");
        assert!(e.contains("s.toml: (TOML)") && e.contains("duplicate key"), "{e}");
        let e = err(r#"{"x": {"type": "float", "low": 0, "high": 1, "hihg": 3}}"#, "s.json");
        assert!(e.contains("unknown field `hihg`"), "{e}");
        let e = err("x = { type = \"float\", low = 0, high = 1, hihg = 3 }", "s.toml");
        assert!(e.contains("(TOML)") && e.contains("unknown field `hihg`"), "{e}");
        let e = err(r#"{"x": {"type": "float", "low": 0, "low": 0.5, "high": 1}}"#, "s.json");
        assert!(e.contains("duplicate field `low`"), "{e}");
        // A JSON array is reported as JSON, whatever the file's name.
        for source in ["s.json", "space.txt", "--space"] {
            let e = err(r#"[{"x": 1}]"#, source);
            assert!(e.contains("(JSON)") && e.contains("expected a map of parameter names"), "{source}: {e}");
        }
        // A TOML table header still reads as TOML.
        assert!(SearchSpace::parse("[x]\ntype = \"int\"\nlow = 0\nhigh = 1\n", "space").is_ok());
    }

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
            (r#"{"lr": {"type": "gaussian", "low": 0}}"#, "s.json: (JSON) line 1, column"),
            (r#"{"lr": "#, "s.json: (JSON) line 1"),
            ("{}", "the space has no parameters"),
        ];
        for (text, expected) in cases {
            let err = SearchSpace::parse(text, "s.json").unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
