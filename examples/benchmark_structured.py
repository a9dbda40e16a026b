"""Structured (Hadamard) vs dense operator: sketching speed, operator memory,
and k-means quality from either sketch.

    python examples/benchmark_structured.py            # d=512, m=8192, N=2^16 (float32)
    python examples/benchmark_structured.py --quick    # smaller sizes (smoke test)

Speed: best of ``--repeat`` runs of ``op.sketch(X)`` on all cores, one
process, the same float32 data for both operators. Quality: CompressiveKMeans
SSE / scikit-learn KMeans SSE on a Gaussian mixture, with each operator kind.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import sketchcore
from sketchcore import CompressiveKMeans, SketchOperator


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up: page faults, thread pool
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def speed(n: int, d: int, m: int, repeat: int, dense: bool = True) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d), dtype=np.float32)
    ops = {kind: SketchOperator(d, m, sigma=float(np.sqrt(d)), kind=kind, seed=1) for kind in ("dense", "structured")}
    t_struct = best_time(lambda: ops["structured"].sketch(x), repeat)
    line = f"d={d} m={m} N={n}: structured {t_struct:.3f} s ({n / t_struct:.3g} samples/s)"
    if dense:
        t_dense = best_time(lambda: ops["dense"].sketch(x), repeat)
        line += f", dense {t_dense:.3f} s -> dense/structured = {t_dense / t_struct:.2f}x"
    print(line)
    s = ops["structured"]
    struct_bytes = s.signs.nbytes + s.scales.nbytes + s.dither.nbytes
    dense_bytes = d * m * 4 + m * 4  # float32 frequencies and dither, as the kernel reads them
    print(f"  operator memory: structured {struct_bytes / 1e3:.0f} kB vs dense {dense_bytes / 1e6:.1f} MB (float32)")


def quality(n: int, d: int, k: int, seeds: int) -> None:
    from sklearn.cluster import KMeans

    for kind in ("dense", "structured"):
        ratios = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            centers = rng.uniform(-4, 4, size=(k, d))
            x = centers[rng.integers(k, size=n)] + rng.standard_normal((n, d))
            ref = KMeans(k, n_init=10, random_state=seed).fit(x)
            est = CompressiveKMeans(k, operator=kind, random_state=seed).fit(x)
            ratios.append(-est.score(x) / -ref.score(x))
        print(f"  k-means SSE ratio vs KMeans, {kind:10s} (d={d}, K={k}, m=5Kd, {seeds} seeds): "
              f"median {np.median(ratios):.4f}, worst {max(ratios):.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-quality", action="store_true")
    args = p.parse_args()
    print(f"sketchcore {sketchcore.__version__}, SIMD {sketchcore.simd_level()}, "
          f"threads {sketchcore._core.default_num_threads()}")
    if args.quick:
        speed(2**12, 512, 2048, args.repeat)
        if not args.skip_quality:
            quality(20_000, 16, 4, 1)
        return
    speed(2**16, 512, 8192, args.repeat)
    speed(2**13, 1024, 16384, args.repeat, dense=False)
    if not args.skip_quality:
        quality(100_000, 64, 10, 3)


if __name__ == "__main__":
    main()
