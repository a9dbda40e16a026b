//! Atom kernels against a scalar float64 reference written here from the
//! formulas (`f64::sin_cos`, `f64::exp`), on awkward shapes, both dtypes and
//! every SIMD level; the gradient against central finite differences; results
//! independent of the thread count. The correlation kernel against the same
//! reference; the structured operator's on-the-fly frequencies against the
//! kernels on its materialised matrix (bitwise equal).
//!
//! Tolerances: float64 frequencies 1e-12 relative (to the objective scale),
//! float32 frequencies 1e-4 (phases rounded to float32 carry ~6e-8 * |phase|).

mod common;
use common::Rng;
use ndarray::{Array1, Array2};
use sketchcore_core::atoms::{atoms, correlation, objective_grad, AtomFrequencies, AtomParams, StructuredFrequencies};
use sketchcore_core::{structured_frequencies, RunConfig, SimdLevel};

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
    // d above the packing threshold (128); tiles of 4 atoms plus a remainder.
    (6, 150, 300),
    (9, 257, 100),
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
                    // The float32 phase sums d products: rounding grows with d.
                    let tol = 2e-5 * (d as f64 / 16.0).max(1.0);
                    assert!(err < tol, "f32 atoms {level} ({k},{d},{m}): {err:e}");
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

/// Scalar reference of the correlation sums (see `Correlation`), with r = z.
fn ref_correlation(c: &Case, gaussian: bool, gain: f64) -> [Array2<f64>; 5] {
    let (re, im) = ref_atoms(c, gaussian, gain);
    let (k, d) = c.means.dim();
    let mut inner = Array2::zeros((k, 1));
    let mut norm = Array2::zeros((k, 1));
    let mut gm = Array2::zeros((k, d));
    let mut gv = Array2::zeros((k, d));
    let mut nv = Array2::zeros((k, d));
    for a in 0..k {
        for j in 0..c.omega.ncols() {
            let (ar, ai, rr, ri) = (re[[a, j]], im[[a, j]], c.z_re[j], c.z_im[j]);
            let (pr, pi, q) = (ar * rr + ai * ri, ar * ri - ai * rr, ar * ar + ai * ai);
            inner[[a, 0]] += pr;
            norm[[a, 0]] += q;
            for l in 0..d {
                gm[[a, l]] += c.omega[[l, j]] * pi;
                gv[[a, l]] += c.omega_sq[[l, j]] * pr;
                nv[[a, l]] += c.omega_sq[[l, j]] * q;
            }
        }
    }
    [inner, norm, gm, gv, nv]
}

#[test]
fn correlation_matches_scalar_reference() {
    for &(k, d, m) in SHAPES {
        let c = case(k, d, m, (k * 7 + d * 3 + m) as u64);
        for gaussian in [false, true] {
            let want = ref_correlation(&c, gaussian, 1.0);
            let scale = c.omega.iter().map(|w| w.abs()).fold(1.0, f64::max) * m as f64;
            for level in SimdLevel::available() {
                let freq = AtomFrequencies {
                    omega: c.omega.view(),
                    omega_sq: gaussian.then(|| c.omega_sq.view()),
                    dither: c.dither.view(),
                    gain: 1.0,
                };
                let params = AtomParams { means: c.means.view(), variances: gaussian.then(|| c.vars.view()) };
                let config = RunConfig { level, n_threads: 0 };
                let got = correlation(&freq, &params, c.z_re.view(), c.z_im.view(), true, config).unwrap();
                let close = |a: &Array2<f64>, b: &Array2<f64>, what: &str| {
                    let err = max_abs_diff(a, b);
                    assert!(err <= 1e-12 * scale * scale, "{what} {level} ({k},{d},{m}) gaussian={gaussian}: {err:e}");
                };
                close(&got.inner.clone().insert_axis(ndarray::Axis(1)), &want[0], "inner");
                close(&got.norm_sq.clone().insert_axis(ndarray::Axis(1)), &want[1], "norm");
                close(got.inner_means.as_ref().unwrap(), &want[2], "inner_means");
                if gaussian {
                    close(got.inner_variances.as_ref().unwrap(), &want[3], "inner_variances");
                    close(got.norm_variances.as_ref().unwrap(), &want[4], "norm_variances");
                } else {
                    assert!(got.inner_variances.is_none() && got.norm_variances.is_none());
                }
                let plain = correlation(&freq, &params, c.z_re.view(), c.z_im.view(), false, config).unwrap();
                assert_eq!(plain.inner, got.inner);
                assert_eq!(plain.norm_sq, got.norm_sq);
                assert!(plain.inner_means.is_none());
            }
        }
    }
}

/// Signs (3 per block) and scales of a structured operator with p >= d.
fn structured_case(d: usize, m: usize, seed: u64) -> (Array2<f64>, Array1<f64>, usize) {
    let p = d.next_power_of_two();
    let blocks = m.div_ceil(p);
    let mut rng = Rng::new(seed);
    let signs = Array2::from_shape_fn((3 * blocks, p), |_| if rng.uniform() < 0.5 { -1.0 } else { 1.0 });
    let scales = Array1::from_shape_fn(m, |_| 0.05 + 0.2 * rng.uniform());
    (signs, scales, p)
}

#[test]
fn structured_frequencies_on_the_fly_equal_materialised() {
    // (K, d, m, first column, columns covered): p from 1 to 2048 (> GROUP),
    // ragged last blocks, ranges starting inside a block.
    let cases: &[(usize, usize, usize, usize, usize)] = &[
        (1, 1, 5, 0, 5),
        (3, 3, 37, 0, 37),
        (2, 12, 1000, 0, 1000),
        (4, 12, 2500, 5, 2100),
        (2, 17, 1100, 31, 1069),
        (3, 100, 1500, 128, 1000),
        (2, 1025, 4100, 0, 4100),
        (1, 600, 3000, 700, 1500),
    ];
    for &(k, d, m, first, len) in cases {
        let (signs, scales, _) = structured_case(d, m, (d * 31 + m) as u64);
        let omega_all = structured_frequencies(d, signs.view(), scales.view()).unwrap();
        let c = case(k, d, m, (k + d + m) as u64);
        let cols = first..first + len;
        // Every other case seen from standardised coordinates (row factors).
        let row_scales = (d % 2 == 1).then(|| Array1::from_shape_fn(d, |l| 0.5 + (l % 7) as f64 * 0.3));
        let mut omega = omega_all.slice(ndarray::s![.., cols.clone()]).to_owned();
        if let Some(rs) = &row_scales {
            for (mut row, &f) in omega.rows_mut().into_iter().zip(rs) {
                row.mapv_inplace(|w| f * w);
            }
        }
        let omega_sq = omega.mapv(|w| w * w);
        let dither = c.dither.slice(ndarray::s![cols.clone()]).to_owned();
        let (z_re, z_im) = (c.z_re.slice(ndarray::s![cols.clone()]), c.z_im.slice(ndarray::s![cols.clone()]));
        for gaussian in [false, true] {
            let dense = AtomFrequencies {
                omega: omega.view(),
                omega_sq: gaussian.then(|| omega_sq.view()),
                dither: dither.view(),
                gain: 1.0,
            };
            let structured = StructuredFrequencies {
                signs: signs.view(),
                scales: scales.slice(ndarray::s![cols.clone()]),
                dither: dither.view(),
                dim: d,
                first_column: first,
                squares: gaussian,
                row_scales: row_scales.as_ref().map(|r| r.view()),
                gain: 1.0,
            };
            let params = AtomParams { means: c.means.view(), variances: gaussian.then(|| c.vars.view()) };
            let alpha = c.alpha.view();
            for n_threads in [1, 3] {
                let config = RunConfig { level: SimdLevel::detect(), n_threads };
                // Dense groups hold 1024 columns, structured groups max(1024, p):
                // equal sums need equal groups, so compare within one group size.
                if d.next_power_of_two() <= 1024 {
                    assert_eq!(atoms(&dense, &params, config).unwrap(), atoms(&structured, &params, config).unwrap(), "atoms d={d} m={m}");
                    assert_eq!(
                        objective_grad(&dense, &params, alpha, z_re, z_im, config).unwrap(),
                        objective_grad(&structured, &params, alpha, z_re, z_im, config).unwrap(),
                        "objective d={d} first={first}"
                    );
                    assert_eq!(
                        correlation(&dense, &params, z_re, z_im, true, config).unwrap(),
                        correlation(&structured, &params, z_re, z_im, true, config).unwrap(),
                        "correlation d={d} first={first}"
                    );
                } else {
                    assert_eq!(atoms(&dense, &params, config).unwrap(), atoms(&structured, &params, config).unwrap(), "atoms d={d}");
                    let a = objective_grad(&dense, &params, alpha, z_re, z_im, config).unwrap();
                    let b = objective_grad(&structured, &params, alpha, z_re, z_im, config).unwrap();
                    assert!((a.value - b.value).abs() <= 1e-12 * a.value.abs().max(1.0));
                    assert!(max_abs_diff(&a.grad_means, &b.grad_means) <= 1e-9 * a.grad_means.iter().fold(1.0, |x: f64, y| x.max(y.abs())));
                }
            }
        }
    }
}

#[test]
fn structured_shape_errors_are_reported() {
    let (signs, scales, _) = structured_case(5, 40, 2);
    let dither = Array1::<f64>::zeros(40);
    let means = Array2::<f64>::zeros((2, 5));
    let params = AtomParams { means: means.view(), variances: None };
    fn freq<'a>(signs: ndarray::ArrayView2<'a, f64>, scales: &'a Array1<f64>, dither: &'a Array1<f64>, first: usize, dim: usize) -> StructuredFrequencies<'a, f64> {
        StructuredFrequencies { signs, scales: scales.view(), dither: dither.view(), dim, first_column: first, squares: false, row_scales: None, gain: 1.0 }
    }
    assert!(atoms(&freq(signs.view(), &scales, &dither, 0, 5), &params, RunConfig::default()).is_ok());
    // Blocks do not cover columns 8..48.
    assert!(atoms(&freq(signs.view(), &scales, &dither, 8, 5), &params, RunConfig::default()).is_err());
    // p = 8 < d = 9.
    let means9 = Array2::<f64>::zeros((2, 9));
    let params9 = AtomParams { means: means9.view(), variances: None };
    assert!(atoms(&freq(signs.view(), &scales, &dither, 0, 9), &params9, RunConfig::default()).is_err());
    // Not a multiple of 3 rows.
    assert!(atoms(&freq(signs.slice(ndarray::s![..14, ..]), &scales, &dither, 0, 5), &params, RunConfig::default()).is_err());
}
