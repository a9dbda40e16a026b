//! Run-time dispatch: runs generic SIMD code monomorphised for one
//! [`SimdLevel`] inside a function compiled with that level's target features
//! (the pattern of `pulp`'s `WithSimd`).

use crate::simd::{Real, Scalar, SimdLevel, Vector};

/// An element type with a vector type at every SIMD level.
pub trait Element: Real {
    type ScalarVec: Vector<E = Self>;
    #[cfg(target_arch = "x86_64")]
    type Avx2Vec: Vector<E = Self>;
    #[cfg(target_arch = "x86_64")]
    type Avx512Vec: Vector<E = Self>;
}

impl Element for f32 {
    type ScalarVec = Scalar<f32>;
    #[cfg(target_arch = "x86_64")]
    type Avx2Vec = crate::simd::Avx2F32;
    #[cfg(target_arch = "x86_64")]
    type Avx512Vec = crate::simd::Avx512F32;
}

impl Element for f64 {
    type ScalarVec = Scalar<f64>;
    #[cfg(target_arch = "x86_64")]
    type Avx2Vec = crate::simd::Avx2F64;
    #[cfg(target_arch = "x86_64")]
    type Avx512Vec = crate::simd::Avx512F64;
}

/// Generic SIMD work; `run` must be `#[inline(always)]` so that it is compiled
/// with the target features of the dispatching function.
pub trait SimdOp<E: Element> {
    type Output;
    fn run<V: Vector<E = E>>(self) -> Self::Output;
}

/// Runs `op` at `level`.
///
/// # Panics
/// If `level` is not available on this CPU (callers check first and return a
/// typed error; this is a last line of defence against undefined behaviour).
pub fn dispatch<E: Element, Op: SimdOp<E>>(level: SimdLevel, op: Op) -> Op::Output {
    assert!(level.is_available(), "SIMD level {level} is not available on this CPU");
    match level {
        SimdLevel::Scalar => op.run::<E::ScalarVec>(),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: availability checked above.
        SimdLevel::Avx2 => unsafe { run_avx2::<E, Op>(op) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: availability checked above.
        SimdLevel::Avx512 => unsafe { run_avx512::<E, Op>(op) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("only scalar is available off x86-64"),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<E: Element, Op: SimdOp<E>>(op: Op) -> Op::Output {
    op.run::<E::Avx2Vec>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<E: Element, Op: SimdOp<E>>(op: Op) -> Op::Output {
    op.run::<E::Avx512Vec>()
}
