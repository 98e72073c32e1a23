//! Parameter distributions and the mapping between a parameter's external
//! value (what the objective sees: a number, a string, a bool) and its
//! internal value (an f64 that samplers work with; a categorical's index).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TuneError;

/// The range a parameter is drawn from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// A real in [low, high]; `log` samples uniformly in log space; `step`
    /// restricts it to low, low + step, ... ≤ high.
    Float {
        low: f64,
        high: f64,
        #[serde(default)]
        log: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<f64>,
    },
    /// An integer in [low, high] (both included), every `step`-th one.
    Int {
        low: i64,
        high: i64,
        #[serde(default)]
        log: bool,
        #[serde(default = "one")]
        step: i64,
    },
    /// One of `choices` (numbers, strings, bools, null).
    Categorical { choices: Vec<Value> },
}

fn one() -> i64 {
    1
}

impl Distribution {
    pub fn float(low: f64, high: f64) -> Self {
        Distribution::Float { low, high, log: false, step: None }
    }

    pub fn log_float(low: f64, high: f64) -> Self {
        Distribution::Float { low, high, log: true, step: None }
    }

    pub fn int(low: i64, high: i64) -> Self {
        Distribution::Int { low, high, log: false, step: 1 }
    }

    pub fn categorical(choices: impl IntoIterator<Item = impl Into<Value>>) -> Self {
        Distribution::Categorical { choices: choices.into_iter().map(Into::into).collect() }
    }

    /// Checks the distribution can be sampled; `name` is used in the error.
    pub fn validate(&self, name: &str) -> Result<(), TuneError> {
        let bad = |reason: String| Err(TuneError::InvalidDistribution { name: name.into(), reason });
        match *self {
            Distribution::Float { low, high, log, step } => {
                if !low.is_finite() || !high.is_finite() {
                    return bad(format!("low ({low}) and high ({high}) must be finite"));
                }
                if low > high {
                    return bad(format!("low ({low}) is greater than high ({high})"));
                }
                // Samplers interpolate between the bounds: the width must be a number.
                if !(high - low).is_finite() {
                    return bad(format!("the range from {low} to {high} is wider than a float can hold"));
                }
                if log && low <= 0.0 {
                    return bad(format!("a log distribution needs low > 0, got {low}"));
                }
                if let Some(step) = step {
                    if !(step > 0.0 && step.is_finite()) {
                        return bad(format!("step must be > 0, got {step}"));
                    }
                    if log {
                        return bad("step and log cannot be combined".into());
                    }
                    // Levels are counted in f64, exactly up to 2^53.
                    if (high - low) / step > MAX_EXACT_INT as f64 {
                        return bad(format!(
                            "a step of {step} from {low} to {high} makes more than 2^53 levels; take a larger step"
                        ));
                    }
                }
                Ok(())
            }
            Distribution::Int { low, high, log, step } => {
                // Samplers work in f64, exact for integers up to 2^53.
                if low < -MAX_EXACT_INT || high > MAX_EXACT_INT {
                    return bad(format!(
                        "an int range must lie within ±{MAX_EXACT_INT} (2^53, where every integer is exact in \
                         the samplers' arithmetic), got {low} to {high}"
                    ));
                }
                if low > high {
                    return bad(format!("low ({low}) is greater than high ({high})"));
                }
                if log && low < 1 {
                    return bad(format!("a log distribution needs low ≥ 1, got {low}"));
                }
                if step < 1 {
                    return bad(format!("step must be ≥ 1, got {step}"));
                }
                if log && step != 1 {
                    return bad("step and log cannot be combined".into());
                }
                Ok(())
            }
            Distribution::Categorical { ref choices } => {
                if choices.is_empty() {
                    return bad("a categorical needs at least one choice".into());
                }
                if choices.iter().any(|c| c.is_array() || c.is_object()) {
                    return bad("choices must be numbers, strings, bools or null".into());
                }
                Ok(())
            }
        }
    }

    /// Whether only one value is possible.
    pub fn is_single(&self) -> bool {
        match *self {
            Distribution::Float { low, high, step, .. } => low == high || step.is_some_and(|s| high - low < s),
            Distribution::Int { low, high, step, .. } => high - low < step,
            Distribution::Categorical { ref choices } => choices.len() == 1,
        }
    }

    /// The highest value on the step grid (high itself without a step).
    pub(crate) fn top(&self) -> f64 {
        match *self {
            Distribution::Float { low, high, step: Some(s), .. } => low + ((high - low) / s + 1e-9).floor() * s,
            Distribution::Float { high, .. } => high,
            Distribution::Int { low, high, step, .. } => (low + (high - low) / step * step) as f64,
            Distribution::Categorical { ref choices } => (choices.len() - 1) as f64,
        }
    }

    /// Maps `u` in [0, 1) to an internal value, uniformly (in log space for
    /// log distributions, over the grid for stepped and integer ones): the
    /// bridge from random and quasi-random numbers to parameters.
    pub fn from_unit(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0 - f64::EPSILON);
        match *self {
            Distribution::Float { low, high, log: true, .. } => (low.ln() + u * (high.ln() - low.ln())).exp().min(high),
            Distribution::Float { low, high, step: Some(s), .. } => {
                // In f64: a fine step over a wide range has more levels than an i64 holds.
                let n = ((self.top() - low) / s).round() + 1.0;
                (low + (u * n).floor().min(n - 1.0) * s).clamp(low, high)
            }
            Distribution::Float { low, high, .. } => (low + u * (high - low)).clamp(low, high),
            Distribution::Int { low, high, log: true, .. } => {
                // Uniform in log space over [low − 0.5, high + 0.5), then rounded (Optuna's choice).
                let (lo, hi) = ((low as f64 - 0.5).max(0.5).ln(), (high as f64 + 0.5).ln());
                ((lo + u * (hi - lo)).exp().round() as i64).clamp(low, high) as f64
            }
            Distribution::Int { low, step, .. } => {
                let n = (self.top() as i64 - low) / step + 1;
                (low + ((u * n as f64).floor() as i64).min(n - 1) * step) as f64
            }
            Distribution::Categorical { ref choices } => {
                ((u * choices.len() as f64).floor() as usize).min(choices.len() - 1) as f64
            }
        }
    }

    /// Whether an internal value lies in the distribution (on its grid).
    pub fn contains(&self, internal: f64) -> bool {
        if !internal.is_finite() {
            return false;
        }
        match *self {
            Distribution::Float { low, high, step, .. } => {
                internal >= low
                    && internal <= high
                    && step.is_none_or(|s| {
                        // On the grid up to the rounding of low + k·s, which
                        // grows with the values' size against the step.
                        let k = (internal - low) / s;
                        let rounding = 4.0 * f64::EPSILON * (low.abs() / s + k.abs());
                        (k - k.round()).abs() < 1e-8 + rounding
                    })
            }
            Distribution::Int { low, high, step, .. } => {
                internal.fract() == 0.0
                    && internal >= low as f64
                    && internal <= high as f64
                    && (internal as i64 - low) % step == 0
            }
            Distribution::Categorical { ref choices } => {
                internal.fract() == 0.0 && internal >= 0.0 && (internal as usize) < choices.len()
            }
        }
    }

    /// The value the objective sees.
    pub fn to_external(&self, internal: f64) -> Value {
        match self {
            Distribution::Float { .. } => serde_json::json!(internal),
            Distribution::Int { .. } => serde_json::json!(internal as i64),
            Distribution::Categorical { choices } => choices[internal as usize].clone(),
        }
    }

    /// The internal value of an external one (an enqueued or told parameter);
    /// an error names it when it is outside the distribution.
    pub fn to_internal(&self, name: &str, value: &Value) -> Result<f64, TuneError> {
        let internal = match self {
            Distribution::Float { .. } | Distribution::Int { .. } => value.as_f64(),
            Distribution::Categorical { choices } => choices.iter().position(|c| c == value).map(|i| i as f64),
        };
        internal.filter(|&v| self.contains(v)).ok_or_else(|| TuneError::InvalidDistribution {
            name: name.into(),
            reason: format!("{value} is not in {}", self.describe()),
        })
    }

    /// A short description, such as `float [1e-05, 0.1] log`.
    pub fn describe(&self) -> String {
        match self {
            Distribution::Float { low, high, log, step } => {
                let extra = match (log, step) {
                    (true, _) => " log".to_string(),
                    (false, Some(s)) => format!(" step {s}"),
                    _ => String::new(),
                };
                format!("float [{low}, {high}]{extra}")
            }
            Distribution::Int { low, high, log, step } => {
                let extra = if *log {
                    " log".to_string()
                } else if *step != 1 {
                    format!(" step {step}")
                } else {
                    String::new()
                };
                format!("int [{low}, {high}]{extra}")
            }
            Distribution::Categorical { choices } => {
                format!("categorical [{}]", choices.iter().map(Value::to_string).collect::<Vec<_>>().join(", "))
            }
        }
    }

    /// How many values [`Self::grid`] lists, counted without listing them
    /// (at most `u64::MAX`); `None` for a continuous distribution.
    pub fn grid_len(&self) -> Option<u64> {
        match *self {
            Distribution::Float { step: None, low, high, .. } => (low == high).then_some(1),
            Distribution::Float { low, step: Some(s), .. } => {
                let n = ((self.top() - low) / s).round() + 1.0;
                Some(if n.is_finite() && n < u64::MAX as f64 { n as u64 } else { u64::MAX })
            }
            Distribution::Int { low, high, step, .. } => {
                Some(u64::try_from((i128::from(high) - i128::from(low)) / i128::from(step) + 1).unwrap_or(u64::MAX))
            }
            Distribution::Categorical { ref choices } => Some(choices.len() as u64),
        }
    }

    /// Every value of a finite distribution (ints, stepped floats,
    /// categoricals), for grid search; `None` for a continuous one. Count
    /// them first ([`Self::grid_len`]): a wide int range has billions.
    pub fn grid(&self) -> Option<Vec<f64>> {
        match *self {
            Distribution::Float { step: None, low, high, .. } => (low == high).then(|| vec![low]),
            Distribution::Float { low, step: Some(s), .. } => {
                let n = ((self.top() - low) / s).round() as i64 + 1;
                Some((0..n).map(|k| low + k as f64 * s).collect())
            }
            Distribution::Int { low, high, step, .. } => {
                Some((low..=high).step_by(step as usize).map(|v| v as f64).collect())
            }
            Distribution::Categorical { ref choices } => Some((0..choices.len()).map(|i| i as f64).collect()),
        }
    }
}

/// The widest int bound a space may have: 2^53, past which f64 — the
/// samplers' arithmetic — skips integers.
pub const MAX_EXACT_INT: i64 = 1 << 53;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn invalid_distributions_are_named_with_the_reason() {
        let cases = [
            (Distribution::float(1.0, 0.0), "low (1) is greater than high (0)"),
            (Distribution::log_float(0.0, 1.0), "a log distribution needs low > 0"),
            (Distribution::Int { low: 0, high: 5, log: true, step: 1 }, "a log distribution needs low ≥ 1"),
            (Distribution::Categorical { choices: vec![] }, "at least one choice"),
            (Distribution::Float { low: 0.0, high: 1.0, log: false, step: Some(0.0) }, "step must be > 0"),
            (Distribution::float(f64::NAN, 1.0), "must be finite"),
        ];
        for (d, expected) in cases {
            let err = d.validate("lr").unwrap_err().to_string();
            assert!(err.starts_with("parameter 'lr': ") && err.contains(expected), "{err}");
        }
    }

    proptest! {
        #[test]
        fn from_unit_stays_in_the_distribution(u in 0.0f64..1.0, low in -100.0f64..100.0, width in 0.0f64..100.0) {
            let high = low + width;
            for d in [
                Distribution::float(low, high),
                Distribution::Float { low, high, log: false, step: Some(0.7) },
                Distribution::log_float(low.abs() + 1e-3, low.abs() + 1e-3 + width),
                Distribution::int(low as i64, high as i64),
                Distribution::Int { low: low as i64, high: high as i64, log: false, step: 3 },
                Distribution::Int { low: 1, high: 1 + width as i64, log: true, step: 1 },
                Distribution::categorical(["a", "b", "c"]),
            ] {
                let v = d.from_unit(u);
                prop_assert!(d.contains(v), "{d:?} at u={u} gave {v}");
                prop_assert_eq!(d.to_internal("p", &d.to_external(v)).unwrap(), v);
            }
        }
    }

    #[test]
    fn grids_list_every_value() {
        assert_eq!(Distribution::Int { low: 1, high: 7, log: false, step: 3 }.grid(), Some(vec![1.0, 4.0, 7.0]));
        assert_eq!(Distribution::Float { low: 0.0, high: 1.0, log: false, step: Some(0.25) }.grid().unwrap().len(), 5);
        assert_eq!(Distribution::categorical(["sgd", "adam"]).grid(), Some(vec![0.0, 1.0]));
        assert_eq!(Distribution::float(0.0, 1.0).grid(), None);
    }

    #[test]
    fn external_values_round_trip() {
        let d = Distribution::categorical([serde_json::json!("adam"), serde_json::json!(3), serde_json::json!(true)]);
        assert_eq!(d.to_external(1.0), serde_json::json!(3));
        assert_eq!(d.to_internal("opt", &serde_json::json!(true)).unwrap(), 2.0);
        assert!(d.to_internal("opt", &serde_json::json!("sgd")).is_err());
        assert!(Distribution::int(0, 3).to_internal("n", &serde_json::json!(1.5)).is_err());
    }
}
