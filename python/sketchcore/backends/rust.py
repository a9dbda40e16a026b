"""The Rust backend: the fused SIMD kernels of ``sketchcore._core``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sketchcore import _core
from sketchcore.core.sketch import Sketch

if TYPE_CHECKING:
    from sketchcore.core.operator import SketchOperator

__all__ = ["sketch_rust"]


def sketch_rust(
    operator: SketchOperator,
    X: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_threads: int = 0,
    simd: str | None = None,
) -> Sketch:
    """Sketch of a validated float32/float64 matrix ``X`` with the Rust kernel
    (``n_threads=0``: all CPUs)."""
    quantize = operator.quantize
    if operator.kind == "structured":
        signs, scales, xi = operator._arrays_for(X.dtype)
        sums = _core.sketch_structured(X, signs, scales, xi, weights, quantize=quantize, simd=simd,
                                       n_threads=n_threads)
    elif operator.kind == "sparse":
        index, value, xi = operator._arrays_for(X.dtype)
        sums = _core.sketch_sparse(X, index, value, xi, weights, quantize=quantize, simd=simd, n_threads=n_threads)
    else:
        omega, xi = operator._arrays_for(X.dtype)
        sums = _core.sketch_dense(X, omega, xi, weights, quantize=quantize, simd=simd, n_threads=n_threads)
    return Sketch(operator, *sums)
