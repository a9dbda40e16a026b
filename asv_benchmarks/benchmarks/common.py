"""Shared helpers: sizes, data, the large-size switch."""

from __future__ import annotations

import os

import numpy as np

from sketchcore.datasets import make_mixture

#: Set SKETCHCORE_BENCH_LARGE=1 to run the slow, large sizes.
LARGE = os.environ.get("SKETCHCORE_BENCH_LARGE", "") not in ("", "0")


def mixture(n: int, d: int, k: int = 10, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """The literature's synthetic mixture (:func:`sketchcore.datasets.make_mixture`) in ``dtype``."""
    return make_mixture(n, d, k, random_state=seed)[0].astype(dtype)


def require(condition: bool, why: str) -> None:
    """asv convention: NotImplementedError in setup skips the parameter combination."""
    if not condition:
        raise NotImplementedError(why)
