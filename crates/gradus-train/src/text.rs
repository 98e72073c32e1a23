//! Models on sparse inputs (text): an embedding bag, as fastText's
//! (Joulin et al. 2017, "Bag of Tricks for Efficient Text
//! Classification"), or a linear model read straight off the sparse rows.
//!
//! Each row's sparse entries (n-grams, see gradus-data's
//! `TextEncoder`) pick rows of the table `E`, weighted by their values:
//! `h = Σ vⱼ·E[idⱼ]`. With an embedding (`dim`), `h` has `dim` values and a
//! linear head maps `[h, dense inputs]` to the outputs: the fastText model.
//! Without, `E` has one column per output and `z = h + X_dense·W + b` is
//! linear, logistic or softmax regression on the sparse and dense inputs
//! together. The backward pass writes a gradient into the rows of `E` the
//! batch used and the head only, and says so ([`Model::sparse_grad`]), so
//! that a step costs what the batch touched, not the table's size.

use std::ops::Range;

use gradus_data::{Inputs, Rng};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::model::NamedParams;
use crate::{Loss, Model, Targets, TrainError};

/// The shape of a [`TextModel`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextSpec {
    /// Sparse inputs per row (hash buckets, summed over the text columns).
    pub n_sparse: usize,
    /// Dense inputs per row (the table's other columns, encoded).
    pub n_dense: usize,
    /// The embedding's width; `None`: a linear model.
    pub dim: Option<usize>,
    pub n_outputs: usize,
}

impl TextSpec {
    /// The width of a row of `E`.
    fn width(&self) -> usize {
        self.dim.unwrap_or(self.n_outputs)
    }

    /// The inputs of the head: the embedding and the dense inputs, or the
    /// dense inputs alone for a linear model.
    fn head_inputs(&self) -> usize {
        self.dim.unwrap_or(0) + self.n_dense
    }

    pub fn n_params(&self) -> Result<usize, TrainError> {
        if self.n_sparse == 0 || self.n_outputs == 0 || self.dim == Some(0) {
            return Err(TrainError::Mismatch(
                "a text model needs sparse inputs, an embedding of at least one value and an output".into(),
            ));
        }
        let table = self.n_sparse.checked_mul(self.width());
        let head = self.head_inputs().checked_mul(self.n_outputs).and_then(|w| w.checked_add(self.n_outputs));
        match table.zip(head).and_then(|(t, h)| t.checked_add(h)) {
            Some(n) if n <= crate::model_file::MAX_PARAMS => Ok(n),
            _ => Err(TrainError::Mismatch(format!(
                "the text model would have more than {} parameters",
                crate::model_file::MAX_PARAMS
            ))),
        }
    }

    /// What each sparse input adds to each output's logit when it alone
    /// has a value of 1, from a model's `params`: `n_sparse x n_outputs`,
    /// row-major. A linear model's table row itself; an embedding's row
    /// through the head, `E[i]·W[:dim]`. The inputs that move a prediction
    /// most towards a class are those with the largest scores for it.
    pub fn input_scores(&self, params: &[f32]) -> Vec<f32> {
        let (w, k) = (self.width(), self.n_outputs);
        let table = &params[..self.n_sparse * w];
        match self.dim {
            None => table.to_vec(),
            Some(d) => {
                let head = &params[self.n_sparse * w..self.n_sparse * w + d * k];
                let mut out = vec![0.0; self.n_sparse * k];
                for (e, o) in table.chunks_exact(w).zip(out.chunks_exact_mut(k)) {
                    for (&ej, hrow) in e.iter().zip(head.chunks_exact(k)) {
                        o.iter_mut().zip(hrow).for_each(|(o, &h)| *o += ej * h);
                    }
                }
                out
            }
        }
    }

    pub fn describe(&self) -> String {
        let dense = if self.n_dense > 0 { format!(" and {} dense inputs", self.n_dense) } else { String::new() };
        match self.dim {
            Some(d) => format!(
                "text: embedding bag of {} n-gram inputs x {d}{dense}, linear head to {}",
                self.n_sparse, self.n_outputs
            ),
            None => format!("text: linear on {} n-gram inputs{dense} to {}", self.n_sparse, self.n_outputs),
        }
    }
}

/// See the module docs. Parameters: `[E (n_sparse x width), W (head_inputs
/// x n_outputs), b (n_outputs)]`, row-major.
#[derive(Clone, Debug)]
pub struct TextModel {
    spec: TextSpec,
    params: Vec<f32>,
    penalised: [Range<usize>; 1],
    /// The ranges of the last gradient: the rows of `E` it touched, then the head.
    touched: Vec<Range<usize>>,
    /// The gradient buffer last written (its address and length): another
    /// one is zeroed whole before use, the same one only where it was
    /// written (it is taken to hold what this model last wrote there, as the
    /// trainer's buffer does; a new start forgets it).
    last_grad: Option<(usize, usize)>,
    /// Work buffers: the bag sums, the outputs and their gradients.
    h: Vec<f32>,
    z: Vec<f32>,
    dz: Vec<f32>,
    dh: Vec<f32>,
    /// The rows of `E` the current batch used, each once, and for each row
    /// the number of the last batch that used it (no sort per step).
    ids: Vec<u32>,
    seen: Vec<u32>,
    batch: u32,
}

impl TextModel {
    pub fn new(spec: &TextSpec) -> Result<Self, TrainError> {
        let n = spec.n_params()?;
        let head = spec.n_sparse * spec.width();
        let weights = head..head + spec.head_inputs() * spec.n_outputs;
        Ok(Self {
            spec: spec.clone(),
            params: vec![0.0; n],
            penalised: [weights],
            touched: Vec::new(),
            last_grad: None,
            h: Vec::new(),
            z: Vec::new(),
            dz: Vec::new(),
            dh: Vec::new(),
            ids: Vec::new(),
            seen: Vec::new(),
            batch: 0,
        })
    }

    fn table_len(&self) -> usize {
        self.spec.n_sparse * self.spec.width()
    }

    /// The bag sums `h` (rows x width) and the outputs `z` (rows x k) of `x`.
    fn forward(&self, x: Inputs, h: &mut Vec<f32>, z: &mut [f32]) {
        let sparse = x.sparse.expect("a text model reads sparse inputs");
        let (n, w, k, nd) = (x.rows(), self.spec.width(), self.spec.n_outputs, self.spec.n_dense);
        assert_eq!(sparse.cols(), self.spec.n_sparse, "sparse inputs of the model's width");
        assert_eq!(x.dense.cols(), nd, "dense inputs of the model's width");
        let (table, rest) = self.params.split_at(self.table_len());
        let (weights, bias) = rest.split_at(self.spec.head_inputs() * k);
        h.clear();
        h.resize(n * w, 0.0);
        for (i, hi) in h.chunks_exact_mut(w).enumerate() {
            let (ids, values) = sparse.row(i);
            bag_sum(table, ids, values, hi);
        }
        for i in 0..n {
            let zi = &mut z[i * k..(i + 1) * k];
            zi.copy_from_slice(bias);
            let head_in = self.spec.dim.map_or(&[][..], |_| &h[i * w..(i + 1) * w]);
            let inputs = head_in.iter().chain(x.dense.row(i));
            for (&a, wrow) in inputs.zip(weights.chunks_exact(k)) {
                if a != 0.0 {
                    zi.iter_mut().zip(wrow).for_each(|(z, &wv)| *z += a * wv);
                }
            }
            if self.spec.dim.is_none() {
                zi.iter_mut().zip(&h[i * w..(i + 1) * w]).for_each(|(z, &hv)| *z += hv);
            }
        }
    }
}

impl Model for TextModel {
    fn n_inputs(&self) -> usize {
        self.spec.n_dense
    }

    fn n_sparse_inputs(&self) -> usize {
        self.spec.n_sparse
    }

    fn n_outputs(&self) -> usize {
        self.spec.n_outputs
    }

    fn params(&self) -> &[f32] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// The head's weights; the table is left unpenalised (a penalty over
    /// every row at each step would cost what sparsity saves; AdamW's
    /// decoupled decay reaches the rows a step touches).
    fn penalised(&self) -> &[Range<usize>] {
        &self.penalised
    }

    fn sparse_grad(&self) -> Option<&[Range<usize>]> {
        Some(&self.touched)
    }

    /// fastText's start: the embedding uniform in ±1/dim, the head at zero;
    /// a linear model starts at zero.
    fn init_params(&mut self, rng: &mut Rng) {
        self.params.fill(0.0);
        self.last_grad = None;
        if let Some(d) = self.spec.dim {
            let bound = 1.0 / d as f32;
            let len = self.table_len();
            self.params[..len].iter_mut().for_each(|p| *p = rng.random_range(-bound..bound));
        }
    }

    fn forward_backward(&mut self, x: Inputs, y: Targets, loss: Loss, grad: &mut [f32]) -> f64 {
        assert_eq!(grad.len(), self.params.len(), "gradient has the parameters' shape");
        let (n, w, k) = (x.rows(), self.spec.width(), self.spec.n_outputs);
        // Zero what the last gradient wrote (or, for a new buffer, all of it).
        let key = (grad.as_ptr() as usize, grad.len());
        if self.last_grad == Some(key) {
            self.touched.iter().for_each(|r| grad[r.clone()].fill(0.0));
        } else {
            grad.fill(0.0);
        }
        self.last_grad = Some(key);
        let (mut h, mut z, mut dz, mut dh) = (
            std::mem::take(&mut self.h),
            std::mem::take(&mut self.z),
            std::mem::take(&mut self.dz),
            std::mem::take(&mut self.dh),
        );
        z.resize(n * k, 0.0);
        dz.resize(n * k, 0.0);
        self.forward(x, &mut h, &mut z);
        let value = loss.value_and_grad(&z, k, y, &mut dz);
        let table_len = self.table_len();
        let (g_table, g_rest) = grad.split_at_mut(table_len);
        let (g_weights, g_bias) = g_rest.split_at_mut(self.spec.head_inputs() * k);
        let weights = &self.params[table_len..table_len + self.spec.head_inputs() * k];
        // The head: dW = [h, x]ᵀ·dz, db = Σ dz, and dh = dz·W[:dim]ᵀ (or dz).
        dh.clear();
        dh.resize(n * w, 0.0);
        for i in 0..n {
            let dzi = &dz[i * k..(i + 1) * k];
            g_bias.iter_mut().zip(dzi).for_each(|(g, &d)| *g += d);
            let head_in = self.spec.dim.map_or(&[][..], |_| &h[i * w..(i + 1) * w]);
            for (&a, grow) in head_in.iter().chain(x.dense.row(i)).zip(g_weights.chunks_exact_mut(k)) {
                if a != 0.0 {
                    grow.iter_mut().zip(dzi).for_each(|(g, &d)| *g += a * d);
                }
            }
            let dhi = &mut dh[i * w..(i + 1) * w];
            match self.spec.dim {
                Some(d) => {
                    for (dv, wrow) in dhi.iter_mut().zip(weights[..d * k].chunks_exact(k)) {
                        *dv = wrow.iter().zip(dzi).map(|(&wv, &g)| wv * g).sum();
                    }
                }
                None => dhi.copy_from_slice(dzi),
            }
        }
        // The table: dE[id] += v·dh, and the rows touched.
        let sparse = x.sparse.expect("a text model reads sparse inputs");
        self.ids.clear();
        if self.seen.len() != self.spec.n_sparse || self.batch == u32::MAX {
            self.seen = vec![0; self.spec.n_sparse];
            self.batch = 0;
        }
        self.batch += 1;
        for i in 0..n {
            let (ids, values) = sparse.row(i);
            bag_scatter(g_table, ids, values, &dh[i * w..(i + 1) * w]);
            for &id in ids {
                if self.seen[id as usize] != self.batch {
                    self.seen[id as usize] = self.batch;
                    self.ids.push(id);
                }
            }
        }
        self.touched.clear();
        for &id in &self.ids {
            let r = id as usize * w..(id as usize + 1) * w;
            match self.touched.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => self.touched.push(r),
            }
        }
        self.touched.push(table_len..self.params.len());
        (self.h, self.z, self.dz, self.dh) = (h, z, dz, dh);
        value
    }

    fn predict(&self, x: Inputs, out: &mut [f32]) {
        assert_eq!(out.len(), x.rows() * self.spec.n_outputs, "out is n x n_outputs");
        let mut h = Vec::new();
        self.forward(x, &mut h, out);
    }

    fn named_params(&self) -> Vec<NamedParams> {
        let (w, k) = (self.spec.width(), self.spec.n_outputs);
        let table = self.table_len();
        let weights = self.spec.head_inputs() * k;
        let mut named =
            vec![NamedParams { name: "embedding.weight".into(), shape: vec![self.spec.n_sparse, w], range: 0..table }];
        if weights > 0 {
            named.push(NamedParams {
                name: "head.weight".into(),
                shape: vec![self.spec.head_inputs(), k],
                range: table..table + weights,
            });
        }
        named.push(NamedParams { name: "head.bias".into(), shape: vec![k], range: table + weights..self.params.len() });
        named
    }

    /// A linear model's outputs include the table's sums, which the
    /// rescaling must reach: every row of `E` is scaled too.
    fn rescale_outputs(&mut self, scale: &[f32], shift: &[f32]) {
        let k = self.spec.n_outputs;
        assert!(scale.len() == k && shift.len() == k, "one scale and shift per output");
        let table = self.table_len();
        if self.spec.dim.is_none() {
            for row in self.params[..table].chunks_exact_mut(k) {
                row.iter_mut().zip(scale).for_each(|(v, s)| *v *= s);
            }
        }
        let (w, b) = self.params[table..].split_at_mut(self.spec.head_inputs() * k);
        crate::model::rescale_output_layer(w, b, scale, shift);
    }
}

/// How many entries ahead [`bag_sum`] and [`bag_scatter`] ask for the row
/// they will read: the rows are scattered over a table larger than the
/// caches, so each is a wait on memory unless asked for early.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to bring `slice`'s first cache line (and the next, when
/// the row spans two) into the caches; nothing is read.
#[inline(always)]
fn prefetch(slice: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let (first, last) = (slice.as_ptr(), slice.as_ptr().wrapping_add(slice.len().saturating_sub(1)));
        // SAFETY: a prefetch reads nothing and cannot fault, whatever the
        // address; SSE is in every x86-64 CPU.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first.cast());
            _mm_prefetch::<_MM_HINT_T0>(last.cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slice;
}

/// Row `id` of a table whose rows have `w` values, for [`prefetch`];
/// empty past the end.
fn row_of<'a>(table: &'a [f32], ids: &[u32], at: usize, w: usize) -> &'a [f32] {
    ids.get(at).and_then(|&id| table.get(id as usize * w..(id as usize + 1) * w)).unwrap_or(&[])
}

crate::simd::multiversion! {
    /// `h += Σ vⱼ·E[idⱼ]`, rows of `E` of `h.len()` values.
    fn bag_sum(table: &[f32], ids: &[u32], values: &[f32], h: &mut [f32]) {
        let w = h.len();
        for (j, (&id, &v)) in ids.iter().zip(values).enumerate() {
            prefetch(row_of(table, ids, j + PREFETCH_AHEAD, w));
            let e = &table[id as usize * w..(id as usize + 1) * w];
            h.iter_mut().zip(e).for_each(|(a, &b)| *a += v * b);
        }
    }
}

crate::simd::multiversion! {
    /// `dE[idⱼ] += vⱼ·dh`, rows of `dE` of `dh.len()` values.
    fn bag_scatter(g_table: &mut [f32], ids: &[u32], values: &[f32], dh: &[f32]) {
        let w = dh.len();
        for (j, (&id, &v)) in ids.iter().zip(values).enumerate() {
            prefetch(row_of(g_table, ids, j + PREFETCH_AHEAD, w));
            let g = &mut g_table[id as usize * w..(id as usize + 1) * w];
            g.iter_mut().zip(dh).for_each(|(g, &d)| *g += v * d);
        }
    }
}

#[cfg(test)]
mod tests {
    use gradus_data::{MatRef, SparseRows, seeded_rng};

    use super::*;
    use crate::LinearModel;

    /// Five rows over 12 sparse and 2 dense inputs.
    fn batch() -> (SparseRows, Vec<f32>) {
        let mut s = SparseRows::new(12);
        s.push_row(&mut [(0, 0.5), (3, -0.7), (11, 0.2)]);
        s.push_row(&mut [(3, 1.0)]);
        s.push_row(&mut []);
        s.push_row(&mut [(5, 0.6), (6, 0.8), (0, -0.3)]);
        s.push_row(&mut [(11, -1.0), (5, 0.4)]);
        let dense = vec![0.3, -1.2, 0.0, 0.5, 1.5, -0.4, -0.2, 0.9, 0.7, 0.1];
        (s, dense)
    }

    fn perturbed(model: &mut TextModel, seed: u64) {
        let mut rng = seeded_rng(seed);
        model.init_params(&mut rng);
        model.params_mut().iter_mut().for_each(|p| *p += rng.random_range(-0.5..0.5));
    }

    #[test]
    fn gradients_match_finite_differences_with_and_without_an_embedding() {
        let (s, dense) = batch();
        let x = Inputs::new(MatRef::new(&dense, 5, 2).unwrap(), Some(s.view()));
        let cases = [
            (Some(4), 3, Loss::SoftmaxCrossEntropy, Targets::Classes(&[0, 2, 1, 1, 0])),
            (None, 3, Loss::SoftmaxCrossEntropy, Targets::Classes(&[0, 2, 1, 1, 0])),
            (Some(3), 1, Loss::BinaryCrossEntropy, Targets::Classes(&[0, 1, 1, 0, 1])),
            (None, 1, Loss::Mse, Targets::Real(&[0.5, -1.0, 2.0, 0.0, 1.0])),
        ];
        for (dim, k, loss, y) in cases {
            let spec = TextSpec { n_sparse: 12, n_dense: 2, dim, n_outputs: k };
            let mut model = TextModel::new(&spec).unwrap();
            perturbed(&mut model, 7);
            let mut grad = vec![f32::NAN; model.params().len()];
            model.forward_backward(x, y, loss, &mut grad);
            let touched = model.sparse_grad().unwrap().to_vec();
            let eps = 1e-3f32;
            for i in 0..model.params().len() {
                let p = model.params()[i];
                let mut scratch = vec![0.0; grad.len()];
                model.params_mut()[i] = p + eps;
                let plus = model.forward_backward(x, y, loss, &mut scratch);
                model.params_mut()[i] = p - eps;
                let minus = model.forward_backward(x, y, loss, &mut scratch);
                model.params_mut()[i] = p;
                let fd = ((plus - minus) / (2.0 * eps as f64)) as f32;
                assert!((grad[i] - fd).abs() < 2e-3, "{dim:?} {loss:?}: param {i}: {} vs {fd}", grad[i]);
                // Outside the touched ranges the gradient is zero.
                if !touched.iter().any(|r| r.contains(&i)) {
                    assert_eq!(grad[i], 0.0, "param {i} is not touched");
                }
            }
            // Rows 1, 2, 4, 7-10 of E are used by no row: not touched.
            let w = dim.unwrap_or(k);
            for id in [1, 2, 4, 7, 8, 9, 10] {
                assert!(!touched.iter().any(|r| r.contains(&(id * w))), "row {id}");
            }
        }
    }

    #[test]
    fn the_sparse_linear_model_equals_a_dense_one_on_the_same_rows() {
        let (s, dense) = batch();
        // The same rows, densified: 12 sparse columns then 2 dense.
        let mut wide = vec![0.0f32; 5 * 14];
        for i in 0..5 {
            let (ids, values) = s.row(i);
            for (&id, &v) in ids.iter().zip(values) {
                wide[i * 14 + id as usize] = v;
            }
            wide[i * 14 + 12..i * 14 + 14].copy_from_slice(&dense[i * 2..i * 2 + 2]);
        }
        let spec = TextSpec { n_sparse: 12, n_dense: 2, dim: None, n_outputs: 3 };
        let mut sparse_model = TextModel::new(&spec).unwrap();
        perturbed(&mut sparse_model, 3);
        let mut dense_model = LinearModel::new(14, 3, true);
        dense_model.params_mut().copy_from_slice(sparse_model.params());
        let y = Targets::Classes(&[2, 0, 1, 1, 0]);
        let (mut gs, mut gd) = (vec![0.0; 45], vec![0.0; 45]);
        let xs = Inputs::new(MatRef::new(&dense, 5, 2).unwrap(), Some(s.view()));
        let xd = MatRef::new(&wide, 5, 14).unwrap();
        let ls = sparse_model.forward_backward(xs, y, Loss::SoftmaxCrossEntropy, &mut gs);
        let ld = dense_model.forward_backward(xd.into(), y, Loss::SoftmaxCrossEntropy, &mut gd);
        assert!((ls - ld).abs() < 1e-6);
        for (a, b) in gs.iter().zip(&gd) {
            assert!((a - b).abs() < 1e-6, "{gs:?}\n{gd:?}");
        }
        let (mut ps, mut pd) = (vec![0.0; 15], vec![0.0; 15]);
        sparse_model.predict(xs, &mut ps);
        dense_model.predict(xd.into(), &mut pd);
        for (a, b) in ps.iter().zip(&pd) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn the_trainer_steps_a_sparse_model_as_it_steps_the_dense_one() {
        use gradus_data::{Dataset, Matrix, Target};

        use crate::{NoObserver, OptimizerConfig, TrainConfig, Trainer};
        // 40 rows: the five of `batch` again and again, with labels.
        let (s, dense) = batch();
        let picks: Vec<usize> = (0..40).map(|i| (i * 3) % 5).collect();
        let sparse = s.select_rows(&picks);
        let dense: Vec<f32> = picks.iter().flat_map(|&i| dense[i * 2..i * 2 + 2].to_vec()).collect();
        let mut wide = vec![0.0f32; 40 * 14];
        for i in 0..40 {
            let (ids, values) = sparse.row(i);
            ids.iter().zip(values).for_each(|(&id, &v)| wide[i * 14 + id as usize] = v);
            wide[i * 14 + 12..i * 14 + 14].copy_from_slice(&dense[i * 2..i * 2 + 2]);
        }
        let y = Target::Classes {
            labels: (0..40).map(|i| (i % 3) as u32).collect(),
            classes: vec!["a".into(), "b".into(), "c".into()],
        };
        let names = |n: usize| (0..n).map(|i| format!("x{i}")).collect::<Vec<_>>();
        let mut text_data = Dataset::numeric("t", Matrix::from_vec(40, 2, dense).unwrap(), y.clone(), &names(2), "y");
        text_data.sparse = Some(sparse);
        let wide_data = Dataset::numeric("w", Matrix::from_vec(40, 14, wide).unwrap(), y, &names(14), "y");
        // Plain SGD steps the touched rows exactly as a dense step; clipping
        // measures the same norm either way.
        let config = TrainConfig {
            optimizer: OptimizerConfig::sgd(0.0),
            lr: 0.5,
            epochs: 4,
            batch_size: Some(4),
            clip_norm: Some(0.3),
            tol: 0.0,
            ..TrainConfig::default()
        };
        let trainer = Trainer::new(config).unwrap();
        let mut text_model = TextModel::new(&TextSpec { n_sparse: 12, n_dense: 2, dim: None, n_outputs: 3 }).unwrap();
        let mut linear = LinearModel::new(14, 3, true);
        let a = trainer.fit(&mut text_model, Loss::SoftmaxCrossEntropy, &text_data, None, &mut NoObserver).unwrap();
        let b = trainer.fit(&mut linear, Loss::SoftmaxCrossEntropy, &wide_data, None, &mut NoObserver).unwrap();
        assert_eq!(a.steps, b.steps);
        for (p, q) in text_model.params().iter().zip(linear.params()) {
            assert!((p - q).abs() < 1e-5, "{:?}\n{:?}", text_model.params(), linear.params());
        }
        assert!((a.final_loss - b.final_loss).abs() < 1e-5);
        // The data and the model must agree on the sparse inputs' width.
        let mut narrow = TextModel::new(&TextSpec { n_sparse: 10, n_dense: 2, dim: Some(2), n_outputs: 3 }).unwrap();
        let err = trainer.fit(&mut narrow, Loss::SoftmaxCrossEntropy, &text_data, None, &mut NoObserver).unwrap_err();
        assert!(err.to_string().contains("12 sparse features, the model takes 10"), "{err}");
    }

    #[test]
    fn an_inputs_score_is_what_it_adds_to_each_logit_alone() {
        for dim in [None, Some(3)] {
            let spec = TextSpec { n_sparse: 12, n_dense: 0, dim, n_outputs: 2 };
            let mut model = TextModel::new(&spec).unwrap();
            perturbed(&mut model, 5);
            let scores = spec.input_scores(model.params());
            let (mut zero, mut one) = (vec![0.0; 2], vec![0.0; 2]);
            let empty: Vec<f32> = Vec::new();
            for i in [0usize, 7] {
                let mut only = SparseRows::new(12);
                only.push_row(&mut [(i as u32, 1.0)]);
                let mut none = SparseRows::new(12);
                none.push_row(&mut []);
                model.predict(Inputs::new(MatRef::new(&empty, 1, 0).unwrap(), Some(only.view())), &mut one);
                model.predict(Inputs::new(MatRef::new(&empty, 1, 0).unwrap(), Some(none.view())), &mut zero);
                for c in 0..2 {
                    assert!((one[c] - zero[c] - scores[i * 2 + c]).abs() < 1e-5, "{dim:?} input {i} class {c}");
                }
            }
        }
    }

    #[test]
    fn a_reused_gradient_buffer_is_cleared_where_the_last_batch_wrote() {
        let (s, dense) = batch();
        let spec = TextSpec { n_sparse: 12, n_dense: 2, dim: Some(2), n_outputs: 2 };
        let mut model = TextModel::new(&spec).unwrap();
        perturbed(&mut model, 1);
        let y = Targets::Classes(&[0, 1]);
        let mut grad = vec![0.0; model.params().len()];
        let first = s.select_rows(&[0, 1]);
        let second = s.select_rows(&[3, 4]);
        let x1 = Inputs::new(MatRef::new(&dense[..4], 2, 2).unwrap(), Some(first.view()));
        let x2 = Inputs::new(MatRef::new(&dense[6..], 2, 2).unwrap(), Some(second.view()));
        model.forward_backward(x1, y, Loss::SoftmaxCrossEntropy, &mut grad);
        model.forward_backward(x2, y, Loss::SoftmaxCrossEntropy, &mut grad);
        let mut fresh = vec![0.0; grad.len()];
        model.forward_backward(x2, y, Loss::SoftmaxCrossEntropy, &mut fresh);
        assert_eq!(grad, fresh);
        // Row 3 (the first batch's only) holds no stale gradient.
        assert!(grad[6..8].iter().all(|&g| g == 0.0));
    }
}
