"""Runs the key benchmarks directly (same data and operators as the asv suite)
and writes the README's performance table and a PNG plot.

Usage (from the repository root)::

    python asv_benchmarks/make_report.py            # updates README.md and docs/performance.png
    python asv_benchmarks/make_report.py --quick    # small sizes, no README update

The README's table lies between the markers ``<!-- perf-table:start -->`` and
``<!-- perf-table:end -->`` and is only ever written by this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sketchcore  # noqa: E402
from benchmarks.common import mixture  # noqa: E402
from sketchcore.backends.reference import sketch_reference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def best(fn, repeat=3):
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def pycle_sketch():
    try:
        import pycle.sketching as sk
    except Exception:
        return None
    return sk


def sketch_rows(shapes, repeat):
    sk = pycle_sketch()
    rows = []
    for n, d, m in shapes:
        X = mixture(n, d, dtype=np.float32)
        op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), seed=0)
        om = op.frequencies.astype(np.float32)
        op.sketch(X[:1000])
        t32 = best(partial(op.sketch, X), repeat)
        X64 = X.astype(np.float64)
        t64 = best(partial(op.sketch, X64), repeat)
        tmm = best(partial(np.matmul, X, om), repeat)
        sub = max(1, n // 16)
        tref = best(partial(sketch_reference, op, X64[:sub]), 1) * n / sub
        tpy = None
        if sk is not None:
            phi = sk.SimpleFeatureMap("ComplexExponential", op.frequencies)
            sub_py = max(1, n // 32)
            tpy = best(partial(sk.computeSketch, X64[:sub_py], phi), 1) * n / sub_py
        rows.append(dict(shape=(n, d, m), t32=t32, t64=t64, tmm=tmm, tref=tref, tpy=tpy))
    return rows


def table(rows, structured) -> str:
    out = [
        "| N, d, m | sketchcore f32 | sketchcore f64 | BLAS f32 `X @ Ω` | NumPy f64 reference | pycle | "
        "vs reference | vs pycle | sketch / matmul |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n, d, m = r["shape"]
        py = f"{r['tpy']:.2f} s" if r["tpy"] else "n/a"
        vs_py = f"{r['tpy'] / r['t32']:.0f}x" if r["tpy"] else "n/a"
        out.append(
            f"| {n}, {d}, {m} | {r['t32']:.3f} s ({n / r['t32']:.2g}/s) | {r['t64']:.3f} s | {r['tmm']:.3f} s | "
            f"{r['tref']:.2f} s | {py} | {r['tref'] / r['t32']:.0f}x | {vs_py} | {r['t32'] / r['tmm']:.2f} |"
        )
    if structured:
        n, d, m, td, ts, bd, bs = structured
        out.append("")
        out.append(f"Structured vs dense, N = {n}, d = {d}, m = {m}, float32: dense {td:.2f} s, structured "
                   f"{ts:.2f} s (**{td / ts:.1f}x**); operator memory {bd / 2**20:.1f} MiB vs {bs / 2**10:.0f} KiB.")
    return "\n".join(out)


def plot(path: Path, quick: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.cluster import KMeans

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    dims = [8, 16, 32, 64, 128, 256] if quick else [8, 16, 32, 64, 128, 256, 512]
    n, m = (4096, 1024) if quick else (32768, 1024)
    for kind in ("dense", "structured"):
        rates = []
        for d in dims:
            X = mixture(n, d, dtype=np.float32)
            op = sketchcore.SketchOperator(d, m, kind=kind, sigma=float(np.sqrt(d)), seed=0)
            rates.append(n / best(partial(op.sketch, X), 2))
        ax1.plot(dims, rates, "o-", label=f"sketchcore {kind}")
    ax1.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="samples / s",
            title=f"Sketching throughput, m = {m}, float32")
    ax1.legend()
    sizes = [10_000, 30_000, 100_000] if quick else [10_000, 30_000, 100_000, 300_000, 1_000_000]
    t_ours, t_sk = [], []
    for size in sizes:
        X = mixture(size, 10)
        t0 = time.perf_counter()
        sketchcore.CompressiveKMeans(10, compute_labels=False, random_state=0).fit(X)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        KMeans(10, n_init=10, random_state=0).fit(X)
        t_sk.append(time.perf_counter() - t0)
    ax2.plot(sizes, t_ours, "o-", label="CompressiveKMeans (sketch + decode)")
    ax2.plot(sizes, t_sk, "s-", label="scikit-learn KMeans (n_init=10)")
    ax2.set(xscale="log", yscale="log", xlabel="N samples", ylabel="seconds", title="k-means, K = 10, d = 10")
    ax2.legend()
    fig.suptitle(f"{cpu_model()}, {os.cpu_count()} logical CPUs, SIMD {sketchcore.simd_level()}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    shapes = [(20_000, 10, 1000)] if args.quick else [(100_000, 10, 1000), (2**18, 64, 1024)]
    header = (f"Measured by `python asv_benchmarks/make_report.py` on {cpu_model()} ({os.cpu_count()} logical CPUs), "
              f"SIMD level **{sketchcore.simd_level()}**, sketchcore {sketchcore.__version__}, "
              f"NumPy {np.__version__}; best of 3, one run.")
    rows = sketch_rows(shapes, 1 if args.quick else 3)
    structured = None
    if not args.quick:
        n, d, m = 2**16, 512, 8192
        X = mixture(n, d, dtype=np.float32)
        dense = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), seed=0)
        fast = sketchcore.SketchOperator(d, m, kind="structured", sigma=float(np.sqrt(d)), seed=0)
        structured = (n, d, m, best(lambda: dense.sketch(X), 2), best(lambda: fast.sketch(X), 2),
                      dense.nbytes, fast.nbytes)
    text = header + "\n\n" + table(rows, structured) + "\n\n![performance](docs/performance.png)"
    print(text)
    png = ROOT / "docs" / ("performance-quick.png" if args.quick else "performance.png")
    plot(png, args.quick)
    print(f"plot written to {png}")
    if not args.quick:
        readme = ROOT / "README.md"
        content = readme.read_text()
        new = re.sub(r"(<!-- perf-table:start -->).*?(<!-- perf-table:end -->)",
                     lambda mt: f"{mt.group(1)}\n{text}\n{mt.group(2)}", content, flags=re.S)
        if new == content and "<!-- perf-table:start -->" not in content:
            raise SystemExit("README.md has no perf-table markers")
        readme.write_text(new)
        print("README.md updated")


if __name__ == "__main__":
    main()
