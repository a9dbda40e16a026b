"""CL-OMPR with atoms added in batches that double (and batched replacement rounds)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sketchcore.learning.atoms import AtomModel
from sketchcore.learning.steps import DecodeResult, _check_decode, _new_atoms, _nnls_atoms, _refine, _result

__all__ = ["batch_clompr"]


def batch_clompr(
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
    n_replace: int | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> DecodeResult:
    """CL-OMPR adding atoms in batches that double: O(m d K log K) refinements.

    Round t adds min(k, K - k) atoms at once (k atoms so far: 1, 1, 2, 4, ...
    like hierarchical splitting), each found as in CL-OMPR step 1 against
    the current residual and kept only if distinct from the others of its
    batch (:func:`_new_atoms`); then NNLS weights and a joint refinement of
    all atoms. Once K atoms are in, up to ``n_replace`` rounds (default
    ceil(log2 K) + 2) add K/8 atoms each and keep the K that NNLS weighs
    most (CL-OMPR's replacement step, batched), stopping early after two
    rounds without a 0.1% drop of the residual; the best K-atom solution
    is refined to convergence. The K-independent number of
    joint refinements is what makes large K affordable: CL-OMPR refines 2K
    times. ``init=(theta, alpha)`` starts from given atoms (used by
    :func:`split_decode` for its replacement rounds).
    """
    z_norm = _check_decode(z, n_atoms)
    theta, alpha, r, rounds = _batch_rounds(z, model, n_atoms, rng=rng, var0=var0, start_pool=start_pool,
                                            n_starts=n_starts, max_iter=max_iter, callback=callback,
                                            n_replace=n_replace, init=init)
    return _result(model, theta, alpha, r, z_norm, rounds)


def _batch_rounds(z, model, n_atoms, *, rng, var0, start_pool, n_starts, max_iter, callback, n_replace, init):
    """The rounds of :func:`batch_clompr`; returns (theta, alpha, residual vector, rounds)
    with the weights unnormalised."""
    z_norm = float(np.linalg.norm(z))
    if n_replace is None:
        n_replace = int(np.ceil(np.log2(max(n_atoms, 2)))) + 2 if n_atoms > 1 else 0
    theta = np.empty((0, model.n_params))
    alpha = np.empty(0)
    r = z.copy()
    if init is not None:
        theta, alpha = np.asarray(init[0], dtype=np.float64), np.asarray(init[1], dtype=np.float64)
        r = z - alpha @ model.atoms(theta)
    rounds = 0
    replaced = 0
    best: tuple[float, np.ndarray, np.ndarray] | None = None  # (residual, theta, alpha) with K atoms
    stale = 0
    while True:
        k = theta.shape[0]
        if k < n_atoms:
            count = min(n_atoms - k, max(1, k))
        elif replaced < n_replace and stale < 2:
            count = max(1, n_atoms // 8)
            replaced += 1
        else:
            break
        new = _new_atoms(model, r, count, rng, var0, start_pool, n_starts, max_iter)
        if new.shape[0] == 0:
            break  # no new atom (also while k < K): another round would find none either
        theta = np.vstack([theta, new])
        a = model.atoms(theta)
        if theta.shape[0] > n_atoms:
            norms = np.linalg.norm(a, axis=1)
            beta = _nnls_atoms(a / norms[:, None], z)
            keep = np.sort(np.argsort(beta)[-n_atoms:])
            theta, a = theta[keep], a[keep]
        alpha = _nnls_atoms(a, z)
        k = theta.shape[0]
        # Intermediate refinements only move atoms near a basin (warm starts:
        # every round starts from the previous atoms); the best K-atom
        # solution gets a full refinement at the end.
        theta, alpha, res = _refine(model, z, theta, alpha, max(1, max_iter // 5))
        r = z - alpha @ model.atoms(theta)
        rounds += 1

        resid = float(np.linalg.norm(r))
        if callback is not None:
            callback(rounds - 1, resid / z_norm)
        if k >= n_atoms:
            # Early stopping on the residual: two rounds without a 0.1% gain.
            if best is None or resid < (1.0 - 1e-3) * best[0]:
                stale = 0
            else:
                stale += 1
            if best is None or resid < best[0]:
                best = (resid, theta.copy(), alpha.copy())
    if best is not None:
        theta, alpha = best[1], best[2]
    k = theta.shape[0]
    if k:
        theta, alpha, res = _refine(model, z, theta, alpha, max_iter)
        r = z - alpha @ model.atoms(theta)
    return theta, alpha, r, rounds
