"""fit on a million real feature frames: sketchcore against scikit-learn, end to end.

The frames of one set of ``benchmark_real_audio.py`` (its feature cache;
extracted on first use, which needs that script's corpus: see its
``--check``) are standardised and resampled with replacement to
``--frames`` rows, with 1% Gaussian noise so that no two rows are equal.
Then, in one run: CompressiveKMeans against KMeans(n_init=3) and
CompressiveGMM against GaussianMixture(covariance_type="diag"), all with
K = 10 and library defaults, timed end to end (sketch and decode for
sketchcore), with the SSE ratio and the log-likelihood per frame on the
first 100 000 frames.

    python examples/benchmark_million_frames.py --dim 60
    python examples/benchmark_million_frames.py --dim 192 --skip-em

Run time on a 2-core AMD EPYC (AVX-512), shared: about 8 min at d = 60 and
10 min at d = 192, most of it in scikit-learn's EM (384 s and 464 s).
``--frames 100000`` runs in about a minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from sketchcore import CompressiveGMM, CompressiveKMeans

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_real_audio import cached_frames, machine, sse, standardise  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="music", choices=["speech", "music", "instruments", "drums"])
    ap.add_argument("--dim", type=int, default=60, choices=[60, 192])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--skip-em", action="store_true", help="leave out scikit-learn's GaussianMixture (the slowest)")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "sketchcore-bench")
    args = ap.parse_args(argv)
    if not 1000 <= args.frames <= 20_000_000:
        ap.error("--frames must be between 1000 and 20 000 000")

    fs = cached_frames(args.set, args.cache_dir)
    base = standardise(fs.X60 if args.dim == 60 else fs.X192).astype(np.float64)
    rng = np.random.default_rng(0)
    X = base[rng.integers(0, len(base), args.frames)]
    X += 0.01 * rng.standard_normal(X.shape)
    print(f"{args.set}: {len(base)} frames resampled to {args.frames}, d = {args.dim}, K = {args.k}")
    print(f"machine: {machine()}; load average {os.getloadavg()}")

    def timed(name, make):
        t0 = time.perf_counter()
        est = make()
        dt = time.perf_counter() - t0
        parts = ""
        if hasattr(est, "decode_time_"):
            parts = f" (sketch {est.sketch_time_:.1f} s, decode {est.decode_time_:.1f} s)"
        print(f"  {name:<42} {dt:7.1f} s{parts}", flush=True)
        return est

    k = args.k
    ck = timed(f"CompressiveKMeans({k})", lambda: CompressiveKMeans(k, random_state=0).fit(X))
    km = timed(f"KMeans({k}, n_init=3)", lambda: KMeans(k, n_init=3, random_state=0).fit(X))
    print(f"  SSE ratio {sse(X, ck.cluster_centers_) / km.inertia_:.4f}")
    cg = timed(f"CompressiveGMM({k})", lambda: CompressiveGMM(k, random_state=0).fit(X))
    head = X[:100_000]
    line = f"  log-likelihood per frame (first {len(head)} frames): sketch {cg.score(head):.3f}"
    if not args.skip_em:
        em = timed(f"GaussianMixture({k}, covariance_type='diag')",
                   lambda: GaussianMixture(k, covariance_type="diag", random_state=0).fit(X))
        line += f", EM {em.score(head):.3f}"
    print(line)
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
