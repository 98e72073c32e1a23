//! int8 post-training quantisation of a dense layer, and the int8 kernel
//! that predicts with it.
//!
//! Weights: per output channel, symmetric — column j of W becomes
//! `q[k][j] = round(W[k][j] / s_j)` in −127…127, `s_j = max_k |W[k][j]| / 127`.
//! Inputs: one affine u8 code per layer, calibrated on rows the model
//! saw (the range [lo, hi] its inputs took, 0 included):
//! `u = clamp(round(x / t) + z, 0, 255)`, `t = (hi − lo) / 255`,
//! `z = round(−lo / t)`. Then `y_j = t·s_j·(Σ_k u_k·q_kj − z·Σ_k q_kj) + b_j`:
//! the products and sums are integers, computed with AVX-512 VNNI's
//! `vpdpbusd` (64 u8×i8 products into 16 i32 sums an instruction) where
//! the CPU has it, and a portable loop (vectorised for AVX2 by the same
//! runtime dispatch as the other kernels) elsewhere — never by turning the
//! weights back into f32.

/// Output channels in a block of the packed weights: one 512-bit register
/// of i32 sums.
const LANES: usize = 16;

/// A dense layer's weights in int8 and how its inputs are coded.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedDense {
    pub fan_in: usize,
    pub fan_out: usize,
    /// The int8 weights, fan_in × fan_out row-major (as the f32 ones).
    pub q: Vec<i8>,
    /// Per output channel: the weight scale s_j.
    pub scales: Vec<f32>,
    /// The inputs' calibrated range [lo, hi] (lo ≤ 0 ≤ hi).
    pub range: [f32; 2],
    /// The weights packed for the kernel: blocks of [`LANES`] outputs, in
    /// each groups of four inputs, four bytes an output.
    packed: Vec<i8>,
    /// Σ_k q[k][j] per output (the zero point's correction).
    col_sums: Vec<i32>,
}

impl QuantizedDense {
    /// Quantises the f32 weights `w` (fan_in × fan_out, row-major) for
    /// inputs in `range` (widened to hold 0).
    pub fn new(w: &[f32], fan_in: usize, fan_out: usize, range: [f32; 2]) -> Self {
        assert_eq!(w.len(), fan_in * fan_out, "w is fan_in x fan_out");
        let scales: Vec<f32> = (0..fan_out)
            .map(|j| {
                let max = (0..fan_in).map(|k| w[k * fan_out + j].abs()).fold(0.0f32, f32::max);
                if max > 0.0 { max / 127.0 } else { 1.0 }
            })
            .collect();
        let q: Vec<i8> =
            w.iter().enumerate().map(|(i, &v)| (v / scales[i % fan_out]).round().clamp(-127.0, 127.0) as i8).collect();
        Self::from_parts(q, scales, fan_in, fan_out, range)
    }

    /// A layer of int8 weights `q` with their `scales`, as a file holds them.
    pub fn from_parts(q: Vec<i8>, scales: Vec<f32>, fan_in: usize, fan_out: usize, range: [f32; 2]) -> Self {
        let range = [range[0].min(0.0), range[1].max(0.0)];
        let (k4, blocks) = (fan_in.div_ceil(4), fan_out.div_ceil(LANES));
        let mut packed = vec![0i8; blocks * k4 * LANES * 4];
        for k in 0..fan_in {
            for j in 0..fan_out {
                let (block, lane) = (j / LANES, j % LANES);
                packed[((block * k4 + k / 4) * LANES + lane) * 4 + k % 4] = q[k * fan_out + j];
            }
        }
        let col_sums = (0..fan_out).map(|j| (0..fan_in).map(|k| i32::from(q[k * fan_out + j])).sum()).collect();
        Self { fan_in, fan_out, q, scales, range, packed, col_sums }
    }

    /// The step and zero point of the input code.
    fn input_code(&self) -> (f32, i32) {
        let [lo, hi] = self.range;
        let step = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        (step, (-lo / step).round().clamp(0.0, 255.0) as i32)
    }

    /// The weights as the int8 layer computes with them: q·s.
    pub fn dequantized(&self) -> Vec<f32> {
        self.q.iter().enumerate().map(|(i, &v)| f32::from(v) * self.scales[i % self.fan_out]).collect()
    }

    /// `out = x·W + bias` for `n` rows of `x`, in int8 (see the module
    /// docs), [`BLOCK_ROWS`] rows at a time so that the codes and sums stay
    /// in cache.
    pub fn forward(&self, x: &[f32], n: usize, bias: &[f32], out: &mut [f32]) {
        let (step, zero) = self.input_code();
        let (k4, blocks) = (self.fan_in.div_ceil(4), self.fan_out.div_ceil(LANES));
        let mut codes = vec![zero as u8; BLOCK_ROWS * k4 * 4];
        let mut sums = vec![0i32; BLOCK_ROWS * blocks * LANES];
        let scale: Vec<f32> = self.scales.iter().map(|s| step * s).collect();
        let offset: Vec<f32> =
            self.col_sums.iter().zip(&scale).zip(bias).map(|((&c, &s), &b)| b - s * (zero * c) as f32).collect();
        for first in (0..n).step_by(BLOCK_ROWS) {
            let m = BLOCK_ROWS.min(n - first);
            let rows = &x[first * self.fan_in..(first + m) * self.fan_in];
            for (row, coded) in rows.chunks_exact(self.fan_in).zip(codes.chunks_exact_mut(k4 * 4)) {
                encode(row, 1.0 / step, zero as f32, &mut coded[..self.fan_in]);
            }
            dot(&codes[..m * k4 * 4], &self.packed, m, k4, blocks, &mut sums[..m * blocks * LANES]);
            for i in 0..m {
                let row = &mut out[(first + i) * self.fan_out..(first + i + 1) * self.fan_out];
                rescale(&sums[i * blocks * LANES..i * blocks * LANES + self.fan_out], &scale, &offset, row);
            }
        }
    }
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
    fn encode(x: &[f32], inv_step: f32, zero: f32, out: &mut [u8]) {
        for (o, &v) in out.iter_mut().zip(x) {
            // `max` and `min` drop a NaN: the value is in [0.5, 255.5].
            let y = (v * inv_step + zero).max(0.0).min(255.0) + 0.5;
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
            let layer = QuantizedDense::new(&w, fan_in, fan_out, [-2.0, 3.0]);
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
        let x = random(n * fan_in, -1.0, 2.0, 4);
        let bias = random(fan_out, -1.0, 1.0, 5);
        let layer = QuantizedDense::new(&w, fan_in, fan_out, [-1.0, 2.0]);
        let mut out = vec![0.0; n * fan_out];
        layer.forward(&x, n, &bias, &mut out);
        for i in 0..n {
            for j in 0..fan_out {
                let exact: f32 = (0..fan_in).map(|k| x[i * fan_in + k] * w[k * fan_out + j]).sum::<f32>() + bias[j];
                // Each product errs by at most |x|·s_j/2 + |w|·t/2 + s_j·t/4
                // (half a step of each code), |x| ≤ 2, |w| ≤ 0.5, t = 3/255.
                let (s_j, t) = (layer.scales[j], 3.0f32 / 255.0);
                let bound = fan_in as f32 * (2.0 * s_j / 2.0 + 0.5 * t / 2.0 + s_j * t / 4.0);
                assert!((out[i * fan_out + j] - exact).abs() <= bound, "{} vs {exact}", out[i * fan_out + j]);
            }
        }
        // Weights round to the nearest step: within half a step of each.
        for (i, (a, b)) in layer.dequantized().iter().zip(&w).enumerate() {
            assert!((a - b).abs() <= layer.scales[i % fan_out] * 0.5 * (1.0 + 1e-5), "{a} vs {b}");
        }
    }
}
