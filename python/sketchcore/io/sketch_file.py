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
points), ``sample_capacity`` and optionally ``max_weight`` (the largest
sample weight, ``float.hex``).

Sketch files are untrusted input (sites exchange them). Loading reads only
a regular file of at most :data:`MAX_FILE_BYTES`, then verifies, in order:
the magic, the checksum (any flipped byte or truncation, the version field
included, raises :class:`CorruptSketchFileError`), the version (newer
versions are refused with :class:`UnsupportedFormatError`; every version
keeps this prefix and the trailing SHA-256), every header field's type and
range (operator parameters within :data:`~sketchcore.core.operator.MAX_DIM`,
:data:`~sketchcore.core.operator.MAX_SKETCH_SIZE` and
:data:`~sketchcore.core.operator.MAX_DENSE_ENTRIES`, array lengths against
the operator and the payload, privacy record, metadata nesting), the values
(finite sums no larger than the weight, a data box with lower <= upper,
samples inside it), all before anything is allocated or regenerated; then
regenerates the operator and compares its fingerprint
(:class:`FingerprintMismatchError`). Every inconsistency is a
:class:`CorruptSketchFileError`. A file that passes all of that is the
sketch that was saved, bit for bit. The checksum detects damage, not
forgery: anyone can write a valid file, so a file proves nothing about the
data it claims to summarise, and its ``privacy`` record is a claim by
whoever wrote it.

Writing goes to a temporary file in the same folder, is flushed and
``fsync``-ed, then renamed over the target (atomic on POSIX and Windows), and
the folder is ``fsync``-ed: a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sketchcore._core import __version__
from sketchcore.core import registry
from sketchcore.core.operator import (
    MAX_DENSE_ENTRIES,
    MAX_DIM,
    MAX_SEED,
    MAX_SKETCH_SIZE,
    OPERATOR_KINDS,
    RADIUS_LAWS,
    SketchOperator,
)
from sketchcore.core.sketch import MAX_SAMPLE_CAPACITY, Sketch
from sketchcore.exceptions import (
    CorruptSketchFileError,
    FingerprintMismatchError,
    InvalidParameterError,
    SketchcoreError,
    SketchFileError,
    UnsupportedFormatError,
)
from sketchcore.io.privacy import PRIVATE_METADATA_KEYS

__all__ = ["save_sketch", "load_sketch", "read_sketch_header", "encode_sketch", "decode_sketch", "FORMAT_VERSION",
           "MAGIC", "MAX_FILE_BYTES"]

MAGIC = b"SKETCHCORE\x00\x01"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<12sIQ")
_DIGEST = 32
_ARRAYS = ("cos_sums", "sin_sums", "lower", "upper")
#: Largest sketch file read or written (bytes); checked before reading.
MAX_FILE_BYTES = 1 << 31
#: Largest JSON header (bytes).
MAX_HEADER_BYTES = 1 << 28
#: Deepest nesting of the free metadata.
MAX_METADATA_DEPTH = 32
#: Largest sample count a header may record.
MAX_COUNT = (1 << 63) - 1


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
    if sketch.max_weight is not None:
        header["max_weight"] = float.hex(float(sketch.max_weight))
    try:
        _check_metadata(meta, sketch.dim)
        if sketch.privacy is not None:
            extra = set(meta) - set(PRIVATE_METADATA_KEYS)
            if extra:
                raise _HeaderError(f"a private sketch carries only {PRIVATE_METADATA_KEYS}, not {sorted(extra)[:5]}")
        head = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    except (_HeaderError, TypeError, ValueError, RecursionError) as exc:
        raise InvalidParameterError(f"cannot save this metadata: {exc}") from None
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head
    body += b"".join(np.ascontiguousarray(a, dtype="<f8").tobytes() for a in arrays)
    return body + hashlib.sha256(body).digest()


def decode_sketch(data: bytes, source: str = "<bytes>") -> Sketch:
    """Parses and verifies the bytes of a sketch file.

    The bytes are untrusted: every header field is checked (type and range,
    array lengths against the operator, values of the sums, weight, count,
    data box, privacy record and metadata) before anything is allocated or
    regenerated. Any inconsistency raises :class:`CorruptSketchFileError`.
    """

    def corrupt(why: str) -> CorruptSketchFileError:
        return CorruptSketchFileError(f"{source}: not a valid sketch file ({why})", path=source)

    if len(data) > MAX_FILE_BYTES:
        raise corrupt(f"{len(data)} bytes, more than the {MAX_FILE_BYTES} a sketch file may have")
    if len(data) < _PREFIX.size + _DIGEST:
        raise corrupt(f"only {len(data)} bytes")
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise corrupt("bad magic number")
    # The checksum covers the version: a flipped byte anywhere is corruption,
    # never mistaken for a newer format (every version keeps the prefix and
    # the trailing SHA-256).
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise corrupt("checksum mismatch: truncated or corrupted")
    if version > FORMAT_VERSION:
        raise _newer(source, version)
    if version < 1:
        raise corrupt(f"unknown format version {version}")
    start = _PREFIX.size
    if head_len > min(MAX_HEADER_BYTES, len(body) - start):
        raise corrupt("header longer than the file")
    if (len(body) - start - head_len) % 8:
        raise corrupt("payload is not a whole number of float64 values")
    try:
        header = json.loads(body[start : start + head_len].decode("utf-8"), parse_constant=_no_constant)
        fields = _check_header(header, version, (len(body) - start - head_len) // 8)
    except _HeaderError as exc:
        raise corrupt(str(exc)) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise corrupt(f"malformed header: {type(exc).__name__}: {exc}"[:300]) from None
    payload = np.frombuffer(body, dtype="<f8", offset=start + head_len)
    arrays, pos = {}, 0
    for name, n in fields["arrays"]:
        arrays[name] = payload[pos : pos + n].astype(np.float64)
        pos += n
    try:
        _check_values(fields, arrays)
    except _HeaderError as exc:
        raise corrupt(str(exc)) from None
    try:
        op = SketchOperator.from_params(header["operator"])
    except SketchcoreError as exc:  # every parameter was checked; a last line
        raise corrupt(f"operator: {exc}") from None
    if op.fingerprint != fields["fingerprint"]:
        raise FingerprintMismatchError(
            f"{source}: the regenerated operator's fingerprint {op.fingerprint[:12]} differs from the "
            f"saved {fields['fingerprint'][:12]} (written by sketchcore {fields['version']!r}): "
            "a forged or damaged header, or an incompatible sketchcore",
            path=source,
        )
    d = op.dim
    samples = arrays.get("samples")
    return Sketch(
        op,
        arrays["cos_sums"],
        arrays["sin_sums"],
        fields["weight"],
        fields["count"],
        arrays["lower"],
        arrays["upper"],
        decay=fields["decay"],
        privacy=fields["privacy"],
        metadata=fields["metadata"],
        samples=None if samples is None else samples.reshape(-1, d),
        sample_capacity=fields["sample_capacity"],
        max_weight=fields["max_weight"],
    )


class _HeaderError(Exception):
    """A header field out of its type or range (becomes CorruptSketchFileError)."""


def _no_constant(name: str) -> None:
    raise _HeaderError(f"header holds the non-JSON constant {name}")


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _HeaderError(f"{what} must be an integer in [{low}, {high}], got {_short(value)}")
    return value


def _hex_float(value: Any, what: str) -> float:
    if not isinstance(value, str) or len(value) > 40:
        raise _HeaderError(f"{what} must be a float.hex string, got {_short(value)}")
    try:
        return float.fromhex(value)
    except (ValueError, OverflowError):
        raise _HeaderError(f"{what} must be a float.hex string, got {_short(value)}") from None


def _real(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _HeaderError(f"{what} must be a number, got {_short(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise _HeaderError(f"{what} is out of range") from None
    if not math.isfinite(out):
        raise _HeaderError(f"{what} must be finite, got {_short(value)}")
    return out


def _reals(value: Any, what: str, n: int) -> np.ndarray:
    if not isinstance(value, list) or len(value) != n:
        raise _HeaderError(f"{what} must be a list of {n} numbers")
    return np.array([_real(v, what) for v in value], dtype=np.float64)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_operator(params: Any) -> tuple[int, int, str]:
    """Checks the operator parameters without building it: (dim, sketch_size, kind)."""
    if not isinstance(params, dict):
        raise _HeaderError("operator must be an object")
    allowed = {"dim", "sketch_size", "sigma", "kind", "radius", "dither", "quantize", "seed", "standardize", "support"}
    unknown = set(params) - allowed
    if unknown:
        raise _HeaderError(f"operator has unknown parameters {sorted(unknown)[:5]}")
    missing = {"dim", "sketch_size", "sigma", "kind", "radius", "dither", "seed"} - set(params)
    if missing:
        raise _HeaderError(f"operator misses {sorted(missing)}")
    d = _int(params["dim"], "operator dim", 1, MAX_DIM)
    m = _int(params["sketch_size"], "operator sketch_size", 1, MAX_SKETCH_SIZE)
    kind = params["kind"]
    if kind not in OPERATOR_KINDS:
        raise _HeaderError(f"operator kind must be one of {OPERATOR_KINDS}, got {_short(kind)}")
    if kind != "structured" and d * m > MAX_DENSE_ENTRIES:
        raise _HeaderError(f"a dense operator of {d} x {m} frequencies (at most {MAX_DENSE_ENTRIES})")
    if "support" in params:
        _int(params["support"], "operator support", 1, MAX_DIM)
    if params["radius"] not in RADIUS_LAWS:
        raise _HeaderError(f"operator radius must be one of {RADIUS_LAWS}, got {_short(params['radius'])}")
    sigma = params["sigma"]
    sigma = _hex_float(sigma, "operator sigma") if isinstance(sigma, str) else _real(sigma, "operator sigma")
    if not (math.isfinite(sigma) and sigma > 0):
        raise _HeaderError(f"operator sigma must be positive and finite, got {sigma!r}")
    for flag in ("dither", "quantize"):
        if flag in params and not isinstance(params[flag], bool):
            raise _HeaderError(f"operator {flag} must be true or false")
    if params.get("quantize") and not params["dither"]:
        raise _HeaderError("a quantized operator needs a dither")
    _int(params["seed"], "operator seed", 0, MAX_SEED)
    if "standardize" in params:
        std = params["standardize"]
        if not isinstance(std, dict) or set(std) != {"mean", "std"}:
            raise _HeaderError("operator standardize must be an object with mean and std")
        _reals(std["mean"], "standardize mean", d)
        if not np.all(_reals(std["std"], "standardize std", d) > 0):
            raise _HeaderError("standardize std must be positive")
    return d, m, kind


def _check_privacy(value: Any) -> dict | None:
    """A private sketch's record: mechanism and budget, each field checked."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _HeaderError("privacy must be null or an object")
    need = {"mechanism", "epsilon", "delta", "epsilon_sums", "epsilon_weight", "public_weight", "noise_scale"}
    missing = need - set(value)
    if missing:
        raise _HeaderError(f"privacy misses {sorted(missing)}")
    unknown = set(value) - need - {"neighbouring"}
    if unknown:
        raise _HeaderError(f"privacy has unknown fields {sorted(unknown)[:5]}")
    if value["mechanism"] not in ("laplace", "gaussian", "mixed"):
        raise _HeaderError(f"privacy mechanism {_short(value['mechanism'])} is unknown")
    eps = _real(value["epsilon"], "privacy epsilon")
    eps_sums = _real(value["epsilon_sums"], "privacy epsilon_sums")
    eps_weight = _real(value["epsilon_weight"], "privacy epsilon_weight")
    delta = _real(value["delta"], "privacy delta")
    scale = _real(value["noise_scale"], "privacy noise_scale")
    if not (eps > 0 and eps_sums > 0 and eps_weight >= 0 and eps_sums + eps_weight <= eps * (1 + 1e-9)):
        raise _HeaderError("privacy budget is inconsistent (epsilon_sums + epsilon_weight must be <= epsilon)")
    if not (0 <= delta < 1 and scale > 0):
        raise _HeaderError("privacy delta must be in [0, 1) and noise_scale positive")
    if not isinstance(value["public_weight"], bool):
        raise _HeaderError("privacy public_weight must be true or false")
    if value.get("neighbouring") is not None and not isinstance(value["neighbouring"], str):
        raise _HeaderError("privacy neighbouring must be a string")
    return dict(value)


def _check_metadata(value: Any, dim: int) -> dict:
    """Free JSON, bounded in depth; the keys the library reads are checked."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _HeaderError(f"metadata must be an object, got {type(value).__name__}")
    stack: list[tuple[dict | list, int]] = [(value, 1)]
    while stack:  # iterative: no recursion on hostile nesting
        node, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise _HeaderError(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    moments = value.get("feature_moments")
    if moments is not None:
        if not isinstance(moments, dict) or set(moments) != {"count", "mean", "m2"}:
            raise _HeaderError("metadata feature_moments must be an object with count, mean and m2")
        if _real(moments["count"], "feature_moments count") < 0:
            raise _HeaderError("feature_moments count must be non-negative")
        _reals(moments["mean"], "feature_moments mean", dim)
        if np.any(_reals(moments["m2"], "feature_moments m2", dim) < 0):
            raise _HeaderError("feature_moments m2 must be non-negative")
    return dict(value)


def _check_header(header: Any, version: int, n_floats: int) -> dict:
    """Every header field checked for type and range, and the array lengths
    against the operator and the payload, before anything is allocated."""
    if not isinstance(header, dict):
        raise _HeaderError("header must be a JSON object")
    missing = {"operator", "fingerprint", "weight", "count", "arrays"} - set(header)
    if missing:
        raise _HeaderError(f"header misses {sorted(missing)}")
    if header.get("format_version", version) != version:
        raise _HeaderError("header format_version differs from the file's")
    d, m, _ = _check_operator(header["operator"])
    fingerprint = header["fingerprint"]
    if not (isinstance(fingerprint, str) and len(fingerprint) == 64
            and all(c in "0123456789abcdef" for c in fingerprint)):
        raise _HeaderError("fingerprint must be 64 lowercase hexadecimal digits")
    weight = _hex_float(header["weight"], "weight")
    if not (math.isfinite(weight) and weight >= 0):
        raise _HeaderError(f"weight must be finite and non-negative, got {weight!r}")
    count = _int(header["count"], "count", 0, MAX_COUNT)
    decay = _hex_float(header.get("decay", float.hex(1.0)), "decay")
    if not 0.0 < decay <= 1.0:
        raise _HeaderError(f"decay must be in (0, 1], got {decay!r}")
    max_weight = header.get("max_weight")
    if max_weight is not None:
        max_weight = _hex_float(max_weight, "max_weight")
        if not (math.isfinite(max_weight) and 0 <= max_weight):
            raise _HeaderError(f"max_weight must be finite and non-negative, got {max_weight!r}")
    capacity = _int(header.get("sample_capacity", 0), "sample_capacity", 0, MAX_SAMPLE_CAPACITY)
    privacy = _check_privacy(header.get("privacy"))
    metadata = _check_metadata(header.get("metadata"), d)
    for key in ("created", "sketchcore_version"):
        if key in header and not isinstance(header[key], str):
            raise _HeaderError(f"{key} must be a string")
    arrays = header["arrays"]
    if not isinstance(arrays, list) or len(arrays) not in (4, 5):
        raise _HeaderError("arrays must list 4 or 5 [name, length] pairs")
    expected = {"cos_sums": m, "sin_sums": m, "lower": d, "upper": d}
    lengths = []
    for i, item in enumerate(arrays):
        if not (isinstance(item, list) and len(item) == 2):
            raise _HeaderError("arrays must list [name, length] pairs")
        name, n = item
        want = (*_ARRAYS, "samples")[i]
        if name != want:
            raise _HeaderError(f"array {i} must be {want}, got {_short(name)}")
        if name == "samples":
            n = _int(n, "samples length", 0, capacity * d)
            if n % d:
                raise _HeaderError(f"samples length {n} is not a multiple of dim {d}")
        elif n != expected[name] or isinstance(n, bool):
            raise _HeaderError(f"{name} length must be {expected[name]}, got {_short(n)}")
        lengths.append((name, n))
    if sum(n for _, n in lengths) != n_floats:
        raise _HeaderError(f"payload has {n_floats} values, the header lists {sum(n for _, n in lengths)}")
    if privacy is not None:
        if len(lengths) == 5 and lengths[4][1]:
            raise _HeaderError("a private sketch carries no sample of rows")
        extra = set(metadata) - set(PRIVATE_METADATA_KEYS)
        if extra:
            raise _HeaderError(f"a private sketch carries metadata {sorted(extra)[:5]} beyond the public keys")
    version_text = header.get("sketchcore_version")
    return {
        "fingerprint": fingerprint, "weight": weight, "count": count, "decay": decay, "privacy": privacy,
        "metadata": metadata, "arrays": lengths, "sample_capacity": capacity, "max_weight": max_weight,
        "version": version_text, "private": privacy is not None,
    }


def _check_values(fields: dict, arrays: dict) -> None:
    """The payload values: finite sums within what the weight allows, a data
    box with lower <= upper (or the empty box), samples inside it."""
    cos, sin, lower, upper = (arrays[k] for k in _ARRAYS)
    if not (np.all(np.isfinite(cos)) and np.all(np.isfinite(sin))):
        raise _HeaderError("the sums hold NaN or infinity")
    if not fields["private"]:
        # |sum_i w_i cos t_i| <= sum_i w_i, rounding aside.
        limit = fields["weight"] * (1.0 + 1e-4)
        if np.max(np.abs(cos), initial=0.0) > limit or np.max(np.abs(sin), initial=0.0) > limit:
            raise _HeaderError("the sums exceed the total weight")
    if np.any(np.isnan(lower)) or np.any(np.isnan(upper)):
        raise _HeaderError("the data box holds NaN")
    empty = bool(np.all(lower == np.inf) and np.all(upper == -np.inf))
    if not empty and not np.all(lower <= upper):
        raise _HeaderError("the data box has lower > upper")
    if not fields["private"] and fields["count"] == 0 and not empty:
        raise _HeaderError("a sketch of no sample must have the empty data box")
    finite_box = bool(np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)))
    if not fields["private"] and fields["count"] > 0 and (empty or not finite_box):
        raise _HeaderError("the data box of a non-empty sketch must be finite")
    samples = arrays.get("samples")
    if samples is not None and samples.size:
        rows = samples.reshape(-1, lower.size)
        if not np.all(np.isfinite(rows)) or np.any(rows < lower) or np.any(rows > upper):
            raise _HeaderError("the sample rows must be finite and inside the data box")
    if fields["count"] == 0 and fields["weight"] > 0 and not fields["private"]:
        raise _HeaderError("a positive weight without samples")


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
    atomic_write(path, lambda f: f.write(data))


def atomic_write(path: Any, write: Any) -> None:
    """Writes a file atomically: ``write(f)`` fills a temporary file in the
    target's folder, which is ``fsync``-ed and renamed over ``path``, and the
    folder is ``fsync``-ed. A crash mid-write leaves the previous file intact;
    the file gets the mode of the one it replaces, or what the umask gives.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp creates the file 0600: give it the mode of the file it
        # replaces, or what the user's umask gives a new file.
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
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


def _umask() -> int:
    """The process's umask (read from /proc where it can be, else set and restored)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_sketch(path: Any) -> Sketch:
    """Reads and verifies a sketch file written by :func:`save_sketch`.

    Only regular files of at most :data:`MAX_FILE_BYTES` are read (checked
    before reading: devices, FIFOs and oversized files are refused).
    """
    source = str(path)
    # Checked before opening too: opening a FIFO for reading would block.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise SketchFileError(f"{source}: not a regular file", path=source)
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SketchFileError(f"{source}: not a regular file", path=source)
        if info.st_size > MAX_FILE_BYTES:
            raise CorruptSketchFileError(
                f"{source}: not a valid sketch file ({info.st_size} bytes, more than the "
                f"{MAX_FILE_BYTES} a sketch file may have)",
                path=source,
            )
        data = f.read(MAX_FILE_BYTES + 1)
    return decode_sketch(data, source)


def read_sketch_header(path: Any) -> dict:
    """The JSON header of a sketch file (keys in the module docstring), read
    after the whole file passed the checks of :func:`load_sketch`."""
    load_sketch(path)
    source = str(path)
    try:
        with open(path, "rb") as f:
            _, _, head_len = _PREFIX.unpack(f.read(_PREFIX.size))
            header = json.loads(f.read(min(head_len, MAX_HEADER_BYTES)).decode("utf-8"))
    except (struct.error, ValueError) as exc:  # the file changed since it was checked
        raise CorruptSketchFileError(f"{source}: not a valid sketch file ({exc})", path=source) from None
    if not isinstance(header, dict):
        raise CorruptSketchFileError(f"{source}: not a valid sketch file", path=source)
    return header


registry.register_file_format(save_sketch, load_sketch)
