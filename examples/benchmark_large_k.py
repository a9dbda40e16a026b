"""Large-K decoding: time and held-out log-likelihood of CompressiveGMM
(hierarchical splitting and CL-OMPR) against scikit-learn's EM.

Synthetic diagonal mixture in d dimensions: K means uniform in [-5, 5]^d,
per-coordinate standard deviations uniform in [0.5, 1.5], weights uniform in
[0.5, 1.5] (normalised). The sketch is computed once per configuration; each
method decodes it with one replicate. Quality: mean held-out log-likelihood
(20 000 rows) against the true mixture and EM (n_init=3).

    python examples/benchmark_large_k.py                       # K=64, d=12, m=1e4
    python examples/benchmark_large_k.py --sigma 1.0           # frequency scale given
    python examples/benchmark_large_k.py --k 256 --m 50000 --n 500000 --methods batch --no-em
    python examples/benchmark_large_k.py --k 512 --m 100000 --n 1000000 --methods batch --no-em
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sketchcore import CompressiveGMM


def mixture_params(k: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means, standard deviations, weights) of the synthetic mixture."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-5, 5, size=(k, d))
    std = rng.uniform(0.5, 1.5, size=(k, d))
    w = rng.uniform(0.5, 1.5, size=k)
    return means, std, w / w.sum()


def mixture(k: int, d: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n training rows (float32) and n held-out rows (float64)."""
    means, std, w = mixture_params(k, d, seed)
    rng = np.random.default_rng([seed, 1])
    labels = rng.choice(k, size=2 * n, p=w)
    x = means[labels] + std[labels] * rng.standard_normal((2 * n, d))
    return x[:n].astype(np.float32), x[n:]


def true_log_likelihood(k: int, d: int, seed: int, x_test: np.ndarray) -> float:
    from scipy.special import logsumexp

    means, std, w = mixture_params(k, d, seed)
    ll = np.log(w)[None, :] - 0.5 * (
        np.sum(np.log(2 * np.pi * std**2), axis=1)[None, :]
        + (((x_test[:, None, :] - means[None]) / std[None]) ** 2).sum(axis=2)
    )
    return float(np.mean(logsumexp(ll, axis=1)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--d", type=int, default=12)
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--n", type=int, default=200_000, help="training samples (as many held out)")
    p.add_argument("--methods", default="batch,clompr,split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-em", action="store_true", help="skip scikit-learn EM (n_init=3)")
    p.add_argument("--sigma", default="auto", help='frequency scale: a number, or "auto" (estimate_sigma)')
    args = p.parse_args()

    x, x_test = mixture(args.k, args.d, args.n, args.seed)
    print(f"K={args.k} d={args.d} m={args.m} N={args.n} (seed {args.seed})")
    true_ll = true_log_likelihood(args.k, args.d, args.seed, x_test[:20_000])
    print(f"  true model: held-out LL {true_ll:.4f}")
    em_ll = None
    if not args.no_em:
        from sklearn.mixture import GaussianMixture

        t = time.perf_counter()
        em = GaussianMixture(args.k, covariance_type="diag", n_init=3, random_state=args.seed).fit(x)
        em_ll = em.score(x_test[:20_000])
        print(f"  EM (n_init=3): {time.perf_counter() - t:7.1f} s  held-out LL {em_ll:.4f}")
    sketch = None
    for method in args.methods.split(","):
        sigma = args.sigma if args.sigma == "auto" else float(args.sigma)
        est = CompressiveGMM(args.k, sketch_size=args.m, sigma=sigma, method=method, n_replicates=1,
                             random_state=args.seed)
        if sketch is None:
            est.fit(x)
            sketch = est.sketch_
        else:
            est.fit_sketch(sketch)
        ll = est.score(x_test[:20_000])
        if method == args.methods.split(",")[0]:
            print(f"  sigma = {est.operator_.sigma:.3g}")
        gap = f"  ({true_ll - ll:+.3f} below the true model"
        gap += ")" if em_ll is None else f", {em_ll - ll:+.3f} below EM)"
        print(f"  {method:7s} decode {est.decode_time_:7.1f} s  held-out LL {ll:.4f}{gap}")


if __name__ == "__main__":
    main()
