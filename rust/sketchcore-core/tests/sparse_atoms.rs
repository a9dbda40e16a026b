//! Sparse-frequency atom kernels against a scalar float64 reference written
//! here from the formulas on the densified frequency matrix (`f64::sin_cos`,
//! `f64::exp`), on awkward shapes (m across group boundaries, one to d
//! non-zeros per frequency, one atom and tiles of atoms), Diracs and
//! Gaussians, both gains and every SIMD level; the gradient against central
//! finite differences; results bitwise independent of the thread count and
//! of the arrays' memory layout; errors for bad shapes and coordinates.
//!
//! Tolerance: 1e-12 relative to the scale of each sum (measured errors are
//! about 1e-15 to 1e-14 of it).

mod common;
use common::Rng;
use ndarray::{Array1, Array2, ShapeBuilder};
use sketchcore_core::atoms::AtomParams;
use sketchcore_core::sparse_atoms::{atoms, correlation, objective_grad, SparseFrequencies};
use sketchcore_core::{RunConfig, SimdLevel, SketchError};

struct Case {
    index: Array2<u32>,
    value: Array2<f64>,
    /// The same frequencies as a dense d x m matrix.
    omega: Array2<f64>,
    dither: Array1<f64>,
    means: Array2<f64>,
    vars: Array2<f64>,
    alpha: Array1<f64>,
    z_re: Array1<f64>,
    z_im: Array1<f64>,
}

/// K atoms, dimension d, m frequencies with s distinct non-zero coordinates each.
fn case(k: usize, d: usize, m: usize, s: usize, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let mut index = Array2::zeros((m, s));
    let mut value = Array2::zeros((m, s));
    let mut omega = Array2::zeros((d, m));
    for j in 0..m {
        let mut taken = Vec::new();
        for t in 0..s {
            let c = loop {
                let c = (rng.uniform() * d as f64) as usize % d;
                if !taken.contains(&c) {
                    break c;
                }
            };
            taken.push(c);
            let w = rng.normal() * 0.9;
            index[[j, t]] = c as u32;
            value[[j, t]] = w;
            omega[[c, j]] = w;
        }
    }
    Case {
        index,
        value,
        omega,
        dither: Array1::from_shape_fn(m, |_| rng.uniform() * std::f64::consts::TAU),
        means: Array2::from_shape_fn((k, d), |_| rng.normal()),
        vars: Array2::from_shape_fn((k, d), |_| 0.05 + 0.5 * rng.uniform()),
        alpha: Array1::from_shape_fn(k, |_| 0.2 + rng.uniform()),
        z_re: Array1::from_shape_fn(m, |_| rng.normal() * 0.3),
        z_im: Array1::from_shape_fn(m, |_| rng.normal() * 0.3),
    }
}

fn freq<'a>(c: &'a Case, gain: f64) -> SparseFrequencies<'a> {
    SparseFrequencies { index: c.index.view(), value: c.value.view(), dither: c.dither.view(), dim: c.means.ncols(), gain }
}

fn params(c: &Case, gaussian: bool) -> AtomParams<'_> {
    AtomParams { means: c.means.view(), variances: gaussian.then(|| c.vars.view()) }
}

/// Scalar reference on the dense matrix: atoms (K x m) re, im.
fn ref_atoms(c: &Case, gaussian: bool, gain: f64) -> (Array2<f64>, Array2<f64>) {
    let (k, d) = c.means.dim();
    let m = c.omega.ncols();
    let mut re = Array2::zeros((k, m));
    let mut im = Array2::zeros((k, m));
    for a in 0..k {
        for j in 0..m {
            let (mut phase, mut e) = (c.dither[j], 0.0);
            for l in 0..d {
                phase += c.means[[a, l]] * c.omega[[l, j]];
                e += c.vars[[a, l]] * c.omega[[l, j]] * c.omega[[l, j]];
            }
            let amp = if gaussian { gain * (-0.5 * e).exp() } else { gain };
            let (s, co) = phase.sin_cos();
            re[[a, j]] = amp * co;
            im[[a, j]] = amp * s;
        }
    }
    (re, im)
}

/// Reference objective `||z - sum alpha_k a_k||^2` and its gradient
/// (means K x d, variances K x d, weights K).
fn ref_objective(c: &Case, gaussian: bool, gain: f64) -> (f64, Array2<f64>, Array2<f64>, Array1<f64>) {
    let (re, im) = ref_atoms(c, gaussian, gain);
    let (k, d) = c.means.dim();
    let m = c.omega.ncols();
    let (mut f, mut gm, mut gv, mut ga) = (0.0, Array2::zeros((k, d)), Array2::zeros((k, d)), Array1::zeros(k));
    for j in 0..m {
        let (mut rr, mut ri) = (c.z_re[j], c.z_im[j]);
        for a in 0..k {
            rr -= c.alpha[a] * re[[a, j]];
            ri -= c.alpha[a] * im[[a, j]];
        }
        f += rr * rr + ri * ri;
        for a in 0..k {
            let (ar, ai) = (re[[a, j]], im[[a, j]]);
            let (pr, pi) = (ar * rr + ai * ri, ar * ri - ai * rr);
            ga[a] += -2.0 * pr;
            for l in 0..d {
                gm[[a, l]] += -2.0 * c.alpha[a] * c.omega[[l, j]] * pi;
                gv[[a, l]] += c.alpha[a] * c.omega[[l, j]] * c.omega[[l, j]] * pr;
            }
        }
    }
    (f, gm, gv, ga)
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// (K, d, m, s): m across the 1024-frequency groups, s from 1 to d.
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (1, 1, 1, 1),
    (1, 3, 7, 1),
    (2, 12, 15, 3),
    (3, 5, 16, 5),
    (1, 60, 1023, 4),
    (5, 60, 1025, 4),
    (10, 60, 2049, 4),
    (7, 17, 257, 2),
    (4, 9, 3000, 9),
    (11, 192, 300, 4),
];

#[test]
fn atoms_objective_and_correlation_match_scalar_reference() {
    for &(k, d, m, s) in SHAPES {
        let c = case(k, d, m, s, (k * 7 + d * 3 + m + s) as u64);
        for gaussian in [false, true] {
            for gain in [1.0, 4.0 / std::f64::consts::PI] {
                let (want_re, want_im) = ref_atoms(&c, gaussian, gain);
                let (f, gm, gv, ga) = ref_objective(&c, gaussian, gain);
                let scale = m as f64 * (1.0 + c.omega.iter().fold(0.0f64, |a, w| a.max(w.abs()))).powi(2);
                for level in SimdLevel::available() {
                    let config = RunConfig { level, n_threads: 0 };
                    let what = format!("{level} (K={k}, d={d}, m={m}, s={s}) gaussian={gaussian} gain={gain}");
                    let (re, im) = atoms(&freq(&c, gain), &params(&c, gaussian), config).unwrap();
                    assert!(max_abs_diff(&re, &want_re) < 1e-13, "atoms re {what}");
                    assert!(max_abs_diff(&im, &want_im) < 1e-13, "atoms im {what}");
                    let og = objective_grad(&freq(&c, gain), &params(&c, gaussian), c.alpha.view(), c.z_re.view(), c.z_im.view(), config).unwrap();
                    assert!((og.value - f).abs() <= 1e-12 * scale, "objective {what}: {} vs {f}", og.value);
                    assert!(max_abs_diff(&og.grad_means, &gm) <= 1e-12 * scale, "grad means {what}");
                    let ga_err = og.grad_weights.iter().zip(&ga).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                    assert!(ga_err <= 1e-12 * scale, "grad weights {what}");
                    match (&og.grad_variances, gaussian) {
                        (Some(g), true) => assert!(max_abs_diff(g, &gv) <= 1e-12 * scale, "grad variances {what}"),
                        (None, false) => {}
                        _ => panic!("variance gradient present iff Gaussian: {what}"),
                    }
                    // Correlation with z as the residual.
                    let cor = correlation(&freq(&c, gain), &params(&c, gaussian), c.z_re.view(), c.z_im.view(), true, config).unwrap();
                    for a in 0..k {
                        let (mut inner, mut norm) = (0.0, 0.0);
                        let (mut im_sum, mut re_sq, mut q_sq) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
                        for j in 0..m {
                            let (ar, ai) = (want_re[[a, j]], want_im[[a, j]]);
                            let (pr, pi, q) = (ar * c.z_re[j] + ai * c.z_im[j], ar * c.z_im[j] - ai * c.z_re[j], ar * ar + ai * ai);
                            inner += pr;
                            norm += q;
                            for l in 0..d {
                                let w = c.omega[[l, j]];
                                im_sum[l] += w * pi;
                                re_sq[l] += w * w * pr;
                                q_sq[l] += w * w * q;
                            }
                        }
                        assert!((cor.inner[a] - inner).abs() <= 1e-12 * scale, "inner {what}");
                        assert!((cor.norm_sq[a] - norm).abs() <= 1e-12 * scale, "norm {what}");
                        let im_got = cor.inner_means.as_ref().unwrap().row(a).to_vec();
                        assert!(im_got.iter().zip(&im_sum).all(|(x, y)| (x - y).abs() <= 1e-12 * scale), "inner_means {what}");
                        if gaussian {
                            let rv = cor.inner_variances.as_ref().unwrap().row(a).to_vec();
                            let nv = cor.norm_variances.as_ref().unwrap().row(a).to_vec();
                            assert!(rv.iter().zip(&re_sq).all(|(x, y)| (x - y).abs() <= 1e-12 * scale), "inner_variances {what}");
                            assert!(nv.iter().zip(&q_sq).all(|(x, y)| (x - y).abs() <= 1e-12 * scale), "norm_variances {what}");
                        } else {
                            assert!(cor.inner_variances.is_none() && cor.norm_variances.is_none());
                        }
                    }
                    let plain = correlation(&freq(&c, gain), &params(&c, gaussian), c.z_re.view(), c.z_im.view(), false, config).unwrap();
                    assert_eq!(plain.inner, cor.inner);
                    assert_eq!(plain.norm_sq, cor.norm_sq);
                    assert!(plain.inner_means.is_none());
                }
            }
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let c = case(3, 7, 300, 3, 11);
    let config = RunConfig { level: SimdLevel::detect(), n_threads: 0 };
    let f = |means: &Array2<f64>, vars: &Array2<f64>, alpha: &Array1<f64>| {
        let p = AtomParams { means: means.view(), variances: Some(vars.view()) };
        objective_grad(&freq(&c, 1.0), &p, alpha.view(), c.z_re.view(), c.z_im.view(), config).unwrap().value
    };
    let og = objective_grad(&freq(&c, 1.0), &params(&c, true), c.alpha.view(), c.z_re.view(), c.z_im.view(), config).unwrap();
    let h = 1e-6;
    for a in 0..3 {
        for l in 0..7 {
            let (mut mp, mut mm) = (c.means.clone(), c.means.clone());
            mp[[a, l]] += h;
            mm[[a, l]] -= h;
            let fd = (f(&mp, &c.vars, &c.alpha) - f(&mm, &c.vars, &c.alpha)) / (2.0 * h);
            assert!((fd - og.grad_means[[a, l]]).abs() < 1e-5 * (1.0 + fd.abs()), "mean ({a},{l}): {fd} vs {}", og.grad_means[[a, l]]);
            let (mut vp, mut vm) = (c.vars.clone(), c.vars.clone());
            vp[[a, l]] += h;
            vm[[a, l]] -= h;
            let fd = (f(&c.means, &vp, &c.alpha) - f(&c.means, &vm, &c.alpha)) / (2.0 * h);
            let g = og.grad_variances.as_ref().unwrap()[[a, l]];
            assert!((fd - g).abs() < 1e-5 * (1.0 + fd.abs()), "variance ({a},{l}): {fd} vs {g}");
        }
        let (mut ap, mut am) = (c.alpha.clone(), c.alpha.clone());
        ap[a] += h;
        am[a] -= h;
        let fd = (f(&c.means, &c.vars, &ap) - f(&c.means, &c.vars, &am)) / (2.0 * h);
        assert!((fd - og.grad_weights[a]).abs() < 1e-5 * (1.0 + fd.abs()), "weight {a}");
    }
}

#[test]
fn bitwise_independent_of_threads_and_layout() {
    let c = case(5, 60, 5000, 4, 3);
    let level = SimdLevel::detect();
    let run = |fr: &SparseFrequencies<'_>, n_threads: usize| {
        let config = RunConfig { level, n_threads };
        (
            atoms(fr, &params(&c, true), config).unwrap(),
            objective_grad(fr, &params(&c, true), c.alpha.view(), c.z_re.view(), c.z_im.view(), config).unwrap(),
            correlation(fr, &params(&c, true), c.z_re.view(), c.z_im.view(), true, config).unwrap(),
        )
    };
    let base = run(&freq(&c, 1.0), 1);
    for n_threads in [2, 3, 5] {
        assert_eq!(run(&freq(&c, 1.0), n_threads), base, "n_threads = {n_threads}");
    }
    // Column-major (non-contiguous rows) index and value arrays: copied, same bits.
    let mut index_f = Array2::<u32>::zeros(c.index.dim().f());
    index_f.assign(&c.index);
    let mut value_f = Array2::<f64>::zeros(c.value.dim().f());
    value_f.assign(&c.value);
    let fr = SparseFrequencies { index: index_f.view(), value: value_f.view(), dither: c.dither.view(), dim: 60, gain: 1.0 };
    assert_eq!(run(&fr, 2), base);
}

#[test]
fn bad_shapes_and_coordinates_are_errors() {
    let c = case(2, 6, 50, 2, 5);
    let config = RunConfig { level: SimdLevel::Scalar, n_threads: 0 };
    let mut bad = c.index.clone();
    bad[[17, 1]] = 6;
    let fr = SparseFrequencies { index: bad.view(), ..freq(&c, 1.0) };
    assert!(matches!(atoms(&fr, &params(&c, true), config), Err(SketchError::InvalidArgument(_))));
    let short = c.dither.slice(ndarray::s![..49]).to_owned();
    let fr = SparseFrequencies { dither: short.view(), ..freq(&c, 1.0) };
    assert!(matches!(atoms(&fr, &params(&c, true), config), Err(SketchError::ShapeMismatch { .. })));
    let narrow = c.value.slice(ndarray::s![.., ..1]).to_owned();
    let fr = SparseFrequencies { value: narrow.view(), ..freq(&c, 1.0) };
    assert!(matches!(correlation(&fr, &params(&c, false), c.z_re.view(), c.z_im.view(), true, config), Err(SketchError::ShapeMismatch { .. })));
    let fr = SparseFrequencies { dim: 7, ..freq(&c, 1.0) };
    assert!(matches!(atoms(&fr, &params(&c, true), config), Err(SketchError::ShapeMismatch { .. })));
    let w = Array1::from_elem(3, 0.5);
    assert!(matches!(
        objective_grad(&freq(&c, 1.0), &params(&c, true), w.view(), c.z_re.view(), c.z_im.view(), config),
        Err(SketchError::ShapeMismatch { .. })
    ));
    let z = Array1::zeros(49);
    assert!(matches!(correlation(&freq(&c, 1.0), &params(&c, true), z.view(), z.view(), false, config), Err(SketchError::ShapeMismatch { .. })));
    // No atoms, no frequencies: empty results.
    let none = Array2::<f64>::zeros((0, 6));
    let p = AtomParams { means: none.view(), variances: Some(none.view()) };
    let (re, _) = atoms(&freq(&c, 1.0), &p, config).unwrap();
    assert_eq!(re.dim(), (0, 50));
}
