"""Exceptions raised by sketchcore.

Every error a user can provoke with bad input is a subclass of both
:class:`SketchcoreError` and :class:`ValueError` (or :class:`OSError` for files),
so ``except ValueError`` keeps working while ``except SketchcoreError``
catches only this library's errors.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SketchcoreError",
    "InvalidParameterError",
    "DataShapeError",
    "DimensionMismatchError",
    "DTypeError",
    "NonFiniteError",
    "NegativeWeightError",
    "OperatorMismatchError",
    "EmptySketchError",
    "BackendUnavailableError",
    "PrivacyError",
    "SketchFileError",
    "CorruptSketchFileError",
    "UnsupportedFormatError",
    "FingerprintMismatchError",
    "PhaseOverflowError",
    "OverlappingDataError",
    "ModelFileError",
    "InternalError",
]


class SketchcoreError(Exception):
    """Base class of all sketchcore errors.

    Keyword arguments given at construction become attributes (for example
    ``row`` and ``column`` of :class:`NonFiniteError`).
    """

    def __init__(self, message: str = "", **info: Any) -> None:
        super().__init__(message)
        for key, value in info.items():
            setattr(self, key, value)


class InvalidParameterError(SketchcoreError, ValueError):
    """A parameter is out of its allowed range or of the wrong kind."""


class DataShapeError(SketchcoreError, ValueError):
    """The data is not a 2-D array of samples (rows) by features (columns)."""


class DimensionMismatchError(DataShapeError):
    """Two arrays (or an array and an operator) disagree on a size."""


class DTypeError(SketchcoreError, ValueError, TypeError):
    """The data type is not a real number type (complex, strings, objects...)."""


class NonFiniteError(SketchcoreError, ValueError):
    """The data or the weights contain NaN or infinity.

    Attributes
    ----------
    row : int
        Index of the first offending sample (or weight).
    column : int or None
        Column of the first offending value in that row, when known.
    """

    row: int
    column: int | None = None


class NegativeWeightError(SketchcoreError, ValueError):
    """A sample weight is negative. Attribute ``index`` locates the first one."""

    index: int


class OperatorMismatchError(SketchcoreError, ValueError):
    """Sketches made with different operators (fingerprints) were combined."""


class EmptySketchError(SketchcoreError, ValueError):
    """The sketch holds no data (total weight 0) where data is needed."""


class BackendUnavailableError(SketchcoreError, ValueError):
    """The requested backend cannot run here (missing package or hardware)."""


class InternalError(SketchcoreError, RuntimeError):
    """A bug in sketchcore (for example a panic in the Rust kernel). Please report it."""


class PrivacyError(SketchcoreError, ValueError):
    """An operation would break a differential-privacy guarantee (merging a
    private sketch with a raw one, updating a private sketch)."""


class SketchFileError(SketchcoreError, OSError):
    """A sketch file cannot be used."""


class CorruptSketchFileError(SketchFileError):
    """A sketch file is truncated or corrupted (bad magic, length or checksum)."""


class UnsupportedFormatError(SketchFileError):
    """A sketch file was written by a newer, unknown format version."""


class FingerprintMismatchError(CorruptSketchFileError, OperatorMismatchError):
    """The operator regenerated from a sketch file's parameters does not have
    the fingerprint the file records (a forged header, or a file from an
    incompatible sketchcore)."""


class OverlappingDataError(SketchcoreError, ValueError):
    """Sketches to merge share data (the same file in two parts, or the same
    sketch twice): the merge would count it twice. Attribute ``path`` names
    the shared file when known."""


class PhaseOverflowError(SketchcoreError, ValueError):
    """Finite data whose phases ``x @ Omega + xi`` overflow the floating-point
    range: the sketch would be NaN. Rescale the data (or cast it to float64)."""


class ModelFileError(SketchFileError):
    """A model file (``sketchcore fit``, :func:`sketchcore.learning.model_file.save_model`)
    cannot be read: not a model file, or inconsistent content."""
