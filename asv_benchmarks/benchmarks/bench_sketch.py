"""Sketching speed: Rust dense/structured vs the float64 NumPy reference, the
bare float32 BLAS product X @ Omega (the limit) and pycle."""

from __future__ import annotations

import numpy as np

import sketchcore
from sketchcore.backends.reference import sketch_reference

from .common import LARGE, mixture, require

SHAPES = [(100_000, 10, 1000), (2**18, 64, 1024)] + ([(2**16, 512, 8192)] if LARGE else [])


class SketchDense:
    """One pass of the fused dense kernel."""

    params = (SHAPES, ["float32", "float64"])
    param_names = ["N, d, m", "dtype"]
    timeout = 300

    def setup(self, shape, dtype):
        n, d, m = shape
        self.X = mixture(n, d, dtype=np.dtype(dtype))
        self.op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), seed=0)
        self.op.sketch(self.X[:100])  # warm up threads

    def time_rust(self, shape, dtype):
        self.op.sketch(self.X)

    def peakmem_rust(self, shape, dtype):
        self.op.sketch(self.X)


class SketchLimits:
    """What the kernel is measured against, on the same shapes (float32 data)."""

    params = (SHAPES,)
    param_names = ["N, d, m"]
    timeout = 600

    def setup(self, shape):
        n, d, m = shape
        self.X = mixture(n, d, dtype=np.float32)
        self.op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), seed=0)
        self.omega32 = self.op.frequencies.astype(np.float32)
        # The reference is ~30x slower: time it on 1/8 of the rows (scale by 8).
        self.X_ref = self.X[: max(1, n // 8)]

    def time_blas_matmul_float32(self, shape):
        self.X @ self.omega32

    def time_numpy_reference_eighth(self, shape):
        sketch_reference(self.op, self.X_ref)


class SketchStructured:
    """The structured (Hadamard) operator against the dense one, high d."""

    params = ([(2**14, 512, 8192)] + ([(2**16, 512, 8192), (2**13, 1024, 16384)] if LARGE else []),
              ["dense", "structured"])
    param_names = ["N, d, m", "kind"]
    timeout = 600

    def setup(self, shape, kind):
        n, d, m = shape
        require(not (kind == "dense" and d > 512), "dense at d > 512 is too slow to track")
        self.X = mixture(n, d, dtype=np.float32)
        self.op = sketchcore.SketchOperator(d, m, kind=kind, sigma=float(np.sqrt(d)), seed=0)

    def time_sketch(self, shape, kind):
        self.op.sketch(self.X)

    def track_operator_bytes(self, shape, kind):
        return self.op.nbytes

    track_operator_bytes.unit = "bytes"


class SketchSparse:
    """A sparse operator (4 coordinates per frequency) at audio dimensions:
    its own kernel (4 multiply-adds per phase), the dense kernel on the same
    frequencies (d multiply-adds), and BLAS computing the bare projection
    X @ Omega (no sine-cosine, no sums)."""

    params = ([(2**15, 60, 6050), (2**14, 192, 19290)], ["sparse-kernel", "dense-kernel", "blas-projection"])
    param_names = ["N, d, m", "implementation"]
    timeout = 300

    def setup(self, shape, impl):
        n, d, m = shape
        self.X = mixture(n, d, dtype=np.float64)
        self.op = sketchcore.SketchOperator(d, m, kind="sparse", sigma=3.0, seed=0, dither=True)
        self.omega = np.ascontiguousarray(self.op.frequencies)

    def time_sketch(self, shape, impl):
        if impl == "sparse-kernel":
            self.op.sketch(self.X)
        elif impl == "dense-kernel":
            sketchcore._core.sketch_dense(self.X, self.omega, self.op.dither)
        else:
            self.X @ self.omega


class SketchThreads:
    """1 thread vs all threads."""

    params = ([1, None],)
    param_names = ["n_threads"]

    def setup(self, n_threads):
        self.X = mixture(100_000, 10, dtype=np.float32)
        self.op = sketchcore.SketchOperator(10, 1000, seed=0)

    def time_sketch(self, n_threads):
        self.op.sketch(self.X, n_threads=n_threads)


class SketchPycle:
    """pycle's (the Python peer's) sketching on the same data and operator shape."""

    params = ([(20_000, 10, 1000)],)
    param_names = ["N, d, m"]
    timeout = 300

    def setup(self, shape):
        try:
            import pycle.sketching as sk
        except Exception as exc:  # pycle is optional and may not import on new NumPy
            raise NotImplementedError(f"pycle unavailable: {exc}") from exc
        n, d, m = shape
        self.sk = sk
        self.X = mixture(n, d)
        self.Omega = sketchcore.SketchOperator(d, m, seed=0).frequencies
        self.Phi = sk.SimpleFeatureMap("ComplexExponential", self.Omega)

    def time_pycle_sketch(self, shape):
        self.sk.computeSketch(self.X, self.Phi)
