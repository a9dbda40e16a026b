//! Errors of the core crate. Each variant maps to one typed Python exception
//! in the binding crate (`sketchcore.exceptions`).

use std::fmt;

use crate::simd::SimdLevel;

/// Everything that can go wrong in a sketching call.
#[derive(Clone, Debug, PartialEq)]
pub enum SketchError {
    /// A NaN or infinity in the data; `row` and `col` locate the first one
    /// (smallest row, then smallest column).
    NonFiniteInput { row: usize, col: usize },
    /// A NaN or infinite weight at `index`.
    NonFiniteWeight { index: usize },
    /// A negative weight at `index`.
    NegativeWeight { index: usize, value: f64 },
    /// Two arrays disagree on a size.
    ShapeMismatch { what: &'static str, expected: usize, got: usize },
    /// The requested SIMD level cannot run on this CPU.
    UnsupportedSimdLevel(SimdLevel),
    /// The computation was cancelled by the caller (e.g. Ctrl-C).
    Interrupted,
    /// A worker thread pool could not be created.
    ThreadPool(String),
    /// Arguments that are inconsistent in a way other than a size.
    InvalidArgument(String),
}

impl fmt::Display for SketchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SketchError::NonFiniteInput { row, col } => {
                write!(f, "input contains NaN or infinity (first at row {row}, column {col})")
            }
            SketchError::NonFiniteWeight { index } => {
                write!(f, "weights contain NaN or infinity (first at index {index})")
            }
            SketchError::NegativeWeight { index, value } => {
                write!(f, "weights must be non-negative (weight {value} at index {index})")
            }
            SketchError::ShapeMismatch { what, expected, got } => {
                write!(f, "{what}: expected {expected}, got {got}")
            }
            SketchError::UnsupportedSimdLevel(level) => {
                write!(f, "SIMD level '{level}' is not supported by this CPU")
            }
            SketchError::Interrupted => f.write_str("interrupted"),
            SketchError::ThreadPool(msg) => write!(f, "could not start worker threads: {msg}"),
            SketchError::InvalidArgument(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for SketchError {}

impl SketchError {
    /// `Ok` when a length is the one expected, else [`SketchError::ShapeMismatch`].
    pub fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), SketchError> {
        if got == expected {
            Ok(())
        } else {
            Err(SketchError::ShapeMismatch { what, expected, got })
        }
    }
}
