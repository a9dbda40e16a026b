"""The sketching backends and the sketch file format, looked up by name.

The core dispatches through this registry and imports no backend: the
modules of :mod:`sketchcore.backends` register their sketch functions
(``"rust"``, ``"numpy"``, ``"cupy"``, ``"dask"``) and
:mod:`sketchcore.io.sketch_file` registers the file format, when the
``sketchcore`` package is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from sketchcore.exceptions import BackendUnavailableError

if TYPE_CHECKING:
    from sketchcore.core.sketch import Sketch

__all__ = ["FileFormat", "register_backend", "backend", "backends", "register_file_format", "file_format"]

#: A backend's sketch function: ``(operator, X, weights, **options) -> Sketch``.
SketchFunction = Callable[..., "Sketch"]


class FileFormat(NamedTuple):
    """How sketches are written and read."""

    save: Callable[..., None]  # (sketch, path, *, metadata=None)
    load: Callable[[Any], Sketch]  # (path) -> Sketch


_BACKENDS: dict[str, SketchFunction] = {}
_FILE_FORMAT: list[FileFormat] = []


def register_backend(name: str, function: SketchFunction) -> None:
    """Registers (or replaces) the sketch function of backend ``name``."""
    _BACKENDS[name] = function


def backend(name: str) -> SketchFunction:
    """The sketch function registered under ``name``."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise BackendUnavailableError(f"no sketching backend {name!r} is registered") from None


def backends() -> tuple[str, ...]:
    """Names of the registered backends."""
    return tuple(_BACKENDS)


def register_file_format(save: Callable[..., None], load: Callable[[Any], Sketch]) -> None:
    """Registers the functions behind :meth:`Sketch.save` and :meth:`Sketch.load`."""
    _FILE_FORMAT[:] = [FileFormat(save, load)]


def file_format() -> FileFormat:
    """The registered file format."""
    if not _FILE_FORMAT:
        raise BackendUnavailableError("no sketch file format is registered")
    return _FILE_FORMAT[0]
