"""CUDA sketching speed, measured side by side in one run on one machine.

For each shape it prints the fused CUDA sketch against (1) the bare cuBLAS
product ``X @ Omega`` of the same shape on the same device -- the floor a
fused kernel that also evaluates m sines and cosines per row cannot beat by
much --, (2) the Rust SIMD sketch on all the host's cores and (3) the float64
NumPy reference (relative error, and time on a slice scaled linearly). Then
host-resident input streamed through pinned buffers against the bare
host-to-device copy, the structured operator, the decoders' objective on the
device against the Rust kernel, and a whole ``fit`` on a million frames with
``backend="cupy"`` against ``backend="rust"``.

Needs a CUDA device and CuPy (``pip install 'sketchcore[cuda]'``); without
them it says so and exits with status 2.

Usage::

    python examples/benchmark_cuda.py            # full sizes (about 1 minute on one GPU)
    python examples/benchmark_cuda.py --quick    # small sizes, smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial

import numpy as np
from benchmark_sketch import cpu_model  # examples/, the script's own folder, is on sys.path

import sketchcore
from sketchcore import _core
from sketchcore.backends.reference import sketch_reference
from sketchcore.exceptions import BackendUnavailableError


def best_of(fn, repeat: int, sync=None) -> float:
    """Best wall time of ``repeat`` calls after one warm-up call."""
    fn()
    if sync is not None:
        sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def rel_err(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def dense_table(cp, n: int, d: int, m: int, repeat: int, rng) -> None:
    from sketchcore.backends import cuda

    sync = cp.cuda.Device().synchronize
    op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), dither=True, seed=1)
    print(f"\ndense operator, N={n}, d={d}, m={m}, input on the device (best of {repeat})")
    print(f"  {'':28s} {'time':>9s} {'rows/s':>11s} {'vs cuBLAS':>10s} {'vs Rust CPU':>12s} {'rel. err':>9s}")
    n_ref = min(n, 1 << 14)
    for dtype in (np.float32, np.float64):
        X = rng.standard_normal((n, d)).astype(dtype)
        Xd = cp.asarray(X)
        omega = cp.asarray(op.frequencies, dtype=dtype)
        t_blas = best_of(partial(Xd.__matmul__, omega), repeat, sync)
        t_cpu = best_of(partial(op.sketch, X), max(1, repeat // 2))
        ref = sketch_reference(op, X[:n_ref].astype(np.float64)).z
        name = np.dtype(dtype).name
        for fast in (False, True):
            t_gpu = best_of(partial(cuda.sketch_cupy, op, Xd, fast_math=fast), repeat)
            err = rel_err(cuda.sketch_cupy(op, Xd[:n_ref], fast_math=fast).z, ref)
            label = f"CUDA sketch {name}" + (" fast-math" if fast else "")
            print(f"  {label:28s} {t_gpu:9.4f} {n / t_gpu:11.4g} {t_gpu / t_blas:9.2f}x {t_cpu / t_gpu:11.1f}x "
                  f"{err:9.1e}")
        print(f"  {'cuBLAS X @ Omega ' + name:28s} {t_blas:9.4f} {n / t_blas:11.4g}")
        print(f"  {'Rust SIMD sketch ' + name:28s} {t_cpu:9.4f} {n / t_cpu:11.4g} "
              f"({_core.default_num_threads()} threads, {sketchcore.simd_level()})")


def streamed_table(cp, n: int, d: int, m: int, repeat: int, rng) -> None:
    sync = cp.cuda.Device().synchronize
    op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), seed=2)
    X = rng.standard_normal((n, d)).astype(np.float32)
    t_copy = best_of(lambda: cp.asarray(X), repeat, sync)
    t_stream = best_of(lambda: op.sketch(X, backend="cupy"), repeat)
    t_cpu = best_of(partial(op.sketch, X), max(1, repeat // 2))
    gb = X.nbytes / 1e9
    print(f"\nhost input streamed to the device (pinned, double-buffered), N={n}, d={d}, m={m}, float32")
    print(f"  backend='cupy' on NumPy input  {t_stream:8.4f} s  {n / t_stream:11.4g} rows/s  {gb / t_stream:6.1f} GB/s")
    print(f"  bare cupy.asarray copy         {t_copy:8.4f} s  {gb / t_copy:6.1f} GB/s (pageable)")
    print(f"  Rust SIMD sketch on the host   {t_cpu:8.4f} s  {n / t_cpu:11.4g} rows/s")


def structured_table(cp, n: int, d: int, m: int, repeat: int, rng) -> None:
    from sketchcore.backends import cuda

    X = rng.standard_normal((n, d)).astype(np.float32)
    Xd = cp.asarray(X)
    n_ref = min(n, 4096)
    print(f"\nstructured vs dense operator, N={n}, d={d}, m={m}, float32 on the device")
    for kind in ("dense", "structured"):
        op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), kind=kind, seed=3)
        t_gpu = best_of(partial(cuda.sketch_cupy, op, Xd), repeat)
        t_cpu = best_of(partial(op.sketch, X), max(1, repeat // 2))
        err = rel_err(cuda.sketch_cupy(op, Xd[:n_ref]).z, sketch_reference(op, X[:n_ref].astype(np.float64)).z)
        print(f"  {kind:10s} CUDA {t_gpu:8.4f} s  Rust CPU {t_cpu:8.4f} s  ({t_cpu / t_gpu:5.1f}x)  rel. err {err:.1e}")


def objective_table(cp, k: int, d: int, m: int, repeat: int, rng) -> None:
    from sketchcore.backends import cuda

    op = sketchcore.SketchOperator(d, m, sigma=1.5, dither=True, seed=4)
    means, var, alpha = rng.normal(size=(k, d)), rng.uniform(0.1, 1, (k, d)), rng.uniform(size=k)
    z = rng.normal(size=m) + 1j * rng.normal(size=m)
    print(f"\ndecoders' objective and gradient (diagonal Gaussian atoms), K={k}, d={d}, m={m}, float64")
    args = (op.frequencies, op.dither, means, alpha)
    zr, zi = z.real.copy(), z.imag.copy()
    t_cpu = best_of(lambda: _core.atom_objective(*args, zr, zi, omega_sq=op.squared_frequencies, variances=var),
                    repeat)
    dev = tuple(cp.asarray(a) for a in args)
    sq, zd = cp.asarray(op.squared_frequencies), cp.asarray(z)
    t_gpu = best_of(lambda: cuda.atom_objective_cupy(*dev, zd, omega_sq=sq, variances=var), repeat)
    got = cuda.atom_objective_cupy(*args, z, omega_sq=op.squared_frequencies, variances=var)
    want = _core.atom_objective(*args, zr, zi, omega_sq=op.squared_frequencies, variances=var)
    err = abs(got[0] - want[0]) / abs(want[0])
    print(f"  CUDA {t_gpu * 1e3:8.3f} ms per call   Rust CPU {t_cpu * 1e3:8.3f} ms   ({t_cpu / t_gpu:5.1f}x)   "
          f"objective rel. diff {err:.1e}")


def fit_table(n: int, d: int, k: int, seed: int) -> None:
    from sketchcore import CompressiveKMeans
    from sketchcore.datasets import make_feature_frames

    X = make_feature_frames(n, d, k, random_state=seed)[0].astype(np.float32)
    print(f"\nCompressiveKMeans(n_clusters={k}).fit on N={n} frames, d={d}, float32 (one run each)")
    for backend in ("rust", "cupy"):
        est = CompressiveKMeans(n_clusters=k, backend=backend, random_state=seed)
        t0 = time.perf_counter()
        est.fit(X)
        total = time.perf_counter() - t0
        print(f"  backend={backend!r:7s} fit {total:7.2f} s  (sketch {est.sketch_time_:6.3f} s, "
              f"decode {est.decode_time_:6.2f} s)  inertia/N {est.score(X) / -n:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        from sketchcore.backends import cuda

        cp = cuda._cupy()
    except BackendUnavailableError as exc:
        print(f"benchmark_cuda: {exc}", file=sys.stderr)
        return 2
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.runtime.getDevice())
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"GPU: {name} (compute capability {props['major']}.{props['minor']}, "
          f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.0f} GiB)")
    print(f"CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, driver {cp.cuda.runtime.driverGetVersion()}, "
          f"CuPy {cp.__version__}")
    print(f"Host: {cpu_model()} ({os.cpu_count()} logical CPUs), sketchcore {sketchcore.__version__}, "
          f"SIMD level {sketchcore.simd_level()}, NumPy {np.__version__}")
    t0 = time.perf_counter()
    cuda._module(cp.cuda.runtime.getDevice())
    cp.cuda.Device().synchronize()
    print(f"kernel compilation (NVRTC, first use on this device): {time.perf_counter() - t0:.2f} s")

    rng = np.random.default_rng(0)
    # (N, d, m) per table; the audio setting is the K = 10, d = 60 GMM sketch (m = 6050).
    full = {"dense": (1 << 22, 64, 1024), "audio": (1_000_000, 60, 6050), "structured": (1 << 20, 192, 4096),
            "objective": [(10, 60, 6050), (64, 12, 10_000)], "fit": 1_000_000}
    quick = {"dense": (2048, 64, 256), "audio": (1000, 60, 605), "structured": (512, 192, 512),
             "objective": [(3, 60, 605)], "fit": 5000}
    sizes = quick if args.quick else full
    dense_table(cp, *sizes["dense"], args.repeat, rng)
    dense_table(cp, *sizes["audio"], args.repeat, rng)
    streamed_table(cp, *sizes["dense"], args.repeat, rng)
    structured_table(cp, *sizes["structured"], args.repeat, rng)
    for k, d, m in sizes["objective"]:
        objective_table(cp, k, d, m, args.repeat, rng)
    fit_table(sizes["fit"], 60, 10, seed=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
