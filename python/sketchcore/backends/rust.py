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
    n_threads: int | None = None,
    simd: str | None = None,
) -> Sketch:
    """Sketch of a validated float32/float64 matrix ``X`` with the Rust kernel."""
    arrays = operator._arrays_for(X.dtype)
    options = dict(quantize=operator.quantize, simd=simd, n_threads=n_threads)
    if operator.kind == "structured":
        sums = _core.sketch_structured(X, *arrays, weights, **options)
    else:
        sums = _core.sketch_dense(X, *arrays, weights, **options)
    return Sketch(operator, *sums)
