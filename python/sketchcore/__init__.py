"""sketchcore: compressive learning with Rust SIMD sketching kernels.

A *sketch* compresses N data vectors into m averaged random Fourier features
in one pass; sketches of parts add up exactly. See :class:`SketchOperator`
and :class:`Sketch`.
"""

from __future__ import annotations

from sketchcore import exceptions
from sketchcore._core import __version__, available_simd_levels, simd_level
from sketchcore.estimators import CompressiveGMM, CompressiveKMeans
from sketchcore.operator import SketchOperator
from sketchcore.privacy import privatize
from sketchcore.scale import estimate_cluster_scale, estimate_sigma
from sketchcore.sketch import Sketch

__all__ = [
    "SketchOperator",
    "CompressiveKMeans",
    "CompressiveGMM",
    "Sketch",
    "estimate_cluster_scale",
    "estimate_sigma",
    "privatize",
    "simd_level",
    "available_simd_levels",
    "exceptions",
    "__version__",
]
