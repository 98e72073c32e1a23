//! The standard normal distribution's CDF, tails and quantile, as the
//! samplers need them: Φ and its upper tail Q by W. J. Cody's rational
//! Chebyshev approximations (Cody, "Rational Chebyshev approximations for
//! the error function", Math. Comp. 1969; the form of his ACM Algorithm 715,
//! as in R's `pnorm`), which keep ~16 significant digits however far into
//! the tail; log masses that never underflow; and Acklam's quantile.

use std::f64::consts::PI;

/// 1/√(2π).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Q(y) = Φ(−y) = 1 − Φ(y) for y ≥ 0, as (factor, exponent) with
/// Q = factor · exp(exponent), so its log never underflows.
#[allow(clippy::excessive_precision)] // Cody's coefficients, as published
fn upper_tail_parts(y: f64) -> (f64, f64) {
    const A: [f64; 5] = [
        2.2352520354606839287,
        161.02823106855587881,
        1067.6894854603709582,
        18154.981253343561249,
        0.065682337918207449113,
    ];
    const B: [f64; 4] = [47.20258190468824187, 976.09855173777669322, 10260.932208618978205, 45507.789335026729956];
    const C: [f64; 9] = [
        0.39894151208813466764,
        8.8831497943883759412,
        93.506656132177855979,
        597.27027639480026226,
        2494.5375852903726711,
        6848.1904505362823326,
        11602.651437647350124,
        9842.7148383839780218,
        1.0765576773720192317e-8,
    ];
    const D: [f64; 8] = [
        22.266688044328115691,
        235.38790178262499861,
        1519.377599407554805,
        6485.558298266760755,
        18615.571640885098091,
        34900.952721145977266,
        38912.003286093271411,
        19685.429676859990727,
    ];
    const P: [f64; 6] = [
        0.21589853405795699,
        0.1274011611602473639,
        0.022235277870649807,
        0.001421619193227893466,
        2.9112874951168792e-5,
        0.02307344176494017303,
    ];
    const Q: [f64; 5] = [
        1.28426009614491121,
        0.468238212480865118,
        0.0659881378689285515,
        0.00378239633202758244,
        7.29751555083966205e-5,
    ];
    if y == f64::INFINITY {
        return (0.0, f64::NEG_INFINITY);
    }
    if y <= 0.67448975 {
        // Φ(y) − 1/2 = y · R(y²) near the centre.
        let ysq = y * y;
        let (mut num, mut den) = (A[4] * ysq, ysq);
        for i in 0..3 {
            num = (num + A[i]) * ysq;
            den = (den + B[i]) * ysq;
        }
        (0.5 - y * (num + A[3]) / (den + B[3]), 0.0)
    } else {
        let r = if y <= 32f64.sqrt() {
            let (mut num, mut den) = (C[8] * y, y);
            for i in 0..7 {
                num = (num + C[i]) * y;
                den = (den + D[i]) * y;
            }
            (num + C[7]) / (den + D[7])
        } else {
            let ysq = 1.0 / (y * y);
            let (mut num, mut den) = (P[5] * ysq, ysq);
            for i in 0..4 {
                num = (num + P[i]) * ysq;
                den = (den + Q[i]) * ysq;
            }
            (FRAC_1_SQRT_2PI - ysq * (num + P[4]) / (den + Q[4])) / y
        };
        // exp(−y²/2) split as Cody does, y² = s² + (y − s)(y + s) with s
        // y rounded to 1/16, so the large part of the exponent is exact.
        let s = (y * 16.0).trunc() / 16.0;
        (r * (-(y - s) * (y + s) * 0.5).exp(), -s * s * 0.5)
    }
}

/// Q(y) = Φ(−y) for y ≥ 0.
pub(crate) fn upper_tail(y: f64) -> f64 {
    let (factor, exponent) = upper_tail_parts(y);
    factor * exponent.exp()
}

/// log Q(y) for y ≥ 0, finite however far out.
pub(crate) fn log_upper_tail(y: f64) -> f64 {
    let (factor, exponent) = upper_tail_parts(y);
    factor.ln() + exponent
}

/// Φ(z).
pub fn normal_cdf(z: f64) -> f64 {
    if z >= 0.0 { 1.0 - upper_tail(z) } else { upper_tail(-z) }
}

/// Φ(b) − Φ(a) for a ≤ b; fast for intervals around 0 (a kernel over its
/// bounds), where tails beyond 8.3 (below 1e-16) are dropped.
pub fn gauss_mass(a: f64, b: f64) -> f64 {
    if a < 0.0 && b > 0.0 {
        let tail = |y: f64| if y > 8.3 { 0.0 } else { upper_tail(y) };
        1.0 - tail(-a) - tail(b)
    } else {
        log_gauss_mass(a, b).exp()
    }
}

/// log(Φ(b) − Φ(a)) for a ≤ b, accurate far into either tail.
pub(crate) fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if a >= 0.0 {
        // Both in the upper tail: Q(a) − Q(b).
        let (la, lb) = (log_upper_tail(a), log_upper_tail(b));
        la + (-(lb - la).exp()).ln_1p()
    } else if b <= 0.0 {
        log_gauss_mass(-b, -a)
    } else {
        gauss_mass(a, b).ln()
    }
}

/// Φ⁻¹(p) (Acklam's algorithm, refined by one Halley step).
#[allow(clippy::excessive_precision)]
pub(crate) fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let x = if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - 0.02425 {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_and_log_tails_match_scipy() {
        // mpmath 1.3 at 40 digits: float(ncdf(x)), float(log(ncdf(x))). (scipy's
        // ndtr is off by 1.5e-14 relative at -12; Cody's form is not.)
        let reference = [
            (-0.3, 0.3820885778110474, -0.9621028181688507),
            (-1.7, 0.04456546275854304, -3.1107960975524813),
            (-4.0, 3.1671241833119924e-05, -10.360101486527292),
            (-7.5, 3.1908916729108963e-14, -31.075890902890002),
            (-12.0, 1.776482112077679e-33, -75.4106730015688),
            (-38.5, 0.0, -745.695270290411),
        ];
        for (x, cdf, log_cdf) in reference {
            assert!((normal_cdf(x) - cdf).abs() <= 4e-16 * cdf, "{x}: {} vs {cdf}", normal_cdf(x));
            assert!((log_upper_tail(-x) - log_cdf).abs() <= 4e-16 * log_cdf.abs(), "{x}");
            assert!((normal_cdf(-x) - (1.0 - cdf)).abs() < 3e-16, "{x}");
        }
        // log(ncdf(-40)) = -804.6084420137538
        assert!((log_gauss_mass(f64::NEG_INFINITY, -40.0) - -804.6084420137538).abs() < 1e-12);
        // ncdf(1) - ncdf(-1) = 0.6826894921370859; ncdf(2) - ncdf(1.5) = 0.044057069320678856
        assert!((log_gauss_mass(-1.0, 1.0).exp() - 0.6826894921370859).abs() < 1e-15);
        assert!((log_gauss_mass(1.5, 2.0).exp() - 0.044057069320678856).abs() < 1e-16);
        assert!((log_gauss_mass(30.0, 31.0) - log_gauss_mass(-31.0, -30.0)).abs() < 1e-12);
        assert!(log_gauss_mass(30.0, 31.0).is_finite());
        assert_eq!((normal_cdf(f64::INFINITY), normal_cdf(f64::NEG_INFINITY)), (1.0, 0.0));
    }

    #[test]
    fn the_quantile_inverts_the_cdf() {
        // scipy.stats.norm.ppf(0.975) = 1.959963984540054
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-12);
        for p in [1e-10, 0.01, 0.3, 0.5, 0.9, 0.999999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-12 * p.max(1e-3) * 1e3, "{p}");
        }
    }
}
