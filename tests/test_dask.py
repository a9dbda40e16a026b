"""Dask: one-pass sketching on real schedulers and worker processes (loopback only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import sketchcore
from sketchcore import CompressiveKMeans
from sketchcore.backends import dask as scd
from sketchcore.exceptions import DimensionMismatchError, NonFiniteError, SketchFileError

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from conftest import mixture, rel_err  # noqa: E402

OP = sketchcore.SketchOperator(6, 80, sigma=2.0, seed=4, dither=True)
X = mixture(20_000, 6, seed=4)
REF = OP.sketch(X)


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
@pytest.mark.parametrize(
    "chunks",
    [
        ((20_000,), (6,)),  # a single chunk
        ((1, 999, 5000, 7000, 7000), (6,)),  # irregular
        ((5000, 0, 10_000, 0, 5000), (6,)),  # empty chunks
        ((4000,) * 5, (2, 3, 1)),  # chunks along columns
    ],
)
def test_dask_sketch_equals_numpy(scheduler, chunks):
    dX = da.from_array(X, chunks=chunks)
    got = OP.sketch(dX) if scheduler == "threads" else dask.compute(OP.sketch(dX))[0]
    with dask.config.set(scheduler=scheduler):
        got = OP.sketch(dX)
    assert got.count == REF.count and got.weight == REF.weight
    assert rel_err(got.z, REF.z) < 1e-12
    np.testing.assert_array_equal(got.lower, REF.lower)
    np.testing.assert_array_equal(got.upper, REF.upper)
    # A sample of the rows, as local sketches keep: real rows, distinct, deterministic.
    assert got.sample_capacity == REF.sample_capacity == 533 and got.samples.shape == (533, 6)  # 40 m // d
    rows = [np.flatnonzero((X == r).all(axis=1)) for r in got.samples]
    assert all(len(r) == 1 for r in rows) and len({int(r[0]) for r in rows}) == 533
    np.testing.assert_array_equal(OP.sketch(dX).samples, got.samples)


def test_dask_weights_float32_and_errors():
    w = np.random.default_rng(1).uniform(size=len(X))
    dX = da.from_array(X.astype(np.float32), chunks=(3000, 6))
    got = OP.sketch(dX, weights=da.from_array(w, chunks=5000))
    assert rel_err(got.z, OP.sketch(X.astype(np.float32), w).z) < 1e-6
    bad = X.copy()
    bad[12_345, 2] = np.nan
    with pytest.raises(NonFiniteError, match=r"chunk 4 \(rows 12000\.\.15000\)"):
        OP.sketch(da.from_array(bad, chunks=(3000, 6)))
    with pytest.raises(DimensionMismatchError):
        OP.sketch(da.from_array(X[:, :5], chunks=1000))


def test_graph_is_a_bounded_tree():
    dX = da.from_array(X, chunks=(100, 6))  # 200 blocks
    delayed = scd.sketch_dask_array(OP, dX, compute=False)
    graph = dict(delayed.__dask_graph__())
    combines = [k for k in graph if str(k[0] if isinstance(k, tuple) else k).startswith("_combine")]
    # 200 partials -> 25 combines -> 3 combines (+1 passed through) -> 1.
    assert len(combines) == 25 + 3 + 1
    deps = delayed.__dask_graph__().dependencies if hasattr(delayed.__dask_graph__(), "dependencies") else None
    if deps:
        assert max(len(deps[k]) for k in combines) <= scd.FAN_IN


@pytest.fixture(scope="module")
def local_cluster():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_local_cluster_two_processes(local_cluster):
    dX = da.from_array(X, chunks=(2500, 6))
    got = OP.sketch(dX)  # the active client runs it
    assert rel_err(got.z, REF.z) < 1e-12 and got.count == REF.count
    workers = local_cluster.run(os.getpid)
    assert len(set(workers.values())) == 2 and os.getpid() not in workers.values()


def test_fit_dask_equals_fit_numpy(local_cluster):
    data = mixture(30_000, 4, k=3, seed=9)
    a = CompressiveKMeans(3, random_state=0).fit(data)
    b = CompressiveKMeans(3, random_state=0).fit(da.from_array(data, chunks=(4000, 4)))
    # The sketches agree to rounding (1e-15); L-BFGS-B then stops within its
    # tolerance of the same optimum.
    assert rel_err(b.sketch_.z, a.sketch_.z) < 1e-12
    # Same centroids (to 1e-3; measured 1e-4), possibly listed in another order.
    order_a, order_b = (np.lexsort(np.round(c, 2).T[::-1]) for c in (a.cluster_centers_, b.cluster_centers_))
    np.testing.assert_allclose(b.cluster_centers_[order_b], a.cluster_centers_[order_a], atol=1e-3)
    assert b.sketch_.count == 30_000 and not hasattr(b, "labels_")


def _write_files(folder, parts):
    paths = []
    for i, p in enumerate(parts):
        path = folder / f"part{i}.npy"
        np.save(path, p)
        paths.append(path)
    return paths


def test_sketch_files_on_workers(local_cluster, tmp_path):
    paths = _write_files(tmp_path, np.array_split(X, 9))
    got = scd.sketch_files(paths, OP, client=local_cluster)
    assert rel_err(got.z, REF.z) < 1e-12 and got.count == REF.count
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(SketchFileError, match="broken.npy"):
        scd.sketch_files([*paths, tmp_path / "broken.npy"], OP, client=local_cluster)


def test_worker_killed_mid_run_result_is_exact(local_cluster, tmp_path):
    paths = _write_files(tmp_path, np.array_split(X, 12))
    flag = tmp_path / "kill-once"
    flag.write_text("")

    def loader(path):
        # The first task to run takes the flag (rename succeeds once) and its
        # worker process dies on the spot, mid-task.
        try:
            os.rename(flag, str(flag) + ".taken")
        except OSError:
            return np.load(path)
        os._exit(1)

    before = set(local_cluster.scheduler_info()["workers"])
    got = scd.sketch_files(paths, OP, client=local_cluster, loader=loader)
    assert (tmp_path / "kill-once.taken").exists()  # a worker did die
    assert set(local_cluster.scheduler_info()["workers"]) != before  # ...and was replaced
    # No chunk lost or counted twice.
    assert got.count == REF.count
    assert rel_err(got.z, REF.z) < 1e-12
    clean = scd.sketch_files(paths, OP, client=local_cluster)
    np.testing.assert_array_equal(got.cos_sums, clean.cos_sums)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_scheduler_and_two_workers():
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask_cli, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--nworkers", "1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        client = None
        while client is None:
            try:
                client = distributed.Client(address, timeout=5)
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        try:
            client.wait_for_workers(2, timeout=60)
            got = OP.sketch(da.from_array(X, chunks=(3000, 6)))
            assert rel_err(got.z, REF.z) < 1e-12 and got.count == REF.count
        finally:
            client.close()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
