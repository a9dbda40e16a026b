//! Sketching kernel for frequencies with few non-zero coordinates (the
//! sparse operators).
//!
//! Frequency `j` is `omega_j = sum_t value[j, t] e_{index[j, t]}` (s
//! coordinates per frequency), so its phase on a row x costs s multiply-adds
//! instead of d. The kernel transposes each packed tile of rows (d x rows),
//! so that coordinate c of `LANES` consecutive rows is one vector load: for
//! each frequency the phases of `LANES` rows are s vector multiply-adds, with
//! no gather, followed by the vectorised sine-cosine of the dense kernel.
//! Sums over the rows of a tile are carried lane by lane in the input
//! precision and added to the float64 accumulators once per tile, as in the
//! dense kernel. The phases are those of the dense kernel on the same
//! frequencies (the same multiply-adds in increasing coordinate order when
//! the coordinates of a row are sorted); the sums agree with it to rounding.

use ndarray::{ArrayView1, ArrayView2};

use crate::dispatch::Element;
use crate::error::SketchError;
use crate::kernel::{features, run_sketch, Nonlinearity, RunConfig, TileKernel};
use crate::simd::Vector;
use crate::sums::SketchSums;

/// The frequencies as flat row-major m x s arrays.
///
/// Invariant (established by [`sketch_sparse`], the only constructor):
/// every coordinate is below `d`, and `index` and `value` hold m x s values.
struct SparseKernel<E> {
    index: Vec<u32>,
    value: Vec<E>,
    dither: Vec<E>,
    d: usize,
    m: usize,
    s: usize,
    max_abs_omega: f64,
    max_abs_dither: f64,
}

impl<E: Element> TileKernel<E> for SparseKernel<E> {
    /// The tile transposed: d x rows_pad.
    type Scratch = Vec<E>;

    fn dim(&self) -> usize {
        self.d
    }
    fn sketch_size(&self) -> usize {
        self.m
    }
    fn padded_size(&self) -> usize {
        self.m
    }
    fn phase_bound(&self, max_l1: f64) -> f64 {
        // |omega . x + xi| <= ||x||_1 max|omega| + max|xi|
        max_l1 * self.max_abs_omega + self.max_abs_dither
    }
    fn work_per_row(&self) -> usize {
        // s multiply-adds and a sine-cosine (about 16) per frequency
        self.m.saturating_mul(self.s + 16)
    }
    fn scratch<V: Vector<E = E>>(&self) -> Vec<E> {
        Vec::new()
    }
    fn row_multiple<V: Vector<E = E>>(&self) -> usize {
        V::LANES
    }

    #[inline(always)]
    unsafe fn tile<V: Vector<E = E>, const CHECKED: bool, const QUANT: bool>(
        &self,
        xt: &[E],
        wt: &[E],
        rows_pad: usize,
        scratch: &mut Vec<E>,
        cos: &mut [f64],
        sin: &mut [f64],
    ) {
        let (d, s, l) = (self.d, self.s, V::LANES);
        // Transpose: row c of `scratch` holds coordinate c of every row of the tile.
        scratch.clear();
        scratch.resize(d * rows_pad, E::ZERO);
        for r in 0..rows_pad {
            for (c, &v) in xt[r * d..(r + 1) * d].iter().enumerate() {
                scratch[c * rows_pad + r] = v;
            }
        }
        assert!(wt.len() >= rows_pad && rows_pad.is_multiple_of(l) && cos.len() >= self.m && sin.len() >= self.m);
        let xs = scratch.as_ptr();
        for j in 0..self.m {
            let (idx, val) = (&self.index[j * s..(j + 1) * s], &self.value[j * s..(j + 1) * s]);
            // SAFETY: the CPU supports V (`tile`'s contract); every load reads
            // LANES values at offset c * rows_pad + r0 with c < d (the
            // kernel's invariant) and r0 + LANES <= rows_pad (rows_pad a
            // multiple of LANES, asserted above), inside the d x rows_pad
            // scratch, or at r0 inside `wt` (at least rows_pad long).
            unsafe {
                let xi = V::splat(self.dither[j]);
                let zero = V::splat(E::ZERO);
                let (mut acc_cos, mut acc_sin) = (zero, zero);
                let mut r0 = 0;
                while r0 < rows_pad {
                    let mut phase = xi;
                    for (&c, &w) in idx.iter().zip(val) {
                        phase = V::splat(w).mul_add(V::load(xs.add(c as usize * rows_pad + r0)), phase);
                    }
                    let (sn, cs) = features::<V, CHECKED, QUANT>(phase);
                    let w = V::load(wt.as_ptr().add(r0));
                    acc_cos = w.mul_add(cs, acc_cos);
                    acc_sin = w.mul_add(sn, acc_sin);
                    r0 += l;
                }
                cos[j] += acc_cos.sum_f64();
                sin[j] += acc_sin.sum_f64();
            }
        }
    }
}

/// Sketch sums of `x` (N x d) for frequencies given by their non-zero
/// coordinates: `index` (m x s, each below d) and `value` (m x s), optional
/// dither (m) and optional non-negative weights (N).
///
/// `interrupt` is polled from the calling thread between batches of chunks;
/// returning `true` cancels with [`SketchError::Interrupted`].
#[allow(clippy::too_many_arguments)]
pub fn sketch_sparse<E: Element>(
    x: ArrayView2<'_, E>,
    index: ArrayView2<'_, u32>,
    value: ArrayView2<'_, E>,
    dither: Option<ArrayView1<'_, E>>,
    weights: Option<ArrayView1<'_, f64>>,
    nonlinearity: Nonlinearity,
    config: RunConfig,
    interrupt: &mut dyn FnMut() -> bool,
) -> Result<SketchSums, SketchError> {
    let d = x.ncols();
    let (m, s) = index.dim();
    if value.dim() != (m, s) {
        return Err(SketchError::ShapeMismatch { what: "values (m x s, as the indices)", expected: m * s, got: value.len() });
    }
    if let Some(xi) = &dither {
        SketchError::check_len("dither length", m, xi.len())?;
    }
    if let Some(c) = index.iter().copied().find(|&c| c as usize >= d) {
        return Err(SketchError::InvalidArgument(format!("coordinate {c} is not below the data dimension {d}")));
    }
    if !config.level.is_available() {
        return Err(SketchError::UnsupportedSimdLevel(config.level));
    }
    let kernel = SparseKernel {
        index: index.iter().copied().collect(),
        value: value.iter().copied().collect(),
        dither: dither.as_ref().map_or_else(|| vec![E::ZERO; m], |xi| xi.to_vec()),
        d,
        m,
        s,
        max_abs_omega: value.iter().fold(0.0f64, |a, v| a.max(v.abs().to_f64())),
        max_abs_dither: dither.as_ref().map_or(0.0, |xi| xi.iter().fold(0.0f64, |a, v| a.max(v.abs().to_f64()))),
    };
    run_sketch(&kernel, x, weights, nonlinearity, config, interrupt)
}
