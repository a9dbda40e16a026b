"""Frequency operators: the random Fourier features a sketch is made of."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from typing import Any

import numpy as np

from sketchcore._rng import StableRandom
from sketchcore.exceptions import InvalidParameterError

__all__ = ["SketchOperator", "RADIUS_LAWS", "OPERATOR_KINDS"]

RADIUS_LAWS = ("gaussian", "folded", "adapted")
OPERATOR_KINDS = ("dense",)

#: Probability of the chi(2) component of the envelope used to sample the
#: adapted radius (see :func:`_adapted_radii`).
_P_CHI2 = 1.0 / (1.0 + math.sqrt(math.pi / 2.0) / 2.0)


def _chi(rng: StableRandom, dof: int, n: int) -> np.ndarray:
    """``n`` draws of a chi(dof) variable: the norm of ``dof`` standard normals."""
    g = rng.normal(n * dof).reshape(n, dof)
    return _row_norms(g)


def _row_norms(g: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows, summed left to right (reproducible bits)."""
    acc = g[:, 0] * g[:, 0]
    for col in range(1, g.shape[1]):
        acc = acc + g[:, col] * g[:, col]
    return np.sqrt(acc)


def _adapted_radii(rng: StableRandom, n: int) -> np.ndarray:
    """Radii with density proportional to sqrt(R^2 + R^4/4) exp(-R^2/2).

    Rejection sampling: since sqrt(1 + R^2/4) <= 1 + R/2, the density is
    bounded by R e^{-R^2/2} + (R^2/2) e^{-R^2/2}, a mixture of chi(2) (mass 1)
    and chi(3) (mass sqrt(pi/2)/2); accept with probability
    sqrt(1 + R^2/4) / (1 + R/2). Only basic arithmetic is used.
    """
    out = np.empty(n)
    filled = 0
    while filled < n:
        batch = int((n - filled) * 1.2) + 16
        pick = rng.uniform(batch) < _P_CHI2
        r = np.where(pick, _chi(rng, 2, batch), _chi(rng, 3, batch))
        accept = rng.uniform(batch) < np.sqrt(1.0 + r * r / 4.0) / (1.0 + r / 2.0)
        r = r[accept]
        take = min(n - filled, r.size)
        out[filled : filled + take] = r[:take]
        filled += take
    return out


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class SketchOperator:
    """A random Fourier feature operator: m frequencies in R^d and a dither.

    The sketch of data x_1..x_N is ``z_j = sum_i w_i exp(i (omega_j . x_i + xi_j)) / sum_i w_i``.

    Parameters
    ----------
    dim : int
        Dimension d of the data (>= 1).
    sketch_size : int
        Number m of frequencies (>= 1).
    sigma : float, default=1.0
        Scale of the data: frequencies are ``omega = (R / sigma) u``.
    kind : {"dense"}, default="dense"
        How frequencies are stored and applied. ``"dense"`` keeps the d x m
        matrix.
    radius : {"adapted", "gaussian", "folded"}, default="adapted"
        Law of the radius R: ``"gaussian"`` gives R ~ chi(d) (omega Gaussian),
        ``"folded"`` R ~ |N(0, 1)|, ``"adapted"`` the density proportional to
        sqrt(R^2 + R^4/4) exp(-R^2/2) (the usual choice for k-means).
    dither : bool, default=False
        Draw a uniform phase xi_j in [0, 2 pi) per frequency (else xi = 0).
    seed : int or None, default=None
        Seed of the generator. ``None`` draws one from the operating system;
        it is stored in :attr:`seed` so the operator can always be rebuilt.

    Notes
    -----
    Frequencies are generated from the raw stream of NumPy's ``PCG64``
    seeded by ``SeedSequence(seed)``, with only correctly-rounded arithmetic
    (see :mod:`sketchcore._rng`), so a seed gives bit-identical frequencies
    on every machine and backend. Draw order: the m x d direction normals
    (frequency by frequency), then the radii, then the dither.

    Examples
    --------
    >>> op = SketchOperator(2, 8, sigma=0.5, seed=0)
    >>> op.frequencies.shape
    (2, 8)
    """

    def __init__(
        self,
        dim: int,
        sketch_size: int,
        *,
        sigma: float = 1.0,
        kind: str = "dense",
        radius: str = "adapted",
        dither: bool = False,
        seed: int | None = None,
    ) -> None:
        self.dim = _check_int("dim", dim, 1)
        self.sketch_size = _check_int("sketch_size", sketch_size, 1)
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise InvalidParameterError(f"sigma must be a positive float, got {sigma!r}")
        sigma = float(sigma)
        if not (math.isfinite(sigma) and sigma > 0.0):
            raise InvalidParameterError(f"sigma must be a positive finite float, got {sigma!r}")
        self.sigma = sigma
        if kind not in OPERATOR_KINDS:
            raise InvalidParameterError(f"kind must be one of {OPERATOR_KINDS}, got {kind!r}")
        self.kind = kind
        if radius not in RADIUS_LAWS:
            raise InvalidParameterError(f"radius must be one of {RADIUS_LAWS}, got {radius!r}")
        self.radius = radius
        if not isinstance(dither, (bool, np.bool_)):
            raise InvalidParameterError(f"dither must be a bool, got {dither!r}")
        self.has_dither = bool(dither)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        self.seed = _check_int("seed", seed, 0)
        self._frequencies, self._dither = self._generate()
        self._by_dtype: dict[np.dtype, tuple[np.ndarray, np.ndarray | None]] = {}
        self.fingerprint = self._compute_fingerprint()

    # -- construction --------------------------------------------------------

    def _generate(self) -> tuple[np.ndarray, np.ndarray]:
        d, m = self.dim, self.sketch_size
        rng = StableRandom(self.seed)
        g = rng.normal(m * d).reshape(m, d)
        norms = _row_norms(g)
        # A zero normal vector has probability 0; guard anyway.
        norms = np.where(norms > 0.0, norms, 1.0)
        directions = g / norms[:, None]
        if self.radius == "gaussian":
            radii = _chi(rng, d, m)
        elif self.radius == "folded":
            radii = np.abs(rng.normal(m))
        else:
            radii = _adapted_radii(rng, m)
        freqs = np.ascontiguousarray((directions * (radii / self.sigma)[:, None]).T)
        if self.has_dither:
            xi = rng.uniform(m) * (2.0 * math.pi)
        else:
            xi = np.zeros(m)
        freqs.setflags(write=False)
        xi.setflags(write=False)
        return freqs, xi

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(self.get_params(), sort_keys=True).encode())
        h.update(self._frequencies.astype("<f8").tobytes())
        h.update(self._dither.astype("<f8").tobytes())
        return h.hexdigest()

    # -- public attributes ---------------------------------------------------

    @property
    def frequencies(self) -> np.ndarray:
        """The d x m frequency matrix Omega (float64, read-only)."""
        return self._frequencies

    @property
    def dither(self) -> np.ndarray:
        """The m phases xi (float64, read-only; zeros without dither)."""
        return self._dither

    def get_params(self) -> dict[str, Any]:
        """Everything that defines the operator, as JSON-serialisable values."""
        return {
            "dim": self.dim,
            "sketch_size": self.sketch_size,
            "sigma": float.hex(self.sigma),
            "kind": self.kind,
            "radius": self.radius,
            "dither": self.has_dither,
            "seed": self.seed,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SketchOperator:
        """Rebuilds an operator from :meth:`get_params` output."""
        p = dict(params)
        sigma = p.pop("sigma")
        sigma = float.fromhex(sigma) if isinstance(sigma, str) else float(sigma)
        return cls(
            p.pop("dim"),
            p.pop("sketch_size"),
            sigma=sigma,
            kind=p.pop("kind"),
            radius=p.pop("radius"),
            dither=p.pop("dither"),
            seed=p.pop("seed"),
        )

    def _arrays_for(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray | None]:
        """Frequencies (and dither, None if absent) converted to ``dtype``, cached."""
        dtype = np.dtype(dtype)
        if dtype not in self._by_dtype:
            xi = self._dither.astype(dtype) if self.has_dither else None
            self._by_dtype[dtype] = (self._frequencies.astype(dtype), xi)
        return self._by_dtype[dtype]

    # -- sketching -----------------------------------------------------------

    def sketch(
        self,
        X: Any,
        weights: Any = None,
        *,
        backend: str = "auto",
        n_threads: int | None = None,
        simd: str | None = None,
    ):
        """Sketches the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, dim)
            Real data; float32 input is sketched in float32 arithmetic with
            float64 accumulation, everything else in float64. Any memory
            layout (C, Fortran, strided views) is read without a full copy.
        weights : array-like of shape (n_samples,), optional
            Non-negative finite sample weights (default 1).
        backend : {"auto", "rust", "numpy"}, default="auto"
            ``"rust"``: the fused SIMD kernel (what ``"auto"`` picks for NumPy
            input). ``"numpy"``: the chunked float64 reference.
        n_threads : int, optional
            Worker threads of the Rust kernel (default: all logical CPUs).
        simd : {"avx512", "avx2", "scalar"}, optional
            Force an instruction set (default: the best available).

        Returns
        -------
        Sketch

        Raises
        ------
        DataShapeError, DimensionMismatchError, DTypeError, NonFiniteError,
        NegativeWeightError, InvalidParameterError
        """
        from sketchcore.sketch import sketch_array

        return sketch_array(self, X, weights, backend=backend, n_threads=n_threads, simd=simd)

    # -- protocol ------------------------------------------------------------

    def __repr__(self) -> str:
        extra = ", dither=True" if self.has_dither else ""
        return (
            f"SketchOperator(dim={self.dim}, sketch_size={self.sketch_size}, sigma={self.sigma:g}, "
            f"kind={self.kind!r}, radius={self.radius!r}{extra}, seed={self.seed}, "
            f"fingerprint={self.fingerprint[:12]!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SketchOperator):
            return NotImplemented
        return self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self):
        # Pickles as its parameters (a few bytes), never the d x m matrix;
        # the fingerprint is checked when it is rebuilt.
        return (_rebuild_operator, (self.get_params(), self.fingerprint))


def _rebuild_operator(params: dict[str, Any], fingerprint: str) -> SketchOperator:
    op = SketchOperator.from_params(params)
    if op.fingerprint != fingerprint:
        from sketchcore.exceptions import OperatorMismatchError

        raise OperatorMismatchError(
            "the operator rebuilt from its parameters has a different fingerprint "
            f"({op.fingerprint[:12]} != {fingerprint[:12]}): different sketchcore versions?"
        )
    return op
