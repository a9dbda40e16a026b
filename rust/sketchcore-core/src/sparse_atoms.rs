//! Atom kernels for frequencies with few non-zero coordinates (the sparse
//! operators): the same quantities as [`crate::atoms`], in O(m s) work per
//! atom instead of O(m d).
//!
//! Frequency `j` is `omega_j = sum_t value[j, t] e_{index[j, t]}` (s distinct
//! coordinates per frequency, `index` and `value` m x s, row-major). With it,
//! for an atom of mean `mu` and variances `s2`,
//!
//! ```text
//! phase_j = xi_j + sum_t value[j, t] mu[index[j, t]]
//! log |a_j| = log gain - 0.5 sum_t value[j, t]^2 s2[index[j, t]]
//! ```
//!
//! and the gradient sums of [`crate::atoms`] (`sum_j omega_lj Im p_j`, ...)
//! are scattered into the s coordinates each frequency touches. The m x s
//! index and value arrays (12 bytes per non-zero) stay in cache where the
//! dense d x m matrices (8 d bytes per frequency, twice) stream from memory:
//! at d = 60 and s = 4 the kernels read 20 times less.
//!
//! Work is split into fixed groups of [`GROUP`] frequencies processed in
//! parallel and summed in group order, so results do not depend on the
//! number of threads. Everything is computed in float64; sin/cos and exp are
//! the vectorised approximations of [`crate::trig`] (absolute error below
//! 1e-15), so results equal the dense kernels' to rounding. The scalar
//! loops use plain products and sums: `f64::mul_add` is a library call
//! where the crate is not compiled for FMA.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use crate::atoms::{add_in_order, AtomParams, Correlation, ObjectiveGrad, GROUP};
use crate::error::SketchError;
use crate::kernel::RunConfig;
use crate::simd::SimdLevel;
use crate::threads::with_pool;
use crate::trig::{exp_into, sin_cos_into};

/// Frequencies given by their non-zero coordinates.
#[derive(Clone, Copy, Debug)]
pub struct SparseFrequencies<'a> {
    /// m x s coordinates, each below `dim`, distinct within a row (the
    /// caller's contract: only the bound is checked).
    pub index: ArrayView2<'a, u32>,
    /// m x s values at those coordinates.
    pub value: ArrayView2<'a, f64>,
    /// m dither phases.
    pub dither: ArrayView1<'a, f64>,
    /// Data dimension d.
    pub dim: usize,
    /// Amplitude of every atom (1, or 4/pi for quantized sketches).
    pub gain: f64,
}

impl SparseFrequencies<'_> {
    /// m.
    pub fn len(&self) -> usize {
        self.index.nrows()
    }

    /// Whether there are no frequencies.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shapes, and the coordinates: below d. Coordinates repeated within a
    /// row are the caller's to avoid (checking costs as much as a
    /// single-atom evaluation): they are summed as one coordinate in the
    /// phases but not in the squared frequencies.
    fn validate(&self) -> Result<(), SketchError> {
        let (m, sup) = self.index.dim();
        if self.value.dim() != (m, sup) {
            return Err(SketchError::ShapeMismatch { what: "values (m x s, as the indices)", expected: m * sup, got: self.value.len() });
        }
        SketchError::check_len("dither length", m, self.dither.len())?;
        if sup > self.dim {
            return Err(SketchError::ShapeMismatch { what: "non-zeros per frequency (at most d)", expected: self.dim, got: sup });
        }
        let largest = match self.index.to_slice() {
            Some(flat) => flat.iter().copied().max(),
            None => self.index.iter().copied().max(),
        };
        if let Some(c) = largest.filter(|&c| c as usize >= self.dim) {
            return Err(SketchError::InvalidArgument(format!("coordinate {c} is not below the dimension {}", self.dim)));
        }
        Ok(())
    }
}

/// The index and value arrays as flat row-major slices (borrowed when
/// contiguous, else copied once per call).
struct Flat<'a> {
    s: usize,
    index: std::borrow::Cow<'a, [u32]>,
    value: std::borrow::Cow<'a, [f64]>,
    dither: std::borrow::Cow<'a, [f64]>,
    gain: f64,
}

impl<'a> Flat<'a> {
    fn new(freq: &SparseFrequencies<'a>) -> Self {
        fn flat<'b, T: Clone>(a: ArrayView2<'b, T>) -> std::borrow::Cow<'b, [T]> {
            match a.to_slice() {
                Some(sl) => std::borrow::Cow::Borrowed(sl),
                None => std::borrow::Cow::Owned(a.iter().cloned().collect()),
            }
        }
        Flat {
            s: freq.index.ncols(),
            index: flat(freq.index),
            value: flat(freq.value),
            dither: match freq.dither.to_slice() {
                Some(sl) => std::borrow::Cow::Borrowed(sl),
                None => std::borrow::Cow::Owned(freq.dither.to_vec()),
            },
            gain: freq.gain,
        }
    }

    /// Coordinates and values of frequency j.
    #[inline(always)]
    fn row(&self, j: usize) -> (&[u32], &[f64]) {
        let r = j * self.s..(j + 1) * self.s;
        (&self.index[r.clone()], &self.value[r])
    }
}

fn check(freq: &SparseFrequencies<'_>, params: &AtomParams<'_>, config: RunConfig) -> Result<(usize, usize, usize), SketchError> {
    let (k, d) = params.means.dim();
    if d != freq.dim {
        return Err(SketchError::ShapeMismatch { what: "columns of the means (data dimension)", expected: freq.dim, got: d });
    }
    if let Some(var) = params.variances {
        if var.dim() != (k, d) {
            return Err(SketchError::ShapeMismatch { what: "variances (K x d)", expected: k * d, got: var.len() });
        }
    }
    freq.validate()?;
    if !config.level.is_available() {
        return Err(SketchError::UnsupportedSimdLevel(config.level));
    }
    Ok((k, d, freq.len()))
}

/// Per-thread buffers, reused from group to group (fresh allocations of
/// this size cost page faults on every call).
#[derive(Default)]
struct Scratch {
    phase: Vec<f64>,
    log_amp: Vec<f64>,
    re: Vec<f64>,
    im: Vec<f64>,
    p_re: Vec<f64>,
    p_im: Vec<f64>,
    q: Vec<f64>,
}

/// `v` as `n` zeros, keeping its allocation.
fn zeros(v: &mut Vec<f64>, n: usize) {
    v.clear();
    v.resize(n, 0.0);
}

/// Atom parameters transposed to d x K (row c: coordinate c of every atom),
/// so that the loops over the atoms of one frequency read contiguous values.
struct Params {
    k: usize,
    means_t: Vec<f64>,
    /// `-0.5 * variances`, d x K.
    nhv_t: Option<Vec<f64>>,
}

impl Params {
    fn new(params: &AtomParams<'_>) -> Self {
        let k = params.means.nrows();
        Params {
            k,
            means_t: params.means.t().iter().copied().collect(),
            nhv_t: params.variances.map(|v| v.t().iter().map(|&s2| -0.5 * s2).collect()),
        }
    }
}

/// K x d (row-major) from d x K sums.
fn transpose(t: &[f64], k: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_fn((k, d), |(kk, c)| t[c * k + kk])
}

/// The atoms at frequencies `j0..j1` into `sc.re`, `sc.im`: len x K,
/// frequency-major (row jj holds every atom at frequency `j0 + jj`).
fn group_atoms(freq: &Flat<'_>, p: &Params, j0: usize, j1: usize, level: SimdLevel, sc: &mut Scratch) {
    let (k, n) = (p.k, (j1 - j0) * p.k);
    let Scratch { phase, log_amp, re, im, .. } = sc;
    zeros(phase, n);
    zeros(re, n);
    zeros(im, n);
    if p.nhv_t.is_some() {
        zeros(log_amp, n);
    }
    if k == 1 {
        // One atom (the decoders' most frequent call): plain scalar loops.
        for (jj, j) in (j0..j1).enumerate() {
            let (idx, val) = freq.row(j);
            let mut ph = freq.dither[j];
            for (&c, &w) in idx.iter().zip(val) {
                ph += w * p.means_t[c as usize];
            }
            phase[jj] = ph;
            if let Some(nhv) = &p.nhv_t {
                let mut e = 0.0;
                for (&c, &w) in idx.iter().zip(val) {
                    e += w * w * nhv[c as usize];
                }
                log_amp[jj] = e;
            }
        }
    }
    for (jj, j) in (j0..j1).enumerate().filter(|_| k != 1) {
        let (idx, val) = freq.row(j);
        let ph = &mut phase[jj * k..(jj + 1) * k];
        ph.fill(freq.dither[j]);
        for (&c, &w) in idx.iter().zip(val) {
            let c = c as usize;
            for (a, &b) in ph.iter_mut().zip(&p.means_t[c * k..(c + 1) * k]) {
                *a += w * b;
            }
        }
        if let Some(nhv) = &p.nhv_t {
            let la = &mut log_amp[jj * k..(jj + 1) * k];
            for (&c, &w) in idx.iter().zip(val) {
                let (c, w2) = (c as usize, w * w);
                for (a, &b) in la.iter_mut().zip(&nhv[c * k..(c + 1) * k]) {
                    *a += w2 * b;
                }
            }
        }
    }
    sin_cos_into(level, phase, im, re);
    if p.nhv_t.is_some() {
        // `phase` is free now: it receives the amplitudes.
        exp_into(level, log_amp, phase);
        for ((r, i), a) in re.iter_mut().zip(im.iter_mut()).zip(phase.iter()) {
            let amp = freq.gain * a;
            *r *= amp;
            *i *= amp;
        }
    } else if freq.gain != 1.0 {
        for v in re.iter_mut().chain(im.iter_mut()) {
            *v *= freq.gain;
        }
    }
}

/// Adds, over the group's frequencies, `sum_j omega_cj x_jk` into
/// `out_x[c K + k]` and `sum_j omega_cj^2 y_jk` into `out_y[c K + k]` (for
/// each `(y, out_y)` of `squared`); `x` and the `y` are len x K, frequency-major.
fn scatter(freq: &Flat<'_>, j0: usize, k: usize, x: &[f64], out_x: &mut [f64], squared: &mut [(&[f64], &mut [f64])]) {
    let len = x.len().checked_div(k).unwrap_or(0);
    if k == 1 {
        for (jj, &xv) in x.iter().enumerate() {
            let (idx, val) = freq.row(j0 + jj);
            for (&c, &w) in idx.iter().zip(val) {
                let c = c as usize;
                out_x[c] += w * xv;
                let w2 = w * w;
                for (y, out_y) in squared.iter_mut() {
                    out_y[c] += w2 * y[jj];
                }
            }
        }
        return;
    }
    for jj in 0..len {
        let (idx, val) = freq.row(j0 + jj);
        let row = jj * k..(jj + 1) * k;
        for (&c, &w) in idx.iter().zip(val) {
            let cols = c as usize * k..(c as usize + 1) * k;
            for (o, &v) in out_x[cols.clone()].iter_mut().zip(&x[row.clone()]) {
                *o += w * v;
            }
            let w2 = w * w;
            for (y, out_y) in squared.iter_mut() {
                for (o, &v) in out_y[cols.clone()].iter_mut().zip(&y[row.clone()]) {
                    *o += w2 * v;
                }
            }
        }
    }
}

/// Runs `partial(scratch, j0, j1)` on every group of frequencies in parallel
/// and adds the partial sums (`len` values each) in group order.
fn group_sums<P>(m: usize, config: RunConfig, len: usize, partial: P) -> Result<Vec<f64>, SketchError>
where
    P: Fn(&mut Scratch, usize, usize) -> Vec<f64> + Sync,
{
    let partials: Vec<Vec<f64>> = with_pool(config.n_threads, || {
        (0..m.div_ceil(GROUP))
            .into_par_iter()
            .map_init(Scratch::default, |sc, g| partial(sc, g * GROUP, ((g + 1) * GROUP).min(m)))
            .collect()
    })?;
    Ok(add_in_order(&partials, len))
}

/// Real and imaginary parts (K x m each) of the atoms (see [`crate::atoms::atoms`]).
pub fn atoms(freq: &SparseFrequencies<'_>, params: &AtomParams<'_>, config: RunConfig) -> Result<(Array2<f64>, Array2<f64>), SketchError> {
    let (k, _, m) = check(freq, params, config)?;
    let mut re = Array2::zeros((k, m));
    let mut im = Array2::zeros((k, m));
    if k == 0 || m == 0 {
        return Ok((re, im));
    }
    let (p, freq) = (Params::new(params), Flat::new(freq));
    let jobs: Vec<_> = re
        .axis_chunks_iter_mut(Axis(1), GROUP)
        .zip(im.axis_chunks_iter_mut(Axis(1), GROUP))
        .enumerate()
        .map(|(g, (r, i))| (g * GROUP, r, i))
        .collect();
    with_pool(config.n_threads, || {
        jobs.into_par_iter().for_each_init(Scratch::default, |sc, (j0, mut out_re, mut out_im)| {
            let len = out_re.ncols();
            group_atoms(&freq, &p, j0, j0 + len, config.level, sc);
            for ((kk, jj), v) in out_re.indexed_iter_mut() {
                *v = sc.re[jj * k + kk];
            }
            for ((kk, jj), v) in out_im.indexed_iter_mut() {
                *v = sc.im[jj * k + kk];
            }
        })
    })?;
    Ok((re, im))
}

/// `||z - sum_k alpha_k a_k||^2` and its gradient (see [`crate::atoms::objective_grad`]).
pub fn objective_grad(
    freq: &SparseFrequencies<'_>,
    params: &AtomParams<'_>,
    weights: ArrayView1<'_, f64>,
    z_re: ArrayView1<'_, f64>,
    z_im: ArrayView1<'_, f64>,
    config: RunConfig,
) -> Result<ObjectiveGrad, SketchError> {
    let (k, d, m) = check(freq, params, config)?;
    if weights.len() != k {
        return Err(SketchError::ShapeMismatch { what: "number of weights", expected: k, got: weights.len() });
    }
    if z_re.len() != m || z_im.len() != m {
        return Err(SketchError::ShapeMismatch { what: "sketch length", expected: m, got: z_re.len().max(z_im.len()) });
    }
    let (p, freq) = (Params::new(params), Flat::new(freq));
    let w: Vec<f64> = weights.to_vec();
    let gaussian = params.variances.is_some();
    let kd = k * d;
    // Partial sums: [f, sum_j Re p_jk (K), sum_j omega Im p, sum_j omega^2 Re p (d x K each)].
    let total = group_sums(m, config, 1 + k + 2 * kd, |sc, j0, j1| {
        group_atoms(&freq, &p, j0, j1, config.level, sc);
        let len = j1 - j0;
        let mut acc = vec![0.0f64; 1 + k + 2 * kd];
        let Scratch { re, im, p_re, p_im, .. } = sc;
        zeros(p_re, len * k);
        zeros(p_im, len * k);
        let (head, grads) = acc.split_at_mut(1 + k);
        let (f_acc, g_alpha) = head.split_at_mut(1);
        for jj in 0..len {
            let base = jj * k;
            let (mut rr, mut ri) = (z_re[j0 + jj], z_im[j0 + jj]);
            for (kk, &wk) in w.iter().enumerate() {
                rr -= wk * re[base + kk];
                ri -= wk * im[base + kk];
            }
            f_acc[0] += rr * rr + ri * ri;
            for kk in 0..k {
                let (ar, ai) = (re[base + kk], im[base + kk]);
                let pr = ar * rr + ai * ri;
                p_re[base + kk] = pr;
                p_im[base + kk] = ar * ri - ai * rr;
                g_alpha[kk] += pr;
            }
        }
        let (g_mean, g_var) = grads.split_at_mut(kd);
        if gaussian {
            scatter(&freq, j0, k, p_im, g_mean, &mut [(p_re.as_slice(), g_var)]);
        } else {
            scatter(&freq, j0, k, p_im, g_mean, &mut []);
        }
        acc
    })?;
    let value = total[0];
    let grad_weights = Array1::from_iter(total[1..1 + k].iter().map(|g| -2.0 * g));
    let mut grad_means = transpose(&total[1 + k..1 + k + kd], k, d);
    for (mut row, &a) in grad_means.rows_mut().into_iter().zip(&w) {
        row *= -2.0 * a;
    }
    let grad_variances = params.variances.map(|_| {
        let mut g = transpose(&total[1 + k + kd..], k, d);
        for (mut row, &a) in g.rows_mut().into_iter().zip(&w) {
            row *= a;
        }
        g
    });
    Ok(ObjectiveGrad { value, grad_means, grad_variances, grad_weights })
}

/// Correlations of the atoms with the residual (see [`crate::atoms::correlation`]).
pub fn correlation(
    freq: &SparseFrequencies<'_>,
    params: &AtomParams<'_>,
    r_re: ArrayView1<'_, f64>,
    r_im: ArrayView1<'_, f64>,
    gradients: bool,
    config: RunConfig,
) -> Result<Correlation, SketchError> {
    let (k, d, m) = check(freq, params, config)?;
    if r_re.len() != m || r_im.len() != m {
        return Err(SketchError::ShapeMismatch { what: "residual length", expected: m, got: r_re.len().max(r_im.len()) });
    }
    let (p, freq) = (Params::new(params), Flat::new(freq));
    let gaussian = params.variances.is_some();
    let kd = k * d;
    // Partial sums: [inner (K), norm_sq (K), inner_means, inner_variances, norm_variances (d x K each)].
    let total = group_sums(m, config, 2 * k + 3 * kd, |sc, j0, j1| {
        group_atoms(&freq, &p, j0, j1, config.level, sc);
        let len = j1 - j0;
        let mut acc = vec![0.0f64; 2 * k + 3 * kd];
        let Scratch { re, im, p_re, p_im, q, .. } = sc;
        let n = if gradients { len * k } else { 0 };
        zeros(p_re, n);
        zeros(p_im, n);
        zeros(q, n);
        let (sums, grads) = acc.split_at_mut(2 * k);
        let (inner, norm_sq) = sums.split_at_mut(k);
        for jj in 0..len {
            let (rr, ri) = (r_re[j0 + jj], r_im[j0 + jj]);
            for kk in 0..k {
                let i = jj * k + kk;
                let (ar, ai) = (re[i], im[i]);
                let (pr, nn) = (ar * rr + ai * ri, ar * ar + ai * ai);
                inner[kk] += pr;
                norm_sq[kk] += nn;
                if gradients {
                    p_re[i] = pr;
                    p_im[i] = ar * ri - ai * rr;
                    q[i] = nn;
                }
            }
        }
        if gradients {
            let (g_mean, rest) = grads.split_at_mut(kd);
            let (g_var, n_var) = rest.split_at_mut(kd);
            if gaussian {
                scatter(&freq, j0, k, p_im, g_mean, &mut [(p_re.as_slice(), g_var), (q.as_slice(), n_var)]);
            } else {
                scatter(&freq, j0, k, p_im, g_mean, &mut []);
            }
        }
        acc
    })?;
    let block = |i: usize| transpose(&total[2 * k + i * kd..2 * k + (i + 1) * kd], k, d);
    let with_vars = gradients && gaussian;
    Ok(Correlation {
        inner: Array1::from_vec(total[..k].to_vec()),
        norm_sq: Array1::from_vec(total[k..2 * k].to_vec()),
        inner_means: gradients.then(|| block(0)),
        inner_variances: with_vars.then(|| block(1)),
        norm_variances: with_vars.then(|| block(2)),
    })
}
