"""The backends layer: the sketch kernels (Rust SIMD, NumPy reference, CuPy,
Dask), each registered in :mod:`sketchcore.core.registry` under the name
``SketchOperator.sketch(backend=...)`` takes.

Importing this package registers them; CuPy and Dask are imported only when
their backend is used.
"""

from __future__ import annotations

from typing import Any

from sketchcore.backends.reference import sketch_reference
from sketchcore.backends.rust import sketch_rust
from sketchcore.core import registry


def _sketch_cupy(operator: Any, X: Any, weights: Any = None) -> Any:
    from sketchcore.backends.cuda import sketch_cupy

    return sketch_cupy(operator, X, weights)


def _sketch_dask(operator: Any, X: Any, weights: Any = None) -> Any:
    from sketchcore.backends.dask import sketch_dask_array

    return sketch_dask_array(operator, X, weights)


registry.register_backend("rust", sketch_rust)
registry.register_backend("numpy", sketch_reference)
registry.register_backend("cupy", _sketch_cupy)
registry.register_backend("dask", _sketch_dask)
