//! Atom evaluations for the decoders: the hot loop of CL-OMPR and of
//! hierarchical splitting.
//!
//! An atom with mean `mu` and (for diagonal Gaussians) variances `s2` has
//! coordinates, for each frequency `omega_j` (a column of the d x m matrix)
//! with dither `xi_j`:
//!
//! ```text
//! a_j = gain * exp(-0.5 sum_l omega_lj^2 s2_l) * exp(i (omega_j . mu + xi_j))
//! ```
//!
//! (`gain` is 4/pi for quantized sketches, the quantizer's first harmonic;
//! Diracs have no damping). [`objective_grad`] evaluates, for K atoms and
//! weights `alpha` at once, `f = ||z - sum_k alpha_k a_k||^2` and its gradient
//! in one fused pass over the frequencies, without forming the K x m atom
//! matrix: with the residual `r` and `p_kj = conj(a_kj) r_j`,
//!
//! ```text
//! df/d alpha_k = -2 sum_j Re p_kj
//! df/d mu_kl   = -2 alpha_k sum_j omega_lj Im p_kj
//! df/d s2_kl   =    alpha_k sum_j omega_lj^2 Re p_kj
//! ```
//!
//! Frequencies are split into fixed groups of [`GROUP`] processed in
//! parallel and summed in group order, so results are bitwise independent of
//! the number of threads. The frequencies come from a [`FrequencySource`]:
//! a dense d x m matrix read in place ([`AtomFrequencies`]), or the
//! structured operator ([`StructuredFrequencies`]), whose frequencies are
//! generated one group at a time from its signs and scales (O(d x group)
//! memory per thread; Omega is never materialised). Both give bitwise the
//! same results for the same frequencies. Within a group the atoms are computed in the
//! frequencies' precision `E` (sin/cos and exp from [`crate::trig`]), in
//! tiles of 4 atoms per frequency load, and the sums are carried in
//! float64.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::dispatch::{dispatch, Element, SimdOp};
use crate::error::SketchError;
use crate::kernel::RunConfig;
use crate::simd::{Real, Vector};
use crate::structured::block_columns;
use crate::threads::with_pool;
use crate::trig::{exp, sin_cos};

/// Frequencies per parallel work item (fixed: results do not depend on threads).
pub const GROUP: usize = 1024;
/// Frequencies per inner block (at most); a K x SUB scratch holds the atoms.
const SUB: usize = 256;
/// Blocks of frequencies in more dimensions than this are packed (see `Block::new`).
const PACK_ABOVE_DIM: usize = 128;

/// Inner block width for data dimension d: the block's frequencies and
/// squared frequencies (2 d x width values) are read once for the atoms and
/// again for the gradient sums, so they should stay in the per-core L2 cache
/// (~512 kB in float64; measured with packed blocks, K = 10, d = 512: 13 ms
/// vs 17 ms at the full width). A function of d only: sums do not depend on threads.
fn sub_width(d: usize) -> usize {
    let fit = 32768 / d.max(1);
    let pow2 = if fit >= SUB { SUB } else { 1 << (usize::BITS - 1 - fit.max(1).leading_zeros()) };
    pow2.clamp(16, SUB)
}

/// The frequencies the atoms are evaluated at.
#[derive(Clone, Copy, Debug)]
pub struct AtomFrequencies<'a, E> {
    /// d x m frequencies.
    pub omega: ArrayView2<'a, E>,
    /// d x m squared frequencies, needed by Gaussian atoms only.
    pub omega_sq: Option<ArrayView2<'a, E>>,
    /// m dither phases.
    pub dither: ArrayView1<'a, E>,
    /// Amplitude of every atom (1, or 4/pi for quantized sketches).
    pub gain: f64,
}

/// Atom parameters: K x d means and, for Gaussians, K x d variances.
#[derive(Clone, Copy, Debug)]
pub struct AtomParams<'a> {
    pub means: ArrayView2<'a, f64>,
    pub variances: Option<ArrayView2<'a, f64>>,
}

/// `f = ||z - sum_k alpha_k a_k||^2` and its gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveGrad {
    pub value: f64,
    /// K x d.
    pub grad_means: Array2<f64>,
    /// K x d, for Gaussian atoms.
    pub grad_variances: Option<Array2<f64>>,
    /// K.
    pub grad_weights: Array1<f64>,
}

/// Where the kernels read the frequencies from, one group of columns at a time.
pub trait FrequencySource<E: Element>: Sync {
    /// (d, m).
    fn shape(&self) -> (usize, usize);
    /// Whether squared frequencies are available (Gaussian atoms need them).
    fn has_squares(&self) -> bool;
    /// Amplitude of every atom.
    fn gain(&self) -> f64;
    /// Frequencies per parallel work item (a function of the operator only,
    /// so that results do not depend on the number of threads).
    fn group_len(&self) -> usize {
        GROUP
    }
    /// Shape checks beyond [`FrequencySource::shape`].
    fn validate(&self) -> Result<(), SketchError>;
    /// Columns `j0..j1` as dense arrays: borrowed, or generated.
    fn columns(&self, j0: usize, j1: usize) -> Columns<'_, E>;
}

/// A group of frequencies as the kernels read them.
pub enum Columns<'a, E> {
    Borrowed(AtomFrequencies<'a, E>),
    Generated { omega: Array2<E>, omega_sq: Option<Array2<E>>, dither: ArrayView1<'a, E>, gain: f64 },
}

impl<E: Element> Columns<'_, E> {
    fn view(&self) -> AtomFrequencies<'_, E> {
        match self {
            Columns::Borrowed(f) => AtomFrequencies {
                omega: f.omega.view(),
                omega_sq: f.omega_sq.as_ref().map(|o| o.view()),
                dither: f.dither.view(),
                gain: f.gain,
            },
            Columns::Generated { omega, omega_sq, dither, gain } => AtomFrequencies {
                omega: omega.view(),
                omega_sq: omega_sq.as_ref().map(|o| o.view()),
                dither: dither.view(),
                gain: *gain,
            },
        }
    }
}

impl<E: Element> FrequencySource<E> for AtomFrequencies<'_, E> {
    fn shape(&self) -> (usize, usize) {
        self.omega.dim()
    }
    fn has_squares(&self) -> bool {
        self.omega_sq.is_some()
    }
    fn gain(&self) -> f64 {
        self.gain
    }
    fn validate(&self) -> Result<(), SketchError> {
        let (d, m) = self.omega.dim();
        SketchError::check_len("dither length", m, self.dither.len())?;
        if let Some(sq) = self.omega_sq {
            if sq.dim() != (d, m) {
                return Err(SketchError::ShapeMismatch { what: "squared frequencies (d x m)", expected: d * m, got: sq.len() });
            }
        }
        Ok(())
    }
    fn columns(&self, j0: usize, j1: usize) -> Columns<'_, E> {
        Columns::Borrowed(AtomFrequencies {
            omega: self.omega.slice(s![.., j0..j1]),
            omega_sq: self.omega_sq.map(|o| o.slice_move(s![.., j0..j1])),
            dither: self.dither.slice(s![j0..j1]),
            gain: self.gain,
        })
    }
}

/// Frequencies of the structured operator (see [`crate::structured`]),
/// generated on the fly: frequency `c` (a column of the operator) is
/// `scale_c * B_b[c mod p, :d]` with `B_b = H D3 H D2 H D1` of block
/// `b = c / p`. The source covers columns `first_column .. first_column + m`
/// (m = `scales.len()`), so that a caller may work on a range of frequencies.
/// Each group costs 2 d p log2 p additions per block on top of the atoms'
/// K d p multiply-adds; memory is O(d x group) per thread.
#[derive(Clone, Copy, Debug)]
pub struct StructuredFrequencies<'a, E> {
    /// The operator's signs: row `3 b + k` holds D_{k+1} of block b (p values +-1).
    pub signs: ArrayView2<'a, f64>,
    /// Scales of the m frequencies covered.
    pub scales: ArrayView1<'a, f64>,
    /// Dither of the m frequencies covered.
    pub dither: ArrayView1<'a, E>,
    /// Data dimension d.
    pub dim: usize,
    /// Operator column of the first frequency covered.
    pub first_column: usize,
    /// Generate squared frequencies too (Gaussian atoms).
    pub squares: bool,
    /// Optional per-dimension factors (d): frequencies `row_scales[l] * omega_lj`,
    /// the operator seen from standardised coordinates.
    pub row_scales: Option<ArrayView1<'a, f64>>,
    /// Amplitude of every atom.
    pub gain: f64,
}

impl<E: Element> FrequencySource<E> for StructuredFrequencies<'_, E> {
    fn shape(&self) -> (usize, usize) {
        (self.dim, self.scales.len())
    }
    fn has_squares(&self) -> bool {
        self.squares
    }
    fn gain(&self) -> f64 {
        self.gain
    }
    fn group_len(&self) -> usize {
        GROUP.max(self.signs.ncols())
    }
    fn validate(&self) -> Result<(), SketchError> {
        let p = self.signs.ncols();
        let m = self.scales.len();
        let end = self.first_column + m;
        // The operator's blocks must cover the columns asked for.
        let blocks = self.signs.nrows() / 3;
        if !self.signs.nrows().is_multiple_of(3) || blocks * p < end {
            return Err(SketchError::ShapeMismatch {
                what: "rows of signs (3 per block, covering the frequencies)",
                expected: 3 * end.div_ceil(p.max(1)),
                got: self.signs.nrows(),
            });
        }
        if !p.is_power_of_two() || p < self.dim {
            return Err(SketchError::ShapeMismatch {
                what: "block size p (a power of two >= d)",
                expected: self.dim.next_power_of_two(),
                got: p,
            });
        }
        SketchError::check_len("dither length", m, self.dither.len())?;
        if let Some(rs) = self.row_scales {
            if rs.len() != self.dim {
                return Err(SketchError::ShapeMismatch { what: "row scales (one per dimension)", expected: self.dim, got: rs.len() });
            }
        }
        Ok(())
    }
    fn columns(&self, j0: usize, j1: usize) -> Columns<'_, E> {
        let (d, p, len) = (self.dim, self.signs.ncols(), j1 - j0);
        let mut omega = Array2::<E>::from_elem((d, len), E::ZERO);
        let mut omega_sq = self.squares.then(|| Array2::<E>::from_elem((d, len), E::ZERO));
        let (c0, c1) = (self.first_column + j0, self.first_column + j1);
        let mut cols = vec![0.0f64; d * p];
        if len > 0 {
            for b in c0 / p..=(c1 - 1) / p {
                block_columns(self.signs, b, d, &mut cols);
                let (lo, hi) = (c0.max(b * p), c1.min((b + 1) * p));
                for l in 0..d {
                    let src = &cols[l * p..(l + 1) * p];
                    let row_scale = self.row_scales.map(|rs| rs[l]);
                    for c in lo..hi {
                        let j = c - c0;
                        // Same roundings as the materialised matrix: one
                        // product, then the row factor.
                        let mut w = self.scales[c - self.first_column] * src[c - b * p];
                        if let Some(f) = row_scale {
                            w *= f;
                        }
                        omega[[l, j]] = E::from_f64(w);
                        if let Some(sq) = omega_sq.as_mut() {
                            sq[[l, j]] = E::from_f64(w * w);
                        }
                    }
                }
            }
        }
        Columns::Generated { omega, omega_sq, dither: self.dither.slice(s![j0..j1]), gain: self.gain }
    }
}

fn check<E: Element, F: FrequencySource<E> + ?Sized>(
    freq: &F,
    params: &AtomParams<'_>,
) -> Result<(usize, usize, usize), SketchError> {
    let (d, m) = freq.shape();
    let k = params.means.nrows();
    if params.means.ncols() != d {
        return Err(SketchError::ShapeMismatch { what: "columns of the means (data dimension)", expected: d, got: params.means.ncols() });
    }
    freq.validate()?;
    match (freq.has_squares(), params.variances) {
        (true, Some(var)) => {
            if var.dim() != (k, d) {
                return Err(SketchError::ShapeMismatch { what: "variances (K x d)", expected: k * d, got: var.len() });
            }
        }
        (false, None) => {}
        (false, Some(_)) => return Err(SketchError::InvalidArgument("Gaussian atoms need the squared frequencies".into())),
        (true, None) => return Err(SketchError::InvalidArgument("squared frequencies given for Dirac atoms".into())),
    }
    Ok((k, d, m))
}

/// One block of frequencies as pointers: straight into the caller's arrays
/// when their rows are contiguous, the block is whole vectors (every block
/// but a ragged last one) and d <= [`PACK_ABOVE_DIM`]; else into a packed,
/// zero-padded copy in a buffer reused from block to block. Avoiding the copy
/// matters for few atoms at small d (the single-atom steps of the decoders);
/// packing matters at large d (K = 10, d = 512: 36 -> 14 ms per objective).
struct Block<'s, E> {
    len: usize,
    pad: usize,
    omega: *const E,
    omega_stride: isize,
    omega_sq: *const E,
    omega_sq_stride: isize,
    dither: *const E,
    /// The pointers point into the frequencies or into the packing buffer,
    /// both borrowed for `'s`: the block cannot outlive either.
    _borrows: std::marker::PhantomData<&'s [E]>,
}

/// Row stride when every row of `a` is contiguous (unit column stride).
fn row_contiguous<E>(a: &ArrayView2<'_, E>) -> Option<isize> {
    (a.ncols() <= 1 || a.strides()[1] == 1).then(|| a.strides()[0])
}

/// Copies `src` into `dst[..src.len()]` (a memcpy when `src` is contiguous).
fn copy_into<E: Copy>(dst: &mut [E], src: ArrayView1<'_, E>) {
    match src.as_slice() {
        Some(s) => dst[..s.len()].copy_from_slice(s),
        None => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v),
    }
}

impl<'s, E: Element> Block<'s, E> {
    /// Frequencies `j0..j1` of `freq`; `scratch` is the packing buffer, reused
    /// from block to block (fresh large allocations cost page faults).
    fn new(freq: &'s AtomFrequencies<'_, E>, j0: usize, j1: usize, lanes: usize, scratch: &'s mut Vec<E>) -> Self {
        let d = freq.omega.nrows();
        let len = j1 - j0;
        let pad = len.div_ceil(lanes) * lanes;
        // At large d, rows m apart in memory put every frequency row of a block
        // on its own page (TLB misses, no prefetching): pack the block instead.
        let direct = pad == len && len > 0 && d <= PACK_ABOVE_DIM && (freq.dither.len() <= 1 || freq.dither.strides()[0] == 1);
        if direct {
            if let (Some(so), Some(ssq)) = (
                row_contiguous(&freq.omega),
                freq.omega_sq.as_ref().map_or(Some(0), row_contiguous),
            ) {
                // Column j0 < m is inside every row (bounds-checked indexing).
                let col = |a: &ArrayView2<'_, E>| if d == 0 { a.as_ptr() } else { &a[[0, j0]] as *const E };
                return Block {
                    len,
                    pad,
                    omega: col(&freq.omega),
                    omega_stride: so,
                    omega_sq: freq.omega_sq.as_ref().map_or(std::ptr::null(), col),
                    omega_sq_stride: ssq,
                    dither: &freq.dither[j0] as *const E,
                    _borrows: std::marker::PhantomData,
                };
            }
        }
        let sq = freq.omega_sq.is_some();
        let rows = d * (1 + sq as usize) + 1;
        if scratch.len() < rows * pad {
            scratch.resize(rows * pad, E::ZERO);
        }
        for (r, row) in scratch[..rows * pad].chunks_exact_mut(pad).enumerate() {
            let src = if r < d {
                freq.omega.slice(s![r, j0..j1])
            } else if r < rows - 1 {
                freq.omega_sq.as_ref().expect("squared frequencies").slice(s![r - d, j0..j1])
            } else {
                freq.dither.slice(s![j0..j1])
            };
            copy_into(row, src);
            // Padding lanes: frequency and dither zero.
            row[len..].fill(E::ZERO);
        }
        let base = scratch.as_ptr();
        // SAFETY: offsets within the first rows * pad values of `scratch`,
        // which stays borrowed (unchanged) while the block lives.
        unsafe {
            Block {
                len,
                pad,
                omega: base,
                omega_stride: pad as isize,
                omega_sq: if sq { base.add(d * pad) } else { std::ptr::null() },
                omega_sq_stride: pad as isize,
                dither: base.add((rows - 1) * pad),
                _borrows: std::marker::PhantomData,
            }
        }
    }

    /// Row c of the frequencies over the block (`pad` values).
    ///
    /// # Safety
    /// c < d.
    #[inline(always)]
    unsafe fn omega_row(&self, c: usize) -> *const E {
        // SAFETY: c < d (the caller's contract) and the block's d rows start
        // `omega_stride` apart inside the frequencies or the packing buffer it
        // borrows, so the offset stays inside that allocation.
        unsafe {
            self.omega.offset(c as isize * self.omega_stride)
        }
    }

    /// Row c of the squared frequencies (Gaussian atoms only).
    ///
    /// # Safety
    /// c < d and the block has squared frequencies.
    #[inline(always)]
    unsafe fn omega_sq_row(&self, c: usize) -> *const E {
        // SAFETY: c < d and the block has squared frequencies (the caller's
        // contract), whose d rows start `omega_sq_stride` apart inside the
        // allocation the block borrows.
        unsafe {
            self.omega_sq.offset(c as isize * self.omega_sq_stride)
        }
    }
}

/// Atoms are evaluated in tiles of this many: each frequency loaded feeds
/// TILE multiply-adds (at large d the frequencies, not the arithmetic, were
/// the bottleneck: d = 512, K = 10 ran at a quarter of BLAS speed).
const TILE: usize = 4;

/// The atom parameters converted to the kernels' precision: means and
/// `-0.5 * variances` (K x d, row-major).
struct TileParams<E> {
    d: usize,
    means: Vec<E>,
    neg_half_vars: Option<Vec<E>>,
}

impl<E: Element> TileParams<E> {
    fn new(params: &AtomParams<'_>) -> Self {
        TileParams {
            d: params.means.ncols(),
            means: params.means.iter().map(|&v| E::from_f64(v)).collect(),
            neg_half_vars: params.variances.map(|v| v.iter().map(|&s2| E::from_f64(-0.5 * s2)).collect()),
        }
    }
}

/// Atoms `k0 .. k0 + N` over the block, written to rows `i` of `re`, `im`
/// (row stride `stride`, `block.pad` values each).
///
/// # Safety
/// The CPU supports V; `block.pad` is a multiple of `V::LANES`; the
/// parameters hold atoms `k0 .. k0 + N` and the outputs N rows.
#[inline(always)]
unsafe fn atoms_tile<V: Vector, const N: usize>(
    block: &Block<V::E>,
    params: &TileParams<V::E>,
    k0: usize,
    gain: V::E,
    re: *mut V::E,
    im: *mut V::E,
    stride: usize,
) where
    V::E: Element,
{
    // SAFETY: the caller guarantees this function's contract: the CPU supports V; `block.pad` is a multiple
    // of `V::LANES`; the parameters hold atoms `k0 .. k0 + N` and the outputs N rows.
    unsafe {
        let d = params.d;
        let means = params.means.as_ptr().add(k0 * d);
        let mut b = 0;
        while b < block.pad {
            let mut phase = [V::load(block.dither.add(b)); N];
            for c in 0..d {
                let w = V::load(block.omega_row(c).add(b));
                for (i, ph) in phase.iter_mut().enumerate() {
                    *ph = V::splat(*means.add(i * d + c)).mul_add(w, *ph);
                }
            }
            let mut amp = [V::splat(gain); N];
            if let Some(nhv) = &params.neg_half_vars {
                let nhv = nhv.as_ptr().add(k0 * d);
                let mut e = [V::splat(V::E::ZERO); N];
                for c in 0..d {
                    let w2 = V::load(block.omega_sq_row(c).add(b));
                    for (i, ei) in e.iter_mut().enumerate() {
                        *ei = V::splat(*nhv.add(i * d + c)).mul_add(w2, *ei);
                    }
                }
                for (a, ei) in amp.iter_mut().zip(e) {
                    *a = exp(ei).mul(V::splat(gain));
                }
            }
            for i in 0..N {
                let (sin, cos) = sin_cos::<V, true>(phase[i]);
                cos.mul(amp[i]).store(re.add(i * stride + b));
                sin.mul(amp[i]).store(im.add(i * stride + b));
            }
            b += V::LANES;
        }
    }
}

/// Frequency-weighted sums of N rows over the block, for every coordinate c:
/// `mean[i d + c] += sum_b p_im[i][b] omega[c][b]`, and with `p_re`
/// `var[i d + c] += sum_b p_re[i][b] omega_sq[c][b]`, with `q` (only
/// together with `p_re`) `norm[i d + c] += sum_b q[i][b] omega_sq[c][b]`.
/// Rows have stride `stride`; sums are taken in block order, lane by lane.
///
/// # Safety
/// As for [`atoms_tile`]; the outputs hold N x d values; `p_re` needs the
/// block's squared frequencies.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn weighted_sums_tile<V: Vector, const N: usize>(
    block: &Block<V::E>,
    d: usize,
    p_im: *const V::E,
    p_re: Option<*const V::E>,
    q: Option<*const V::E>,
    stride: usize,
    mean: *mut f64,
    var: *mut f64,
    norm: *mut f64,
) where
    V::E: Element,
{
    // SAFETY: the caller guarantees this function's contract: as for [`atoms_tile`]; the outputs hold N x d
    // values; `p_re` needs the block's squared frequencies.
    unsafe {
        let zero = V::splat(V::E::ZERO);
        for c in 0..d {
            let w_row = block.omega_row(c);
            let mut am = [zero; N];
            let mut av = [zero; N];
            let mut aq = [zero; N];
            let mut b = 0;
            while b < block.pad {
                let w = V::load(w_row.add(b));
                for (i, a) in am.iter_mut().enumerate() {
                    *a = V::load(p_im.add(i * stride + b)).mul_add(w, *a);
                }
                if let Some(pr) = p_re {
                    let w2 = V::load(block.omega_sq_row(c).add(b));
                    for (i, a) in av.iter_mut().enumerate() {
                        *a = V::load(pr.add(i * stride + b)).mul_add(w2, *a);
                    }
                    if let Some(q) = q {
                        for (i, a) in aq.iter_mut().enumerate() {
                            *a = V::load(q.add(i * stride + b)).mul_add(w2, *a);
                        }
                    }
                }
                b += V::LANES;
            }
            for i in 0..N {
                *mean.add(i * d + c) += am[i].sum_f64();
                if p_re.is_some() {
                    *var.add(i * d + c) += av[i].sum_f64();
                    if q.is_some() {
                        *norm.add(i * d + c) += aq[i].sum_f64();
                    }
                }
            }
        }
    }
}

/// `dst[..len] = src` in the kernels' precision, zeros beyond.
fn load_residual<E: Element>(dst: &mut [E], src: ArrayView1<'_, f64>) {
    let len = src.len();
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = E::from_f64(v);
    }
    dst[len..].fill(E::ZERO);
}

/// Calls `$f::<V, N>(k0, ...)` over atoms `0..$k` in tiles of [`TILE`], then one by one.
macro_rules! for_tiles {
    ($k:expr, |$k0:ident, $n:ident| $body:block) => {{
        let mut $k0 = 0;
        while $k0 < $k {
            if $k - $k0 >= TILE {
                const $n: usize = TILE;
                $body
                $k0 += TILE;
            } else {
                const $n: usize = 1;
                $body
                $k0 += 1;
            }
        }
    }};
}

struct AtomsOp<'a, 'f, 'p, E> {
    freq: &'a AtomFrequencies<'f, E>,
    params: &'a AtomParams<'p>,
    j0: usize,
    out_re: ArrayViewMut2<'a, f64>,
    out_im: ArrayViewMut2<'a, f64>,
}

impl<E: Element> SimdOp<E> for AtomsOp<'_, '_, '_, E> {
    type Output = ();
    #[inline(always)]
    unsafe fn run<V: Vector<E = E>>(mut self) {
        let len = self.out_re.ncols();
        let k_atoms = self.params.means.nrows();
        let tp = TileParams::<E>::new(self.params);
        let gain = E::from_f64(self.freq.gain);
        let sub = sub_width(self.params.means.ncols());
        let mut pack = Vec::new();
        let mut re = vec![E::ZERO; TILE * sub];
        let mut im = vec![E::ZERO; TILE * sub];
        let mut j0 = 0;
        while j0 < len {
            let j1 = (j0 + sub).min(len);
            let block = Block::new(self.freq, self.j0 + j0, self.j0 + j1, V::LANES, &mut pack);
            let pad = block.pad;
            for_tiles!(k_atoms, |k0, N| {
                // SAFETY: the CPU supports V (`run`'s contract); pad is a
                // multiple of LANES; the buffers hold TILE >= N rows.
                unsafe { atoms_tile::<V, N>(&block, &tp, k0, gain, re.as_mut_ptr(), im.as_mut_ptr(), pad) };
                for i in 0..N {
                    let row = &re[i * pad..i * pad + (j1 - j0)];
                    for (dst, &v) in self.out_re.slice_mut(s![k0 + i, j0..j1]).iter_mut().zip(row) {
                        *dst = v.to_f64();
                    }
                    let row = &im[i * pad..i * pad + (j1 - j0)];
                    for (dst, &v) in self.out_im.slice_mut(s![k0 + i, j0..j1]).iter_mut().zip(row) {
                        *dst = v.to_f64();
                    }
                }
            });
            j0 = j1;
        }
    }
}

/// Real and imaginary parts (K x m each, float64) of the atoms.
pub fn atoms<E: Element, F: FrequencySource<E> + ?Sized>(
    freq: &F,
    params: &AtomParams<'_>,
    config: RunConfig,
) -> Result<(Array2<f64>, Array2<f64>), SketchError> {
    let (k, _, m) = check(freq, params)?;
    if !config.level.is_available() {
        return Err(SketchError::UnsupportedSimdLevel(config.level));
    }
    let mut re = Array2::zeros((k, m));
    let mut im = Array2::zeros((k, m));
    if k == 0 || m == 0 {
        return Ok((re, im));
    }
    let group = freq.group_len();
    let jobs: Vec<_> = re
        .axis_chunks_iter_mut(Axis(1), group)
        .zip(im.axis_chunks_iter_mut(Axis(1), group))
        .enumerate()
        .map(|(g, (r, i))| (g * group, r, i))
        .collect();
    with_pool(config.n_threads, || {
        jobs.into_par_iter().for_each(|(j0, out_re, out_im)| {
            let columns = freq.columns(j0, j0 + out_re.ncols());
            let view = columns.view();
            dispatch(config.level, AtomsOp { freq: &view, params, j0: 0, out_re, out_im });
        })
    })?;
    Ok((re, im))
}

/// Per-group partial sums: `[f, grad_alpha (K), grad_mean (K x d), grad_var (K x d)]`
/// before the alpha factors.
struct ObjectiveOp<'a, 'f, 'p, 'z, E> {
    freq: &'a AtomFrequencies<'f, E>,
    params: &'a AtomParams<'p>,
    weights: &'a [f64],
    z_re: ArrayView1<'z, f64>,
    z_im: ArrayView1<'z, f64>,
    j0: usize,
    j1: usize,
}

impl<E: Element> SimdOp<E> for ObjectiveOp<'_, '_, '_, '_, E> {
    type Output = Vec<f64>;
    #[inline(always)]
    unsafe fn run<V: Vector<E = E>>(self) -> Vec<f64> {
        let (k_atoms, d) = self.params.means.dim();
        let gaussian = self.params.variances.is_some();
        let mut acc = vec![0.0f64; 1 + k_atoms * (1 + 2 * d)];
        let (f_acc, rest) = acc.split_at_mut(1);
        let (g_alpha, rest) = rest.split_at_mut(k_atoms);
        let (g_mean, g_var) = rest.split_at_mut(k_atoms * d);
        let gain = E::from_f64(self.freq.gain);
        let tp = TileParams::<E>::new(self.params);
        let l = V::LANES;
        let sub = sub_width(d);
        // Buffers reused from block to block (fresh large allocations cost page faults).
        let mut pack = Vec::new();
        let mut a_re = vec![E::ZERO; k_atoms * sub];
        let mut a_im = vec![E::ZERO; k_atoms * sub];
        let mut r_re = vec![E::ZERO; sub];
        let mut r_im = vec![E::ZERO; sub];
        let mut p_re = vec![E::ZERO; TILE * sub];
        let mut p_im = vec![E::ZERO; TILE * sub];
        let mut j0 = self.j0;
        while j0 < self.j1 {
            let j1 = (j0 + sub).min(self.j1);
            let block = Block::new(self.freq, j0, j1, l, &mut pack);
            let pad = block.pad;
            // Model sum_k alpha_k a_k, then the residual, in this block.
            load_residual(&mut r_re[..pad], self.z_re.slice(s![j0..j1]));
            load_residual(&mut r_im[..pad], self.z_im.slice(s![j0..j1]));
            // SAFETY: for the whole block, the CPU supports V (`run`'s contract);
            // every buffer holds a multiple of LANES elements per row.
            unsafe {
                for_tiles!(k_atoms, |k0, N| {
                    atoms_tile::<V, N>(&block, &tp, k0, gain, a_re.as_mut_ptr().add(k0 * pad), a_im.as_mut_ptr().add(k0 * pad), pad);
                });
                for k in 0..k_atoms {
                    let re = &a_re[k * pad..(k + 1) * pad];
                    let im = &a_im[k * pad..(k + 1) * pad];
                    let w = V::splat(E::from_f64(-self.weights[k]));
                    let mut b = 0;
                    while b < pad {
                        let rr = V::load(re.as_ptr().add(b)).mul_add(w, V::load(r_re.as_ptr().add(b)));
                        let ri = V::load(im.as_ptr().add(b)).mul_add(w, V::load(r_im.as_ptr().add(b)));
                        rr.store(r_re.as_mut_ptr().add(b));
                        ri.store(r_im.as_mut_ptr().add(b));
                        b += l;
                    }
                }
                // Padding lanes hold atoms at omega = 0: zero their residual.
                for v in r_re[block.len..].iter_mut().chain(r_im[block.len..].iter_mut()) {
                    *v = E::ZERO;
                }
                let mut b = 0;
                while b < pad {
                    let rr = V::load(r_re.as_ptr().add(b));
                    let ri = V::load(r_im.as_ptr().add(b));
                    f_acc[0] += rr.mul_add(rr, ri.mul(ri)).sum_f64();
                    b += l;
                }
                // p = conj(a) r for a tile of atoms, then its weighted sums.
                for_tiles!(k_atoms, |k0, N| {
                    for i in 0..N {
                        let k = k0 + i;
                        let re = &a_re[k * pad..(k + 1) * pad];
                        let im = &a_im[k * pad..(k + 1) * pad];
                        let (pr_row, pi_row) = (p_re.as_mut_ptr().add(i * pad), p_im.as_mut_ptr().add(i * pad));
                        let mut sum = V::splat(E::ZERO);
                        let mut b = 0;
                        while b < pad {
                            let (ar, ai) = (V::load(re.as_ptr().add(b)), V::load(im.as_ptr().add(b)));
                            let (rr, ri) = (V::load(r_re.as_ptr().add(b)), V::load(r_im.as_ptr().add(b)));
                            let pr = ar.mul_add(rr, ai.mul(ri));
                            let pi = ar.mul_add(ri, V::splat(E::ZERO).sub(ai.mul(rr)));
                            pr.store(pr_row.add(b));
                            pi.store(pi_row.add(b));
                            sum = sum.add(pr);
                            b += l;
                        }
                        g_alpha[k] += sum.sum_f64();
                    }
                    weighted_sums_tile::<V, N>(
                        &block,
                        d,
                        p_im.as_ptr(),
                        gaussian.then_some(p_re.as_ptr()),
                        None,
                        pad,
                        g_mean.as_mut_ptr().add(k0 * d),
                        g_var.as_mut_ptr().add(k0 * d),
                        std::ptr::null_mut(),
                    );
                });
            }
            j0 = j1;
        }
        acc
    }
}

/// Runs `partial(view, j0, j1)` on every group of frequencies `j0..j1` in
/// parallel (`view`: the group's frequencies, borrowed or generated) and adds
/// the partial sums (`len` values each) in group order, so that the result
/// does not depend on the number of threads.
fn group_sums<E, F, P>(freq: &F, config: RunConfig, len: usize, partial: P) -> Result<Vec<f64>, SketchError>
where
    E: Element,
    F: FrequencySource<E> + ?Sized,
    P: Fn(&AtomFrequencies<'_, E>, usize, usize) -> Vec<f64> + Sync,
{
    let (_, m) = freq.shape();
    let group = freq.group_len();
    let partials: Vec<Vec<f64>> = with_pool(config.n_threads, || {
        (0..m.div_ceil(group))
            .into_par_iter()
            .map(|g| {
                let (j0, j1) = (g * group, ((g + 1) * group).min(m));
                let columns = freq.columns(j0, j1);
                partial(&columns.view(), j0, j1)
            })
            .collect()
    })?;
    Ok(add_in_order(&partials, len))
}

/// The sum of per-group partial sums (`len` values each), added in group
/// order: the one place the kernels' results are made independent of the
/// number of threads.
pub(crate) fn add_in_order(partials: &[Vec<f64>], len: usize) -> Vec<f64> {
    let mut total = vec![0.0f64; len];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// `||z - sum_k alpha_k a_k||^2` and its gradient with respect to the atom
/// parameters and the weights (see the module documentation).
pub fn objective_grad<E: Element, F: FrequencySource<E> + ?Sized>(
    freq: &F,
    params: &AtomParams<'_>,
    weights: ArrayView1<'_, f64>,
    z_re: ArrayView1<'_, f64>,
    z_im: ArrayView1<'_, f64>,
    config: RunConfig,
) -> Result<ObjectiveGrad, SketchError> {
    let (k, d, m) = check(freq, params)?;
    if weights.len() != k {
        return Err(SketchError::ShapeMismatch { what: "number of weights", expected: k, got: weights.len() });
    }
    if z_re.len() != m || z_im.len() != m {
        return Err(SketchError::ShapeMismatch { what: "sketch length", expected: m, got: z_re.len().max(z_im.len()) });
    }
    if !config.level.is_available() {
        return Err(SketchError::UnsupportedSimdLevel(config.level));
    }
    let weights: Vec<f64> = weights.to_vec();
    let total = group_sums(freq, config, 1 + k * (1 + 2 * d), |view, j0, j1| {
        let op = ObjectiveOp {
            freq: view,
            params,
            weights: &weights,
            z_re: z_re.slice(s![j0..j1]),
            z_im: z_im.slice(s![j0..j1]),
            j0: 0,
            j1: j1 - j0,
        };
        dispatch(config.level, op)
    })?;
    let value = total[0];
    let grad_weights = Array1::from_iter(total[1..1 + k].iter().map(|g| -2.0 * g));
    let mut grad_means = Array2::from_shape_vec((k, d), total[1 + k..1 + k + k * d].to_vec()).expect("shape");
    for (mut row, &a) in grad_means.rows_mut().into_iter().zip(&weights) {
        row *= -2.0 * a;
    }
    let grad_variances = params.variances.map(|_| {
        let mut g = Array2::from_shape_vec((k, d), total[1 + k + k * d..].to_vec()).expect("shape");
        for (mut row, &a) in g.rows_mut().into_iter().zip(&weights) {
            row *= a;
        }
        g
    });
    Ok(ObjectiveGrad { value, grad_means, grad_variances, grad_weights })
}

/// Correlations of K atoms with a residual `r` (and what their gradients
/// need), for CL-OMPR's step 1 (the atom most correlated with the residual)
/// and the scoring of candidate atoms. With `p_kj = conj(a_kj) r_j`:
#[derive(Clone, Debug, PartialEq)]
pub struct Correlation {
    /// K: `Re <a_k, r> = sum_j Re p_kj`.
    pub inner: Array1<f64>,
    /// K: `||a_k||^2`.
    pub norm_sq: Array1<f64>,
    /// K x d: `sum_j omega_lj Im p_kj` (with gradients).
    pub inner_means: Option<Array2<f64>>,
    /// K x d: `sum_j omega_lj^2 Re p_kj` (Gaussian atoms, with gradients).
    pub inner_variances: Option<Array2<f64>>,
    /// K x d: `sum_j omega_lj^2 |a_kj|^2` (Gaussian atoms, with gradients).
    pub norm_variances: Option<Array2<f64>>,
}

/// Per-group partial sums: `[inner (K), norm_sq (K), inner_means, inner_variances, norm_variances (K x d each)]`.
struct CorrelationOp<'a, 'f, 'p, 'z, E> {
    freq: &'a AtomFrequencies<'f, E>,
    params: &'a AtomParams<'p>,
    r_re: ArrayView1<'z, f64>,
    r_im: ArrayView1<'z, f64>,
    gradients: bool,
}

impl<E: Element> SimdOp<E> for CorrelationOp<'_, '_, '_, '_, E> {
    type Output = Vec<f64>;
    #[inline(always)]
    unsafe fn run<V: Vector<E = E>>(self) -> Vec<f64> {
        let (k_atoms, d) = self.params.means.dim();
        let gaussian = self.params.variances.is_some();
        let mut acc = vec![0.0f64; k_atoms * (2 + 3 * d)];
        let (inner, rest) = acc.split_at_mut(k_atoms);
        let (norm_sq, rest) = rest.split_at_mut(k_atoms);
        let (g_mean, rest) = rest.split_at_mut(k_atoms * d);
        let (g_var, n_var) = rest.split_at_mut(k_atoms * d);
        let gain = E::from_f64(self.freq.gain);
        let tp = TileParams::<E>::new(self.params);
        let l = V::LANES;
        let m = self.r_re.len();
        let sub = sub_width(d);
        // Buffers reused from block to block.
        let mut pack = Vec::new();
        let mut r_re = vec![E::ZERO; sub];
        let mut r_im = vec![E::ZERO; sub];
        let mut re = vec![E::ZERO; TILE * sub];
        let mut im = vec![E::ZERO; TILE * sub];
        let mut p_re = vec![E::ZERO; TILE * sub];
        let mut p_im = vec![E::ZERO; TILE * sub];
        let mut q = vec![E::ZERO; TILE * sub];
        let mut j0 = 0;
        while j0 < m {
            let j1 = (j0 + sub).min(m);
            let block = Block::new(self.freq, j0, j1, l, &mut pack);
            let pad = block.pad;
            // Residual in this block; padding lanes zero.
            load_residual(&mut r_re[..pad], self.r_re.slice(s![j0..j1]));
            load_residual(&mut r_im[..pad], self.r_im.slice(s![j0..j1]));
            // SAFETY: the CPU supports V (`run`'s contract); every buffer
            // holds TILE rows of `pad` (a multiple of LANES) elements.
            unsafe {
                for_tiles!(k_atoms, |k0, N| {
                    atoms_tile::<V, N>(&block, &tp, k0, gain, re.as_mut_ptr(), im.as_mut_ptr(), pad);
                    for i in 0..N {
                        let k = k0 + i;
                        let row = i * pad;
                        // Padding lanes hold atoms at omega = 0: drop them from the norms.
                        for v in re[row + block.len..row + pad].iter_mut().chain(im[row + block.len..row + pad].iter_mut()) {
                            *v = E::ZERO;
                        }
                        let (mut s_inner, mut s_norm) = (V::splat(E::ZERO), V::splat(E::ZERO));
                        let mut b = 0;
                        while b < pad {
                            let (ar, ai) = (V::load(re.as_ptr().add(row + b)), V::load(im.as_ptr().add(row + b)));
                            let (rr, ri) = (V::load(r_re.as_ptr().add(b)), V::load(r_im.as_ptr().add(b)));
                            let pr = ar.mul_add(rr, ai.mul(ri));
                            let nn = ar.mul_add(ar, ai.mul(ai));
                            s_inner = s_inner.add(pr);
                            s_norm = s_norm.add(nn);
                            if self.gradients {
                                let pi = ar.mul_add(ri, V::splat(E::ZERO).sub(ai.mul(rr)));
                                pr.store(p_re.as_mut_ptr().add(row + b));
                                pi.store(p_im.as_mut_ptr().add(row + b));
                                nn.store(q.as_mut_ptr().add(row + b));
                            }
                            b += l;
                        }
                        inner[k] += s_inner.sum_f64();
                        norm_sq[k] += s_norm.sum_f64();
                    }
                    if self.gradients {
                        weighted_sums_tile::<V, N>(
                            &block,
                            d,
                            p_im.as_ptr(),
                            gaussian.then_some(p_re.as_ptr()),
                            gaussian.then_some(q.as_ptr()),
                            pad,
                            g_mean.as_mut_ptr().add(k0 * d),
                            g_var.as_mut_ptr().add(k0 * d),
                            n_var.as_mut_ptr().add(k0 * d),
                        );
                    }
                });
            }
            j0 = j1;
        }
        acc
    }
}

/// Correlations of the atoms with the residual `r = r_re + i r_im` (see
/// [`Correlation`]); the K x d sums only when `gradients` is true.
pub fn correlation<E: Element, F: FrequencySource<E> + ?Sized>(
    freq: &F,
    params: &AtomParams<'_>,
    r_re: ArrayView1<'_, f64>,
    r_im: ArrayView1<'_, f64>,
    gradients: bool,
    config: RunConfig,
) -> Result<Correlation, SketchError> {
    let (k, d, m) = check(freq, params)?;
    if r_re.len() != m || r_im.len() != m {
        return Err(SketchError::ShapeMismatch { what: "residual length", expected: m, got: r_re.len().max(r_im.len()) });
    }
    if !config.level.is_available() {
        return Err(SketchError::UnsupportedSimdLevel(config.level));
    }
    let total = group_sums(freq, config, k * (2 + 3 * d), |view, j0, j1| {
        let op = CorrelationOp { freq: view, params, r_re: r_re.slice(s![j0..j1]), r_im: r_im.slice(s![j0..j1]), gradients };
        dispatch(config.level, op)
    })?;
    let kd = k * d;
    let block = |i: usize| Array2::from_shape_vec((k, d), total[2 * k + i * kd..2 * k + (i + 1) * kd].to_vec()).expect("shape");
    let gaussian = gradients && params.variances.is_some();
    Ok(Correlation {
        inner: Array1::from_vec(total[..k].to_vec()),
        norm_sq: Array1::from_vec(total[k..2 * k].to_vec()),
        inner_means: gradients.then(|| block(0)),
        inner_variances: gaussian.then(|| block(1)),
        norm_variances: gaussian.then(|| block(2)),
    })
}
