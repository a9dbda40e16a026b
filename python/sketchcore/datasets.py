"""Synthetic data sets, in the style of :func:`sklearn.datasets.make_blobs`."""

from __future__ import annotations

from typing import Any

import numpy as np

from sketchcore.exceptions import InvalidParameterError

__all__ = ["make_mixture"]


def make_mixture(
    n_samples: int = 100,
    n_features: int = 10,
    n_components: int = 10,
    *,
    separation: float = 1.5,
    cluster_std: Any = 1.0,
    weights: Any = None,
    random_state: Any = None,
    return_centers: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of a mixture of Gaussians with spread-out means.

    With the defaults this is the synthetic setting of the compressive
    learning literature (Keriven et al., "Compressive k-means", 2017, and
    "Sketching for large-scale learning of mixture models", 2018): K
    Gaussians of identity covariance, equal weights, means drawn from
    ``N(0, (1.5 K^(1/d))^2 I)``, so that the clusters neither all overlap
    nor drift apart as K and d grow.

    Parameters
    ----------
    n_samples : int, default=100
    n_features : int, default=10
        Dimension d.
    n_components : int, default=10
        Number K of Gaussians.
    separation : float, default=1.5
        Means are drawn with standard deviation ``separation * K**(1/d)``.
    cluster_std : float or array-like of shape (K,) or (K, d), default=1.0
        Standard deviation of each component: one for all, one per
        component, or one per component and feature (anisotropic diagonal
        covariances).
    weights : array-like of shape (K,), optional
        Mixture weights (normalised to sum 1). Default: equal weights.
    random_state : int, numpy Generator or None
        Seed of ``numpy.random.default_rng``.
    return_centers : bool, default=False
        Also return the means.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        The component of each sample.
    centers : ndarray of shape (n_components, n_features)
        Only with ``return_centers=True``.

    Examples
    --------
    >>> X, y = make_mixture(1000, 2, 3, random_state=0)
    >>> X.shape, y.max()
    ((1000, 2), 2)
    """
    n, d, k = (int(v) for v in (n_samples, n_features, n_components))
    if n < 0 or d < 1 or k < 1:
        raise InvalidParameterError("n_samples must be >= 0, n_features and n_components >= 1")
    rng = np.random.default_rng(random_state)
    means = rng.normal(scale=separation * k ** (1 / d), size=(k, d))
    if weights is None:
        labels = rng.integers(k, size=n)
    else:
        p = np.asarray(weights, dtype=np.float64)
        if p.shape != (k,) or not (np.all(p >= 0) and p.sum() > 0):
            raise InvalidParameterError(f"weights must be {k} non-negative numbers, not all zero")
        labels = rng.choice(k, size=n, p=p / p.sum())
    noise = rng.normal(size=(n, d))
    std = np.asarray(cluster_std, dtype=np.float64)
    if std.ndim == 0:
        X = means[labels] + float(std) * noise
    elif std.shape == (k,):
        X = means[labels] + std[labels, None] * noise
    elif std.shape == (k, d):
        X = means[labels] + std[labels] * noise
    else:
        raise InvalidParameterError(f"cluster_std must be a number or have shape ({k},) or ({k}, {d})")
    return (X, labels, means) if return_centers else (X, labels)
