"""Subsets of a data set read without loading all of it: uniform rows,
random windows of consecutive rows, reservoir sampling over a stream of chunks.

They feed the scale estimates (:func:`sketchcore.core.operator.estimate_sigma`,
:func:`sketchcore.learning.cluster_scale.estimate_cluster_scale`) and the
decoders' starting points.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sketchcore.core.validation import as_data_matrix
from sketchcore.exceptions import EmptySketchError, InvalidParameterError

__all__ = ["draw_subset", "sample_windows"]


def draw_subset(X: Any, n_samples: int, seed: int | None = 0) -> np.ndarray:
    """A uniform random subset of at most ``n_samples`` rows, without loading all of ``X``.

    * NumPy arrays and lazy array-likes with ``shape`` and fancy indexing
      (dask arrays, memory maps, HDF5/zarr datasets): the chosen rows are read
      with one sorted index, so only they are loaded (dask computes only the
      chunks holding them).
    * Any other iterable of 2-D chunks: one pass of reservoir sampling,
      memory bounded by ``n_samples`` rows.
    """
    rng = np.random.default_rng(seed)
    if hasattr(X, "shape") and hasattr(X, "__getitem__") and len(getattr(X, "shape", ())) == 2:
        n = int(X.shape[0])
        if n <= n_samples:
            rows = X[:]
        else:
            idx = np.sort(rng.choice(n, size=n_samples, replace=False))
            rows = X[idx]
        return as_data_matrix(np.asarray(rows))
    if isinstance(X, Iterable):
        return _reservoir(X, n_samples, rng)
    raise InvalidParameterError(f"cannot draw samples from {type(X).__name__}")


def sample_windows(X: Any, n_samples: int, seed: int | None = 0, n_windows: int = 32) -> np.ndarray:
    """Up to ``n_samples`` rows taken as ``n_windows`` runs of consecutive rows
    at random offsets.

    The rows depend only on ``len(X)`` and the seed, so a NumPy array and a
    dask array of the same data give the same sample; a dask array computes
    only the blocks the windows touch (a cheap sample, not a pass).
    """
    n = int(X.shape[0])
    if n <= n_samples:
        return as_data_matrix(np.asarray(X[:]))
    rng = np.random.default_rng(seed)
    length = -(-n_samples // n_windows)
    starts = np.sort(rng.choice(n - length + 1, size=n_windows, replace=False))
    # Merge overlapping windows so no row is taken twice.
    ranges: list[list[int]] = []
    for s in starts:
        if ranges and s <= ranges[-1][1]:
            ranges[-1][1] = int(s) + length
        else:
            ranges.append([int(s), int(s) + length])
    parts = [np.asarray(X[a:b]) for a, b in ranges]
    return as_data_matrix(np.concatenate(parts)[:n_samples])


def _reservoir(chunks: Iterable[Any], k: int, rng: np.random.Generator) -> np.ndarray:
    """Algorithm R over rows of a stream of chunks, vectorised per chunk."""
    reservoir: np.ndarray | None = None
    seen = 0
    for chunk in chunks:
        c = as_data_matrix(chunk)
        if reservoir is None:
            reservoir = np.empty((k, c.shape[1]), dtype=np.float64)
        fill = min(k - min(seen, k), c.shape[0])
        if fill > 0:
            reservoir[seen : seen + fill] = c[:fill]
        # Row seen+i (0-based) replaces a random slot with probability k/(seen+i+1).
        rest = c[fill:]
        if rest.shape[0]:
            positions = seen + fill + np.arange(rest.shape[0])
            slots = (rng.random(rest.shape[0]) * (positions + 1)).astype(np.int64)
            keep = slots < k
            # Later rows overwrite earlier ones in stream order, as Algorithm R does.
            for row, slot in zip(np.flatnonzero(keep), slots[keep], strict=True):
                reservoir[slot] = rest[row]
        seen += c.shape[0]
    if reservoir is None or seen == 0:
        raise EmptySketchError("cannot estimate sigma from empty data")
    return reservoir[: min(seen, k)]
