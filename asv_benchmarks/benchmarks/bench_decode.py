"""Decoding (sketch excluded) vs scikit-learn on the same data."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

import sketchcore

from .common import LARGE, mixture


class DecodeKMeans:
    """The k-means decode on one sketch: centroids as the means of a K-atom
    fit ("atoms", the series before the density model) and Lloyd's algorithm
    on a decoded 2K-component density (the default)."""

    params = ([(10, 10, 500), (10, 64, 3200)] + ([(64, 12, 10_000)] if LARGE else []), ["atoms", "density"])
    param_names = ["K, d, m", "centroids"]
    timeout = 900

    def setup(self, kdm, centroids):
        k, d, m = kdm
        X = mixture(100_000, d, k=k)
        self.pool = X[:1000]
        self.sketch = sketchcore.SketchOperator.from_data(X, m, seed=0).sketch(X)

    def time_fit_sketch(self, kdm, centroids):
        density = None if centroids == "atoms" else "auto"
        sketchcore.CompressiveKMeans(kdm[0], n_replicates=1, density_components=density,
                                     random_state=0).fit_sketch(self.sketch)


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

    params = (
        [10_000, 100_000] + ([1_000_000, 4_000_000] if LARGE else []),
        ["compressive", "compressive-density", "sklearn"],
    )
    param_names = ["N", "method"]
    timeout = 1200

    def setup(self, n, method):
        self.X = mixture(n, 10)

    def time_fit(self, n, method):
        if method.startswith("compressive"):
            # "compressive": the series before the density model (centroids as
            # the means of a K-atom fit, m = 5 K d); "compressive-density": the default.
            density = "auto" if method == "compressive-density" else None
            sketchcore.CompressiveKMeans(10, n_replicates=1, compute_labels=False, density_components=density,
                                         random_state=0).fit(self.X)
        else:
            KMeans(10, n_init=10, random_state=0).fit(self.X)


class AtomKernels:
    """The decoders' hot loop on K Gaussian atoms: the joint objective and
    gradient, and one atom's correlation gradient (CL-OMPR step 1). Rust with
    a dense Omega read in place, Rust with the structured operator's
    frequencies generated per group (Omega never materialised), and the
    NumPy reference on the dense Omega."""

    params = ([(64, 12, 10_000), (10, 512, 8192)] + ([(256, 12, 50_000), (10, 1024, 16384)] if LARGE else []),
              ["rust-dense", "rust-structured", "numpy"])
    param_names = ["K, d, m", "implementation"]
    timeout = 300

    def setup(self, kdm, impl):
        from sketchcore.learning.atoms import AtomModel

        k, d, m = kdm
        kind = "structured" if impl == "rust-structured" else "dense"
        op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), seed=0, kind=kind, dither=True)
        self.model = AtomModel(op, True, np.full(d, -3.0), np.full(d, 3.0),
                               var_bounds=(np.full(d, 0.01), np.full(d, 9.0)))
        rng = np.random.default_rng(0)
        theta = np.hstack([rng.normal(size=(k, d)), rng.uniform(0.2, 2.0, size=(k, d))])
        self.x = np.concatenate([theta.ravel(), np.full(k, 1.0 / k)])
        self.z = rng.normal(size=m) + 1j * rng.normal(size=m)
        self.k = k
        self.reference = impl == "numpy"
        if self.reference:
            _ = self.model.omega2  # materialise outside the timing

    def time_objective_and_gradient(self, kdm, impl):
        fn = self.model.objective_and_grad_reference if self.reference else self.model.objective_and_grad
        fn(self.x, self.z, self.k)

    def time_one_atom_correlation_gradient(self, kdm, impl):
        fn = self.model.neg_correlation_and_grad_reference if self.reference else self.model.neg_correlation_and_grad
        fn(self.x[: self.model.n_params], self.z)


class SparseAtomKernels:
    """The decoders' hot loop for a sparse operator (4 coordinates per
    frequency) at audio dimensions: the sparse Rust kernels (O(m s) per atom)
    against the dense Rust kernels on the same frequencies (O(m d))."""

    params = ([(10, 60, 6050), (10, 192, 19290)], ["rust-sparse", "rust-dense"])
    param_names = ["K, d, m", "implementation"]
    timeout = 300

    def setup(self, kdm, impl):
        from sketchcore.learning.atoms import AtomModel

        k, d, m = kdm
        op = sketchcore.SketchOperator(d, m, sigma=3.0, seed=0, kind="sparse", dither=True)
        self.model = AtomModel(op, True, np.full(d, -3.0), np.full(d, 3.0),
                               var_bounds=(np.full(d, 0.01), np.full(d, 9.0)))
        if impl == "rust-dense":
            self.model._sparse = None
            _ = self.model.omega2  # materialise outside the timing
        rng = np.random.default_rng(0)
        theta = np.hstack([rng.normal(size=(k, d)), rng.uniform(0.2, 2.0, size=(k, d))])
        self.x = np.concatenate([theta.ravel(), np.full(k, 1.0 / k)])
        self.z = rng.normal(size=m) + 1j * rng.normal(size=m)
        self.k = k

    def time_objective_and_gradient(self, kdm, impl):
        self.model.objective_and_grad(self.x, self.z, self.k)

    def time_one_atom_correlation_gradient(self, kdm, impl):
        self.model.neg_correlation_and_grad(self.x[: self.model.n_params], self.z)
