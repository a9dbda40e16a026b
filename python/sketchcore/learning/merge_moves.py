"""Merge-and-reseed moves: two atoms on one cluster merged, the freed atom
spent where the residual is largest."""

from __future__ import annotations

import math

import numpy as np

from sketchcore.learning.atoms import AtomModel
from sketchcore.learning.steps import _new_atoms, _nnls_atoms, _refine

__all__ = ["merge_moves"]


def merge_moves(
    z: np.ndarray,
    model: AtomModel,
    theta: np.ndarray,
    alpha: np.ndarray,
    *,
    rng: np.random.Generator,
    var0: np.ndarray | None = None,
    start_pool: np.ndarray | None = None,
    n_starts: int = 64,
    max_iter: int = 300,
    max_moves: int | None = None,
    n_tries: int = 4,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge-and-reseed moves on K Gaussian atoms; returns (theta, alpha, moves accepted).

    A local optimum of splitting typically spends two atoms on one cluster
    and one atom on two overlapping clusters. A move merges the pair of
    atoms whose atoms are most correlated (moment matching: one atom where
    there were two) and spends the freed atom where the residual is largest
    (CL-OMPR step 1), then refits the weights (NNLS) and
    refines all atoms jointly; it is kept only if the residual drops by
    0.1%. Moves are batched: B disjoint pairs at once (B = K/16 at first,
    halved whenever a batch fails) down to single moves, for which the
    ``n_tries`` most correlated pairs are tried in turn. At most
    ``max_moves`` atoms are moved (default K).
    """
    k, d = theta.shape[0], model.d
    if k < 3 or not model.gaussian:
        return theta, alpha, 0
    if max_moves is None:
        max_moves = k
    lo = np.concatenate([model.lower, model.var_lower])
    hi = np.concatenate([model.upper, model.var_upper])
    resid = float(np.linalg.norm(z - alpha @ model.atoms(theta)))
    batch = max(1, k // 16)
    moved = 0
    corr = None
    iu = np.triu_indices(k, 1)
    while moved < max_moves:
        if corr is None:  # recomputed only when the atoms changed
            corr = _atom_gram(model, theta)
        pairs: list[tuple[int, int]] = []
        used: set[int] = set()
        for o in np.argsort(-corr[iu], kind="stable"):
            i, j = int(iu[0][o]), int(iu[1][o])
            if i not in used and j not in used:
                pairs.append((i, j))
                used.update((i, j))
            if len(pairs) == max(batch, n_tries):
                break
        size = min(batch, max_moves - moved)
        groups = [pairs[:size]] if size > 1 else [[p] for p in pairs[:n_tries]]
        accepted = False
        for group in groups:
            merged = [_merge(theta, alpha, i, j, d) for i, j in group]
            drop = {i for pair in group for i in pair}
            keep = [t for t in range(k) if t not in drop]
            th = np.vstack([theta[keep], np.clip(np.array([p for p, _ in merged]), lo, hi)])
            al = np.concatenate([alpha[keep], [w for _, w in merged]])
            new = _new_atoms(model, z - al @ model.atoms(th), len(group), rng, var0, start_pool, n_starts, max_iter)
            if new.shape[0] != len(group):
                continue
            th = np.vstack([th, new])
            al = _nnls_atoms(model.atoms(th), z)
            th, al, res = _refine(model, z, th, al, max(1, max_iter // 5))
            r = math.sqrt(max(float(res.fun), 0.0))  # the objective is ||z - sum alpha a||^2
            if r < (1.0 - 1e-3) * resid:
                theta, alpha, resid, corr = th, al, r, None
                moved += len(group)
                accepted = True
                break
        if not accepted:
            if batch == 1:
                break
            batch //= 2
    return theta, alpha, moved


def _atom_gram(model: AtomModel, theta: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Normalised moduli |<a_i, a_j>| / (||a_i|| ||a_j||) of the atoms' Gram
    matrix (K x K), accumulated over frequency chunks so that memory stays
    O(K chunk) rather than O(K m)."""
    k = theta.shape[0]
    g_re = np.zeros((k, k))
    g_im = np.zeros((k, k))
    m = model.xi.shape[0]
    for j0 in range(0, m, chunk):
        re, im = model.atoms_re_im(theta, columns=slice(j0, j0 + chunk))
        g_re += re @ re.T + im @ im.T
        g_im += im @ re.T - re @ im.T
    norms = np.sqrt(np.maximum(np.diag(g_re), 1e-300))
    return np.hypot(g_re, g_im) / np.outer(norms, norms)


def _merge(theta: np.ndarray, alpha: np.ndarray, i: int, j: int, d: int) -> tuple[np.ndarray, float]:
    """Moment-matched merge of Gaussian atoms i and j: (parameters, weight)."""
    w = alpha[i] + alpha[j]
    wi = alpha[i] / w if w > 0 else 0.5
    mi, mj, vi, vj = theta[i, :d], theta[j, :d], theta[i, d:], theta[j, d:]
    mean = wi * mi + (1.0 - wi) * mj
    var = wi * (vi + mi * mi) + (1.0 - wi) * (vj + mj * mj) - mean * mean
    return np.concatenate([mean, np.maximum(var, np.minimum(vi, vj))]), float(w)
