//! The structured (Hadamard) kernel against the scalar float64 reference on
//! its own materialised frequency matrix.

mod common;
use common::{rel_err, Rng};
use ndarray::{Array1, Array2};
use sketchcore_core::{
    sketch_dense_reference, sketch_structured, structured_frequencies, Nonlinearity, RunConfig, SimdLevel, SketchError,
};

/// Random signs; every other call shares D1 across blocks (the kernel's
/// shared-D1 path, which the Python operator generates) to cover both paths.
fn operator(rng: &mut Rng, d: usize, m: usize) -> (Array2<f64>, Array1<f64>) {
    let p = d.next_power_of_two();
    let blocks = m.div_ceil(p);
    let mut signs = Array2::from_shape_fn((3 * blocks, p), |_| if rng.uniform() < 0.5 { -1.0 } else { 1.0 });
    if rng.uniform() < 0.5 {
        let d1 = signs.row(0).to_owned();
        for b in 1..blocks {
            signs.row_mut(3 * b).assign(&d1);
        }
    }
    let scales = Array1::from_shape_fn(m, |_| (0.5 + rng.uniform()) / (p as f64).powf(1.5));
    (signs, scales)
}

#[test]
fn matches_reference_on_materialised_frequencies() {
    let mut rng = Rng::new(21);
    for &d in &[1usize, 3, 8, 17, 64, 100] {
        for &m in &[1usize, 7, 100, 333] {
            for &n in &[0usize, 1, 17, 129] {
                let (signs, scales) = operator(&mut rng, d, m);
                let omega = structured_frequencies(d, signs.view(), scales.view()).unwrap();
                let x = Array2::from_shape_fn((n, d), |_| rng.normal());
                let xi = Array1::from_shape_fn(m, |_| rng.uniform() * 6.0);
                let w = Array1::from_shape_fn(n, |_| rng.uniform());
                for nl in [Nonlinearity::Complex, Nonlinearity::Quantized] {
                    let want = sketch_dense_reference(x.view(), omega.view(), Some(xi.view()), Some(w.view()), nl);
                    for level in SimdLevel::available() {
                        let cfg = RunConfig { level, n_threads: 2 };
                        let got = sketch_structured(x.view(), signs.view(), scales.view(), Some(xi.view()), Some(w.view()), nl, cfg, &mut || false)
                            .unwrap();
                        let e = rel_err(&got, &want);
                        assert!(e < 1e-12, "f64 {level} {nl:?} d={d} m={m} n={n}: {e:e}");
                        assert_eq!(got.lower, want.lower);
                        // float32: same operator rounded to f32.
                        let (x32, s32, c32, xi32) = (x.mapv(|v| v as f32), signs.mapv(|v| v as f32), scales.mapv(|v| v as f32), xi.mapv(|v| v as f32));
                        let got32 = sketch_structured(x32.view(), s32.view(), c32.view(), Some(xi32.view()), Some(w.view()), nl, cfg, &mut || false)
                            .unwrap();
                        let tol = if nl == Nonlinearity::Complex { 2e-6 } else { 2e-2 };
                        assert!(rel_err(&got32, &want) < tol, "f32 {level} {nl:?} d={d} m={m} n={n}");
                    }
                }
            }
        }
    }
}

#[test]
fn block_directions_are_orthogonal() {
    let mut rng = Rng::new(22);
    let d = 16;
    let (signs, _) = operator(&mut rng, d, 48);
    let omega = structured_frequencies(d, signs.view(), Array1::ones(48).view()).unwrap();
    for b in 0..3 {
        let blk = omega.slice(ndarray::s![.., b * 16..(b + 1) * 16]);
        let gram = blk.t().dot(&blk);
        for i in 0..16 {
            for j in 0..16 {
                let want = if i == j { 16f64.powi(3) } else { 0.0 };
                assert!((gram[[i, j]] - want).abs() < 1e-9, "block {b} ({i},{j})");
            }
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    let x = Array2::<f64>::zeros((4, 5));
    let signs = Array2::<f64>::ones((3, 8));
    let scales = Array1::<f64>::ones(8);
    let run = |s: &Array2<f64>, c: &Array1<f64>| {
        sketch_structured(x.view(), s.view(), c.view(), None, None, Nonlinearity::Complex, RunConfig::default(), &mut || false)
    };
    assert!(run(&signs, &scales).is_ok());
    assert!(matches!(run(&Array2::ones((3, 6)), &scales), Err(SketchError::ShapeMismatch { .. })));
    assert!(matches!(run(&Array2::ones((3, 4)), &Array1::ones(4)), Err(SketchError::ShapeMismatch { .. })));
    assert!(matches!(run(&signs, &Array1::ones(9)), Err(SketchError::ShapeMismatch { .. })));
}
