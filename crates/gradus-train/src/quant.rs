//! int8 post-training quantisation of a dense layer, and the int8 kernel
//! that predicts with it.
//!
//! Inputs: an affine u8 code per input column, calibrated on rows the
//! model saw — the range [lo_k, hi_k] column k took, 0 included:
//! `u_k = clamp(round(x_k / t_k) + z_k, 0, 255)`, `t_k = (hi_k − lo_k) / 255`,
//! `z_k = round(−lo_k / t_k)`. A column of its own range keeps its detail
//! where one range for all would not (a standardised pixel that is rarely
//! lit reaches 50 where most stay within ±3). The steps fold into the
//! weights: `x_k·W_kj = (u_k − z_k)·(t_k·W_kj)`.
//! Weights: per output channel, symmetric — `q_kj = round(t_k·W_kj / s_j)`
//! in −127…127, `s_j = max_k |t_k·W_kj| / 127`. Then
//! `y_j = s_j·(Σ_k u_k·q_kj − Σ_k z_k·q_kj) + b_j`: the products and sums
//! are integers, computed with AVX-512 VNNI's `vpdpbusd` (64 u8×i8
//! products into 16 i32 sums an instruction) where the CPU has it, and a
//! portable loop (vectorised for AVX2 by the same runtime dispatch as the
//! other kernels) elsewhere — never by turning the weights back into f32.

/// Output channels in a block of the packed weights: one 512-bit register
/// of i32 sums.
const LANES: usize = 16;

/// A dense layer's weights in int8 and how its inputs are coded.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedDense {
    pub fan_in: usize,
    pub fan_out: usize,
    /// The int8 weights, fan_in × fan_out row-major (as the f32 ones),
    /// the input steps folded in.
    pub q: Vec<i8>,
    /// Per output channel: the weight scale s_j.
    pub scales: Vec<f32>,
    /// Per input column: its calibrated range [lo, hi] (lo ≤ 0 ≤ hi).
    pub ranges: Vec<[f32; 2]>,
    /// How the inputs are coded, from their calibrated ranges.
    code: InputCode,
    /// The weights packed for the kernel: blocks of [`LANES`] outputs, in
    /// each groups of four inputs, four bytes an output.
    packed: Vec<i8>,
    /// Σ_k z_k·q_kj per output: the zero points' part of the sums.
    offsets: Vec<i32>,
}

/// How a layer codes its inputs as u8: `u_k = clamp(round(x_k·inv_k +
/// zero_k), 0, 255)` for input column k.
#[derive(Clone, Debug, PartialEq)]
pub struct InputCode {
    inv_steps: Vec<f32>,
    zeros: Vec<f32>,
}

/// The most a column's folded zero point may be (in codes) for
/// [`QuantizedDense::unscaled_code`]: f32's 24 bits then keep it to within
/// 2^-7 of a code.
const MAX_FOLDED_ZERO: f64 = 65_536.0;

/// A column's input code: its step t and zero point z, for its range
/// widened to hold 0.
fn code(range: [f32; 2]) -> (f32, f32) {
    let (lo, hi) = (range[0].min(0.0), range[1].max(0.0));
    let step = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    (step, (-lo / step).round().clamp(0.0, 255.0))
}

impl QuantizedDense {
    /// Quantises the f32 weights `w` (fan_in × fan_out, row-major) for
    /// inputs whose column k took values in `ranges[k]`.
    pub fn new(w: &[f32], fan_in: usize, fan_out: usize, ranges: Vec<[f32; 2]>) -> Self {
        assert_eq!(w.len(), fan_in * fan_out, "w is fan_in x fan_out");
        assert_eq!(ranges.len(), fan_in, "a range per input");
        let steps: Vec<f32> = ranges.iter().map(|&r| code(r).0).collect();
        let folded: Vec<f32> = w.iter().enumerate().map(|(i, &v)| v * steps[i / fan_out]).collect();
        // A column that was 0 on every calibration row (a dead ReLU unit)
        // has no step of its own (1): it does not set the scales, or its
        // weight would coarsen every other; its own weight is clamped.
        let live: Vec<usize> = (0..fan_in).filter(|&k| ranges[k][0].min(0.0) < ranges[k][1].max(0.0)).collect();
        // An output whose weights are all too small for a normal f32 scale
        // (a dead unit's weights, decayed by an L2 penalty towards 0) has
        // scale 1 and weights 0: a subnormal scale would change its output
        // by less than 1e-33 and slow every multiply by it (a 512-unit
        // student with 21 such outputs predicted 30% slower).
        let scales: Vec<f32> = (0..fan_out)
            .map(|j| {
                let max = live.iter().map(|&k| folded[k * fan_out + j].abs()).fold(0.0f32, f32::max);
                if max / 127.0 >= f32::MIN_POSITIVE { max / 127.0 } else { 1.0 }
            })
            .collect();
        let q: Vec<i8> = folded
            .iter()
            .enumerate()
            .map(|(i, &v)| (v / scales[i % fan_out]).round().clamp(-127.0, 127.0) as i8)
            .collect();
        Self::from_parts(q, scales, fan_in, fan_out, ranges)
    }

    /// A layer of int8 weights `q` with their `scales` and the input
    /// columns' `ranges`, as a file holds them.
    pub fn from_parts(q: Vec<i8>, scales: Vec<f32>, fan_in: usize, fan_out: usize, ranges: Vec<[f32; 2]>) -> Self {
        let (k4, blocks) = (fan_in.div_ceil(4), fan_out.div_ceil(LANES));
        let mut packed = vec![0i8; blocks * k4 * LANES * 4];
        for k in 0..fan_in {
            for j in 0..fan_out {
                let (block, lane) = (j / LANES, j % LANES);
                packed[((block * k4 + k / 4) * LANES + lane) * 4 + k % 4] = q[k * fan_out + j];
            }
        }
        let codes: Vec<(f32, f32)> = ranges.iter().map(|&r| code(r)).collect();
        let offsets = (0..fan_out)
            .map(|j| (0..fan_in).map(|k| codes[k].1 as i32 * i32::from(q[k * fan_out + j])).sum())
            .collect();
        let code = InputCode {
            inv_steps: codes.iter().map(|c| 1.0 / c.0).collect(),
            zeros: codes.iter().map(|c| c.1).collect(),
        };
        Self { fan_in, fan_out, q, scales, ranges, code, packed, offsets }
    }

    /// The weights as the int8 layer computes with them: q·s/t.
    pub fn dequantized(&self) -> Vec<f32> {
        self.q
            .iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) * self.scales[i % self.fan_out] * self.code.inv_steps[i / self.fan_out])
            .collect()
    }

    /// The input code for inputs before a per-column affine map
    /// `x' = (x − offset_k) / scale_k` (a scaler's), the map folded in:
    /// `u_k = round(x_k·inv_k/scale_k + zero_k − offset_k·inv_k/scale_k)`,
    /// so that the layer reads codes of the unscaled inputs and no scaled
    /// copy of them is made. It rounds as coding the scaled value
    /// does but for values within f32's error of a half code. `None` when
    /// a column's offset is more than [`MAX_FOLDED_ZERO`] codes from 0, as
    /// f32 would then blur its codes.
    pub fn unscaled_code(&self, offset: &[f64], scale: &[f64]) -> Option<InputCode> {
        if offset.len() != self.fan_in || scale.len() != self.fan_in {
            return None;
        }
        let mut code = InputCode { inv_steps: Vec::with_capacity(self.fan_in), zeros: Vec::with_capacity(self.fan_in) };
        for k in 0..self.fan_in {
            let inv = f64::from(self.code.inv_steps[k]) / scale[k];
            let zero = f64::from(self.code.zeros[k]) - offset[k] * inv;
            if !(inv.is_finite() && zero.abs() <= MAX_FOLDED_ZERO) {
                return None;
            }
            code.inv_steps.push(inv as f32);
            code.zeros.push(zero as f32);
        }
        Some(code)
    }

    /// Whether its input code takes every negative input to 0 (each
    /// column's zero point is 0, as for inputs calibrated after a ReLU): a
    /// ReLU before the layer then changes none of its codes.
    pub fn absorbs_relu(&self) -> bool {
        self.code.zeros.iter().all(|&z| z == 0.0)
    }

    /// How the layer codes its inputs, from their calibrated ranges.
    pub fn code(&self) -> &InputCode {
        &self.code
    }

    /// `out = x·W + bias` for `n` rows of `x`, in int8 (see the module
    /// docs), [`BLOCK_ROWS`] rows at a time so that their codes stay in
    /// cache.
    pub fn forward(&self, x: &[f32], n: usize, bias: &[f32], out: &mut [f32]) {
        let mut codes = Vec::new();
        for first in (0..n).step_by(BLOCK_ROWS) {
            let m = BLOCK_ROWS.min(n - first);
            self.code.encode(&x[first * self.fan_in..(first + m) * self.fan_in], &mut codes);
            self.forward_codes(&codes, m, bias, &mut out[first * self.fan_out..(first + m) * self.fan_out]);
        }
    }

    /// [`Self::forward`] for `n` rows already coded ([`InputCode::encode`]
    /// with [`Self::code`] or [`Self::unscaled_code`]).
    pub fn forward_codes(&self, codes: &[u8], n: usize, bias: &[f32], out: &mut [f32]) {
        assert_eq!(out.len(), n * self.fan_out, "out is n x fan_out");
        self.run(codes, n, bias, Out::Values(out));
    }

    /// [`Self::forward_codes`] with the outputs coded for the next int8
    /// layer by its input `code` (of this layer's outputs' width) as they
    /// leave the registers, into `out` ([`InputCode::encode`]'s layout):
    /// the codes [`InputCode::encode`] would give the outputs, with no
    /// pass over them in f32.
    pub fn forward_codes_coded(&self, codes: &[u8], n: usize, bias: &[f32], code: &InputCode, out: &mut Vec<u8>) {
        assert_eq!(code.inv_steps.len(), self.fan_out, "the next layer reads this one's outputs");
        let padded = |v: &[f32]| {
            let mut p = v.to_vec();
            p.resize(self.fan_out.div_ceil(LANES) * LANES, 0.0);
            p
        };
        let (inv, zero) = (padded(&code.inv_steps), padded(&code.zeros));
        let stride = self.fan_out.div_ceil(4) * 4;
        out.clear();
        out.resize(n * stride, 0);
        self.run(codes, n, bias, Out::Codes { codes: out, stride, inv: &inv, zero: &zero });
    }

    fn run(&self, codes: &[u8], n: usize, bias: &[f32], out: Out<'_>) {
        let (k4, blocks) = (self.fan_in.div_ceil(4), self.fan_out.div_ceil(LANES));
        assert_eq!(codes.len(), n * k4 * 4, "codes are n x fan_in rounded up to 4");
        // Per output, padded to whole blocks: s_j, and b_j − s_j·Σ z_k·q_kj.
        let mut scale = vec![0.0f32; blocks * LANES];
        let mut offset = vec![0.0f32; blocks * LANES];
        for j in 0..self.fan_out {
            scale[j] = self.scales[j];
            offset[j] = bias[j] - self.scales[j] * self.offsets[j] as f32;
        }
        let kernel = Kernel { packed: &self.packed, k4, scale: &scale, offset: &offset, fan_out: self.fan_out };
        dot(codes, n, &kernel, out);
    }
}

/// Where [`dot`] puts a layer's outputs.
enum Out<'a> {
    /// As values, `fan_out` a row.
    Values(&'a mut [f32]),
    /// Coded for the next layer (`inv` and `zero` per output, padded to
    /// whole blocks), a row every `stride` bytes.
    Codes { codes: &'a mut [u8], stride: usize, inv: &'a [f32], zero: &'a [f32] },
}

/// What [`dot`] needs of a layer: its packed weights (`k4` groups of four
/// inputs) and, per output padded to whole blocks, the scale and offset
/// that turn integer sums into outputs.
struct Kernel<'a> {
    packed: &'a [i8],
    k4: usize,
    scale: &'a [f32],
    offset: &'a [f32],
    fan_out: usize,
}

impl InputCode {
    /// The code of columns `range` alone.
    pub(crate) fn columns(&self, range: std::ops::Range<usize>) -> InputCode {
        InputCode { inv_steps: self.inv_steps[range.clone()].to_vec(), zeros: self.zeros[range].to_vec() }
    }

    /// The values the codes of the row `x` stand for: `(u_k − zero_k)/inv_k`.
    #[cfg(test)]
    pub(crate) fn decoded(&self, x: &[f32]) -> Vec<f32> {
        let mut codes = Vec::new();
        self.encode(x, &mut codes);
        (0..x.len()).map(|k| (f32::from(codes[k]) - self.zeros[k]) / self.inv_steps[k]).collect()
    }

    /// A code of `times`·width columns: each column's code `times` times
    /// in a row (for planes of values, a column's each).
    pub(crate) fn repeated(&self, times: usize) -> InputCode {
        let repeat = |v: &[f32]| v.iter().flat_map(|&x| std::iter::repeat_n(x, times)).collect();
        InputCode { inv_steps: repeat(&self.inv_steps), zeros: repeat(&self.zeros) }
    }

    /// The codes of the rows `x` (of this code's width) into `codes`, a
    /// row's width rounded up to four bytes (the padding codes as 0 and
    /// meets zero weights).
    pub fn encode(&self, x: &[f32], codes: &mut Vec<u8>) {
        let width = self.inv_steps.len();
        let stride = width.div_ceil(4) * 4;
        let n = x.len().checked_div(width).unwrap_or(0);
        codes.clear();
        codes.resize(n * stride, 0);
        if width > 0 {
            encode(x, &self.inv_steps, &self.zeros, codes, stride);
        }
    }
}

/// The range each column of the `n` × `width` rows `x` takes.
pub fn column_ranges(x: &[f32], width: usize) -> Vec<[f32; 2]> {
    let mut ranges = vec![[f32::INFINITY, f32::NEG_INFINITY]; width];
    for row in x.chunks_exact(width) {
        for (r, &v) in ranges.iter_mut().zip(row) {
            r[0] = r[0].min(v);
            r[1] = r[1].max(v);
        }
    }
    ranges.iter().map(|r| if r[0] <= r[1] { *r } else { [0.0, 0.0] }).collect()
}

/// Rows [`QuantizedDense::forward`] codes at a time.
const BLOCK_ROWS: usize = 256;

crate::simd::multiversion! {
    /// The u8 codes of rows of inputs (of `inv_steps`' width), a row of
    /// `out` every `stride` bytes: rounded half up, within 0…255 (a NaN
    /// codes as 0). Clamped first, so that the conversion can truncate
    /// without checks and the loop vectorises.
    fn encode(x: &[f32], inv_steps: &[f32], zeros: &[f32], out: &mut [u8], stride: usize) {
        for (row, out) in x.chunks_exact(inv_steps.len()).zip(out.chunks_exact_mut(stride)) {
            for (((o, &v), &inv), &zero) in out.iter_mut().zip(row).zip(inv_steps).zip(zeros) {
                *o = code_of(v, inv, zero);
            }
        }
    }
}

/// The u8 code of `v`: `v·inv + zero` rounded half up, within 0…255 (a
/// NaN codes as 0).
#[inline(always)]
#[allow(clippy::manual_clamp, reason = "clamp keeps a NaN; max and min drop it")]
fn code_of(v: f32, inv: f32, zero: f32) -> u8 {
    // `max` and `min` drop a NaN: the value is in [0.5, 255.5].
    let y = (v * inv + zero).max(0.0).min(255.0) + 0.5;
    // SAFETY: y is finite and in [0.5, 255.5], within i32.
    unsafe { y.to_int_unchecked::<i32>() as u8 }
}

/// `out[i][j] = scale_j·Σ_k codes[i][k]·q[k][j] + offset_j` for `n` rows of
/// `k4`·4 codes: the integer sums of a block of outputs are turned into
/// outputs as they leave the registers.
fn dot(codes: &[u8], n: usize, layer: &Kernel<'_>, out: Out<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni") {
        // SAFETY: the CPU has the features the kernel is compiled with.
        unsafe { dot_vnni(codes, n, layer, out) };
        return;
    }
    dot_portable(codes, n, layer, out);
}

crate::simd::multiversion! {
    /// [`dot`]'s portable loop.
    fn dot_portable(codes: &[u8], n: usize, layer: &Kernel<'_>, out: Out<'_>) {
        let Kernel { packed, k4, scale, offset, fan_out } = *layer;
        let mut out = out;
        for i in 0..n {
            let row = &codes[i * k4 * 4..(i + 1) * k4 * 4];
            for b in 0..fan_out.div_ceil(LANES) {
                let mut acc = [0i32; LANES];
                for g in 0..k4 {
                    let w = &packed[(b * k4 + g) * LANES * 4..(b * k4 + g + 1) * LANES * 4];
                    let u = &row[g * 4..g * 4 + 4];
                    for lane in 0..LANES {
                        let wl = &w[lane * 4..lane * 4 + 4];
                        acc[lane] += (0..4).map(|t| i32::from(u[t]) * i32::from(wl[t])).sum::<i32>();
                    }
                }
                for j in b * LANES..(b * LANES + LANES).min(fan_out) {
                    let v = acc[j - b * LANES] as f32 * scale[j] + offset[j];
                    match &mut out {
                        Out::Values(out) => out[i * fan_out + j] = v,
                        Out::Codes { codes, stride, inv, zero } => codes[i * *stride + j] = code_of(v, inv[j], zero[j]),
                    }
                }
            }
        }
    }
}

/// Rows [`dot_vnni`] computes at once, each weight load shared by all.
const ROWS: usize = 8;

/// [`dot`] with `vpdpbusd`: [`ROWS`] rows at a time share each load of 16
/// outputs' weights for four inputs; each row's four codes are broadcast
/// from memory and, two blocks of outputs at a time, feed both.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dot_vnni(codes: &[u8], n: usize, layer: &Kernel<'_>, mut out: Out<'_>) {
    use std::arch::x86_64::*;
    let Kernel { packed, k4, scale, offset, fan_out } = *layer;
    let (stride, blocks) = (k4 * 4, fan_out.div_ceil(LANES));
    assert!(
        codes.len() >= n * stride
            && packed.len() >= blocks * k4 * LANES * 4
            && scale.len() >= blocks * LANES
            && offset.len() >= blocks * LANES
            && match &out {
                Out::Values(out) => out.len() >= n * fan_out,
                Out::Codes { codes, stride, inv, zero } => {
                    *stride >= fan_out
                        && codes.len() >= n * stride
                        && inv.len() >= blocks * LANES
                        && zero.len() >= blocks * LANES
                }
            }
    );
    // Integer sums of a block of 16 outputs to outputs (or their codes),
    // stored (masked past fan_out).
    let store = |acc: &[__m512i], i: usize, b: usize, out: &mut Out<'_>| {
        // SAFETY: see below; `scale` and `offset` (and `inv` and `zero`) hold whole blocks.
        let s = unsafe { _mm512_loadu_ps(scale.as_ptr().add(b * LANES)) };
        let o = unsafe { _mm512_loadu_ps(offset.as_ptr().add(b * LANES)) };
        let lanes = (fan_out - b * LANES).min(LANES);
        let mask: __mmask16 = if lanes == LANES { !0 } else { (1 << lanes) - 1 };
        for (r, a) in acc.iter().enumerate() {
            // A multiply then an add, as the portable loop rounds.
            let v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(*a), s), o);
            match out {
                // SAFETY: row i + r of `out` holds fan_out values, of which the mask stores the block's.
                Out::Values(out) => unsafe {
                    _mm512_mask_storeu_ps(out.as_mut_ptr().add((i + r) * fan_out + b * LANES), mask, v)
                },
                Out::Codes { codes, stride, inv, zero } => {
                    // As `code_of`: v·inv + zero (NaN to 0 by max's second
                    // operand), within 0…255, plus a half, truncated.
                    let inv = unsafe { _mm512_loadu_ps(inv.as_ptr().add(b * LANES)) };
                    let zero = unsafe { _mm512_loadu_ps(zero.as_ptr().add(b * LANES)) };
                    let y = _mm512_add_ps(_mm512_mul_ps(v, inv), zero);
                    let y = _mm512_min_ps(_mm512_max_ps(y, _mm512_setzero_ps()), _mm512_set1_ps(255.0));
                    let u = _mm512_cvttps_epi32(_mm512_add_ps(y, _mm512_set1_ps(0.5)));
                    // SAFETY: row i + r of `codes` holds `stride` ≥ fan_out bytes; the mask stores the block's.
                    unsafe {
                        _mm512_mask_cvtepi32_storeu_epi8(
                            codes.as_mut_ptr().add((i + r) * *stride + b * LANES).cast(),
                            mask,
                            u,
                        )
                    };
                }
            }
        }
    };
    let mut i = 0;
    while i < n {
        let rows = (n - i).min(ROWS);
        // SAFETY (all pointer reads below): rows i..i+rows of `codes` hold
        // `stride` bytes each, and block b of `packed` k4·64 bytes (asserted above).
        let c = unsafe { codes.as_ptr().add(i * stride) };
        let mut b = 0;
        // Two blocks at a time for whole groups of rows: each broadcast
        // code feeds two products.
        while rows == ROWS && b + 2 <= blocks {
            let w0 = unsafe { packed.as_ptr().add(b * k4 * LANES * 4) };
            let w1 = unsafe { packed.as_ptr().add((b + 1) * k4 * LANES * 4) };
            let mut acc0 = [_mm512_setzero_si512(); ROWS];
            let mut acc1 = [_mm512_setzero_si512(); ROWS];
            for g in 0..k4 {
                let wg0 = unsafe { _mm512_loadu_si512(w0.add(g * LANES * 4).cast()) };
                let wg1 = unsafe { _mm512_loadu_si512(w1.add(g * LANES * 4).cast()) };
                for r in 0..ROWS {
                    let word = unsafe { c.add(r * stride + g * 4).cast::<i32>().read_unaligned() };
                    let u = _mm512_set1_epi32(word);
                    acc0[r] = _mm512_dpbusd_epi32(acc0[r], u, wg0);
                    acc1[r] = _mm512_dpbusd_epi32(acc1[r], u, wg1);
                }
            }
            store(&acc0, i, b, &mut out);
            store(&acc1, i, b + 1, &mut out);
            b += 2;
        }
        while b < blocks {
            let w = unsafe { packed.as_ptr().add(b * k4 * LANES * 4) };
            let mut acc = [_mm512_setzero_si512(); ROWS];
            if rows == ROWS {
                for g in 0..k4 {
                    let wg = unsafe { _mm512_loadu_si512(w.add(g * LANES * 4).cast()) };
                    for (r, a) in acc.iter_mut().enumerate() {
                        let word = unsafe { c.add(r * stride + g * 4).cast::<i32>().read_unaligned() };
                        *a = _mm512_dpbusd_epi32(*a, _mm512_set1_epi32(word), wg);
                    }
                }
            } else {
                for g in 0..k4 {
                    let wg = unsafe { _mm512_loadu_si512(w.add(g * LANES * 4).cast()) };
                    for (r, a) in acc.iter_mut().enumerate().take(rows) {
                        let word = unsafe { c.add(r * stride + g * 4).cast::<i32>().read_unaligned() };
                        *a = _mm512_dpbusd_epi32(*a, _mm512_set1_epi32(word), wg);
                    }
                }
            }
            store(&acc[..rows], i, b, &mut out);
            b += 1;
        }
        i += rows;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradus_data::seeded_rng;
    use rand::Rng as _;

    fn random(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
        let mut rng = seeded_rng(seed);
        (0..n).map(|_| rng.random_range(lo..hi)).collect()
    }

    #[test]
    fn the_kernels_agree_with_the_integer_sums() {
        for (n, fan_in, fan_out) in [(1, 1, 1), (3, 5, 17), (9, 64, 40), (4, 7, 16), (17, 30, 33)] {
            let w = random(fan_in * fan_out, -1.0, 1.0, 1);
            let layer = QuantizedDense::new(&w, fan_in, fan_out, vec![[-2.0, 3.0]; fan_in]);
            let k4 = fan_in.div_ceil(4);
            let padded = fan_out.div_ceil(LANES) * LANES;
            let mut rng = seeded_rng(2);
            let codes: Vec<u8> = (0..n * k4 * 4).map(|_| rng.random()).collect();
            let (scale, offset) = (random(padded, 0.001, 0.1, 3), random(padded, -5.0, 5.0, 4));
            // The padding inputs (codes past fan_in) meet zero weights.
            let mut expected = vec![0.0f32; n * fan_out];
            for i in 0..n {
                for j in 0..fan_out {
                    let sum: i32 = (0..fan_in)
                        .map(|k| i32::from(codes[i * k4 * 4 + k]) * i32::from(layer.q[k * fan_out + j]))
                        .sum();
                    expected[i * fan_out + j] = sum as f32 * scale[j] + offset[j];
                }
            }
            let kernel = Kernel { packed: &layer.packed, k4, scale: &scale, offset: &offset, fan_out };
            let mut portable = vec![0.0; n * fan_out];
            dot_portable(&codes, n, &kernel, Out::Values(&mut portable));
            let mut dispatched = vec![0.0; n * fan_out];
            dot(&codes, n, &kernel, Out::Values(&mut dispatched));
            assert_eq!(portable, expected, "{n}x{fan_in}x{fan_out}");
            assert_eq!(dispatched, expected, "{n}x{fan_in}x{fan_out}");
        }
    }

    #[test]
    fn a_column_dead_on_the_calibration_rows_does_not_coarsen_the_others() {
        // Column 0 was 0 on every row (a dead ReLU unit) and has the largest weight.
        let (fan_in, fan_out) = (8, 3);
        let w: Vec<f32> =
            (0..fan_in * fan_out).map(|i| if i < fan_out { 5.0 } else { 0.01 * (i as f32 - 12.0) }).collect();
        let mut ranges = vec![[0.0, 1.0]; fan_in];
        ranges[0] = [0.0, 0.0];
        let layer = QuantizedDense::new(&w, fan_in, fan_out, ranges);
        let x = [0.0, 0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 1.0];
        let mut out = vec![0.0; fan_out];
        layer.forward(&x, 1, &[0.0; 3], &mut out);
        for j in 0..fan_out {
            let exact: f32 = (0..fan_in).map(|k| x[k] * w[k * fan_out + j]).sum();
            // The live weights (≤ 0.12) keep steps of 0.12/127, not 5/127.
            assert!((out[j] - exact).abs() < 0.01, "{} vs {exact}", out[j]);
        }
    }

    #[test]
    fn an_output_of_subnormal_weights_is_zero_in_int8_with_a_normal_scale() {
        let (fan_in, fan_out) = (4, 2);
        // Output 1's weights are subnormal (a dead unit's, decayed to ~0).
        let w = [0.5, 1e-40, -0.25, -3e-41, 0.75, 2e-42, 1.0, 0.0];
        let layer = QuantizedDense::new(&w, fan_in, fan_out, vec![[0.0, 1.0]; fan_in]);
        assert!(layer.scales.iter().all(|s| s.is_normal()), "{:?}", layer.scales);
        assert!((0..fan_in).all(|k| layer.q[k * fan_out + 1] == 0));
        let mut out = vec![0.0; fan_out];
        layer.forward(&[1.0, 0.5, 0.2, 0.4], 1, &[0.1, -0.2], &mut out);
        assert_eq!(out[1], -0.2, "the bias alone");
        assert!((out[0] - (0.1 + 0.5 - 0.125 + 0.15 + 0.4)).abs() < 0.01, "{out:?}");
    }

    #[test]
    fn int8_outputs_are_within_the_quantisation_error_of_f32() {
        let (n, fan_in, fan_out) = (20, 50, 30);
        let w = random(fan_in * fan_out, -0.5, 0.5, 3);
        // Column 7 spans far more than the others: its own range keeps the rest fine.
        let mut x = random(n * fan_in, -1.0, 2.0, 4);
        x[7] = 40.0;
        let bias = random(fan_out, -1.0, 1.0, 5);
        let ranges = column_ranges(&x, fan_in);
        assert_eq!(ranges[7][1], 40.0);
        let layer = QuantizedDense::new(&w, fan_in, fan_out, ranges.clone());
        let mut out = vec![0.0; n * fan_out];
        layer.forward(&x, n, &bias, &mut out);
        let weights = layer.dequantized();
        for i in 0..n {
            for j in 0..fan_out {
                let exact: f32 = (0..fan_in).map(|k| x[i * fan_in + k] * w[k * fan_out + j]).sum::<f32>() + bias[j];
                // Each product errs by at most |x|·(weight's half step) +
                // |w|·(input's half step) + their product.
                let bound: f32 = (0..fan_in)
                    .map(|k| {
                        let t = code(ranges[k]).0;
                        let half_w = layer.scales[j] / t / 2.0;
                        x[i * fan_in + k].abs() * half_w + w[k * fan_out + j].abs() * t / 2.0 + half_w * t / 2.0
                    })
                    .sum();
                assert!((out[i * fan_out + j] - exact).abs() <= bound * 1.001, "{} vs {exact}", out[i * fan_out + j]);
            }
        }
        // Weights round to the nearest step: within half a step of each.
        for (i, (a, b)) in weights.iter().zip(&w).enumerate() {
            let half = layer.scales[i % fan_out] / code(ranges[i / fan_out]).0 / 2.0;
            assert!((a - b).abs() <= half * 1.001, "{a} vs {b}");
        }
    }
}
