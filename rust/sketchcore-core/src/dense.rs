//! Fused dense sketching kernel.
//!
//! For a tile of samples (rows of X, packed contiguously) and a group of C
//! frequency panels (each `LANES` frequencies wide, packed contiguously), the
//! microkernel computes an R x (C * LANES) block of projections X Omega + xi in
//! registers, applies the nonlinearity and accumulates `w_i cos`, `w_i sin`
//! into per-frequency vector accumulators that stay in registers for the whole
//! tile. The N x m projection matrix never exists in memory.

use ndarray::{ArrayView1, ArrayView2};

use crate::dispatch::Element;
use crate::error::SketchError;
use crate::kernel::{features, lanes_of, run_sketch, Nonlinearity, RunConfig, TileKernel};
use crate::simd::{Real, SimdLevel, Vector};
use crate::sums::SketchSums;

/// Frequencies packed for the kernel: panel p holds `omega[l, p*L .. p*L+L]`
/// for l in 0..d contiguously (L = lanes), zero-padded to a whole panel.
struct DenseKernel<E> {
    data: Vec<E>,
    dither: Vec<E>,
    d: usize,
    m: usize,
    lanes: usize,
    panels: usize,
    max_abs_omega: f64,
    max_abs_dither: f64,
}

impl<E: Real> DenseKernel<E> {
    fn new(omega: &ArrayView2<E>, dither: Option<&ArrayView1<E>>, lanes: usize) -> Self {
        let (d, m) = omega.dim();
        let panels = m.div_ceil(lanes);
        let mut data = vec![E::ZERO; panels * d * lanes];
        let mut max_abs_omega = 0.0f64;
        for ((l, j), &v) in omega.indexed_iter() {
            let (p, lane) = (j / lanes, j % lanes);
            data[(p * d + l) * lanes + lane] = v;
            max_abs_omega = max_abs_omega.max(v.abs().to_f64());
        }
        let mut packed_dither = vec![E::ZERO; panels * lanes];
        let mut max_abs_dither = 0.0f64;
        if let Some(xi) = dither {
            for (j, &v) in xi.iter().enumerate() {
                packed_dither[j] = v;
                max_abs_dither = max_abs_dither.max(v.abs().to_f64());
            }
        }
        DenseKernel { data, dither: packed_dither, d, m, lanes, panels, max_abs_omega, max_abs_dither }
    }
}

/// Register blocking (R rows, C panels) per instruction set: AVX-512 has 32
/// vector registers, AVX2 16.
const fn blocking(level: SimdLevel) -> (usize, usize) {
    match level {
        SimdLevel::Avx512 => (4, 3),
        SimdLevel::Avx2 => (3, 2),
        SimdLevel::Scalar => (4, 2),
    }
}

impl<E: Element> TileKernel<E> for DenseKernel<E> {
    type Scratch = ();

    fn dim(&self) -> usize {
        self.d
    }
    fn sketch_size(&self) -> usize {
        self.m
    }
    fn padded_size(&self) -> usize {
        self.panels * self.lanes
    }
    fn phase_bound(&self, max_l1: f64) -> f64 {
        // |omega . x + xi| <= ||x||_1 max|omega| + max|xi|
        max_l1 * self.max_abs_omega + self.max_abs_dither
    }
    fn work_per_row(&self) -> usize {
        // d multiply-adds and a sine-cosine (about 16) per frequency
        self.m.saturating_mul(self.d + 16)
    }
    fn scratch<V: Vector<E = E>>(&self) {}
    fn row_multiple<V: Vector<E = E>>(&self) -> usize {
        blocking(V::LEVEL).0
    }

    #[inline(always)]
    unsafe fn tile<V: Vector<E = E>, const CHECKED: bool, const QUANT: bool>(
        &self,
        xt: &[E],
        wt: &[E],
        rows_pad: usize,
        _scratch: &mut (),
        cos: &mut [f64],
        sin: &mut [f64],
    ) {
        // SAFETY: the caller guarantees `TileKernel::tile`'s contract: the CPU
        // supports V, `xt` holds `rows_pad` x d values and `wt` `rows_pad`, with
        // `rows_pad` a multiple of `row_multiple`; `cos` and `sin` hold `padded_size`.
        unsafe {
            debug_assert_eq!(self.lanes, V::LANES);
            match V::LEVEL {
                SimdLevel::Avx512 => tile_all_panels::<V, 4, 3, CHECKED, QUANT>(xt, wt, rows_pad, self, cos, sin),
                SimdLevel::Avx2 => tile_all_panels::<V, 3, 2, CHECKED, QUANT>(xt, wt, rows_pad, self, cos, sin),
                SimdLevel::Scalar => tile_all_panels::<V, 4, 2, CHECKED, QUANT>(xt, wt, rows_pad, self, cos, sin),
            }
        }
    }
}

/// Sketch sums of `x` (N x d) for dense frequencies `omega` (d x m), optional
/// dither (m) and optional non-negative weights (N).
///
/// `interrupt` is polled from the calling thread between batches of chunks;
/// returning `true` cancels with [`SketchError::Interrupted`].
pub fn sketch_dense<E: Element>(
    x: ArrayView2<'_, E>,
    omega: ArrayView2<'_, E>,
    dither: Option<ArrayView1<'_, E>>,
    weights: Option<ArrayView1<'_, f64>>,
    nonlinearity: Nonlinearity,
    config: RunConfig,
    interrupt: &mut dyn FnMut() -> bool,
) -> Result<SketchSums, SketchError> {
    let (d, m) = omega.dim();
    if d != x.ncols() {
        return Err(SketchError::ShapeMismatch { what: "rows of omega (data dimension)", expected: x.ncols(), got: d });
    }
    if let Some(xi) = &dither {
        SketchError::check_len("dither length", m, xi.len())?;
    }
    if !config.level.is_available() {
        return Err(SketchError::UnsupportedSimdLevel(config.level));
    }
    let kernel = DenseKernel::new(&omega, dither.as_ref(), lanes_of::<E>(config.level));
    run_sketch(&kernel, x, weights, nonlinearity, config, interrupt)
}

/// Every panel of the packed frequencies against the tile, C panels at a time.
///
/// # Safety
/// The CPU supports V; `xt` holds `rows_pad` x `packed.d` values and `wt`
/// `rows_pad`, with `rows_pad` a multiple of R; `cos` and `sin` hold
/// `packed.panels * V::LANES` values.
#[inline(always)]
unsafe fn tile_all_panels<V: Vector, const R: usize, const C: usize, const CHECKED: bool, const QUANT: bool>(
    xt: &[V::E],
    wt: &[V::E],
    rows_pad: usize,
    packed: &DenseKernel<V::E>,
    cos: &mut [f64],
    sin: &mut [f64],
) {
    // SAFETY: the caller guarantees this function's contract; each group below
    // covers panels p..p + C <= packed.panels, whose outputs start at p * LANES
    // and span C * LANES values of `cos` and `sin`.
    unsafe {
        let l = V::LANES;
        let d = packed.d;
        let (cp, sp) = (cos.as_mut_ptr(), sin.as_mut_ptr());
        let mut p = 0;
        while p + C <= packed.panels {
            panel_group::<V, R, C, CHECKED, QUANT>(xt, wt, rows_pad, d, packed, p, cp.add(p * l), sp.add(p * l));
            p += C;
        }
        while p < packed.panels {
            panel_group::<V, R, 1, CHECKED, QUANT>(xt, wt, rows_pad, d, packed, p, cp.add(p * l), sp.add(p * l));
            p += 1;
        }
    }
}

/// The microkernel: all rows of the tile against panels `p0..p0+C`.
///
/// # Safety
/// The CPU supports V; `xt` holds `rows_pad` x d values and `wt` `rows_pad`,
/// with `rows_pad` a multiple of R; panels `p0..p0 + C` exist in `packed`;
/// `cos_out` and `sin_out` are valid for `C * V::LANES` reads and writes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn panel_group<V: Vector, const R: usize, const C: usize, const CHECKED: bool, const QUANT: bool>(
    xt: &[V::E],
    wt: &[V::E],
    rows_pad: usize,
    d: usize,
    packed: &DenseKernel<V::E>,
    p0: usize,
    cos_out: *mut f64,
    sin_out: *mut f64,
) {
    // SAFETY: the caller guarantees this function's contract, which bounds every
    // offset below: frequency reads within panels p0..p0 + C (d * LANES values
    // each), dither reads within the same panels, data reads below rows_pad * d,
    // weight reads below rows_pad, output writes below C * LANES.
    unsafe {
        let l = V::LANES;
        let zero = V::splat(V::E::ZERO);
        let om = packed.data.as_ptr().add(p0 * d * l);
        let mut xi = [zero; C];
        for (c, v) in xi.iter_mut().enumerate() {
            *v = V::load(packed.dither.as_ptr().add((p0 + c) * l));
        }
        let mut acc_cos = [zero; C];
        let mut acc_sin = [zero; C];
        let xp = xt.as_ptr();
        let mut r0 = 0;
        while r0 < rows_pad {
            let mut proj = [xi; R];
            let xrow = xp.add(r0 * d);
            for k in 0..d {
                let mut o = [zero; C];
                for (c, v) in o.iter_mut().enumerate() {
                    *v = V::load(om.add((c * d + k) * l));
                }
                for (r, pr) in proj.iter_mut().enumerate() {
                    let xb = V::splat(*xrow.add(r * d + k));
                    for c in 0..C {
                        pr[c] = xb.mul_add(o[c], pr[c]);
                    }
                }
            }
            for (r, pr) in proj.iter().enumerate() {
                let w = V::splat(*wt.get_unchecked(r0 + r));
                for c in 0..C {
                    let (s, co) = features::<V, CHECKED, QUANT>(pr[c]);
                    acc_cos[c] = w.mul_add(co, acc_cos[c]);
                    acc_sin[c] = w.mul_add(s, acc_sin[c]);
                }
            }
            r0 += R;
        }
        for c in 0..C {
            acc_cos[c].add_to_f64(cos_out.add(c * l));
            acc_sin[c].add_to_f64(sin_out.add(c * l));
        }
    }
}
