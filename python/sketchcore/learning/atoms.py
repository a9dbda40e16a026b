"""Atoms of an operator: the sketches of a Dirac or of a diagonal Gaussian.

Atoms (``h = 4/pi`` for quantized sketches, the first harmonic of the
quantizer, else 1):

* Dirac at c: ``a_j = h exp(i (omega_j . c + xi_j))``.
* Gaussian (mu, diag(s2)): ``a_j = h exp(i (omega_j . mu + xi_j) - 0.5 sum_l omega_lj^2 s2_l)``.

:class:`AtomModel` evaluates them, their correlation with a residual and the
decoders' joint objective with the Rust atom kernels of ``sketchcore._core``
(NumPy references alongside): the dense kernels read Omega (d x m), the
structured ones generate it group by group, and frequencies with few
non-zero coordinates (``kind="sparse"`` operators) go to the sparse kernels,
which read only the (coordinate, value) pairs: O(m s) instead of O(m d).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sketchcore import _core
from sketchcore.core.operator import sparse_coordinates

__all__ = ["AtomModel", "BLAS_SINGLE_ATOM_ABOVE_DIM"]


#: Dense operators in more dimensions than this: single-atom correlation
#: gradients go through NumPy/BLAS (see AtomModel.neg_correlation_and_grad).
BLAS_SINGLE_ATOM_ABOVE_DIM = 128


#: Frequencies with at most this fraction of non-zero coordinates go to the
#: sparse kernels (below it they read less than the dense kernels).
SPARSE_KERNELS_BELOW_FRACTION = 0.25


def _sparse_frequencies(omega: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`~sketchcore.core.operator.sparse_coordinates` of ``omega`` when
    its frequencies have at most ``SPARSE_KERNELS_BELOW_FRACTION * d``
    non-zero coordinates each, else None."""
    d, m = omega.shape
    if d < 4 or m == 0:
        return None
    if int(np.count_nonzero(omega, axis=0).max()) > SPARSE_KERNELS_BELOW_FRACTION * d:
        return None
    return sparse_coordinates(omega)


class AtomModel:
    """Atoms of one operator: Diracs (``gaussian=False``) or diagonal Gaussians.

    Parameters
    ----------
    operator : SketchOperator
    gaussian : bool
    lower, upper : ndarray (d,)
        Box for the means (the data box of the sketch).
    var_bounds : (ndarray, ndarray), optional
        Per-feature bounds of the variances (Gaussians only).
    """

    def __init__(self, operator, gaussian: bool, lower, upper, var_bounds=None) -> None:
        self.op = operator
        # Structured operators (also seen from standardised coordinates): the
        # kernels generate their frequencies one group at a time from the
        # signs and scales (times std per dimension); Omega is not materialised.
        kind = getattr(operator, "kind", "dense")
        self._structured_base = operator if kind == "structured" else None
        self._row_scales = None
        if kind == "standardized" and operator.base.kind == "structured":
            self._structured_base, self._row_scales = operator.base, operator.std
        self.structured = self._structured_base is not None
        # Frequencies with few non-zero coordinates (sparse operators, also
        # seen from standardised coordinates) go to the sparse kernels: O(s)
        # instead of O(d) work and memory per frequency.
        self._sparse = None if self.structured else _sparse_frequencies(self.omega)
        self.xi = operator.dither
        self.gain = 4.0 / math.pi if operator.quantize else 1.0
        self.gaussian = gaussian
        self.d = operator.dim
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        if gaussian:
            self.var_lower, self.var_upper = (np.asarray(v, dtype=np.float64) for v in var_bounds)
        self.n_params = 2 * self.d if gaussian else self.d

    # The explicit matrices serve the dense kernels and the NumPy references
    # (for a structured operator they are materialised on first use only).
    @property
    def omega(self) -> np.ndarray:
        """Frequencies Omega (d, m)."""
        return self.op.frequencies

    @property
    def omega2(self) -> np.ndarray:
        """Squared frequencies (d, m)."""
        return self.op.squared_frequencies

    # -- atoms ---------------------------------------------------------------

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(means, variances) from stacked parameters (K, n_params)."""
        theta = theta.reshape(-1, self.n_params)
        if self.gaussian:
            return theta[:, : self.d], theta[:, self.d :]
        return theta, None

    def _kernel_arrays(
        self, theta: np.ndarray, columns: slice = slice(None)
    ) -> tuple[tuple[Any, np.ndarray, np.ndarray], dict[str, Any]]:
        """Positional (frequencies, dither, means) and keyword arguments of the
        Rust atom kernels for ``theta`` at the frequencies ``columns``."""
        means, var = self.split(np.asarray(theta, dtype=np.float64))
        kwargs: dict[str, Any] = {"gain": self.gain}
        frequencies: Any
        if self._sparse is not None:
            index, value = self._sparse
            frequencies = (index[columns], value[columns])
        elif self._structured_base is not None:
            base = self._structured_base
            start = columns.indices(self.xi.shape[0])[0]
            frequencies = (base.signs, base.scales[columns], start, self._row_scales)
        else:
            frequencies = self.omega[:, columns]
            if var is not None:
                kwargs["omega_sq"] = self.omega2[:, columns]
        if var is not None:
            kwargs["variances"] = np.ascontiguousarray(var)
        return (frequencies, self.xi[columns], np.ascontiguousarray(means)), kwargs

    def atoms_re_im(self, theta: np.ndarray, columns: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Real and imaginary parts (K, m) of the atoms of ``theta`` (K, n_params),
        at the frequencies ``columns`` (a slice with step 1; default all).

        One fused, multi-threaded pass of the Rust kernel (float64 SIMD
        sin/cos and exp; absolute error below 1e-15 per coordinate).
        """
        args, kwargs = self._kernel_arrays(theta, columns)
        if self._sparse is not None:
            (index, value), xi, means = args
            return _core.sparse_atoms(index, value, xi, means, **kwargs)
        return _core.atoms(*args, **kwargs)

    def atoms(self, theta: np.ndarray) -> np.ndarray:
        """Complex atoms (K, m)."""
        re, im = self.atoms_re_im(theta)
        return re + 1j * im

    def atoms_reference(self, theta: np.ndarray) -> np.ndarray:
        """NumPy reference of :meth:`atoms` (complex exponential, float64)."""
        means, var = self.split(np.asarray(theta, dtype=np.float64))
        a = self.gain * np.exp(1j * (means @ self.omega + self.xi))
        if var is not None:
            a = a * np.exp(-0.5 * (var @ self.omega2))
        return a

    def bounds(self, k: int) -> list[tuple[float, float]]:
        per = list(zip(self.lower, self.upper, strict=True))
        if self.gaussian:
            per += list(zip(self.var_lower, self.var_upper, strict=True))
        return per * k

    def random_params(
        self, rng: np.random.Generator, count: int, var0: np.ndarray | None, pool: np.ndarray | None = None
    ) -> np.ndarray:
        """Random starts: means drawn from ``pool`` (sample points, when
        available) or uniform in the box; variances at ``var0``."""
        if pool is not None and len(pool):
            means = pool[rng.integers(len(pool), size=count)]
        else:
            means = rng.uniform(self.lower, self.upper, size=(count, self.d))
        if not self.gaussian:
            return means
        assert var0 is not None, "Gaussian atoms need an initial variance"
        return np.hstack([means, np.broadcast_to(var0, (count, self.d))])

    # -- step 1: the atom most correlated with the residual -------------------

    def correlation(self, theta: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Re<a/||a||, r> for each row of theta (one pass of the Rust kernel,
        no K x m atoms formed)."""
        args, kwargs = self._kernel_arrays(theta)
        inner, norm_sq, *_ = self._correlation(args, r, kwargs)
        return inner / np.sqrt(norm_sq)

    def _correlation(self, args: tuple, r: np.ndarray, kwargs: dict[str, Any]) -> tuple:
        """The correlation kernel for the frequencies of ``args``."""
        r_re, r_im = np.ascontiguousarray(r.real), np.ascontiguousarray(r.imag)
        if self._sparse is not None:
            (index, value), xi, means = args
            return _core.sparse_atom_correlation(index, value, xi, means, r_re, r_im, **kwargs)
        frequencies, xi, means = args
        return _core.atom_correlation(frequencies, xi, means, r_re, r_im, **kwargs)

    def neg_correlation_and_grad(self, theta: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray]:
        """-Re<a/||a||, r> for one atom ``theta`` (n_params,) and its gradient.

        With p = conj(a) r, c = Re sum p and n = ||a||: d c/d mean = Omega Im p,
        d c/d var = -0.5 Omega^2 Re p, d n/d var = -0.5 Omega^2 |a|^2 / n
        (all sums from one pass of the Rust correlation kernel).

        For a dense operator in more than :data:`BLAS_SINGLE_ATOM_ABOVE_DIM`
        dimensions the NumPy version is used: one atom is a pair of
        matrix-vector products, bound by memory bandwidth, and BLAS streams
        Omega faster than the kernel's blocked reads.
        """
        if not self.structured and self._sparse is None and self.d > BLAS_SINGLE_ATOM_ABOVE_DIM:
            return self.neg_correlation_and_grad_reference(theta, r)
        args, kwargs = self._kernel_arrays(theta[None, :])
        inner, norm_sq, g_mean, g_var_c, g_var_n = self._correlation(args, r, {**kwargs, "gradients": True})
        assert g_mean is not None  # returned with gradients=True
        c, n2 = float(inner[0]), float(norm_sq[0])
        n = math.sqrt(n2)
        grad_mean = g_mean[0]
        if not self.gaussian:
            return -c / n, -grad_mean / n
        assert g_var_c is not None and g_var_n is not None  # returned for Gaussian atoms
        grad_var = -0.5 * g_var_c[0] / n + c * 0.5 * g_var_n[0] / (n2 * n)
        return -c / n, -np.concatenate([grad_mean / n, grad_var])

    def neg_correlation_and_grad_reference(self, theta: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray]:
        """NumPy reference of :meth:`neg_correlation_and_grad`."""
        a = self.atoms_reference(theta[None, :])[0]
        p = a.conj() * r
        c = p.real.sum()
        n2 = np.sum(np.abs(a) ** 2)
        n = math.sqrt(n2)
        grad_mean = self.omega @ p.imag
        if not self.gaussian:
            return -c / n, -grad_mean / n
        grad_var_c = -0.5 * (self.omega2 @ p.real)
        grad_var_n = -0.5 * (self.omega2 @ (np.abs(a) ** 2)) / n
        grad_var = grad_var_c / n - c * grad_var_n / n2
        return -c / n, -np.concatenate([grad_mean / n, grad_var])

    # -- step 4: joint objective ---------------------------------------------

    def objective_and_grad(self, x: np.ndarray, z: np.ndarray, k: int) -> tuple[float, np.ndarray]:
        """||z - sum alpha_k a_k||^2 and its gradient; x = [theta.ravel(), alpha].

        With P = conj(A) * r (r the residual): d/d alpha_k = -2 Re sum_j P_kj,
        d/d mean_k = -2 alpha_k Omega Im(P_k), d/d var_k = alpha_k Omega^2 Re(P_k).
        Evaluated by the Rust kernel in one pass over the frequencies without
        forming the K x m atoms (:meth:`objective_and_grad_reference` is the
        NumPy version).
        """
        theta, alpha = x[: k * self.n_params].reshape(k, self.n_params), np.ascontiguousarray(x[k * self.n_params :])
        (frequencies, xi, means), kwargs = self._kernel_arrays(theta)
        z_re, z_im = np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag)
        if self._sparse is not None:
            index, value = frequencies
            f, g_mean, g_var, g_alpha = _core.sparse_atom_objective(index, value, xi, means, alpha, z_re, z_im,
                                                                    **kwargs)
        else:
            f, g_mean, g_var, g_alpha = _core.atom_objective(frequencies, xi, means, alpha, z_re, z_im, **kwargs)
        g_theta = g_mean if g_var is None else np.hstack([g_mean, g_var])
        return f, np.concatenate([g_theta.ravel(), g_alpha])

    def objective_and_grad_reference(self, x: np.ndarray, z: np.ndarray, k: int) -> tuple[float, np.ndarray]:
        """NumPy reference of :meth:`objective_and_grad`."""
        theta, alpha = x[: k * self.n_params].reshape(k, self.n_params), x[k * self.n_params :]
        a = self.atoms_reference(theta)
        a_re, a_im = a.real, a.imag
        r_re = z.real - alpha @ a_re
        r_im = z.imag - alpha @ a_im
        p_re = a_re * r_re + a_im * r_im
        p_im = a_re * r_im - a_im * r_re
        f = float(r_re @ r_re + r_im @ r_im)
        g_alpha = -2.0 * p_re.sum(axis=1)
        g_mean = -2.0 * alpha[:, None] * (p_im @ self.omega.T)
        if self.gaussian:
            g_var = alpha[:, None] * (p_re @ self.omega2.T)
            g_theta = np.hstack([g_mean, g_var])
        else:
            g_theta = g_mean
        return f, np.concatenate([g_theta.ravel(), g_alpha])
