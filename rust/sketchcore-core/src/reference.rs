//! Scalar float64 reference: the definition of the sketch, computed the
//! obvious way with `f64::sin_cos`. Used by the tests of the SIMD kernels.

use ndarray::{ArrayView1, ArrayView2};

use crate::kernel::Nonlinearity;
use crate::simd::Real;
use crate::sums::SketchSums;

/// Straightforward float64 sketch sums (no validation, single thread).
pub fn sketch_dense_reference<E: Real>(
    x: ArrayView2<'_, E>,
    omega: ArrayView2<'_, E>,
    dither: Option<ArrayView1<'_, E>>,
    weights: Option<ArrayView1<'_, f64>>,
    nonlinearity: Nonlinearity,
) -> SketchSums {
    let (n, d) = x.dim();
    let m = omega.ncols();
    let mut out = SketchSums::empty(d, m);
    for i in 0..n {
        let w = weights.as_ref().map_or(1.0, |w| w[i]);
        for j in 0..m {
            let mut t = dither.as_ref().map_or(0.0, |xi| xi[j].to_f64());
            for l in 0..d {
                t += x[[i, l]].to_f64() * omega[[l, j]].to_f64();
            }
            let (mut s, mut c) = t.sin_cos();
            if nonlinearity == Nonlinearity::Quantized {
                (s, c) = (1f64.copysign(s), 1f64.copysign(c));
            }
            out.cos[j] += w * c;
            out.sin[j] += w * s;
        }
        for l in 0..d {
            let v = x[[i, l]].to_f64();
            out.lower[l] = out.lower[l].min(v);
            out.upper[l] = out.upper[l].max(v);
        }
        out.weight += w;
    }
    out.count = n as u64;
    out
}
