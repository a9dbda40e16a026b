"""
How large a sketch?
===================

The sketch size m sets what the decoder can recover. With m a small
multiple of the number of parameters (K d for k-means), the centroids
decoded from the sketch have the SSE of Lloyd's k-means; below, some
clusters are missed or merged. This draws the SSE ratio to scikit-learn's
:class:`~sklearn.cluster.KMeans` as m / (K d) grows, for a few draws of the
data (K = 6, d = 4, N = 10 000; one decoding replicate each, to keep it
short -- the library's default of three replicates only helps at small m).
"""

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans

from sketchcore import CompressiveKMeans
from sketchcore.datasets import make_mixture

K, d = 6, 4
factors = [0.5, 1, 2, 3, 5]
ratios = {}
for seed in range(3):
    X, _ = make_mixture(10_000, d, K, random_state=100 + seed)
    reference = KMeans(K, n_init=10, random_state=0).fit(X).inertia_
    ratios[seed] = []
    for f in factors:
        ckm = CompressiveKMeans(K, sketch_size=max(1, int(f * K * d)), n_replicates=1, random_state=seed).fit(X)
        ratios[seed].append(-ckm.score(X) / reference)
    pairs = zip(factors, ratios[seed], strict=True)
    print(f"data seed {100 + seed}: " + ", ".join(f"m={f:g}Kd: {r:.3f}" for f, r in pairs))

# %%

fig, ax = plt.subplots(figsize=(6, 4))
for seed, values in ratios.items():
    ax.plot(factors, values, "o-", label=f"data seed {100 + seed}")
ax.axhline(1.0, color="k", lw=0.8)
ax.axvline(5, color="0.6", ls=":", lw=1)
ax.set_xlim(0, 5.5)
ax.text(4.9, 0.5, "default\nm = 5 K d", transform=ax.get_xaxis_transform(), ha="right", color="0.4")
ax.set_xlabel("m / (K d)")
ax.set_ylabel("SSE / SSE of KMeans(n_init=10)")
ax.legend()
fig.tight_layout()
