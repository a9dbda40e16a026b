"""Decoding (sketch excluded) vs scikit-learn on the same data."""

from __future__ import annotations

from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

import sketchcore

from .common import LARGE, mixture


class DecodeKMeans:
    params = ([(10, 10, 500), (10, 64, 3200)] + ([(64, 12, 10_000)] if LARGE else []),)
    param_names = ["K, d, m"]
    timeout = 900

    def setup(self, kdm):
        k, d, m = kdm
        X = mixture(100_000, d, k=k)
        self.pool = X[:1000]
        self.sketch = sketchcore.SketchOperator.from_data(X, m, seed=0).sketch(X)

    def time_fit_sketch(self, kdm):
        sketchcore.CompressiveKMeans(kdm[0], n_replicates=1, random_state=0).fit_sketch(self.sketch)


class DecodeGMM:
    params = ([(10, 10, 1050)],)
    param_names = ["K, d, m"]
    timeout = 900

    def setup(self, kdm):
        k, d, m = kdm
        X = mixture(100_000, d, k=k)
        self.sketch = sketchcore.SketchOperator.from_data(X, m, seed=0).sketch(X)

    def time_fit_sketch(self, kdm):
        sketchcore.CompressiveGMM(kdm[0], n_replicates=1, random_state=0).fit_sketch(self.sketch)


class SklearnBaselines:
    """The estimators users would otherwise run, on the same data."""

    params = ([100_000] + ([1_000_000] if LARGE else []),)
    param_names = ["N"]
    timeout = 900

    def setup(self, n):
        self.X = mixture(n, 10)

    def time_kmeans_n_init_10(self, n):
        KMeans(10, n_init=10, random_state=0).fit(self.X)

    def time_minibatch_kmeans(self, n):
        MiniBatchKMeans(10, n_init=3, random_state=0).fit(self.X)

    def time_gaussian_mixture_diag(self, n):
        GaussianMixture(10, covariance_type="diag", random_state=0).fit(self.X)


class EndToEnd:
    """fit(X) including the sketch, vs scikit-learn's KMeans as N grows."""

    params = ([10_000, 100_000] + ([1_000_000, 4_000_000] if LARGE else []), ["compressive", "sklearn"])
    param_names = ["N", "method"]
    timeout = 1200

    def setup(self, n, method):
        self.X = mixture(n, 10)

    def time_fit(self, n, method):
        if method == "compressive":
            sketchcore.CompressiveKMeans(10, n_replicates=1, compute_labels=False, random_state=0).fit(self.X)
        else:
            KMeans(10, n_init=10, random_state=0).fit(self.X)
