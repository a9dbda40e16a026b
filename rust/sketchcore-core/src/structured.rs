//! Structured (fast) operator: blocks of H D3 H D2 H D1 with H the p x p
//! Walsh-Hadamard matrix (unnormalised, entries +-1) and D_k diagonal +-1
//! signs, over the data padded with zeros to p = 2^ceil(log2 d).
//!
//! Frequency j = b p + r (block b, row r) has phase
//! `t_j = scale_j * (H D3 H D2 H D1 x)_r + xi_j`; the normalisation of H and
//! the radius of the frequency are both folded into `scale_j`. Cost per
//! sample: 3 fast transforms per block, O(m log p), and O(m) memory for the
//! operator (signs and scales) instead of O(d m).
//!
//! Vectorisation runs across samples: a group of `LANES` samples is stored
//! interleaved (`[p][LANES]`), so every butterfly of the transform is one
//! vector add and one vector subtract, for any p.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::dispatch::{dispatch, Element, SimdOp};
use crate::error::SketchError;
use crate::kernel::{features, run_sketch, Nonlinearity, RunConfig, TileKernel};
use crate::simd::{Real, SimdLevel, Vector};
use crate::trig::sin_cos_pi_reduced;
use crate::sums::SketchSums;

struct StructuredKernel<E> {
    /// Row `3 b + k` holds the signs of D_{k+1} of block b (length p).
    signs: Vec<E>,
    scales: Vec<E>,
    dither: Vec<E>,
    d: usize,
    p: usize,
    m: usize,
    blocks: usize,
    max_scale: f64,
    max_abs_dither: f64,
    /// D1 is the same in every block: H D1 x is computed once per tile.
    shared_d1: bool,
}

/// Per-chunk working memory.
struct Scratch<E> {
    base: Vec<E>,
    /// H D1 x per group, when D1 is shared.
    first: Vec<E>,
    y: Vec<E>,
}

/// One pass of R = 2^S butterfly stages (strides h, 2h, .., 2^(S-1) h) held in
/// registers, reading `src` and writing `y` (they may be the same buffer);
/// with `signs`, inputs are first multiplied by the diagonal.
///
/// # Safety
/// The CPU supports V; `p` is a multiple of `R * h`; `src` and `y` are valid
/// for `p * V::LANES` reads and writes respectively; `signs` for `p` reads.
#[inline(always)]
unsafe fn fwht_pass<V: Vector, const R: usize>(
    src: *const V::E,
    y: *mut V::E,
    p: usize,
    h: usize,
    signs: Option<*const V::E>,
) {
    // SAFETY: the caller guarantees this function's contract; the indices k + q h
    // below stay under p (k < i + h, q < R, i + R h <= p), so every access is
    // within the p vectors of `src`, `y` and `signs`.
    unsafe {
        let l = V::LANES;
        let one = V::splat(V::E::ONE);
        let mut i = 0;
        while i < p {
            for k in i..i + h {
                let mut a = [V::splat(V::E::ZERO); R];
                for (q, v) in a.iter_mut().enumerate() {
                    let idx = k + q * h;
                    *v = V::load(src.add(idx * l));
                    if let Some(sg) = signs {
                        *v = v.mul(V::splat(*sg.add(idx)));
                    }
                }
                // Differences are FMAs (u - w * 1): on cores whose adders and
                // multipliers sit on separate pipes (AMD Zen) the butterflies
                // then use both; elsewhere they cost the same as a subtract.
                let mut s = 1;
                while s < R {
                    for q in 0..R {
                        if q & s == 0 {
                            let (u, w) = (a[q], a[q + s]);
                            a[q] = u.add(w);
                            a[q + s] = w.neg_mul_add(one, u);
                        }
                    }
                    s *= 2;
                }
                for (q, v) in a.iter().enumerate() {
                    v.store(y.add((k + q * h) * l));
                }
            }
            i += R * h;
        }
    }
}

/// Unnormalised fast Walsh-Hadamard transform of `p` vectors of `src` into
/// `y` (in place when they are the same), after a multiplication by a +-1
/// diagonal fused into the first pass. Radix-8 passes keep three butterfly
/// stages in registers per sweep.
///
/// # Safety
/// The CPU supports V; `p` is a power of two; `src` and `y` are valid for
/// `p * V::LANES` reads and writes respectively; `signs` for `p` reads.
#[inline(always)]
unsafe fn fwht<V: Vector>(src: *const V::E, y: *mut V::E, p: usize, signs: *const V::E) {
    // SAFETY: the caller guarantees this function's contract; with p a power of
    // two every pass below has p a multiple of R h, as `fwht_pass` requires.
    unsafe {
        // No closures here: they would not be inlined into the target-feature
        // function, and the intrinsics would become calls.
        let mut from = src;
        let mut sg = Some(signs);
        let mut h = 1;
        while 8 * h <= p {
            fwht_pass::<V, 8>(from, y, p, h, sg.take());
            from = y;
            h *= 8;
        }
        if 4 * h <= p {
            fwht_pass::<V, 4>(from, y, p, h, sg.take());
            from = y;
            h *= 4;
        }
        if 2 * h <= p {
            fwht_pass::<V, 2>(from, y, p, h, sg.take());
            from = y;
            h *= 2;
        }
        if let Some(sg) = sg {
            // p == 1: the transform is the identity; still apply the signs.
            for k in 0..p {
                V::load(from.add(k * V::LANES)).mul(V::splat(*sg.add(k))).store(y.add(k * V::LANES));
            }
        }
        debug_assert_eq!(h.max(1), p.max(1));
    }
}

impl<E: Element> TileKernel<E> for StructuredKernel<E> {
    type Scratch = Scratch<E>;

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
        // |(H D H D H D x)_r| <= p^1.5 ||x||_2 <= p^1.5 ||x||_1
        let p = self.p as f64;
        self.max_scale * p * p.sqrt() * max_l1 + self.max_abs_dither
    }
    fn work_per_row(&self) -> usize {
        // two transforms of p log p per block of p frequencies, a sine-cosine each
        let log_p = (usize::BITS - self.p.max(1).leading_zeros()) as usize;
        self.m.saturating_mul(2 * log_p + 16) + self.p.saturating_mul(log_p)
    }
    fn scratch<V: Vector<E = E>>(&self) -> Scratch<E> {
        let l = V::LANES;
        let groups = crate::kernel::TILE_ROWS.div_ceil(l);
        Scratch {
            base: vec![E::ZERO; groups * self.p * l],
            first: vec![E::ZERO; if self.shared_d1 { groups * self.p * l } else { 0 }],
            y: vec![E::ZERO; groups * self.p * l],
        }
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
        sc: &mut Scratch<E>,
        cos: &mut [f64],
        sin: &mut [f64],
    ) {
        // SAFETY: the caller guarantees `TileKernel::tile`'s contract: the CPU
        // supports V, `xt` holds `rows_pad` x d values and `wt` `rows_pad`, with
        // `rows_pad` a multiple of `row_multiple`; `cos` and `sin` hold `padded_size`.
        unsafe {
            let (l, d, p, m) = (V::LANES, self.d, self.p, self.m);
            let groups = rows_pad / l;
            debug_assert!(groups * p * l <= sc.y.len());
            let base = sc.base.as_mut_ptr();
            let y = sc.y.as_mut_ptr();
            // Interleave each group of `l` samples; rows d..p of `base` stay zero.
            for g in 0..groups {
                let bg = base.add(g * p * l);
                for s in 0..l {
                    let row = xt.as_ptr().add((g * l + s) * d);
                    for k in 0..d {
                        *bg.add(k * l + s) = *row.add(k);
                    }
                }
            }
            let first = sc.first.as_mut_ptr();
            if self.shared_d1 {
                for g in 0..groups {
                    fwht::<V>(base.add(g * p * l), first.add(g * p * l), p, self.signs.as_ptr());
                }
            }
            for b in 0..self.blocks {
                let sg = self.signs.as_ptr().add(3 * b * p);
                for g in 0..groups {
                    let yg = y.add(g * p * l);
                    // The first pass reads its input in place (no copy).
                    if self.shared_d1 {
                        fwht::<V>(first.add(g * p * l), yg, p, sg.add(p));
                    } else {
                        fwht::<V>(base.add(g * p * l), yg, p, sg);
                        fwht::<V>(yg, yg, p, sg.add(p));
                    }
                    fwht::<V>(yg, yg, p, sg.add(2 * p));
                }
                // Per-lane sums over the tile's groups stay in registers and go
                // to float64 once per tile (no m x LANES accumulator to sweep).
                let j0 = b * p;
                for r in 0..p.min(m - j0) {
                    let j = j0 + r;
                    let (scale, xi) = (V::splat(self.scales[j]), V::splat(self.dither[j]));
                    let (mut acc_c, mut acc_s) = (V::splat(E::ZERO), V::splat(E::ZERO));
                    if !CHECKED && !QUANT && E::PI_REDUCTION.is_some() {
                        // The sign (-1)^n of t = n pi + r goes on the weight: one
                        // flip instead of two.
                        for g in 0..groups {
                            let t = V::load(y.add((g * p + r) * l)).mul_add(scale, xi);
                            let (s, c, n) = sin_cos_pi_reduced::<V>(t);
                            let w = V::negate_if_odd(n, V::load(wt.as_ptr().add(g * l)));
                            acc_c = w.mul_add(c, acc_c);
                            acc_s = w.mul_add(s, acc_s);
                        }
                    } else {
                        for g in 0..groups {
                            let w = V::load(wt.as_ptr().add(g * l));
                            let t = V::load(y.add((g * p + r) * l)).mul_add(scale, xi);
                            let (s, c) = features::<V, CHECKED, QUANT>(t);
                            acc_c = w.mul_add(c, acc_c);
                            acc_s = w.mul_add(s, acc_s);
                        }
                    }
                    *cos.get_unchecked_mut(j) += acc_c.sum_f64();
                    *sin.get_unchecked_mut(j) += acc_s.sum_f64();
                }
            }
        }
    }
}

pub(crate) fn check_structured<E: Real>(
    d: usize,
    signs: &ArrayView2<'_, E>,
    scales: &ArrayView1<'_, E>,
    dither: Option<&ArrayView1<'_, E>>,
) -> Result<(usize, usize), SketchError> {
    let p = signs.ncols();
    if !p.is_power_of_two() || p < d {
        return Err(SketchError::ShapeMismatch { what: "block size p (a power of two >= d)", expected: d.next_power_of_two(), got: p });
    }
    let m = scales.len();
    let blocks = m.div_ceil(p);
    if signs.nrows() != 3 * blocks {
        return Err(SketchError::ShapeMismatch { what: "rows of signs (3 per block)", expected: 3 * blocks, got: signs.nrows() });
    }
    if let Some(xi) = dither {
        SketchError::check_len("dither length", m, xi.len())?;
    }
    Ok((p, blocks))
}

/// Sketch sums of `x` (N x d) for the structured operator given by `signs`
/// (3 * ceil(m/p) rows of p values +-1: D1, D2, D3 of each block) and
/// `scales` (m), with optional dither and weights.
#[allow(clippy::too_many_arguments)]
pub fn sketch_structured<E: Element>(
    x: ArrayView2<'_, E>,
    signs: ArrayView2<'_, E>,
    scales: ArrayView1<'_, E>,
    dither: Option<ArrayView1<'_, E>>,
    weights: Option<ArrayView1<'_, f64>>,
    nonlinearity: Nonlinearity,
    config: RunConfig,
    interrupt: &mut dyn FnMut() -> bool,
) -> Result<SketchSums, SketchError> {
    let d = x.ncols();
    let (p, blocks) = check_structured(d, &signs, &scales, dither.as_ref())?;
    let m = scales.len();
    let max_scale = scales.iter().fold(0.0f64, |a, &s| a.max(s.abs().to_f64()));
    let dither_v: Vec<E> = match &dither {
        Some(xi) => xi.iter().copied().collect(),
        None => vec![E::ZERO; m],
    };
    let shared_d1 = (1..blocks).all(|b| signs.row(3 * b) == signs.row(0));
    let kernel = StructuredKernel {
        shared_d1,
        signs: signs.iter().copied().collect(),
        scales: scales.to_vec(),
        max_abs_dither: dither_v.iter().fold(0.0f64, |a, &v| a.max(v.abs().to_f64())),
        dither: dither_v,
        d,
        p,
        m,
        blocks,
        max_scale,
    };
    run_sketch(&kernel, x, weights, nonlinearity, config, interrupt)
}

/// Rows `0..d` of block `b`'s integer matrix `B = H D3 H D2 H D1` restricted
/// to the first d columns, transposed: `out[l * p + r] = B[r, l]` (the image
/// of unit vector `e_l`, exact integers in float64). `out` holds `d * p` values.
///
/// The unit vectors are transformed `LANES` at a time, interleaved (`[p][LANES]`),
/// so that every butterfly is whole-vector adds at the best SIMD level of the
/// CPU; all values are small integers, so the result does not depend on it.
pub(crate) fn block_columns(signs: ArrayView2<'_, f64>, b: usize, d: usize, out: &mut [f64]) {
    dispatch(SimdLevel::detect(), BlockColumnsOp { signs, b, d, out });
}

struct BlockColumnsOp<'a, 'o> {
    signs: ArrayView2<'a, f64>,
    b: usize,
    d: usize,
    out: &'o mut [f64],
}

impl SimdOp<f64> for BlockColumnsOp<'_, '_> {
    type Output = ();
    #[inline(always)]
    unsafe fn run<V: Vector<E = f64>>(self) {
        let p = self.signs.ncols();
        let lanes = V::LANES;
        let row = |k: usize| self.signs.row(3 * self.b + k).to_vec();
        let (s1, s2, s3) = (row(0), row(1), row(2));
        let mut y = vec![0.0f64; p * lanes];
        for l0 in (0..self.d).step_by(lanes) {
            let count = lanes.min(self.d - l0);
            // H D1 e_l = s1_l h_l with h_l[k] = (-1)^popcount(k & l): the first
            // transform in closed form; then D2, H, D3, H.
            for (k, v) in y.chunks_exact_mut(lanes).enumerate() {
                for (i, x) in v.iter_mut().enumerate() {
                    let l = l0 + i;
                    *x = if i < count {
                        let h = if (k & l).count_ones() % 2 == 0 { 1.0 } else { -1.0 };
                        s1[l] * h * s2[k]
                    } else {
                        0.0
                    };
                }
            }
            // SAFETY: the CPU supports V (`run`'s contract); y holds p vectors.
            unsafe {
                fwht_interleaved::<V>(y.as_mut_ptr(), p);
                for (k, &s) in s3.iter().enumerate() {
                    let at = y.as_mut_ptr().add(k * lanes);
                    V::load(at).mul(V::splat(s)).store(at);
                }
                fwht_interleaved::<V>(y.as_mut_ptr(), p);
            }
            for i in 0..count {
                let dst = &mut self.out[(l0 + i) * p..(l0 + i + 1) * p];
                for (k, v) in dst.iter_mut().enumerate() {
                    *v = y[k * lanes + i];
                }
            }
        }
    }
}

/// Unnormalised Walsh-Hadamard transform (natural order) of p interleaved
/// vectors: element k is the vector at `y + k * LANES`.
///
/// # Safety
/// The CPU supports V; `y` holds `p * V::LANES` values.
#[inline(always)]
unsafe fn fwht_interleaved<V: Vector<E = f64>>(y: *mut f64, p: usize) {
    // SAFETY: the caller guarantees this function's contract: the CPU supports V; `y` holds `p * V::LANES`
    // values.
    unsafe {
        let l = V::LANES;
        let mut h = 1;
        while h < p {
            let mut i = 0;
            while i < p {
                for k in i..i + h {
                    let (a, c) = (y.add(k * l), y.add((k + h) * l));
                    let (u, v) = (V::load(a), V::load(c));
                    u.add(v).store(a);
                    u.sub(v).store(c);
                }
                i += 2 * h;
            }
            h *= 2;
        }
    }
}

/// The d x m frequency matrix the structured operator applies (float64), for
/// tests and for decoders that need it explicitly.
pub fn structured_frequencies(
    d: usize,
    signs: ArrayView2<'_, f64>,
    scales: ArrayView1<'_, f64>,
) -> Result<Array2<f64>, SketchError> {
    let (p, blocks) = check_structured(d, &signs, &scales, None)?;
    let m = scales.len();
    let mut omega = Array2::<f64>::zeros((d, m));
    let mut cols = vec![0.0f64; d * p];
    for b in 0..blocks {
        block_columns(signs, b, d, &mut cols);
        for l in 0..d {
            for r in 0..p.min(m - b * p) {
                omega[[l, b * p + r]] = scales[b * p + r] * cols[l * p + r];
            }
        }
    }
    Ok(omega)
}
