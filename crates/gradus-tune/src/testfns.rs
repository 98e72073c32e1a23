//! Standard test functions with known global minima, for judging samplers:
//! the regret of a study (its best value minus the known minimum) says how
//! close it came.
//!
//! The definitions and domains are the usual ones (Surjanovic & Bingham's
//! Virtual Library of Simulation Experiments, as BoTorch's test functions use
//! them); every function is minimised. A point is a slice of f64 in parameter
//! order: an integer parameter as its (integral) value, a categorical one as
//! the index of its choice. [`TestFunction::space`] gives the matching search
//! space, parameters named `x00`, `x01`, ... so name order is parameter order.
//!
//! ```
//! use gradus_tune::testfns;
//!
//! let f = testfns::by_name("hartmann6").unwrap();
//! assert_eq!(f.dim(), 6);
//! assert!((f.eval(&f.minimiser) - f.min_value).abs() < 1e-9);
//! ```

use std::f64::consts::{E, PI};

use crate::{Distribution, SearchSpace};

/// How a parameter is suggested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A real in its bounds.
    Float,
    /// A real in its bounds (both > 0), searched in log space.
    LogFloat,
    /// An integer in its bounds, both included.
    Int,
    /// One of these choices; its bounds are (0, len − 1) and the function
    /// sees the index.
    Categorical(&'static [&'static str]),
}

impl ParamKind {
    /// `float`, `log_float`, `int` or `categorical`.
    pub fn name(&self) -> &'static str {
        match self {
            ParamKind::Float => "float",
            ParamKind::LogFloat => "log_float",
            ParamKind::Int => "int",
            ParamKind::Categorical(_) => "categorical",
        }
    }
}

/// A test function: its domain, its parameter kinds and its known minimum.
#[derive(Clone, Debug)]
pub struct TestFunction {
    /// The family and, for the families of any dimension, the dimension:
    /// `branin`, `hartmann6`, `rosenbrock20`, ...
    pub name: String,
    /// (low, high) of each parameter, in parameter order.
    pub bounds: Vec<(f64, f64)>,
    /// How each parameter is suggested, in parameter order.
    pub kinds: Vec<ParamKind>,
    /// The global minimum value.
    pub min_value: f64,
    /// A point where the minimum is attained (one of several for Branin).
    pub minimiser: Vec<f64>,
    f: fn(&[f64]) -> f64,
}

impl TestFunction {
    pub fn dim(&self) -> usize {
        self.bounds.len()
    }

    /// The value at `x` (one entry per parameter; categoricals as indices).
    pub fn eval(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.dim(), "{} takes {} parameters", self.name, self.dim());
        (self.f)(x)
    }

    /// `best` minus the minimum: how far a search is from the optimum.
    pub fn regret(&self, best: f64) -> f64 {
        best - self.min_value
    }

    /// Whether every parameter is a real (CMA-ES style samplers need that).
    pub fn is_continuous(&self) -> bool {
        self.kinds.iter().all(|k| matches!(k, ParamKind::Float | ParamKind::LogFloat))
    }

    /// The name of parameter `i`: `x00`, `x01`, ... (zero-padded, so name
    /// order is parameter order).
    pub fn param_name(i: usize) -> String {
        format!("x{i:02}")
    }

    /// The distribution of parameter `i`.
    pub fn distribution(&self, i: usize) -> Distribution {
        let (low, high) = self.bounds[i];
        match self.kinds[i] {
            ParamKind::Float => Distribution::float(low, high),
            ParamKind::LogFloat => Distribution::log_float(low, high),
            ParamKind::Int => Distribution::int(low as i64, high as i64),
            ParamKind::Categorical(choices) => Distribution::categorical(choices.iter().copied()),
        }
    }

    /// The search space: parameter `i` named [`TestFunction::param_name`]`(i)`.
    pub fn space(&self) -> SearchSpace {
        SearchSpace((0..self.dim()).map(|i| (Self::param_name(i), self.distribution(i))).collect())
    }

    fn floats(name: String, bounds: (f64, f64), dim: usize, min_value: f64, at: f64, f: fn(&[f64]) -> f64) -> Self {
        TestFunction {
            name,
            bounds: vec![bounds; dim],
            kinds: vec![ParamKind::Float; dim],
            min_value,
            minimiser: vec![at; dim],
            f,
        }
    }
}

/// The benchmark suite: dimensions 2 to 20, smooth and multimodal, and one
/// mixed integer/categorical function.
pub fn suite() -> Vec<TestFunction> {
    vec![
        branin(),
        hartmann3(),
        hartmann6(),
        rosenbrock(5),
        rosenbrock(20),
        ackley(10),
        levy(10),
        rastrigin(8),
        styblinski_tang(10),
        griewank(10),
        mixed(),
    ]
}

/// A function by name: a suite name (`branin`, `hartmann3`, `hartmann6`,
/// `mixed`) or a family of any dimension with its dimension (`rosenbrock7`,
/// `ackley2`, `levy3`, `rastrigin20`, `styblinski_tang4`, `griewank5`; from 1
/// to 1000, from 2 for Rosenbrock).
pub fn by_name(name: &str) -> Option<TestFunction> {
    match name {
        "branin" => return Some(branin()),
        "hartmann3" => return Some(hartmann3()),
        "hartmann6" => return Some(hartmann6()),
        "mixed" => return Some(mixed()),
        _ => {}
    }
    let split = name.find(|c: char| c.is_ascii_digit())?;
    let (family, digits) = name.split_at(split);
    let dim: usize = digits.parse().ok().filter(|d| (1..=1000).contains(d) && !digits.starts_with('0'))?;
    match family {
        "rosenbrock" if dim >= 2 => Some(rosenbrock(dim)),
        "ackley" => Some(ackley(dim)),
        "levy" => Some(levy(dim)),
        "rastrigin" => Some(rastrigin(dim)),
        "styblinski_tang" => Some(styblinski_tang(dim)),
        "griewank" => Some(griewank(dim)),
        _ => None,
    }
}

/// Branin–Hoo on [−5, 10] × [0, 15]: three global minima, 5/(4π) ≈ 0.397887,
/// at (−π, 12.275), (π, 2.275) and (3π, 2.475).
pub fn branin() -> TestFunction {
    TestFunction {
        name: "branin".into(),
        bounds: vec![(-5.0, 10.0), (0.0, 15.0)],
        kinds: vec![ParamKind::Float; 2],
        min_value: 5.0 / (4.0 * PI),
        minimiser: vec![PI, 2.275],
        f: branin_fn,
    }
}

fn branin_fn(x: &[f64]) -> f64 {
    let (b, c, r, s, t) = (5.1 / (4.0 * PI * PI), 5.0 / PI, 6.0, 10.0, 1.0 / (8.0 * PI));
    (x[1] - b * x[0] * x[0] + c * x[0] - r).powi(2) + s * (1.0 - t) * x[0].cos() + s
}

const HARTMANN_ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];

const HARTMANN3_A: [[f64; 3]; 4] = [[3.0, 10.0, 30.0], [0.1, 10.0, 35.0], [3.0, 10.0, 30.0], [0.1, 10.0, 35.0]];

/// Hartmann-3's P, times 10⁴.
const HARTMANN3_P: [[f64; 3]; 4] =
    [[3689.0, 1170.0, 2673.0], [4699.0, 4387.0, 7470.0], [1091.0, 8732.0, 5547.0], [381.0, 5743.0, 8828.0]];

const HARTMANN6_A: [[f64; 6]; 4] = [
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
];

/// Hartmann-6's P, times 10⁴.
const HARTMANN6_P: [[f64; 6]; 4] = [
    [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
    [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
    [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
    [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
];

fn hartmann<const D: usize>(x: &[f64], a: &[[f64; D]; 4], p: &[[f64; D]; 4]) -> f64 {
    -(0..4)
        .map(|i| {
            let inner: f64 = (0..D).map(|j| a[i][j] * (x[j] - 1e-4 * p[i][j]).powi(2)).sum();
            HARTMANN_ALPHA[i] * (-inner).exp()
        })
        .sum::<f64>()
}

/// Hartmann-3 on [0, 1]³: minimum ≈ −3.86278 at ≈ (0.114589, 0.555649, 0.852547).
pub fn hartmann3() -> TestFunction {
    TestFunction {
        name: "hartmann3".into(),
        bounds: vec![(0.0, 1.0); 3],
        kinds: vec![ParamKind::Float; 3],
        // Refined by BFGS from the published minimiser (which gives −3.8627797869).
        min_value: -3.862_779_787_332_655,
        minimiser: vec![0.114_588_877_922_683_46, 0.555_648_886_373_362_8, 0.852_546_976_902_204_4],
        f: |x| hartmann(x, &HARTMANN3_A, &HARTMANN3_P),
    }
}

/// Hartmann-6 on [0, 1]⁶: minimum ≈ −3.32237 at ≈ (0.20169, 0.150011,
/// 0.476874, 0.275332, 0.311652, 0.6573).
pub fn hartmann6() -> TestFunction {
    TestFunction {
        name: "hartmann6".into(),
        bounds: vec![(0.0, 1.0); 6],
        kinds: vec![ParamKind::Float; 6],
        // Refined by BFGS from the published minimiser (which gives −3.3223680113913).
        min_value: -3.322_368_011_415_512_5,
        minimiser: vec![
            0.201_689_509_234_095_84,
            0.150_010_688_764_179_22,
            0.476_873_972_432_962_2,
            0.275_332_428_312_954,
            0.311_651_611_575_136_7,
            0.657_300_529_380_464_1,
        ],
        f: |x| hartmann(x, &HARTMANN6_A, &HARTMANN6_P),
    }
}

/// Rosenbrock on [−5, 10]^d: a curved narrow valley, minimum 0 at (1, ..., 1).
pub fn rosenbrock(dim: usize) -> TestFunction {
    assert!(dim >= 2, "Rosenbrock needs at least 2 dimensions");
    TestFunction::floats(format!("rosenbrock{dim}"), (-5.0, 10.0), dim, 0.0, 1.0, |x| {
        x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (w[0] - 1.0).powi(2)).sum()
    })
}

/// Ackley (a = 20, b = 0.2, c = 2π) on [−32.768, 32.768]^d: a nearly flat
/// outer region and many local minima, minimum 0 at the origin.
pub fn ackley(dim: usize) -> TestFunction {
    TestFunction::floats(format!("ackley{dim}"), (-32.768, 32.768), dim, 0.0, 0.0, |x| {
        let n = x.len() as f64;
        let squares = x.iter().map(|v| v * v).sum::<f64>() / n;
        let cosines = x.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>() / n;
        -20.0 * (-0.2 * squares.sqrt()).exp() - cosines.exp() + 20.0 + E
    })
}

/// Levy on [−10, 10]^d: minimum 0 at (1, ..., 1).
pub fn levy(dim: usize) -> TestFunction {
    TestFunction::floats(format!("levy{dim}"), (-10.0, 10.0), dim, 0.0, 1.0, |x| {
        let w: Vec<f64> = x.iter().map(|v| 1.0 + (v - 1.0) / 4.0).collect();
        let last = w[w.len() - 1];
        let middle: f64 =
            w[..w.len() - 1].iter().map(|wi| (wi - 1.0).powi(2) * (1.0 + 10.0 * (PI * wi + 1.0).sin().powi(2))).sum();
        (PI * w[0]).sin().powi(2) + middle + (last - 1.0).powi(2) * (1.0 + (2.0 * PI * last).sin().powi(2))
    })
}

/// Rastrigin on [−5.12, 5.12]^d: a regular lattice of local minima, minimum 0
/// at the origin.
pub fn rastrigin(dim: usize) -> TestFunction {
    TestFunction::floats(format!("rastrigin{dim}"), (-5.12, 5.12), dim, 0.0, 0.0, |x| {
        10.0 * x.len() as f64 + x.iter().map(|v| v * v - 10.0 * (2.0 * PI * v).cos()).sum::<f64>()
    })
}

/// The one-dimensional minimiser of Styblinski–Tang's term, ≈ −2.903534.
const STYBLINSKI_TANG_AT: f64 = -2.903_534_037_965_135_5;
/// The minimum of one term, ≈ −39.16617.
const STYBLINSKI_TANG_MIN: f64 = -39.166_165_703_771_42;

/// Styblinski–Tang on [−5, 5]^d: minimum ≈ −39.16617·d at (−2.903534, ...).
pub fn styblinski_tang(dim: usize) -> TestFunction {
    TestFunction::floats(
        format!("styblinski_tang{dim}"),
        (-5.0, 5.0),
        dim,
        STYBLINSKI_TANG_MIN * dim as f64,
        STYBLINSKI_TANG_AT,
        |x| 0.5 * x.iter().map(|v| v.powi(4) - 16.0 * v * v + 5.0 * v).sum::<f64>(),
    )
}

/// Griewank on [−600, 600]^d: a bowl with fine ripples, minimum 0 at the origin.
pub fn griewank(dim: usize) -> TestFunction {
    TestFunction::floats(format!("griewank{dim}"), (-600.0, 600.0), dim, 0.0, 0.0, |x| {
        let sum = x.iter().map(|v| v * v).sum::<f64>() / 4000.0;
        let product: f64 = x.iter().enumerate().map(|(i, v)| (v / ((i + 1) as f64).sqrt()).cos()).product();
        sum - product + 1.0
    })
}

const MIXED_INT_TARGETS: [f64; 3] = [3.0, -4.0, 7.0];
const MIXED_FLOAT_TARGETS: [f64; 2] = [1.5, -2.5];
const MIXED_CHOICES: [&str; 4] = ["relu", "tanh", "gelu", "sigmoid"];
const MIXED_OFFSETS: [f64; 4] = [2.0, 0.0, 1.0, 3.0];

/// A mixed space shaped like a hyperparameter search, 7 parameters: three
/// integers in [−10, 10] (a shifted sphere centred at 3, −4, 7), two reals in
/// [−5, 5] (centred at 1.5, −2.5), a log-scale real in [10⁻⁴, 1] scored by
/// (log₁₀ x + 2)², best at 0.01, and a categorical of four choices adding
/// 2, 0, 1 or 3. Minimum 0 at (3, −4, 7, 1.5, −2.5, 0.01, "tanh").
pub fn mixed() -> TestFunction {
    let mut bounds = vec![(-10.0, 10.0); 3];
    bounds.extend([(-5.0, 5.0), (-5.0, 5.0), (1e-4, 1.0), (0.0, (MIXED_CHOICES.len() - 1) as f64)]);
    let mut kinds = vec![ParamKind::Int; 3];
    kinds.extend([ParamKind::Float, ParamKind::Float, ParamKind::LogFloat, ParamKind::Categorical(&MIXED_CHOICES)]);
    let mut minimiser = MIXED_INT_TARGETS.to_vec();
    minimiser.extend(MIXED_FLOAT_TARGETS);
    minimiser.extend([0.01, 1.0]);
    TestFunction { name: "mixed".into(), bounds, kinds, min_value: 0.0, minimiser, f: mixed_fn }
}

fn mixed_fn(x: &[f64]) -> f64 {
    let ints: f64 = MIXED_INT_TARGETS.iter().zip(&x[..3]).map(|(t, v)| (v - t).powi(2)).sum();
    let floats: f64 = MIXED_FLOAT_TARGETS.iter().zip(&x[3..5]).map(|(t, v)| (v - t).powi(2)).sum();
    let log = (x[5].log10() + 2.0).powi(2);
    let choice = (x[6].round() as usize).min(MIXED_OFFSETS.len() - 1);
    ints + floats + log + MIXED_OFFSETS[choice]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dependency-free generator of uniform numbers in [0, 1) (SplitMix64).
    struct Uniform(u64);

    impl Uniform {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn each_minimum_is_attained_at_its_minimiser() {
        for f in suite() {
            let value = f.eval(&f.minimiser);
            assert!((value - f.min_value).abs() < 1e-4, "{}: f(minimiser) = {value}, minimum {}", f.name, f.min_value);
        }
    }

    #[test]
    fn published_values_agree() {
        // The values the Virtual Library of Simulation Experiments and
        // BoTorch publish, at their published minimisers.
        let cases: [(TestFunction, &[f64], f64); 5] = [
            (hartmann3(), &[0.114614, 0.555649, 0.852547], -3.86278),
            (hartmann6(), &[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573], -3.32237),
            (styblinski_tang(10), &[-2.903534; 10], -391.6617),
            (rosenbrock(20), &[1.0; 20], 0.0),
            (levy(10), &[1.0; 10], 0.0),
        ];
        for (f, x, published) in cases {
            assert!((f.eval(x) - published).abs() < 1e-4, "{}: {} vs {published}", f.name, f.eval(x));
            assert!((f.min_value - published).abs() < 1e-4, "{}: {} vs {published}", f.name, f.min_value);
        }
        let b = branin();
        for x in [[-PI, 12.275], [PI, 2.275], [9.42478, 2.475]] {
            assert!((b.eval(&x) - 0.397887).abs() < 1e-4, "branin at {x:?}: {}", b.eval(&x));
        }
        for (f, origin) in [(ackley(10), 0.0), (rastrigin(8), 0.0), (griewank(10), 0.0)] {
            assert!(f.eval(&vec![origin; f.dim()]).abs() < 1e-12, "{}", f.name);
        }
    }

    #[test]
    fn no_point_beats_the_known_minimum() {
        // A wrong constant usually shows as a random point below the "minimum".
        let mut u = Uniform(42);
        for f in suite() {
            let space = f.space();
            for _ in 0..20_000 {
                let x: Vec<f64> =
                    (0..f.dim()).map(|i| space.0[&TestFunction::param_name(i)].from_unit(u.next())).collect();
                let value = f.eval(&x);
                assert!(
                    value.is_finite() && value >= f.min_value - 1e-9,
                    "{} at {x:?}: {value} < {}",
                    f.name,
                    f.min_value
                );
            }
        }
    }

    #[test]
    fn minimisers_lie_in_their_spaces_and_names_resolve() {
        for f in suite() {
            assert!((2..=20).contains(&f.dim()), "{}", f.name);
            assert_eq!((f.kinds.len(), f.minimiser.len()), (f.dim(), f.dim()), "{}", f.name);
            let space = f.space();
            for (i, &v) in f.minimiser.iter().enumerate() {
                assert!(space.0[&TestFunction::param_name(i)].contains(v), "{}: x{i} = {v}", f.name);
            }
            let again = by_name(&f.name).unwrap_or_else(|| panic!("{} does not resolve", f.name));
            assert_eq!((again.bounds, again.kinds, again.min_value), (f.bounds, f.kinds, f.min_value));
        }
        assert_eq!(by_name("ackley3").unwrap().dim(), 3);
        for bad in ["ackley", "ackley0", "ackley03", "rosenbrock1", "sphere5", "hartmann4", ""] {
            assert!(by_name(bad).is_none(), "{bad}");
        }
        let mixed = mixed();
        assert!(!mixed.is_continuous() && branin().is_continuous());
        assert_eq!(
            mixed.kinds.iter().map(ParamKind::name).collect::<Vec<_>>(),
            ["int", "int", "int", "float", "float", "log_float", "categorical"]
        );
    }

    #[test]
    fn the_mixed_function_scores_each_part() {
        let f = mixed();
        let mut x = f.minimiser.clone();
        x[0] += 2.0; // an integer off by 2: +4
        x[5] = 1.0; // the log-scale real at 1: +4
        x[6] = 3.0; // "sigmoid": +3
        assert!((f.eval(&x) - 11.0).abs() < 1e-12, "{}", f.eval(&x));
    }
}
