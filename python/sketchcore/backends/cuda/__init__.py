"""CUDA backend: the kernels of ``sketch.cu`` through CuPy, plus the tools that
verify them without a GPU.

* :func:`sketch_cupy` sketches a CuPy array (or a NumPy array, copied to the
  device in chunks) with ``cupy.RawModule``, compiled once per device and
  cached. Importing :mod:`sketchcore` never imports CuPy.
* :func:`compile_kernels` compiles ``sketch.cu`` with NVRTC for a given
  architecture (sm_80, sm_90 ...) without needing a GPU: CI uses the NVRTC
  library of the ``nvidia-cuda-nvrtc-cu12`` wheel.
* :func:`emulate_sketch` runs the same kernel source on the CPU through the
  host emulation harness (``cuda_emu.h`` + ``emu_harness.cpp``, built with the
  system C++ compiler), for tests against the NumPy reference.

Precision: phases in the input precision, ``sincosf``/``sincos`` (accurate,
not the fast-math intrinsics), float64 accumulation; the same tolerances as
the Rust kernel apply. Install with ``pip install 'sketchcore[cuda]'``
(``cupy-cuda12x``: pick the wheel matching your driver's CUDA major version,
``cupy-cuda11x`` for CUDA 11 drivers).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sketchcore.core.sketch import Sketch
from sketchcore.core.validation import as_data_matrix, as_weights, check_finite_rows
from sketchcore.exceptions import BackendUnavailableError, DimensionMismatchError, InvalidParameterError

__all__ = ["KERNEL_SOURCE", "LaunchConfig", "launch_config", "compile_kernels", "emulate_sketch", "sketch_cupy"]

_HERE = Path(__file__).resolve().parent
#: The kernel source, kept whole in ``sketch.cu``.
KERNEL_SOURCE = (_HERE / "sketch.cu").read_text()
# The dense kernel's blocking (SC_* in sketch.cu): threads per block, the
# frequencies and rows a block covers per tile, features staged per step.
_DENSE_THREADS = 128  # SC_DENSE_THREADS = SC_GX * SC_GY
_BLOCK_FREQS = 128  # SC_BF = SC_GX * SC_TF
_TILE_ROWS = 32  # SC_BR = SC_GY * SC_TR
_STAGED_FEATURES = 16  # SC_KD
_BOX_THREADS = 256  # SC_BOX_THREADS: 8 lanes of 32 features
_GRAD_CHUNK = 32  # SC_GRAD_CHUNK in sketch.cu: sums reduced per pass of the atom kernel
_SHARED_BUDGET = 40 * 1024  # bytes of shared memory per block (all GPUs since sm_50 have 48 KiB)


def dense_shared_bytes(itemsize: int) -> int:
    """Shared memory of the dense kernel (SC_DENSE_SHARED in sketch.cu): the
    transposed X tile and the Omega tile in the input type, the row weights
    and the row groups' sums in float64. Independent of d."""
    return itemsize * (_STAGED_FEATURES * (_TILE_ROWS + 4) + _STAGED_FEATURES * _BLOCK_FREQS) + 8 * (
        _TILE_ROWS + (_DENSE_THREADS // 32) * 2 * _BLOCK_FREQS)


@dataclass(frozen=True)
class LaunchConfig:
    """How a dense sketch call is laid out on the device: a grid of
    (ceil(m / 128), row_blocks) blocks of 128 threads, each block walking
    ``rows_per_block`` rows (a multiple of 32) for 128 frequencies."""

    rows_per_block: int
    row_blocks: int

    def grid(self, m: int) -> tuple[int, int]:
        return -(-m // _BLOCK_FREQS), self.row_blocks


def launch_config(n: int, d: int, m: int, itemsize: int, *, target_blocks: int = 4096) -> LaunchConfig:
    """Rows per block for an (n, d, m) sketch: about ``target_blocks`` blocks
    in all, so that every multiprocessor gets several waves."""
    freq_blocks = -(-m // _BLOCK_FREQS)
    want_row_blocks = max(1, target_blocks // freq_blocks)
    rows_per_block = max(_TILE_ROWS, -(-max(n, 1) // want_row_blocks))
    rows_per_block = -(-rows_per_block // _TILE_ROWS) * _TILE_ROWS
    row_blocks = -(-n // rows_per_block) if n else 0
    return LaunchConfig(rows_per_block, row_blocks)


def box_launch_config(n: int, d: int, *, target_blocks: int = 2048) -> LaunchConfig:
    """Rows per block of the data-box kernel: about ``target_blocks`` blocks
    of 256 threads over the (ceil(d / 32), row_blocks) grid."""
    col_blocks = -(-d // 32)
    want_row_blocks = max(1, target_blocks // col_blocks)
    rows_per_block = max(64, -(-max(n, 1) // want_row_blocks))
    row_blocks = -(-n // rows_per_block) if n else 0
    return LaunchConfig(rows_per_block, row_blocks)


_MAX_OWN = 16  # SC_MAX_OWN in sketch.cu: outputs per thread of the structured kernel


@dataclass(frozen=True)
class StructuredLaunch:
    """Layout of the structured kernel: one thread block per (operator block, row block)."""

    threads: int
    rows_per_block: int
    row_blocks: int


def structured_launch_config(n: int, p: int, m: int, itemsize: int, *, target_blocks: int = 1024,
                             threads: int | None = None) -> StructuredLaunch:
    """Threads and rows per block for the structured kernel (p <= 4096: the
    transform buffer of p values lives in shared memory)."""
    if p * itemsize > _SHARED_BUDGET or p > _MAX_OWN * 1024:
        raise BackendUnavailableError(f"the structured CUDA kernel supports block sizes p <= 4096 (got p = {p})")
    if threads is None:
        threads = min(max(p, 32), 256)
    threads = max(threads, -(-p // _MAX_OWN))
    op_blocks = -(-m // p)
    want_row_blocks = max(1, target_blocks // op_blocks)
    rows_per_block = max(1, -(-max(n, 1) // want_row_blocks))
    row_blocks = -(-n // rows_per_block) if n else 0
    return StructuredLaunch(threads, rows_per_block, row_blocks)


# -- NVRTC (no GPU needed) ------------------------------------------------------


def _nvrtc() -> ctypes.CDLL:
    candidates: list[Path | str] = []
    try:
        import nvidia.cuda_nvrtc as pkg  # the nvidia-cuda-nvrtc-cu12 wheel

        for base in pkg.__path__:
            candidates += sorted(Path(base, "lib").glob("libnvrtc.so*"))
    except ImportError:
        pass
    candidates += ["libnvrtc.so.12", "libnvrtc.so"]
    for cand in candidates:
        try:
            return ctypes.CDLL(str(cand))
        except OSError:
            continue
    raise BackendUnavailableError("NVRTC not found: pip install nvidia-cuda-nvrtc-cu12 (or install the CUDA toolkit)")


def nvrtc_version() -> tuple[int, int]:
    """(major, minor) of the NVRTC library :func:`compile_kernels` uses."""
    lib = _nvrtc()
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


def compile_options(fast_math: bool = False) -> tuple[str, ...]:
    """NVRTC / cupy.RawModule options. ``fast_math`` maps sincosf/expf to the
    hardware intrinsics (__sincosf, __expf): CUDA documents an absolute
    error of 2^-21.41 for __sinf/__cosf on [-pi, pi], growing with |t|
    outside it (no accurate range reduction), so it suits small phases only;
    float64 kernels are unaffected."""
    return ("-std=c++17", "--use_fast_math") if fast_math else ("-std=c++17",)


def compile_kernels(arch: str = "sm_80", source: str = KERNEL_SOURCE, *, fast_math: bool = False) -> bytes:
    """Compiles the kernels with NVRTC for ``arch``; returns the CUBIN (real
    architectures) bytes. Raises ``RuntimeError`` with the compiler log on error."""
    lib = _nvrtc()
    prog = ctypes.c_void_p()
    check = _nvrtc_check(lib)
    check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"sketch.cu", 0, None, None), prog, "create")
    opts = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in compile_options(fast_math)]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    try:
        status = lib.nvrtcCompileProgram(prog, len(opts), arr)
        if status != 0:
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            raise RuntimeError(f"NVRTC failed for {arch}:\n{log.value.decode(errors='replace')}")
        size = ctypes.c_size_t()
        check(lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), prog, "cubin size")
        buf = ctypes.create_string_buffer(size.value)
        check(lib.nvrtcGetCUBIN(prog, buf), prog, "cubin")
        return buf.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _nvrtc_check(lib):
    def check(status: int, prog, what: str) -> None:
        if status != 0:
            lib.nvrtcGetErrorString.restype = ctypes.c_char_p
            raise RuntimeError(f"NVRTC {what}: {lib.nvrtcGetErrorString(status).decode()}")

    return check


# -- host emulation (tests) -------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _emulator() -> ctypes.CDLL:
    sources = [_HERE / "emu_harness.cpp", _HERE / "cuda_emu.h", _HERE / "sketch.cu"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"sketchcore_cuda_emu_{digest}.so"
    if not out.exists():
        cxx = os.environ.get("CXX", "g++")
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        cmd = [cxx, "-std=c++20", "-O2", "-shared", "-fPIC", "-pthread", f"-I{_HERE}", str(_HERE / "emu_harness.cpp"),
               "-o", str(tmp)]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True)
        except OSError as exc:  # no compiler: the emulation is unavailable here
            raise BackendUnavailableError(f"cannot build the CUDA emulation harness with {cxx}: {exc}") from exc
        except subprocess.CalledProcessError as exc:  # the kernel source does not compile: a defect, not a skip
            raise RuntimeError(f"the CUDA emulation harness failed to compile with {cxx}:\n{exc.stderr}") from exc
        os.replace(tmp, out)
    lib = ctypes.CDLL(str(out))
    for name, ctype in (("emu_sketch_dense_f32", ctypes.c_float), ("emu_sketch_dense_f64", ctypes.c_double)):
        fn = getattr(lib, name)
        p = ctypes.POINTER(ctype)
        dp = ctypes.POINTER(ctypes.c_double)
        fn.argtypes = [p, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_int, ctypes.c_int, p, p, dp, ctypes.c_int,
                       ctypes.c_int, ctypes.c_int, dp]
        fn.restype = None
    for name, ctype in (("emu_sketch_structured_f32", ctypes.c_float), ("emu_sketch_structured_f64", ctypes.c_double)):
        fn = getattr(lib, name)
        p = ctypes.POINTER(ctype)
        dp = ctypes.POINTER(ctypes.c_double)
        i = ctypes.c_int
        fn.argtypes = [p, ctypes.c_longlong, ctypes.c_longlong, i, i, i, p, p, p, dp, i, i, i, i, dp]
        fn.restype = None
    for name, ctype in (("emu_atom_objective_f32", ctypes.c_float), ("emu_atom_objective_f64", ctypes.c_double)):
        fn = getattr(lib, name)
        p = ctypes.POINTER(ctype)
        dp = ctypes.POINTER(ctypes.c_double)
        i = ctypes.c_int
        fn.argtypes = [p, p, p, i, i, dp, dp, dp, i, ctypes.c_double, dp, dp, i, dp]
        fn.restype = None
    return lib


def emulate_sketch(op, X: np.ndarray, weights: np.ndarray | None = None, *,
                   config: LaunchConfig | StructuredLaunch | None = None):
    """Sketch computed by the CUDA kernel source running on the CPU (tests);
    ``config``: the launch layout (a :class:`StructuredLaunch` for structured
    operators, a :class:`LaunchConfig` for dense ones), default the one
    :func:`sketch_cupy` uses."""
    X = as_data_matrix(X, op.dim)
    w = as_weights(weights, X.shape[0])
    n, d = X.shape
    dtype = X.dtype
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    xi = np.ascontiguousarray(op.dither, dtype=dtype) if op.has_dither else None
    out = np.zeros(2 * op.sketch_size)
    ptr = lambda a, t: None if a is None else a.ctypes.data_as(ctypes.POINTER(t))  # noqa: E731
    strides = (X.strides[0] // X.itemsize, X.strides[1] // X.itemsize)
    if op.kind == "structured":
        p = op.block_size
        signs = np.ascontiguousarray(op.signs, dtype=dtype)
        scales = np.ascontiguousarray(op.scales, dtype=dtype)
        scfg = config if isinstance(config, StructuredLaunch) else structured_launch_config(
            n, p, op.sketch_size, dtype.itemsize)
        fn = _emulator().emu_sketch_structured_f32 if dtype == np.float32 else _emulator().emu_sketch_structured_f64
        fn(ptr(X, ctype), *strides, n, d, p, ptr(signs, ctype), ptr(scales, ctype), ptr(xi, ctype),
           ptr(w, ctypes.c_double), op.sketch_size, int(op.quantize), scfg.threads, scfg.rows_per_block,
           ptr(out, ctypes.c_double))
    else:
        omega = np.ascontiguousarray(op.frequencies, dtype=dtype)
        cfg = config if isinstance(config, LaunchConfig) else launch_config(n, d, op.sketch_size, dtype.itemsize)
        fn = _emulator().emu_sketch_dense_f32 if dtype == np.float32 else _emulator().emu_sketch_dense_f64
        fn(ptr(X, ctype), *strides, n, d, ptr(omega, ctype), ptr(xi, ctype),
           ptr(w, ctypes.c_double), op.sketch_size, int(op.quantize), cfg.rows_per_block,
           ptr(out, ctypes.c_double))
    m = op.sketch_size
    weight = float(n) if w is None else float(w.sum())
    lower = X.min(0).astype(np.float64) if n else np.full(d, np.inf)
    upper = X.max(0).astype(np.float64) if n else np.full(d, -np.inf)
    return Sketch(op, out[:m], out[m:], weight, n, lower, upper)


def _finish_objective(sums: np.ndarray, alpha: np.ndarray, n_atoms: int, d: int, gaussian: bool):
    """(f, grad_means, grad_variances | None, grad_weights) from the kernel's sums."""
    per = sums[1:].reshape(n_atoms, 1 + 2 * d)
    grad_weights = -2.0 * per[:, 0]
    grad_means = -2.0 * alpha[:, None] * per[:, 1 : 1 + d]
    grad_var = alpha[:, None] * per[:, 1 + d :] if gaussian else None
    return float(sums[0]), grad_means, grad_var, grad_weights


def emulate_atom_objective(omega, dither, means, weights, z, *, omega_sq=None, variances=None, gain=1.0,
                           threads: int = 64):
    """The CUDA atom objective kernel run on the CPU (tests): same return value
    as ``sketchcore._core.atom_objective``. ``omega`` (d x m) and ``dither`` set
    the precision (float32 or float64)."""
    omega = np.ascontiguousarray(omega)
    dtype = omega.dtype
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    d, m = omega.shape
    means = np.ascontiguousarray(means, dtype=np.float64)
    alpha = np.ascontiguousarray(weights, dtype=np.float64)
    k = means.shape[0]
    gaussian = variances is not None
    sq = np.ascontiguousarray(omega_sq if gaussian else omega, dtype=dtype)
    var = np.ascontiguousarray(variances, dtype=np.float64) if gaussian else None
    xi = np.ascontiguousarray(dither, dtype=dtype)
    z_re, z_im = np.ascontiguousarray(np.real(z), dtype=np.float64), np.ascontiguousarray(np.imag(z), dtype=np.float64)
    out = np.zeros(1 + k * (1 + 2 * d))
    ptr = lambda a, t: None if a is None else a.ctypes.data_as(ctypes.POINTER(t))  # noqa: E731
    fn = _emulator().emu_atom_objective_f32 if dtype == np.float32 else _emulator().emu_atom_objective_f64
    fn(ptr(omega, ctype), ptr(sq, ctype), ptr(xi, ctype), d, m, ptr(means, ctypes.c_double),
       ptr(var, ctypes.c_double), ptr(alpha, ctypes.c_double), k, float(gain), ptr(z_re, ctypes.c_double),
       ptr(z_im, ctypes.c_double), threads, ptr(out, ctypes.c_double))
    return _finish_objective(out, alpha, k, d, gaussian)


# -- CuPy (real GPU) ------------------------------------------------------------


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError("the CUDA backend needs CuPy: pip install 'sketchcore[cuda]'") from exc
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendUnavailableError("CuPy found no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise BackendUnavailableError(f"no usable CUDA device: {exc}") from exc
    return cupy


@functools.cache
def _module(device_id: int, fast_math: bool = False):
    """The compiled kernels for one device (compiled once, then cached by CuPy too)."""
    cupy = _cupy()
    with cupy.cuda.Device(device_id):
        return cupy.RawModule(code=KERNEL_SOURCE, options=compile_options(fast_math))


def sketch_cupy(op, X: Any, weights: Any = None, *, chunk_rows: int = 1 << 22, fast_math: bool = False):
    """Sketch on the GPU.

    CuPy input stays on the device (processed in chunks of ``chunk_rows``
    rows). NumPy input is streamed: two page-locked (pinned) host buffers and
    two CUDA streams, so the copy of chunk i + 1 to the device overlaps the
    kernels of chunk i and N may exceed GPU memory. Finiteness and the data
    box are computed on the device without synchronising; a non-finite value
    raises :class:`~sketchcore.exceptions.NonFiniteError` (located on the
    host) at the end. ``fast_math``: see :func:`compile_options`.
    """
    cupy = _cupy()
    on_device = isinstance(X, cupy.ndarray)
    dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
    n, d = X.shape
    if d != op.dim:
        raise DimensionMismatchError(f"X has {d} features but the operator expects {op.dim}")
    m = op.sketch_size
    module = _module(cupy.cuda.runtime.getDevice(), fast_math)
    structured = op.kind == "structured"
    suffix = "f32" if dtype == np.float32 else "f64"
    kernel = module.get_function(f"sketch_{'structured' if structured else 'dense'}_{suffix}")
    reduce = module.get_function("reduce_partials")
    box = module.get_function(f"data_box_{suffix}")
    if structured:
        signs, scales = cupy.asarray(op.signs, dtype=dtype), cupy.asarray(op.scales, dtype=dtype)
    else:
        omega = cupy.asarray(op.frequencies, dtype=dtype)
    xi = cupy.asarray(op.dither, dtype=dtype) if op.has_dither else None
    if weights is not None and isinstance(weights, cupy.ndarray):
        weights = cupy.asnumpy(weights)
    w_host = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)

    def launch(xc, wc, total, lower, upper, finite):
        """Queues the kernels for one device chunk on the current stream."""
        rows = xc.shape[0]
        strides = (np.int64(xc.strides[0] // dtype.itemsize), np.int64(xc.strides[1] // dtype.itemsize))
        if structured:
            p = op.block_size
            scfg = structured_launch_config(rows, p, m, dtype.itemsize)
            row_blocks = scfg.row_blocks
            partial = cupy.empty(row_blocks * 2 * m, dtype=cupy.float64)
            kernel((-(-m // p), row_blocks), (scfg.threads,),
                   (xc, *strides, np.int32(rows), np.int32(d), np.int32(p), signs, scales, xi, wc, np.int32(m),
                    np.int32(scfg.rows_per_block), np.int32(op.quantize), partial),
                   shared_mem=p * dtype.itemsize)
        else:
            cfg = launch_config(rows, d, m, dtype.itemsize)
            row_blocks = cfg.row_blocks
            partial = cupy.empty(row_blocks * 2 * m, dtype=cupy.float64)
            kernel(cfg.grid(m), (_DENSE_THREADS,),
                   (xc, *strides, np.int32(rows), np.int32(d), omega, xi, wc, np.int32(m),
                    np.int32(cfg.rows_per_block), np.int32(op.quantize), partial),
                   shared_mem=dense_shared_bytes(dtype.itemsize))
        out = cupy.empty(2 * m, dtype=cupy.float64)
        reduce((-(-2 * m // 256),), (256,), (partial, np.int32(row_blocks), np.int32(2 * m), out))
        total += out
        # The box per row block in one read of the chunk (CuPy's min/max over
        # axis 0 of a tall array took most of the sketch's time on an H200).
        bcfg = box_launch_config(rows, d)
        lo = cupy.empty(bcfg.row_blocks * d, dtype=cupy.float64)
        hi = cupy.empty(bcfg.row_blocks * d, dtype=cupy.float64)
        box((-(-d // 32), bcfg.row_blocks), (_BOX_THREADS,),
            (xc, *strides, np.int32(rows), np.int32(d), np.int32(bcfg.rows_per_block), lo, hi),
            shared_mem=2 * _BOX_THREADS * 8)
        lo, hi = lo.reshape(bcfg.row_blocks, d).min(axis=0), hi.reshape(bcfg.row_blocks, d).max(axis=0)
        cupy.minimum(lower, lo, out=lower)  # NaN propagates: the box of finite data is finite
        cupy.maximum(upper, hi, out=upper)
        cupy.logical_and(finite, cupy.isfinite(lo).all(), out=finite)
        cupy.logical_and(finite, cupy.isfinite(hi).all(), out=finite)

    n_lanes = 1 if on_device else 2
    # Device input may still be being written on the caller's stream: use it.
    streams = [cupy.cuda.get_current_stream()] if on_device else [cupy.cuda.Stream(non_blocking=True)
                                                                  for _ in range(n_lanes)]
    totals = [cupy.zeros(2 * m, dtype=cupy.float64) for _ in range(n_lanes)]
    lowers = [cupy.full(d, np.inf) for _ in range(n_lanes)]
    uppers = [cupy.full(d, -np.inf) for _ in range(n_lanes)]
    finites = [cupy.ones((), dtype=bool) for _ in range(n_lanes)]
    if not on_device:
        import cupyx

        rows_max = min(chunk_rows, max(n, 1))
        pinned = [cupyx.empty_pinned((rows_max, d), dtype=dtype) for _ in range(n_lanes)]
        device = [cupy.empty((rows_max, d), dtype=dtype) for _ in range(n_lanes)]
    for i, start in enumerate(range(0, n, chunk_rows)):
        lane = i % n_lanes
        stream = streams[lane]
        stop = min(n, start + chunk_rows)
        rows = stop - start
        if on_device:
            xc = X[start:stop].astype(dtype, copy=False)
        else:
            stream.synchronize()  # this lane's buffers are free again
            np.copyto(pinned[lane][:rows], X[start:stop], casting="unsafe")
            xc = device[lane][:rows]
            xc.set(pinned[lane][:rows], stream=stream)  # asynchronous: overlaps the other lane's kernels
        with stream:
            wc = None if w_host is None else cupy.asarray(w_host[start:stop])
            launch(xc, wc, totals[lane], lowers[lane], uppers[lane], finites[lane])
    for stream in streams:
        stream.synchronize()
    if not all(bool(f) for f in finites):
        for start in range(0, n, chunk_rows):
            chunk = X[start : start + chunk_rows]
            check_finite_rows(cupy.asnumpy(chunk) if on_device else np.asarray(chunk), row_offset=start)
    sums = cupy.asnumpy(sum(totals[1:], totals[0]))
    lower = np.min(np.stack([cupy.asnumpy(v) for v in lowers]), axis=0)
    upper = np.max(np.stack([cupy.asnumpy(v) for v in uppers]), axis=0)
    weight = float(n) if w_host is None else float(w_host.sum())
    return Sketch(op, sums[:m], sums[m:], weight, n, lower, upper)


def atom_objective_cupy(omega, dither, means, weights, z, *, omega_sq=None, variances=None, gain=1.0,
                        threads: int = 128):
    """The decoders' objective and gradient on the GPU (same return value as
    ``sketchcore._core.atom_objective``); arrays may be NumPy or CuPy."""
    if threads not in (32, 64, 128):  # a power of two (tree reduction); 128 fills 32 KiB of shared memory
        raise InvalidParameterError(f"threads must be 32, 64 or 128, got {threads!r}")
    cupy = _cupy()
    omega = cupy.ascontiguousarray(cupy.asarray(omega))
    dtype = np.dtype(omega.dtype)
    d, m = omega.shape
    means = cupy.ascontiguousarray(cupy.asarray(means, dtype=cupy.float64))
    alpha_host = np.ascontiguousarray(weights if isinstance(weights, np.ndarray) else cupy.asnumpy(weights),
                                      dtype=np.float64)
    k = means.shape[0]
    gaussian = variances is not None
    sq = cupy.ascontiguousarray(cupy.asarray(omega_sq if gaussian else omega, dtype=dtype))
    var = cupy.ascontiguousarray(cupy.asarray(variances, dtype=cupy.float64)) if gaussian else None
    xi = cupy.ascontiguousarray(cupy.asarray(dither, dtype=dtype))
    z = cupy.asarray(z)
    z_re = cupy.ascontiguousarray(z.real, dtype=cupy.float64)
    z_im = cupy.ascontiguousarray(z.imag, dtype=cupy.float64)
    module = _module(cupy.cuda.runtime.getDevice())
    kernel = module.get_function("atom_objective_f32" if dtype == np.float32 else "atom_objective_f64")
    reduce = module.get_function("reduce_partials")
    blocks = -(-m // threads)
    total = 1 + k * (1 + 2 * d)
    partial = cupy.empty(blocks * total, dtype=cupy.float64)
    kernel((blocks,), (threads,), (omega, sq, xi, np.int32(d), np.int32(m), means, var, cupy.asarray(alpha_host),
                                   np.int32(k), np.float64(gain), z_re, z_im, partial),
           shared_mem=_GRAD_CHUNK * threads * 8)
    out = cupy.empty(total, dtype=cupy.float64)
    reduce((-(-total // 256),), (256,), (partial, np.int32(blocks), np.int32(total), out))
    return _finish_objective(cupy.asnumpy(out), alpha_host, k, d, gaussian)
