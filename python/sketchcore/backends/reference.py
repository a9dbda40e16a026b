"""Float64 NumPy reference sketch: the definition, computed plainly.

``z = sum_i w_i exp(1j (X Omega + xi)) / sum_i w_i`` (or the quantized
``sign(cos) + 1j sign(sin)``), in chunks of rows so
memory stays bounded. Used by the tests as the independent reference and
available to users as ``backend="numpy"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sketchcore.core.sketch import Sketch

if TYPE_CHECKING:
    from sketchcore.core.operator import SketchOperator

__all__ = ["sketch_reference"]


def sketch_reference(
    operator: SketchOperator,
    X: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    chunk_size: int = 4096,
) -> Sketch:
    """Sketch of ``X`` computed with float64 NumPy (no validation).

    Parameters
    ----------
    operator : SketchOperator
    X : ndarray of shape (n_samples, dim)
    weights : ndarray of shape (n_samples,), optional
    chunk_size : int, default=4096
        Rows per chunk; memory is O(chunk_size * sketch_size).
    """
    omega = operator.frequencies
    xi = operator.dither
    n, d = X.shape
    m = operator.sketch_size
    acc = np.zeros(m, dtype=np.complex128)
    for start in range(0, n, chunk_size):
        xc = np.asarray(X[start : start + chunk_size], dtype=np.float64)
        # Overflowing phases give NaN sums, which the caller reports.
        with np.errstate(over="ignore", invalid="ignore"):
            phases = xc @ omega + xi
            if operator.quantize:
                features = np.copysign(1.0, np.cos(phases)) + 1j * np.copysign(1.0, np.sin(phases))
            else:
                features = np.exp(1j * phases)
            if weights is None:
                acc += features.sum(axis=0)
            else:
                acc += weights[start : start + chunk_size] @ features
    weight = float(n) if weights is None else float(np.sum(weights))
    if n:
        lower = np.asarray(X.min(axis=0), dtype=np.float64)
        upper = np.asarray(X.max(axis=0), dtype=np.float64)
    else:
        lower, upper = np.full(d, np.inf), np.full(d, -np.inf)
    return Sketch(operator, acc.real.copy(), acc.imag.copy(), weight, n, lower, upper)
