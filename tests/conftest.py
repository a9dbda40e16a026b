"""Shared fixtures and helpers for the sketchcore test suite."""

from __future__ import annotations

import numpy as np
import pytest

import sketchcore

#: Row counts around tile (64) and lane (8, 16) boundaries.
ODD_ROWS = [0, 1, 7, 8, 9, 15, 16, 17, 63, 65, 127, 129, 1000]

#: Relative error bounds of the Rust kernel against the float64 reference.
TOL = {np.float32: 1e-5, np.float64: 1e-10}

LEVELS = sketchcore.available_simd_levels()


def rel_err(z: np.ndarray, z_ref: np.ndarray) -> float:
    """||z - z_ref|| / ||z_ref||."""
    return float(np.linalg.norm(z - z_ref) / np.linalg.norm(z_ref))


def mixture(n: int, d: int, k: int = 5, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Gaussian mixture data, unit covariances, spread-out means."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(k, d))
    labels = rng.integers(k, size=n)
    return (means[labels] + rng.normal(size=(n, d))).astype(dtype)


@pytest.fixture(params=LEVELS)
def simd(request) -> str:
    return request.param
