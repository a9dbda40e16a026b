"""The ``sketchcore`` command line (also ``python -m sketchcore``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    """Sketches a generated Gaussian mixture and compares with the NumPy reference."""
    import sketchcore
    from sketchcore import _core
    from sketchcore.reference import sketch_reference

    rng = np.random.default_rng(args.seed)
    n, d, k, m = args.n_samples, args.dim, args.n_clusters, args.sketch_size
    means = rng.normal(scale=1.5 * k ** (1 / d), size=(k, d))
    X = (means[rng.integers(k, size=n)] + rng.normal(size=(n, d))).astype(np.float32)
    op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), dither=True, seed=args.seed)
    print(f"sketchcore {sketchcore.__version__}: SIMD level {sketchcore.simd_level()}, "
          f"{_core.default_num_threads()} threads")
    print(f"data: {n} samples x {d} features (mixture of {k} Gaussians); sketch size m = {m}\n")

    rows = []
    for label, data in (("rust float32", X), ("rust float64", X.astype(np.float64))):
        op.sketch(data[:1000])  # warm up threads and caches
        t0 = time.perf_counter()
        sk = op.sketch(data)
        rows.append((label, time.perf_counter() - t0, sk))
    n_ref = min(n, args.reference_rows)
    t0 = time.perf_counter()
    ref_part = sketch_reference(op, X[:n_ref].astype(np.float64))
    t_ref = (time.perf_counter() - t0) * n / n_ref
    print(f"{'backend':<22}{'time (s)':>10}{'samples/s':>14}{'speed-up':>10}{'rel. error':>12}")
    for (label, t, _), dtype in zip(rows, (np.float32, np.float64)):
        z = op.sketch(X[:n_ref].astype(dtype)).z
        err = np.linalg.norm(z - ref_part.z) / np.linalg.norm(ref_part.z)
        print(f"{label:<22}{t:>10.3f}{n / t:>14.4g}{t_ref / t:>9.1f}x{err:>12.1e}")
    print(f"{'numpy float64 ref.':<22}{t_ref:>10.3f}{n / t_ref:>14.4g}{1.0:>9.1f}x{0.0:>12.1e}"
          f"   (timed on {n_ref} rows)")
    merged = sketchcore.Sketch.merge([op.sketch(part) for part in np.array_split(X, 7)])
    err = np.linalg.norm(merged.z - rows[0][2].z) / np.linalg.norm(rows[0][2].z)
    print(f"\nmerge of 7 parts vs one pass: rel. difference {err:.1e}")
    return 0


def _simd(args: argparse.Namespace) -> int:
    """Prints the instruction sets the kernels can use here."""
    import sketchcore
    from sketchcore import _core

    print(f"best: {sketchcore.simd_level()}")
    print(f"available: {', '.join(sketchcore.available_simd_levels())}")
    print(f"threads: {_core.default_num_threads()}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    """Merges sketch files of disjoint data made with one operator."""
    from sketchcore import Sketch

    total = Sketch.merge(Sketch.load(p) for p in args.inputs)
    total.save(args.output, metadata={"merged_from": [str(p) for p in args.inputs]})
    print(f"merged {len(args.inputs)} sketches ({total.count} samples, weight {total.weight:g}) into {args.output}")
    return 0


def _info(args: argparse.Namespace) -> int:
    """Prints what a sketch file holds."""
    from sketchcore import Sketch

    for path in args.files:
        sk = Sketch.load(path)
        op = sk.operator
        print(f"{path}:")
        rows = [
            ("operator", f"{op.kind}, dim {op.dim}, sketch size {op.sketch_size}, sigma {op.sigma:g}, "
                         f"radius {op.radius}, seed {op.seed}"),
            ("nonlinearity", "1-bit quantized" + (" (dithered)" if op.has_dither else "") if op.quantize
             else "complex exponential" + (" (dithered)" if op.has_dither else "")),
            ("fingerprint", op.fingerprint),
            ("samples", f"{sk.count}"),
            ("total weight", f"{sk.weight:g}"),
            ("forgetting", "none" if sk.decay == 1 else f"{sk.decay} per sample"),
            ("privacy", "none" if not sk.privacy else
             f"{sk.privacy['mechanism']}, epsilon {sk.privacy['epsilon']:g}, delta {sk.privacy['delta']:g}"),
            ("data box", f"[{np.min(sk.lower):.4g}, {np.max(sk.upper):.4g}] (overall)"),
        ]
        if sk.metadata:
            rows.append(("metadata", ", ".join(f"{k}={v}" for k, v in sorted(sk.metadata.items()))))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"  {k:<{width}}  {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchcore",
        description="Compressive learning: sketch data in one pass, learn models from the sketch.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="sketch generated data and compare speed and accuracy with NumPy")
    demo.add_argument("--n-samples", type=int, default=1_000_000, help="rows of generated data (default 1e6)")
    demo.add_argument("--dim", type=int, default=10, help="features (default 10)")
    demo.add_argument("--n-clusters", type=int, default=10, help="mixture components (default 10)")
    demo.add_argument("--sketch-size", type=int, default=1000, help="frequencies m (default 1000)")
    demo.add_argument("--reference-rows", type=int, default=20_000,
                      help="rows the slow NumPy reference is timed on (scaled to all rows)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    merge = sub.add_parser("merge", help="merge sketch files of disjoint data (same operator)")
    merge.add_argument("inputs", nargs="+", metavar="SKETCH", help="input .sketch files")
    merge.add_argument("-o", "--output", required=True, help="output .sketch file (written atomically)")
    merge.set_defaults(func=_merge)

    info = sub.add_parser("info", help="describe sketch files")
    info.add_argument("files", nargs="+", metavar="SKETCH")
    info.set_defaults(func=_info)

    simd = sub.add_parser("simd", help="show the SIMD level and threads the kernels use")
    simd.set_defaults(func=_simd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sketchcore`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from sketchcore.exceptions import SketchcoreError

    try:
        return int(args.func(args))
    except (SketchcoreError, FileNotFoundError, PermissionError) as exc:
        print(f"sketchcore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sketchcore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
