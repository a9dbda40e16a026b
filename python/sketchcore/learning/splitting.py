"""Compressive hierarchical splitting of Gaussian atoms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sketchcore.exceptions import InvalidParameterError
from sketchcore.learning.atoms import AtomModel
from sketchcore.learning.batch import _batch_rounds
from sketchcore.learning.clompr import clompr
from sketchcore.learning.merge_moves import merge_moves
from sketchcore.learning.steps import DecodeResult, _check_decode, _nnls_atoms, _refine, _result

__all__ = ["split_decode"]


def split_decode(
    z: np.ndarray,
    model: AtomModel,
    n_atoms: int,
    *,
    rng: np.random.Generator,
    var0: np.ndarray | None = None,
    start_pool: np.ndarray | None = None,
    n_starts: int = 64,
    max_iter: int = 300,
    callback: Callable[[int, float], None] | None = None,
    n_polish: int | None = None,
) -> DecodeResult:
    """Compressive hierarchical splitting (Gaussian atoms): O(m d K log K).

    Start from the best single atom; then, level by level, split every atom
    (the heaviest by NNLS weight first when fewer splits remain than atoms;
    atoms NNLS gives no weight are dropped) in two and refit the weights by
    NNLS; once K atoms are in, refine all of them jointly against the sketch,
    run ``n_polish`` batched replacement rounds (as in
    :func:`~sketchcore.learning.batch.batch_clompr`, default
    ceil(log2 K) + 2), then merge moves
    (:func:`~sketchcore.learning.merge_moves.merge_moves`: two
    atoms on one cluster merged, the freed atom spent where the residual is
    largest, kept when the residual drops), which repair the local optima
    splitting is prone to on overlapping clusters.

    How an atom splits: when sample points are at hand (``start_pool``: the
    sketch's uniform sample, as for CL-OMPR's start points), the points the
    current mixture assigns to it are cut in two by 2-means (started from
    the principal axis, randomly tilted so that replicates explore different
    splits) and the children start at the two groups' means and variances;
    otherwise (or with fewer than 4 points) at mean +- one standard
    deviation along its coordinate of largest variance, that variance
    quartered.

    Unlike the published algorithm, which refines jointly at every level,
    splits are proposed level by level and the atoms refined once all K are
    in: a coarse atom spanning several clusters is nearly invisible at
    frequencies fit for one cluster, so refining it moves it between clusters.
    """
    if not model.gaussian:
        raise InvalidParameterError("hierarchical splitting needs Gaussian atoms")
    z_norm = _check_decode(z, n_atoms)
    d = model.d
    one = clompr(z, model, 1, rng=rng, var0=var0, start_pool=start_pool, n_starts=n_starts, max_iter=max_iter)
    assert one.variances is not None  # Gaussian atoms
    theta = np.hstack([one.means, one.variances])
    alpha = _nnls_atoms(model.atoms(theta), z)
    level = 0
    lo = np.concatenate([model.lower, model.var_lower])
    hi = np.concatenate([model.upper, model.var_upper])
    pool = None if start_pool is None or len(start_pool) < 4 else np.asarray(start_pool, dtype=np.float64)
    max_levels = 3 * int(np.ceil(np.log2(max(n_atoms, 2)))) + 5
    while theta.shape[0] < n_atoms and level < max_levels:
        # Atoms NNLS/refinement gave (almost) no weight are dropped: the
        # heavy ones are split instead, so no component is wasted.
        alive = alpha > 1e-3 * alpha.max() if alpha.size and alpha.max() > 0 else np.ones(alpha.size, bool)
        theta, alpha = theta[alive], alpha[alive]
        k = theta.shape[0]
        n_split = min(k, n_atoms - k)
        order = np.argsort(-alpha)[:n_split]
        owner = _assign(pool, theta, alpha, d) if pool is not None else None
        children = []
        for i in order:
            guided = None
            if pool is not None and owner is not None and np.count_nonzero(owner == i) >= 4:
                guided = _two_means(pool[owner == i], rng=rng, jitter=0.5)
            if guided is not None:
                means, variances = guided
                # Points understate the spread of small groups; keep at least
                # a quarter of the parent's variance.
                variances = np.maximum(variances, theta[i, d:] / 4.0)
                for c in range(2):
                    children.append(np.clip(np.concatenate([means[c], variances[c]]), lo, hi))
                continue
            mean, var = theta[i, :d].copy(), theta[i, d:].copy()
            axis = int(np.argmax(var))
            step = np.sqrt(var[axis])
            var[axis] /= 4.0
            for sign in (-1.0, 1.0):
                child = np.concatenate([mean, var])
                child[axis] += sign * step
                children.append(np.clip(child, lo, hi))
        keep = np.setdiff1d(np.arange(k), order)
        theta = np.vstack([theta[keep], np.array(children)])
        a = model.atoms(theta)
        alpha = _nnls_atoms(a, z)
        if callback is not None:
            callback(level, float(np.linalg.norm(z - alpha @ a)) / z_norm)
        level += 1
    # One joint refinement of all K atoms, then batched replacement rounds.
    theta, alpha, _ = _refine(model, z, theta, alpha, max_iter)
    # Replacement rounds (batched CL-OMPR step 1 + hard thresholding) repair poor splits.
    theta, alpha, r, rounds = _batch_rounds(z, model, n_atoms, rng=rng, var0=var0, start_pool=start_pool,
                                            n_starts=n_starts, max_iter=max_iter, callback=None,
                                            n_replace=n_polish, init=(theta, alpha))
    theta, alpha, moves = merge_moves(z, model, theta, alpha, rng=rng, var0=var0, start_pool=start_pool,
                                      n_starts=n_starts, max_iter=max_iter)
    if moves:
        theta, alpha, _ = _refine(model, z, theta, alpha, max_iter)
        r = z - alpha @ model.atoms(theta)
    return _result(model, theta, alpha, r, z_norm, rounds + level + moves)


def _two_means(points: np.ndarray, n_iter: int = 8, rng: np.random.Generator | None = None,
               jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Lloyd's 2-means on a few points, started by cutting along their
    principal axis; returns the two groups' means and variances (2 x d each),
    or None when the points do not split."""
    center = points.mean(axis=0)
    centered = points - center
    # Principal axis by power iteration (d is small; no SVD of a tall matrix).
    axis = centered[np.argmax(np.einsum("ij,ij->i", centered, centered))].copy()
    for _ in range(10):
        axis = centered.T @ (centered @ axis)
        norm = np.linalg.norm(axis)
        if not norm > 0:
            return None
        axis /= norm
    if rng is not None and jitter > 0:
        # A perturbed cut: replicates then explore different splits.
        noise = rng.standard_normal(axis.size)
        axis = axis + jitter * noise / np.linalg.norm(noise)
    side = centered @ axis > 0
    for _ in range(n_iter):
        if side.all() or not side.any():
            return None
        c1, c0 = points[side].mean(axis=0), points[~side].mean(axis=0)
        new = np.einsum("ij,ij->i", points - c1, points - c1) < np.einsum("ij,ij->i", points - c0, points - c0)
        if np.array_equal(new, side):
            break
        side = new
    if side.all() or not side.any():
        return None
    groups = (points[side], points[~side])
    means = np.array([g.mean(axis=0) for g in groups])
    variances = np.array([g.var(axis=0) if len(g) > 1 else np.zeros(points.shape[1]) for g in groups])
    return means, variances


def _assign(pool: np.ndarray, theta: np.ndarray, alpha: np.ndarray, d: int) -> np.ndarray:
    """Most likely component of each pool point under the current diagonal mixture."""
    means, var = theta[:, :d], theta[:, d:]
    log_w = np.log(np.maximum(alpha, 1e-300))
    ll = log_w[None, :] - 0.5 * (
        np.sum(np.log(var), axis=1)[None, :]
        + ((pool[:, None, :] - means[None, :, :]) ** 2 / var[None, :, :]).sum(axis=2)
    )
    return np.argmax(ll, axis=1)
