"""Frequency operators: the random Fourier features a sketch is made of.

:class:`SketchOperator` draws and stores the frequencies;
:func:`estimate_sigma` picks their scale from data (the envelope heuristic).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from typing import Any, Literal, overload

import numpy as np

from sketchcore.core.rng import StableRandom
from sketchcore.core.sampling import draw_subset
from sketchcore.core.sketch import Sketch, sketch_array, sketch_chunks
from sketchcore.core.standardized import StandardizedOperator
from sketchcore.core.validation import check_finite_rows
from sketchcore.exceptions import EmptySketchError, InvalidParameterError, OperatorMismatchError

__all__ = [
    "SketchOperator",
    "StandardizedOperator",
    "estimate_sigma",
    "sparse_coordinates",
    "RADIUS_LAWS",
    "OPERATOR_KINDS",
    "MAX_DIM",
    "MAX_SKETCH_SIZE",
    "MAX_DENSE_ENTRIES",
    "MAX_SEED",
]

RADIUS_LAWS = ("gaussian", "folded", "adapted")
OPERATOR_KINDS = ("dense", "structured", "sparse")

#: Non-zero coordinates per frequency of a ``kind="sparse"`` operator by default.
DEFAULT_SUPPORT = 4

#: Largest data dimension d an operator accepts.
MAX_DIM = 1 << 20
#: Largest sketch size m (the sums alone then take 256 MiB).
MAX_SKETCH_SIZE = 1 << 24
#: Largest d x m of a dense operator (its frequency matrix then takes 2 GiB);
#: structured operators take O(m + d) memory and have no such bound.
MAX_DENSE_ENTRIES = 1 << 28
#: Seeds are integers in [0, MAX_SEED] (128 bits, as ``SeedSequence().entropy``).
MAX_SEED = (1 << 128) - 1

#: Vectors of length p transformed at once when a structured operator is built
#: (bounds its scratch memory to about 8 x this many bytes per buffer).
_TRANSFORM_BATCH = 1 << 21

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


def fwht(a: np.ndarray) -> np.ndarray:
    """Unnormalised fast Walsh-Hadamard transform along the last axis (a copy).

    The last axis must have a power-of-two length; values stay exact for
    integer inputs (only additions and subtractions).
    """
    a = np.array(a, dtype=np.float64, copy=True)
    p = a.shape[-1]
    lead = a.shape[:-1]
    h = 1
    while h < p:
        v = a.reshape(*lead, p // (2 * h), 2, h)
        top = v[..., 0, :] + v[..., 1, :]
        bottom = v[..., 0, :] - v[..., 1, :]
        v[..., 0, :] = top
        v[..., 1, :] = bottom
        h *= 2
    return a


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


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidParameterError(f"{name} must be <= {maximum}, got {value}")
    return int(value)



def sparse_coordinates(omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frequencies ``omega`` (d x m) as their non-zero coordinates:
    ``(index, value)``, m x s each (uint32 and float64), s the largest number
    of non-zeros of a frequency (at least 1), coordinates in increasing order
    within a frequency; frequencies with fewer non-zeros are padded with
    distinct coordinates of value zero. ``omega[index[j, t], j] = value[j, t]``.
    """
    omega = np.asarray(omega, dtype=np.float64)
    nonzero = omega != 0.0
    s = max(int(nonzero.sum(axis=0).max(initial=0)), 1)
    s = min(s, omega.shape[0])
    # Non-zero coordinates first, in increasing order (a stable sort of the zero flags).
    index = np.argsort(~nonzero.T, axis=1, kind="stable")[:, :s]
    value = np.take_along_axis(omega.T, index, axis=1)
    return np.ascontiguousarray(index, dtype=np.uint32), np.ascontiguousarray(value)

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
    kind : {"dense", "structured", "sparse"}, default="dense"
        How frequencies are drawn, stored and applied. ``"dense"`` keeps the
        d x m matrix (cost O(d m) per sample), directions uniform on the
        sphere. ``"sparse"``: each direction is uniform on the sphere of
        ``support`` coordinates chosen at random (stored like ``"dense"``);
        the sketch then measures low-dimensional marginals, which is what
        diagonal Gaussian mixtures of real features need. ``"structured"`` uses blocks of
        H D3 H D2 H D1 (Walsh-Hadamard H, random signs D; D1 shared by the
        blocks) over the data padded to p = 2^ceil(log2 d), one radius per
        frequency: O(m log p) per sample and O(m) memory; directions within a
        block are orthogonal (exactly so when d is a power of two).
    radius : {"adapted", "gaussian", "folded"}, default="adapted"
        Law of the radius R: ``"gaussian"`` gives R ~ chi(d) (omega Gaussian),
        ``"folded"`` R ~ ``|N(0, 1)|``, ``"adapted"`` the density proportional to
        sqrt(R^2 + R^4/4) exp(-R^2/2) (the usual choice for k-means).
    dither : bool, default=False
        Draw a uniform phase xi_j in [0, 2 pi) per frequency (else xi = 0).
    quantize : bool, default=False
        Use the 1-bit universal quantizer: each sample contributes
        ``sign(cos t) + i sign(sin t)`` instead of ``exp(i t)`` (requires
        ``dither=True``). Decoders use its first harmonic, ``(4/pi) exp(i t)``.
    seed : int or None, default=None
        Seed of the generator. ``None`` draws one from the operating system;
        it is stored in :attr:`seed` so the operator can always be rebuilt.
    support : int, optional
        ``kind="sparse"`` only: non-zero coordinates per frequency (default
        :data:`DEFAULT_SUPPORT`, at most d). With ``radius="gaussian"`` the
        radius is chi(support), so the non-zero entries are N(0, 1/sigma^2).

    Notes
    -----
    Frequencies are generated from the raw stream of NumPy's ``PCG64``
    seeded by ``SeedSequence(seed)``, with only correctly-rounded arithmetic
    (see :mod:`sketchcore.core.rng`), so a seed gives bit-identical frequencies
    on every machine and backend. Draw order: the m x d direction normals
    (frequency by frequency; for ``"structured"``, the p signs of the shared
    D1, then D2 and D3 block by block, instead; for ``"sparse"``, m x support
    uniforms choosing the coordinates, then the m x support normals), then the
    radii, then the dither.

    Examples
    --------
    >>> op = SketchOperator(2, 8, sigma=0.5, seed=0)
    >>> op.frequencies.shape
    (2, 8)
    """

    dim: int
    sketch_size: int
    sigma: float
    kind: str
    radius: str
    has_dither: bool
    quantize: bool
    seed: int
    block_size: int | None
    fingerprint: str
    _dither: np.ndarray

    def __init__(
        self,
        dim: int,
        sketch_size: int,
        *,
        sigma: float = 1.0,
        kind: str = "dense",
        radius: str = "adapted",
        dither: bool = False,
        quantize: bool = False,
        seed: int | None = None,
        support: int | None = None,
    ) -> None:
        self.dim = _check_int("dim", dim, 1, MAX_DIM)
        self.sketch_size = _check_int("sketch_size", sketch_size, 1, MAX_SKETCH_SIZE)
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise InvalidParameterError(f"sigma must be a positive float, got {sigma!r}")
        sigma = float(sigma)
        if not (math.isfinite(sigma) and sigma > 0.0):
            raise InvalidParameterError(f"sigma must be a positive finite float, got {sigma!r}")
        self.sigma = sigma
        if not isinstance(kind, str) or kind not in OPERATOR_KINDS:
            raise InvalidParameterError(f"kind must be one of {OPERATOR_KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "sparse":
            support = DEFAULT_SUPPORT if support is None else support
            self.support: int | None = _check_int("support", support, 1, MAX_DIM)
        elif support is not None:
            raise InvalidParameterError(f"support applies to kind='sparse' only, not kind={kind!r}")
        else:
            self.support = None
        if kind != "structured" and self.dim * self.sketch_size > MAX_DENSE_ENTRIES:
            raise InvalidParameterError(
                f"a dense operator of dim {self.dim} and sketch_size {self.sketch_size} would hold "
                f"{self.dim * self.sketch_size} frequencies (at most {MAX_DENSE_ENTRIES}); use kind='structured'"
            )
        if not isinstance(radius, str) or radius not in RADIUS_LAWS:
            raise InvalidParameterError(f"radius must be one of {RADIUS_LAWS}, got {radius!r}")
        self.radius = radius
        if not isinstance(dither, (bool, np.bool_)):
            raise InvalidParameterError(f"dither must be a bool, got {dither!r}")
        self.has_dither = bool(dither)
        if not isinstance(quantize, (bool, np.bool_)):
            raise InvalidParameterError(f"quantize must be a bool, got {quantize!r}")
        if quantize and not dither:
            raise InvalidParameterError(
                "quantize=True needs dither=True (the quantizer is unbiased only with a random phase)"
            )
        self.quantize = bool(quantize)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        self.seed = _check_int("seed", seed, 0, MAX_SEED)
        self._frequencies: np.ndarray | None = None
        self._squared: np.ndarray | None = None
        self._signs: np.ndarray | None = None
        self._scales: np.ndarray | None = None
        if kind == "structured":
            self.block_size = 1 << (self.dim - 1).bit_length()
            self._signs, self._scales, self._dither = self._generate_structured()
        else:
            self.block_size = None
            self._frequencies, self._dither = self._generate()
        self._by_dtype: dict[np.dtype, tuple] = {}
        self.fingerprint = self._compute_fingerprint()

    # -- construction --------------------------------------------------------

    def _generate(self) -> tuple[np.ndarray, np.ndarray]:
        d, m = self.dim, self.sketch_size
        rng = StableRandom(self.seed)
        if self.kind == "sparse":
            g = self._sparse_normals(rng)
        else:
            g = rng.normal(m * d).reshape(m, d)
        norms = _row_norms(g)
        # A zero normal vector has probability 0; guard anyway.
        norms = np.where(norms > 0.0, norms, 1.0)
        directions = g / norms[:, None]
        radii = self._draw_radii(rng)
        with np.errstate(over="ignore"):
            freqs = np.ascontiguousarray((directions * (radii / self.sigma)[:, None]).T)
        if not np.all(np.isfinite(freqs)):
            raise InvalidParameterError(f"sigma={self.sigma!r} is too small: the frequencies overflow")
        freqs.setflags(write=False)
        return freqs, self._draw_dither(rng)

    def _sparse_normals(self, rng: StableRandom) -> np.ndarray:
        """(m, d) rows with ``min(support, d)`` standard normals at distinct random
        coordinates and zeros elsewhere.

        Coordinates are chosen by Floyd's algorithm driven by uniforms
        (``floor(u * (j + 1))``: one correctly rounded product), so the
        choice is the same on every machine; O(m support) memory. A frequency
        touching few coordinates measures low-dimensional marginals of the
        data, which makes the per-coordinate spreads of diagonal Gaussians
        identifiable from the sketch; a dense direction in many dimensions
        sees mostly the average spread over all coordinates.
        """
        d, m = self.dim, self.sketch_size
        s = min(self.support or d, d)
        u = rng.uniform(m * s).reshape(m, s)
        cols = np.empty((m, s), dtype=np.int64)
        for i, j in enumerate(range(d - s, d)):
            t = np.minimum((u[:, i] * (j + 1)).astype(np.int64), j)
            taken = (cols[:, :i] == t[:, None]).any(axis=1)
            cols[:, i] = np.where(taken, j, t)
        g = np.zeros((m, d))
        g[np.arange(m)[:, None], cols] = rng.normal(m * s).reshape(m, s)
        return g

    def _draw_radii(self, rng: StableRandom) -> np.ndarray:
        m = self.sketch_size
        if self.radius == "gaussian":
            return _chi(rng, min(self.support or self.dim, self.dim), m)
        if self.radius == "folded":
            return np.abs(rng.normal(m))
        return _adapted_radii(rng, m)

    def _draw_dither(self, rng: StableRandom) -> np.ndarray:
        m = self.sketch_size
        xi = rng.uniform(m) * (2.0 * math.pi) if self.has_dither else np.zeros(m)
        xi.setflags(write=False)
        return xi

    def _block_columns(self, block: int) -> np.ndarray:
        """Integer matrix H D3 H D2 H D1 of one block restricted to its first
        d columns, as a (d, p) array: row l is the image of unit vector e_l."""
        assert self.block_size is not None and self._signs is not None  # structured
        p, d = self.block_size, self.dim
        s = self._signs[3 * block : 3 * block + 3]
        a = np.zeros((d, p))
        a[np.arange(d), np.arange(d)] = s[0, :d]
        a = fwht(a) * s[1]
        a = fwht(a) * s[2]
        return fwht(a)

    def _block_row_norms2(self, block: int, rows: int) -> np.ndarray:
        """Squared norms of the first ``rows`` rows of block ``block``'s integer
        matrix H D3 H D2 H D1 restricted to its first d columns.

        O(p) memory and O(min(rows, d) p log p) time: the transforms run over
        at most ``_TRANSFORM_BATCH`` vectors at a time, either over the d unit
        columns (when d <= rows) or over the ``rows`` unit rows (row j of the
        matrix is D1 H D2 H D3 H e_j). Either way the squares are added in
        column order, so the result is the same float64 bits.
        """
        assert self.block_size is not None and self._signs is not None  # structured
        p, d = self.block_size, self.dim
        s1, s2, s3 = self._signs[3 * block : 3 * block + 3]
        batch = max(1, _TRANSFORM_BATCH // p)
        acc = np.zeros(rows)
        if d <= rows:
            for l0 in range(0, d, batch):
                l1 = min(d, l0 + batch)
                a = np.zeros((l1 - l0, p))
                a[np.arange(l1 - l0), np.arange(l0, l1)] = s1[l0:l1]
                a = fwht(fwht(fwht(a) * s2) * s3)[:, :rows]
                # acc + sum over these columns, one column after the other.
                acc = np.concatenate([acc[None, :], a * a]).sum(axis=0)
            return acc
        for j0 in range(0, rows, batch):
            j1 = min(rows, j0 + batch)
            a = np.zeros((j1 - j0, p))
            a[np.arange(j1 - j0), np.arange(j0, j1)] = 1.0
            a = (fwht(fwht(fwht(a) * s3) * s2) * s1)[:, :d]
            cols = np.ascontiguousarray(a.T)
            acc[j0:j1] = (cols * cols).sum(axis=0)
        return acc

    def _generate_structured(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.block_size is not None  # structured
        m, p = self.sketch_size, self.block_size
        blocks = -(-m // p)
        rng = StableRandom(self.seed)
        # D1 is shared by all blocks (so H D1 x is computed once per sample,
        # a third of the transforms saved); D2 and D3 are drawn per block.
        # Given D1 the blocks are independent, and each block's law is that of
        # H D3 H D2 H D1 with all three diagonals random.
        d1 = np.where(rng.uniform(p) < 0.5, -1.0, 1.0)
        d23 = np.where(rng.uniform(2 * blocks * p) < 0.5, -1.0, 1.0).reshape(blocks, 2, p)
        signs = np.concatenate([np.broadcast_to(d1, (blocks, 1, p)), d23], axis=1).reshape(3 * blocks, p)
        self._signs = signs
        radii = self._draw_radii(rng)
        # Rows of the integer block matrix restricted to the d real coordinates
        # have norms N_j (exact: sums of squared integers); the frequency
        # applied is scale_j * row with scale_j = R_j / (sigma N_j).
        norms = np.sqrt(np.concatenate([self._block_row_norms2(b, min(p, m - b * p)) for b in range(blocks)]))
        with np.errstate(divide="ignore", over="ignore"):
            scales = np.where(norms > 0, radii / self.sigma / np.where(norms > 0, norms, 1.0), 0.0)
        if not np.all(np.isfinite(scales)):
            raise InvalidParameterError(f"sigma={self.sigma!r} is too small: the frequencies overflow")
        dither = self._draw_dither(rng)
        signs.setflags(write=False)
        scales.setflags(write=False)
        return signs, scales, dither

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(self.get_params(), sort_keys=True).encode())
        if self.kind == "structured":
            assert self._signs is not None and self._scales is not None
            h.update(self._signs.astype("<f8").tobytes())
            h.update(self._scales.astype("<f8").tobytes())
        else:
            assert self._frequencies is not None
            h.update(self._frequencies.astype("<f8").tobytes())
        h.update(self._dither.astype("<f8").tobytes())
        return h.hexdigest()

    # -- public attributes ---------------------------------------------------

    @property
    def frequencies(self) -> np.ndarray:
        """The d x m frequency matrix Omega (float64, read-only).

        For ``kind="structured"`` it is materialised on first access (O(d m)
        memory) and cached; sketching never needs it.
        """
        if self._frequencies is None:
            assert self.block_size is not None and self._scales is not None  # structured
            d, m, p = self.dim, self.sketch_size, self.block_size
            omega = np.empty((d, m))
            for b in range(-(-m // p)):
                stop = min(m, (b + 1) * p)
                omega[:, b * p : stop] = self._block_columns(b)[:, : stop - b * p] * self._scales[b * p : stop]
            omega.setflags(write=False)
            self._frequencies = omega
        return self._frequencies

    @property
    def signs(self) -> np.ndarray | None:
        """Structured operator: the 3 ceil(m/p) x p Rademacher signs (D1, D2, D3 per block)."""
        return self._signs

    @property
    def scales(self) -> np.ndarray | None:
        """Structured operator: the m per-frequency scales R_j / (sigma N_j)."""
        return self._scales

    @property
    def nbytes(self) -> int:
        """Memory the operator needs to sketch (frequencies or signs and scales, dither)."""
        if self.kind == "structured":
            assert self._signs is not None and self._scales is not None
            return self._signs.nbytes + self._scales.nbytes + self._dither.nbytes
        assert self._frequencies is not None
        return self._frequencies.nbytes + self._dither.nbytes

    def project(self, points: np.ndarray) -> np.ndarray:
        """``points @ Omega`` for points of shape (k, d): the phases of k atoms.

        Dense: one matrix product. Structured: three fast Walsh-Hadamard
        transforms per block, O(k m log p), without materialising Omega.
        """
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if self.kind != "structured" or self._frequencies is not None:
            return points @ self.frequencies
        assert self.block_size is not None and self._signs is not None and self._scales is not None
        k, d, m, p = points.shape[0], self.dim, self.sketch_size, self.block_size
        blocks = -(-m // p)
        s = self._signs.reshape(blocks, 3, p)
        a = np.zeros((k, blocks, p))
        a[:, :, :d] = points[:, None, :]
        a = fwht(a * s[:, 0]) * s[:, 1]
        a = fwht(a) * s[:, 2]
        a = fwht(a).reshape(k, blocks * p)[:, :m]
        return a * self._scales

    @property
    def squared_frequencies(self) -> np.ndarray:
        """Elementwise square of Omega (d x m), cached: for diagonal-Gaussian atoms
        ``exp(-0.5 * s2 @ Omega**2)``."""
        if self._squared is None:
            sq = self.frequencies * self.frequencies
            sq.setflags(write=False)
            self._squared = sq
        return self._squared

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
            "quantize": self.quantize,
            "seed": self.seed,
            # Only sparse operators carry the key: fingerprints of the other
            # kinds stay those of files written before it existed.
            **({"support": self.support} if self.kind == "sparse" else {}),
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SketchOperator | StandardizedOperator:
        """Rebuilds an operator from :meth:`get_params` output."""
        p = dict(params)
        standardize = p.pop("standardize", None)
        if standardize is not None:
            return StandardizedOperator(cls.from_params(p), standardize["mean"], standardize["std"])
        sigma = p.pop("sigma")
        sigma = float.fromhex(sigma) if isinstance(sigma, str) else float(sigma)
        return cls(
            p.pop("dim"),
            p.pop("sketch_size"),
            sigma=sigma,
            kind=p.pop("kind"),
            radius=p.pop("radius"),
            dither=p.pop("dither"),
            quantize=p.pop("quantize", False),
            seed=p.pop("seed"),
            support=p.pop("support", None),
        )

    @classmethod
    def from_data(
        cls,
        X: Any,
        sketch_size: int,
        *,
        sigma: float | str = "auto",
        sigma_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SketchOperator:
        """Operator for data ``X``, with ``sigma="envelope"`` estimated from a subset.

        Parameters
        ----------
        X : array-like, dask array or iterable of chunks
            Only a subset is read (see :func:`estimate_sigma`).
        sketch_size : int
        sigma : float, "envelope" or "auto", default="auto"
            "envelope": the envelope heuristic (:func:`estimate_sigma`);
            "auto" means "envelope" here.
        sigma_options : dict, optional
            Keyword arguments of :func:`estimate_sigma`; its
            seed defaults to this operator's ``seed`` when that is given.
        **kwargs
            Other :class:`SketchOperator` parameters.
        """
        options = dict(sigma_options or {})
        if kwargs.get("seed") is not None:
            options.setdefault("seed", kwargs["seed"])
        value: float
        if isinstance(sigma, str):
            if sigma not in ("auto", "envelope"):
                raise InvalidParameterError(f"sigma must be a positive float, 'envelope' or 'auto', got {sigma!r}")
            value = estimate_sigma(X, **options)
        else:
            value = sigma
        dim = kwargs.pop("dim", None)
        if dim is None:
            dim = X.shape[1] if hasattr(X, "shape") else draw_subset(X, 1).shape[1]
        return cls(dim, sketch_size, sigma=value, **kwargs)

    def _arrays_for(self, dtype: np.dtype) -> tuple:
        """Kernel arrays converted to ``dtype``, cached: ``(omega, dither)`` for
        dense, ``(signs, scales, dither)`` for structured, ``(index, value,
        dither)`` for sparse (see :func:`sparse_coordinates`; dither None if absent)."""
        dtype = np.dtype(dtype)
        if dtype not in self._by_dtype:
            xi = self._dither.astype(dtype) if self.has_dither else None
            if self.kind == "structured":
                assert self._signs is not None and self._scales is not None
                self._by_dtype[dtype] = (self._signs.astype(dtype), self._scales.astype(dtype), xi)
            elif self.kind == "sparse":
                assert self._frequencies is not None
                index, value = sparse_coordinates(self._frequencies)
                self._by_dtype[dtype] = (index, value.astype(dtype), xi)
            else:
                assert self._frequencies is not None
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
    ) -> Sketch:
        """Sketches the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, dim)
            Real data; float32 input is sketched in float32 arithmetic with
            float64 accumulation, everything else in float64. Any memory
            layout (C, Fortran, strided views) is read without a full copy.
        weights : array-like of shape (n_samples,), optional
            Non-negative finite sample weights (default 1).
        backend : {"auto", "rust", "numpy", "dask", "cupy"}, default="auto"
            ``"rust"``: the fused SIMD kernel (what ``"auto"`` picks for NumPy
            input). ``"numpy"``: the chunked float64 reference. ``"dask"``:
            one pass over a dask array (picked for dask input). ``"cupy"``:
            the CUDA kernels (picked for CuPy input; NumPy input is streamed
            to the device in chunks).
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
        return sketch_array(self, X, weights, backend=backend, n_threads=n_threads, simd=simd)

    def sketch_iter(
        self,
        chunks: Any,
        *,
        decay: float = 1.0,
        verbose: bool = False,
        n_threads: int | None = None,
        simd: str | None = None,
    ) -> Sketch:
        """Sketch of an iterable of chunks (arrays or ``(X, weights)`` pairs).

        One pass, memory bounded by the largest chunk; ``decay`` < 1 sets a
        per-sample forgetting factor (see :class:`~sketchcore.Sketch`).
        """
        return sketch_chunks(self, chunks, decay=decay, verbose=verbose, n_threads=n_threads, simd=simd)

    # -- protocol ------------------------------------------------------------

    def __repr__(self) -> str:
        extra = (", dither=True" if self.has_dither else "") + (", quantize=True" if self.quantize else "")
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


# -- sigma from data: the envelope heuristic ------------------------------------
#
# The published heuristic (Keriven et al., "Sketching for large-scale learning
# of mixture models", 2018): sketch a small subset of the data with frequencies
# of spread-out radii, keep for each band of radii the frequency where |z| is
# largest (the envelope), fit |z(omega)| ~ exp(-s^2 ||omega||^2 / 2) and take
# sigma = s; repeat with frequencies scaled by the new sigma. For a mixture of
# Gaussians with covariance s^2 I the envelope is exactly that Gaussian, so
# sigma estimates the scale of the components (not of the whole data).


def _fit_envelope(radii: np.ndarray, moduli: np.ndarray) -> float:
    """s^2 minimising sum (moduli - exp(-s^2 R^2 / 2))^2 (1-D, on log s^2)."""
    from scipy.optimize import minimize_scalar  # here, not at the top: SciPy is slow to import

    r2 = radii * radii

    def loss(log_s2: float) -> float:
        return float(np.sum((moduli - np.exp(-0.5 * np.exp(log_s2) * r2)) ** 2))

    # Bracket from the data: s^2 R^2 of order 1 somewhere in the band.
    center = -np.log(np.median(r2) + 1e-300)
    res = minimize_scalar(loss, bounds=(center - 12, center + 12), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


@overload
def estimate_sigma(
    X: Any,
    *,
    n_samples: int = ...,
    sketch_size: int = ...,
    n_iter: int = ...,
    n_bands: int = ...,
    seed: int | None = ...,
    return_history: Literal[False] = ...,
) -> float: ...
@overload
def estimate_sigma(
    X: Any,
    *,
    n_samples: int = ...,
    sketch_size: int = ...,
    n_iter: int = ...,
    n_bands: int = ...,
    seed: int | None = ...,
    return_history: Literal[True],
) -> tuple[float, list[float]]: ...
def estimate_sigma(
    X: Any,
    *,
    n_samples: int = 5000,
    sketch_size: int = 500,
    n_iter: int = 3,
    n_bands: int = 30,
    seed: int | None = 0,
    return_history: bool = False,
) -> float | tuple[float, list[float]]:
    """Estimates the frequency scale sigma from a subset of the data.

    Parameters
    ----------
    X : array-like (n_samples, dim), dask array, or iterable of 2-D chunks
        The data. Only a subset of ``n_samples`` rows is read (see
        :func:`~sketchcore.core.sampling.draw_subset`).
    n_samples : int, default=5000
        Size of the subset.
    sketch_size : int, default=500
        Frequencies per iteration.
    n_iter : int, default=3
        Refinement rounds; each sketches the subset at the current sigma.
    n_bands : int, default=30
        Radius bands; the maximum of ``|z|`` in each band traces the envelope.
    seed : int, default=0
        Seeds the subset and the frequencies: the result is deterministic.
    return_history : bool, default=False
        Also return the estimate after each round.

    Returns
    -------
    sigma : float
        Scale such that ``|z(omega)|`` decays like ``exp(-sigma^2 ||omega||^2 / 2)``.
    """
    for name, value, low in (("n_samples", n_samples, 2), ("sketch_size", sketch_size, 2 * n_bands),
                             ("n_iter", n_iter, 1), ("n_bands", n_bands, 2)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    subset = draw_subset(X, n_samples, seed)
    if subset.shape[0] == 0:
        raise EmptySketchError("cannot estimate sigma from empty data")
    d = subset.shape[1]
    spread = float(np.mean(np.var(subset, axis=0)))
    if not np.isfinite(spread):
        check_finite_rows(subset)
    # Start from the overall spread: frequencies then reach the decay region.
    sigma = np.sqrt(spread) if spread > 0 else 1.0
    history = []
    for it in range(n_iter):
        op = SketchOperator(d, sketch_size, sigma=sigma, radius="adapted", seed=(seed or 0) * 1009 + it)
        z = op.sketch(subset).z
        radii = np.linalg.norm(op.frequencies, axis=0)
        order = np.argsort(radii)
        bands = np.array_split(order, n_bands)
        peak = np.array([band[np.argmax(np.abs(z[band]))] for band in bands])
        s2 = _fit_envelope(radii[peak], np.abs(z[peak]))
        sigma = float(np.sqrt(s2))
        history.append(sigma)
    if spread == 0 or not (np.isfinite(sigma) and sigma > 0):
        # Constant data: every |z| is 1, any scale fits; fall back to 1.
        sigma = 1.0
    return (sigma, history) if return_history else sigma



def _rebuild_operator(params: dict[str, Any], fingerprint: str) -> SketchOperator | StandardizedOperator:
    op = SketchOperator.from_params(params)
    if op.fingerprint != fingerprint:
        raise OperatorMismatchError(
            "the operator rebuilt from its parameters has a different fingerprint "
            f"({op.fingerprint[:12]} != {fingerprint[:12]}): different sketchcore versions?"
        )
    return op
