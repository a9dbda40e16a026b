"""Every parameter that allocates or loops is bounded: operator sizes,
threads, conversions, batches between interrupt checks, decoder rounds; and
input is validated once whatever the backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

import sketchcore
from conftest import rel_err
from sketchcore.core import registry
from sketchcore.core import sketch as sketch_module
from sketchcore.exceptions import (
    DimensionMismatchError,
    InvalidParameterError,
    NegativeWeightError,
    NonFiniteError,
    PhaseOverflowError,
)


def _peak(fn):
    """(result, seconds, peak MiB of the Python heap) of ``fn()``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return out, seconds, peak


# -- operators ---------------------------------------------------------------------------


def _reference_norms2(self, block, rows):
    """Squared row norms from the whole d x p block matrix (the O(d p) construction)."""
    cols = self._block_columns(block)
    return (cols * cols).sum(axis=0)[:rows]


@pytest.mark.parametrize("d,m", [(5, 33), (20, 300), (100, 40), (100, 300), (700, 1500), (1, 1), (64, 64)])
def test_structured_scales_are_the_same_bits(monkeypatch, d, m):
    op = sketchcore.SketchOperator(d, m, kind="structured", seed=d + m, sigma=0.7)
    monkeypatch.setattr(sketchcore.SketchOperator, "_block_row_norms2", _reference_norms2)
    ref = sketchcore.SketchOperator(d, m, kind="structured", seed=d + m, sigma=0.7)
    np.testing.assert_array_equal(op.scales, ref.scales)
    assert op.fingerprint == ref.fingerprint  # files written before still load
    np.testing.assert_allclose(np.linalg.norm(op.frequencies, axis=0) * op.sigma,
                               np.linalg.norm(ref.frequencies, axis=0) * op.sigma, rtol=1e-14)


@pytest.mark.parametrize("d,m,seconds,mib", [(4096, 100, 5.0, 40.0), (20_000, 64, 20.0, 120.0), (8192, 1, 2.0, 10.0)])
def test_structured_operator_builds_in_small_memory(d, m, seconds, mib):
    op, took, peak = _peak(lambda: sketchcore.SketchOperator(d, m, kind="structured", seed=1))
    assert op.scales.shape == (m,) and np.all(np.isfinite(op.scales)) and np.all(op.scales > 0)
    assert took < seconds, f"{took:.1f} s"
    assert peak < mib, f"{peak:.0f} MiB"


def test_operator_sizes_are_bounded():
    from sketchcore.core.operator import MAX_DENSE_ENTRIES, MAX_DIM, MAX_SKETCH_SIZE

    with pytest.raises(InvalidParameterError, match="dim"):
        sketchcore.SketchOperator(MAX_DIM + 1, 1, kind="structured")
    with pytest.raises(InvalidParameterError, match="sketch_size"):
        sketchcore.SketchOperator(1, MAX_SKETCH_SIZE + 1, kind="structured")
    with pytest.raises(InvalidParameterError, match="structured"):
        sketchcore.SketchOperator(2**14, MAX_DENSE_ENTRIES // 2**14 + 1)
    with pytest.raises(InvalidParameterError, match="seed"):
        sketchcore.SketchOperator(2, 4, seed=2**200)


# -- phases that overflow --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dense", "structured"])
def test_tiny_sigma_is_refused(kind):
    with pytest.raises(InvalidParameterError, match="too small"):
        sketchcore.SketchOperator(3, 20, sigma=1e-310, kind=kind, seed=0)


@pytest.mark.parametrize("backend", ["rust", "numpy"])
def test_overflowing_phases_raise(backend):
    op = sketchcore.SketchOperator(3, 20, sigma=1.0, seed=0)
    X = np.full((10, 3), 1.7e308)
    with pytest.raises(PhaseOverflowError):
        op.sketch(X, backend=backend)
    if backend == "rust":  # float32 arithmetic (the reference computes in float64)
        op32 = sketchcore.SketchOperator(3, 20, sigma=1e-3, seed=0)
        X32 = np.full((10, 3), 1e35, dtype=np.float32)
        with pytest.raises(PhaseOverflowError):
            op32.sketch(X32, backend=backend)
    # Large but representable phases are fine.
    assert np.all(np.isfinite(op.sketch(np.full((4, 3), 1e6)).cos_sums))


# -- conversions a tile at a time -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.float16])
def test_memmaps_needing_conversion_are_converted_a_tile_at_a_time(tmp_path, monkeypatch, dtype):
    rng = np.random.default_rng(3)
    n, d = 600_000, 4
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=dtype, mode="w+", shape=(n, d))
    mm[:] = rng.integers(-100, 100, size=(n, d)).astype(dtype)
    mm.flush()
    X = np.memmap(path, dtype=dtype, mode="r", shape=(n, d))
    op = sketchcore.SketchOperator(d, 16, sigma=30.0, seed=2)
    monkeypatch.setattr(sketch_module, "CONVERT_TILE_BYTES", 1 << 20)
    whole_bytes = n * d * (4 if dtype == np.float16 else 8)
    sk, _, peak = _peak(lambda: op.sketch(X))
    assert peak * 2**20 < whole_bytes / 3, f"peak {peak:.1f} MiB for {whole_bytes / 2**20:.1f} MiB converted"
    ref = op.sketch(np.asarray(X, dtype=np.float32 if dtype == np.float16 else np.float64))
    assert sk.count == n and rel_err(sk.z, ref.z) < 1e-12
    np.testing.assert_array_equal(sk.lower, ref.lower)


def test_tiled_conversion_names_rows_of_the_whole_array(monkeypatch):
    monkeypatch.setattr(sketch_module, "CONVERT_TILE_BYTES", 1 << 16)
    X = np.zeros((50_000, 2), dtype=np.float16)
    X[40_123, 1] = np.inf
    with pytest.raises(NonFiniteError) as info:
        sketchcore.SketchOperator(2, 8, seed=0).sketch(X)
    assert info.value.row == 40_123 and info.value.column == 1 and "row 40123" in str(info.value)


# -- validation before the backend -------------------------------------------------------------


class _Spy:
    def __init__(self):
        self.calls = 0

    def __call__(self, op, X, w=None, **kwargs):
        self.calls += 1
        return sketch_module.Sketch.empty(op)


@pytest.mark.parametrize("weights,error", [
    (np.ones(5), DimensionMismatchError),
    (np.r_[np.ones(9), np.nan], NonFiniteError),
    (np.r_[np.ones(9), -1.0], NegativeWeightError),
])
def test_cupy_path_validates_before_the_device(monkeypatch, weights, error):
    spy = _Spy()
    monkeypatch.setitem(registry._BACKENDS, "cupy", spy)
    op = sketchcore.SketchOperator(3, 8, seed=0)
    with pytest.raises(error):
        op.sketch(np.zeros((10, 3)), weights, backend="cupy")
    with pytest.raises(DimensionMismatchError):
        op.sketch(np.zeros((10, 4)), backend="cupy")
    assert spy.calls == 0
    op.sketch(np.zeros((10, 3)), np.ones(10), backend="cupy")
    assert spy.calls == 1


# -- threads ------------------------------------------------------------------------------------


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_thread_pools_are_bounded():
    op = sketchcore.SketchOperator(3, 8, seed=0)
    X = np.random.default_rng(0).normal(size=(200, 3))
    ref = op.sketch(X, n_threads=1)
    before = _threads()
    for n in range(1, 41):
        assert op.sketch(X, n_threads=n) == ref  # bitwise: the thread count never changes the result
    # At most 4 pools stay cached (here 37..40 threads); 1 + ... + 40 = 820 before.
    # Evicted pools' threads exit asynchronously: wait for the bound itself.
    bound = before + 37 + 38 + 39 + 40
    deadline = time.time() + 10
    while _threads() > bound and time.time() < deadline:
        time.sleep(0.05)
    assert _threads() <= bound


def test_thread_counts_are_validated():
    op = sketchcore.SketchOperator(3, 8, seed=0)
    t0 = time.perf_counter()
    for n in (1025, 10**6, 0, -1, 2.0, True):
        with pytest.raises(InvalidParameterError, match="n_threads"):
            op.sketch(np.zeros((5, 3)), n_threads=n)
    assert time.perf_counter() - t0 < 1.0
    assert op.sketch(np.zeros((5, 3)), n_threads=1024).count == 5


def test_rust_binding_refuses_huge_thread_counts():
    from sketchcore import _core

    op = sketchcore.SketchOperator(3, 8, seed=0)
    omega, _ = op._arrays_for(np.dtype(np.float64))
    with pytest.raises(InvalidParameterError, match="n_threads"):
        _core.sketch_dense(np.zeros((4, 3)), omega, None, None, n_threads=10**6)


def test_dask_workers_use_their_thread_count():
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    from sketchcore.backends.dask import worker_threads

    assert worker_threads() is None  # not on a worker
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        op = sketchcore.SketchOperator(3, 8, seed=0)
        X = np.random.default_rng(0).normal(size=(20_000, 3))
        got = op.sketch(da.from_array(X, chunks=(5000, 3)))
        assert got.count == 20_000 and rel_err(got.z, op.sketch(X).z) < 1e-12
        assert client.submit(worker_threads, pure=False).result() == 1

        def kernel_threads():
            names = []
            for t in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{t}/comm") as f:
                    names.append(f.read().strip())
            return sum(n.startswith("sketchcore-") for n in names)

        assert list(client.run(kernel_threads).values()) == [1]


# -- interrupts ----------------------------------------------------------------------------------

INTERRUPTIBLE = """
import signal, sys, time, numpy as np, sketchcore
# A shell that starts jobs in the background hands them SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
op = sketchcore.SketchOperator(256, 2048, seed=0)
X = np.broadcast_to(np.linspace(-1, 1, 256, dtype=np.float32), (908 * 4096, 256))  # no memory
print("start", flush=True)
t0 = time.perf_counter()
try:
    op.sketch(X, n_threads=1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_is_polled_about_every_second():
    # 908 chunks of 4096 rows at d = 256, m = 2048: the memory bound alone made
    # them one batch (minutes between checks); batches sized by work stop within seconds.
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(1.0)
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        latency = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "interrupted" in out
    assert latency < 10.0, f"{latency:.1f} s from Ctrl-C to the end"


# -- decoder rounds -------------------------------------------------------------------------------


def test_batch_rounds_stop_when_no_atom_is_found(monkeypatch):
    from sketchcore.learning import batch
    from sketchcore.learning.atoms import AtomModel

    calls = []
    found = batch._new_atoms

    def one_then_nothing(model, r, count, *args):
        calls.append(count)
        if len(calls) > 50:
            raise RuntimeError("still looking for atoms after 50 rounds")
        if len(calls) == 1:
            return found(model, r, 1, *args)
        return np.empty((0, model.n_params))

    monkeypatch.setattr(batch, "_new_atoms", one_then_nothing)
    op = sketchcore.SketchOperator(2, 50, seed=0)
    sk = op.sketch(np.random.default_rng(0).normal(size=(500, 2)))
    model = AtomModel(op, True, sk.lower, sk.upper, var_bounds=(np.full(2, 0.01), np.full(2, 10.0)))
    result = batch.batch_clompr(sk.z, model, 5, rng=np.random.default_rng(0), var0=np.ones(2))
    assert len(calls) == 2 and result is not None  # one atom found, then none: the rounds stop


def test_components_are_validated_against_the_sketch():
    from sketchcore import CompressiveGMM, CompressiveKMeans

    op = sketchcore.SketchOperator(3, 200, seed=0)
    small = op.sketch(np.random.default_rng(0).normal(size=(44, 3)))
    t0 = time.perf_counter()
    with pytest.raises(InvalidParameterError, match="44 samples"):
        CompressiveKMeans(100).fit_sketch(small)
    with pytest.raises(InvalidParameterError, match="unknowns"):
        CompressiveKMeans(101).fit_sketch(op.sketch(np.random.default_rng(0).normal(size=(3549, 3))))
    with pytest.raises(InvalidParameterError, match="unknowns"):
        CompressiveGMM(58).fit_sketch(op.sketch(np.random.default_rng(0).normal(size=(3549, 3))))
    assert time.perf_counter() - t0 < 5.0
