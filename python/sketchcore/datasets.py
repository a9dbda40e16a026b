"""Synthetic data sets, in the style of :func:`sklearn.datasets.make_blobs`."""

from __future__ import annotations

from typing import Any

import numpy as np

from sketchcore.exceptions import InvalidParameterError

__all__ = ["make_mixture", "make_feature_frames"]


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
    std = np.asarray(cluster_std, dtype=np.float64)
    if not (std.ndim == 0 or std.shape in ((k,), (k, d))):
        raise InvalidParameterError(f"cluster_std must be a number or have shape ({k},) or ({k}, {d})")
    # X = means[labels] + std * noise, built in place in the noise array and
    # one component at a time: the only N x d array is X (the same values
    # as the whole-array expression, with a third of its peak memory).
    X = rng.normal(size=(n, d))
    if std.ndim == 0 and float(std) != 1.0:
        X *= float(std)
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        if std.ndim:
            X[rows] *= std[c]
        X[rows] += means[c]
    return (X, labels, means) if return_centers else (X, labels)


def make_feature_frames(
    n_samples: int = 1000,
    n_features: int = 20,
    n_components: int = 8,
    *,
    scale_ratio: float = 100.0,
    tail_df: float = 4.0,
    n_skewed: int = 2,
    n_constant: int = 0,
    random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames that behave like real audio features: overlapping, heavy-tailed,
    skewed clusters whose spreads differ widely across features.

    Each component has a mean and, per feature, a spread drawn log-uniformly
    over a range of ``scale_ratio``; its noise is Student-t with ``tail_df``
    degrees of freedom. The first ``n_skewed`` features go through ``exp``
    (skewed, one-sided); the last ``n_constant`` are constant but for a
    spike in 1% of the frames (as energy-like features of near-silence).
    Every feature is then standardised (mean 0, variance 1), as feature
    pipelines do.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    scale_ratio : float, default=100
        Ratio of the largest to the smallest within-component spread.
    tail_df : float, default=4
        Degrees of freedom of the Student-t noise (smaller: heavier tails).
    n_skewed, n_constant : int, default=2 and 0
        Features made skewed and nearly constant.
    random_state : int, numpy Generator or None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        The component of each frame.

    Examples
    --------
    >>> X, y = make_feature_frames(500, 6, 3, random_state=0)
    >>> X.shape, bool(abs(X.std(axis=0) - 1).max() < 1e-6)
    ((500, 6), True)
    """
    n, d, k = (int(v) for v in (n_samples, n_features, n_components))
    if n < 2 or d < 1 or k < 1:
        raise InvalidParameterError("n_samples must be >= 2, n_features and n_components >= 1")
    if not (scale_ratio >= 1 and tail_df > 2):
        raise InvalidParameterError("scale_ratio must be >= 1 and tail_df > 2 (finite variance)")
    if not (0 <= n_skewed and 0 <= n_constant and n_skewed + n_constant <= d):
        raise InvalidParameterError("n_skewed and n_constant must be >= 0 with n_skewed + n_constant <= n_features")
    rng = np.random.default_rng(random_state)
    labels = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 2.0)))
    means = rng.normal(size=(k, d))
    spreads = np.exp(rng.uniform(-np.log(scale_ratio) / 2, np.log(scale_ratio) / 2, size=(k, d)))
    X = np.empty((n, d))
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        t = rng.standard_t(tail_df, size=(len(rows), d)) / np.sqrt(tail_df / (tail_df - 2))
        X[rows] = means[c] + t * spreads[c]
    if n_skewed:
        X[:, :n_skewed] = np.exp(0.5 * X[:, :n_skewed] / X[:, :n_skewed].std(axis=0))
    if n_constant:
        spikes = rng.random((n, n_constant)) < 0.01
        X[:, d - n_constant :] = np.where(spikes, 1.0 + rng.random((n, n_constant)), 0.0)
        X[0, d - n_constant :] = 1.0  # never exactly constant
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, labels
