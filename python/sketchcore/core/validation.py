"""Input checks shared by every entry point. Errors name the problem."""

from __future__ import annotations

from typing import Any

import numpy as np

from sketchcore.exceptions import (
    DataShapeError,
    DimensionMismatchError,
    DTypeError,
    InvalidParameterError,
    NegativeWeightError,
    NonFiniteError,
)


def as_data_matrix(X: Any, dim: int | None = None, *, name: str = "X", convert: bool = True) -> np.ndarray:
    """Returns ``X`` as a 2-D float32 or float64 array without copying when possible.

    float32 stays float32 and float64 stays float64; float16 becomes float32;
    integers, booleans and longer floats become float64. Strided and
    Fortran-ordered arrays are kept as views (the kernels read any strides).
    With ``convert=False`` the array is only checked (shape and kind) and
    returned in its own dtype, for conversion a tile at a time.
    """
    if not isinstance(X, np.ndarray):
        if hasattr(X, "__array__") or isinstance(X, (list, tuple)):
            X = np.asarray(X)
        else:
            raise DTypeError(f"{name} must be an array-like of numbers, got {type(X).__name__}")
    kind = X.dtype.kind
    if kind == "c":
        raise DTypeError(f"{name} is complex ({X.dtype}); sketches need real data")
    if kind not in "fiub":
        raise DTypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        hint = (" Reshape 1-D data with X.reshape(-1, 1) (one feature) or X.reshape(1, -1) (one sample)."
                if X.ndim == 1 else "")
        raise DataShapeError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}.{hint}")
    if dim is not None and X.shape[1] != dim:
        raise DimensionMismatchError(f"{name} has {X.shape[1]} features but the operator expects {dim}")
    if not convert:
        return X
    target: np.dtype
    if X.dtype == np.float32 or X.dtype == np.float16:
        target = np.dtype(np.float32)
    else:
        target = np.dtype(np.float64)
    if X.dtype != target or not X.dtype.isnative:
        X = X.astype(target)
    # The kernels take strides in whole elements; odd byte strides (views into
    # records) are rare and get one copy.
    if any(s % X.itemsize for s in X.strides):
        X = np.array(X, dtype=target)
    return X


def as_weights(weights: Any, n_samples: int) -> np.ndarray | None:
    """Returns non-negative finite float64 weights of length ``n_samples``, or None."""
    if weights is None:
        return None
    w = np.asarray(weights)
    if w.dtype.kind == "c" or w.dtype.kind not in "fiub":
        raise DTypeError(f"weights must be real numbers, got dtype {w.dtype}")
    if w.ndim != 1:
        raise DataShapeError(f"weights must be 1-D, got shape {w.shape}")
    if w.shape[0] != n_samples:
        raise DimensionMismatchError(f"weights has length {w.shape[0]} but X has {n_samples} rows")
    w = np.ascontiguousarray(w, dtype=np.float64)
    bad = ~np.isfinite(w)
    if bad.any():
        raise NonFiniteError(f"weights contain NaN or infinity (first at index {int(np.argmax(bad))})",
                             row=int(np.argmax(bad)))
    neg = w < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise NegativeWeightError(f"weights must be non-negative (weight {w[i]} at index {i})", index=i)
    return w


def check_finite_rows(X: np.ndarray, row_offset: int = 0) -> None:
    """Raises NonFiniteError naming the first row (and column) with NaN or inf;
    rows are numbered from ``row_offset`` (for chunks of a larger array)."""
    finite = np.isfinite(X)
    if not finite.all():
        row = row_offset + int(np.argmin(finite.all(axis=1)))
        col = int(np.argmin(finite[row - row_offset]))
        raise NonFiniteError(f"input contains NaN or infinity (first at row {row}, column {col})", row=row, column=col)


#: Largest ``n_threads`` a kernel call accepts.
MAX_THREADS = 1024


def check_n_threads(n_threads: Any) -> int:
    """0 (all CPUs) for None, else an int in [1, MAX_THREADS]."""
    if n_threads is None:
        return 0
    if (isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer))
            or not 1 <= n_threads <= MAX_THREADS):
        raise InvalidParameterError(
            f"n_threads must be an integer in [1, {MAX_THREADS}] or None (all CPUs), got {n_threads!r}"
        )
    return int(n_threads)


def check_array_shape(X: Any, dim: int, *, name: str = "X") -> None:
    """Checks a device (CuPy) array's shape and dtype without reading its values."""
    shape, dtype = getattr(X, "shape", None), getattr(X, "dtype", None)
    if shape is None or dtype is None:
        raise DTypeError(f"{name} must be an array of numbers, got {type(X).__name__}")
    kind = np.dtype(dtype).kind
    if kind == "c" or kind not in "fiub":
        raise DTypeError(f"{name} must hold real numbers, got dtype {dtype}")
    if len(shape) != 2:
        raise DataShapeError(f"{name} must be 2-D (n_samples, n_features), got shape {tuple(shape)}")
    if shape[1] != dim:
        raise DimensionMismatchError(f"{name} has {shape[1]} features but the operator expects {dim}")


def is_dask_array(x: Any) -> bool:
    """Whether ``x`` is a dask array (without importing dask if it is not loaded)."""
    mod = type(x).__module__
    return mod.startswith("dask.") and hasattr(x, "dask") and hasattr(x, "chunks")


def is_cupy_array(x: Any) -> bool:
    """Whether ``x`` is a CuPy array (without importing CuPy)."""
    return type(x).__module__.startswith("cupy")
