//! Grid search: every combination of a finite space's values, each exactly
//! once — also across threads and processes, because the points are enqueued
//! as waiting trials when the study is created and the storage hands each
//! waiting trial to exactly one caller.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Sampler, stable_hash};
use crate::{Distribution, FrozenTrial, SearchSpace, StudyView, TuneError};

#[derive(Clone, Debug)]
pub struct GridSampler {
    points: Vec<BTreeMap<String, Value>>,
    seed: u64,
}

impl GridSampler {
    /// A grid over `space`, whose distributions must all be finite (ints,
    /// stepped floats, categoricals); points are enqueued in a seeded
    /// shuffled order.
    pub fn new(space: SearchSpace, seed: u64) -> Result<Self, TuneError> {
        let size = space.grid_size().ok_or_else(|| {
            let infinite: Vec<&str> =
                space.iter().filter(|(_, d)| d.grid_len().is_none()).map(|(n, _)| n.as_str()).collect();
            TuneError::InvalidArgument {
                name: "grid",
                reason: match infinite.as_slice() {
                    [] => "more points than can be counted".into(),
                    names => format!(
                        "every parameter needs a finite set of values (int, float with step, categorical); {} {} not",
                        names.join(", "),
                        if names.len() == 1 { "is" } else { "are" }
                    ),
                },
            }
        })?;
        if size > 1_000_000 {
            let reason = if size == u64::MAX {
                "more points than can be counted".to_string()
            } else {
                format!("{size} points is too many (at most 1000000)")
            };
            return Err(TuneError::InvalidArgument { name: "grid", reason });
        }
        let mut points = vec![BTreeMap::new()];
        for (name, dist) in space.iter() {
            let values = dist.grid().expect("finite, checked above");
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |&v| {
                        let mut p = p.clone();
                        p.insert(name.clone(), dist.to_external(v));
                        p
                    })
                })
                .collect();
        }
        points.sort_by_key(|p| {
            stable_hash(&[&seed.to_le_bytes(), serde_json::to_string(p).unwrap_or_default().as_bytes()])
        });
        Ok(Self { points, seed })
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl Sampler for GridSampler {
    fn sample_independent(
        &self,
        _view: &StudyView,
        trial: &FrozenTrial,
        name: &str,
        distribution: &Distribution,
    ) -> f64 {
        // Grid trials carry every space parameter fixed; this serves only a
        // parameter outside the space, from a seeded draw over its grid.
        let u = (stable_hash(&[&self.seed.to_le_bytes(), &trial.number.to_le_bytes(), name.as_bytes()]) >> 11) as f64
            / (1u64 << 53) as f64;
        distribution.from_unit(u)
    }

    fn initial_trials(&self) -> Vec<BTreeMap<String, Value>> {
        self.points.clone()
    }

    fn is_closed(&self) -> bool {
        true
    }
}
