"""Shared helpers: sizes, data, the large-size switch."""

from __future__ import annotations

import os

import numpy as np

#: Set SKETCHCORE_BENCH_LARGE=1 to run the slow, large sizes.
LARGE = os.environ.get("SKETCHCORE_BENCH_LARGE", "") not in ("", "0")


def mixture(n: int, d: int, k: int = 10, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """The literature's synthetic mixture: K unit Gaussians, means N(0, (1.5 K^(1/d))^2 I)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=1.5 * k ** (1 / d), size=(k, d))
    return (means[rng.integers(k, size=n)] + rng.normal(size=(n, d))).astype(dtype)


def require(condition: bool, why: str) -> None:
    """asv convention: NotImplementedError in setup skips the parameter combination."""
    if not condition:
        raise NotImplementedError(why)
