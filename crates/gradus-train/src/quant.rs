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
    /// Per input column: 1/t_k and z_k.
    inv_steps: Vec<f32>,
    zeros: Vec<f32>,
    /// The weights packed for the kernel: blocks of [`LANES`] outputs, in
    /// each groups of four inputs, four bytes an output.
    packed: Vec<i8>,
    /// Σ_k z_k·q_kj per output: the zero points' part of the sums.
    offsets: Vec<i32>,
}

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
        let scales: Vec<f32> = (0..fan_out)
            .map(|j| {
                let max = (0..fan_in).map(|k| folded[k * fan_out + j].abs()).fold(0.0f32, f32::max);
                if max > 0.0 { max / 127.0 } else { 1.0 }
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
        let inv_steps = codes.iter().map(|c| 1.0 / c.0).collect();
        let zeros = codes.iter().map(|c| c.1).collect();
        Self { fan_in, fan_out, q, scales, ranges, inv_steps, zeros, packed, offsets }
    }

    /// The weights as the int8 layer computes with them: q·s/t.
    pub fn dequantized(&self) -> Vec<f32> {
        self.q
            .iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) * self.scales[i % self.fan_out] * self.inv_steps[i / self.fan_out])
            .collect()
    }

    /// `out = x·W + bias` for `n` rows of `x`, in int8 (see the module
    /// docs), [`BLOCK_ROWS`] rows at a time so that the codes and sums stay
    /// in cache.
    pub fn forward(&self, x: &[f32], n: usize, bias: &[f32], out: &mut [f32]) {
        let (k4, blocks) = (self.fan_in.div_ceil(4), self.fan_out.div_ceil(LANES));
        // Padding columns code as 0 and meet zero weights.
        let mut codes = vec![0u8; BLOCK_ROWS * k4 * 4];
        let mut sums = vec![0i32; BLOCK_ROWS * blocks * LANES];
        let offset: Vec<f32> =
            self.offsets.iter().zip(&self.scales).zip(bias).map(|((&o, &s), &b)| b - s * o as f32).collect();
        for first in (0..n).step_by(BLOCK_ROWS) {
            let m = BLOCK_ROWS.min(n - first);
            let rows = &x[first * self.fan_in..(first + m) * self.fan_in];
            for (row, coded) in rows.chunks_exact(self.fan_in).zip(codes.chunks_exact_mut(k4 * 4)) {
                encode(row, &self.inv_steps, &self.zeros, &mut coded[..self.fan_in]);
            }
            dot(&codes[..m * k4 * 4], &self.packed, m, k4, blocks, &mut sums[..m * blocks * LANES]);
            for i in 0..m {
                let row = &mut out[(first + i) * self.fan_out..(first + i + 1) * self.fan_out];
                rescale(&sums[i * blocks * LANES..i * blocks * LANES + self.fan_out], &self.scales, &offset, row);
            }
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

/// Rows [`QuantizedDense::forward`] codes and sums at a time.
const BLOCK_ROWS: usize = 256;

crate::simd::multiversion! {
    /// `out_j = scale_j·sum_j + offset_j`: integer sums back to outputs.
    fn rescale(sums: &[i32], scale: &[f32], offset: &[f32], out: &mut [f32]) {
        for (((o, &s), &a), &b) in out.iter_mut().zip(sums).zip(scale).zip(offset) {
            *o = a * s as f32 + b;
        }
    }
}

crate::simd::multiversion! {
    /// The u8 codes of one row of inputs: rounded half up, within 0…255
    /// (a NaN codes as 0). Clamped first, so that the conversion can
    /// truncate without checks and the loop vectorises.
    #[allow(clippy::manual_clamp, reason = "clamp keeps a NaN; max and min drop it")]
    fn encode(x: &[f32], inv_steps: &[f32], zeros: &[f32], out: &mut [u8]) {
        for (((o, &v), &inv), &zero) in out.iter_mut().zip(x).zip(inv_steps).zip(zeros) {
            // `max` and `min` drop a NaN: the value is in [0.5, 255.5].
            let y = (v * inv + zero).max(0.0).min(255.0) + 0.5;
            // SAFETY: y is finite and in [0.5, 255.5], within i32.
            *o = unsafe { y.to_int_unchecked::<i32>() } as u8;
        }
    }
}

/// `sums[i][j] = Σ_k codes[i][k]·q[k][j]` for `n` rows of `k4`·4 codes and
/// `blocks` blocks of packed weights.
fn dot(codes: &[u8], packed: &[i8], n: usize, k4: usize, blocks: usize, sums: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni") {
        // SAFETY: the CPU has the features the kernel is compiled with.
        unsafe { dot_vnni(codes, packed, n, k4, blocks, sums) };
        return;
    }
    dot_portable(codes, packed, n, k4, blocks, sums);
}

crate::simd::multiversion! {
    /// [`dot`]'s portable loop.
    fn dot_portable(codes: &[u8], packed: &[i8], n: usize, k4: usize, blocks: usize, sums: &mut [i32]) {
        for i in 0..n {
            let row = &codes[i * k4 * 4..(i + 1) * k4 * 4];
            for b in 0..blocks {
                let mut acc = [0i32; LANES];
                for g in 0..k4 {
                    let w = &packed[(b * k4 + g) * LANES * 4..(b * k4 + g + 1) * LANES * 4];
                    let u = &row[g * 4..g * 4 + 4];
                    for lane in 0..LANES {
                        let wl = &w[lane * 4..lane * 4 + 4];
                        acc[lane] += (0..4).map(|t| i32::from(u[t]) * i32::from(wl[t])).sum::<i32>();
                    }
                }
                sums[(i * blocks + b) * LANES..(i * blocks + b + 1) * LANES].copy_from_slice(&acc);
            }
        }
    }
}

/// Rows [`dot_vnni`] computes at once, each weight load shared by all.
const ROWS: usize = 8;

/// [`dot`] with `vpdpbusd`: [`ROWS`] rows at a time share each load of 16
/// outputs' weights for four inputs; each row's four codes are broadcast
/// from memory.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dot_vnni(codes: &[u8], packed: &[i8], n: usize, k4: usize, blocks: usize, sums: &mut [i32]) {
    use std::arch::x86_64::*;
    let stride = k4 * 4;
    assert!(codes.len() >= n * stride && packed.len() >= blocks * k4 * LANES * 4 && sums.len() >= n * blocks * LANES);
    let mut i = 0;
    while i < n {
        let rows = (n - i).min(ROWS);
        // SAFETY (all pointer reads and writes below): rows i..i+rows of
        // `codes` hold `stride` bytes each, block b of `packed` k4·64
        // bytes, and `sums` a row of blocks·16 i32 per row (asserted above).
        let c = unsafe { codes.as_ptr().add(i * stride) };
        for b in 0..blocks {
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
            for (r, a) in acc.iter().enumerate().take(rows) {
                unsafe { _mm512_storeu_si512(sums.as_mut_ptr().add(((i + r) * blocks + b) * LANES).cast(), *a) };
            }
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
        for (n, fan_in, fan_out) in [(1, 1, 1), (3, 5, 17), (9, 64, 40), (4, 7, 16)] {
            let w = random(fan_in * fan_out, -1.0, 1.0, 1);
            let layer = QuantizedDense::new(&w, fan_in, fan_out, vec![[-2.0, 3.0]; fan_in]);
            let k4 = fan_in.div_ceil(4);
            let blocks = fan_out.div_ceil(LANES);
            let mut rng = seeded_rng(2);
            let codes: Vec<u8> = (0..n * k4 * 4).map(|_| rng.random()).collect();
            let mut expected = vec![0i32; n * blocks * LANES];
            for i in 0..n {
                for j in 0..fan_out {
                    expected[(i * blocks) * LANES + j] = (0..fan_in)
                        .map(|k| i32::from(codes[i * k4 * 4 + k]) * i32::from(layer.q[k * fan_out + j]))
                        .sum();
                }
            }
            let mut portable = vec![0i32; n * blocks * LANES];
            dot_portable(&codes, &layer.packed, n, k4, blocks, &mut portable);
            let mut dispatched = vec![0i32; n * blocks * LANES];
            dot(&codes, &layer.packed, n, k4, blocks, &mut dispatched);
            // The padding inputs (codes past fan_in) meet zero weights.
            for i in 0..n {
                for j in 0..fan_out {
                    let at = i * blocks * LANES + j;
                    assert_eq!(portable[at], expected[at], "{n}x{fan_in}x{fan_out}");
                    assert_eq!(dispatched[at], expected[at], "{n}x{fan_in}x{fan_out}");
                }
            }
        }
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
