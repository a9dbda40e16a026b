//! The sparse sketching kernel against the scalar float64 reference run on
//! the densified frequency matrix, on a table of awkward shapes (rows across
//! tiles and chunks, one to d non-zeros per frequency), both dtypes, both
//! nonlinearities, every SIMD level this CPU has, 1 and several threads;
//! bitwise independence of the thread count; strided input; errors.

mod common;
use common::{rel_err, Rng};
use ndarray::{s, Array1, Array2};
use sketchcore_core::kernel::CHUNK_ROWS;
use sketchcore_core::{sketch_dense_reference, sketch_sparse, Nonlinearity, RunConfig, SimdLevel, SketchError};

/// x (n x d), index and value (m x s, sorted distinct coordinates), the same
/// frequencies dense (d x m), dither (m), weights (n).
#[allow(clippy::type_complexity)]
fn data(rng: &mut Rng, n: usize, d: usize, m: usize, sup: usize) -> (Array2<f64>, Array2<u32>, Array2<f64>, Array2<f64>, Array1<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((n, d), |_| 2.0 * rng.normal());
    let mut index = Array2::zeros((m, sup));
    let mut value = Array2::zeros((m, sup));
    let mut omega = Array2::zeros((d, m));
    for j in 0..m {
        let mut coords: Vec<usize> = Vec::new();
        while coords.len() < sup {
            let c = (rng.uniform() * d as f64) as usize % d;
            if !coords.contains(&c) {
                coords.push(c);
            }
        }
        coords.sort_unstable();
        for (t, &c) in coords.iter().enumerate() {
            let w = rng.normal() / (sup as f64).sqrt();
            index[[j, t]] = c as u32;
            value[[j, t]] = w;
            omega[[c, j]] = w;
        }
    }
    let xi = Array1::from_shape_fn(m, |_| rng.uniform() * 2.0 * std::f64::consts::PI);
    let w = Array1::from_shape_fn(n, |_| rng.uniform() * 3.0);
    (x, index, value, omega, xi, w)
}

fn never() -> impl FnMut() -> bool {
    || false
}

// (n, d, m, s)
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (0, 3, 5, 2),
    (1, 1, 1, 1),
    (7, 3, 7, 1),
    (9, 8, 16, 3),
    (65, 17, 33, 4),
    (129, 60, 100, 4),
    (1000, 5, 1024, 5),
    (300, 192, 257, 4),
];

#[test]
fn matches_reference_on_shape_table() {
    let mut rng = Rng::new(21);
    for &(n, d, m, sup) in SHAPES {
        let (x, index, value, omega, xi, w) = data(&mut rng, n, d, m, sup);
        for nl in [Nonlinearity::Complex, Nonlinearity::Quantized] {
            let want = sketch_dense_reference(x.view(), omega.view(), Some(xi.view()), Some(w.view()), nl);
            let (x32, v32, om32, xi32) = (x.mapv(|v| v as f32), value.mapv(|v| v as f32), omega.mapv(|v| v as f32), xi.mapv(|v| v as f32));
            let want32 = sketch_dense_reference(x32.view(), om32.view(), Some(xi32.view()), None, nl);
            for level in SimdLevel::available() {
                for n_threads in [1, 3] {
                    let cfg = RunConfig { level, n_threads };
                    let what = format!("{level} {nl:?} n={n} d={d} m={m} s={sup} threads={n_threads}");
                    let got = sketch_sparse(x.view(), index.view(), value.view(), Some(xi.view()), Some(w.view()), nl, cfg, &mut never()).unwrap();
                    // The quantizer's sign can flip on a phase within rounding of a
                    // multiple of pi/2; none does on this data.
                    let e = rel_err(&got, &want);
                    assert!(e < 1e-12, "f64 {what}: rel err {e:e}");
                    assert!((got.weight - want.weight).abs() <= 1e-12 * want.weight.max(1.0));
                    assert_eq!((&got.lower, &got.upper, got.count), (&want.lower, &want.upper, want.count), "{what}");
                    let got32 = sketch_sparse(x32.view(), index.view(), v32.view(), Some(xi32.view()), None, nl, cfg, &mut never()).unwrap();
                    let e = rel_err(&got32, &want32);
                    let tol = if nl == Nonlinearity::Complex { 2e-6 } else { 2e-2 };
                    assert!(e < tol, "f32 {what}: rel err {e:e}");
                    assert_eq!(got32.weight, n as f64);
                }
            }
        }
    }
}

#[test]
fn bitwise_independent_of_thread_count_and_layout() {
    let mut rng = Rng::new(22);
    let n = 3 * CHUNK_ROWS + 17;
    let (x, index, value, _, xi, w) = data(&mut rng, n, 11, 40, 3);
    let level = SimdLevel::detect();
    let run = |xv: ndarray::ArrayView2<'_, f64>, t| {
        sketch_sparse(xv, index.view(), value.view(), Some(xi.view()), Some(w.view()), Nonlinearity::Complex, RunConfig { level, n_threads: t }, &mut never()).unwrap()
    };
    let one = run(x.view(), 1);
    for t in [2, 3, 8] {
        assert_eq!(run(x.view(), t), one, "threads={t}");
    }
    // A strided view of a larger array: the same rows, the same bits.
    let mut big = Array2::<f64>::zeros((2 * n, 22));
    big.slice_mut(s![..;2, ..;2]).assign(&x);
    assert_eq!(run(big.slice(s![..;2, ..;2]), 2), one);
}

#[test]
fn errors() {
    let mut rng = Rng::new(23);
    let (x, index, value, _, xi, _) = data(&mut rng, 10, 6, 12, 2);
    let cfg = RunConfig { level: SimdLevel::Scalar, n_threads: 1 };
    let mut bad = index.clone();
    bad[[3, 1]] = 6;
    let r = sketch_sparse(x.view(), bad.view(), value.view(), Some(xi.view()), None, Nonlinearity::Complex, cfg, &mut never());
    assert!(matches!(r, Err(SketchError::InvalidArgument(_))));
    let narrow = value.slice(s![.., ..1]);
    let r = sketch_sparse(x.view(), index.view(), narrow, Some(xi.view()), None, Nonlinearity::Complex, cfg, &mut never());
    assert!(matches!(r, Err(SketchError::ShapeMismatch { .. })));
    let short = xi.slice(s![..11]);
    let r = sketch_sparse(x.view(), index.view(), value.view(), Some(short), None, Nonlinearity::Complex, cfg, &mut never());
    assert!(matches!(r, Err(SketchError::ShapeMismatch { .. })));
    let mut nan = x.clone();
    nan[[4, 2]] = f64::NAN;
    let r = sketch_sparse(nan.view(), index.view(), value.view(), None, None, Nonlinearity::Complex, cfg, &mut never());
    assert!(matches!(r, Err(SketchError::NonFiniteInput { row: 4, col: 2 })));
    let r = sketch_sparse(x.view(), index.view(), value.view(), None, None, Nonlinearity::Complex, RunConfig { level: SimdLevel::detect(), n_threads: 1 }, &mut || true);
    assert!(matches!(r, Err(SketchError::Interrupted)));
}
