//! The sketching driver shared by all frequency operators.
//!
//! Rows are split in fixed chunks of [`CHUNK_ROWS`] computed in parallel
//! (rayon); each chunk packs tiles of at most [`TILE_ROWS`] rows into a
//! contiguous buffer (checking finiteness and updating the data box on the
//! way) and hands them to the operator's [`TileKernel`]. The float64 chunk
//! sums are added in chunk order, so results are bitwise independent of the
//! number of threads.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::dispatch::{dispatch, Element, SimdOp};
use crate::error::SketchError;
use crate::simd::{SimdLevel, Vector};
use crate::sums::SketchSums;
use crate::threads::with_pool;
use crate::trig::sin_cos;

/// Rows per packed tile; within a tile each lane sums in the input precision.
pub const TILE_ROWS: usize = 64;
/// Rows per parallel work item; fixed so results do not depend on threads.
pub const CHUNK_ROWS: usize = 4096;
/// Upper bound on memory held by one batch of chunk partial sums.
const BATCH_BYTES: usize = 32 << 20;
/// Work (in [`TileKernel::work_per_row`] units, about one multiply-add each)
/// per thread between two interrupt checks: a fraction of a second.
pub const WORK_PER_THREAD: usize = 1 << 31;

/// Chunks per batch (the interrupt is polled between batches): enough work
/// for every thread, about [`WORK_PER_THREAD`] each, within [`BATCH_BYTES`]
/// of partial sums and at most 1024 chunks.
pub fn batch_chunks(work_per_row: usize, padded_size: usize, d: usize, threads: usize) -> usize {
    let per_chunk = CHUNK_ROWS.saturating_mul(work_per_row.max(1));
    let threads = threads.max(1);
    let by_work = (threads.saturating_mul(WORK_PER_THREAD) / per_chunk).max(threads);
    let by_memory = BATCH_BYTES / (16 * padded_size + 16 * d + 64);
    by_work.min(by_memory).clamp(1, 1024)
}

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

/// The feature map applied to each phase t = omega . x + xi.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nonlinearity {
    /// (cos t, sin t): the complex exponential.
    Complex,
    /// (sign cos t, sign sin t): the 1-bit universal quantizer (sign(0) = +1).
    Quantized,
}

/// An operator's inner loop over one packed tile.
pub(crate) trait TileKernel<E: Element>: Sync {
    /// Data dimension d.
    fn dim(&self) -> usize;
    /// Sketch size m.
    fn sketch_size(&self) -> usize;
    /// Length of the float64 accumulators the tile kernel writes (>= m).
    fn padded_size(&self) -> usize;
    /// Upper bound of |t| for a row whose L1 norm is at most `max_l1`.
    fn phase_bound(&self, max_l1: f64) -> f64;
    /// Arithmetic per row, in about multiply-adds (sizes the batches).
    fn work_per_row(&self) -> usize;
    /// Per-chunk scratch memory.
    type Scratch: Send;
    fn scratch<V: Vector<E = E>>(&self) -> Self::Scratch;
    /// Tiles are zero-padded to a multiple of this many rows.
    fn row_multiple<V: Vector<E = E>>(&self) -> usize;
    /// Adds the tile's `w cos`, `w sin` sums into `cos`, `sin` (length `padded_size`).
    ///
    /// # Safety
    /// The CPU supports V; `xt` holds `rows_pad` x d values and `wt`
    /// `rows_pad`, with `rows_pad` a multiple of `row_multiple`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<V: Vector<E = E>, const CHECKED: bool, const QUANT: bool>(
        &self,
        xt: &[E],
        wt: &[E],
        rows_pad: usize,
        scratch: &mut Self::Scratch,
        cos: &mut [f64],
        sin: &mut [f64],
    );
}

/// The nonlinearity on one vector of phases.
///
/// # Safety
/// The CPU supports V; without `CHECKED`, every lane has |t| <= `REDUCTION_LIMIT`.
#[inline(always)]
pub(crate) unsafe fn features<V: Vector, const CHECKED: bool, const QUANT: bool>(t: V) -> (V, V) {
    // SAFETY: the caller guarantees this function's contract, which is
    // `sin_cos`'s; the other calls are V's arithmetic on a supported CPU.
    unsafe {
        let (s, c) = sin_cos::<V, CHECKED>(t);
        if QUANT {
            (s.sign_unit(), c.sign_unit())
        } else {
            (s, c)
        }
    }
}

/// Validates inputs and runs `kernel` over all rows of `x`.
pub(crate) fn run_sketch<E: Element, K: TileKernel<E>>(
    kernel: &K,
    x: ArrayView2<'_, E>,
    weights: Option<ArrayView1<'_, f64>>,
    nonlinearity: Nonlinearity,
    config: RunConfig,
    interrupt: &mut dyn FnMut() -> bool,
) -> Result<SketchSums, SketchError> {
    let (n, d) = x.dim();
    if kernel.dim() != d {
        return Err(SketchError::ShapeMismatch { what: "data dimension of the operator", expected: d, got: kernel.dim() });
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
    let m = kernel.sketch_size();
    let mut total = SketchSums::empty(d, m);
    if n == 0 {
        return Ok(total);
    }
    let chunks = n.div_ceil(CHUNK_ROWS);
    let threads = crate::threads::effective_threads(config.n_threads);
    let batch = batch_chunks(kernel.work_per_row(), kernel.padded_size(), d, threads);
    let mut start = 0;
    while start < chunks {
        let stop = (start + batch).min(chunks);
        let partials: Vec<Result<SketchSums, SketchError>> = with_pool(config.n_threads, || {
            (start..stop)
                .into_par_iter()
                .map(|c| {
                    let row0 = c * CHUNK_ROWS;
                    let op = ChunkOp { kernel, x: &x, weights: weights.as_ref(), row0, rows: CHUNK_ROWS.min(n - row0), nonlinearity };
                    dispatch(config.level, op)
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
        unsafe fn run<V: Vector<E = E>>(self) -> usize {
            V::LANES
        }
    }
    dispatch::<E, _>(level, Lanes)
}

struct ChunkOp<'a, E, K> {
    kernel: &'a K,
    x: &'a ArrayView2<'a, E>,
    weights: Option<&'a ArrayView1<'a, f64>>,
    row0: usize,
    rows: usize,
    nonlinearity: Nonlinearity,
}

impl<E: Element, K: TileKernel<E>> SimdOp<E> for ChunkOp<'_, E, K> {
    type Output = Result<SketchSums, SketchError>;

    #[inline(always)]
    unsafe fn run<V: Vector<E = E>>(self) -> Self::Output {
        let d = self.x.ncols();
        let kernel = self.kernel;
        let mut part = SketchSums::empty(d, kernel.padded_size());
        let mult = kernel.row_multiple::<V>();
        let cap = TILE_ROWS.div_ceil(mult) * mult;
        let mut xt = vec![E::ZERO; cap * d.max(1)];
        let mut wt = vec![E::ZERO; cap];
        let mut scratch = kernel.scratch::<V>();
        let limit = E::REDUCTION_LIMIT.to_f64();
        let quant = self.nonlinearity == Nonlinearity::Quantized;

        let mut tile0 = self.row0;
        let end = self.row0 + self.rows;
        while tile0 < end {
            let rows = TILE_ROWS.min(end - tile0);
            let rows_pad = rows.div_ceil(mult) * mult;
            let max_l1 = self.pack_tile(tile0, rows, rows_pad, &mut xt, &mut wt, &mut part)?;
            // Margin covers the rounding of the bound itself.
            let checked = kernel.phase_bound(max_l1) * 1.001 > limit;
            let (xs, ws) = (&xt[..rows_pad * d], &wt[..rows_pad]);
            let (c, s) = (&mut part.cos, &mut part.sin);
            // SAFETY: the CPU supports V (`run`'s contract); buffers sized above.
            unsafe {
                match (checked, quant) {
                    (false, false) => kernel.tile::<V, false, false>(xs, ws, rows_pad, &mut scratch, c, s),
                    (true, false) => kernel.tile::<V, true, false>(xs, ws, rows_pad, &mut scratch, c, s),
                    (false, true) => kernel.tile::<V, false, true>(xs, ws, rows_pad, &mut scratch, c, s),
                    (true, true) => kernel.tile::<V, true, true>(xs, ws, rows_pad, &mut scratch, c, s),
                }
            }
            tile0 += rows;
        }
        let m = kernel.sketch_size();
        part.cos.truncate(m);
        part.sin.truncate(m);
        Ok(part)
    }
}

impl<E: Element, K> ChunkOp<'_, E, K> {
    /// Copies rows `tile0..tile0+rows` of X into `xt` (row-major, zero rows up
    /// to `rows_pad`) and the weights into `wt`, checks finiteness and updates
    /// the data box. Returns the largest row L1 norm.
    #[inline(always)]
    fn pack_tile(
        &self,
        tile0: usize,
        rows: usize,
        rows_pad: usize,
        xt: &mut [E],
        wt: &mut [E],
        part: &mut SketchSums,
    ) -> Result<f64, SketchError> {
        let d = self.x.ncols();
        let mut max_l1 = 0.0f64;
        for r in 0..rows {
            let i = tile0 + r;
            let dst = &mut xt[r * d..(r + 1) * d];
            let row = self.x.row(i);
            match row.as_slice() {
                Some(src) => dst.copy_from_slice(src),
                None => dst.iter_mut().zip(row.iter()).for_each(|(o, &v)| *o = v),
            }
            // Branch-free passes over the contiguous copy vectorise; the
            // first non-finite value is located only when there is one.
            if !dst.iter().fold(true, |ok, v| ok & v.is_finite()) {
                let col = dst.iter().position(|v| !v.is_finite()).unwrap_or(0);
                return Err(SketchError::NonFiniteInput { row: i, col });
            }
            let mut partial = [0.0f64; 8];
            let mut chunks = dst.chunks_exact(8);
            for c in &mut chunks {
                for (p, &v) in partial.iter_mut().zip(c) {
                    *p += v.to_f64().abs();
                }
            }
            let l1 = partial.iter().sum::<f64>() + chunks.remainder().iter().map(|v| v.to_f64().abs()).sum::<f64>();
            for ((lo, hi), &v) in part.lower.iter_mut().zip(part.upper.iter_mut()).zip(dst.iter()) {
                let v64 = v.to_f64();
                *lo = lo.min(v64);
                *hi = hi.max(v64);
            }
            max_l1 = max_l1.max(l1);
            let w = match self.weights {
                Some(w) => {
                    part.weight += w[i];
                    w[i]
                }
                None => 1.0,
            };
            wt[r] = E::from_f64(w);
        }
        xt[rows * d..rows_pad * d].fill(E::ZERO);
        wt[rows..rows_pad].fill(E::ZERO);
        Ok(max_l1)
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn batches_are_sized_by_work() {
        // d = 512, m = 8192: one 4096-row chunk is ~1.8e10 multiply-adds, so
        // each thread gets one chunk per batch (the memory bound alone allowed 240).
        let per_row = 8192 * (512 + 16);
        for threads in [1, 2, 16, 64] {
            let b = batch_chunks(per_row, 8192, 512, threads);
            assert_eq!(b, threads.min(240), "threads {threads}");
        }
        // Cheap rows: many chunks per thread, within the caps.
        let b = batch_chunks(8 * (4 + 16), 8, 4, 4);
        assert!(b > 4 && b <= 1024);
        assert!(b * CHUNK_ROWS * 8 * 20 <= 4 * WORK_PER_THREAD + CHUNK_ROWS * 160);
        // Memory bound still applies to huge sketches.
        assert_eq!(batch_chunks(1, 1 << 24, 1, 8), 1);
    }
}
