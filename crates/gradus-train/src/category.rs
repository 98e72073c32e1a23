//! Learned embeddings of categorical columns: each one-hot block of inputs
//! (one input per level of a column with many levels) is replaced by `dim`
//! learned values, the block times a levels × dim matrix — for a one-hot
//! row, the level's own row of it, an embedding lookup (as PyTorch's
//! `nn.Embedding`). The first Dense layer then reads dim values per column
//! instead of one per level: fewer weights, shared across the hidden units.
//! The inputs outside the blocks pass through first, in order.

use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef as FaerRef, Par};
use gradus_data::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::layer::Layer;

/// Which input blocks an MLP embeds, and in how many values.
///
/// | field | meaning | range |
/// |---|---|---|
/// | `blocks` | each block's first input and length (a column's one-hot inputs), in order | disjoint, within the inputs |
/// | `dim` | values of each block's embedding | ≥ 1 |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategorySpec {
    pub blocks: Vec<[usize; 2]>,
    pub dim: usize,
}

impl CategorySpec {
    /// Checks it against `width` inputs.
    pub fn validate(&self, width: usize) -> Result<(), TrainError> {
        if self.blocks.is_empty() || self.dim == 0 {
            return Err(TrainError::Mismatch("category embeddings need a block of inputs and dim ≥ 1".into()));
        }
        let mut end = 0;
        for &[start, len] in &self.blocks {
            if len == 0 || start < end || start + len > width {
                return Err(TrainError::Mismatch(format!(
                    "category embeddings: the block of {len} inputs from input {start} is empty, overlaps another \
                     or lies past the {width} inputs"
                )));
            }
            end = start + len;
        }
        Ok(())
    }

    /// The embedding matrices' parameters.
    pub fn n_params(&self) -> usize {
        self.blocks.iter().map(|b| b[1] * self.dim).sum()
    }

    /// Values per row after the layer, from `width` before it.
    pub fn output_width(&self, width: usize) -> usize {
        width - self.blocks.iter().map(|b| b[1]).sum::<usize>() + self.blocks.len() * self.dim
    }
}

/// The layer (see the module docs): its slice is each block's levels × dim
/// matrix, row-major, in block order.
#[derive(Clone, Debug)]
pub(crate) struct CategoryEmbedding {
    spec: CategorySpec,
    width: usize,
    /// The inputs outside every block, in order.
    passed: Vec<usize>,
    /// Each block's inputs and embeddings, gathered for the GEMMs.
    block_in: Vec<f32>,
    block_out: Vec<f32>,
}

impl CategoryEmbedding {
    pub fn new(spec: CategorySpec, width: usize) -> Self {
        let mut inside = vec![false; width];
        for &[start, len] in &spec.blocks {
            inside[start..start + len].iter_mut().for_each(|v| *v = true);
        }
        let passed = (0..width).filter(|&i| !inside[i]).collect();
        Self { spec, width, passed, block_in: Vec::new(), block_out: Vec::new() }
    }

    /// Every block's matrix: the whole slice.
    fn matrices(&self) -> Range<usize> {
        0..self.spec.n_params()
    }

    fn matrix(&self, b: usize) -> Range<usize> {
        let start: usize = self.spec.blocks[..b].iter().map(|b| b[1] * self.spec.dim).sum();
        start..start + self.spec.blocks[b][1] * self.spec.dim
    }

    /// The layer's outputs for `n` rows of `input`, gathering each block into `block_in`.
    fn run(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], block_in: &mut Vec<f32>) {
        let (w, ow, d, n_passed) = (self.width, self.output_width(), self.spec.dim, self.passed.len());
        for row in 0..n {
            let (x, o) = (&input[row * w..(row + 1) * w], &mut out[row * ow..(row + 1) * ow]);
            for (slot, &i) in o.iter_mut().zip(&self.passed) {
                *slot = x[i];
            }
        }
        let mut block_out = vec![0.0f32; n * d];
        for (b, &[start, len]) in self.spec.blocks.iter().enumerate() {
            block_in.clear();
            for row in 0..n {
                block_in.extend_from_slice(&input[row * w + start..row * w + start + len]);
            }
            let a = FaerRef::from_row_major_slice(&block_in[..n * len], n, len);
            let e = FaerRef::from_row_major_slice(&params[self.matrix(b)], len, d);
            matmul(MatMut::from_row_major_slice_mut(&mut block_out, n, d), Accum::Replace, a, e, 1.0f32, Par::Seq);
            gradus_optim::clear_upper_state();
            let at = n_passed + b * d;
            for row in 0..n {
                out[row * ow + at..row * ow + at + d].copy_from_slice(&block_out[row * d..(row + 1) * d]);
            }
        }
    }
}

impl Layer for CategoryEmbedding {
    fn kind(&self) -> &'static str {
        "category"
    }

    fn input_width(&self) -> usize {
        self.width
    }

    fn output_width(&self) -> usize {
        self.spec.output_width(self.width)
    }

    fn n_params(&self) -> usize {
        self.spec.n_params()
    }

    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        // One "weight" per block: category.0.weight, … as named by the network.
        vec![("weight", vec![self.spec.n_params()], self.matrices())]
    }

    fn penalised(&self) -> Vec<Range<usize>> {
        vec![self.matrices()]
    }

    /// N(0, 1/levels) per block: a one-hot row's embedding then starts with
    /// the spread a standardised input has, whatever the number of levels.
    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        for (b, &[_, len]) in self.spec.blocks.iter().enumerate() {
            let std = 1.0 / (len as f32).sqrt();
            for p in &mut params[self.matrix(b)] {
                let e: f32 = StandardNormal.sample(rng);
                *p = std * e;
            }
        }
    }

    fn forward(&mut self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        let mut block_in = std::mem::take(&mut self.block_in);
        self.run(params, input, n, out, &mut block_in);
        self.block_in = block_in;
    }

    fn backward(
        &mut self,
        params: &[f32],
        input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        grad: &mut [f32],
        input_grad: bool,
    ) {
        let (w, ow, d, n_passed) = (self.width, self.output_width(), self.spec.dim, self.passed.len());
        if input_grad {
            scratch.resize(n * w, 0.0);
            for row in 0..n {
                for (j, &i) in self.passed.iter().enumerate() {
                    scratch[row * w + i] = delta[row * ow + j];
                }
            }
        }
        for (b, &[start, len]) in self.spec.blocks.iter().enumerate() {
            self.block_in.clear();
            self.block_out.clear();
            let at = n_passed + b * d;
            for row in 0..n {
                self.block_in.extend_from_slice(&input[row * w + start..row * w + start + len]);
                self.block_out.extend_from_slice(&delta[row * ow + at..row * ow + at + d]);
            }
            let a = FaerRef::from_row_major_slice(&self.block_in[..n * len], n, len);
            let dz = FaerRef::from_row_major_slice(&self.block_out[..n * d], n, d);
            let range = self.matrix(b);
            // dE = Xᵀ·dZ.
            let ge = MatMut::from_row_major_slice_mut(&mut grad[range.clone()], len, d);
            matmul(ge, Accum::Replace, a.transpose(), dz, 1.0f32, Par::Seq);
            if input_grad {
                // dX = dZ·Eᵀ, into the block's place.
                let e = FaerRef::from_row_major_slice(&params[range], len, d);
                let mut dx = vec![0.0f32; n * len];
                matmul(
                    MatMut::from_row_major_slice_mut(&mut dx, n, len),
                    Accum::Replace,
                    dz,
                    e.transpose(),
                    1.0f32,
                    Par::Seq,
                );
                for row in 0..n {
                    scratch[row * w + start..row * w + start + len].copy_from_slice(&dx[row * len..(row + 1) * len]);
                }
            }
            gradus_optim::clear_upper_state();
        }
        if input_grad {
            std::mem::swap(delta, scratch);
        }
    }

    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], scratch: &mut Vec<f32>) {
        self.run(params, input, n, out, scratch);
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::check_gradients;
    use gradus_data::seeded_rng;
    use proptest::prelude::*;
    use rand::Rng as _;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn category_embedding_gradients_match_finite_differences(
            before in 0usize..3, len1 in 1usize..5, between in 0usize..3, len2 in 0usize..4, after in 0usize..3,
            dim in 1usize..4, n in 1usize..4, seed: u64,
        ) {
            let mut blocks = vec![[before, len1]];
            if len2 > 0 {
                blocks.push([before + len1 + between, len2]);
            }
            let width = before + len1 + between + len2 + after;
            let spec = CategorySpec { blocks, dim };
            spec.validate(width).unwrap();
            let mut layer = CategoryEmbedding::new(spec, width);
            let mut rng = seeded_rng(seed);
            let x: Vec<f32> = (0..n * width).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            // Linear in the weights and the inputs: differences are exact but for rounding.
            check_gradients(&mut layer, &x, n, 0.25, seed);
        }
    }

    #[test]
    fn a_one_hot_row_gets_its_levels_row_and_other_inputs_pass_through_first() {
        // Inputs: a, then a 3-level one-hot block, then b.
        let spec = CategorySpec { blocks: vec![[1, 3]], dim: 2 };
        let layer = CategoryEmbedding::new(spec.clone(), 5);
        assert_eq!(layer.output_width(), 4);
        let e = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let x = [7.0, 0.0, 1.0, 0.0, 8.0, 9.0, 0.0, 0.0, 1.0, 10.0];
        let mut out = vec![0.0; 8];
        layer.predict(&e, &x, 2, &mut out, &mut Vec::new());
        assert_eq!(out, [7.0, 8.0, 3.0, 4.0, 9.0, 10.0, 5.0, 6.0]);
        for (bad, width) in [(vec![[3, 3]], 5), (vec![[0, 2], [1, 2]], 5), (vec![[0, 0]], 5), (vec![], 5)] {
            assert!(CategorySpec { blocks: bad, dim: 2 }.validate(width).is_err());
        }
    }
}
