"""A CuPy stand-in for machines without a GPU: "device" arrays are NumPy
arrays of a marker subclass, streams are no-ops, and ``RawModule`` kernels run
through the host emulation harness (``emu_launch_<kernel>``: the kernel source
of ``sketch.cu`` on CPU threads, with the grid and block the caller gives).

It lets the tests run the host side of ``sketchcore.backends.cuda`` (chunking, pinned
double buffering, stream bookkeeping, device-side box and finiteness, the
reductions and their scaling) exactly as on a GPU, without one. It checks
logic, not CUDA semantics (no asynchrony, no real streams).
"""

from __future__ import annotations

import ctypes
import types

import numpy as np


class DeviceArray(np.ndarray):
    """Marks an array as living "on the device"."""

    def set(self, arr, stream=None):  # cupy.ndarray.set: host -> device copy
        self[...] = arr

    def get(self):
        return np.asarray(self)


def _dev(a, dtype=None, contiguous=False):
    """cupy.asarray (no copy for a device array of that dtype) or, with
    ``contiguous``, cupy.ascontiguousarray."""
    if isinstance(a, DeviceArray) and (dtype is None or a.dtype == dtype):
        return np.ascontiguousarray(a).view(DeviceArray) if contiguous else a
    return np.ascontiguousarray(np.asarray(a, dtype=dtype)).view(DeviceArray)


class _Stream:
    def __init__(self, non_blocking: bool = False):
        self.non_blocking = non_blocking

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Device:
    def __init__(self, device_id: int = 0):
        self.id = device_id

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# Kernel parameter types after (grid x, grid y, block x, shared bytes).
_SIGNATURES = {
    "sketch_dense": "P q q i i P P P i i i P",
    "sketch_structured": "P q q i i i P P P P i i i P",
    "atom_objective": "P P P i i P P P i d P P P",
    "reduce_partials": "P i i P",
    "data_box": "P q q i i i P P",
}
_CTYPES = {"P": ctypes.c_void_p, "q": ctypes.c_longlong, "i": ctypes.c_int, "d": ctypes.c_double}


class _Kernel:
    def __init__(self, lib, name: str):
        self.fn = getattr(lib, f"emu_launch_{name}")
        base = name.rsplit("_", 1)[0] if name.endswith(("_f32", "_f64")) else name
        self.kinds = _SIGNATURES[base].split()
        self.fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_size_t] + [
            _CTYPES[k] for k in self.kinds]
        self.fn.restype = None
        self.launches = 0

    def __call__(self, grid, block, args, shared_mem: int = 0, stream=None):
        grid = tuple(grid) + (1,) * (2 - len(grid))
        assert len(args) == len(self.kinds), "argument count differs from the kernel's"
        values = []
        for kind, a in zip(self.kinds, args, strict=True):
            if kind == "P":
                assert a is None or isinstance(a, DeviceArray), "kernels only take device arrays"
                values.append(None if a is None else a.ctypes.data)
            else:
                values.append(a.item() if hasattr(a, "item") else a)
        self.launches += 1
        self.fn(int(grid[0]), int(grid[1]), int(block[0]), int(shared_mem), *values)


class _RawModule:
    def __init__(self, lib):
        self.lib = lib
        self.kernels: dict[str, _Kernel] = {}

    def get_function(self, name: str) -> _Kernel:
        if name not in self.kernels:
            self.kernels[name] = _Kernel(self.lib, name)
        return self.kernels[name]


def make(lib) -> tuple[types.ModuleType, types.ModuleType, _RawModule]:
    """(cupy, cupyx, RawModule) stand-ins around the emulation library ``lib``."""
    cp = types.ModuleType("cupy")
    cp.ndarray = DeviceArray
    cp.float64 = np.float64
    cp.asarray = lambda a, dtype=None: _dev(a, dtype)
    cp.ascontiguousarray = lambda a, dtype=None: _dev(a, dtype, contiguous=True)
    cp.asnumpy = lambda a: np.array(a)
    for name in ("zeros", "empty", "ones"):
        cp.__dict__[name] = (lambda f: lambda *s, **k: f(*s, **k).view(DeviceArray))(getattr(np, name))
    cp.full = lambda shape, value, dtype=None: np.full(shape, value, dtype=dtype).view(DeviceArray)
    for name in ("minimum", "maximum", "logical_and", "isfinite"):
        setattr(cp, name, getattr(np, name))
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0, CUDARuntimeError=RuntimeError)
    current = _Stream()
    cp.cuda = types.SimpleNamespace(runtime=runtime, Stream=_Stream, Device=_Device,
                                    get_current_stream=lambda: current)
    cpx = types.ModuleType("cupyx")
    cpx.empty_pinned = lambda shape, dtype=np.float64: np.empty(shape, dtype=dtype)
    return cp, cpx, _RawModule(lib)
