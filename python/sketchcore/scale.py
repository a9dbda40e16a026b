"""Automatic choice of the frequency scale sigma.

The published heuristic (Keriven et al., "Sketching for large-scale learning
of mixture models", 2018): sketch a small subset of the data with frequencies
of spread-out radii, keep for each band of radii the frequency where |z| is
largest (the envelope), fit ``|z(omega)| ~ exp(-s^2 ||omega||^2 / 2)`` and
take sigma = s; repeat with frequencies scaled by the new sigma.

For a mixture of Gaussians with covariance s^2 I the envelope is exactly that
Gaussian, so sigma estimates the scale of the components (not of the whole
data), which is what the decoders need.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from sketchcore._validation import as_data_matrix
from sketchcore.exceptions import EmptySketchError, InvalidParameterError

__all__ = ["estimate_sigma", "estimate_cluster_scale", "draw_subset", "sample_windows"]


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
            for row, slot in zip(np.flatnonzero(keep), slots[keep]):
                reservoir[slot] = rest[row]
        seen += c.shape[0]
    if reservoir is None or seen == 0:
        raise EmptySketchError("cannot estimate sigma from empty data")
    return reservoir[: min(seen, k)]


def _fit_envelope(radii: np.ndarray, moduli: np.ndarray) -> float:
    """s^2 minimising sum (moduli - exp(-s^2 R^2 / 2))^2 (1-D, on log s^2)."""
    r2 = radii * radii

    def loss(log_s2: float) -> float:
        return float(np.sum((moduli - np.exp(-0.5 * np.exp(log_s2) * r2)) ** 2))

    # Bracket from the data: s^2 R^2 of order 1 somewhere in the band.
    center = -np.log(np.median(r2) + 1e-300)
    res = minimize_scalar(loss, bounds=(center - 12, center + 12), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def estimate_sigma(
    X: Any,
    *,
    n_samples: int = 5000,
    sketch_size: int = 500,
    n_iter: int = 3,
    n_bands: int = 30,
    seed: int | None = 0,
    return_history: bool = False,
) -> float | tuple[float, list[float]]:
    """Estimates the frequency scale sigma from a subset of the data.

    Parameters
    ----------
    X : array-like (n_samples, dim), dask array, or iterable of 2-D chunks
        The data. Only a subset of ``n_samples`` rows is read (see
        :func:`draw_subset`).
    n_samples : int, default=5000
        Size of the subset.
    sketch_size : int, default=500
        Frequencies per iteration.
    n_iter : int, default=3
        Refinement rounds; each sketches the subset at the current sigma.
    n_bands : int, default=30
        Radius bands; the maximum of |z| in each band traces the envelope.
    seed : int, default=0
        Seeds the subset and the frequencies: the result is deterministic.
    return_history : bool, default=False
        Also return the estimate after each round.

    Returns
    -------
    sigma : float
        Scale such that ``|z(omega)|`` decays like ``exp(-sigma^2 ||omega||^2 / 2)``.
    """
    from sketchcore.operator import SketchOperator

    for name, value, low in (("n_samples", n_samples, 2), ("sketch_size", sketch_size, 2 * n_bands),
                             ("n_iter", n_iter, 1), ("n_bands", n_bands, 2)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    subset = draw_subset(X, n_samples, seed)
    if subset.shape[0] == 0:
        raise EmptySketchError("cannot estimate sigma from empty data")
    d = subset.shape[1]
    spread = float(np.mean(np.var(subset, axis=0)))
    if not np.isfinite(spread):
        from sketchcore._validation import check_finite_rows

        check_finite_rows(subset)
    # Start from the overall spread: frequencies then reach the decay region.
    sigma = np.sqrt(spread) if spread > 0 else 1.0
    history = []
    for it in range(n_iter):
        op = SketchOperator(d, sketch_size, sigma=sigma, radius="adapted", seed=(seed or 0) * 1009 + it)
        z = op.sketch(subset).z
        radii = np.linalg.norm(op.frequencies, axis=0)
        order = np.argsort(radii)
        bands = np.array_split(order, n_bands)
        peak = np.array([band[np.argmax(np.abs(z[band]))] for band in bands])
        s2 = _fit_envelope(radii[peak], np.abs(z[peak]))
        sigma = float(np.sqrt(s2))
        history.append(sigma)
    if not (np.isfinite(sigma) and sigma > 0):
        # Constant data: every |z| is 1, any scale fits; fall back to 1.
        sigma = 1.0
    return (sigma, history) if return_history else sigma


def estimate_cluster_scale(X: Any, n_clusters: int, *, n_samples: int = 5000, seed: int | None = 0) -> float:
    """Root-mean-square within-cluster standard deviation of a subset, from
    one k-means run (scikit-learn, ``n_init=1``) with ``n_clusters`` clusters.

    The frequency scale the mixture decoders need is the spread of one
    component. The envelope heuristic (:func:`estimate_sigma`) measures it
    well when components overlap, but with many well-separated components
    the envelope also decays with the distances between them: on 64
    components in d = 12 with standard deviations in [0.5, 1.5] it returns
    2.4 where this returns 1.05 (the true RMS is 1.04), and a GMM decoded at
    2.4 misses variances by +-25%. Deterministic given the seed.

    Parameters
    ----------
    X : array-like (n_samples, dim), dask array, or iterable of 2-D chunks
        Only a subset of ``n_samples`` rows is read (:func:`draw_subset`).
    n_clusters : int
        Number of components expected (at most a quarter of the subset is used).
    n_samples : int, default=5000
    seed : int, default=0

    Returns
    -------
    sigma : float
        ``sqrt(inertia / (n d))``; 1.0 for constant data.
    """
    from sklearn.cluster import KMeans

    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise InvalidParameterError(f"n_clusters must be an integer >= 1, got {n_clusters!r}")
    subset = draw_subset(X, n_samples, seed)
    if subset.shape[0] == 0:
        raise EmptySketchError("cannot estimate a scale from empty data")
    from sketchcore._validation import check_finite_rows

    check_finite_rows(subset)
    x = subset.astype(np.float64)
    k = int(max(1, min(n_clusters, x.shape[0] // 4)))
    if k == 1:
        inertia = float(((x - x.mean(axis=0)) ** 2).sum())
    else:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # Fewer distinct points than clusters (e.g. repeated rows) is fine here.
            warnings.simplefilter("ignore", ConvergenceWarning)
            inertia = float(KMeans(k, n_init=1, random_state=0 if seed is None else seed).fit(x).inertia_)
    sigma = float(np.sqrt(inertia / x.size))
    return sigma if np.isfinite(sigma) and sigma > 0 else 1.0
