//! Vectorised sine, cosine and exponential.
//!
//! Method (float64): k = round(t * 2/pi); r = t - k*PIO2_HI - k*PIO2_LO with
//! fused multiply-adds (the first step is exact because t and k*PIO2_HI share
//! their binary exponent range), then Cephes minimax polynomials on
//! [-pi/4, pi/4] and a quadrant fix-up from the low two bits of k.
//! Float32 reduces by pi instead (n = round(t/pi), |r| <= pi/2, degree 9 and
//! 10 polynomials): the fix-up is then one sign flip for odd n, six vector
//! operations fewer per sin/cos pair, which matters to the structured kernel.
//!
//! Precision (tested in `tests/trig.rs`): absolute error below 2e-7 for f32
//! and below 1e-15 for f64, for |t| up to the type's `REDUCTION_LIMIT`; lanes
//! beyond it (and NaN lanes) fall back to the scalar float64 `sin_cos`.

use crate::dispatch::{dispatch, SimdOp, Element};
use crate::simd::{Real, SimdLevel, Vector};

/// Horner in z with the coefficients `coefs` (highest degree first).
///
/// # Safety
/// The CPU supports V.
#[inline(always)]
unsafe fn poly<V: Vector>(z: V, coefs: &'static [V::E]) -> V {
    // SAFETY: the CPU supports V (this function's contract); only V's arithmetic runs.
    unsafe {
        let mut acc = V::splat(coefs[0]);
        for &c in &coefs[1..] {
            acc = acc.mul_add(z, V::splat(c));
        }
        acc
    }
}

/// (sin t, cos t) for every lane, assuming |t| <= `REDUCTION_LIMIT` when
/// `CHECKED` is false. With `CHECKED`, out-of-range lanes are handled exactly.
///
/// # Safety
/// The CPU supports V; without `CHECKED`, every lane has |t| <= `REDUCTION_LIMIT`
/// (beyond it the result is inaccurate, never undefined).
#[inline(always)]
pub(crate) unsafe fn sin_cos<V: Vector, const CHECKED: bool>(t: V) -> (V, V) {
    // SAFETY: the CPU supports V (this function's contract); V's arithmetic and
    // the scalar fallback on local buffers of `MAX_LANES` >= LANES values.
    unsafe {
        if CHECKED && t.any_abs_gt(V::E::REDUCTION_LIMIT) {
            return sin_cos_fallback(t);
        }
        if V::E::PI_REDUCTION.is_some() {
            let (sin_r, cos_r, n) = sin_cos_pi_reduced(t);
            return (V::negate_if_odd(n, sin_r), V::negate_if_odd(n, cos_r));
        }
        let (k, quadrant) = t.mul(V::splat(V::E::TWO_OVER_PI)).round_quadrant();
        let r = k.mul_add(V::splat(neg(V::E::PIO2_HI)), t);
        let r = k.mul_add(V::splat(neg(V::E::PIO2_LO)), r);
        let z = r.mul(r);
        let sin_r = r.mul(z).mul_add(poly(z, V::E::SIN_POLY), r);
        let half_cos = z.mul_add(V::splat(V::E::from_f64(-0.5)), V::splat(V::E::ONE));
        let cos_r = z.mul(z).mul_add(poly(z, V::E::COS_POLY), half_cos);
        V::apply_quadrant(quadrant, sin_r, cos_r)
    }
}

/// `exp` of every lane: n = round(t log2 e), r = t - n ln2 (two-constant
/// Cody-Waite), Taylor polynomial on |r| <= ln2/2, times 2^n. Arguments are
/// clamped to [`Real::EXP_MIN`], [`Real::EXP_MAX`] (so the result is a
/// normal number; below the range it is exp(EXP_MIN) ~ 1e-308 / 2e-38
/// instead of a subnormal or 0). Relative error below 4e-16 (f64) and 2e-7
/// (f32), tested in `tests/trig.rs`.
///
/// # Safety
/// The CPU supports V.
#[inline(always)]
pub(crate) unsafe fn exp<V: Vector>(t: V) -> V {
    // SAFETY: the CPU supports V (this function's contract); only V's arithmetic runs.
    unsafe {
        // NaN is the second operand of max, so it propagates.
        let t = V::splat(V::E::EXP_MIN).max(t);
        let t = neg_max(t, V::E::EXP_MAX);
        let (n, _) = t.mul(V::splat(V::E::LOG2E)).round_quadrant();
        let r = n.mul_add(V::splat(neg(V::E::LN2_HI)), t);
        let r = n.mul_add(V::splat(neg(V::E::LN2_LO)), r);
        poly_r(r, V::E::EXP_POLY).scale_pow2(n)
    }
}

/// min(t, hi) through `max`: -max(-t, -hi).
///
/// # Safety
/// The CPU supports V.
#[inline(always)]
unsafe fn neg_max<V: Vector>(t: V, hi: V::E) -> V {
    // SAFETY: the CPU supports V (this function's contract); only V's arithmetic runs.
    unsafe {
        let minus = V::splat(neg(V::E::ONE));
        V::splat(neg(hi)).max(t.mul(minus)).mul(minus)
    }
}

/// Horner in r (not r^2).
///
/// # Safety
/// The CPU supports V.
#[inline(always)]
unsafe fn poly_r<V: Vector>(r: V, coefs: &'static [V::E]) -> V {
    // SAFETY: the CPU supports V (this function's contract); only V's arithmetic runs.
    unsafe {
        let mut acc = V::splat(coefs[0]);
        for &c in &coefs[1..] {
            acc = acc.mul_add(r, V::splat(c));
        }
        acc
    }
}

/// For element types with [`Real::PI_REDUCTION`]: `(sin r, cos r, n)` with
/// t = n pi + r, so that sin t = (-1)^n sin r and cos t = (-1)^n cos r. Lets
/// a caller fold the sign into one factor (e.g. a weight) instead of two.
/// Assumes |t| <= `REDUCTION_LIMIT`.
///
/// # Panics
/// (Debug builds) if the element type has no pi reduction.
///
/// # Safety
/// The CPU supports V.
#[inline(always)]
pub(crate) unsafe fn sin_cos_pi_reduced<V: Vector>(t: V) -> (V, V, V::Quadrant) {
    // SAFETY: the CPU supports V (this function's contract); only V's arithmetic runs.
    unsafe {
        let Some((pi_hi, pi_lo, sin_poly, cos_poly)) = V::E::PI_REDUCTION else {
            unreachable!("element type without pi reduction")
        };
        // Round t/pi with the 1.5 * 2^mantissa trick: the integer lands in the
        // low bits of `big` (its parity in bit 0), one FMA instead of a multiply
        // and two conversions. Valid for |t/pi| < 2^22 (f32), far above the limit.
        let magic = V::splat(V::E::ROUND_MAGIC);
        let big = t.mul_add(V::splat(V::E::from_f64(std::f64::consts::FRAC_1_PI)), magic);
        let n = big.sub(magic);
        let parity = big.to_bits();
        let r = n.mul_add(V::splat(neg(pi_hi)), t);
        let r = n.mul_add(V::splat(neg(pi_lo)), r);
        let z = r.mul(r);
        let sin_r = r.mul(z).mul_add(poly(z, sin_poly), r);
        let cos_r = z.mul_add(poly(z, cos_poly), V::splat(V::E::ONE));
        (sin_r, cos_r, parity)
    }
}

#[inline(always)]
fn neg<E: Real>(x: E) -> E {
    E::from_f64(-x.to_f64())
}

/// Lane by lane in scalar float64 (the out-of-range lanes of `sin_cos`).
///
/// # Safety
/// The CPU supports V.
#[cold]
#[inline(never)]
unsafe fn sin_cos_fallback<V: Vector>(t: V) -> (V, V) {
    // SAFETY: the CPU supports V (this function's contract); loads and stores
    // go through local buffers of MAX_LANES >= V::LANES values.
    unsafe {
        const MAX_LANES: usize = 16;
        let mut buf = [V::E::ZERO; MAX_LANES];
        let mut s = [V::E::ZERO; MAX_LANES];
        let mut c = [V::E::ZERO; MAX_LANES];
        t.store(buf.as_mut_ptr());
        for i in 0..V::LANES {
            let (si, ci) = buf[i].to_f64().sin_cos();
            s[i] = V::E::from_f64(si);
            c[i] = V::E::from_f64(ci);
        }
        (V::load(s.as_ptr()), V::load(c.as_ptr()))
    }
}

/// `sin`, `cos` of every element of `t`, whole vectors then a zero-padded tail.
///
/// # Safety
/// The CPU supports V; `sin` and `cos` are at least as long as `t`.
#[inline(always)]
unsafe fn sin_cos_slice<V: Vector>(t: &[V::E], sin: &mut [V::E], cos: &mut [V::E]) {
    // SAFETY: the caller guarantees this function's contract; vector accesses stay
    // below the last whole vector of `t` and the tail goes through a local buffer.
    unsafe {
        let n = t.len();
        let l = V::LANES;
        let mut i = 0;
        while i + l <= n {
            let (s, c) = sin_cos::<V, true>(V::load(t.as_ptr().add(i)));
            s.store(sin.as_mut_ptr().add(i));
            c.store(cos.as_mut_ptr().add(i));
            i += l;
        }
        if i < n {
            let mut buf = [V::E::ZERO; 16];
            buf[..n - i].copy_from_slice(&t[i..]);
            let (s, c) = sin_cos::<V, true>(V::load(buf.as_ptr()));
            let mut out = [V::E::ZERO; 16];
            s.store(out.as_mut_ptr());
            sin[i..].copy_from_slice(&out[..n - i]);
            c.store(out.as_mut_ptr());
            cos[i..].copy_from_slice(&out[..n - i]);
        }
    }
}

/// Computes `sin` and `cos` of every element of `t` with the kernels' own
/// approximation at the given SIMD level. Exposed so the approximation can be
/// tested and documented on its own.
///
/// # Panics
/// If the output slices differ in length from `t`, or `level` is not available.
pub fn sin_cos_into<E: Element>(level: SimdLevel, t: &[E], sin: &mut [E], cos: &mut [E]) {
    assert_eq!(t.len(), sin.len(), "sin output length");
    assert_eq!(t.len(), cos.len(), "cos output length");
    assert!(level.is_available(), "SIMD level {level} not available on this CPU");
    struct Op<'a, E> {
        t: &'a [E],
        sin: &'a mut [E],
        cos: &'a mut [E],
    }
    impl<E: Element> SimdOp<E> for Op<'_, E> {
        type Output = ();
        #[inline(always)]
        unsafe fn run<V: Vector<E = E>>(self) {
            // SAFETY: the CPU supports V (`run`'s contract).
            unsafe { sin_cos_slice::<V>(self.t, self.sin, self.cos) }
        }
    }
    dispatch(level, Op { t, sin, cos });
}

/// Computes `exp` of every element of `t` with the kernels' vectorised
/// exponential (see [`exp`]) at the given SIMD level, for tests.
///
/// # Panics
/// If `out` differs in length from `t`, or `level` is not available.
pub fn exp_into<E: Element>(level: SimdLevel, t: &[E], out: &mut [E]) {
    assert_eq!(t.len(), out.len(), "exp output length");
    assert!(level.is_available(), "SIMD level {level} not available on this CPU");
    struct Op<'a, E> {
        t: &'a [E],
        out: &'a mut [E],
    }
    impl<E: Element> SimdOp<E> for Op<'_, E> {
        type Output = ();
        #[inline(always)]
        unsafe fn run<V: Vector<E = E>>(self) {
            let l = V::LANES;
            let mut buf = [E::ZERO; 16];
            for (src, dst) in self.t.chunks(l).zip(self.out.chunks_mut(l)) {
                buf[..src.len()].copy_from_slice(src);
                // SAFETY: the CPU supports V (`run`'s contract);
                // `buf` holds 16 >= LANES elements.
                unsafe { exp::<V>(V::load(buf.as_ptr())).store(buf.as_mut_ptr()) };
                dst.copy_from_slice(&buf[..src.len()]);
            }
        }
    }
    dispatch(level, Op { t, out });
}
