"""Operators seen from standardised coordinates ``(x - mean) / std``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from sketchcore.exceptions import DimensionMismatchError, InvalidParameterError

if TYPE_CHECKING:
    from sketchcore.core.operator import SketchOperator

__all__ = ["StandardizedOperator"]


class StandardizedOperator:
    """An operator seen from standardised coordinates ``u = (x - mean) / std``.

    Since ``omega . x + xi = (std * omega) . u + (xi + omega . mean)``, a sketch
    of raw data made with ``base`` *is* the sketch of the standardised data
    under frequencies ``std[:, None] * Omega`` and dither ``xi + mean @ Omega``,
    exactly. So standardisation statistics can come from the same single pass
    as the sketch, and decoders work in standardised coordinates.
    """

    kind = "standardized"
    base: SketchOperator | StandardizedOperator
    mean: np.ndarray
    std: np.ndarray
    dim: int
    sketch_size: int
    quantize: bool
    has_dither: bool
    radius: str
    seed: int
    sigma: float
    fingerprint: str

    def __init__(self, base: SketchOperator | StandardizedOperator, mean: Any, std: Any) -> None:
        mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        if mean.shape != (base.dim,) or std.shape != (base.dim,):
            raise DimensionMismatchError(f"mean and std must have shape ({base.dim},)")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise InvalidParameterError("mean must be finite and std finite and positive")
        self.base, self.mean, self.std = base, mean, std
        self.dim, self.sketch_size = base.dim, base.sketch_size
        self.quantize, self.has_dither, self.radius, self.seed = base.quantize, True, base.radius, base.seed
        # Typical scale of the components in standardised units.
        self.sigma = float(base.sigma / np.exp(np.mean(np.log(std))))
        # Over a structured operator nothing d x m is formed: the dither goes
        # through the fast transforms and the decoders generate the frequencies.
        self._frequencies: np.ndarray | None = None
        if base.kind == "structured":
            xi = base.dither + base.project(mean)[0]
        else:
            xi = base.dither + mean @ base.frequencies
        xi.setflags(write=False)
        self._dither = xi
        self._squared: np.ndarray | None = None
        h = hashlib.sha256(base.fingerprint.encode())
        h.update(mean.astype("<f8").tobytes())
        h.update(std.astype("<f8").tobytes())
        self.fingerprint = h.hexdigest()

    dither = property(lambda self: self._dither, doc="Dither in standardised coordinates (m,).")

    @property
    def frequencies(self) -> np.ndarray:
        """Frequencies in standardised coordinates, ``std[:, None] * Omega`` (d x m),
        materialised on first access (decoders of a structured base never ask)."""
        if self._frequencies is None:
            freqs = self.std[:, None] * self.base.frequencies
            freqs.setflags(write=False)
            self._frequencies = freqs
        return self._frequencies

    @property
    def squared_frequencies(self) -> np.ndarray:
        if self._squared is None:
            self._squared = self.frequencies * self.frequencies
        return self._squared

    def project(self, points: np.ndarray) -> np.ndarray:
        """``points @ (std[:, None] * Omega)`` (fast transforms over a structured base)."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if self._frequencies is None and self.base.kind == "structured":
            return self.base.project(points * self.std)
        return points @ self.frequencies

    def get_params(self) -> dict[str, Any]:
        return {**self.base.get_params(), "standardize": {"mean": self.mean.tolist(), "std": self.std.tolist()}}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StandardizedOperator) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"StandardizedOperator({self.base!r})"
