//! Atom kernels against a scalar float64 reference written here from the
//! formulas (`f64::sin_cos`, `f64::exp`), on awkward shapes, both dtypes and
//! every SIMD level; the gradient against central finite differences; results
//! independent of the thread count.
//!
//! Tolerances: float64 frequencies 1e-12 relative (to the objective scale),
//! float32 frequencies 1e-4 (phases rounded to float32 carry ~6e-8 * |phase|).

mod common;
use common::Rng;
use ndarray::{Array1, Array2};
use sketchcore_core::atoms::{atoms, objective_grad, AtomFrequencies, AtomParams};
use sketchcore_core::{RunConfig, SimdLevel};

struct Case {
    omega: Array2<f64>,
    omega_sq: Array2<f64>,
    dither: Array1<f64>,
    means: Array2<f64>,
    vars: Array2<f64>,
    alpha: Array1<f64>,
    z_re: Array1<f64>,
    z_im: Array1<f64>,
}

fn case(k: usize, d: usize, m: usize, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let omega = Array2::from_shape_fn((d, m), |_| rng.normal() * 0.8);
    let omega_sq = omega.mapv(|w| w * w);
    let dither = Array1::from_shape_fn(m, |_| rng.uniform() * std::f64::consts::TAU);
    let means = Array2::from_shape_fn((k, d), |_| rng.normal());
    let vars = Array2::from_shape_fn((k, d), |_| 0.05 + 0.5 * rng.uniform());
    let alpha = Array1::from_shape_fn(k, |_| 0.2 + rng.uniform());
    let z_re = Array1::from_shape_fn(m, |_| rng.normal() * 0.3);
    let z_im = Array1::from_shape_fn(m, |_| rng.normal() * 0.3);
    Case { omega, omega_sq, dither, means, vars, alpha, z_re, z_im }
}

/// Scalar reference: atoms (K x m) re, im.
fn ref_atoms(c: &Case, gaussian: bool, gain: f64) -> (Array2<f64>, Array2<f64>) {
    let (k, d) = c.means.dim();
    let m = c.omega.ncols();
    let mut re = Array2::zeros((k, m));
    let mut im = Array2::zeros((k, m));
    for a in 0..k {
        for j in 0..m {
            let mut phase = c.dither[j];
            let mut e = 0.0;
            for l in 0..d {
                phase += c.means[[a, l]] * c.omega[[l, j]];
                e += c.vars[[a, l]] * c.omega_sq[[l, j]];
            }
            let amp = if gaussian { gain * (-0.5 * e).exp() } else { gain };
            let (s, co) = phase.sin_cos();
            re[[a, j]] = amp * co;
            im[[a, j]] = amp * s;
        }
    }
    (re, im)
}

fn ref_objective(c: &Case, gaussian: bool, gain: f64) -> f64 {
    let (re, im) = ref_atoms(c, gaussian, gain);
    let mut f = 0.0;
    for j in 0..c.omega.ncols() {
        let mut rr = c.z_re[j];
        let mut ri = c.z_im[j];
        for a in 0..c.means.nrows() {
            rr -= c.alpha[a] * re[[a, j]];
            ri -= c.alpha[a] * im[[a, j]];
        }
        f += rr * rr + ri * ri;
    }
    f
}

fn run<E: sketchcore_core::Element>(
    c: &Case,
    gaussian: bool,
    gain: f64,
    cast: impl Fn(f64) -> E,
    config: RunConfig,
) -> (Array2<f64>, Array2<f64>, sketchcore_core::atoms::ObjectiveGrad) {
    let omega = c.omega.mapv(&cast);
    let omega_sq = c.omega_sq.mapv(&cast);
    let dither = c.dither.mapv(&cast);
    let freq = AtomFrequencies {
        omega: omega.view(),
        omega_sq: gaussian.then(|| omega_sq.view()),
        dither: dither.view(),
        gain,
    };
    let params = AtomParams { means: c.means.view(), variances: gaussian.then(|| c.vars.view()) };
    let (re, im) = atoms(&freq, &params, config).unwrap();
    let og = objective_grad(&freq, &params, c.alpha.view(), c.z_re.view(), c.z_im.view(), config).unwrap();
    (re, im, og)
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 3, 7),
    (2, 12, 15),
    (3, 5, 16),
    (4, 2, 17),
    (5, 12, 255),
    (7, 17, 257),
    (1, 10, 1025),
    (3, 4, 2049),
];

#[test]
fn atoms_and_objective_match_scalar_reference() {
    for &(k, d, m) in SHAPES {
        let c = case(k, d, m, (k * 1000 + d * 10 + m) as u64);
        for gaussian in [false, true] {
            for gain in [1.0, 4.0 / std::f64::consts::PI] {
                let (rre, rim) = ref_atoms(&c, gaussian, gain);
                let rf = ref_objective(&c, gaussian, gain);
                for level in SimdLevel::available() {
                    let config = RunConfig { level, n_threads: 0 };
                    let (re, im, og) = run(&c, gaussian, gain, |v| v, config);
                    let err = max_abs_diff(&re, &rre).max(max_abs_diff(&im, &rim));
                    assert!(err < 1e-13, "f64 atoms {level} ({k},{d},{m}) gaussian={gaussian}: {err:e}");
                    assert!((og.value - rf).abs() <= 1e-12 * rf.max(1.0), "f64 objective {level} ({k},{d},{m}): {} vs {rf}", og.value);

                    // float32 frequencies: the reference on the rounded frequencies.
                    let c32 = Case {
                        omega: c.omega.mapv(|v| v as f32 as f64),
                        omega_sq: c.omega_sq.mapv(|v| v as f32 as f64),
                        dither: c.dither.mapv(|v| v as f32 as f64),
                        means: c.means.mapv(|v| v as f32 as f64),
                        vars: c.vars.mapv(|v| v as f32 as f64),
                        alpha: c.alpha.clone(),
                        z_re: c.z_re.clone(),
                        z_im: c.z_im.clone(),
                    };
                    let (rre32, rim32) = ref_atoms(&c32, gaussian, gain);
                    let (re, im, og) = run(&c, gaussian, gain, |v| v as f32, config);
                    let err = max_abs_diff(&re, &rre32).max(max_abs_diff(&im, &rim32));
                    assert!(err < 2e-5, "f32 atoms {level} ({k},{d},{m}): {err:e}");
                    let rf32 = ref_objective(&c32, gaussian, gain);
                    assert!((og.value - rf32).abs() <= 1e-4 * rf32.max(1.0), "f32 objective {level}: {} vs {rf32}", og.value);
                }
            }
        }
    }
}

/// Central differences of the scalar reference objective.
#[test]
fn gradient_matches_finite_differences() {
    for &(k, d, m) in &[(1, 1, 5), (2, 3, 17), (4, 12, 300), (3, 7, 1100)] {
        let c = case(k, d, m, 7 + m as u64);
        for gaussian in [false, true] {
            let config = RunConfig::default();
            let (_, _, og) = run(&c, gaussian, 1.0, |v| v, config);
            let h = 1e-6;
            let scale = ref_objective(&c, gaussian, 1.0).max(1.0);
            let fd = |perturb: &dyn Fn(&mut Case, f64)| {
                let mut plus = clone(&c);
                perturb(&mut plus, h);
                let mut minus = clone(&c);
                perturb(&mut minus, -h);
                (ref_objective(&plus, gaussian, 1.0) - ref_objective(&minus, gaussian, 1.0)) / (2.0 * h)
            };
            for a in 0..k {
                let g = fd(&|cc: &mut Case, e| cc.alpha[a] += e);
                assert!((g - og.grad_weights[a]).abs() < 1e-6 * scale, "alpha {a}: {g} vs {}", og.grad_weights[a]);
                for l in 0..d {
                    let g = fd(&|cc: &mut Case, e| cc.means[[a, l]] += e);
                    assert!((g - og.grad_means[[a, l]]).abs() < 1e-6 * scale, "mean {a},{l}: {g} vs {}", og.grad_means[[a, l]]);
                    if gaussian {
                        let g = fd(&|cc: &mut Case, e| cc.vars[[a, l]] += e);
                        let got = og.grad_variances.as_ref().unwrap()[[a, l]];
                        assert!((g - got).abs() < 1e-6 * scale, "var {a},{l}: {g} vs {got}");
                    }
                }
            }
        }
    }
}

fn clone(c: &Case) -> Case {
    Case {
        omega: c.omega.clone(),
        omega_sq: c.omega_sq.clone(),
        dither: c.dither.clone(),
        means: c.means.clone(),
        vars: c.vars.clone(),
        alpha: c.alpha.clone(),
        z_re: c.z_re.clone(),
        z_im: c.z_im.clone(),
    }
}

#[test]
fn bitwise_independent_of_threads() {
    let c = case(9, 12, 5000, 3);
    let level = SimdLevel::detect();
    let (re1, im1, og1) = run(&c, true, 1.0, |v| v, RunConfig { level, n_threads: 1 });
    for n_threads in [2, 3, 5] {
        let (re, im, og) = run(&c, true, 1.0, |v| v, RunConfig { level, n_threads });
        assert_eq!(re1, re);
        assert_eq!(im1, im);
        assert_eq!(og1, og);
    }
}

#[test]
fn shape_errors_are_reported() {
    let c = case(2, 3, 10, 1);
    let freq = AtomFrequencies { omega: c.omega.view(), omega_sq: None, dither: c.dither.view(), gain: 1.0 };
    let bad_means = Array2::<f64>::zeros((2, 4));
    let params = AtomParams { means: bad_means.view(), variances: None };
    assert!(atoms(&freq, &params, RunConfig::default()).is_err());
    let params = AtomParams { means: c.means.view(), variances: Some(c.vars.view()) };
    assert!(atoms(&freq, &params, RunConfig::default()).is_err(), "variances without squared frequencies");
    let params = AtomParams { means: c.means.view(), variances: None };
    let short = Array1::<f64>::zeros(9);
    assert!(objective_grad(&freq, &params, c.alpha.view(), short.view(), c.z_im.view(), RunConfig::default()).is_err());
    let empty = Array2::<f64>::zeros((0, 3));
    let params = AtomParams { means: empty.view(), variances: None };
    let (re, _) = atoms(&freq, &params, RunConfig::default()).unwrap();
    assert_eq!(re.dim(), (0, 10));
    let og = objective_grad(&freq, &params, Array1::zeros(0).view(), c.z_re.view(), c.z_im.view(), RunConfig::default()).unwrap();
    let zz: f64 = c.z_re.iter().chain(&c.z_im).map(|v| v * v).sum();
    assert!((og.value - zz).abs() < 1e-12 * zz, "no atoms: the residual is z");
}
