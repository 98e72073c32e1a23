//! Data augmentation for images, in training only: a layer at the front of
//! a network that moves each image of a training batch by a random shift,
//! rotation and (when asked) mirror, and passes images through unchanged at
//! inference. Being a layer, it draws from the network's seeded generator
//! (the same seed gives the same images) and needs nothing from the trainer.
//!
//! Each output pixel takes the input at the inversely transformed position,
//! interpolated bilinearly; positions outside the image read 0 (the
//! background of digits). The transform is linear in the pixels, so the
//! backward pass is its adjoint.

use gradus_data::Rng;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::conv::Shape;
use crate::layer::Layer;

/// How training images are perturbed; all off is no augmentation.
///
/// | field | meaning | range |
/// |---|---|---|
/// | `shift` | the most pixels an image moves each way, vertically and horizontally | ≥ 0 |
/// | `rotate` | the most degrees it turns about its centre, either way | [0, 180] |
/// | `flip` | mirrors half the images left to right (off for digits, which are not symmetric) | |
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    pub shift: f32,
    pub rotate: f32,
    pub flip: bool,
}

impl Augment {
    /// Whether it changes anything.
    pub fn is_active(&self) -> bool {
        self.shift > 0.0 || self.rotate > 0.0 || self.flip
    }

    /// An error naming the setting that is out of range.
    pub fn validate(&self) -> Result<(), crate::TrainError> {
        if !(self.shift >= 0.0 && self.shift.is_finite()) {
            return Err(crate::TrainError::invalid(
                "augmentation shift",
                self.shift,
                "must be a number of pixels >= 0",
            ));
        }
        if !(0.0..=180.0).contains(&self.rotate) {
            return Err(crate::TrainError::invalid(
                "augmentation rotation",
                self.rotate,
                "must be degrees in [0, 180]",
            ));
        }
        Ok(())
    }
}

/// One image's draw: shift (pixels), rotation (radians), mirror.
#[derive(Clone, Copy, Debug)]
struct Draw {
    dy: f32,
    dx: f32,
    angle: f32,
    flip: bool,
}

/// The augmentation layer (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Augmentation {
    shape: Shape,
    settings: Augment,
    /// The last training batch's draws, one per image.
    draws: Vec<Draw>,
}

impl Augmentation {
    pub fn new(shape: Shape, settings: Augment) -> Self {
        Self { shape, settings, draws: Vec::new() }
    }

    /// Calls `f(output pixel, input pixel, weight)` for each of the (up to
    /// four) input pixels each output pixel of one channel interpolates.
    fn taps(&self, draw: Draw, mut f: impl FnMut(usize, usize, f32)) {
        let [_, h, w] = self.shape;
        let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
        let (sin, cos) = draw.angle.sin_cos();
        for y in 0..h {
            for x in 0..w {
                // Where the output pixel comes from: undo the shift, the
                // rotation about the centre, then the mirror.
                let (oy, ox) = (y as f32 - draw.dy - cy, x as f32 - draw.dx - cx);
                let sy = cos * oy + sin * ox + cy;
                let mut sx = -sin * oy + cos * ox + cx;
                if draw.flip {
                    sx = w as f32 - 1.0 - sx;
                }
                let (y0, x0) = (sy.floor(), sx.floor());
                let (fy, fx) = (sy - y0, sx - x0);
                for (yy, wy) in [(y0, 1.0 - fy), (y0 + 1.0, fy)] {
                    for (xx, wx) in [(x0, 1.0 - fx), (x0 + 1.0, fx)] {
                        let weight = wy * wx;
                        if weight > 0.0 && yy >= 0.0 && xx >= 0.0 && yy < h as f32 && xx < w as f32 {
                            f(y * w + x, yy as usize * w + xx as usize, weight);
                        }
                    }
                }
            }
        }
    }
}

impl Layer for Augmentation {
    fn kind(&self) -> &'static str {
        "augment"
    }

    fn input_width(&self) -> usize {
        self.shape.iter().product()
    }

    fn output_width(&self) -> usize {
        self.input_width()
    }

    fn forward(&mut self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], rng: &mut Rng) {
        let s = self.settings;
        self.draws.clear();
        for _ in 0..n {
            let mut uniform = |half: f32| if half > 0.0 { rng.random_range(-half..=half) } else { 0.0 };
            let (dy, dx, degrees) = (uniform(s.shift), uniform(s.shift), uniform(s.rotate));
            let flip = s.flip && rng.random::<bool>();
            self.draws.push(Draw { dy, dx, angle: degrees.to_radians(), flip });
        }
        let (width, area) = (self.input_width(), self.shape[1] * self.shape[2]);
        for (i, &draw) in self.draws.iter().enumerate() {
            let o = &mut out[i * width..(i + 1) * width];
            o.fill(0.0);
            for c in 0..self.shape[0] {
                let (from, to) = (&input[i * width + c * area..], c * area);
                self.taps(draw, |at, src, weight| o[to + at] += weight * from[src]);
            }
        }
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
        let (width, area) = (self.input_width(), self.shape[1] * self.shape[2]);
        scratch.clear();
        scratch.resize(n * width, 0.0);
        for (i, &draw) in self.draws.iter().enumerate().take(n) {
            for c in 0..self.shape[0] {
                let base = i * width + c * area;
                let d = &delta[base..base + area];
                let dx = &mut scratch[base..base + area];
                self.taps(draw, |at, src, weight| dx[src] += weight * d[at]);
            }
        }
        std::mem::swap(delta, scratch);
    }

    fn predict(&self, _params: &[f32], input: &[f32], n: usize, out: &mut [f32], _scratch: &mut Vec<f32>) {
        let len = n * self.input_width();
        out[..len].copy_from_slice(&input[..len]);
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradus_data::seeded_rng;

    fn run(settings: Augment, images: &[f32], shape: Shape, seed: u64) -> Vec<f32> {
        let mut layer = Augmentation::new(shape, settings);
        let mut out = vec![0.0; images.len()];
        let n = images.len() / layer.input_width();
        layer.forward(&[], images, n, &mut out, &mut seeded_rng(seed));
        out
    }

    #[test]
    fn a_whole_pixel_shift_moves_the_image_and_fills_with_zero() {
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let layer = Augmentation::new([1, 3, 3], Augment { shift: 1.0, ..Augment::default() });
        let draw = Draw { dy: 1.0, dx: -1.0, angle: 0.0, flip: false };
        let mut out = vec![0.0; 9];
        layer.taps(draw, |at, src, weight| out[at] += weight * image[src]);
        // Down one row, left one column.
        assert_eq!(out, [0.0, 0.0, 0.0, 2.0, 3.0, 0.0, 5.0, 6.0, 0.0]);
    }

    #[test]
    fn a_quarter_turn_and_a_mirror_move_pixels_where_they_should() {
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let layer = Augmentation::new([1, 3, 3], Augment::default());
        let turn = |draw: Draw| {
            let mut out = [0.0f32; 9];
            layer.taps(draw, |at, src, weight| out[at] += weight * image[src]);
            out.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<f32>>()
        };
        let quarter = turn(Draw { dy: 0.0, dx: 0.0, angle: std::f32::consts::FRAC_PI_2, flip: false });
        // 1 2 3 / 4 5 6 / 7 8 9 turned a quarter counter-clockwise as shown: 3 6 9 / 2 5 8 / 1 4 7.
        assert_eq!(quarter, [3.0, 6.0, 9.0, 2.0, 5.0, 8.0, 1.0, 4.0, 7.0]);
        let mirrored = turn(Draw { dy: 0.0, dx: 0.0, angle: 0.0, flip: true });
        assert_eq!(mirrored, [3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0]);
    }

    #[test]
    fn augmentation_is_seeded_off_at_inference_and_its_gradient_is_the_adjoint() {
        let shape = [2, 5, 4];
        let settings = Augment { shift: 1.5, rotate: 20.0, flip: true };
        let mut rng = seeded_rng(3);
        let image: Vec<f32> = (0..2 * 40).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        assert_eq!(run(settings, &image, shape, 7), run(settings, &image, shape, 7), "same seed, same images");
        assert_ne!(run(settings, &image, shape, 7), run(settings, &image, shape, 8));
        let layer = Augmentation::new(shape, settings);
        let mut seen = vec![0.0; image.len()];
        layer.predict(&[], &image, 2, &mut seen, &mut Vec::new());
        assert_eq!(seen, image, "inference sees the images as they are");
        let mut layer = Augmentation::new(shape, settings);
        crate::conv::tests::check_gradients(&mut layer, &image, 2, 0.25, 11);
    }
}
