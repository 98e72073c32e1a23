//! Models on sparse inputs (text): an embedding bag, as fastText's
//! (Joulin et al. 2017, "Bag of Tricks for Efficient Text
//! Classification"), or a linear model read straight off the sparse rows.
//!
//! Each row's sparse entries (n-grams, see gradus-data's
//! `TextEncoder`) pick rows of the table `E`, weighted by their values:
//! `h = Σ vⱼ·E[idⱼ]`. With an embedding (`dim`), `h` has `dim` values and a
//! linear head maps `[h, dense inputs]` to the outputs: the fastText model;
//! or a small MLP head, one hidden layer of ReLU units (`hidden`).
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
    /// With an embedding: the ReLU units of the head's one hidden layer;
    /// `None`: a linear head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
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

    /// The head's layers, as (inputs, outputs) of each affine map.
    fn head_layers(&self) -> Vec<(usize, usize)> {
        match self.hidden {
            None => vec![(self.head_inputs(), self.n_outputs)],
            Some(units) => vec![(self.head_inputs(), units), (units, self.n_outputs)],
        }
    }

    pub fn n_params(&self) -> Result<usize, TrainError> {
        if self.n_sparse == 0 || self.n_outputs == 0 || self.dim == Some(0) || self.hidden == Some(0) {
            return Err(TrainError::Mismatch(
                "a text model needs sparse inputs, an embedding of at least one value, a hidden layer of at least \
                 one unit if any, and an output"
                    .into(),
            ));
        }
        if self.hidden.is_some() && self.dim.is_none() {
            return Err(TrainError::Mismatch("a text model's hidden layer needs an embedding (dim)".into()));
        }
        let table = self.n_sparse.checked_mul(self.width());
        let head = self.head_layers().iter().try_fold(0usize, |sum, &(i, o)| {
            i.checked_mul(o).and_then(|w| w.checked_add(o)).and_then(|n| sum.checked_add(n))
        });
        match table.zip(head).and_then(|(t, h)| t.checked_add(h)) {
            Some(n) if n <= crate::model_file::MAX_PARAMS => Ok(n),
            _ => Err(TrainError::Mismatch(format!(
                "the text model would have more than {} parameters",
                crate::model_file::MAX_PARAMS
            ))),
        }
    }

    /// What each sparse input adds to each output's logit when it alone
    /// has a value of 1 (and the dense inputs are 0), from a model's
    /// `params`: `n_sparse x n_outputs`, row-major. A linear model's table
    /// row itself; an embedding's row through the head, `E[i]·W[:dim]` for a
    /// linear one, `head(E[i]) - head(0)` for an MLP. The inputs that move a
    /// prediction most towards a class are those with the largest scores for it.
    pub fn input_scores(&self, params: &[f32]) -> Vec<f32> {
        let (w, k) = (self.width(), self.n_outputs);
        let (table, head) = params.split_at(self.n_sparse * w);
        if self.dim.is_none() {
            return table.to_vec();
        }
        let mut hidden = vec![0.0; self.hidden.unwrap_or(0)];
        let mut at_zero = vec![0.0; k];
        self.head_forward(head, &[], &mut hidden, &mut at_zero);
        let mut out = vec![0.0; self.n_sparse * k];
        for (e, o) in table.chunks_exact(w).zip(out.chunks_exact_mut(k)) {
            self.head_forward(head, e, &mut hidden, o);
            o.iter_mut().zip(&at_zero).for_each(|(o, z)| *o -= z);
        }
        out
    }

    /// The head's outputs `z` for its inputs `a` (missing ones are 0), its
    /// hidden units' values (after the ReLU) left in `hidden`; `head` is the
    /// head's parameters.
    fn head_forward(&self, head: &[f32], a: &[f32], hidden: &mut [f32], z: &mut [f32]) {
        let k = self.n_outputs;
        match self.hidden {
            None => {
                let (weights, bias) = head.split_at(self.head_inputs() * k);
                affine(a, weights, bias, z);
            }
            Some(units) => {
                let (w1, rest) = head.split_at(self.head_inputs() * units);
                let (b1, rest) = rest.split_at(units);
                let (w2, b2) = rest.split_at(units * k);
                affine(a, w1, b1, hidden);
                hidden.iter_mut().for_each(|u| *u = u.max(0.0));
                affine(hidden, w2, b2, z);
            }
        }
    }

    pub fn describe(&self) -> String {
        let dense = if self.n_dense > 0 { format!(" and {} dense inputs", self.n_dense) } else { String::new() };
        let head = self.hidden.map_or("linear head".to_string(), |u| format!("MLP head of {u} ReLU units"));
        match self.dim {
            Some(d) => format!(
                "text: embedding bag of {} n-gram inputs x {d}{dense}, {head} to {}",
                self.n_sparse, self.n_outputs
            ),
            None => format!("text: linear on {} n-gram inputs{dense} to {}", self.n_sparse, self.n_outputs),
        }
    }
}

/// See the module docs. Parameters: `[E (n_sparse x width), W (head_inputs
/// x n_outputs), b (n_outputs)]`, row-major; with a hidden layer of `u`
/// units, `[E, W1 (head_inputs x u), b1 (u), W2 (u x n_outputs), b2]`.
#[derive(Clone, Debug)]
pub struct TextModel {
    spec: TextSpec,
    params: Vec<f32>,
    /// The head's weight matrices.
    penalised: Vec<Range<usize>>,
    /// The ranges of the last gradient: the rows of `E` it touched, then the head.
    touched: Vec<Range<usize>>,
    /// The gradient buffer last written (its address and length): another
    /// one is zeroed whole before use, the same one only where it was
    /// written (it is taken to hold what this model last wrote there, as the
    /// trainer's buffer does; a new start forgets it).
    last_grad: Option<(usize, usize)>,
    /// Work buffers: the bag sums, the hidden units (after the ReLU), the
    /// outputs, and the gradients of the outputs, hidden units and sums.
    h: Vec<f32>,
    r: Vec<f32>,
    z: Vec<f32>,
    dz: Vec<f32>,
    dr: Vec<f32>,
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
        let mut at = spec.n_sparse * spec.width();
        let mut penalised = Vec::new();
        for (i, o) in spec.head_layers() {
            penalised.push(at..at + i * o);
            at += i * o + o;
        }
        Ok(Self {
            spec: spec.clone(),
            params: vec![0.0; n],
            penalised,
            touched: Vec::new(),
            last_grad: None,
            h: Vec::new(),
            r: Vec::new(),
            z: Vec::new(),
            dz: Vec::new(),
            dr: Vec::new(),
            dh: Vec::new(),
            ids: Vec::new(),
            seen: Vec::new(),
            batch: 0,
        })
    }

    fn table_len(&self) -> usize {
        self.spec.n_sparse * self.spec.width()
    }

    /// The bag sums `h` (rows x width), the hidden units `r` (rows x
    /// hidden, after the ReLU) and the outputs `z` (rows x k) of `x`.
    fn forward(&self, x: Inputs, h: &mut Vec<f32>, r: &mut Vec<f32>, z: &mut [f32]) {
        let sparse = x.sparse.expect("a text model reads sparse inputs");
        let (n, w, k, nd) = (x.rows(), self.spec.width(), self.spec.n_outputs, self.spec.n_dense);
        let units = self.spec.hidden.unwrap_or(0);
        assert_eq!(sparse.cols(), self.spec.n_sparse, "sparse inputs of the model's width");
        assert_eq!(x.dense.cols(), nd, "dense inputs of the model's width");
        let (table, head) = self.params.split_at(self.table_len());
        h.clear();
        h.resize(n * w, 0.0);
        r.clear();
        r.resize(n * units, 0.0);
        let mut a = Vec::with_capacity(self.spec.head_inputs());
        for i in 0..n {
            let (ids, values) = sparse.row(i);
            let hi = &mut h[i * w..(i + 1) * w];
            bag_sum(table, ids, values, hi);
            let zi = &mut z[i * k..(i + 1) * k];
            a.clear();
            if self.spec.dim.is_some() {
                a.extend_from_slice(hi);
            }
            a.extend_from_slice(x.dense.row(i));
            self.spec.head_forward(head, &a, &mut r[i * units..(i + 1) * units], zi);
            if self.spec.dim.is_none() {
                zi.iter_mut().zip(&*hi).for_each(|(z, &hv)| *z += hv);
            }
        }
    }
}

/// `out = b + Σᵢ aᵢ·W[i]` for the rows `W[i]` of `W` (`out.len()` wide);
/// inputs past the end of `a` are 0.
fn affine(a: &[f32], weights: &[f32], bias: &[f32], out: &mut [f32]) {
    out.copy_from_slice(bias);
    for (&ai, wrow) in a.iter().zip(weights.chunks_exact(out.len())) {
        if ai != 0.0 {
            out.iter_mut().zip(wrow).for_each(|(o, &wv)| *o += ai * wv);
        }
    }
}

/// The gradients of [`affine`] for `dout`: `dW[i] += aᵢ·dout`, `db += dout`,
/// and `da[i] = W[i]·dout` for the first `da.len()` inputs.
fn affine_backward(
    a: &[f32],
    weights: &[f32],
    dout: &[f32],
    g_weights: &mut [f32],
    g_bias: &mut [f32],
    da: &mut [f32],
) {
    let k = dout.len();
    g_bias.iter_mut().zip(dout).for_each(|(g, &d)| *g += d);
    for (&ai, grow) in a.iter().zip(g_weights.chunks_exact_mut(k)) {
        if ai != 0.0 {
            grow.iter_mut().zip(dout).for_each(|(g, &d)| *g += ai * d);
        }
    }
    for (d, wrow) in da.iter_mut().zip(weights.chunks_exact(k)) {
        *d = wrow.iter().zip(dout).map(|(&wv, &g)| wv * g).sum();
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
    /// An MLP head's hidden layer starts He-uniform (its output layer at zero).
    fn init_params(&mut self, rng: &mut Rng) {
        self.params.fill(0.0);
        self.last_grad = None;
        if let Some(d) = self.spec.dim {
            let bound = 1.0 / d as f32;
            let len = self.table_len();
            self.params[..len].iter_mut().for_each(|p| *p = rng.random_range(-bound..bound));
        }
        if self.spec.hidden.is_some() {
            let bound = (6.0 / self.spec.head_inputs() as f32).sqrt();
            let hidden = self.penalised[0].clone();
            self.params[hidden].iter_mut().for_each(|p| *p = rng.random_range(-bound..bound));
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
        let (mut h, mut r, mut z, mut dz, mut dr, mut dh) = (
            std::mem::take(&mut self.h),
            std::mem::take(&mut self.r),
            std::mem::take(&mut self.z),
            std::mem::take(&mut self.dz),
            std::mem::take(&mut self.dr),
            std::mem::take(&mut self.dh),
        );
        z.resize(n * k, 0.0);
        dz.resize(n * k, 0.0);
        self.forward(x, &mut h, &mut r, &mut z);
        let value = loss.value_and_grad(&z, k, y, &mut dz);
        let table_len = self.table_len();
        let (g_table, g_head) = grad.split_at_mut(table_len);
        let head = &self.params[table_len..];
        // The head, backwards: dW = aᵀ·d(out), db = Σ d(out), and the sums'
        // gradient dh = dz·W[:dim]ᵀ through the layers (or dz, linear).
        dh.clear();
        dh.resize(n * w, 0.0);
        let units = self.spec.hidden.unwrap_or(0);
        dr.clear();
        dr.resize(units, 0.0);
        let mut a = Vec::with_capacity(self.spec.head_inputs());
        let dim = self.spec.dim.unwrap_or(0);
        for i in 0..n {
            let dzi = &dz[i * k..(i + 1) * k];
            a.clear();
            a.extend_from_slice(&h[i * w..i * w + dim]);
            a.extend_from_slice(x.dense.row(i));
            let dhi = &mut dh[i * w..(i + 1) * w];
            match self.spec.hidden {
                None => {
                    let (weights, _) = head.split_at(a.len() * k);
                    let (g_weights, g_bias) = g_head.split_at_mut(a.len() * k);
                    let da = if self.spec.dim.is_some() { &mut dhi[..] } else { &mut [][..] };
                    affine_backward(&a, weights, dzi, g_weights, g_bias, da);
                    if self.spec.dim.is_none() {
                        dhi.copy_from_slice(dzi);
                    }
                }
                Some(units) => {
                    let split = a.len() * units + units;
                    let ((w1, _), (w2, _)) = (head[..split].split_at(split - units), head[split..].split_at(units * k));
                    let (g1, g2) = g_head.split_at_mut(split);
                    let ((g_w1, g_b1), (g_w2, g_b2)) = (g1.split_at_mut(split - units), g2.split_at_mut(units * k));
                    let ri = &r[i * units..(i + 1) * units];
                    affine_backward(ri, w2, dzi, g_w2, g_b2, &mut dr);
                    // Through the ReLU: no gradient where a unit was off.
                    dr.iter_mut().zip(ri).for_each(|(d, &rv)| *d = if rv > 0.0 { *d } else { 0.0 });
                    affine_backward(&a, w1, &dr, g_w1, g_b1, dhi);
                }
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
        (self.h, self.r, self.z, self.dz, self.dr, self.dh) = (h, r, z, dz, dr, dh);
        value
    }

    fn predict(&self, x: Inputs, out: &mut [f32]) {
        assert_eq!(out.len(), x.rows() * self.spec.n_outputs, "out is n x n_outputs");
        self.forward(x, &mut Vec::new(), &mut Vec::new(), out);
    }

    /// PyTorch's names: `embedding`, then `head` (a Linear) or `head.0`
    /// and `head.2` (a Sequential of Linear, ReLU, Linear).
    fn named_params(&self) -> Vec<NamedParams> {
        let table = self.table_len();
        let mut named = vec![NamedParams {
            name: "embedding.weight".into(),
            shape: vec![self.spec.n_sparse, self.spec.width()],
            range: 0..table,
        }];
        let layers = self.spec.head_layers();
        let mut at = table;
        for (l, &(i, o)) in layers.iter().enumerate() {
            let prefix = if layers.len() == 1 { "head".to_string() } else { format!("head.{}", 2 * l) };
            if i > 0 {
                named.push(NamedParams { name: format!("{prefix}.weight"), shape: vec![i, o], range: at..at + i * o });
            }
            named.push(NamedParams {
                name: format!("{prefix}.bias"),
                shape: vec![o],
                range: at + i * o..at + i * o + o,
            });
            at += i * o + o;
        }
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
        let last = self.penalised.last().expect("a head").clone();
        let (w, b) = self.params[last.start..].split_at_mut(last.len());
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
            (Some(4), None, 3, Loss::SoftmaxCrossEntropy, Targets::Classes(&[0, 2, 1, 1, 0])),
            (None, None, 3, Loss::SoftmaxCrossEntropy, Targets::Classes(&[0, 2, 1, 1, 0])),
            (Some(3), None, 1, Loss::BinaryCrossEntropy, Targets::Classes(&[0, 1, 1, 0, 1])),
            (None, None, 1, Loss::Mse, Targets::Real(&[0.5, -1.0, 2.0, 0.0, 1.0])),
            // An MLP head.
            (Some(4), Some(5), 3, Loss::SoftmaxCrossEntropy, Targets::Classes(&[0, 2, 1, 1, 0])),
            (Some(3), Some(2), 1, Loss::BinaryCrossEntropy, Targets::Classes(&[0, 1, 1, 0, 1])),
            (Some(2), Some(3), 1, Loss::Mse, Targets::Real(&[0.5, -1.0, 2.0, 0.0, 1.0])),
        ];
        for (dim, hidden, k, loss, y) in cases {
            let spec = TextSpec { n_sparse: 12, n_dense: 2, dim, hidden, n_outputs: k };
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
                assert!((grad[i] - fd).abs() < 2e-3, "{dim:?} {hidden:?} {loss:?}: param {i}: {} vs {fd}", grad[i]);
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
        let spec = TextSpec { n_sparse: 12, n_dense: 2, dim: None, hidden: None, n_outputs: 3 };
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
        let mut text_model =
            TextModel::new(&TextSpec { n_sparse: 12, n_dense: 2, dim: None, hidden: None, n_outputs: 3 }).unwrap();
        let mut linear = LinearModel::new(14, 3, true);
        let a = trainer.fit(&mut text_model, Loss::SoftmaxCrossEntropy, &text_data, None, &mut NoObserver).unwrap();
        let b = trainer.fit(&mut linear, Loss::SoftmaxCrossEntropy, &wide_data, None, &mut NoObserver).unwrap();
        assert_eq!(a.steps, b.steps);
        for (p, q) in text_model.params().iter().zip(linear.params()) {
            assert!((p - q).abs() < 1e-5, "{:?}\n{:?}", text_model.params(), linear.params());
        }
        assert!((a.final_loss - b.final_loss).abs() < 1e-5);
        // The data and the model must agree on the sparse inputs' width.
        let mut narrow =
            TextModel::new(&TextSpec { n_sparse: 10, n_dense: 2, dim: Some(2), hidden: None, n_outputs: 3 }).unwrap();
        let err = trainer.fit(&mut narrow, Loss::SoftmaxCrossEntropy, &text_data, None, &mut NoObserver).unwrap_err();
        assert!(err.to_string().contains("12 sparse features, the model takes 10"), "{err}");
    }

    #[test]
    fn an_inputs_score_is_what_it_adds_to_each_logit_alone() {
        for (dim, hidden) in [(None, None), (Some(3), None), (Some(3), Some(4))] {
            let spec = TextSpec { n_sparse: 12, n_dense: 0, dim, hidden, n_outputs: 2 };
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
    fn rescaled_outputs_are_the_outputs_scaled_and_shifted_for_every_head() {
        let (s, dense) = batch();
        let x = Inputs::new(MatRef::new(&dense, 5, 2).unwrap(), Some(s.view()));
        for (dim, hidden) in [(None, None), (Some(3), None), (Some(3), Some(4))] {
            let spec = TextSpec { n_sparse: 12, n_dense: 2, dim, hidden, n_outputs: 2 };
            let mut model = TextModel::new(&spec).unwrap();
            perturbed(&mut model, 9);
            let (mut before, mut after) = (vec![0.0; 10], vec![0.0; 10]);
            model.predict(x, &mut before);
            model.rescale_outputs(&[2.0, -0.5], &[1.0, 3.0]);
            model.predict(x, &mut after);
            for (i, (b, a)) in before.iter().zip(&after).enumerate() {
                let want = if i % 2 == 0 { 2.0 * b + 1.0 } else { -0.5 * b + 3.0 };
                assert!((a - want).abs() < 1e-5, "{dim:?} {hidden:?}: {a} vs {want}");
            }
        }
        // A hidden layer needs an embedding to read.
        let spec = TextSpec { n_sparse: 12, n_dense: 2, dim: None, hidden: Some(4), n_outputs: 2 };
        assert!(TextModel::new(&spec).unwrap_err().to_string().contains("needs an embedding"));
    }

    #[test]
    fn a_reused_gradient_buffer_is_cleared_where_the_last_batch_wrote() {
        let (s, dense) = batch();
        let spec = TextSpec { n_sparse: 12, n_dense: 2, dim: Some(2), hidden: None, n_outputs: 2 };
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
