//! Fused dense sketching kernel.
//!
//! For a tile of samples (rows of X, packed contiguously) and a group of C
//! frequency panels (each `LANES` frequencies wide, packed contiguously), the
//! microkernel computes an R x (C * LANES) block of projections X Omega + xi in
//! registers, takes sin/cos of it and accumulates `w_i cos`, `w_i sin` into
//! per-frequency vector accumulators that stay in registers for the whole tile.
//! The N x m projection matrix never exists in memory.
//!
//! Accumulation: within one tile (at most [`TILE_ROWS`] rows) each lane sums
//! in the input precision; tile sums are added into float64. Chunks of
//! [`CHUNK_ROWS`] rows are computed in parallel and their float64 partial sums
//! are added in chunk order, so the result is bitwise independent of the
//! number of threads.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::dispatch::{dispatch, Element, SimdOp};
use crate::error::SketchError;
use crate::simd::{Real, SimdLevel, Vector};
use crate::sums::SketchSums;
use crate::threads::with_pool;
use crate::trig::sin_cos;

/// Rows per register-resident accumulation tile.
pub const TILE_ROWS: usize = 64;
/// Rows per parallel work item; fixed so results do not depend on threads.
pub const CHUNK_ROWS: usize = 4096;
/// Upper bound on memory held by one batch of chunk partial sums.
const BATCH_BYTES: usize = 32 << 20;

/// How a sketching call runs.
#[derive(Clone, Copy, Debug)]
pub struct RunConfig {
    /// Instruction set for the kernel; must be available on this CPU.
    pub level: SimdLevel,
    /// Worker threads; 0 uses all logical CPUs.
    pub n_threads: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { level: SimdLevel::detect(), n_threads: 0 }
    }
}

/// Frequencies packed for the kernel: panel p holds `omega[l, p*L .. p*L+L]`
/// for l in 0..d contiguously (L = lanes), zero-padded to a whole panel.
struct PackedOmega<E> {
    data: Vec<E>,
    dither: Vec<E>,
    lanes: usize,
    panels: usize,
    max_abs_omega: f64,
    max_abs_dither: f64,
}

impl<E: Real> PackedOmega<E> {
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
        PackedOmega { data, dither: packed_dither, lanes, panels, max_abs_omega, max_abs_dither }
    }
}

/// One chunk's contribution (`cos`/`sin` truncated back to m).
type Partial = SketchSums;

/// Computes the sketch sums of `x` (N x d) for frequencies `omega` (d x m),
/// optional dither (m) and optional non-negative weights (N).
///
/// `interrupt` is polled from the calling thread between batches of chunks;
/// returning `true` cancels the computation with [`SketchError::Interrupted`].
pub fn sketch_dense<E: Element>(
    x: ArrayView2<'_, E>,
    omega: ArrayView2<'_, E>,
    dither: Option<ArrayView1<'_, E>>,
    weights: Option<ArrayView1<'_, f64>>,
    config: RunConfig,
    interrupt: &mut dyn FnMut() -> bool,
) -> Result<SketchSums, SketchError> {
    let (n, d) = x.dim();
    let (d_omega, m) = omega.dim();
    if d_omega != d {
        return Err(SketchError::ShapeMismatch {
            what: "rows of omega (data dimension)",
            expected: d,
            got: d_omega,
        });
    }
    if let Some(xi) = &dither {
        if xi.len() != m {
            return Err(SketchError::ShapeMismatch { what: "dither length", expected: m, got: xi.len() });
        }
    }
    if let Some(w) = &weights {
        if w.len() != n {
            return Err(SketchError::ShapeMismatch { what: "weights length", expected: n, got: w.len() });
        }
        check_weights(w)?;
    }
    if !config.level.is_available() {
        return Err(SketchError::UnsupportedSimdLevel(config.level));
    }
    let mut total = SketchSums::empty(d, m);
    if n == 0 {
        return Ok(total);
    }

    let lanes = lanes_of::<E>(config.level);
    let packed = PackedOmega::new(&omega, dither.as_ref(), lanes);
    let m_pad = packed.panels * lanes;
    let chunks = n.div_ceil(CHUNK_ROWS);
    let batch = (BATCH_BYTES / (16 * m_pad + 16 * d + 64)).clamp(1, 1024);

    let mut start = 0;
    while start < chunks {
        let stop = (start + batch).min(chunks);
        let partials: Vec<Result<Partial, SketchError>> = with_pool(config.n_threads, || {
            (start..stop)
                .into_par_iter()
                .map(|c| {
                    let row0 = c * CHUNK_ROWS;
                    let rows = CHUNK_ROWS.min(n - row0);
                    dispatch(
                        config.level,
                        ChunkOp { x: &x, weights: weights.as_ref(), packed: &packed, row0, rows, m, m_pad },
                    )
                })
                .collect()
        })?;
        // In chunk order: deterministic, and the first error is the first bad row.
        for p in partials {
            total.add_partial(&p?);
        }
        start = stop;
        // Polled on the calling thread, between batches.
        if interrupt() {
            return Err(SketchError::Interrupted);
        }
    }
    total.count = n as u64;
    if weights.is_none() {
        total.weight = n as f64;
    }
    Ok(total)
}

fn check_weights(w: &ArrayView1<'_, f64>) -> Result<(), SketchError> {
    for (index, &v) in w.iter().enumerate() {
        if !v.is_finite() {
            return Err(SketchError::NonFiniteWeight { index });
        }
        if v < 0.0 {
            return Err(SketchError::NegativeWeight { index, value: v });
        }
    }
    Ok(())
}

/// Number of lanes of the vector type `dispatch` picks for `E` at `level`.
pub fn lanes_of<E: Element>(level: SimdLevel) -> usize {
    struct Lanes;
    impl<E: Element> SimdOp<E> for Lanes {
        type Output = usize;
        #[inline(always)]
        fn run<V: Vector<E = E>>(self) -> usize {
            V::LANES
        }
    }
    dispatch::<E, _>(level, Lanes)
}

struct ChunkOp<'a, E> {
    x: &'a ArrayView2<'a, E>,
    weights: Option<&'a ArrayView1<'a, f64>>,
    packed: &'a PackedOmega<E>,
    row0: usize,
    rows: usize,
    m: usize,
    m_pad: usize,
}

impl<E: Element> SimdOp<E> for ChunkOp<'_, E> {
    type Output = Result<Partial, SketchError>;

    #[inline(always)]
    fn run<V: Vector<E = E>>(self) -> Self::Output {
        // Register blocking per instruction set: R rows x C panels of
        // projections stay in registers (AVX-512 has 32 vector registers,
        // AVX2 16).
        match V::LEVEL {
            SimdLevel::Avx512 => self.run_blocked::<V, 4, 3>(),
            SimdLevel::Avx2 => self.run_blocked::<V, 3, 2>(),
            SimdLevel::Scalar => self.run_blocked::<V, 4, 2>(),
        }
    }
}

impl<E: Element> ChunkOp<'_, E> {
    #[inline(always)]
    fn run_blocked<V: Vector<E = E>, const R: usize, const C: usize>(self) -> Result<Partial, SketchError> {
        let d = self.x.ncols();
        let packed = self.packed;
        debug_assert_eq!(packed.lanes, V::LANES);
        let mut part = Partial::empty(d, self.m_pad);
        let cap = TILE_ROWS + R;
        let mut xt = vec![E::ZERO; cap * d.max(1)];
        let mut wt = vec![E::ZERO; cap];
        let limit = E::REDUCTION_LIMIT.to_f64();

        let mut tile0 = self.row0;
        let end = self.row0 + self.rows;
        while tile0 < end {
            let rows = TILE_ROWS.min(end - tile0);
            let rows_pad = rows.div_ceil(R) * R;
            let max_l1 = self.pack_tile(tile0, rows, rows_pad, &mut xt, &mut wt, &mut part)?;
            // |t| <= ||x||_1 max|omega| + max|xi|; margin covers rounding.
            let bound = (max_l1 * packed.max_abs_omega + packed.max_abs_dither) * 1.001;
            // SAFETY: buffers hold rows_pad x d and rows_pad elements; the
            // packed operator holds `panels` panels; accumulators m_pad.
            unsafe {
                if bound <= limit {
                    tile_all_panels::<V, R, C, false>(&xt, &wt, rows_pad, d, packed, &mut part);
                } else {
                    tile_all_panels::<V, R, C, true>(&xt, &wt, rows_pad, d, packed, &mut part);
                }
            }
            tile0 += rows;
        }
        part.cos.truncate(self.m);
        part.sin.truncate(self.m);
        Ok(part)
    }

    /// Copies rows `tile0..tile0+rows` of X into `xt` (row-major, zero rows up
    /// to `rows_pad`), the weights into `wt`, checks finiteness and updates
    /// the data box. Returns the largest row L1 norm.
    #[inline(always)]
    fn pack_tile(
        &self,
        tile0: usize,
        rows: usize,
        rows_pad: usize,
        xt: &mut [E],
        wt: &mut [E],
        part: &mut Partial,
    ) -> Result<f64, SketchError> {
        let d = self.x.ncols();
        let mut max_l1 = 0.0f64;
        for r in 0..rows {
            let i = tile0 + r;
            let row = self.x.row(i);
            let dst = &mut xt[r * d..(r + 1) * d];
            let mut l1 = 0.0f64;
            for (l, (&v, out)) in row.iter().zip(dst.iter_mut()).enumerate() {
                if !v.is_finite() {
                    return Err(SketchError::NonFiniteInput { row: i, col: l });
                }
                *out = v;
                let v64 = v.to_f64();
                l1 += v64.abs();
                if v64 < part.lower[l] {
                    part.lower[l] = v64;
                }
                if v64 > part.upper[l] {
                    part.upper[l] = v64;
                }
            }
            max_l1 = max_l1.max(l1);
            let w = match self.weights {
                Some(w) => {
                    let w = w[i];
                    part.weight += w;
                    w
                }
                None => 1.0,
            };
            wt[r] = E::from_f64(w);
        }
        for r in rows..rows_pad {
            xt[r * d..(r + 1) * d].fill(E::ZERO);
            wt[r] = E::ZERO;
        }
        Ok(max_l1)
    }
}

#[inline(always)]
unsafe fn tile_all_panels<V: Vector, const R: usize, const C: usize, const CHECKED: bool>(
    xt: &[V::E],
    wt: &[V::E],
    rows_pad: usize,
    d: usize,
    packed: &PackedOmega<V::E>,
    part: &mut Partial,
) {
    let l = V::LANES;
    let mut p = 0;
    while p + C <= packed.panels {
        panel_group::<V, R, C, CHECKED>(xt, wt, rows_pad, d, packed, p, part.cos.as_mut_ptr().add(p * l), part.sin.as_mut_ptr().add(p * l));
        p += C;
    }
    while p < packed.panels {
        panel_group::<V, R, 1, CHECKED>(xt, wt, rows_pad, d, packed, p, part.cos.as_mut_ptr().add(p * l), part.sin.as_mut_ptr().add(p * l));
        p += 1;
    }
}

/// The microkernel: all rows of the tile against panels `p0..p0+C`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn panel_group<V: Vector, const R: usize, const C: usize, const CHECKED: bool>(
    xt: &[V::E],
    wt: &[V::E],
    rows_pad: usize,
    d: usize,
    packed: &PackedOmega<V::E>,
    p0: usize,
    cos_out: *mut f64,
    sin_out: *mut f64,
) {
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
                let (s, co) = sin_cos::<V, CHECKED>(pr[c]);
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
