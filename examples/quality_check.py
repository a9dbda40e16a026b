"""Quality and decoding time of CompressiveKMeans / CompressiveGMM against
scikit-learn on the literature's synthetic mixtures
(:func:`sketchcore.datasets.make_mixture`).

K unit-covariance Gaussians with means drawn N(0, (1.5 K^(1/d))^2 I), N
samples (plus N/5 held out for the GMM log-likelihood).

Usage::

    python examples/quality_check.py kmeans --dim 10 --seeds 5
    python examples/quality_check.py gmm --dim 10 --seeds 5
    python examples/quality_check.py kmeans --dim 10 --ratios 2 5 10 20   # SSE vs m/(K d)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

import sketchcore
from sketchcore.datasets import make_mixture


def sse(X: np.ndarray, centers: np.ndarray) -> float:
    d2 = (X * X).sum(1)[:, None] - 2 * X @ centers.T + (centers * centers).sum(1)
    return float(np.maximum(d2, 0).min(1).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["kmeans", "gmm"])
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--ratios", type=float, nargs="*",
                    help="sketch sizes as multiples of K d (default: library default)")
    ap.add_argument("--operator", default="dense")
    args = ap.parse_args()
    d, k = args.dim, args.k
    ratios = args.ratios or [None]
    print(f"{args.model}: K={k}, d={d}, N={args.n}, SIMD {sketchcore.simd_level()}")
    for ratio in ratios:
        rows = []
        for seed in range(args.seeds):
            X, y = make_mixture(args.n + args.n // 5, d, k, random_state=seed)
            X, X_test, y = X[: args.n], X[args.n :], y[: args.n]
            m = None if ratio is None else int(ratio * k * d)
            if args.model == "kmeans":
                est = sketchcore.CompressiveKMeans(k, sketch_size=m, operator=args.operator, random_state=seed).fit(X)
                t0 = time.perf_counter()
                ref = KMeans(k, init="k-means++", n_init=10, random_state=seed).fit(X)
                t_ref = time.perf_counter() - t0
                rows.append((sse(X, est.cluster_centers_) / ref.inertia_, adjusted_rand_score(y, est.labels_),
                             adjusted_rand_score(y, ref.labels_), est.sketch_time_, est.decode_time_, t_ref,
                             est.operator_.sketch_size))
            else:
                est = sketchcore.CompressiveGMM(k, sketch_size=m, operator=args.operator, random_state=seed).fit(X)
                t0 = time.perf_counter()
                ref = GaussianMixture(k, covariance_type="diag", n_init=10, random_state=seed).fit(X)
                t_ref = time.perf_counter() - t0
                rows.append((ref.score(X_test) - est.score(X_test), 0.0, 0.0, est.sketch_time_, est.decode_time_,
                             t_ref, est.operator_.sketch_size))
            r = rows[-1]
            what = "SSE ratio" if args.model == "kmeans" else "nats below EM"
            print(f"  m={r[6]:6d} seed={seed}: {what} {r[0]:.4f}  ARI {r[1]:.3f} (sklearn {r[2]:.3f})  "
                  f"sketch {r[3]:.2f}s decode {r[4]:.2f}s  sklearn {r[5]:.2f}s")
        q = np.array([r[0] for r in rows])
        print(f"  => m/(K d) = {rows[0][6] / (k * d):.1f}: median {np.median(q):.4f}, worst {q.max():.4f}, "
              f"median decode {np.median([r[4] for r in rows]):.2f}s")


if __name__ == "__main__":
    main()
