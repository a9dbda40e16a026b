//! The vectorised sin/cos against `f64::sin_cos`, at every SIMD level this
//! CPU has. Stated precision: absolute error < 2e-7 (f32) and < 1e-15 (f64)
//! for |t| <= 1e4, and exact fallback beyond the reduction limit.

mod common;
use common::Rng;
use sketchcore_core::{sin_cos_into, SimdLevel};
use std::f64::consts::PI;

fn test_points(rng: &mut Rng) -> Vec<f64> {
    let mut t = vec![0.0, -0.0, 1e-30, -1e-30, 1e-8, 1.0, -1.0, 1e4, -1e4];
    for k in -64..=64 {
        let base = k as f64 * PI / 4.0;
        t.extend([base, base.next_up(), base.next_down()]);
    }
    // Dense grid over [-10, 10], then log-spaced magnitudes up to 1e4.
    t.extend((0..200_001).map(|i| -10.0 + i as f64 * 1e-4));
    t.extend((0..200_000).map(|_| {
        let mag = 10f64.powf(rng.uniform() * 4.0);
        if rng.uniform() < 0.5 { -mag } else { mag }
    }));
    // Multiples of pi/2 up to |t| = 1e4.
    t.extend((0..6366).map(|k| k as f64 * PI / 2.0));
    t
}

#[test]
fn f32_abs_error_below_2e7() {
    let mut rng = Rng::new(1);
    let t64 = test_points(&mut rng);
    let t: Vec<f32> = t64.iter().map(|&v| v as f32).collect();
    for level in SimdLevel::available() {
        let mut s = vec![0f32; t.len()];
        let mut c = vec![0f32; t.len()];
        sin_cos_into(level, &t, &mut s, &mut c);
        let mut worst = 0.0f64;
        for i in 0..t.len() {
            // The exact sin/cos of the float32 argument itself.
            let (es, ec) = (t[i] as f64).sin_cos();
            worst = worst.max((s[i] as f64 - es).abs()).max((c[i] as f64 - ec).abs());
        }
        assert!(worst < 2e-7, "{level}: worst abs error {worst:e}");
    }
}

#[test]
fn f64_abs_error_below_1e15() {
    let mut rng = Rng::new(2);
    let t = test_points(&mut rng);
    for level in SimdLevel::available() {
        let mut s = vec![0f64; t.len()];
        let mut c = vec![0f64; t.len()];
        sin_cos_into(level, &t, &mut s, &mut c);
        let mut worst = 0.0f64;
        for i in 0..t.len() {
            let (es, ec) = t[i].sin_cos();
            worst = worst.max((s[i] - es).abs()).max((c[i] - ec).abs());
        }
        assert!(worst < 1e-15, "{level}: worst abs error {worst:e}");
    }
}

#[test]
fn zero_huge_and_nan() {
    for level in SimdLevel::available() {
        let t = [0.0f32, -0.0, 3.0e5, -7.5e7, 1.0e30, f32::NAN, f32::INFINITY, 2.0];
        let mut s = [0f32; 8];
        let mut c = [0f32; 8];
        sin_cos_into(level, &t, &mut s, &mut c);
        // The sign of a zero sine is not specified.
        assert_eq!((s[0], s[1], c[0], c[1]), (0.0, 0.0, 1.0, 1.0), "{level}: sin/cos(+-0)");
        for i in [2, 3, 4, 7] {
            let (es, ec) = (t[i] as f64).sin_cos();
            assert!((s[i] as f64 - es).abs() < 2e-7, "{level}: sin({})", t[i]);
            assert!((c[i] as f64 - ec).abs() < 2e-7, "{level}: cos({})", t[i]);
        }
        assert!(s[5].is_nan() && c[5].is_nan() && s[6].is_nan() && c[6].is_nan(), "{level}: NaN/inf");
    }
}

#[test]
fn lengths_not_multiple_of_lanes() {
    for level in SimdLevel::available() {
        for n in [0usize, 1, 7, 15, 16, 17, 33] {
            let t: Vec<f64> = (0..n).map(|i| i as f64 * 0.37 - 3.0).collect();
            let mut s = vec![9.0; n];
            let mut c = vec![9.0; n];
            sin_cos_into(level, &t, &mut s, &mut c);
            for i in 0..n {
                assert!((s[i] - t[i].sin()).abs() < 1e-15 && (c[i] - t[i].cos()).abs() < 1e-15);
            }
        }
    }
}

/// exp against `f64::exp`: relative error < 4e-16 (f64) and < 2e-7 (f32) over
/// the clamped range, clamping outside it, NaN propagated.
#[test]
fn exp_relative_error() {
    use sketchcore_core::exp_into;
    let mut t: Vec<f64> = (0..200_001).map(|i| -700.0 + i as f64 * 0.0070).collect();
    t.extend((0..20_001).map(|i| -1.0 + i as f64 * 1e-4));
    t.extend([0.0, -0.0, 1e-300, -1e-300, 709.0, -708.0]);
    for level in SimdLevel::available() {
        let mut out = vec![0f64; t.len()];
        exp_into(level, &t, &mut out);
        let worst = t.iter().zip(&out).map(|(x, y)| ((y - x.exp()) / x.exp()).abs()).fold(0.0, f64::max);
        assert!(worst < 4e-16, "{level} f64 exp relative error {worst:e}");

        let t32: Vec<f32> = t.iter().map(|&x| x as f32).filter(|x| (-87.0..=88.0).contains(x)).collect();
        let mut out32 = vec![0f32; t32.len()];
        exp_into(level, &t32, &mut out32);
        let worst = t32
            .iter()
            .zip(&out32)
            .map(|(&x, &y)| ((y as f64 - (x as f64).exp()) / (x as f64).exp()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 2e-7, "{level} f32 exp relative error {worst:e}");

        let special = [-1e6, 1e6, f64::NAN, f64::NEG_INFINITY];
        let mut out = [0f64; 4];
        exp_into(level, &special, &mut out);
        let close = |a: f64, b: f64| ((a - b) / b).abs() < 4e-16;
        assert!(close(out[0], (-708f64).exp()), "{level}: clamped below");
        assert!(close(out[1], 709f64.exp()), "{level}: clamped above");
        assert!(out[2].is_nan(), "{level}: NaN propagates");
        assert!(close(out[3], (-708f64).exp()), "{level}: -inf clamps");
    }
}
