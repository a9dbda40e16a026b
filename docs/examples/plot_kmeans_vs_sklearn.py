"""
k-means from a sketch against scikit-learn
==========================================

A mixture of Gaussians from :func:`sketchcore.datasets.make_mixture` is
sketched in one pass into m = 5 K (2d + 1) random Fourier features, and
:class:`~sketchcore.CompressiveKMeans` decodes a Gaussian mixture of 2 K
components from the sketch alone and reads the K centroids from it.
scikit-learn's :class:`~sklearn.cluster.KMeans` (k-means++, ten restarts)
sees every point on every iteration; both are scored by their sum of squared
errors (SSE) on the same data.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans

from sketchcore import CompressiveKMeans
from sketchcore.datasets import make_mixture

X, y, centers = make_mixture(20_000, 2, 6, separation=2.5, random_state=3, return_centers=True)

t0 = time.perf_counter()
ckm = CompressiveKMeans(n_clusters=6, random_state=0).fit(X)
t_sketch = time.perf_counter() - t0

t0 = time.perf_counter()
km = KMeans(n_clusters=6, n_init=10, random_state=0).fit(X)
t_lloyd = time.perf_counter() - t0

sse_sketch = -ckm.score(X)
sse_lloyd = km.inertia_
print(f"sketch size m = {ckm.operator_.sketch_size} (the data: {X.size} numbers)")
print(f"CompressiveKMeans: SSE {sse_sketch:.6g} in {t_sketch:.2f} s "
      f"(sketch {ckm.sketch_time_:.3f} s, decode {ckm.decode_time_:.2f} s)")
print(f"KMeans(n_init=10): SSE {sse_lloyd:.6g} in {t_lloyd:.2f} s")
print(f"SSE ratio: {sse_sketch / sse_lloyd:.4f}")

# %%
# The centroids of both methods on a subsample of the data.

fig, ax = plt.subplots(figsize=(6, 5.5))
sub = np.random.default_rng(0).choice(len(X), 4000, replace=False)
ax.scatter(X[sub, 0], X[sub, 1], s=2, c=y[sub], cmap="tab10", alpha=0.3)
ax.scatter(*km.cluster_centers_.T, marker="x", s=120, c="k", label="scikit-learn KMeans")
ax.scatter(*ckm.cluster_centers_.T, marker="o", s=120, facecolors="none", edgecolors="C3",
           linewidths=2, label="CompressiveKMeans (sketch)")
ax.set_title(f"SSE ratio {sse_sketch / sse_lloyd:.4f}, sketch of m = {ckm.operator_.sketch_size}")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2)
fig.tight_layout()
