"""Dask backends: threaded scheduler and a 2-process LocalCluster."""

from __future__ import annotations

import numpy as np

import sketchcore

from .common import LARGE, mixture


class DaskSketch:
    params = (["threads", "local_cluster_2"],)
    param_names = ["scheduler"]
    timeout = 300

    def setup(self, scheduler):
        try:
            import dask
            import dask.array as da
        except ImportError as exc:
            raise NotImplementedError("dask not installed") from exc
        n = 4_000_000 if LARGE else 400_000
        self.X = da.from_array(mixture(n, 40, dtype=np.float32), chunks=(n // 16, 40))
        self.op = sketchcore.SketchOperator(40, 1000, sigma=6.0, seed=0)
        self.client = self.cluster = None
        if scheduler == "threads":
            self.ctx = dask.config.set(scheduler="threads")
            self.ctx.__enter__()
        else:
            from distributed import Client, LocalCluster

            self.cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1")
            self.client = Client(self.cluster)
            self.ctx = None

    def teardown(self, scheduler):
        if self.ctx is not None:
            self.ctx.__exit__(None, None, None)
        if self.client is not None:
            self.client.close()
            self.cluster.close()

    def time_sketch(self, scheduler):
        self.op.sketch(self.X)


def _require_gpu():
    """CuPy with a device, or NotImplementedError (asv then skips the benchmark)."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
    except Exception as exc:
        raise NotImplementedError(f"CuPy/GPU unavailable: {exc}") from exc
    return cupy


class CupySketch:
    """The CUDA kernels (skipped without CuPy and a GPU)."""

    params = ([(10_000_000, 12, 1000)] + ([(200_000_000, 12, 10_000)] if LARGE else []),)
    param_names = ["N, d, m"]
    timeout = 600

    def setup(self, shape):
        cupy = _require_gpu()
        n, d, m = shape
        self.cupy = cupy
        rows = min(n, 20_000_000)
        self.X = cupy.random.default_rng(0).standard_normal((rows, d), dtype=cupy.float32)
        self.repeat = n // rows
        self.op = sketchcore.SketchOperator(d, m, sigma=3.0, seed=0)
        self.op.sketch(self.X[:1000])  # compile and warm up

    def time_sketch(self, shape):
        for _ in range(self.repeat):
            self.op.sketch(self.X)
        self.cupy.cuda.Device().synchronize()

    def time_sketch_host_streamed(self, shape):
        """NumPy input: pinned, double-buffered copies overlapped with the kernels."""
        host = getattr(self, "_host", None)
        if host is None:
            host = self._host = self.cupy.asnumpy(self.X[: min(len(self.X), 5_000_000)])
        self.op.sketch(host, backend="cupy")


class CupyStructuredSketch:
    """The structured (Hadamard) CUDA kernel (skipped without CuPy and a GPU)."""

    params = ([(1_000_000, 512, 8192)] + ([(4_000_000, 1024, 16384)] if LARGE else []),)
    param_names = ["N, d, m"]
    timeout = 600

    def setup(self, shape):
        cupy = _require_gpu()
        n, d, m = shape
        self.cupy = cupy
        self.X = cupy.random.default_rng(0).standard_normal((n, d), dtype=cupy.float32)
        self.op = sketchcore.SketchOperator(d, m, sigma=float(d) ** 0.5, kind="structured", seed=0)
        self.op.sketch(self.X[:100])

    def time_sketch(self, shape):
        self.op.sketch(self.X)
        self.cupy.cuda.Device().synchronize()
