//! Convolution and pooling layers over images stored one per row,
//! channel-major (`C×H×W` values, PyTorch's layout flattened), with
//! hand-written backward passes.
//!
//! [`Conv2d`] lowers each image to columns (im2col: one column per output
//! pixel holding the `C·k·k` inputs it sees) and multiplies them by the
//! `out_channels × C·k·k` weight matrix with a faer GEMM; its backward pass
//! is two more GEMMs and the scatter back (col2im). [`MaxPool2d`] keeps
//! the position of each window's maximum for its backward pass.

use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef as FaerRef, Par};
use gradus_data::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::layer::Layer;
use crate::quant::QuantizedDense;

/// An image's shape: channels, height, width.
pub type Shape = [usize; 3];

/// The output side of a window of `kernel` sliding by `stride` over `side`
/// values padded by `padding` on each end (PyTorch's floor rule); `None`
/// when the kernel does not fit.
pub fn output_side(side: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = side + 2 * padding;
    (kernel >= 1 && stride >= 1 && padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

/// A 2-D convolution (PyTorch's `nn.Conv2d` with square kernels, no
/// dilation or groups): weights `[out, in, k, k]` then one bias per output
/// channel.
///
/// It works one image at a time, so that an image's columns (a few hundred
/// KB) stay in the core's cache through the products that read them, and
/// each product writes the image's outputs where they belong: W·cols is
/// the image's `out_channels × out_h·out_w` block, channel-major as the
/// next layer reads it, and in the backward pass dOut is read in place.
/// The columns are lowered again in the backward pass instead of kept
/// (48 MB for a batch of 64 in the default network's second stage).
#[derive(Clone, Debug)]
pub(crate) struct Conv2d {
    input: Shape,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    out_h: usize,
    out_w: usize,
    /// One image's columns (see [`Self::im2col`]).
    cols: Vec<f32>,
    /// Their gradient, in the backward pass.
    dcols: Vec<f32>,
    /// One image with `padding` zeros around each channel; the border is
    /// never written and stays zero.
    padded: Vec<f32>,
    /// The padded image's gradient, in the backward pass.
    dpadded: Vec<f32>,
}

impl Conv2d {
    /// `None` when the kernel is larger than the padded input.
    pub fn new(input: Shape, out_channels: usize, kernel: usize, stride: usize, padding: usize) -> Option<Self> {
        let out_h = output_side(input[1], kernel, stride, padding)?;
        let out_w = output_side(input[2], kernel, stride, padding)?;
        (input.iter().all(|&d| d > 0) && out_channels > 0).then(|| Self {
            input,
            out_channels,
            kernel,
            stride,
            padding,
            out_h,
            out_w,
            cols: Vec::new(),
            dcols: Vec::new(),
            padded: Vec::new(),
            dpadded: Vec::new(),
        })
    }

    pub fn output_shape(&self) -> Shape {
        [self.out_channels, self.out_h, self.out_w]
    }

    /// Inputs each output value sees: `C·k·k`.
    fn patch(&self) -> usize {
        self.input[0] * self.kernel * self.kernel
    }

    /// Output pixels of a channel: `out_h·out_w`.
    fn pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// The padded image's height and width.
    fn padded_sides(&self) -> (usize, usize) {
        (self.input[1] + 2 * self.padding, self.input[2] + 2 * self.padding)
    }

    /// Values of one padded image (0 without padding: the image is read as it is).
    fn padded_len(&self) -> usize {
        let (ph, pw) = self.padded_sides();
        if self.padding == 0 { 0 } else { self.input[0] * ph * pw }
    }

    fn weights(&self) -> Range<usize> {
        0..self.out_channels * self.patch()
    }

    fn bias(&self) -> Range<usize> {
        let w = self.weights().end;
        w..w + self.out_channels
    }

    /// One image's columns into `cols`, a `C·k·k × out_h·out_w` matrix:
    /// row `(c, ky, kx)` holds, for each output pixel, the input value the
    /// kernel's tap `(ky, kx)` of channel `c` reads there (zero in the
    /// padding). `padded` (of [`Self::padded_len`], border zero) receives
    /// the image with its padding, so that every row of the output is one
    /// run of the padded plane.
    fn im2col(&self, image: &[f32], padded: &mut [f32], cols: &mut [f32]) {
        let [channels, h, w] = self.input;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (ph, pw) = self.padded_sides();
        let plane: &[f32] = if p == 0 {
            image
        } else {
            for c in 0..channels {
                for y in 0..h {
                    let to = (c * ph + y + p) * pw + p;
                    padded[to..to + w].copy_from_slice(&image[(c * h + y) * w..(c * h + y + 1) * w]);
                }
            }
            padded
        };
        let (ow, pixels) = (self.out_w, self.pixels());
        for c in 0..channels {
            for ky in 0..k {
                for kx in 0..k {
                    let row = &mut cols[((c * k + ky) * k + kx) * pixels..][..pixels];
                    for (oy, line) in row.chunks_exact_mut(ow).enumerate() {
                        let from = (c * ph + oy * s + ky) * pw + kx;
                        if s == 1 {
                            copy_run(line, &plane[from..from + ow]);
                        } else {
                            for (ox, v) in line.iter_mut().enumerate() {
                                *v = plane[from + ox * s];
                            }
                        }
                    }
                }
            }
        }
    }

    /// The reverse of [`Self::im2col`] for one image: adds each column
    /// entry's gradient onto the input pixel it was read from and writes
    /// the image's gradient into `dx` (every value). `padded` (of
    /// [`Self::padded_len`]) gathers the padded image's gradient, the
    /// taps that read the padding included.
    fn col2im(&self, dcols: &[f32], padded: &mut [f32], dx: &mut [f32]) {
        let [channels, h, w] = self.input;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (ph, pw) = self.padded_sides();
        let plane: &mut [f32] = if p == 0 { dx } else { padded };
        plane.fill(0.0);
        let (ow, pixels) = (self.out_w, self.pixels());
        for c in 0..channels {
            for ky in 0..k {
                for kx in 0..k {
                    let row = &dcols[((c * k + ky) * k + kx) * pixels..][..pixels];
                    for (oy, line) in row.chunks_exact(ow).enumerate() {
                        let to = (c * ph + oy * s + ky) * pw + kx;
                        if s == 1 {
                            add_run(&mut plane[to..to + ow], line);
                        } else {
                            for (ox, v) in line.iter().enumerate() {
                                plane[to + ox * s] += v;
                            }
                        }
                    }
                }
            }
        }
        if p > 0 {
            for c in 0..channels {
                for y in 0..h {
                    let from = (c * ph + y + p) * pw + p;
                    dx[(c * h + y) * w..(c * h + y + 1) * w].copy_from_slice(&padded[from..from + w]);
                }
            }
        }
    }

    /// One image's outputs `out` (`out_channels × out_h·out_w`) = W·cols + b.
    fn apply(&self, params: &[f32], cols: &[f32], out: &mut [f32]) {
        let pixels = self.pixels();
        let w = FaerRef::from_row_major_slice(&params[self.weights()], self.out_channels, self.patch());
        let c = FaerRef::from_row_major_slice(cols, self.patch(), pixels);
        let o = MatMut::from_row_major_slice_mut(out, self.out_channels, pixels);
        matmul(o, Accum::Replace, w, c, 1.0f32, Par::Seq);
        gradus_optim::clear_upper_state();
        for (row, &b) in out.chunks_exact_mut(pixels).zip(&params[self.bias()]) {
            row.iter_mut().for_each(|o| *o += b);
        }
    }

    /// The outputs of `n` images into `out`, through `padded` and `cols`
    /// (each at least one image's).
    fn forward_images(
        &self,
        params: &[f32],
        input: &[f32],
        n: usize,
        padded: &mut [f32],
        cols: &mut [f32],
        out: &mut [f32],
    ) {
        let (width, out_width) = (self.input_width(), self.output_width());
        for (image, out) in input.chunks_exact(width).zip(out.chunks_exact_mut(out_width)).take(n) {
            self.im2col(image, padded, cols);
            self.apply(params, cols, out);
        }
    }
}

/// `to` = `from` (equal lengths), in 8-value blocks the compiler keeps in
/// registers: im2col's runs are a dozen values, too short for a `memcpy`
/// call to pay.
#[inline]
fn copy_run(to: &mut [f32], from: &[f32]) {
    let len = to.len();
    if len < 8 {
        for (t, f) in to.iter_mut().zip(from) {
            *t = *f;
        }
        return;
    }
    let block = |v: &[f32], at: usize| -> [f32; 8] { v[at..at + 8].try_into().expect("8 values") };
    let mut at = 0;
    while at + 8 <= len {
        to[at..at + 8].copy_from_slice(&block(from, at));
        at += 8;
    }
    if at < len {
        // The last block overlaps the one before: the same values again.
        to[len - 8..].copy_from_slice(&block(from, len - 8));
    }
}

/// `to` += `from` (equal lengths), in 8-value blocks.
#[inline]
fn add_run(to: &mut [f32], from: &[f32]) {
    let mut to_blocks = to.chunks_exact_mut(8);
    let mut from_blocks = from.chunks_exact(8);
    for (t, f) in (&mut to_blocks).zip(&mut from_blocks) {
        let sum: [f32; 8] = std::array::from_fn(|j| t[j] + f[j]);
        t.copy_from_slice(&sum);
    }
    for (t, f) in to_blocks.into_remainder().iter_mut().zip(from_blocks.remainder()) {
        *t += f;
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "conv"
    }

    fn input_width(&self) -> usize {
        self.input.iter().product()
    }

    fn output_width(&self) -> usize {
        self.out_channels * self.out_h * self.out_w
    }

    fn n_params(&self) -> usize {
        self.bias().end
    }

    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        vec![
            ("weight", vec![self.out_channels, self.input[0], self.kernel, self.kernel], self.weights()),
            ("bias", vec![self.out_channels], self.bias()),
        ]
    }

    fn penalised(&self) -> Vec<Range<usize>> {
        vec![self.weights()]
    }

    /// He normal over the `C·k·k` inputs of each output, biases zero.
    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let std = (2.0 / self.patch() as f32).sqrt();
        for w in &mut params[self.weights()] {
            let e: f32 = StandardNormal.sample(rng);
            *w = std * e;
        }
        params[self.bias()].fill(0.0);
    }

    fn forward(&mut self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        let (mut cols, mut padded) = (std::mem::take(&mut self.cols), std::mem::take(&mut self.padded));
        cols.resize(self.patch() * self.pixels(), 0.0);
        padded.resize(self.padded_len(), 0.0);
        self.forward_images(params, input, n, &mut padded, &mut cols, out);
        (self.cols, self.padded) = (cols, padded);
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
        let (patch, pixels) = (self.patch(), self.pixels());
        let (width, out_width) = (self.input_width(), self.output_width());
        let (mut cols, mut padded) = (std::mem::take(&mut self.cols), std::mem::take(&mut self.padded));
        let (mut dcols, mut dpadded) = (std::mem::take(&mut self.dcols), std::mem::take(&mut self.dpadded));
        cols.resize(patch * pixels, 0.0);
        padded.resize(self.padded_len(), 0.0);
        if input_grad {
            dcols.resize(patch * pixels, 0.0);
            dpadded.resize(self.padded_len(), 0.0);
            scratch.resize(n * width, 0.0);
        }
        let (grad_w, grad_b) = grad.split_at_mut(self.bias().start);
        grad_b.fill(0.0);
        let w = FaerRef::from_row_major_slice(&params[self.weights()], self.out_channels, patch);
        for i in 0..n {
            // The columns are lowered again (see the type's docs).
            self.im2col(&input[i * width..(i + 1) * width], &mut padded, &mut cols);
            let d_out = &delta[i * out_width..(i + 1) * out_width];
            for (gb, row) in grad_b.iter_mut().zip(d_out.chunks_exact(pixels)) {
                *gb += row.iter().sum::<f32>();
            }
            // dW += dOut·colsᵀ.
            let dm = FaerRef::from_row_major_slice(d_out, self.out_channels, pixels);
            let c = FaerRef::from_row_major_slice(&cols, patch, pixels);
            let gw = MatMut::from_row_major_slice_mut(grad_w, self.out_channels, patch);
            let accum = if i == 0 { Accum::Replace } else { Accum::Add };
            matmul(gw, accum, dm, c.transpose(), 1.0f32, Par::Seq);
            if input_grad {
                // dcols = Wᵀ·dOut, scattered back onto the pixels it came from.
                let dc = MatMut::from_row_major_slice_mut(&mut dcols, patch, pixels);
                matmul(dc, Accum::Replace, w.transpose(), dm, 1.0f32, Par::Seq);
                gradus_optim::clear_upper_state();
                self.col2im(&dcols, &mut dpadded, &mut scratch[i * width..(i + 1) * width]);
            }
            gradus_optim::clear_upper_state();
        }
        if n == 0 {
            grad_w.fill(0.0);
        }
        if input_grad {
            std::mem::swap(delta, scratch);
        }
        (self.cols, self.padded, self.dcols, self.dpadded) = (cols, padded, dcols, dpadded);
    }

    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], scratch: &mut Vec<f32>) {
        // The scratch holds the padded image (border zero), then the columns.
        let padded_len = self.padded_len();
        scratch.clear();
        scratch.resize(padded_len + self.patch() * self.pixels(), 0.0);
        let (padded, cols) = scratch.split_at_mut(padded_len);
        self.forward_images(params, input, n, padded, cols, out);
    }

    fn with_int8(&self, q: QuantizedDense) -> Option<Box<dyn Layer>> {
        Some(Box::new(Int8Conv::new(self, q)?))
    }

    /// Its int8 form: the weights as a matrix of the `k·k·C` inputs of an
    /// output pixel in (ky, kx, c) order by the output channels (see
    /// [`Int8Conv`]), each input column coded by its channel's range over
    /// all the channel's pixels in `ranges` (one per input value, `C×H×W`).
    fn quantized(&self, params: &[f32], ranges: Vec<[f32; 2]>) -> Option<QuantizedDense> {
        let [channels, h, w] = self.input;
        let channel_ranges: Vec<[f32; 2]> = ranges
            .chunks_exact(h * w)
            .map(|r| r.iter().fold([f32::INFINITY, f32::NEG_INFINITY], |a, b| [a[0].min(b[0]), a[1].max(b[1])]))
            .collect();
        let k = self.kernel;
        let fan_in = k * k * channels;
        let mut matrix = vec![0.0f32; fan_in * self.out_channels];
        let mut column_ranges = Vec::with_capacity(fan_in);
        for ky in 0..k {
            for kx in 0..k {
                for c in 0..channels {
                    let row = (ky * k + kx) * channels + c;
                    for o in 0..self.out_channels {
                        matrix[row * self.out_channels + o] = params[((o * channels + c) * k + ky) * k + kx];
                    }
                    column_ranges.push(channel_ranges[c]);
                }
            }
        }
        Some(QuantizedDense::new(&matrix, fan_in, self.out_channels, column_ranges))
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// A convolution that predicts in int8: an output pixel's `k·k·C` inputs,
/// read in (ky, kx, c) order, are a row of a [`QuantizedDense`] of the
/// output channels. Each image is coded once into u8 with its channels
/// last and its padding as the code of 0, so that the kernel row `ky` of
/// an output pixel's inputs is one run of `k·C` codes; the rows of all
/// the image's pixels go through the int8 kernel, and its pixel-major
/// outputs are turned channel-major. Its slice keeps the f32 layout (the
/// weights as the int8 ones stand for, then the bias), so its parameters
/// and their names are a convolution's; it is for prediction (a network
/// holding one is not trained).
#[derive(Clone, Debug)]
pub(crate) struct Int8Conv {
    conv: Conv2d,
    pub q: QuantizedDense,
}

impl Int8Conv {
    /// `None` unless `q` is `conv`'s int8 form (`k·k·C` inputs by the output channels).
    pub fn new(conv: &Conv2d, q: QuantizedDense) -> Option<Self> {
        let conv = Conv2d::new(conv.input, conv.out_channels, conv.kernel, conv.stride, conv.padding)?;
        (q.fan_in == conv.patch() && q.fan_out == conv.out_channels).then_some(Self { conv, q })
    }

    /// The f32 weights `[out, in, k, k]` the int8 ones stand for.
    fn dequantized(&self) -> Vec<f32> {
        let (k, channels, outs) = (self.conv.kernel, self.conv.input[0], self.conv.out_channels);
        let matrix = self.q.dequantized();
        let mut w = vec![0.0f32; outs * self.conv.patch()];
        for ky in 0..k {
            for kx in 0..k {
                for c in 0..channels {
                    let row = (ky * k + kx) * channels + c;
                    for o in 0..outs {
                        w[((o * channels + c) * k + ky) * k + kx] = matrix[row * outs + o];
                    }
                }
            }
        }
        w
    }

    /// Codes one image (`C×H×W`) into `padded` (`(H+2p)×(W+2p)×C`, channels
    /// last; the border is the code of 0; 8 bytes to spare) and lowers it
    /// into `rows`: one row of `stride` codes an output pixel, its inputs
    /// in (ky, kx, c) order (the bytes past `k·k·C` meet zero weights).
    fn lower(&self, channel: &[u8], padded: &mut [u8], rows: &mut [u8], stride: usize) {
        let [channels, h, w] = self.conv.input;
        let (k, s, p) = (self.conv.kernel, self.conv.stride, self.conv.padding);
        let pw = w + 2 * p;
        for c in 0..channels {
            let coded = &channel[c * h * w..(c + 1) * h * w];
            for y in 0..h {
                let line = &mut padded[((y + p) * pw + p) * channels..][..w * channels];
                for (x, &u) in coded[y * w..(y + 1) * w].iter().enumerate() {
                    line[x * channels + c] = u;
                }
            }
        }
        let run = k * channels;
        // Runs of at most 8 codes (a one-channel image's) move as one
        // 8-byte word: a `memcpy` call each took a fifth of the time. The
        // bytes a word writes past its run are the next run's or the row's
        // padding (which meets zero weights); `padded` has 8 bytes to spare.
        let words = run <= 8 && (k - 1) * run + 8 <= stride;
        for oy in 0..self.conv.out_h {
            for ox in 0..self.conv.out_w {
                let row = &mut rows[(oy * self.conv.out_w + ox) * stride..][..stride];
                for ky in 0..k {
                    let from = ((oy * s + ky) * pw + ox * s) * channels;
                    if words {
                        let word: [u8; 8] = padded[from..from + 8].try_into().expect("8 bytes");
                        row[ky * run..ky * run + 8].copy_from_slice(&word);
                    } else {
                        row[ky * run..(ky + 1) * run].copy_from_slice(&padded[from..from + run]);
                    }
                }
            }
        }
    }
}

impl Layer for Int8Conv {
    fn kind(&self) -> &'static str {
        "conv"
    }

    fn input_width(&self) -> usize {
        self.conv.input_width()
    }

    fn output_width(&self) -> usize {
        self.conv.output_width()
    }

    fn n_params(&self) -> usize {
        self.conv.n_params()
    }

    fn param_blocks(&self) -> Vec<(&'static str, Vec<usize>, Range<usize>)> {
        self.conv.param_blocks()
    }

    fn penalised(&self) -> Vec<Range<usize>> {
        self.conv.penalised()
    }

    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        self.conv.init(params, rng);
    }

    crate::layer::prediction_only!();

    fn predict(&self, params: &[f32], input: &[f32], n: usize, out: &mut [f32], scratch: &mut Vec<f32>) {
        let [channels, h, w] = self.conv.input;
        let p = self.conv.padding;
        let (pixels, outs) = (self.conv.pixels(), self.conv.out_channels);
        let stride = self.q.fan_in.div_ceil(4) * 4;
        // Each channel's code (input column c is tap (0, 0) of channel c),
        // for each of its pixels; the padding is the code of 0.
        let code = self.q.code().columns(0..channels);
        let planes = code.repeated(h * w);
        let mut zero = Vec::new();
        code.encode(&vec![0.0; channels], &mut zero);
        let mut padded = zero[..channels].repeat((h + 2 * p) * (w + 2 * p));
        padded.extend_from_slice(&[0; 8]);
        let mut rows = vec![0u8; pixels * stride];
        let mut coded = Vec::new();
        scratch.clear();
        scratch.resize(pixels * outs, 0.0);
        let bias = &params[self.conv.bias()];
        let (width, out_width) = (self.input_width(), self.output_width());
        for (image, out) in input.chunks_exact(width).zip(out.chunks_exact_mut(out_width)).take(n) {
            planes.encode(image, &mut coded);
            self.lower(&coded, &mut padded, &mut rows, stride);
            self.q.forward_codes(&rows, pixels, bias, scratch);
            transpose(scratch, pixels, outs, out);
        }
    }

    fn int8(&self) -> Option<&QuantizedDense> {
        Some(&self.q)
    }

    fn dequantized_weights(&self) -> Option<Vec<f32>> {
        Some(self.dequantized())
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// Max pooling over `kernel × kernel` windows moved by `stride` (PyTorch's
/// `nn.MaxPool2d` without padding); a tie goes to the window's first
/// maximum in row-major order, as in PyTorch.
#[derive(Clone, Debug)]
pub(crate) struct MaxPool2d {
    input: Shape,
    kernel: usize,
    stride: usize,
    out_h: usize,
    out_w: usize,
    /// For each output of the last training batch, the input it took (within its image).
    argmax: Vec<u32>,
}

impl MaxPool2d {
    /// `None` when the window is larger than the input.
    pub fn new(input: Shape, kernel: usize, stride: usize) -> Option<Self> {
        let out_h = output_side(input[1], kernel, stride, 0)?;
        let out_w = output_side(input[2], kernel, stride, 0)?;
        Some(Self { input, kernel, stride, out_h, out_w, argmax: Vec::new() })
    }

    pub fn output_shape(&self) -> Shape {
        [self.input[0], self.out_h, self.out_w]
    }

    /// Pools one image into `out`, calling `f(output index, input index
    /// of the window's maximum)` for each output.
    fn pool(&self, image: &[f32], out: &mut [f32], mut f: impl FnMut(usize, u32)) {
        let [channels, h, w] = self.input;
        let (out_h, out_w) = (self.out_h, self.out_w);
        // The common 2x2 window moved by 2: each output reads two pairs of
        // neighbours, from two rows sliced once (no index checks inside).
        if self.kernel == 2 && self.stride == 2 {
            for c in 0..channels {
                for oy in 0..out_h {
                    let top_at = (c * h + 2 * oy) * w;
                    let top = &image[top_at..top_at + 2 * out_w];
                    let bottom = &image[top_at + w..top_at + w + 2 * out_w];
                    let at = (c * out_h + oy) * out_w;
                    let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
                    for (ox, ((t, b), o)) in pairs.zip(&mut out[at..at + out_w]).enumerate() {
                        // Row-major order: the first maximum wins a tie.
                        let (mut best, mut which) = (t[0], 0);
                        for (k, v) in [(1, t[1]), (w, b[0]), (w + 1, b[1])] {
                            if v > best || v.is_nan() && !best.is_nan() {
                                (best, which) = (v, k);
                            }
                        }
                        *o = best;
                        f(at + ox, (top_at + 2 * ox + which) as u32);
                    }
                }
            }
            return;
        }
        for c in 0..channels {
            for oy in 0..out_h {
                for ox in 0..out_w {
                    let (y0, x0) = (oy * self.stride, ox * self.stride);
                    let mut best = (c * h + y0) * w + x0;
                    for y in y0..y0 + self.kernel {
                        for x in x0..x0 + self.kernel {
                            best = first_max(image, best, (c * h + y) * w + x);
                        }
                    }
                    let to = (c * out_h + oy) * out_w + ox;
                    out[to] = image[best];
                    f(to, best as u32);
                }
            }
        }
    }
}

/// `to` (`cols × rows`) = the transpose of `from` (`rows × cols`), both
/// row-major, in 16×16 tiles: in registers with AVX-512, else in the L1
/// cache.
fn transpose(from: &[f32], rows: usize, cols: usize, to: &mut [f32]) {
    assert!(from.len() >= rows * cols && to.len() >= rows * cols);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the lengths are asserted above.
        unsafe { transpose_tiles(from, rows, cols, to) };
        return;
    }
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                let line = &mut to[c * rows + r0..c * rows + r1];
                for (r, t) in (r0..r1).zip(line) {
                    *t = from[r * cols + c];
                }
            }
        }
    }
}

/// [`transpose`] in 16×16 tiles held in registers (unpack, then shuffles
/// within and across 128-bit lanes); the tiles at the edges masked.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_tiles(from: &[f32], rows: usize, cols: usize, to: &mut [f32]) {
    use std::arch::x86_64::*;
    for r0 in (0..rows).step_by(16) {
        let n_rows = (rows - r0).min(16);
        for c0 in (0..cols).step_by(16) {
            let n_cols = (cols - c0).min(16);
            let col_mask: __mmask16 = if n_cols == 16 { !0 } else { (1 << n_cols) - 1 };
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, row) in r.iter_mut().enumerate().take(n_rows) {
                // SAFETY: row r0 + i holds `cols` values from c0; the mask reads n_cols of them.
                *row = unsafe { _mm512_maskz_loadu_ps(col_mask, from.as_ptr().add((r0 + i) * cols + c0)) };
            }
            // Pairs of rows interleaved, then each 128-bit lane's 4×4 block
            // transposed: u[j] lane L holds column 4L + j of rows 4q..4q+3 (u[4q + j]).
            let mut t = [_mm512_setzero_ps(); 16];
            for q in 0..8 {
                t[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]);
                t[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
            }
            let mut u = [_mm512_setzero_ps(); 16];
            for q in 0..4 {
                let (a, b, c, d) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
                u[4 * q] = _mm512_shuffle_ps::<0x44>(a, c);
                u[4 * q + 1] = _mm512_shuffle_ps::<0xEE>(a, c);
                u[4 * q + 2] = _mm512_shuffle_ps::<0x44>(b, d);
                u[4 * q + 3] = _mm512_shuffle_ps::<0xEE>(b, d);
            }
            // Lane L of u[j], u[4 + j], u[8 + j], u[12 + j] is column 4L + j.
            let mut out = [_mm512_setzero_ps(); 16];
            for j in 0..4 {
                let v = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
                let v1 = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
                let w = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
                let w1 = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
                out[j] = _mm512_shuffle_f32x4::<0x88>(v, w);
                out[8 + j] = _mm512_shuffle_f32x4::<0xDD>(v, w);
                out[4 + j] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
                out[12 + j] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
            }
            let row_mask: __mmask16 = if n_rows == 16 { !0 } else { (1 << n_rows) - 1 };
            for (j, v) in out.iter().enumerate().take(n_cols) {
                // SAFETY: column c0 + j of `to` holds `rows` values from r0; the mask writes n_rows.
                unsafe { _mm512_mask_storeu_ps(to.as_mut_ptr().add((c0 + j) * rows + r0), row_mask, *v) };
            }
        }
    }
}

crate::simd::multiversion! {
    /// 2×2 max pooling (by 2) of `planes` planes of `h` rows of `w` values
    /// into planes of `out_h` rows of `out.len() / (planes·out_h)`: each
    /// output the maximum of its window (NaN over a number), the two rows'
    /// maximum taken first, column by column, so that the loops vectorise.
    /// The value is [`MaxPool2d::pool`]'s but for the sign of a zero when
    /// +0 and −0 tie.
    fn pool_pairs(input: &[f32], planes: usize, h: usize, w: usize, out_h: usize, out: &mut [f32]) {
        let larger = |a: f32, b: f32| if b > a || b.is_nan() && !a.is_nan() { b } else { a };
        let out_w = out.len() / (planes * out_h).max(1);
        let mut column = [0.0f32; 64];
        for (plane, out) in input.chunks_exact(h * w).zip(out.chunks_exact_mut(out_h * out_w)).take(planes) {
            for (oy, out) in out.chunks_exact_mut(out_w).enumerate() {
                let (top, bottom) = (&plane[2 * oy * w..(2 * oy + 1) * w], &plane[(2 * oy + 1) * w..(2 * oy + 2) * w]);
                for (first, out) in (0..out_w).step_by(32).zip(out.chunks_mut(32)) {
                    let pairs = &mut column[..2 * out.len()];
                    let (t, b) = (&top[2 * first..2 * first + pairs.len()], &bottom[2 * first..2 * first + pairs.len()]);
                    for ((p, &t), &b) in pairs.iter_mut().zip(t).zip(b) {
                        *p = larger(t, b);
                    }
                    for (o, pair) in out.iter_mut().zip(pairs.chunks_exact(2)) {
                        *o = larger(pair[0], pair[1]);
                    }
                }
            }
        }
    }
}

/// Of the positions `best` and `candidate` (later in the window), the one a
/// max pool keeps: the larger, the earlier on a tie, and NaN over a number
/// (NaN propagates, as in PyTorch).
#[inline(always)]
fn first_max(image: &[f32], best: usize, candidate: usize) -> usize {
    let (b, v) = (image[best], image[candidate]);
    if v > b || v.is_nan() && !b.is_nan() { candidate } else { best }
}

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "maxpool"
    }

    fn input_width(&self) -> usize {
        self.input.iter().product()
    }

    fn output_width(&self) -> usize {
        self.input[0] * self.out_h * self.out_w
    }

    fn forward(&mut self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        let (width, out_width) = (self.input_width(), self.output_width());
        let mut argmax = std::mem::take(&mut self.argmax);
        argmax.resize(n * out_width, 0);
        for i in 0..n {
            let image = &input[i * width..(i + 1) * width];
            let (o, a) =
                (&mut out[i * out_width..(i + 1) * out_width], &mut argmax[i * out_width..(i + 1) * out_width]);
            self.pool(image, o, |to, from| a[to] = from);
        }
        self.argmax = argmax;
    }

    fn backward(
        &mut self,
        _params: &[f32],
        _input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        _grad: &mut [f32],
        input_grad: bool,
    ) {
        if !input_grad {
            return;
        }
        let (width, out_width) = (self.input_width(), self.output_width());
        scratch.clear();
        scratch.resize(n * width, 0.0);
        for i in 0..n {
            let dx = &mut scratch[i * width..(i + 1) * width];
            for (d, &from) in delta[i * out_width..(i + 1) * out_width].iter().zip(&self.argmax[i * out_width..]) {
                dx[from as usize] += d;
            }
        }
        std::mem::swap(delta, scratch);
    }

    fn predict(&self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        let (width, out_width) = (self.input_width(), self.output_width());
        if self.kernel == 2 && self.stride == 2 {
            // The values alone: no positions to keep, and loops that vectorise.
            let [channels, h, w] = self.input;
            pool_pairs(&input[..n * width], n * channels, h, w, self.out_h, &mut out[..n * out_width]);
            return;
        }
        for i in 0..n {
            self.pool(&input[i * width..(i + 1) * width], &mut out[i * out_width..(i + 1) * out_width], |_, _| {});
        }
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// Average pooling over `kernel × kernel` windows moved by `stride`
/// (PyTorch's `nn.AvgPool2d` without padding).
#[derive(Clone, Debug)]
pub(crate) struct AvgPool2d {
    input: Shape,
    kernel: usize,
    stride: usize,
    out_h: usize,
    out_w: usize,
}

impl AvgPool2d {
    /// `None` when the window is larger than the input.
    pub fn new(input: Shape, kernel: usize, stride: usize) -> Option<Self> {
        let out_h = output_side(input[1], kernel, stride, 0)?;
        let out_w = output_side(input[2], kernel, stride, 0)?;
        Some(Self { input, kernel, stride, out_h, out_w })
    }

    pub fn output_shape(&self) -> Shape {
        [self.input[0], self.out_h, self.out_w]
    }

    /// Calls `f(output index, input index)` for every input of every window of one image.
    fn windows(&self, mut f: impl FnMut(usize, usize)) {
        let [channels, h, w] = self.input;
        for c in 0..channels {
            for oy in 0..self.out_h {
                for ox in 0..self.out_w {
                    let to = (c * self.out_h + oy) * self.out_w + ox;
                    for y in oy * self.stride..oy * self.stride + self.kernel {
                        for x in ox * self.stride..ox * self.stride + self.kernel {
                            f(to, (c * h + y) * w + x);
                        }
                    }
                }
            }
        }
    }

    fn pool(&self, input: &[f32], n: usize, out: &mut [f32]) {
        let (width, out_width) = (self.input_width(), self.output_width());
        let scale = 1.0 / (self.kernel * self.kernel) as f32;
        for i in 0..n {
            let (image, o) = (&input[i * width..(i + 1) * width], &mut out[i * out_width..(i + 1) * out_width]);
            o.fill(0.0);
            self.windows(|to, from| o[to] += image[from]);
            o.iter_mut().for_each(|v| *v *= scale);
        }
    }
}

impl Layer for AvgPool2d {
    fn kind(&self) -> &'static str {
        "avgpool"
    }

    fn input_width(&self) -> usize {
        self.input.iter().product()
    }

    fn output_width(&self) -> usize {
        self.input[0] * self.out_h * self.out_w
    }

    fn forward(&mut self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        self.pool(input, n, out);
    }

    fn backward(
        &mut self,
        _params: &[f32],
        _input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        _grad: &mut [f32],
        input_grad: bool,
    ) {
        if !input_grad {
            return;
        }
        let (width, out_width) = (self.input_width(), self.output_width());
        let scale = 1.0 / (self.kernel * self.kernel) as f32;
        scratch.clear();
        scratch.resize(n * width, 0.0);
        for i in 0..n {
            let (d, dx) = (&delta[i * out_width..(i + 1) * out_width], &mut scratch[i * width..(i + 1) * width]);
            self.windows(|to, from| dx[from] += d[to] * scale);
        }
        std::mem::swap(delta, scratch);
    }

    fn predict(&self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        self.pool(input, n, out);
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// Global average pooling: each channel's mean over the image, `C × H × W`
/// to `C` (PyTorch's `nn.AdaptiveAvgPool2d(1)` then flattening).
#[derive(Clone, Debug)]
pub(crate) struct GlobalAvgPool {
    input: Shape,
}

impl GlobalAvgPool {
    pub fn new(input: Shape) -> Self {
        Self { input }
    }

    fn pool(&self, input: &[f32], n: usize, out: &mut [f32]) {
        let area = self.input[1] * self.input[2];
        for (o, channel) in out[..n * self.input[0]].iter_mut().zip(input.chunks_exact(area)) {
            *o = channel.iter().sum::<f32>() / area as f32;
        }
    }
}

impl Layer for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "global_avgpool"
    }

    fn input_width(&self) -> usize {
        self.input.iter().product()
    }

    fn output_width(&self) -> usize {
        self.input[0]
    }

    fn forward(&mut self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _rng: &mut Rng) {
        self.pool(input, n, out);
    }

    fn backward(
        &mut self,
        _params: &[f32],
        _input: &[f32],
        n: usize,
        delta: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        _grad: &mut [f32],
        input_grad: bool,
    ) {
        if !input_grad {
            return;
        }
        let area = self.input[1] * self.input[2];
        scratch.clear();
        scratch.resize(n * self.input_width(), 0.0);
        for (channel, d) in scratch.chunks_exact_mut(area).zip(&delta[..n * self.input[0]]) {
            channel.fill(d / area as f32);
        }
        std::mem::swap(delta, scratch);
    }

    fn predict(&self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        self.pool(input, n, out);
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
// PyTorch's values are pasted as printed.
#[allow(clippy::excessive_precision)]
pub(crate) mod tests {
    use super::*;
    use gradus_data::seeded_rng;
    use proptest::prelude::*;
    use rand::Rng as _;
    use rand::seq::SliceRandom;

    /// Checks `layer`'s backward pass against central differences of
    /// L = Σ r·forward(x) for random r, on `n` rows of `x`: the gradient of
    /// every parameter and every input. `x` should keep any kink (a max's
    /// tie) farther than `h` away.
    pub(crate) fn check_gradients(layer: &mut dyn Layer, x: &[f32], n: usize, h: f32, seed: u64) {
        let mut rng = seeded_rng(seed);
        let mut params = vec![0.0; layer.n_params()];
        params.iter_mut().for_each(|p| *p = rng.random_range(-1.0f32..1.0));
        let r: Vec<f32> = (0..n * layer.output_width()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let value = |layer: &mut dyn Layer, params: &[f32], x: &[f32]| -> f64 {
            let mut out = vec![0.0; n * layer.output_width()];
            layer.forward(params, x, n, &mut out, &mut seeded_rng(0));
            out.iter().zip(&r).map(|(o, r)| f64::from(o * r)).sum()
        };
        value(layer, &params, x);
        let (mut delta, mut scratch) = (r.clone(), Vec::new());
        let mut grad = vec![0.0; layer.n_params()];
        layer.backward(&params, x, n, &mut delta, &mut scratch, &mut grad, true);
        let analytic: Vec<f32> = grad.iter().chain(&delta).copied().collect();
        let mut numeric = Vec::new();
        for i in 0..params.len() {
            let mut p = params.clone();
            p[i] = params[i] + h;
            let plus = value(layer, &p, x);
            p[i] = params[i] - h;
            numeric.push(((plus - value(layer, &p, x)) / (2.0 * f64::from(h))) as f32);
        }
        for i in 0..x.len() {
            let mut v = x.to_vec();
            v[i] = x[i] + h;
            let plus = value(layer, &params, &v);
            v[i] = x[i] - h;
            numeric.push(((plus - value(layer, &params, &v)) / (2.0 * f64::from(h))) as f32);
        }
        assert_eq!(analytic.len(), numeric.len(), "a gradient for every parameter and input");
        for (k, (a, b)) in analytic.iter().zip(&numeric).enumerate() {
            assert!(
                (a - b).abs() <= 2e-3 * (1.0 + b.abs()),
                "{}: gradient {k}: analytic {a}, numeric {b}",
                layer.kind()
            );
        }
    }

    /// `len` distinct values at least 0.05 apart, in random order: no max
    /// is tied or within a small step of a tie.
    fn distinct(len: usize, rng: &mut gradus_data::Rng) -> Vec<f32> {
        let mut v: Vec<f32> = (0..len).map(|i| i as f32 * 0.05 - len as f32 * 0.025).collect();
        v.shuffle(rng);
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn conv2d_gradients_match_finite_differences(
            channels in 1usize..4, h in 1usize..8, w in 1usize..8, out in 1usize..4,
            kernel in 1usize..5, stride in 1usize..4, padding in 0usize..3, n in 1usize..3, seed: u64,
        ) {
            let conv = Conv2d::new([channels, h, w], out, kernel, stride, padding);
            prop_assume!(conv.is_some());
            let mut conv = conv.unwrap();
            let mut rng = seeded_rng(seed);
            let x: Vec<f32> = (0..n * channels * h * w).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            // Linear in the weights and in the inputs: differences are exact but for rounding.
            check_gradients(&mut conv, &x, n, 0.25, seed);
        }

        #[test]
        fn max_pool_gradients_match_finite_differences(
            channels in 1usize..4, h in 1usize..9, w in 1usize..9, kernel in 1usize..4, stride in 1usize..4,
            n in 1usize..3, seed: u64,
        ) {
            let pool = MaxPool2d::new([channels, h, w], kernel, stride);
            prop_assume!(pool.is_some());
            let mut pool = pool.unwrap();
            let x = distinct(n * channels * h * w, &mut seeded_rng(seed));
            check_gradients(&mut pool, &x, n, 0.01, seed);
        }

        #[test]
        fn avg_pool_gradients_match_finite_differences(
            channels in 1usize..4, h in 1usize..9, w in 1usize..9, kernel in 1usize..4, stride in 1usize..4,
            n in 1usize..3, seed: u64,
        ) {
            let pool = AvgPool2d::new([channels, h, w], kernel, stride);
            prop_assume!(pool.is_some());
            let mut rng = seeded_rng(seed);
            let x: Vec<f32> = (0..n * channels * h * w).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            check_gradients(&mut pool.unwrap(), &x, n, 0.25, seed);
        }

        #[test]
        fn global_avg_pool_gradients_match_finite_differences(
            channels in 1usize..4, h in 1usize..6, w in 1usize..6, n in 1usize..3, seed: u64,
        ) {
            let mut rng = seeded_rng(seed);
            let x: Vec<f32> = (0..n * channels * h * w).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            check_gradients(&mut GlobalAvgPool::new([channels, h, w]), &x, n, 0.25, seed);
        }
    }

    /// v(i, c) = sin(0.7·i + c) in f64, rounded to f32, as bench/reference/torch_conv2d.py makes it.
    fn v(n: usize, c: f64) -> Vec<f32> {
        (0..n).map(|i| (0.7 * i as f64 + c).sin() as f32).collect()
    }

    // Printed by bench/reference/torch_conv2d.py (PyTorch 2.15.0).
    const CONV_OUT: &[f32] = &[
        -1.1582197e+00,
        1.3710002e+00,
        8.8429576e-01,
        -3.3083107e+00,
        2.2772120e-01,
        1.3325346e+00,
        -1.7636858e+00,
        7.4985057e-01,
        4.3344817e-01,
        -3.8681726e+00,
        -3.0854478e-01,
        9.6420860e-01,
        -2.5676780e+00,
        -7.2667167e-02,
        -2.1840979e-01,
        -4.6241803e+00,
        -1.0449829e+00,
        3.9427191e-01,
        2.7526667e+00,
        9.2535782e-01,
        6.8366241e-01,
        5.0870261e+00,
        2.4931586e+00,
        9.6417522e-01,
        2.3776252e+00,
        6.0774988e-01,
        2.1104874e-01,
        4.6917901e+00,
        2.1004586e+00,
        4.0256986e-01,
        1.7993751e+00,
        8.8934317e-02,
        -4.6232364e-01,
        4.0907292e+00,
        1.5048635e+00,
        -3.6001098e-01,
    ];
    const CONV_GRAD_W: &[f32] = &[
        1.6493139e-01,
        3.3837974e-01,
        1.0039455e-01,
        -1.3689268e-01,
        -2.4192333e-03,
        1.4116991e-01,
        -3.0033588e-02,
        -2.0725787e-01,
        -2.9182518e-01,
        -3.2640636e-02,
        -1.4317429e-01,
        -2.8590328e-01,
        4.2811447e-01,
        5.9136021e-01,
        4.7008389e-01,
        -4.7011483e-01,
        -5.8327341e-01,
        -4.1298503e-01,
        -1.1569977e-01,
        -3.3339363e-01,
        -1.6847330e-01,
        3.9975759e-01,
        5.2243161e-01,
        2.6207352e-01,
        -3.4901437e-01,
        -3.8722920e-01,
        -1.1826873e-01,
        -3.3702660e-01,
        -2.4302602e-01,
        -1.1151716e-01,
        -1.6901612e-02,
        -2.1662652e-01,
        -3.2323945e-01,
        1.5820384e-01,
        3.9834821e-01,
        4.1115361e-01,
        -5.1485300e-02,
        -1.1479974e-02,
        6.4797163e-02,
        -2.5507820e-01,
        -5.0983632e-01,
        -3.9813876e-01,
        3.7224960e-01,
        5.8694428e-01,
        4.0779033e-01,
        3.6310250e-01,
        3.8146672e-01,
        3.9524829e-01,
        -4.1154203e-01,
        -3.7895334e-01,
        -1.5314066e-01,
        3.1499249e-01,
        1.9268441e-01,
        9.8400116e-03,
    ];
    const CONV_GRAD_B: &[f32] = &[-5.0266247e+00, 2.2256780e+00, 2.8442998e+00];
    const CONV_GRAD_X: &[f32] = &[
        1.7307363e-02,
        -1.1842811e-02,
        -1.4845469e-02,
        -5.9833527e-02,
        -4.0016249e-02,
        -4.5911912e-02,
        -7.0798099e-02,
        -2.3046998e-02,
        -3.5722949e-02,
        1.0657412e-02,
        -4.6366736e-02,
        -6.2057074e-02,
        -3.0910317e-02,
        -1.5244308e-02,
        -9.1623806e-04,
        5.3783640e-02,
        8.9415222e-02,
        4.9936429e-02,
        6.7567900e-02,
        2.2603340e-02,
        1.6716601e-02,
        -1.2815484e-02,
        -1.5073525e-02,
        -6.0092956e-02,
        -3.9774213e-02,
        -4.6831291e-02,
        -7.1596205e-02,
        -2.3498332e-02,
        -3.5524234e-02,
        1.0886353e-02,
        -4.5768540e-02,
        -6.0916878e-02,
        -3.0237185e-02,
        -1.4075945e-02,
        -4.8485619e-04,
        5.4150309e-02,
        8.9732051e-02,
        5.0040405e-02,
        6.7190856e-02,
        2.2395698e-02,
        1.5831908e-02,
        -1.4486206e-02,
        -1.6333010e-02,
        -6.1570026e-02,
        -4.0816158e-02,
        -4.5256138e-02,
        -6.9796339e-02,
        -2.1557761e-02,
        -3.3433709e-02,
        1.2279628e-02,
        -4.6102967e-02,
        -6.0340405e-02,
        -2.9706670e-02,
        -1.2605308e-02,
        6.6102535e-04,
        5.4212544e-02,
        8.9321919e-02,
        4.9094506e-02,
        6.5560184e-02,
        2.0886576e-02,
        1.5253132e-02,
        -1.5433050e-02,
        -1.6539184e-02,
        -6.1788924e-02,
        -4.0552780e-02,
        -4.6161722e-02,
        -7.0551738e-02,
        -2.1978874e-02,
        -3.3185489e-02,
        1.2541125e-02,
        -4.5493796e-02,
        -5.9185345e-02,
        -2.9038340e-02,
        -1.1450483e-02,
        1.0742031e-03,
        5.4569762e-02,
        8.9606233e-02,
        4.9183439e-02,
        6.5151729e-02,
        2.0665351e-02,
    ];
    const POOL_OUT: &[f32] = &[
        9.3799996e-01,
        9.4073057e-01,
        5.0866145e-01,
        9.4369566e-01,
        9.2879522e-01,
        9.4912457e-01,
        9.5428509e-01,
        5.3732216e-01,
        9.5917583e-01,
        9.1580963e-01,
        5.6537527e-01,
        9.6379536e-01,
        9.0178835e-01,
        5.9278905e-01,
        9.7221577e-01,
        3.9592516e-01,
    ];
    const POOL_GRAD_X: &[f32] = &[
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        -9.5892429e-01,
        -5.5068552e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        1.1654920e-01,
        7.2896904e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        7.9848713e-01,
        9.9854332e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        -4.5753589e-01,
        2.2288992e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        -9.2277545e-01,
        -9.5401925e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        -5.3657293e-01,
        1.3323204e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        7.4037588e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        9.9930936e-01,
        7.8825206e-01,
        0.0000000e+00,
        2.0646748e-01,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
        0.0000000e+00,
    ];

    const AVG_OUT: &[f32] = &[
        -5.4499251e-03,
        -1.4411741e-03,
        2.3835700e-03,
        5.2622226e-03,
        2.5479794e-03,
        5.2084359e-03,
        2.8181407e-03,
        -4.1466025e-03,
        2.6587381e-03,
        -4.2644409e-03,
        -5.4707611e-03,
        -7.1978569e-04,
        -5.4604877e-03,
        -5.3690537e-04,
        3.1748149e-03,
        4.9351058e-03,
    ];
    const AVG_GRAD_X: &[f32] = &[
        7.2998509e-02,
        7.2998509e-02,
        1.8279499e-01,
        1.0979647e-01,
        1.0979647e-01,
        0.0000000e+00,
        7.2998509e-02,
        7.2998509e-02,
        1.8279499e-01,
        1.0979647e-01,
        1.0979647e-01,
        0.0000000e+00,
        1.6795394e-01,
        1.6795394e-01,
        3.1320581e-01,
        1.4525184e-01,
        1.4525184e-01,
        0.0000000e+00,
        9.4955429e-02,
        9.4955429e-02,
        1.3041081e-01,
        3.5455372e-02,
        3.5455372e-02,
        0.0000000e+00,
        9.4955429e-02,
        9.4955429e-02,
        1.3041081e-01,
        3.5455372e-02,
        3.5455372e-02,
        0.0000000e+00,
        -4.0719904e-02,
        -4.0719904e-02,
        -1.3846388e-01,
        -9.7743973e-02,
        -9.7743973e-02,
        0.0000000e+00,
        -4.0719904e-02,
        -4.0719904e-02,
        -1.3846388e-01,
        -9.7743973e-02,
        -9.7743973e-02,
        0.0000000e+00,
        -1.4951742e-01,
        -1.4951742e-01,
        -3.1594330e-01,
        -1.6642588e-01,
        -1.6642588e-01,
        0.0000000e+00,
        -1.0879752e-01,
        -1.0879752e-01,
        -1.7747942e-01,
        -6.8681903e-02,
        -6.8681903e-02,
        0.0000000e+00,
        -1.0879752e-01,
        -1.0879752e-01,
        -1.7747942e-01,
        -6.8681903e-02,
        -6.8681903e-02,
        0.0000000e+00,
        3.7358941e-03,
        3.7358941e-03,
        7.8132533e-02,
        7.4396640e-02,
        7.4396640e-02,
        0.0000000e+00,
        3.7358941e-03,
        3.7358941e-03,
        7.8132533e-02,
        7.4396640e-02,
        7.4396640e-02,
        0.0000000e+00,
        1.1380338e-01,
        1.1380338e-01,
        2.8217191e-01,
        1.6836852e-01,
        1.6836852e-01,
        0.0000000e+00,
        1.1006749e-01,
        1.1006749e-01,
        2.0403937e-01,
        9.3971871e-02,
        9.3971871e-02,
        0.0000000e+00,
        1.1006749e-01,
        1.1006749e-01,
        2.0403937e-01,
        9.3971871e-02,
        9.3971871e-02,
        0.0000000e+00,
        3.3679817e-02,
        3.3679817e-02,
        -8.7725632e-03,
        -4.2452380e-02,
        -4.2452380e-02,
        0.0000000e+00,
        3.3679817e-02,
        3.3679817e-02,
        -8.7725632e-03,
        -4.2452380e-02,
        -4.2452380e-02,
        0.0000000e+00,
        -6.4938739e-02,
        -6.4938739e-02,
        -2.1579400e-01,
        -1.5085527e-01,
        -1.5085527e-01,
        0.0000000e+00,
        -9.8618560e-02,
        -9.8618560e-02,
        -2.0702145e-01,
        -1.0840289e-01,
        -1.0840289e-01,
        0.0000000e+00,
        -9.8618560e-02,
        -9.8618560e-02,
        -2.0702145e-01,
        -1.0840289e-01,
        -1.0840289e-01,
        0.0000000e+00,
    ];
    const GAP_OUT: &[f32] = &[5.5061746e-02, -8.4901817e-02, 3.7944648e-02, 4.3335021e-02];
    const GAP_GRAD_X: &[f32] = &[
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        1.3737283e-02,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -9.0586869e-03,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -2.7594214e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
        -3.3151753e-02,
    ];

    /// Runs `layer` forward and backward on `x` with the output gradient `r`:
    /// the outputs, then the parameter and input gradients.
    fn run(layer: &mut dyn Layer, params: &[f32], x: &[f32], n: usize, r: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut out = vec![0.0; n * layer.output_width()];
        layer.forward(params, x, n, &mut out, &mut seeded_rng(0));
        let (mut delta, mut scratch) = (r.to_vec(), Vec::new());
        let mut grad = vec![0.0; layer.n_params()];
        layer.backward(params, x, n, &mut delta, &mut scratch, &mut grad, true);
        (out, grad, delta)
    }

    fn assert_close(name: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{name}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{name}[{i}]: {g} vs PyTorch's {w}");
        }
    }

    #[test]
    fn conv2d_and_pooling_match_pytorch() {
        // Conv2d(2, 3, 3, stride=2, padding=1) on 2 images of 2x4x5.
        let mut conv = Conv2d::new([2, 4, 5], 3, 3, 2, 1).unwrap();
        assert_eq!(conv.output_shape(), [3, 2, 3]);
        let params: Vec<f32> = v(54, 1.0).into_iter().chain(v(3, 2.0)).collect();
        let (out, grad, dx) = run(&mut conv, &params, &v(80, 0.0), 2, &v(36, 3.0));
        assert_close("conv output", &out, CONV_OUT);
        assert_close("conv weight gradient", &grad[..54], CONV_GRAD_W);
        assert_close("conv bias gradient", &grad[54..], CONV_GRAD_B);
        assert_close("conv input gradient", &dx, CONV_GRAD_X);
        // MaxPool2d(2) on 2 images of 2x5x4.
        let mut pool = MaxPool2d::new([2, 5, 4], 2, 2).unwrap();
        let (out, _, dx) = run(&mut pool, &[], &v(80, 4.0), 2, &v(16, 5.0));
        assert_close("pool output", &out, POOL_OUT);
        assert_close("pool input gradient", &dx, POOL_GRAD_X);
        // AvgPool2d(3, stride=2) on 2 images of 2x5x6; global average pooling.
        let mut pool = AvgPool2d::new([2, 5, 6], 3, 2).unwrap();
        assert_eq!(pool.output_shape(), [2, 2, 2]);
        let (out, _, dx) = run(&mut pool, &[], &v(120, 6.0), 2, &v(16, 7.0));
        assert_close("avg pool output", &out, AVG_OUT);
        assert_close("avg pool input gradient", &dx, AVG_GRAD_X);
        let (out, _, dx) = run(&mut GlobalAvgPool::new([2, 5, 6]), &[], &v(120, 8.0), 2, &v(4, 9.0));
        assert_close("global avg pool output", &out, GAP_OUT);
        assert_close("global avg pool input gradient", &dx, GAP_GRAD_X);
    }

    #[test]
    fn max_pools_keep_the_first_maximum_and_propagate_nan() {
        // Ties and NaN in 2x2 windows: 3 ties at 5 (the first, index 0, wins); NaN wins over numbers.
        let image = [5.0, 5.0, 1.0, f32::NAN, 5.0, 2.0, 3.0, 4.0, 0.0, -1.0, 7.0, 7.0, -2.0, -3.0, 7.0, 6.0];
        let pool = MaxPool2d::new([1, 4, 4], 2, 2).unwrap();
        let (mut fast, mut out) = (vec![0; 4], vec![0.0; 4]);
        pool.pool(&image, &mut out, |to, from| fast[to] = from);
        assert_eq!(fast, [0, 3, 8, 10]);
        assert_eq!(out[0], 5.0);
        assert!(out[1].is_nan());
        assert_eq!(out[2..], [0.0, 7.0]);
        // The general loops keep the same: a 3x3 window over the same ties.
        let pool = MaxPool2d::new([1, 4, 4], 3, 1).unwrap();
        let mut general = vec![0; 4];
        pool.pool(&image, &mut out, |to, from| general[to] = from);
        // Only the top-right window holds the NaN; the others' first 7 is at 10.
        assert_eq!(general, [10, 3, 10, 10]);
    }

    #[test]
    fn shapes_follow_pytorch() {
        // nn.Conv2d(3, 8, 5, stride=2, padding=1) on 3x32x30: 8x15x14.
        assert_eq!(Conv2d::new([3, 32, 30], 8, 5, 2, 1).unwrap().output_shape(), [8, 15, 14]);
        // nn.MaxPool2d(2) on 8x15x14: 8x7x7 (the last row is dropped).
        assert_eq!(MaxPool2d::new([8, 15, 14], 2, 2).unwrap().output_shape(), [8, 7, 7]);
        assert!(Conv2d::new([1, 4, 4], 2, 7, 1, 1).is_none(), "a kernel larger than its padded input");
        assert!(MaxPool2d::new([1, 1, 5], 2, 2).is_none());
    }

    #[test]
    fn predict_matches_the_training_forward_pass() {
        let mut rng = seeded_rng(4);
        let mut conv = Conv2d::new([2, 6, 5], 3, 3, 1, 1).unwrap();
        let mut pool = MaxPool2d::new([3, 6, 5], 2, 2).unwrap();
        let params: Vec<f32> = (0..conv.n_params()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let x: Vec<f32> = (0..2 * 60).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let predict = |layer: &dyn Layer, params: &[f32], x: &[f32]| {
            let mut out = vec![0.0; 2 * layer.output_width()];
            layer.predict(params, x, 2, &mut out, &mut Vec::new());
            out
        };
        let mut out = vec![0.0; 2 * conv.output_width()];
        conv.forward(&params, &x, 2, &mut out, &mut rng);
        assert_eq!(predict(&conv, &params, &x), out);
        let mut pooled = vec![0.0; 2 * pool.output_width()];
        pool.forward(&[], &out, 2, &mut pooled, &mut rng);
        assert_eq!(predict(&pool, &[], &out), pooled);
    }

    #[test]
    fn transpose_matches_the_definition_at_any_shape() {
        for (rows, cols) in [(1, 1), (16, 16), (784, 32), (196, 64), (17, 3), (5, 40), (33, 18)] {
            let from: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut to = vec![-1.0; rows * cols];
            transpose(&from, rows, cols, &mut to);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(to[c * rows + r], from[r * cols + c], "{rows}x{cols} at {r},{c}");
                }
            }
        }
    }

    /// The int8 convolution computes, to f32's rounding of its sums, the
    /// f32 convolution of what its bytes stand for: the inputs decoded from
    /// their codes and the weights dequantized — so its im2col, layout and
    /// padding are the f32 layer's.
    #[test]
    fn int8_conv_is_the_f32_convolution_of_what_its_bytes_stand_for() {
        let mut rng = seeded_rng(5);
        for (shape, outs, k, stride, padding) in [
            ([2, 6, 5], 3, 3, 1, 1),
            ([3, 7, 7], 17, 3, 2, 0),
            ([1, 8, 8], 4, 5, 1, 2),
            ([4, 5, 6], 2, 1, 1, 0),
            ([32, 6, 6], 64, 5, 1, 2),
        ] {
            let conv = Conv2d::new(shape, outs, k, stride, padding).unwrap();
            let params: Vec<f32> = (0..conv.n_params()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let n = 3;
            let width = conv.input_width();
            let plane = shape[1] * shape[2];
            // Each channel its own range: channel c spans about (c + 1)·[-1, 2].
            let x: Vec<f32> =
                (0..n * width).map(|i| ((i % width) / plane + 1) as f32 * rng.random_range(-1.0f32..2.0)).collect();
            let q = conv.quantized(&params, crate::quant::column_ranges(&x, width)).unwrap();
            let int8 = Int8Conv::new(&conv, q).unwrap();
            let mut got = vec![0.0; n * conv.output_width()];
            int8.predict(&params, &x, n, &mut got, &mut Vec::new());

            let code = int8.q.code().columns(0..shape[0]).repeated(plane);
            let decoded: Vec<f32> = x.chunks_exact(width).flat_map(|image| code.decoded(image)).collect();
            let mut dequantized = params.clone();
            dequantized[conv.weights()].copy_from_slice(&int8.dequantized());
            let mut want = vec![0.0; n * conv.output_width()];
            conv.predict(&dequantized, &decoded, n, &mut want, &mut Vec::new());
            // f32's rounding of sums of up to C·k·k products (each below 2·C).
            let tolerance = 1e-6 * conv.patch() as f32 * 2.0 * shape[0] as f32;
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= tolerance, "{shape:?} k{k} s{stride} p{padding}: {g} vs {w}");
            }
            // And close to the f32 convolution itself.
            let mut exact = vec![0.0; n * conv.output_width()];
            conv.predict(&params, &x, n, &mut exact, &mut Vec::new());
            let scale = exact.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            let worst = got.iter().zip(&exact).map(|(g, e)| (g - e).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 0.05 * scale, "{shape:?}: int8 off by {worst} of {scale}");
        }
    }
}
