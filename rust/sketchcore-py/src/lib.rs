//! Thin PyO3 binding of `sketchcore-core`, imported as `sketchcore._core`.
//!
//! Every function only borrows NumPy arrays, runs the core with the GIL
//! released through [`run_detached`] (which also polls for Ctrl-C and turns
//! panics into a typed exception), and maps each core error to a typed
//! exception of `sketchcore.exceptions`. Validation and conversions of user
//! input live in the Python layer; the checks here are the last line.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use numpy::ndarray::ArrayView1;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::conversion::FromPyObjectOwned;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use sketchcore_core::atoms::{AtomFrequencies, AtomParams, Correlation, ObjectiveGrad, StructuredFrequencies};
use sketchcore_core::sparse_atoms::SparseFrequencies;
use sketchcore_core::{sketch_dense_reference, Element, Nonlinearity, RunConfig, SimdLevel, SketchError, SketchSums};

/// The exceptions of `sketchcore.exceptions` the binding raises.
#[derive(Clone, Copy)]
enum Exc {
    NonFinite,
    NegativeWeight,
    DimensionMismatch,
    InvalidParameter,
    DType,
    Internal,
}

impl Exc {
    const ALL: [Exc; 6] =
        [Exc::NonFinite, Exc::NegativeWeight, Exc::DimensionMismatch, Exc::InvalidParameter, Exc::DType, Exc::Internal];

    fn name(self) -> &'static str {
        match self {
            Exc::NonFinite => "NonFiniteError",
            Exc::NegativeWeight => "NegativeWeightError",
            Exc::DimensionMismatch => "DimensionMismatchError",
            Exc::InvalidParameter => "InvalidParameterError",
            Exc::DType => "DTypeError",
            Exc::Internal => "InternalError",
        }
    }
}

/// The exception classes, imported once when the module is initialised.
static EXCEPTIONS: PyOnceLock<[Py<PyType>; 6]> = PyOnceLock::new();

fn import_exceptions(py: Python<'_>) -> PyResult<[Py<PyType>; 6]> {
    let module = py.import("sketchcore.exceptions")?;
    let mut classes = Vec::with_capacity(Exc::ALL.len());
    for exc in Exc::ALL {
        classes.push(module.getattr(exc.name())?.cast_into::<PyType>()?.unbind());
    }
    Ok(classes.try_into().expect("one class per exception"))
}

/// Builds an instance of `sketchcore.exceptions.<exc>(message, **info)`.
fn typed_error(py: Python<'_>, exc: Exc, message: String, info: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = EXCEPTIONS.get_or_try_init(py, || import_exceptions(py))?[exc as usize].bind(py);
        let kwargs = PyDict::new(py);
        for (k, v) in info {
            kwargs.set_item(k, v)?;
        }
        Ok(PyErr::from_value(cls.call((message.clone(),), Some(&kwargs))?))
    };
    build().unwrap_or_else(|e| e)
}

fn map_error(py: Python<'_>, err: SketchError) -> PyErr {
    let msg = err.to_string();
    let int = |v: usize| v.into_pyobject(py).map(|o| o.into_any().unbind()).expect("int");
    match err {
        SketchError::NonFiniteInput { row, col } => {
            typed_error(py, Exc::NonFinite, msg, &[("row", int(row)), ("column", int(col))])
        }
        SketchError::NonFiniteWeight { index } => {
            typed_error(py, Exc::NonFinite, msg, &[("row", int(index))])
        }
        SketchError::NegativeWeight { index, .. } => {
            typed_error(py, Exc::NegativeWeight, msg, &[("index", int(index))])
        }
        SketchError::ShapeMismatch { .. } => typed_error(py, Exc::DimensionMismatch, msg, &[]),
        SketchError::UnsupportedSimdLevel(_) => typed_error(py, Exc::InvalidParameter, msg, &[]),
        SketchError::ThreadPool(_) => typed_error(py, Exc::Internal, msg, &[]),
        SketchError::InvalidArgument(_) => typed_error(py, Exc::InvalidParameter, msg, &[]),
        SketchError::Interrupted => PyKeyboardInterrupt::new_err("sketching interrupted"),
    }
}

/// Runs heavy work without the GIL. The work gets an `interrupt` callback to
/// poll between batches (it briefly re-attaches to check for signals, so
/// Ctrl-C stops a long call); a panic becomes `sketchcore.exceptions.InternalError`.
fn run_detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&mut dyn FnMut() -> bool) -> Result<T, SketchError> + Send,
{
    let mut signal: Option<PyErr> = None;
    let outcome = py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| {
            let mut interrupt = || match Python::attach(|py| py.check_signals()) {
                Ok(()) => false,
                Err(e) => {
                    signal = Some(e);
                    true
                }
            };
            work(&mut interrupt)
        }))
    });
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(SketchError::Interrupted)) => Err(signal.take().unwrap_or_else(|| map_error(py, SketchError::Interrupted))),
        Ok(Err(e)) => Err(map_error(py, e)),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(typed_error(py, Exc::Internal, format!("internal error in the Rust kernel: {what}"), &[]))
        }
    }
}

fn parse_level(py: Python<'_>, simd: Option<&str>) -> PyResult<SimdLevel> {
    let Some(name) = simd else { return Ok(SimdLevel::detect()) };
    let level = SimdLevel::from_name(name).ok_or_else(|| {
        typed_error(
            py,
            Exc::InvalidParameter,
            format!("unknown SIMD level {name:?}; expected one of 'scalar', 'avx2', 'avx512'"),
            &[],
        )
    })?;
    if !level.is_available() {
        return Err(map_error(py, SketchError::UnsupportedSimdLevel(level)));
    }
    Ok(level)
}

fn parse_nonlinearity(quantize: bool) -> Nonlinearity {
    if quantize {
        Nonlinearity::Quantized
    } else {
        Nonlinearity::Complex
    }
}

fn sums_to_py<'py>(py: Python<'py>, s: SketchSums) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            PyArray1::from_vec(py, s.cos).into_any(),
            PyArray1::from_vec(py, s.sin).into_any(),
            s.weight.into_pyobject(py)?.into_any(),
            s.count.into_pyobject(py)?.into_any(),
            PyArray1::from_vec(py, s.lower).into_any(),
            PyArray1::from_vec(py, s.upper).into_any(),
        ],
    )
}

fn extract_as<'py, T: FromPyObjectOwned<'py>>(py: Python<'py>, obj: &Bound<'py, PyAny>, what: &str) -> PyResult<T> {
    obj.extract().map_err(|_| {
        typed_error(py, Exc::DType, format!("{what} must be a NumPy array with the same float dtype as the data"), &[])
    })
}

/// Which operator a sketch call applies.
enum OperatorArrays<'py> {
    Dense { omega: Bound<'py, PyAny> },
    Structured { signs: Bound<'py, PyAny>, scales: Bound<'py, PyAny> },
    Sparse { index: PyReadonlyArray2<'py, u32>, value: Bound<'py, PyAny> },
}

fn sketch_typed<'py, E: Element + numpy::Element>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, E>,
    operator: OperatorArrays<'py>,
    dither: Option<&Bound<'py, PyAny>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    nonlinearity: Nonlinearity,
    config: RunConfig,
) -> PyResult<Bound<'py, PyTuple>> {
    let dither: Option<PyReadonlyArray1<'py, E>> = match dither {
        Some(d) => Some(extract_as(py, d, "dither")?),
        None => None,
    };
    let xv = x.as_array();
    let dv: Option<ArrayView1<'_, E>> = dither.as_ref().map(|d| d.as_array());
    let wv: Option<ArrayView1<'_, f64>> = weights.as_ref().map(|w| w.as_array());
    let sums = match operator {
        OperatorArrays::Dense { omega } => {
            let omega: PyReadonlyArray2<'py, E> = extract_as(py, &omega, "omega")?;
            let ov = omega.as_array();
            run_detached(py, move |interrupt| {
                sketchcore_core::sketch_dense(xv, ov, dv, wv, nonlinearity, config, interrupt)
            })?
        }
        OperatorArrays::Structured { signs, scales } => {
            let signs: PyReadonlyArray2<'py, E> = extract_as(py, &signs, "signs")?;
            let scales: PyReadonlyArray1<'py, E> = extract_as(py, &scales, "scales")?;
            let (sv, cv) = (signs.as_array(), scales.as_array());
            run_detached(py, move |interrupt| {
                sketchcore_core::sketch_structured(xv, sv, cv, dv, wv, nonlinearity, config, interrupt)
            })?
        }
        OperatorArrays::Sparse { index, value } => {
            let value: PyReadonlyArray2<'py, E> = extract_as(py, &value, "value")?;
            let (iv, vv) = (index.as_array(), value.as_array());
            run_detached(py, move |interrupt| {
                sketchcore_core::sketch_sparse(xv, iv, vv, dv, wv, nonlinearity, config, interrupt)
            })?
        }
    };
    sums_to_py(py, sums)
}

#[allow(clippy::too_many_arguments)]
fn sketch_any<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    operator: OperatorArrays<'py>,
    dither: Option<&Bound<'py, PyAny>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    quantize: bool,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let config = RunConfig { level: parse_level(py, simd)?, n_threads };
    let nl = parse_nonlinearity(quantize);
    if let Ok(x32) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        sketch_typed(py, x32, operator, dither, weights, nl, config)
    } else if let Ok(x64) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        sketch_typed(py, x64, operator, dither, weights, nl, config)
    } else {
        Err(typed_error(py, Exc::DType, "x must be a 2-D float32 or float64 NumPy array".into(), &[]))
    }
}

/// sketch_dense(x, omega, dither=None, weights=None, *, quantize=False, simd=None, n_threads=0)
/// --
///
/// Fused dense sketch sums of `x` (N x d, float32 or float64, any strides)
/// for frequencies `omega` (d x m, same dtype), optional `dither` (m, same
/// dtype) and optional float64 `weights` (N). `quantize` applies the 1-bit
/// quantizer (sign of cos and sin). Returns
/// `(cos_sums, sin_sums, weight, count, lower, upper)`.
#[pyfunction]
#[pyo3(signature = (x, omega, dither=None, weights=None, *, quantize=false, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn sketch_dense<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    omega: &Bound<'py, PyAny>,
    dither: Option<&Bound<'py, PyAny>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    quantize: bool,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let op = OperatorArrays::Dense { omega: omega.clone() };
    sketch_any(py, x, op, dither, weights, quantize, simd, n_threads)
}

/// sketch_structured(x, signs, scales, dither=None, weights=None, *, quantize=False, simd=None, n_threads=0)
/// --
///
/// Sketch sums for the structured operator: `signs` (3 * ceil(m/p) x p,
/// entries +-1: D1, D2, D3 of each block, p a power of two >= d) and
/// `scales` (m), both of the data's dtype. Same return value as `sketch_dense`.
#[pyfunction]
#[pyo3(signature = (x, signs, scales, dither=None, weights=None, *, quantize=false, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn sketch_structured<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    signs: &Bound<'py, PyAny>,
    scales: &Bound<'py, PyAny>,
    dither: Option<&Bound<'py, PyAny>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    quantize: bool,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let op = OperatorArrays::Structured { signs: signs.clone(), scales: scales.clone() };
    sketch_any(py, x, op, dither, weights, quantize, simd, n_threads)
}

/// sketch_sparse(x, index, value, dither=None, weights=None, *, quantize=False, simd=None, n_threads=0)
/// --
///
/// Sketch sums for frequencies given by their non-zero coordinates:
/// frequency j is `sum_t value[j, t] e_{index[j, t]}` (`index` m x s uint32,
/// each below d; `value` m x s of the data's dtype). s multiply-adds per
/// phase instead of d. Same return value as `sketch_dense`.
#[pyfunction]
#[pyo3(signature = (x, index, value, dither=None, weights=None, *, quantize=false, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn sketch_sparse<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    index: PyReadonlyArray2<'py, u32>,
    value: &Bound<'py, PyAny>,
    dither: Option<&Bound<'py, PyAny>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    quantize: bool,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let op = OperatorArrays::Sparse { index, value: value.clone() };
    sketch_any(py, x, op, dither, weights, quantize, simd, n_threads)
}

/// sketch_dense_reference_f64(x, omega, dither=None, weights=None, *, quantize=False)
/// --
///
/// Scalar float64 Rust reference (`f64::sin_cos`, one thread, no SIMD) of
/// `sketch_dense`, for tests. Inputs must be float64.
#[pyfunction]
#[pyo3(signature = (x, omega, dither=None, weights=None, *, quantize=false))]
fn sketch_dense_reference_f64<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    omega: PyReadonlyArray2<'py, f64>,
    dither: Option<PyReadonlyArray1<'py, f64>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    quantize: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let nl = parse_nonlinearity(quantize);
    let (xv, ov) = (x.as_array(), omega.as_array());
    if ov.nrows() != xv.ncols() {
        return Err(map_error(
            py,
            SketchError::ShapeMismatch { what: "rows of omega (data dimension)", expected: xv.ncols(), got: ov.nrows() },
        ));
    }
    let dv = dither.as_ref().map(|d| d.as_array());
    let wv = weights.as_ref().map(|w| w.as_array());
    let sums = run_detached(py, move |_| Ok(sketch_dense_reference(xv, ov, dv, wv, nl)))?;
    sums_to_py(py, sums)
}

fn sin_cos_typed<'py, E: Element + numpy::Element>(
    py: Python<'py>,
    t: ArrayView1<'_, E>,
    level: SimdLevel,
) -> PyResult<Bound<'py, PyTuple>> {
    let t: Vec<E> = t.iter().copied().collect();
    let (s, c) = run_detached(py, move |_| {
        let mut s = vec![E::ZERO; t.len()];
        let mut c = vec![E::ZERO; t.len()];
        sketchcore_core::sin_cos_into(level, &t, &mut s, &mut c);
        Ok((s, c))
    })?;
    PyTuple::new(py, [PyArray1::from_vec(py, s), PyArray1::from_vec(py, c)])
}

/// sin_cos(t, *, simd=None)
/// --
///
/// The kernels' own vectorised sine and cosine of a 1-D float32 or float64
/// array, returned as `(sin, cos)`; for testing and documenting precision.
#[pyfunction]
#[pyo3(signature = (t, *, simd=None))]
fn sin_cos<'py>(py: Python<'py>, t: &Bound<'py, PyAny>, simd: Option<&str>) -> PyResult<Bound<'py, PyTuple>> {
    let level = parse_level(py, simd)?;
    if let Ok(t32) = t.extract::<PyReadonlyArray1<'py, f32>>() {
        sin_cos_typed(py, t32.as_array(), level)
    } else if let Ok(t64) = t.extract::<PyReadonlyArray1<'py, f64>>() {
        sin_cos_typed(py, t64.as_array(), level)
    } else {
        Err(typed_error(py, Exc::DType, "t must be a 1-D float32 or float64 NumPy array".into(), &[]))
    }
}

/// The frequency arrays of an atom call, borrowed at one dtype.
struct AtomArrays<'py, E: Element + numpy::Element> {
    omega: PyReadonlyArray2<'py, E>,
    dither: PyReadonlyArray1<'py, E>,
    omega_sq: Option<PyReadonlyArray2<'py, E>>,
}

impl<'py, E: Element + numpy::Element> AtomArrays<'py, E> {
    fn extract(
        py: Python<'py>,
        omega: PyReadonlyArray2<'py, E>,
        dither: &Bound<'py, PyAny>,
        omega_sq: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let dither = extract_as(py, dither, "dither")?;
        let omega_sq = match omega_sq {
            Some(o) => Some(extract_as(py, o, "omega_sq")?),
            None => None,
        };
        Ok(AtomArrays { omega, dither, omega_sq })
    }

    fn frequencies(&self, gain: f64) -> AtomFrequencies<'_, E> {
        AtomFrequencies {
            omega: self.omega.as_array(),
            omega_sq: self.omega_sq.as_ref().map(|o| o.as_array()),
            dither: self.dither.as_array(),
            gain,
        }
    }
}

/// The structured operator's arrays of an atom call
/// (`(signs, scales, first_column[, row_scales])`).
struct StructuredArrays<'py> {
    signs: PyReadonlyArray2<'py, f64>,
    scales: PyReadonlyArray1<'py, f64>,
    first_column: usize,
    row_scales: Option<PyReadonlyArray1<'py, f64>>,
}

impl<'py> StructuredArrays<'py> {
    fn extract(py: Python<'py>, spec: &Bound<'py, PyTuple>, omega_sq: Option<&Bound<'py, PyAny>>) -> PyResult<Self> {
        if omega_sq.is_some() {
            return Err(typed_error(py, Exc::InvalidParameter, "structured frequencies generate their squares: omega_sq must be None".into(), &[]));
        }
        let bad = || {
            typed_error(
                py,
                Exc::DType,
                "structured frequencies must be (signs: float64 2-D, scales: float64 1-D, first_column: int[, row_scales: float64 1-D or None])".into(),
                &[],
            )
        };
        let (signs, scales, first_column, row_scales) = match spec.len() {
            3 => {
                let (a, b, c) = spec.extract().map_err(|_| bad())?;
                (a, b, c, None)
            }
            4 => spec.extract().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        Ok(StructuredArrays { signs, scales, first_column, row_scales })
    }

    fn frequencies<'a, E: Element + numpy::Element>(
        &'a self,
        dither: &'a PyReadonlyArray1<'py, E>,
        dim: usize,
        squares: bool,
        gain: f64,
    ) -> StructuredFrequencies<'a, E> {
        StructuredFrequencies {
            signs: self.signs.as_array(),
            scales: self.scales.as_array(),
            dither: dither.as_array(),
            dim,
            first_column: self.first_column,
            squares,
            row_scales: self.row_scales.as_ref().map(|r| r.as_array()),
            gain,
        }
    }
}

/// Calls `$body` with `$freq` bound to the frequency source of an atom call:
/// a dense d x m `frequencies` array (its dtype picks the precision), or a
/// structured `(signs, scales, first_column)` tuple (the dither's dtype picks it).
macro_rules! with_frequencies {
    ($py:expr, $frequencies:expr, $dither:expr, $omega_sq:expr, $dim:expr, $squares:expr, $gain:expr, |$freq:ident| $body:expr) => {
        if let Ok(spec) = $frequencies.cast::<PyTuple>() {
            let arrays = StructuredArrays::extract($py, spec, $omega_sq)?;
            if let Ok(xi) = $dither.extract::<PyReadonlyArray1<'_, f32>>() {
                let $freq = arrays.frequencies(&xi, $dim, $squares, $gain);
                $body
            } else if let Ok(xi) = $dither.extract::<PyReadonlyArray1<'_, f64>>() {
                let $freq = arrays.frequencies(&xi, $dim, $squares, $gain);
                $body
            } else {
                Err(typed_error($py, Exc::DType, "dither must be a 1-D float32 or float64 NumPy array".into(), &[]))
            }
        } else if let Ok(o) = $frequencies.extract::<PyReadonlyArray2<'_, f32>>() {
            let arrays = AtomArrays::<f32>::extract($py, o, $dither, $omega_sq)?;
            let $freq = arrays.frequencies($gain);
            $body
        } else if let Ok(o) = $frequencies.extract::<PyReadonlyArray2<'_, f64>>() {
            let arrays = AtomArrays::<f64>::extract($py, o, $dither, $omega_sq)?;
            let $freq = arrays.frequencies($gain);
            $body
        } else {
            Err(typed_error(
                $py,
                Exc::DType,
                "frequencies must be a 2-D float32 or float64 NumPy array or a (signs, scales, first_column) tuple".into(),
                &[],
            ))
        }
    };
}

/// atoms(frequencies, dither, means, *, omega_sq=None, variances=None, gain=1.0, simd=None, n_threads=0)
/// --
///
/// Real and imaginary parts (K x m float64 arrays) of K atoms: Diracs at
/// `means` (K x d float64), or diagonal Gaussians when `variances` (K x d)
/// are given. `frequencies` is either the d x m matrix Omega (float32 or
/// float64, with the squared frequencies `omega_sq` for Gaussians; the atoms
/// are computed in its precision), or a structured operator's
/// `(signs, scales, first_column[, row_scales])`: its frequencies
/// `first_column .. first_column + len(scales)` (multiplied by
/// `row_scales[l]` along dimension l when given: standardised coordinates)
/// are generated one group at a time (never materialised), in the dither's
/// precision.
#[pyfunction]
#[pyo3(signature = (frequencies, dither, means, *, omega_sq=None, variances=None, gain=1.0, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn atoms<'py>(
    py: Python<'py>,
    frequencies: &Bound<'py, PyAny>,
    dither: &Bound<'py, PyAny>,
    means: PyReadonlyArray2<'py, f64>,
    omega_sq: Option<&Bound<'py, PyAny>>,
    variances: Option<PyReadonlyArray2<'py, f64>>,
    gain: f64,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let config = RunConfig { level: parse_level(py, simd)?, n_threads };
    let params = atom_params(&means, &variances);
    let (dim, squares) = (params.means.ncols(), params.variances.is_some());
    let (re, im) = with_frequencies!(py, frequencies, dither, omega_sq, dim, squares, gain, |freq| {
        run_detached(py, |_| sketchcore_core::atoms::atoms(&freq, &params, config))
    })?;
    PyTuple::new(py, [PyArray2::from_owned_array(py, re), PyArray2::from_owned_array(py, im)])
}

/// atom_objective(frequencies, dither, means, weights, z_re, z_im, *, omega_sq=None, variances=None, gain=1.0, simd=None, n_threads=0)
/// --
///
/// `f = ||z - sum_k weights_k a_k||^2` for the atoms of `atoms(...)` and the
/// sketch `z = z_re + i z_im` (m float64 each), with its gradient, in one
/// fused pass: returns `(f, grad_means (K x d), grad_variances (K x d) or
/// None, grad_weights (K))`.
#[pyfunction]
#[pyo3(signature = (frequencies, dither, means, weights, z_re, z_im, *, omega_sq=None, variances=None, gain=1.0, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn atom_objective<'py>(
    py: Python<'py>,
    frequencies: &Bound<'py, PyAny>,
    dither: &Bound<'py, PyAny>,
    means: PyReadonlyArray2<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    z_re: PyReadonlyArray1<'py, f64>,
    z_im: PyReadonlyArray1<'py, f64>,
    omega_sq: Option<&Bound<'py, PyAny>>,
    variances: Option<PyReadonlyArray2<'py, f64>>,
    gain: f64,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let config = RunConfig { level: parse_level(py, simd)?, n_threads };
    let params = atom_params(&means, &variances);
    let (dim, squares) = (params.means.ncols(), params.variances.is_some());
    let (wv, zr, zi) = (weights.as_array(), z_re.as_array(), z_im.as_array());
    let out = with_frequencies!(py, frequencies, dither, omega_sq, dim, squares, gain, |freq| {
        run_detached(py, |_| sketchcore_core::atoms::objective_grad(&freq, &params, wv, zr, zi, config))
    })?;
    objective_to_py(py, out)
}

/// The atom parameters of an atom call, borrowed.
fn atom_params<'a>(means: &'a PyReadonlyArray2<'_, f64>, variances: &'a Option<PyReadonlyArray2<'_, f64>>) -> AtomParams<'a> {
    AtomParams { means: means.as_array(), variances: variances.as_ref().map(|v| v.as_array()) }
}

/// The frequencies of a sparse atom call, borrowed.
fn sparse_frequencies<'a>(
    index: &'a PyReadonlyArray2<'_, u32>,
    value: &'a PyReadonlyArray2<'_, f64>,
    dither: &'a PyReadonlyArray1<'_, f64>,
    dim: usize,
    gain: f64,
) -> SparseFrequencies<'a> {
    SparseFrequencies { index: index.as_array(), value: value.as_array(), dither: dither.as_array(), dim, gain }
}

/// `(f, grad_means, grad_variances or None, grad_weights)`.
fn objective_to_py(py: Python<'_>, out: ObjectiveGrad) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(
        py,
        [
            out.value.into_pyobject(py)?.into_any(),
            PyArray2::from_owned_array(py, out.grad_means).into_any(),
            optional_array(py, out.grad_variances),
            PyArray1::from_owned_array(py, out.grad_weights).into_any(),
        ],
    )
}

/// `(inner, norm_sq, inner_means, inner_variances, norm_variances)`, None where not computed.
fn correlation_to_py(py: Python<'_>, out: Correlation) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(
        py,
        [
            PyArray1::from_owned_array(py, out.inner).into_any(),
            PyArray1::from_owned_array(py, out.norm_sq).into_any(),
            optional_array(py, out.inner_means),
            optional_array(py, out.inner_variances),
            optional_array(py, out.norm_variances),
        ],
    )
}

fn optional_array<'py>(py: Python<'py>, a: Option<numpy::ndarray::Array2<f64>>) -> Bound<'py, PyAny> {
    match a {
        Some(g) => PyArray2::from_owned_array(py, g).into_any(),
        None => py.None().into_bound(py),
    }
}

/// atom_correlation(frequencies, dither, means, r_re, r_im, *, gradients=False, variances=None, omega_sq=None, gain=1.0, simd=None, n_threads=0)
/// --
///
/// Correlations of the atoms of `atoms(...)` with a residual
/// `r = r_re + i r_im`: with `p_kj = conj(a_kj) r_j`, returns
/// `(inner (K) = sum_j Re p_kj, norm_sq (K) = ||a_k||^2, inner_means,
/// inner_variances, norm_variances)`, the last three K x d (`sum_j omega_lj
/// Im p_kj`, `sum_j omega_lj^2 Re p_kj`, `sum_j omega_lj^2 |a_kj|^2`) only
/// with `gradients=True` (the variance sums for Gaussian atoms only; None
/// otherwise).
#[pyfunction]
#[pyo3(signature = (frequencies, dither, means, r_re, r_im, *, gradients=false, variances=None, omega_sq=None, gain=1.0, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn atom_correlation<'py>(
    py: Python<'py>,
    frequencies: &Bound<'py, PyAny>,
    dither: &Bound<'py, PyAny>,
    means: PyReadonlyArray2<'py, f64>,
    r_re: PyReadonlyArray1<'py, f64>,
    r_im: PyReadonlyArray1<'py, f64>,
    gradients: bool,
    variances: Option<PyReadonlyArray2<'py, f64>>,
    omega_sq: Option<&Bound<'py, PyAny>>,
    gain: f64,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let config = RunConfig { level: parse_level(py, simd)?, n_threads };
    let params = atom_params(&means, &variances);
    let (dim, squares) = (params.means.ncols(), params.variances.is_some());
    let (rr, ri) = (r_re.as_array(), r_im.as_array());
    let out = with_frequencies!(py, frequencies, dither, omega_sq, dim, squares, gain, |freq| {
        run_detached(py, |_| sketchcore_core::atoms::correlation(&freq, &params, rr, ri, gradients, config))
    })?;
    correlation_to_py(py, out)
}

/// sparse_atoms(index, value, dither, means, *, variances=None, gain=1.0, simd=None, n_threads=0)
/// --
///
/// `atoms(...)` for frequencies given by their non-zero coordinates:
/// frequency j is `sum_t value[j, t] e_{index[j, t]}` (`index` m x s uint32,
/// distinct coordinates within a row, each below d; `value` m x s float64;
/// `dither` m float64). O(m s) work per atom instead of O(m d).
#[pyfunction]
#[pyo3(signature = (index, value, dither, means, *, variances=None, gain=1.0, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn sparse_atoms<'py>(
    py: Python<'py>,
    index: PyReadonlyArray2<'py, u32>,
    value: PyReadonlyArray2<'py, f64>,
    dither: PyReadonlyArray1<'py, f64>,
    means: PyReadonlyArray2<'py, f64>,
    variances: Option<PyReadonlyArray2<'py, f64>>,
    gain: f64,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let config = RunConfig { level: parse_level(py, simd)?, n_threads };
    let params = atom_params(&means, &variances);
    let freq = sparse_frequencies(&index, &value, &dither, params.means.ncols(), gain);
    let (re, im) = run_detached(py, |_| sketchcore_core::sparse_atoms::atoms(&freq, &params, config))?;
    PyTuple::new(py, [PyArray2::from_owned_array(py, re), PyArray2::from_owned_array(py, im)])
}

/// sparse_atom_objective(index, value, dither, means, weights, z_re, z_im, *, variances=None, gain=1.0, simd=None, n_threads=0)
/// --
///
/// `atom_objective(...)` for frequencies given by their non-zero
/// coordinates (see `sparse_atoms`).
#[pyfunction]
#[pyo3(signature = (index, value, dither, means, weights, z_re, z_im, *, variances=None, gain=1.0, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn sparse_atom_objective<'py>(
    py: Python<'py>,
    index: PyReadonlyArray2<'py, u32>,
    value: PyReadonlyArray2<'py, f64>,
    dither: PyReadonlyArray1<'py, f64>,
    means: PyReadonlyArray2<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    z_re: PyReadonlyArray1<'py, f64>,
    z_im: PyReadonlyArray1<'py, f64>,
    variances: Option<PyReadonlyArray2<'py, f64>>,
    gain: f64,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let config = RunConfig { level: parse_level(py, simd)?, n_threads };
    let params = atom_params(&means, &variances);
    let freq = sparse_frequencies(&index, &value, &dither, params.means.ncols(), gain);
    let (wv, zr, zi) = (weights.as_array(), z_re.as_array(), z_im.as_array());
    let out = run_detached(py, |_| sketchcore_core::sparse_atoms::objective_grad(&freq, &params, wv, zr, zi, config))?;
    objective_to_py(py, out)
}

/// sparse_atom_correlation(index, value, dither, means, r_re, r_im, *, gradients=False, variances=None, gain=1.0, simd=None, n_threads=0)
/// --
///
/// `atom_correlation(...)` for frequencies given by their non-zero
/// coordinates (see `sparse_atoms`).
#[pyfunction]
#[pyo3(signature = (index, value, dither, means, r_re, r_im, *, gradients=false, variances=None, gain=1.0, simd=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
fn sparse_atom_correlation<'py>(
    py: Python<'py>,
    index: PyReadonlyArray2<'py, u32>,
    value: PyReadonlyArray2<'py, f64>,
    dither: PyReadonlyArray1<'py, f64>,
    means: PyReadonlyArray2<'py, f64>,
    r_re: PyReadonlyArray1<'py, f64>,
    r_im: PyReadonlyArray1<'py, f64>,
    gradients: bool,
    variances: Option<PyReadonlyArray2<'py, f64>>,
    gain: f64,
    simd: Option<&str>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let config = RunConfig { level: parse_level(py, simd)?, n_threads };
    let params = atom_params(&means, &variances);
    let freq = sparse_frequencies(&index, &value, &dither, params.means.ncols(), gain);
    let (rr, ri) = (r_re.as_array(), r_im.as_array());
    let out = run_detached(py, |_| sketchcore_core::sparse_atoms::correlation(&freq, &params, rr, ri, gradients, config))?;
    correlation_to_py(py, out)
}

/// simd_level()
/// --
///
/// The instruction set the kernels use on this CPU: 'avx512', 'avx2' or 'scalar'.
#[pyfunction]
fn simd_level() -> &'static str {
    SimdLevel::detect().name()
}

/// available_simd_levels()
/// --
///
/// Every instruction-set level this CPU can run, weakest first.
#[pyfunction]
fn available_simd_levels() -> Vec<&'static str> {
    SimdLevel::available().into_iter().map(SimdLevel::name).collect()
}

/// default_num_threads()
/// --
///
/// Worker threads a call with n_threads=0 uses.
#[pyfunction]
fn default_num_threads() -> usize {
    sketchcore_core::threads::effective_threads(0)
}

/// Panics inside the GIL-released helper; lets the tests check that no Rust
/// panic crosses into Python.
#[pyfunction]
fn _panic_for_testing(py: Python<'_>) -> PyResult<()> {
    run_detached(py, |_| -> Result<(), SketchError> { panic!("deliberate test panic") })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    EXCEPTIONS.get_or_try_init(m.py(), || import_exceptions(m.py()))?;
    m.add_function(wrap_pyfunction!(sketch_dense, m)?)?;
    m.add_function(wrap_pyfunction!(sketch_structured, m)?)?;
    m.add_function(wrap_pyfunction!(sketch_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(sketch_dense_reference_f64, m)?)?;
    m.add_function(wrap_pyfunction!(sin_cos, m)?)?;
    m.add_function(wrap_pyfunction!(atoms, m)?)?;
    m.add_function(wrap_pyfunction!(atom_objective, m)?)?;
    m.add_function(wrap_pyfunction!(atom_correlation, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_atoms, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_atom_objective, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_atom_correlation, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(available_simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(default_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_testing, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
