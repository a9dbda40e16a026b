"""Adapting a mixture decoded from a sketch to the rows the sketch carries.

Every sketch keeps a bounded uniform sample of its rows (a mergeable
reservoir; :func:`~sketchcore.core.sketch.default_sample_capacity`). On real
audio features the sketch alone pins down the components' means and weights
far better than their per-feature variances: on MFCC frames (d = 60,
K = 10) the decoded variances are off by factors of e^-4 to e^+3 in a tenth
of the features, and replacing them by those of the data, given the decoded
components, recovers most of the gap to EM's likelihood.

Two corrections are made, each only where cross-validation on the sample
asks for it. First, per-feature variance scales shared by all components
(:func:`scale_variances`: d numbers, which ~100 rows determine even at
d = 192, where the decoded variances are off by a common factor in many
features). Then the mixture is used as the prior of a
maximum a posteriori (MAP) estimate on the sample, as speaker recognition
adapts a universal background model to a speaker's few frames (Reynolds,
Quatieri and Dunn, 2000): a component that the sample gives ``n_k``
(soft) rows moves its weight, mean and second moment a fraction
``n_k / (n_k + relevance)`` of the way from the prior to the sample's
statistics. A large relevance keeps the sketch's model; zero is EM on the
sample started from it.

The last candidate ignores the decoded mixture: EM on the sample from a
k-means start (:func:`fit_sample_mixture`). On real audio features the
decoded mixture often sits in a worse basin of the likelihood than a
k-means start, which no MAP step leaves; with the default sample (about
400 rows per component) this candidate is the one cross-validation picks
on two of five MFCC sets at d = 60, and the model is then the sample's,
not the sketch's (the estimators report it in ``adaptation_``).

What is applied is chosen by cross-validation on the sample itself, in
favour of the sketch: the decoded model is kept unless a candidate gains
at least a tenth of a nat per held-out row and one standard error, and
otherwise the candidate that trusts the decoded model most within one
standard error of the best is taken; so on data the sketch describes well
(Gaussian mixtures) it is kept unchanged.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from sketchcore.exceptions import InvalidParameterError

__all__ = [
    "ADAPTATIONS",
    "DENSITY_WEIGHTS",
    "MAP_ADAPTATIONS",
    "LLOYD_ITERATIONS",
    "MIN_GAIN",
    "MIN_SSE_GAIN",
    "REFIT",
    "RELEVANCES",
    "SAMPLE_EM_ITERATIONS",
    "Adaptation",
    "Mixture",
    "adapt",
    "choose_adaptation",
    "choose_adaptations",
    "choose_density_weight",
    "choose_relevance",
    "diagonal_log_prob",
    "fit_sample_mixture",
    "lloyd_on_rows",
    "lloyd_on_union",
    "map_adapt",
    "scale_variances",
]

#: Relevances tried by cross-validation, the sketch's own model (inf) first.
RELEVANCES: tuple[float, ...] = (np.inf, 64.0, 16.0, 4.0, 1.0)

#: Held-out gain (nats per row) below which the decoded mixture is kept. On
#: Gaussian mixtures the decoded model is already as good as EM's and the
#: cross-validated gains of adapting are noise of a few hundredths of a nat
#: (0.025 on one of the test suite's literature mixtures, 105 rows, where
#: adapting then cost 0.017 nats on held-out data); on real MFCC frames
#: (d = 60) the cross-validated gains are 0.4 to 7 nats per row.
MIN_GAIN = 0.1


class Mixture(NamedTuple):
    """A diagonal Gaussian mixture: weights (K,), means and variances (K, d)."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray


def diagonal_log_prob(mixture: Mixture, X: np.ndarray, X2: np.ndarray | None = None) -> np.ndarray:
    """log(w_k N(x_i; mu_k, diag(v_k))) for every row and component, shape (n, K).
    ``X2``: ``X * X`` when the caller has it (EM loops compute it once)."""
    w, mu, var = mixture
    prec = 1.0 / var
    sq = (X * X if X2 is None else X2) @ prec.T - 2.0 * X @ (mu * prec).T + np.sum(mu * mu * prec, axis=1)
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    return log_w - 0.5 * (X.shape[1] * np.log(2.0 * np.pi) + np.sum(np.log(var), axis=1) + sq)


def _responsibilities(log_prob: np.ndarray) -> np.ndarray:
    """Each row's posterior over the components from its joint log-probabilities
    (one exponential per entry; a row of -inf gives NaN, as exp(lp - logsumexp) does)."""
    top = log_prob.max(axis=1, keepdims=True)
    resp = np.exp(log_prob - np.where(np.isfinite(top), top, 0.0))
    resp /= resp.sum(axis=1, keepdims=True)
    return resp


def scale_variances(
    prior: Mixture,
    X: np.ndarray,
    var_bounds: tuple[np.ndarray, np.ndarray],
    n_iter: int = 10,
) -> tuple[Mixture, np.ndarray]:
    """Per-feature variance scales c (shared by all components) that maximise
    the likelihood of rows ``X`` under the mixture with variances ``c_j v_kj``
    (weights and means kept): ``n_iter`` EM iterations of

        c_j = (1/n) sum_i sum_k r_ik (x_ij - mu_kj)^2 / v_kj

    from c = 1, the variances clipped to ``var_bounds``. Returns the scaled
    mixture and c.
    """
    w, mu, v = (np.asarray(a, dtype=np.float64) for a in prior)
    lower, upper = var_bounds
    X = np.asarray(X, dtype=np.float64)
    scale = np.ones(mu.shape[1])
    current = Mixture(w, mu, v)
    if len(X) == 0:
        return current, scale
    X2 = X * X
    for _ in range(int(n_iter)):
        resp = _responsibilities(diagonal_log_prob(current, X, X2))
        # sum_k r_ik (x_ij - mu_kj)^2 / v_kj, expanded to avoid an (n, K, d) array.
        prec = 1.0 / v
        z2 = (resp.T @ X2 * prec - 2.0 * (resp.T @ X) * mu * prec + resp.sum(axis=0)[:, None] * mu * mu * prec)
        scale = np.maximum(z2.sum(axis=0) / len(X), 1e-300)
        current = Mixture(w, mu, np.clip(v * scale, lower, upper))
    return current, scale


def map_adapt(
    prior: Mixture,
    X: np.ndarray,
    relevance: float,
    var_bounds: tuple[np.ndarray, np.ndarray],
    n_iter: int = 10,
) -> Mixture:
    """MAP estimate of a diagonal mixture on rows ``X`` with ``prior`` as the
    prior (``n_iter`` EM iterations of the MAP objective, started at the prior).

    Each iteration computes the responsibilities under the current mixture,
    then, with ``n_k`` the soft count of component k and
    ``a_k = n_k / (n_k + relevance)``::

        w_k   ∝ a_k n_k / n + (1 - a_k) w0_k
        mu_k  = a_k E_k[x]   + (1 - a_k) mu0_k
        v_k   = a_k E_k[x^2] + (1 - a_k) (v0_k + mu0_k^2) - mu_k^2

    clipped to ``var_bounds``. ``relevance=inf`` returns the prior;
    ``relevance=0`` is EM on ``X`` started at it.
    """
    if not relevance >= 0:
        raise InvalidParameterError(f"relevance must be >= 0, got {relevance!r}")
    w0, mu0, v0 = (np.asarray(a, dtype=np.float64) for a in prior)
    lower, upper = var_bounds
    if np.isinf(relevance) or len(X) == 0:
        return Mixture(w0.copy(), mu0.copy(), v0.copy())
    X = np.asarray(X, dtype=np.float64)
    second0 = v0 + mu0 * mu0
    current = Mixture(w0, mu0, v0)
    d = X.shape[1]
    both = np.concatenate([X, X * X], axis=1)  # one product gives the first and second moments
    for _ in range(int(n_iter)):
        resp = _responsibilities(diagonal_log_prob(current, X, both[:, d:]))
        nk = resp.sum(axis=0)
        moments = resp.T @ both / np.maximum(nk, 1e-300)[:, None]
        first, second = moments[:, :d], moments[:, d:]
        a = nk / (nk + relevance) if relevance > 0 else (nk > 0).astype(np.float64)
        w = a * nk / len(X) + (1.0 - a) * w0
        w = w / w.sum()
        mu = a[:, None] * first + (1.0 - a[:, None]) * mu0
        var = a[:, None] * second + (1.0 - a[:, None]) * second0 - mu * mu
        current = Mixture(w, mu, np.clip(var, lower, upper))
    return current


def choose_relevance(
    prior: Mixture,
    X: np.ndarray,
    var_bounds: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    candidates: tuple[float, ...] = RELEVANCES,
    n_folds: int = 5,
    min_gain: float = MIN_GAIN,
) -> tuple[float, np.ndarray]:
    """The relevance for :func:`map_adapt`, by ``n_folds``-fold cross-validation on ``X``.

    Each candidate adapts the prior to the rows out of a fold and scores
    the held-out rows' log-likelihood. The prior is kept (inf) unless the
    best candidate beats it by at least ``min_gain`` nats per row and by
    one standard error (of the paired per-row differences); otherwise the
    candidate kept is the first of ``candidates`` (most trust in the prior
    first) whose mean held-out score is within one standard error of the
    best one's. With fewer than ``2 n_folds`` rows the prior is kept.

    Returns
    -------
    relevance : float
    scores : ndarray (len(candidates),)
        Mean held-out log-likelihood per row of each candidate (NaN when
        too few rows).
    """
    if not (candidates and np.isinf(candidates[0])):
        raise InvalidParameterError("the first candidate relevance must be inf (the prior itself)")
    chosen, scores = choose_adaptation(prior, X, var_bounds, rng, tuple(Adaptation(False, r) for r in candidates),
                                       n_folds, min_gain)
    return float(chosen.relevance), scores


class Adaptation(NamedTuple):
    """What :func:`adapt` does: scale the variances per feature, then MAP
    with ``relevance`` (inf: no MAP step); or, with ``refit``, ignore the
    decoded mixture and fit one to the rows alone (:func:`fit_sample_mixture`)."""

    scale: bool
    relevance: float
    refit: bool = False


#: The candidate that fits the sample alone (EM, relevance 0, from a k-means++ start).
REFIT = Adaptation(False, 0.0, True)

#: Adaptations tried by :func:`choose_adaptation`, in decreasing trust in
#: the decoded mixture (the first keeps it, the last ignores it).
ADAPTATIONS: tuple[Adaptation, ...] = tuple(
    Adaptation(scale, relevance) for relevance in RELEVANCES for scale in (False, True)) + (REFIT,)

#: The MAP step alone (no variance scales, no refit), in the same order.
MAP_ADAPTATIONS: tuple[Adaptation, ...] = tuple(a for a in ADAPTATIONS if not (a.scale or a.refit))

#: EM iterations of :func:`fit_sample_mixture`.
SAMPLE_EM_ITERATIONS = 100


def fit_sample_mixture(
    X: np.ndarray,
    n_components: int,
    var_bounds: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    n_iter: int = SAMPLE_EM_ITERATIONS,
) -> Mixture:
    """A diagonal mixture fitted to rows ``X`` alone, as scikit-learn's
    GaussianMixture fits one: a k-means start (scikit-learn's KMeans, one
    k-means++ initialisation; weights, means and within-cluster variances
    of its clusters), then ``n_iter`` EM iterations (:func:`map_adapt` with
    relevance 0), every variance clipped to ``var_bounds``.

    On real MFCC frames this is the candidate that cross-validation picks
    most often: the decoded mixture sits in a different, worse basin of the
    likelihood than a k-means start on 1000 rows (EM started from the
    decoded mixture stays 1.2-3.0 nats per frame below EM on all frames;
    from a k-means start, 0.7-1.3).
    """
    X = np.asarray(X, dtype=np.float64)
    k = int(n_components)
    if len(X) < k:
        raise InvalidParameterError(f"cannot fit {k} components to {len(X)} rows")
    lower, upper = var_bounds
    with warnings.catch_warnings():
        # Fewer distinct rows than components: the cross-validation judges the result.
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = KMeans(k, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit(X).labels_
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    safe = np.maximum(counts, 1.0)[:, None]
    means = np.zeros((k, X.shape[1]))
    np.add.at(means, labels, X)
    means /= safe
    second = np.zeros_like(means)
    np.add.at(second, labels, X * X)
    variances = np.clip(second / safe - means * means, lower, upper)
    weights = np.maximum(counts, 1e-3) / np.maximum(counts, 1e-3).sum()
    return map_adapt(Mixture(weights, means, variances), X, 0.0, var_bounds, n_iter=n_iter)


def adapt(prior: Mixture, X: np.ndarray, adaptation: Adaptation,
          var_bounds: tuple[np.ndarray, np.ndarray],
          rng: np.random.Generator | None = None) -> tuple[Mixture, np.ndarray]:
    """The mixture after ``adaptation`` on rows ``X``, and the per-feature
    variance scales applied (ones when none). ``rng`` seeds the k-means
    start of a refit (default: seed 0)."""
    scale = np.ones(np.shape(prior.means)[1])
    if adaptation.refit:
        gen = np.random.default_rng(0) if rng is None else rng
        return fit_sample_mixture(X, len(prior.weights), var_bounds, gen), scale
    if adaptation.scale:
        prior, scale = scale_variances(prior, X, var_bounds)
    return map_adapt(prior, X, adaptation.relevance, var_bounds), scale


def choose_adaptation(
    prior: Mixture,
    X: np.ndarray,
    var_bounds: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    candidates: tuple[Adaptation, ...] = ADAPTATIONS,
    n_folds: int = 5,
    min_gain: float = MIN_GAIN,
) -> tuple[Adaptation, np.ndarray]:
    """The adaptation for :func:`adapt`, by ``n_folds``-fold cross-validation
    on ``X``, with the rule of :func:`choose_relevance`: the decoded mixture
    (the first candidate) is kept unless the best candidate beats it by
    ``min_gain`` nats per held-out row and one standard error; otherwise the
    first candidate within one standard error of the best is taken. A refit
    is tried only when every training fold has at least 2 rows per
    component (its score is NaN otherwise)."""
    return choose_adaptations([prior], X, var_bounds, rng, candidates, n_folds, min_gain)[0]


def choose_adaptations(
    priors: list[Mixture],
    X: np.ndarray,
    var_bounds: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    candidates: tuple[Adaptation, ...] = ADAPTATIONS,
    n_folds: int = 5,
    min_gain: float = MIN_GAIN,
) -> list[tuple[Adaptation, np.ndarray]]:
    """:func:`choose_adaptation` for several priors with the same number of
    components (the mixtures of several decoders), on the same folds: their
    scores compare row for row, and the refit, which ignores the prior, is
    fitted once per fold. Each prior's result, and ``rng``'s state
    afterwards, are those of :func:`choose_adaptation` on that prior alone."""
    if not (candidates and candidates[0] == Adaptation(False, np.inf)):
        raise InvalidParameterError("the first candidate must keep the prior: Adaptation(False, inf)")
    n = len(X)
    if n < 2 * n_folds:
        return [(candidates[0], np.full(len(candidates), np.nan)) for _ in priors]
    k = len(priors[0].weights)
    if any(len(p.weights) != k for p in priors):
        raise InvalidParameterError("the priors must have the same number of components")
    X = np.asarray(X, dtype=np.float64)
    folds = np.array_split(rng.permutation(n), n_folds)
    tried = [i for i, c in enumerate(candidates) if not c.refit or n - len(folds[0]) >= 2 * k]
    held_out = np.full((len(priors), len(candidates), n), np.nan)
    for fold in folds:
        train = np.ones(n, dtype=bool)
        train[fold] = False
        refit = None
        for j, prior in enumerate(priors):
            # The scaled prior of this fold, computed once for all relevances.
            starts = {False: prior}
            if any(c.scale for c in candidates):
                starts[True] = scale_variances(prior, X[train], var_bounds)[0]
            for i in tried:
                candidate = candidates[i]
                if candidate.refit:
                    if refit is None:
                        refit = fit_sample_mixture(X[train], k, var_bounds, rng)
                    fitted = refit
                else:
                    fitted = map_adapt(starts[candidate.scale], X[train], candidate.relevance, var_bounds)
                held_out[j, i, fold] = logsumexp(diagonal_log_prob(fitted, X[fold]), axis=1)
    return [(candidates[tried[_one_standard_error(h[tried], min_gain)]], h.mean(axis=1)) for h in held_out]


#: Held-out SSE gain, as a fraction of the density model's centroids' SSE,
#: below which :func:`choose_density_weight` keeps them.
MIN_SSE_GAIN = 0.002

#: Iterations of :func:`lloyd_on_union`.
LLOYD_ITERATIONS = 100

#: Weights of the density model's draws, relative to all the stored rows
#: together, that :func:`choose_density_weight` tries: inf keeps the density
#: model's centroids, 0 is Lloyd's algorithm on the rows alone.
DENSITY_WEIGHTS: tuple[float, ...] = (np.inf, 2.0, 1.0, 0.5, 0.25, 0.0)


def lloyd_on_union(
    centers: np.ndarray,
    rows: np.ndarray,
    draws: np.ndarray | None,
    density_weight: float,
    n_iter: int = LLOYD_ITERATIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd's algorithm started at ``centers`` (scikit-learn's
    KMeans with that initialisation) on the stored ``rows``, one unit of
    weight each, and the ``draws`` of a density model, which together weigh
    ``density_weight`` times as much as all the rows (0 or ``draws=None``:
    the rows alone; inf: the draws alone).

    Returns
    -------
    centers : ndarray (k, d), float64
    fractions : ndarray (k,)
        Fraction of the weight in each cluster.
    """
    centers = np.asarray(centers, dtype=np.float64)
    k = len(centers)
    rows = np.asarray(rows, dtype=np.float64)
    if draws is None or density_weight == 0:
        X, w = rows, np.ones(len(rows))
    elif np.isinf(density_weight):
        X, w = np.asarray(draws, dtype=np.float64), np.ones(len(draws))
    else:
        X = np.concatenate([rows, np.asarray(draws, dtype=np.float64)])
        w = np.concatenate([np.ones(len(rows)), np.full(len(draws), density_weight * len(rows) / len(draws))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # as in fit_sample_mixture
        km = KMeans(k, init=centers, n_init=1, max_iter=int(n_iter), random_state=0)
        km.fit(X, sample_weight=w)
    return km.cluster_centers_, np.bincount(km.labels_, weights=w, minlength=k) / w.sum()


def lloyd_on_rows(centers: np.ndarray, X: np.ndarray, n_iter: int = LLOYD_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm on rows ``X`` started at ``centers``: the centroids
    and the fraction of the rows in each cluster."""
    return lloyd_on_union(centers, X, None, 0.0, n_iter)


def _nearest_sq_distance(centers: np.ndarray, X: np.ndarray) -> np.ndarray:
    d2 = (X * X).sum(axis=1)[:, None] - 2.0 * X @ centers.T + (centers * centers).sum(axis=1)[None, :]
    return np.maximum(d2.min(axis=1), 0.0)


def choose_density_weight(
    centers: np.ndarray,
    rows: np.ndarray,
    draws: np.ndarray | None,
    rng: np.random.Generator,
    n_folds: int = 5,
    min_gain: float = MIN_SSE_GAIN,
    weights: tuple[float, ...] = DENSITY_WEIGHTS,
) -> tuple[float, np.ndarray]:
    """How much the stored rows should move k-means centroids found on a
    density model, by ``n_folds``-fold cross-validation on the rows.

    For each weight in ``weights`` (see :func:`lloyd_on_union`; only inf
    and 0 when ``draws`` is None) and each fold, Lloyd's algorithm runs from
    ``centers`` on the rows out of the fold and the draws, and the held-out
    rows' squared distance to the nearest centroid is measured (inf: to
    ``centers`` themselves). The weight with the least mean held-out
    distance is chosen if it gains at least ``min_gain`` of inf's mean and
    one standard error of the paired per-row differences; otherwise inf
    (the centers are kept). Inf also when a training fold has fewer than 2
    rows per centroid.

    Why: on real audio features the density model decoded from a sketch and
    a sample of ~400 rows per cluster err in different ways (the model's
    diagonal components misdescribe the clusters' shapes, the sample's
    centroids carry its sampling noise); Lloyd's algorithm on both can lower
    the SSE below either's.

    Returns
    -------
    weight : float
    scores : ndarray (len(weights),)
        Mean held-out squared distance for each weight (NaN: not tried).
    """
    if np.inf not in weights:
        raise InvalidParameterError("the weights must include inf (keep the centers)")
    centers = np.asarray(centers, dtype=np.float64)
    n, k = len(rows), len(centers)
    scores = np.full(len(weights), np.nan)
    folds = np.array_split(rng.permutation(n), n_folds) if n >= 2 * n_folds else []
    if not folds or n - len(folds[0]) < 2 * k:
        return np.inf, scores
    tried = [i for i, w in enumerate(weights) if draws is not None or w in (0, np.inf)]
    rows = np.asarray(rows, dtype=np.float64)
    held_out = np.full((len(weights), n), np.nan)
    for fold in folds:
        train = np.ones(n, dtype=bool)
        train[fold] = False
        for i in tried:
            found = centers if np.isinf(weights[i]) else lloyd_on_union(centers, rows[train], draws, weights[i])[0]
            held_out[i, fold] = _nearest_sq_distance(found, rows[fold])
    scores[tried] = held_out[tried].mean(axis=1)
    keep = weights.index(np.inf)
    best = tried[int(np.argmin(scores[tried]))]
    gain = scores[keep] - scores[best]
    standard_error = float(np.std(held_out[keep] - held_out[best])) / np.sqrt(n)
    if best != keep and gain >= max(min_gain * scores[keep], standard_error):
        return float(weights[best]), scores
    return np.inf, scores


def _one_standard_error(held_out: np.ndarray, min_gain: float) -> int:
    """Index of the candidate kept (see :func:`choose_relevance`) from the
    held-out log-likelihoods, shape (candidates, rows), candidate 0 the prior."""
    n = held_out.shape[1]
    scores = held_out.mean(axis=1)

    def standard_error(i: int, j: int) -> float:
        return float(np.std(held_out[i] - held_out[j])) / np.sqrt(n)

    best = int(np.argmax(scores))
    if best == 0 or not scores[best] - scores[0] >= max(min_gain, standard_error(best, 0)):
        return 0
    for i in range(1, len(scores)):
        if scores[i] >= scores[best] - standard_error(best, i):
            return i
    return best  # pragma: no cover (i == best always qualifies)
