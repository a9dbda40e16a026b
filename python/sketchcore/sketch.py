"""Sketch: the mergeable summary of a data set under one operator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sketchcore import _core
from sketchcore._validation import as_data_matrix, as_weights, check_finite_rows, check_n_threads
from sketchcore.exceptions import EmptySketchError, InvalidParameterError, OperatorMismatchError
from sketchcore.operator import SketchOperator

__all__ = ["Sketch", "sketch_array", "BACKENDS"]

BACKENDS = ("auto", "rust", "numpy")


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

    Notes
    -----
    Build sketches with :meth:`SketchOperator.sketch` or :meth:`Sketch.empty`.
    """

    def __init__(
        self,
        operator: SketchOperator,
        cos_sums: np.ndarray,
        sin_sums: np.ndarray,
        weight: float,
        count: int,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        self.operator = operator
        self.cos_sums = np.asarray(cos_sums, dtype=np.float64)
        self.sin_sums = np.asarray(sin_sums, dtype=np.float64)
        self.weight = float(weight)
        self.count = int(count)
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        m, d = operator.sketch_size, operator.dim
        if self.cos_sums.shape != (m,) or self.sin_sums.shape != (m,):
            raise InvalidParameterError(f"sums must have shape ({m},)")
        if self.lower.shape != (d,) or self.upper.shape != (d,):
            raise InvalidParameterError(f"data box must have shape ({d},)")

    @classmethod
    def empty(cls, operator: SketchOperator) -> Sketch:
        """The sketch of no data: weight 0, the identity of ``+``."""
        m, d = operator.sketch_size, operator.dim
        return cls(operator, np.zeros(m), np.zeros(m), 0.0, 0, np.full(d, np.inf), np.full(d, -np.inf))

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
                f"(fingerprints {self.fingerprint[:12]} and {other.fingerprint[:12]})"
            )

    def __add__(self, other: Sketch) -> Sketch:
        if not isinstance(other, Sketch):
            return NotImplemented
        self._check_compatible(other)
        return Sketch(
            self.operator,
            self.cos_sums + other.cos_sums,
            self.sin_sums + other.sin_sums,
            self.weight + other.weight,
            self.count + other.count,
            np.minimum(self.lower, other.lower),
            np.maximum(self.upper, other.upper),
        )

    @staticmethod
    def merge(sketches: Iterable[Sketch]) -> Sketch:
        """Sum of sketches of disjoint data made with one operator.

        Raises
        ------
        OperatorMismatchError
            If the operators differ.
        InvalidParameterError
            If ``sketches`` is empty (the operator would be unknown).
        """
        items = list(sketches)
        if not items:
            raise InvalidParameterError("merge needs at least one sketch")
        total = items[0].copy()
        for s in items[1:]:
            total._check_compatible(s)
            total.cos_sums += s.cos_sums
            total.sin_sums += s.sin_sums
            total.weight += s.weight
            total.count += s.count
            np.minimum(total.lower, s.lower, out=total.lower)
            np.maximum(total.upper, s.upper, out=total.upper)
        return total

    def copy(self) -> Sketch:
        return Sketch(
            self.operator,
            self.cos_sums.copy(),
            self.sin_sums.copy(),
            self.weight,
            self.count,
            self.lower.copy(),
            self.upper.copy(),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return (
            self.fingerprint == other.fingerprint
            and self.weight == other.weight
            and self.count == other.count
            and np.array_equal(self.cos_sums, other.cos_sums)
            and np.array_equal(self.sin_sums, other.sin_sums)
            and np.array_equal(self.lower, other.lower)
            and np.array_equal(self.upper, other.upper)
        )

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (
            f"Sketch(sketch_size={self.sketch_size}, dim={self.dim}, count={self.count}, "
            f"weight={self.weight:g}, fingerprint={self.fingerprint[:12]!r})"
        )


def sketch_array(
    operator: SketchOperator,
    X: Any,
    weights: Any = None,
    *,
    backend: str = "auto",
    n_threads: int | None = None,
    simd: str | None = None,
) -> Sketch:
    """Sketch of an in-memory array; see :meth:`SketchOperator.sketch`."""
    if backend not in BACKENDS:
        raise InvalidParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
    X = as_data_matrix(X, operator.dim)
    w = as_weights(weights, X.shape[0])
    threads = check_n_threads(n_threads)
    if backend == "numpy":
        from sketchcore.reference import sketch_reference

        check_finite_rows(X)
        return sketch_reference(operator, X, w)
    arrays = operator._arrays_for(X.dtype)
    options = dict(quantize=operator.quantize, simd=simd, n_threads=threads)
    if operator.kind == "structured":
        sums = _core.sketch_structured(X, *arrays, w, **options)
    else:
        sums = _core.sketch_dense(X, *arrays, w, **options)
    return Sketch(operator, *sums)
