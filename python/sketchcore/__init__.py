"""sketchcore: compressive learning with Rust SIMD sketching kernels.

A *sketch* compresses N data vectors into m averaged random Fourier features
in one pass; sketches of parts add up exactly. See :class:`SketchOperator`
and :class:`Sketch`.

The package is layered, each layer importing only those below it:
:mod:`sketchcore.core` (operators, sketches, the backend registry) <-
:mod:`sketchcore.backends` (Rust, NumPy, CuPy, Dask) <- :mod:`sketchcore.io`
(sketch files, privacy) <- :mod:`sketchcore.learning` (decoders, estimators)
<- :mod:`sketchcore.audio` <- :mod:`sketchcore.cli`.
"""

from __future__ import annotations

from sketchcore import backends as _backends  # noqa: F401  (registers the sketching backends)
from sketchcore import exceptions
from sketchcore._core import __version__, available_simd_levels, simd_level
from sketchcore.core.operator import SketchOperator, estimate_sigma
from sketchcore.core.sketch import Sketch
from sketchcore.io import sketch_file as _sketch_file  # noqa: F401  (registers the file format)
from sketchcore.io.privacy import privatize

# The learning layer needs SciPy and scikit-learn: imported on first use, so
# that ``import sketchcore`` (and ``sketchcore --help``) stays fast.
_LAZY = {
    "CompressiveKMeans": "sketchcore.learning.estimators",
    "CompressiveGMM": "sketchcore.learning.estimators",
    "estimate_cluster_scale": "sketchcore.learning.cluster_scale",
    "load_model": "sketchcore.learning.model_file",
    "save_model": "sketchcore.learning.model_file",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sketchcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "SketchOperator",
    "CompressiveKMeans",
    "CompressiveGMM",
    "load_model",
    "save_model",
    "Sketch",
    "estimate_cluster_scale",
    "estimate_sigma",
    "privatize",
    "simd_level",
    "available_simd_levels",
    "exceptions",
    "__version__",
]
