"""Steps the decoders share: new atoms correlated with the residual,
non-negative least squares for the weights, joint refinement of all atoms
and weights, and the result of a run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, nnls

from sketchcore.exceptions import EmptySketchError, InvalidParameterError
from sketchcore.learning.atoms import AtomModel

__all__ = ["DecodeResult"]


@dataclass
class DecodeResult:
    """What a CL-OMPR run returns."""

    means: np.ndarray  # (K, d)
    variances: np.ndarray | None  # (K, d) for Gaussians, None for Diracs
    weights: np.ndarray  # (K,), sum 1
    residual: float  # ||z - A alpha|| / ||z||
    n_atoms_iterations: int


def _check_decode(z: np.ndarray, n_atoms: int) -> float:
    """||z||, after checking that there is something to decode into n_atoms components."""
    if n_atoms < 1:
        raise InvalidParameterError(f"the number of components must be >= 1, got {n_atoms}")
    z_norm = float(np.linalg.norm(z))
    if not z_norm > 0:
        raise EmptySketchError("the sketch is zero: nothing to decode")
    return z_norm


def _result(model: AtomModel, theta: np.ndarray, alpha: np.ndarray, r: np.ndarray, z_norm: float,
            iterations: int) -> DecodeResult:
    """The DecodeResult of atoms ``theta`` with weights ``alpha`` (normalised to sum 1)."""
    means, var = model.split(theta)
    total = alpha.sum()
    weights = alpha / total if total > 0 else np.full(alpha.shape, 1.0 / max(alpha.size, 1))
    return DecodeResult(
        means=means.copy(),
        variances=None if var is None else var.copy(),
        weights=weights,
        residual=float(np.linalg.norm(r)) / z_norm,
        n_atoms_iterations=iterations,
    )


def _nnls_atoms(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Non-negative least squares min ||z - a^T beta|| over beta >= 0 for
    complex atoms ``a`` (k, m). Large problems go through the k x k Gram
    matrix (its Cholesky factor), never the 2m x k real matrix."""
    k, m = a.shape
    if 2 * m * k <= 4_000_000:
        return nnls(_real(a).T, _real(z))[0]
    re, im = a.real, a.imag
    gram = re @ re.T + im @ im.T
    rhs = re @ z.real + im @ z.imag
    # A tiny ridge keeps the factorisation defined for (near-)duplicate atoms.
    gram[np.diag_indices(k)] += 1e-12 * max(float(np.trace(gram)) / k, 1e-300)
    chol = np.linalg.cholesky(gram)
    return nnls(chol.T, np.linalg.solve(chol, rhs), maxiter=50 * k)[0]


def _real(a: np.ndarray) -> np.ndarray:
    """Stacks real and imaginary parts: complex (..., m) -> real (..., 2m)."""
    return np.concatenate([a.real, a.imag], axis=-1)


def _refine(model: AtomModel, z: np.ndarray, theta: np.ndarray, alpha: np.ndarray, maxiter: int):
    """Joint L-BFGS-B refinement of all atoms and weights; returns (theta, alpha, result).

    The weights are optimised as beta = K alpha: the objective's gradient in
    the atom parameters carries a factor alpha ~ 1/K that the weights'
    gradient lacks, and this rescaling evens out the curvatures L-BFGS
    starts from.
    """
    k = theta.shape[0]
    n = k * model.n_params
    scale = float(max(k, 1))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        y = x.copy()
        y[n:] /= scale
        f, g = model.objective_and_grad(y, z, k)
        g[n:] /= scale
        return f, g

    x0 = np.concatenate([theta.ravel(), alpha * scale])
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=model.bounds(k) + [(0.0, None)] * k,
                   options={"maxiter": maxiter})
    return res.x[:n].reshape(k, model.n_params), res.x[n:] / scale, res


def _new_atoms(
    model: AtomModel,
    r: np.ndarray,
    count: int,
    rng: np.random.Generator,
    var0: np.ndarray | None,
    start_pool: np.ndarray | None,
    n_starts: int,
    max_iter: int,
) -> np.ndarray:
    """Up to ``count`` new atoms correlated with the residual ``r``, distinct
    from each other: candidates are scored as in CL-OMPR step 1 and tried best
    first; each is optimised (L-BFGS-B on its correlation) and kept unless its
    mean lies within about half a standard deviation (per coordinate, on
    average) of a mean already kept in this batch."""
    n_cand = max(n_starts, 4 * count) if start_pool is not None else max(8 * n_starts, 8 * count)
    cand = model.random_params(rng, n_cand, var0, start_pool)
    order = np.argsort(-model.correlation(cand, r))
    d = model.d
    kept: list[np.ndarray] = []
    bounds = model.bounds(1)
    for idx in order[: 3 * count]:
        res = minimize(model.neg_correlation_and_grad, cand[idx], args=(r,), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": max_iter})
        x = res.x
        if -res.fun <= 0:
            continue
        spread = x[d:] if model.gaussian else (var0 if var0 is not None else np.ones(d))
        if any(np.mean((x[:d] - y[:d]) ** 2 / (spread + (y[d:] if model.gaussian else spread))) < 0.25 for y in kept):
            continue
        kept.append(x)
        if len(kept) == count:
            break
    return np.array(kept).reshape(-1, model.n_params)
