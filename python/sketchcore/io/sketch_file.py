"""The sketch file format (``.sketch``), versioned, checksummed, written atomically.

Layout (all integers little-endian)::

    offset  size  content
    0       12    magic  b"SKETCHCORE\\x00\\x01"
    12      4     format version (uint32), currently 1
    16      8     header length H (uint64)
    24      H     header: UTF-8 JSON (see below)
    24+H    P     payload: float64 little-endian arrays, in the order and
                  lengths listed in header["arrays"]
    end-32  32    SHA-256 of every preceding byte

Header keys: ``format_version``, ``operator`` (the parameters of
:meth:`SketchOperator.get_params`, enough to regenerate it bit for bit),
``fingerprint``, ``weight`` and ``decay`` (as ``float.hex`` strings, exact),
``count``, ``privacy`` (null or the mechanism and budget), ``metadata``
(free JSON), ``created`` (UTC, ISO 8601), ``sketchcore_version`` and
``arrays`` (``[[name, length], ...]`` for ``cos_sums``, ``sin_sums``,
``lower``, ``upper``, then optionally ``samples``, the decoders' starting
points) and ``sample_capacity``.

Loading verifies, in order: the magic, the version (newer versions are
refused with :class:`UnsupportedFormatError`), the total length, the checksum
(any flipped byte or truncation raises :class:`CorruptSketchFileError`), the
header, then regenerates the operator and compares its fingerprint. A file
that passes all of that is the sketch that was saved, bit for bit.

Writing goes to a temporary file in the same folder, is flushed and
``fsync``-ed, then renamed over the target (atomic on POSIX and Windows), and
the folder is ``fsync``-ed: a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sketchcore._core import __version__
from sketchcore.core import registry
from sketchcore.core.operator import SketchOperator
from sketchcore.core.sketch import Sketch
from sketchcore.exceptions import CorruptSketchFileError, OperatorMismatchError, UnsupportedFormatError

__all__ = ["save_sketch", "load_sketch", "read_sketch_header", "encode_sketch", "decode_sketch", "FORMAT_VERSION",
           "MAGIC"]

MAGIC = b"SKETCHCORE\x00\x01"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<12sIQ")
_DIGEST = 32
_ARRAYS = ("cos_sums", "sin_sums", "lower", "upper")


def encode_sketch(sketch: Sketch, metadata: dict | None = None) -> bytes:
    """The bytes of a sketch file."""
    meta = dict(sketch.metadata)
    if metadata:
        meta.update(metadata)
    names = list(_ARRAYS) + (["samples"] if sketch.samples is not None else [])
    arrays = [getattr(sketch, name) for name in names]
    header = {
        "format_version": FORMAT_VERSION,
        "operator": sketch.operator.get_params(),
        "fingerprint": sketch.fingerprint,
        "weight": float.hex(float(sketch.weight)),
        "count": int(sketch.count),
        "decay": float.hex(float(sketch.decay)),
        "privacy": sketch.privacy,
        "metadata": meta,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "sketchcore_version": __version__,
        "arrays": [[name, int(a.size)] for name, a in zip(names, arrays, strict=True)],
        "sample_capacity": int(sketch.sample_capacity),
    }
    head = json.dumps(header, sort_keys=True).encode("utf-8")
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head
    body += b"".join(np.ascontiguousarray(a, dtype="<f8").tobytes() for a in arrays)
    return body + hashlib.sha256(body).digest()


def decode_sketch(data: bytes, source: str = "<bytes>") -> Sketch:
    """Parses and verifies the bytes of a sketch file."""
    def corrupt(why: str) -> CorruptSketchFileError:
        return CorruptSketchFileError(f"{source}: not a valid sketch file ({why})", path=source)

    if len(data) < _PREFIX.size + _DIGEST:
        raise corrupt(f"only {len(data)} bytes")
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise corrupt("bad magic number")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        if version > FORMAT_VERSION:
            raise _newer(source, version)
        raise corrupt("checksum mismatch: truncated or corrupted")
    if version > FORMAT_VERSION:
        raise _newer(source, version)
    if version < 1:
        raise corrupt(f"unknown format version {version}")
    start = _PREFIX.size
    if start + head_len > len(body):
        raise corrupt("header longer than the file")
    try:
        header = json.loads(body[start : start + head_len].decode("utf-8"))
        lengths = [(name, int(n)) for name, n in header["arrays"]]
        payload = np.frombuffer(body, dtype="<f8", offset=start + head_len)
        names = [name for name, _ in lengths]
        known = names[:4] == list(_ARRAYS) and names[4:] in ([], ["samples"])
        if not known or payload.size != sum(n for _, n in lengths):
            raise ValueError("payload size does not match the header")
        arrays, pos = {}, 0
        for name, n in lengths:
            arrays[name] = payload[pos : pos + n].astype(np.float64)
            pos += n
        op = SketchOperator.from_params(header["operator"])
        weight = float.fromhex(header["weight"])
        decay = float.fromhex(header.get("decay", float.hex(1.0)))
        count = int(header["count"])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise corrupt(f"malformed header or payload: {exc}") from exc
    if op.fingerprint != header["fingerprint"]:
        raise OperatorMismatchError(
            f"{source}: the regenerated operator's fingerprint {op.fingerprint[:12]} differs from the "
            f"saved {header['fingerprint'][:12]} (written by sketchcore {header.get('sketchcore_version')})"
        )
    return Sketch(
        op,
        arrays["cos_sums"],
        arrays["sin_sums"],
        weight,
        count,
        arrays["lower"],
        arrays["upper"],
        decay=decay,
        privacy=header.get("privacy"),
        metadata=header.get("metadata"),
        samples=arrays.get("samples"),
        sample_capacity=int(header.get("sample_capacity", 0)),
    )


def _newer(source: str, version: int) -> UnsupportedFormatError:
    return UnsupportedFormatError(
        f"{source}: format version {version} is newer than this sketchcore reads ({FORMAT_VERSION}); "
        "upgrade sketchcore",
        path=source,
    )


def save_sketch(sketch: Sketch, path: Any, *, metadata: dict | None = None) -> None:
    """Writes ``sketch`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    data = encode_sketch(sketch, metadata)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # not supported on every platform/file system


def load_sketch(path: Any) -> Sketch:
    """Reads and verifies a sketch file written by :func:`save_sketch`."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_sketch(data, str(path))


def read_sketch_header(path: Any) -> dict:
    """The JSON header of a sketch file (keys in the module docstring), read
    after the whole file passed the checks of :func:`load_sketch`."""
    load_sketch(path)
    source = str(path)
    try:
        with open(path, "rb") as f:
            _, _, head_len = _PREFIX.unpack(f.read(_PREFIX.size))
            header = json.loads(f.read(head_len).decode("utf-8"))
    except (struct.error, ValueError) as exc:  # the file changed since it was checked
        raise CorruptSketchFileError(f"{source}: not a valid sketch file ({exc})", path=source) from None
    if not isinstance(header, dict):
        raise CorruptSketchFileError(f"{source}: not a valid sketch file", path=source)
    return header


registry.register_file_format(save_sketch, load_sketch)
