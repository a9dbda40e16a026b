"""Sketch: the mergeable summary of a data set under one operator."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from sketchcore.core import registry
from sketchcore.core.metadata import merge_metadata
from sketchcore.core.moments import RunningMoments
from sketchcore.core.standardized import StandardizedOperator
from sketchcore.core.validation import (
    as_data_matrix,
    as_weights,
    check_array_shape,
    check_finite_rows,
    check_n_threads,
    is_cupy_array,
    is_dask_array,
)
from sketchcore.exceptions import (
    EmptySketchError,
    InvalidParameterError,
    NonFiniteError,
    OperatorMismatchError,
    OverlappingDataError,
    PhaseOverflowError,
    PrivacyError,
)

if TYPE_CHECKING:
    from sketchcore.core.operator import SketchOperator

__all__ = ["Sketch", "sketch_array", "sketch_chunks", "BACKENDS"]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "rust", "numpy", "dask", "cupy")

#: Largest number of rows a sketch keeps as decoders' starting points.
MAX_SAMPLE_CAPACITY = 1_000_000


#: Memory of a sketch's default stored rows over that of its 2m numbers.
SAMPLE_MEMORY_FACTOR = 20

#: Most rows a sketch keeps by default.
DEFAULT_SAMPLE_CAP = 4096


def default_sample_capacity(operator: Any) -> int:
    """Rows of data a sketch keeps by default: rows holding
    :data:`SAMPLE_MEMORY_FACTOR` (20) times the memory of the sketch's 2m
    numbers (40 m // d rows), at least 16 and at most 4096. At the
    estimators' default sketch sizes that is about 400 rows per Gaussian
    component or k-means cluster (4000 frames for K = 10 at d = 20, 60 or
    192; 200 per cluster for CompressiveKMeans with
    ``density_components=None``). Like the sketch they do not grow with the
    data: 4096 rows of d = 60 float64 features take 2 MB.

    The decoders draw the starting points of new atoms and the per-feature
    variance floors from this sample, and adapt the decoded model to it
    (:mod:`~sketchcore.learning.sample_adaptation`); without it
    (``sample_capacity=0``, or after ``privatize``) they start uniformly in
    the data box and the model is the sketch's alone. On real MFCC frames
    (d = 60, K = 10, the means over three random states of the fits on five
    sets), CompressiveKMeans's SSE is 1.009-1.010 times KMeans(n_init=3)'s
    with 4000 stored rows, 1.017 with 2000 and 1.022-1.024 with 1000, about
    what KMeans on a uniform sample of the same memory reaches (1.004-1.011):
    on real features the rows, more than the sketch, set the clusters' exact
    positions.
    """
    rows = 2 * SAMPLE_MEMORY_FACTOR * operator.sketch_size // max(operator.dim, 1)
    return int(min(DEFAULT_SAMPLE_CAP, max(16, rows)))


def merge_row_samples(
    mine: np.ndarray, n_mine: int, other: Any, n_other: int, capacity: int, fingerprint: str
) -> np.ndarray:
    """A uniform sample of at most ``capacity`` rows of the union of two data
    sets of ``n_mine`` and ``n_other`` rows, from uniform samples of each
    (``mine``, ``other``): a hypergeometric split between the two, seeded by
    the operator's fingerprint and the counts, so the result is
    deterministic. Only the chosen rows of ``other`` are read and converted
    to float64 (it may be a whole chunk of data)."""
    dim = mine.shape[1]
    if not capacity or len(other) == 0 or n_mine + n_other == 0:
        return mine
    rng = np.random.default_rng([int(fingerprint[:12], 16), n_mine, n_other])
    total = min(capacity, len(mine) + len(other))
    take_mine = int(rng.hypergeometric(max(n_mine, len(mine)), max(n_other, len(other)), total))
    take_mine = min(take_mine, len(mine))
    take_other = min(total - take_mine, len(other))
    chosen = other[np.sort(rng.choice(len(other), take_other, replace=False))]
    if callable(getattr(chosen, "get", None)):  # rows of a device (CuPy) array, copied to the host
        chosen = chosen.get()
    return np.concatenate([mine[np.sort(rng.choice(len(mine), take_mine, replace=False))],
                           np.asarray(chosen, dtype=np.float64).reshape(-1, dim)])


class Sketch:
    """Float64 sums of random Fourier features of a data set.

    ``cos_sums[j] = sum_i w_i cos(omega_j . x_i + xi_j)``, ``sin_sums`` likewise,
    ``weight = sum_i w_i``, ``count`` = number of samples, and the data box
    ``lower``/``upper`` (per-feature min and max; +inf/-inf when empty).
    Sketches of disjoint data made with the same operator add exactly.

    Parameters
    ----------
    operator : SketchOperator
    cos_sums, sin_sums : ndarray of shape (sketch_size,)
    weight : float
    count : int
    lower, upper : ndarray of shape (dim,)

    decay : float, default=1.0
        Per-sample forgetting factor in (0, 1] applied by :meth:`update`:
        the sums are ``sum_i w_i decay**age_i Phi(x_i)`` where ``age_i`` is the
        number of samples that arrived after sample i (1.0: no forgetting).
    privacy : dict, optional
        Set by :func:`sketchcore.io.privacy.privatize`: the mechanism and budget.
    metadata : dict, optional
        Free JSON-serialisable information saved with the sketch.
    samples : ndarray (n, dim), optional
        A uniform random sample of the rows (at most ``sample_capacity``),
        kept through :meth:`update` and merges (deterministically: the rows
        kept depend on the operator and the counts only). It is not part of
        the sketch: decoders use it as starting points of new atoms (much
        more robust than uniform starts in high dimension) and to estimate
        each feature's variance for the variance floors. Sketches of
        in-memory arrays and :meth:`empty` sketches keep
        :func:`default_sample_capacity` rows by default; ``sample_capacity=0``
        keeps none, and :func:`privatize` drops it.
    max_weight : float, optional
        The largest sample weight summed in (0 for no sample), kept through
        :meth:`update` and merges; ``None`` when unknown (sketches built from
        sums alone). :func:`privatize` needs it at most 1.

    Notes
    -----
    Build sketches with :meth:`SketchOperator.sketch`, :meth:`SketchOperator.sketch_iter`
    or :meth:`Sketch.empty`; save and load with :meth:`save` / :meth:`load`.
    """

    def __init__(
        self,
        operator: SketchOperator | StandardizedOperator,
        cos_sums: np.ndarray,
        sin_sums: np.ndarray,
        weight: float,
        count: int,
        lower: np.ndarray,
        upper: np.ndarray,
        *,
        decay: float = 1.0,
        privacy: dict | None = None,
        metadata: dict | None = None,
        samples: np.ndarray | None = None,
        sample_capacity: int = 0,
        max_weight: float | None = None,
    ) -> None:
        self.operator = operator
        if isinstance(sample_capacity, bool) or not (
            isinstance(sample_capacity, (int, np.integer)) and 0 <= sample_capacity <= MAX_SAMPLE_CAPACITY
        ):
            raise InvalidParameterError(
                f"sample_capacity must be an integer in [0, {MAX_SAMPLE_CAPACITY}], got {sample_capacity!r}"
            )
        self.sample_capacity = int(sample_capacity)
        self.samples = None if samples is None else np.asarray(samples, dtype=np.float64).reshape(-1, operator.dim)
        if not (isinstance(decay, (int, float, np.floating)) and 0.0 < float(decay) <= 1.0):
            raise InvalidParameterError(f"decay must be in (0, 1], got {decay!r}")
        self.decay = float(decay)
        self.privacy = dict(privacy) if privacy else None
        self.metadata = dict(metadata) if metadata else {}
        self.cos_sums = np.asarray(cos_sums, dtype=np.float64)
        self.sin_sums = np.asarray(sin_sums, dtype=np.float64)
        self.weight = float(weight)
        if not (np.isfinite(self.weight) and self.weight >= 0.0):
            raise InvalidParameterError(f"weight must be finite and non-negative, got {weight!r}")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise InvalidParameterError(f"count must be a non-negative integer, got {count!r}")
        self.count = int(count)
        if max_weight is not None:
            max_weight = float(max_weight)
            if not (np.isfinite(max_weight) and max_weight >= 0.0):
                raise InvalidParameterError(f"max_weight must be finite and non-negative, got {max_weight!r}")
        self.max_weight = max_weight
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        m, d = operator.sketch_size, operator.dim
        if self.cos_sums.shape != (m,) or self.sin_sums.shape != (m,):
            raise InvalidParameterError(f"sums must have shape ({m},)")
        if self.lower.shape != (d,) or self.upper.shape != (d,):
            raise InvalidParameterError(f"data box must have shape ({d},)")

    @classmethod
    def empty(
        cls, operator: SketchOperator | StandardizedOperator, *, decay: float = 1.0,
        sample_capacity: int | str = "auto",
    ) -> Sketch:
        """The sketch of no data: weight 0, the identity of ``+``.

        ``sample_capacity``: rows of data kept as a uniform sample through
        updates and merges (``"auto"``: :func:`default_sample_capacity`; 0: none).
        """
        if isinstance(sample_capacity, str):
            if sample_capacity != "auto":
                raise InvalidParameterError(f"sample_capacity must be an integer or 'auto', got {sample_capacity!r}")
            sample_capacity = default_sample_capacity(operator)
        m, d = operator.sketch_size, operator.dim
        return cls(operator, np.zeros(m), np.zeros(m), 0.0, 0, np.full(d, np.inf), np.full(d, -np.inf), decay=decay,
                   samples=np.empty((0, d)) if sample_capacity else None, sample_capacity=sample_capacity,
                   max_weight=0.0)

    def _merge_samples(self, other_samples: Any, other_count: int) -> None:
        """Uniform sample of the union (see :func:`merge_row_samples`)."""
        if not self.sample_capacity or other_samples is None or len(other_samples) == 0:
            return
        mine = self.samples if self.samples is not None else np.empty((0, self.dim))
        self.samples = merge_row_samples(mine, self.count, other_samples, other_count, self.sample_capacity,
                                         self.fingerprint)

    # -- streaming -------------------------------------------------------------

    def update(self, X: Any, weights: Any = None, *, n_threads: int | None = None, simd: str | None = None) -> Sketch:
        """Adds the rows of ``X`` (in order) to this sketch, in place.

        With ``decay < 1`` the existing sums are multiplied by
        ``decay**len(X)`` and row i of X by ``decay**(len(X) - 1 - i)``, so
        updating row by row or in chunks of any size gives the same sketch.
        Memory is bounded by the chunk.

        Returns
        -------
        self
        """
        if self.privacy:
            raise PrivacyError("a privatized sketch is final: it cannot be updated")
        X = as_data_matrix(X, self.operator.dim)
        n = X.shape[0]
        w = as_weights(weights, n)
        if self.decay < 1.0 and n:
            ages = np.arange(n - 1, -1, -1, dtype=np.float64)
            factors = self.decay**ages
            w = factors if w is None else w * factors
            old = self.decay**n
            self.cos_sums *= old
            self.sin_sums *= old
            self.weight *= old
        part = sketch_array(self.operator, X, w, n_threads=n_threads, simd=simd, keep_sample=False)
        if self.sample_capacity and n:
            self._merge_samples(X, n)
        self._add_sums(part)
        return self

    def _add_sums(self, other: Sketch) -> None:
        """Adds the sums, weight, count and box of ``other`` in place (no checks)."""
        self.cos_sums += other.cos_sums
        self.sin_sums += other.sin_sums
        self.weight += other.weight
        self.count += other.count
        if self.max_weight is None or other.max_weight is None:
            self.max_weight = None
        else:
            self.max_weight = max(self.max_weight, other.max_weight)
        np.minimum(self.lower, other.lower, out=self.lower)
        np.maximum(self.upper, other.upper, out=self.upper)

    def standardized(self, mean: Any = None, std: Any = None) -> Sketch:
        """The same sketch seen from standardised coordinates ``(x - mean) / std``.

        Exact (see :class:`~sketchcore.core.standardized.StandardizedOperator`). By
        default ``mean`` and ``std`` come from the streamed feature moments
        that :func:`sketchcore.audio.sketch_corpus` stores in the metadata.
        """
        if mean is None or std is None:
            moments = self.metadata.get("feature_moments")
            if moments is None:
                raise InvalidParameterError("pass mean and std (this sketch has no stored feature moments)")
            rm = RunningMoments.from_dict(moments)
            mean = rm.mean if mean is None else mean
            std = rm.std if std is None else std
        op = StandardizedOperator(self.operator, mean, std)
        samples = None if self.samples is None else (self.samples - op.mean) / op.std
        return Sketch(
            op,
            self.cos_sums.copy(),
            self.sin_sums.copy(),
            self.weight,
            self.count,
            (self.lower - op.mean) / op.std,
            (self.upper - op.mean) / op.std,
            decay=self.decay,
            privacy=self.privacy,
            metadata=self.metadata,
            samples=samples,
            sample_capacity=self.sample_capacity,
            max_weight=self.max_weight,
        )

    # -- files -----------------------------------------------------------------

    def save(self, path: Any, *, metadata: dict | None = None) -> None:
        """Writes the sketch atomically (see :mod:`sketchcore.io.sketch_file` for the format)."""
        registry.file_format().save(self, path, metadata=metadata)

    @staticmethod
    def load(path: Any) -> Sketch:
        """Reads a sketch, verifying its checksum and operator fingerprint."""
        return registry.file_format().load(path)

    # -- views ---------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the operator that made the sketch."""
        return self.operator.fingerprint

    @property
    def sketch_size(self) -> int:
        return self.operator.sketch_size

    @property
    def dim(self) -> int:
        return self.operator.dim

    @property
    def z(self) -> np.ndarray:
        """The normalised complex sketch ``(cos_sums + 1j sin_sums) / weight``.

        Raises
        ------
        EmptySketchError
            If the total weight is 0.
        """
        if not self.weight > 0.0:
            raise EmptySketchError("the sketch is empty (total weight 0): it has no normalised value")
        return (self.cos_sums + 1j * self.sin_sums) / self.weight

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper): per-feature minimum and maximum of the data."""
        return self.lower.copy(), self.upper.copy()

    # -- merging -------------------------------------------------------------

    def _check_compatible(self, other: Sketch) -> None:
        if not isinstance(other, Sketch):
            raise TypeError(f"can only merge Sketch objects, got {type(other).__name__}")
        if other.fingerprint != self.fingerprint:
            raise OperatorMismatchError(
                "cannot merge sketches made with different operators "
                f"(fingerprints {self.fingerprint[:12]} and {other.fingerprint[:12]}: "
                f"{operator_difference(self.operator, other.operator)}). Sketches add up only under one operator: "
                "make every part with the same one (the same dim, sketch size, kind, sigma and seed; on the "
                "command line, 'sketchcore sketch ... --like FIRST.sketch' reuses a sketch's operator, whereas "
                "'--sigma auto' estimates sigma from each part's own data)"
            )
        if other.decay != self.decay:
            raise OperatorMismatchError(
                f"cannot merge sketches with different forgetting factors ({self.decay} and {other.decay})"
            )
        if (self.privacy is None) != (other.privacy is None):
            raise PrivacyError("cannot merge a privatized sketch with a raw one: the raw part would leak")

    def __add__(self, other: Sketch) -> Sketch:
        if not isinstance(other, Sketch):
            return NotImplemented
        return Sketch.merge([self, other])

    @staticmethod
    def merge(sketches: Iterable[Sketch]) -> Sketch:
        """Sum of sketches of disjoint data made with one operator.

        The metadata merge too (:func:`~sketchcore.core.metadata.merge_metadata`):
        feature moments exactly, file lists as their union.

        Raises
        ------
        OperatorMismatchError
            If the operators (or the feature settings) differ; the message
            says which parameters differ.
        OverlappingDataError
            If two parts share a file, or the same sketch is given twice.
        InvalidParameterError
            If ``sketches`` is empty (the operator would be unknown).
        """
        items = list(sketches)
        if not items:
            raise InvalidParameterError("merge needs at least one sketch")
        for s in items:
            items[0]._check_compatible(s)
        metadata = merge_metadata([s.metadata for s in items], items[0].dim)  # names a shared file
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                if a.count and a.count == b.count and a.weight == b.weight and a == b:
                    raise OverlappingDataError("cannot merge a sketch with itself: its data would be counted twice")
        total = items[0].copy()
        for s in items[1:]:
            total._merge_into(s)
        total.metadata = metadata
        return total

    def _merge_into(self, other: Sketch) -> None:
        """Adds ``other`` in place: sums, weight, count, box, sample of rows,
        privacy record (not the metadata; see :meth:`merge`)."""
        self._check_compatible(other)
        if other.samples is not None and len(other.samples):
            self.sample_capacity = max(self.sample_capacity, other.sample_capacity)
            self._merge_samples(other.samples, other.count)
        if self.privacy is not None:
            assert other.privacy is not None  # checked by _check_compatible
            self.privacy = compose_disjoint(self.privacy, other.privacy)
        self._add_sums(other)

    def copy(self) -> Sketch:
        return Sketch(
            self.operator,
            self.cos_sums.copy(),
            self.sin_sums.copy(),
            self.weight,
            self.count,
            self.lower.copy(),
            self.upper.copy(),
            decay=self.decay,
            privacy=self.privacy,
            metadata=self.metadata,
            samples=None if self.samples is None else self.samples.copy(),
            sample_capacity=self.sample_capacity,
            max_weight=self.max_weight,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return (
            self.fingerprint == other.fingerprint
            and self.weight == other.weight
            and self.count == other.count
            and self.decay == other.decay
            and self.privacy == other.privacy
            and np.array_equal(self.cos_sums, other.cos_sums)
            and np.array_equal(self.sin_sums, other.sin_sums)
            and np.array_equal(self.lower, other.lower)
            and np.array_equal(self.upper, other.upper)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        extra = (f", decay={self.decay}" if self.decay < 1 else "") + (", private" if self.privacy else "")
        return (
            f"Sketch(sketch_size={self.sketch_size}, dim={self.dim}, count={self.count}, "
            f"weight={self.weight:g}{extra}, fingerprint={self.fingerprint[:12]!r})"
        )


def sketch_array(
    operator: SketchOperator | StandardizedOperator,
    X: Any,
    weights: Any = None,
    *,
    backend: str = "auto",
    n_threads: int | None = None,
    simd: str | None = None,
    keep_sample: bool = True,
) -> Sketch:
    """Sketch of an in-memory array; see :meth:`SketchOperator.sketch`.

    ``keep_sample=False`` leaves out the sample of rows (for callers that
    keep their own, as :meth:`Sketch.update` does).

    Validates the arguments once, whatever the backend (shape, dtype and
    weights of NumPy and CuPy input alike; dask blocks are validated where
    they are sketched), then picks the backend (CuPy input: ``"cupy"``; dask
    input: ``"dask"``; else ``"rust"`` unless ``backend`` says otherwise) and
    calls the one registered under that name (:mod:`sketchcore.core.registry`).
    Arrays whose dtype needs converting (integers, float16, byte-swapped...)
    are converted one tile of rows at a time (memory-mapped files included).
    Finite data whose phases overflow raise :class:`PhaseOverflowError`.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InvalidParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
    threads = check_n_threads(n_threads)
    if backend == "cupy" or (backend == "auto" and is_cupy_array(X)):
        check_array_shape(X, operator.dim)
        if is_cupy_array(weights):
            weights = weights.get()
        w = as_weights(weights, X.shape[0])
        sketch = registry.backend("cupy")(operator, X, w)
        sketch.max_weight = _max_weight(w, X.shape[0])
        if keep_sample:  # only the chosen rows leave the device
            _keep_sample(sketch, X)
        return _check_phases(sketch)
    if is_dask_array(X) or backend == "dask":
        if not is_dask_array(X):
            raise InvalidParameterError("backend='dask' needs a dask array")
        return registry.backend("dask")(operator, X, weights)
    X = as_data_matrix(X, operator.dim, convert=False)
    w = as_weights(weights, X.shape[0])
    rows = _tile_rows(X)
    if rows is None:
        sketch = _sketch_validated(operator, as_data_matrix(X, operator.dim), w, backend, threads, simd, 0)
    else:
        sketch = Sketch.empty(operator)
        for start in range(0, X.shape[0], rows):
            stop = min(X.shape[0], start + rows)
            tile = as_data_matrix(X[start:stop], operator.dim)
            part = _sketch_validated(operator, tile, None if w is None else w[start:stop], backend, threads, simd,
                                     start)
            sketch._add_sums(part)
    sketch.max_weight = _max_weight(w, X.shape[0])
    _check_phases(sketch)
    if keep_sample:
        _keep_sample(sketch, X)
    return sketch


def _keep_sample(sketch: Sketch, X: Any) -> None:
    """Gives ``sketch`` (of all of X) the rows Sketch.empty(operator).update(X)
    would keep: the same seeds on every backend."""
    op = sketch.operator
    sketch.sample_capacity = default_sample_capacity(op)
    sketch.samples = merge_row_samples(np.empty((0, op.dim)), 0, X, X.shape[0], sketch.sample_capacity,
                                       op.fingerprint)


#: Arrays that need a dtype conversion are converted this many bytes (of the
#: converted rows) at a time; a multiple of the kernel's 4096-row chunks.
CONVERT_TILE_BYTES = 64 << 20


def _tile_rows(X: np.ndarray) -> int | None:
    """Rows per converted tile, or None when X is sketched as it is (or is small)."""
    target = np.dtype(np.float32) if X.dtype in (np.float32, np.float16) else np.dtype(np.float64)
    if X.dtype == target and X.dtype.isnative:
        return None
    row_bytes = max(1, X.shape[1]) * target.itemsize
    if X.shape[0] * row_bytes <= CONVERT_TILE_BYTES:
        return None
    return max(4096, (CONVERT_TILE_BYTES // row_bytes) // 4096 * 4096)


def _sketch_validated(operator, X, w, backend, threads, simd, row_offset) -> Sketch:
    """Runs the NumPy or Rust backend on validated rows; errors name rows of the whole array."""
    try:
        if backend == "numpy":
            check_finite_rows(X)
            return registry.backend("numpy")(operator, X, w)
        return registry.backend("rust")(operator, X, w, n_threads=threads, simd=simd)
    except NonFiniteError as exc:
        if not row_offset:
            raise
        row = exc.row + row_offset
        raise NonFiniteError(str(exc).replace(f"row {exc.row}", f"row {row}", 1), row=row,
                             column=getattr(exc, "column", None)) from None


def _max_weight(w: np.ndarray | None, n: int) -> float:
    if w is None:
        return 1.0 if n else 0.0
    return float(w.max()) if w.size else 0.0


def _check_phases(sketch: Sketch) -> Sketch:
    """Finite data and weights give finite sums unless a phase overflowed."""
    if not (np.all(np.isfinite(sketch.cos_sums)) and np.all(np.isfinite(sketch.sin_sums))):
        raise PhaseOverflowError(
            "the phases omega . x + xi overflow the floating-point range (data too large for this "
            f"operator's frequencies, sigma={sketch.operator.sigma:g}): the sketch would be NaN; "
            "rescale the data, raise sigma, or pass float64 data"
        )
    return sketch


def operator_difference(a: Any, b: Any) -> str:
    """Which parameters of two operators differ, in words."""
    pa, pb = a.get_params(), b.get_params()
    diffs = []
    for key in sorted(set(pa) | set(pb)):
        va, vb = pa.get(key), pb.get(key)
        if va == vb:
            continue
        if key == "sigma" and isinstance(va, str) and isinstance(vb, str):
            va, vb = f"{float.fromhex(va):.6g}", f"{float.fromhex(vb):.6g}"
        elif key == "standardize":
            va, vb = ("standardised" if va else "raw"), ("standardised" if vb else "raw")
        diffs.append(f"{key} {va} vs {vb}")
    return "; ".join(diffs) if diffs else "the same parameters, a different generator"


def compose_disjoint(a: dict, b: dict) -> dict:
    """Privacy of the merge of private sketches of disjoint data (parallel
    composition): the weakest guarantee of the parts."""
    out = dict(a)
    out["epsilon"] = max(a["epsilon"], b["epsilon"])
    out["delta"] = max(a["delta"], b["delta"])
    if a.get("mechanism") != b.get("mechanism"):
        out["mechanism"] = "mixed"
    return out


def sketch_chunks(
    operator: SketchOperator,
    chunks: Iterable[Any],
    *,
    decay: float = 1.0,
    verbose: bool = False,
    n_threads: int | None = None,
    simd: str | None = None,
) -> Sketch:
    """Sketch of a stream of chunks (arrays, or ``(X, weights)`` pairs), in order.

    Memory is bounded by one chunk whatever the stream's length. With
    ``verbose`` a progress bar (tqdm, when installed; else INFO records of
    this module's logger every 10 chunks) counts chunks and rows.
    """
    total = Sketch.empty(operator, decay=decay)
    bar = _progress(verbose)
    for chunk in chunks:
        X, w = chunk if isinstance(chunk, tuple) else (chunk, None)
        total.update(X, w, n_threads=n_threads, simd=simd)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(rows=total.count, refresh=False)
    if bar is not None:
        bar.close()
    return total


def _progress(verbose: bool):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is optional
        return _LogProgress()
    return tqdm(unit="chunk", desc="sketching")


class _LogProgress:
    """Minimal stand-in for tqdm: one log record per 10 chunks."""

    def __init__(self) -> None:
        self.n = 0
        self.rows = 0

    def update(self, k: int) -> None:
        self.n += k
        if self.n % 10 == 0:
            logger.info("sketching: %d chunks, %d rows", self.n, self.rows)

    def set_postfix(self, rows: int, refresh: bool = False) -> None:
        self.rows = rows

    def close(self) -> None:
        logger.info("sketching: done, %d chunks, %d rows", self.n, self.rows)
