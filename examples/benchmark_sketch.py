"""Sketching speed, measured side by side in one run.

Ratios against (1) the float64 NumPy reference sketch, (2) the bare float32
BLAS product ``X @ Omega`` of the same shape -- the floor a fused kernel cannot
beat -- and a samples/s figure at the published compressive k-means setting.

Usage::

    python examples/benchmark_sketch.py            # full sizes (about 1 minute)
    python examples/benchmark_sketch.py --quick    # small sizes, smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import sketchcore
from sketchcore import _core
from sketchcore.backends.reference import sketch_reference


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                return (f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('architecture')}, "
                        f"{lib.get('num_threads')} threads)")
    except ImportError:
        pass
    return "unknown BLAS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    threads = _core.default_num_threads()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"sketchcore {sketchcore.__version__}, SIMD level: {sketchcore.simd_level()}, threads: {threads}")
    print(f"NumPy {np.__version__}, BLAS: {blas_info()}")
    rng = np.random.default_rng(0)

    # 1. The headline shape: N = 2^18, d = 64, m = 1024, float32.
    n, d, m = (2**14, 64, 1024) if args.quick else (2**18, 64, 1024)
    X = rng.standard_normal((n, d)).astype(np.float32)
    op = sketchcore.SketchOperator(d, m, sigma=8.0, seed=1)
    omega32 = op.frequencies.astype(np.float32)
    t_rust = best_of(lambda: op.sketch(X), args.repeat)
    t_blas = best_of(lambda: X @ omega32, args.repeat)
    n_ref = n if args.quick else 2**15  # the reference is slow: time a slice, scale linearly
    t_ref = best_of(lambda: sketch_reference(op, X[:n_ref]), 1) * (n / n_ref)
    z = op.sketch(X[:n_ref]).z
    z_ref = sketch_reference(op, X[:n_ref]).z
    err = np.linalg.norm(z - z_ref) / np.linalg.norm(z_ref)
    print(f"\nN={n}, d={d}, m={m}, float32 (best of {args.repeat})")
    print(f"  rust fused sketch        {t_rust:8.3f} s   {n / t_rust:12.4g} samples/s")
    print(f"  float32 BLAS X @ Omega   {t_blas:8.3f} s")
    print(f"  float64 NumPy reference  {t_ref:8.3f} s   (timed on {n_ref} rows, scaled)")
    print(f"  speed-up vs reference    {t_ref / t_rust:8.1f}x")
    print(f"  sketch / bare matmul     {t_rust / t_blas:8.2f}")
    print(f"  rel. error vs reference  {err:8.1e}  (float32 input)")

    # 2. Published compressive k-means setting: N = 1e5, d = 10, m = 1000.
    n, d, m = (10_000, 10, 1000) if args.quick else (100_000, 10, 1000)
    X = rng.standard_normal((n, d)).astype(np.float32)
    op = sketchcore.SketchOperator(d, m, seed=2)
    t32 = best_of(lambda: op.sketch(X), args.repeat)
    X64 = X.astype(np.float64)
    t64 = best_of(lambda: op.sketch(X64), args.repeat)
    t1 = best_of(lambda: op.sketch(X, n_threads=1), args.repeat)
    print(f"\nN={n}, d={d}, m={m} (published compressive k-means setting)")
    print(f"  float32, {threads} threads      {n / t32:12.4g} samples/s")
    print(f"  float32, 1 thread       {n / t1:12.4g} samples/s")
    print(f"  float64, {threads} threads      {n / t64:12.4g} samples/s")


if __name__ == "__main__":
    main()
