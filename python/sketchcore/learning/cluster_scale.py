"""The frequency scale of mixture decoders: the within-cluster spread of a subset."""

from __future__ import annotations

from typing import Any

import numpy as np

from sketchcore.core.sampling import draw_subset
from sketchcore.core.validation import check_finite_rows
from sketchcore.exceptions import EmptySketchError, InvalidParameterError

__all__ = ["estimate_cluster_scale"]


def estimate_cluster_scale(X: Any, n_clusters: int, *, n_samples: int = 5000, seed: int | None = 0) -> float:
    """Root-mean-square within-cluster standard deviation of a subset, from
    one k-means run (scikit-learn, ``n_init=1``) with ``n_clusters`` clusters.

    The frequency scale the mixture decoders need is the spread of one
    component. The envelope heuristic
    (:func:`~sketchcore.core.operator.estimate_sigma`) measures it well when
    components overlap, but with many well-separated components the envelope
    also decays with the distances between them and the estimate is too
    large (``tests/test_scale.py`` shows a case). This is the estimators'
    ``sigma="cluster"`` (their default). Deterministic given the seed.

    Parameters
    ----------
    X : array-like (n_samples, dim), dask array, or iterable of 2-D chunks
        Only a subset of ``n_samples`` rows is read (:func:`~sketchcore.core.sampling.draw_subset`).
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
