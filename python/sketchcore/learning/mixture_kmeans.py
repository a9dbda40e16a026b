"""k-means of a decoded density: Lloyd's algorithm run on a Gaussian mixture.

The k-means objective is an expectation over the data distribution,
``E ||x - c(x)||^2``. A sketch does not give the data back, but a diagonal
Gaussian mixture decoded from it is an estimate of that distribution; the
centroids that minimise the objective under the mixture estimate those of the
data. They are found by Lloyd's algorithm on a stratified Monte Carlo sample
of the mixture (each component contributes points in proportion to its
weight), started from a weighted k-means of the components' means.

On real features, whose clusters are overlapping, skewed and heavy-tailed,
this is what makes compressive k-means follow Lloyd's: the means of a K-atom
Gaussian fit are the centres of a *mixture*, which on such data sit
elsewhere than the centroids of a *partition*; a mixture with more
components than clusters describes the density finely enough for the
partition to be read from it.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

__all__ = ["kmeans_of_mixture", "stratified_mixture_sample"]


def stratified_mixture_sample(
    means: np.ndarray, variances: np.ndarray, weights: np.ndarray, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_samples`` points of a diagonal Gaussian mixture, each component
    contributing ``round(n_samples * weight)`` of them (largest remainders).

    Stratifying removes the multinomial noise of the component counts, and
    the draws of each component come in antithetic pairs ``mean +- s z``, so
    a cell that holds both points of a pair gets their exact mean: the
    centroids' Monte Carlo error is far below that of independent draws
    (on well-separated components it vanishes).
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = w.sum()
    w = w / total if total > 0 else np.full(len(w), 1.0 / len(w))
    exact = w * n_samples
    counts = np.floor(exact).astype(np.int64)
    short = n_samples - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    d = means.shape[1]
    out = np.empty((n_samples, d))
    start = 0
    for k, c in enumerate(counts):
        if c:
            half = rng.standard_normal(((int(c) + 1) // 2, d))
            draw = np.concatenate([half, -half])[: int(c)]
            out[start : start + c] = means[k] + np.sqrt(variances[k]) * draw
            start += c
    return out


def kmeans_of_mixture(
    means: np.ndarray,
    variances: np.ndarray,
    weights: np.ndarray,
    n_clusters: int,
    *,
    n_samples: int,
    seed: int,
    n_init: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Centroids minimising the expected squared distance under a diagonal mixture.

    Parameters
    ----------
    means, variances : ndarray (n_components, d)
    weights : ndarray (n_components,)
    n_clusters : int
    n_samples : int
        Size of the Monte Carlo sample (memory: ``8 n_samples d`` bytes).
    seed : int
        Seeds the sample and the k-means++ starts.
    n_init : int, default=3
        k-means++ restarts of the seeding (weighted k-means of the components'
        means); Lloyd's algorithm on the sample then starts from the best.

    Returns
    -------
    centers : ndarray (n_clusters, d), float64
    cell_weights : ndarray (n_clusters,)
        Mass of the mixture in each centroid's Voronoi cell (sums to 1).
    """
    rng = np.random.default_rng(seed)
    sample = stratified_mixture_sample(means, variances, weights, n_samples, rng)
    seed_km = int(rng.integers(0, 2**31 - 1))
    seeds = _seeds(means, weights, n_clusters, n_init, seed_km)
    if seeds is None:
        km = KMeans(n_clusters, n_init=n_init, random_state=seed_km).fit(sample)
    else:
        km = KMeans(n_clusters, init=seeds, n_init=1).fit(sample)
    cell_weights = np.bincount(km.labels_, minlength=n_clusters).astype(np.float64) / n_samples
    return np.asarray(km.cluster_centers_, dtype=np.float64), cell_weights


def _seeds(means: np.ndarray, weights: np.ndarray, n_clusters: int, n_init: int, seed: int) -> np.ndarray | None:
    """Starting centroids: weighted k-means of the components' means (the
    means themselves when there are exactly ``n_clusters``; None, i.e.
    k-means++ on the sample, when there are fewer).

    Seeding from the means (weighted by the components' weights) rather than
    by k-means++ on the sample keeps a broad component of small weight (a
    decoder's fit of noise or outliers, whose draws spread far) from
    claiming a centroid of its own.
    """
    if len(means) < n_clusters:
        return None
    if len(means) == n_clusters:
        return np.array(means, dtype=np.float64)
    km = KMeans(n_clusters, n_init=n_init, random_state=seed).fit(means, sample_weight=np.maximum(weights, 1e-12))
    return np.asarray(km.cluster_centers_, dtype=np.float64)
