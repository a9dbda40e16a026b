"""One-pass sketching with Dask: dask arrays and lists of files, on any scheduler.

Each task sketches one block of rows (or one file) with the Rust kernel on the
worker that holds it; partial sums (O(m) floats) are combined in a tree of
bounded fan-in and only the final sums reach the client. The operator travels
as its parameters (a few hundred bytes; see ``SketchOperator.__reduce__``), is
rebuilt once per worker process and checked against its fingerprint.

The same three lines run on a laptop, a set of machines or a SLURM cluster::

    from dask.distributed import Client
    client = Client(cluster_or_address)           # LocalCluster(), "tcp://host:8786", SLURMCluster(...)
    sketch = op.sketch(dask_array)                # or sketch_files(paths, op)

Dask is an optional dependency (``pip install 'sketchcore[dask]'``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sketchcore.core.operator import _rebuild_operator
from sketchcore.core.sketch import Sketch, default_sample_capacity, merge_row_samples
from sketchcore.core.validation import MAX_THREADS, is_dask_array
from sketchcore.exceptions import (
    BackendUnavailableError,
    DataShapeError,
    DimensionMismatchError,
    DTypeError,
    InvalidParameterError,
    SketchcoreError,
    SketchFileError,
)

__all__ = ["is_dask_array", "sketch_dask_array", "sketch_files", "worker_threads", "FAN_IN"]

#: Partial sketches combined per reduction task.
FAN_IN = 8

_Partial = tuple  # (cos, sin, weight, count, lower, upper, max_weight, sample of rows)


def _import_dask():
    try:
        import dask
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised without dask installed
        raise BackendUnavailableError(
            "Dask is not installed: pip install 'sketchcore[dask]' (dask[array] and distributed)"
        ) from exc
    return dask


@functools.lru_cache(maxsize=8)
def _operator(params_key: str, fingerprint: str):
    """The operator, rebuilt once per worker process and fingerprint-checked."""
    import json

    return _rebuild_operator(json.loads(params_key), fingerprint)


def _op_key(op) -> tuple[str, str]:
    import json

    return json.dumps(op.get_params(), sort_keys=True), op.fingerprint


def worker_threads() -> int | None:
    """The thread count of the Dask worker running this task, or None outside one.

    Kernels called on a worker use this many threads: every task on the
    worker shares one pool of that size, so a worker never runs more kernel
    threads than it advertises (instead of one pool of all cores per worker).
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    n = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", None)
    return int(n) if isinstance(n, (int, np.integer)) and 1 <= n <= MAX_THREADS else None


def _sketch_block(block: np.ndarray, weights: np.ndarray | None, op_key: tuple[str, str], where: str) -> _Partial:
    """Sketch sums of one block, on the worker."""
    op = _operator(*op_key)
    try:
        # NumPy (or memory-mapped) blocks go to the Rust kernel, CuPy blocks to
        # the CUDA kernels ("auto" picks by array type).
        if type(block).__module__.startswith("cupy"):
            s = op.sketch(block, weights)
        else:
            s = op.sketch(np.asarray(block), weights, n_threads=worker_threads())
    except SketchcoreError as exc:
        raise type(exc)(f"{where}: {exc}", **_info(exc)) from exc
    samples = s.samples if s.samples is not None else np.empty((0, op.dim))
    return (s.cos_sums, s.sin_sums, s.weight, s.count, s.lower, s.upper, s.max_weight, samples)


def _info(exc: Exception) -> dict:
    return {k: v for k, v in vars(exc).items() if not k.startswith("_")}


def _combine(*parts: _Partial, capacity: int = 0, fingerprint: str = "") -> _Partial:
    """Adds partial sums in the given order; the samples of rows are merged
    as :meth:`Sketch.merge` merges them (deterministically)."""
    cos, sin, w, n, lo, hi, top, rows = (np.array(parts[0][0]), np.array(parts[0][1]), parts[0][2], parts[0][3],
                                         np.array(parts[0][4]), np.array(parts[0][5]), parts[0][6], parts[0][7])
    for p in parts[1:]:
        rows = merge_row_samples(rows, n, p[7], p[3], capacity, fingerprint)
        cos += p[0]
        sin += p[1]
        w += p[2]
        n += p[3]
        np.minimum(lo, p[4], out=lo)
        np.maximum(hi, p[5], out=hi)
        top = None if top is None or p[6] is None else max(top, p[6])
    return (cos, sin, w, n, lo, hi, top, rows)


def _tree(partials: list, op, fan_in: int = FAN_IN):
    """Delayed tree reduction with bounded fan-in (order fixed, hence deterministic)."""
    from dask import delayed

    combine = delayed(functools.partial(_combine, capacity=default_sample_capacity(op), fingerprint=op.fingerprint),
                      pure=True)
    level = list(partials)
    while len(level) > 1:
        level = [combine(*level[i : i + fan_in]) if len(level[i : i + fan_in]) > 1 else level[i]
                 for i in range(0, len(level), fan_in)]
    return level[0]


def _finish(op, total: _Partial):
    cos, sin, w, n, lo, hi, top, rows = total
    return Sketch(op, cos, sin, w, n, lo, hi, max_weight=top, samples=rows,
                  sample_capacity=default_sample_capacity(op))


def sketch_dask_array(op, X, weights: Any = None, *, compute: bool = True, **compute_kwargs: Any):
    """Sketch of a 2-D dask array in one pass.

    Column chunks are merged first (each task needs whole rows); each row
    block is sketched where it lives and the partial sums are tree-reduced.
    Works with the threaded, synchronous and process schedulers and with a
    ``distributed.Client`` (whichever is active, or ``scheduler=`` in
    ``compute_kwargs``).

    Parameters
    ----------
    op : SketchOperator
    X : dask.array.Array of shape (n_samples, dim)
    weights : dask or NumPy array of shape (n_samples,), optional
    compute : bool, default=True
        Return a :class:`Sketch`; with False, a ``dask.delayed`` object that
        computes it.
    """
    _import_dask()
    import dask.array as da
    from dask import delayed

    if X.ndim != 2:
        raise DataShapeError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[1] != op.dim:
        raise DimensionMismatchError(f"X has {X.shape[1]} features but the operator expects {op.dim}")
    if X.dtype.kind not in "fiub":
        raise DTypeError(f"X must hold real numbers, got dtype {X.dtype}")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    blocks = X.to_delayed().ravel()
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    if weights is not None:
        w = weights if is_dask_array(weights) else da.from_array(np.asarray(weights), chunks=(X.chunks[0],))
        if w.shape != (X.shape[0],):
                raise DimensionMismatchError(f"weights must have shape ({X.shape[0]},), got {w.shape}")
        w_blocks = w.rechunk((X.chunks[0],)).to_delayed().ravel()
    else:
        w_blocks = [None] * len(blocks)
    key = _op_key(op)
    sketch_block = delayed(_sketch_block, pure=True)
    partials = [
        sketch_block(b, wb, key, f"chunk {i} (rows {starts[i]}..{starts[i + 1]})")
        for i, (b, wb) in enumerate(zip(blocks, w_blocks, strict=True))
    ]
    if not partials:
        return Sketch.empty(op)
    result = delayed(_finish, pure=True)(op, _tree(partials, op))
    return result.compute(**compute_kwargs) if compute else result


def _load_file(path: str) -> np.ndarray:
    """Loads one data file on the worker (.npy, memory-mapped)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return np.load(path, mmap_mode="r")
    raise InvalidParameterError(f"{path}: unsupported file type {ext!r} (expected .npy)")


def _sketch_file(path: str, op_key: tuple[str, str], loader) -> _Partial:
    try:
        data = (loader or _load_file)(path)
    except SketchcoreError:
        raise
    except (OSError, ValueError) as exc:
        raise SketchFileError(f"{path}: cannot read: {exc}", path=path) from exc
    return _sketch_block(data, None, op_key, path)


def sketch_files(
    paths: Sequence[Any],
    op,
    *,
    client: Any = None,
    loader: Any = None,
    fan_in: int = FAN_IN,
):
    """Sketch of the rows of many files, each read and sketched on a worker.

    Parameters
    ----------
    paths : sequence of paths
        ``.npy`` files (N_i x dim), or anything ``loader`` reads.
    op : SketchOperator
    client : distributed.Client, optional
        Default: the active client, else dask's default scheduler.
    loader : callable path -> 2-D array, optional
        Reads one file on the worker (default: ``numpy.load`` with mmap).

    Raises
    ------
    SketchFileError
        Naming the file that could not be read; data errors name the file too.
    """
    _import_dask()
    from dask import delayed

    paths = [os.fspath(p) for p in paths]
    if not paths:
        return Sketch.empty(op)
    key = _op_key(op)
    task = delayed(_sketch_file, pure=True)
    partials = [task(p, key, loader) for p in paths]
    result = delayed(_finish, pure=True)(op, _tree(partials, op, fan_in))
    if client is not None:
        return client.compute(result).result()
    return result.compute()
