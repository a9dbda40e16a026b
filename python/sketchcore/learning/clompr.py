"""CL-OMPR: decoding mixtures of Diracs (k-means) or diagonal Gaussians from a sketch.

Given a sketch z (in C^m) made with frequencies Omega and dither xi, CL-OMPR
(compressive learning orthogonal matching pursuit with replacement) finds K
atoms a(theta_k) and weights alpha >= 0 minimising ``||z - sum_k alpha_k a(theta_k)||``:

1. add the atom most correlated with the residual (L-BFGS-B from the best of
   a batch of random starts in the data box);
2. beyond K atoms, keep the K largest of a non-negative least-squares fit on
   the normalised atoms (hard thresholding);
3. non-negative least squares for the weights;
4. joint refinement of all atoms and weights (L-BFGS-B, analytic gradients);

for 2K iterations. Several replicates are run and the one with the smallest
residual kept. Cost is independent of the number of samples: O(K^2 m d) per
replicate.

The atoms are those of :mod:`sketchcore.learning.atoms`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from sketchcore.learning.atoms import AtomModel
from sketchcore.learning.steps import DecodeResult, _check_decode, _nnls_atoms, _refine, _result

__all__ = ["clompr"]

#: Most L-BFGS-B iterations of a new atom's search (step 1). The joint
#: refinement moves it afterwards, so the search only has to reach a basin:
#: at d = 60 the searches ran to 300 iterations and took half the decode
#: time; capped at 120, the decode of K = 10 on real MFCC frames took 3.1-3.4
#: s instead of 4.2-4.7 and the decoded mixtures' held-out likelihood was as
#: good or better (``examples/benchmark_real_audio.py``, docs/performance).
ATOM_SEARCH_MAX_ITER = 120


def clompr(
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
    init: tuple[np.ndarray, np.ndarray] | None = None,
    n_iterations: int | None = None,
) -> DecodeResult:
    """One CL-OMPR replicate (see the module docstring).

    Parameters
    ----------
    z : complex ndarray (m,)
        The normalised sketch.
    model : AtomModel
    n_atoms : int
        K.
    rng : numpy Generator
        Random starts.
    var0 : ndarray (d,), optional
        Initial variance of new Gaussian atoms.
    start_pool : ndarray (n, d), optional
        Points to draw the random starts of new atoms from (a small sample of
        the data when it is at hand); default: uniform in the box. In high
        dimension uniform starts rarely correlate with the residual.
    n_starts : int
        Random candidates evaluated at step 1; L-BFGS-B starts from the best.
    max_iter : int
        L-BFGS-B iterations per optimisation (a new atom's search stops at
        ``min(max_iter, ATOM_SEARCH_MAX_ITER)`` = 120 by default).
    callback : callable (iteration, relative residual), optional
    init : (theta, alpha), optional
        Start from these atoms (K x n_params) and weights instead of none.
    n_iterations : int, optional
        Greedy iterations (default 2K, or 1 when K = 1).
    """
    z_norm = _check_decode(z, n_atoms)
    k_max = n_atoms
    theta = np.empty((0, model.n_params))
    alpha = np.empty(0)
    r = z.copy()
    if init is not None:
        theta, alpha = np.asarray(init[0], dtype=np.float64), np.asarray(init[1], dtype=np.float64)
        r = z - alpha @ model.atoms(theta)
    atom_bounds = model.bounds(1)
    opts = {"maxiter": min(max_iter, ATOM_SEARCH_MAX_ITER)}
    if n_iterations is None:
        n_iterations = 2 * k_max if k_max > 1 else 1
    # With one atom, one step plus refinement is the whole algorithm.
    for it in range(n_iterations):
        # 1. New atom: best of random candidates, then L-BFGS-B.
        # Without sample points, uniform starts in the box are scored 8x more
        # widely (still cheap: one K x m evaluation per candidate).
        n_cand = n_starts if start_pool is not None else 8 * n_starts
        cand = model.random_params(rng, n_cand, var0, start_pool)
        start = cand[int(np.argmax(model.correlation(cand, r)))]
        res = minimize(model.neg_correlation_and_grad, start, args=(r,), jac=True, method="L-BFGS-B",
                       bounds=atom_bounds, options=opts)
        theta = np.vstack([theta, res.x])
        # 2. Hard thresholding beyond K atoms.
        a = model.atoms(theta)
        if theta.shape[0] > k_max:
            norms = np.linalg.norm(a, axis=1)
            beta = _nnls_atoms(a / norms[:, None], z)
            keep = np.sort(np.argsort(beta)[-k_max:])
            theta, a = theta[keep], a[keep]
        # 3. Weights by non-negative least squares.
        alpha = _nnls_atoms(a, z)
        # 4. Joint refinement.
        # Intermediate refinements only need to move atoms near a basin; the
        # last one runs to convergence.
        last = it == n_iterations - 1
        theta, alpha, _ = _refine(model, z, theta, alpha, max_iter if last else max(1, max_iter // 5))
        a = model.atoms(theta)
        r = z - alpha @ a
        if callback is not None:
            callback(it, float(np.linalg.norm(r)) / z_norm)
    return _result(model, theta, alpha, r, z_norm, n_iterations)
