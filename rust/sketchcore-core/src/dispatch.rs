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
    /// Runs the work with vectors `V`.
    ///
    /// # Safety
    /// The CPU supports `V`'s instruction set ([`dispatch`] checks
    /// [`SimdLevel::is_available`] before it calls this).
    unsafe fn run<V: Vector<E = E>>(self) -> Self::Output;
}

/// Runs `op` at `level`.
///
/// # Panics
/// If `level` is not available on this CPU (callers check first and return a
/// typed error; this is a last line of defence against undefined behaviour).
pub fn dispatch<E: Element, Op: SimdOp<E>>(level: SimdLevel, op: Op) -> Op::Output {
    assert!(level.is_available(), "SIMD level {level} is not available on this CPU");
    match level {
        // SAFETY: one-lane vectors run on every CPU.
        SimdLevel::Scalar => unsafe { op.run::<E::ScalarVec>() },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 and FMA (`is_available`, asserted above).
        SimdLevel::Avx2 => unsafe { run_avx2::<E, Op>(op) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F, AVX2 and FMA (`is_available`, asserted above).
        SimdLevel::Avx512 => unsafe { run_avx512::<E, Op>(op) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("only scalar is available off x86-64"),
    }
}

/// `op` monomorphised for AVX2 vectors and compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<E: Element, Op: SimdOp<E>>(op: Op) -> Op::Output {
    // SAFETY: the CPU supports AVX2 and FMA (this function's contract), the
    // instruction set of `E::Avx2Vec`.
    unsafe { op.run::<E::Avx2Vec>() }
}

/// `op` monomorphised for AVX-512 vectors and compiled with AVX-512F.
///
/// # Safety
/// The CPU supports AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<E: Element, Op: SimdOp<E>>(op: Op) -> Op::Output {
    // SAFETY: the CPU supports AVX-512F (this function's contract), the
    // instruction set of `E::Avx512Vec`.
    unsafe { op.run::<E::Avx512Vec>() }
}
