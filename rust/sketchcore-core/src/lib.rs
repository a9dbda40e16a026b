//! # sketchcore-core
//!
//! Pure-Rust kernels of sketchcore: random Fourier feature sketches
//! `S_cos[j] = sum_i w_i cos(omega_j . x_i + xi_j)` (and `S_sin`) computed in one
//! fused, multi-threaded pass with float64 accumulation and run-time SIMD
//! dispatch (AVX-512, AVX2+FMA, portable).
//!
//! No Python here; the `sketchcore-py` crate is a thin binding.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod atoms;
pub mod dense;
pub mod dispatch;
pub mod error;
pub mod kernel;
pub mod reference;
pub mod simd;
pub mod sparse;
pub mod sparse_atoms;
pub mod structured;
pub mod sums;
pub mod threads;
pub mod trig;

pub use dense::sketch_dense;
pub use kernel::{Nonlinearity, RunConfig};
pub use dispatch::Element;
pub use error::SketchError;
pub use reference::sketch_dense_reference;
pub use simd::{Real, SimdLevel};
pub use sparse::sketch_sparse;
pub use structured::{sketch_structured, structured_frequencies};
pub use sums::SketchSums;
pub use trig::{exp_into, sin_cos_into};
