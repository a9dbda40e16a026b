"""Dask sketching throughput and overhead (issue: one-pass sketching on a cluster).

N = 4e6, d = 40, m = 1000, float32, as a chunked dask array: sketch with the
threaded scheduler, and with a LocalCluster of 1 and 2 worker processes;
compare with the Rust kernel on the same data in memory. Also reports the
client process's peak memory growth while the cluster sketches (it stays
O(m): only partial sums come back).

Usage::

    python examples/benchmark_dask.py [--n 4000000] [--chunk 250000]
"""

from __future__ import annotations

import argparse
import resource
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import sketchcore


def timed(fn, repeat=2):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--sketch-size", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=250_000)
    args = ap.parse_args()
    n, d, m = args.n, args.dim, args.sketch_size
    op = sketchcore.SketchOperator(d, m, sigma=6.0, seed=0)
    print(f"N={n}, d={d}, m={m}, chunks of {args.chunk} rows, SIMD {sketchcore.simd_level()}")

    X = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    t_direct, ref = timed(lambda: op.sketch(X))
    print(f"  Rust kernel, in memory, all threads:   {t_direct:6.2f} s  {n / t_direct:10.4g} samples/s")
    t_one, _ = timed(lambda: op.sketch(X, n_threads=1))
    print(f"  Rust kernel, in memory, 1 thread:      {t_one:6.2f} s  {n / t_one:10.4g} samples/s")

    dX = da.from_array(X, chunks=(args.chunk, d))
    with dask.config.set(scheduler="threads"):
        t_thr, s = timed(lambda: op.sketch(dX))
    err = np.linalg.norm(s.z - ref.z) / np.linalg.norm(ref.z)
    print(f"  dask threaded scheduler:               {t_thr:6.2f} s  {n / t_thr:10.4g} samples/s"
          f"  overhead {100 * (t_thr / t_direct - 1):+.1f}%  rel.err {err:.1e}")

    # Workers generate their own blocks: the data never exists on the client.
    def make_block(block_id, rows):
        rng = np.random.default_rng(block_id)
        return rng.standard_normal((rows, d), dtype=np.float32)

    starts = list(range(0, n, args.chunk))
    blocks = [da.from_delayed(dask.delayed(make_block)(i, min(args.chunk, n - s)), (min(args.chunk, n - s), d),
                              dtype=np.float32) for i, s in enumerate(starts)]
    lazy = da.concatenate(blocks)
    t0 = time.perf_counter()
    for i, s0 in enumerate(starts):
        op.sketch(make_block(i, min(args.chunk, n - s0)))
    t_plain = time.perf_counter() - t0
    print(f"  same generate+sketch loop, no dask:    {t_plain:6.2f} s  {n / t_plain:10.4g} samples/s")
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster):
            op.sketch(lazy[: args.chunk])  # warm up the workers (imports, operator)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t, s = timed(lambda: op.sketch(lazy), repeat=1)
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(f"  LocalCluster, {workers} worker process(es): {t:6.2f} s  {n / t:10.4g} samples/s"
                  f"  overhead vs the loop {100 * (t / t_plain - 1):+.1f}%"
                  f"  client peak RSS growth {(rss1 - rss0) / 1024:.1f} MiB (data: {n * d * 4 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
