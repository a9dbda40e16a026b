//! The fused dense kernel against the scalar float64 reference on a table of
//! awkward shapes, at every SIMD level this CPU has, with 1 and many threads.

mod common;
use common::{rel_err, Rng};
use ndarray::{s, Array1, Array2, ShapeBuilder};
use ndarray::{ArrayView1, ArrayView2};
use sketchcore_core::kernel::{CHUNK_ROWS, TILE_ROWS};
use sketchcore_core::{Element, Nonlinearity, Real, RunConfig, SimdLevel, SketchError, SketchSums};

fn sketch_dense<E: Element>(
    x: ArrayView2<'_, E>,
    omega: ArrayView2<'_, E>,
    xi: Option<ArrayView1<'_, E>>,
    w: Option<ArrayView1<'_, f64>>,
    cfg: RunConfig,
    interrupt: &mut dyn FnMut() -> bool,
) -> Result<SketchSums, SketchError> {
    sketchcore_core::sketch_dense(x, omega, xi, w, Nonlinearity::Complex, cfg, interrupt)
}

fn sketch_dense_reference<E: Real>(
    x: ArrayView2<'_, E>,
    omega: ArrayView2<'_, E>,
    xi: Option<ArrayView1<'_, E>>,
    w: Option<ArrayView1<'_, f64>>,
) -> SketchSums {
    sketchcore_core::sketch_dense_reference(x, omega, xi, w, Nonlinearity::Complex)
}

const NS: [usize; 9] = [0, 1, 7, 8, 9, 127, 128, 129, 1000];
const DS: [usize; 5] = [1, 3, 8, 17, 64];
const MS: [usize; 5] = [1, 7, 16, 33, 1024];

fn data(rng: &mut Rng, n: usize, d: usize, m: usize) -> (Array2<f64>, Array2<f64>, Array1<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((n, d), |_| 2.0 * rng.normal());
    let omega = Array2::from_shape_fn((d, m), |_| rng.normal() / (d as f64).sqrt());
    let xi = Array1::from_shape_fn(m, |_| rng.uniform() * 2.0 * std::f64::consts::PI);
    let w = Array1::from_shape_fn(n, |_| rng.uniform() * 3.0);
    (x, omega, xi, w)
}

fn never() -> impl FnMut() -> bool {
    || false
}

fn check_box(a: &SketchSums, b: &SketchSums) {
    assert_eq!(a.lower, b.lower);
    assert_eq!(a.upper, b.upper);
    assert_eq!(a.count, b.count);
}

#[test]
fn f64_matches_reference_on_shape_table() {
    let mut rng = Rng::new(7);
    for &n in &NS {
        for &d in &DS {
            for &m in &MS {
                if n * d * m > 20_000_000 {
                    continue;
                }
                let (x, omega, xi, w) = data(&mut rng, n, d, m);
                let want = sketch_dense_reference(x.view(), omega.view(), Some(xi.view()), Some(w.view()));
                for level in SimdLevel::available() {
                    for n_threads in [1, 3] {
                        let cfg = RunConfig { level, n_threads };
                        let got = sketch_dense(x.view(), omega.view(), Some(xi.view()), Some(w.view()), cfg, &mut never())
                            .unwrap();
                        let e = rel_err(&got, &want);
                        assert!(e < 1e-12, "f64 {level} n={n} d={d} m={m} threads={n_threads}: rel err {e:e}");
                        assert!((got.weight - want.weight).abs() <= 1e-12 * want.weight.max(1.0));
                        check_box(&got, &want);
                    }
                }
            }
        }
    }
}

#[test]
fn f32_matches_reference_on_shape_table() {
    let mut rng = Rng::new(8);
    for &n in &NS {
        for &d in &DS {
            for &m in &MS {
                if n * d * m > 20_000_000 {
                    continue;
                }
                let (x, omega, xi, _) = data(&mut rng, n, d, m);
                let (x32, om32, xi32) = (x.mapv(|v| v as f32), omega.mapv(|v| v as f32), xi.mapv(|v| v as f32));
                // Reference on exactly the float32 values the kernel sees.
                let want = sketch_dense_reference(x32.view(), om32.view(), Some(xi32.view()), None);
                for level in SimdLevel::available() {
                    for n_threads in [1, 2] {
                        let cfg = RunConfig { level, n_threads };
                        let got = sketch_dense(x32.view(), om32.view(), Some(xi32.view()), None, cfg, &mut never()).unwrap();
                        let e = rel_err(&got, &want);
                        assert!(e < 2e-6, "f32 {level} n={n} d={d} m={m}: rel err {e:e}");
                        assert_eq!(got.weight, n as f64);
                        check_box(&got, &want);
                    }
                }
            }
        }
    }
}

#[test]
fn bitwise_independent_of_thread_count() {
    let mut rng = Rng::new(9);
    let n = 3 * CHUNK_ROWS + 17;
    let (x, omega, xi, w) = data(&mut rng, n, 5, 40);
    let level = SimdLevel::detect();
    let run = |t| {
        sketch_dense(x.view(), omega.view(), Some(xi.view()), Some(w.view()), RunConfig { level, n_threads: t }, &mut never())
            .unwrap()
    };
    let one = run(1);
    for t in [2, 3, 8] {
        assert_eq!(run(t), one, "threads={t}");
    }
}

#[test]
fn strided_and_fortran_views() {
    let mut rng = Rng::new(10);
    let (n, d, m) = (2 * TILE_ROWS + 5, 9, 50);
    let big = Array2::from_shape_fn((2 * n, 3 * d), |_| rng.normal());
    let omega = Array2::from_shape_fn((d, m), |_| rng.normal());
    let strided = big.slice(s![..;2, 1..;3]);
    let fortran = {
        let mut f = Array2::<f64>::zeros((n, d).f());
        f.assign(&strided);
        f
    };
    let reversed = big.slice(s![..;-2, ..;-3]);
    let want = sketch_dense_reference(strided, omega.view(), None, None);
    for level in SimdLevel::available() {
        let cfg = RunConfig { level, n_threads: 2 };
        for view in [strided, fortran.view()] {
            let got = sketch_dense(view, omega.view(), None, None, cfg, &mut never()).unwrap();
            assert!(rel_err(&got, &want) < 1e-12);
        }
        let want_rev = sketch_dense_reference(reversed, omega.view(), None, None);
        let got = sketch_dense(reversed, omega.view(), None, None, cfg, &mut never()).unwrap();
        assert!(rel_err(&got, &want_rev) < 1e-12);
    }
}

#[test]
fn large_arguments_take_the_exact_path() {
    // |t| up to ~1e6 exceeds the float32 reduction limit: checked path.
    let mut rng = Rng::new(11);
    let (x, omega, _, _) = data(&mut rng, 300, 4, 37);
    let x = x.mapv(|v| (v * 1e5) as f32);
    let omega = omega.mapv(|v| v as f32);
    let want = sketch_dense_reference(x.view(), omega.view(), None, None);
    for level in SimdLevel::available() {
        let got = sketch_dense(x.view(), omega.view(), None, None, RunConfig { level, n_threads: 1 }, &mut never()).unwrap();
        // float32 arguments of size 1e6 have an ulp of 0.06: compare the
        // kernel with the sin/cos of the float32 projection it computes, so
        // allow the projection rounding only.
        assert!(rel_err(&got, &want) < 0.1, "{level}");
    }
}

#[test]
fn split_data_merges_to_whole() {
    let mut rng = Rng::new(12);
    let (x, omega, xi, w) = data(&mut rng, 1000, 6, 70);
    let cfg = RunConfig::default();
    let whole = sketch_dense(x.view(), omega.view(), Some(xi.view()), Some(w.view()), cfg, &mut never()).unwrap();
    let mut parts = SketchSums::empty(6, 70);
    for (a, b) in [(0, 1), (1, 129), (129, 129), (129, 1000)] {
        let p = sketch_dense(
            x.slice(s![a..b, ..]),
            omega.view(),
            Some(xi.view()),
            Some(w.slice(s![a..b])),
            cfg,
            &mut never(),
        )
        .unwrap();
        parts.merge(&p);
    }
    assert!(rel_err(&parts, &whole) < 1e-13);
    check_box(&parts, &whole);
    assert!((parts.weight - whole.weight).abs() < 1e-9);
}

#[test]
fn errors_are_typed() {
    let mut rng = Rng::new(13);
    let (mut x, omega, xi, mut w) = data(&mut rng, 9000, 3, 10);
    let cfg = RunConfig::default();
    let err = |x: &Array2<f64>, w: Option<&Array1<f64>>| {
        sketch_dense(x.view(), omega.view(), Some(xi.view()), w.map(|w| w.view()), cfg, &mut never()).unwrap_err()
    };
    x[[8500, 2]] = f64::INFINITY;
    x[[4200, 1]] = f64::NAN; // first offending row wins, across chunks
    assert_eq!(err(&x, None), SketchError::NonFiniteInput { row: 4200, col: 1 });
    x[[4200, 1]] = 0.0;
    x[[8500, 2]] = 0.0;
    w[5] = -1.0;
    assert!(matches!(err(&x, Some(&w)), SketchError::NegativeWeight { index: 5, .. }));
    w[3] = f64::NAN;
    assert_eq!(err(&x, Some(&w)), SketchError::NonFiniteWeight { index: 3 });
    let short_w = Array1::<f64>::ones(3);
    assert!(matches!(err(&x, Some(&short_w)), SketchError::ShapeMismatch { .. }));
    let bad_omega = Array2::<f64>::zeros((4, 10));
    let e = sketch_dense(x.view(), bad_omega.view(), None, None, cfg, &mut never()).unwrap_err();
    assert!(matches!(e, SketchError::ShapeMismatch { expected: 3, got: 4, .. }));
    let mut calls = 0;
    let e = sketch_dense(x.view(), omega.view(), None, None, cfg, &mut || {
        calls += 1;
        true
    })
    .unwrap_err();
    assert_eq!((e, calls), (SketchError::Interrupted, 1));
}

#[test]
fn empty_input_is_the_merge_identity() {
    let x = Array2::<f32>::zeros((0, 4));
    let omega = Array2::<f32>::ones((4, 9));
    let got = sketch_dense(x.view(), omega.view(), None, None, RunConfig::default(), &mut never()).unwrap();
    assert_eq!(got, SketchSums::empty(4, 9));
}

#[test]
fn quantized_matches_reference() {
    let mut rng = Rng::new(14);
    for &(n, d, m) in &[(1usize, 3usize, 7usize), (129, 17, 33), (1000, 8, 100)] {
        let (x, omega, xi, w) = data(&mut rng, n, d, m);
        let want = sketchcore_core::sketch_dense_reference(x.view(), omega.view(), Some(xi.view()), Some(w.view()), Nonlinearity::Quantized);
        for level in SimdLevel::available() {
            let got = sketchcore_core::sketch_dense(
                x.view(), omega.view(), Some(xi.view()), Some(w.view()), Nonlinearity::Quantized,
                RunConfig { level, n_threads: 2 }, &mut never(),
            )
            .unwrap();
            assert!(rel_err(&got, &want) < 1e-12, "{level} n={n}");
        }
    }
}
