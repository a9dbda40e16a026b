"""
How large a sketch?
===================

The sketch size m sets what the decoder can recover. CompressiveKMeans
decodes a diagonal Gaussian mixture (2 K components by default) and reads
the centroids from it, so m is counted in units of the parameters of a
K-component diagonal mixture, K (2d + 1); the default is five of them. This
draws the SSE ratio to scikit-learn's :class:`~sklearn.cluster.KMeans` as m
grows, for a few draws of the data (K = 6, d = 4, N = 10 000; one decoding
replicate each, to keep it short -- the library's default of two
replicates helps most at small m).
"""

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans

from sketchcore import CompressiveKMeans
from sketchcore.datasets import make_mixture

K, d = 6, 4
unit = K * (2 * d + 1)
factors = [1, 1.5, 2, 3, 5]
ratios = {}
for seed in range(2):
    X, _ = make_mixture(10_000, d, K, random_state=100 + seed)
    reference = KMeans(K, n_init=10, random_state=0).fit(X).inertia_
    ratios[seed] = []
    for f in factors:
        ckm = CompressiveKMeans(K, sketch_size=int(f * unit), n_replicates=1, random_state=seed).fit(X)
        ratios[seed].append(-ckm.score(X) / reference)
    pairs = zip(factors, ratios[seed], strict=True)
    print(f"data seed {100 + seed}: " + ", ".join(f"m = {f:g} K(2d+1): {r:.4f}" for f, r in pairs))

# %%

fig, ax = plt.subplots(figsize=(6, 4))
for seed, values in ratios.items():
    ax.plot(factors, values, "o-", label=f"data seed {100 + seed}")
ax.axhline(1.0, color="k", lw=0.8)
ax.axvline(5, color="0.6", ls=":", lw=1)
ax.set_xlim(0, 5.5)
ax.text(4.9, 0.5, "default\nm = 5 K (2d + 1)", transform=ax.get_xaxis_transform(), ha="right", color="0.4")
ax.set_xlabel("m / (K (2d + 1))")
ax.set_ylabel("SSE / SSE of KMeans(n_init=10)")
ax.legend()
fig.tight_layout()
